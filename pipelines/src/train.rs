//! Training and judging one model: a time-based holdout, the spec's estimator (smartcore),
//! its error next to the best naive baseline's and, if there is one, the champion's — and
//! the champion/challenger decision.

use dcpilot_info_core::core::{promotion, Promotion};
use dcpilot_info_core::{Model, PreparedModel};

use crate::error::{PipelineError, Result};
use crate::metrics::ErrorMetric;
use crate::spec::{JobSpec, ModelSpec, TargetTransform};

/// Rows a job trains and judges on, column-wise per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Event time of each row, ms.
    pub times: Vec<i64>,
    /// Feature values, one vector per row, in the spec's feature order.
    pub features: Vec<Vec<f64>>,
    /// Target per row.
    pub target: Vec<f64>,
    /// Naive predictions per baseline column: (name, one value per row).
    pub baselines: Vec<(String, Vec<f64>)>,
    /// Key of each row, for keyed models (quantile tables); empty otherwise.
    pub keys: Vec<String>,
    /// Feature column names, in the order of each row's values.
    pub columns: Vec<String>,
    /// Query rows left out (a null or a value that is not a finite number where the spec
    /// reads one), with examples.
    pub skipped: dcpilot_schemas::Skipped,
}

impl Dataset {
    /// The rows no older than `window_secs` behind the newest row (the training window).
    pub fn within_window(self, window_secs: u64) -> Dataset {
        let Some(newest) = self.times.iter().copied().max() else {
            return self;
        };
        let start = newest.saturating_sub((window_secs as i64).saturating_mul(1000));
        if self.times.iter().all(|&t| t >= start) {
            return self;
        }
        let keep: Vec<usize> = (0..self.times.len())
            .filter(|&i| self.times[i] >= start)
            .collect();
        self.select(&keep)
    }

    /// The given rows, in that order (every per-row column follows).
    pub fn select(&self, rows: &[usize]) -> Dataset {
        let optional = |values: &[String]| {
            if values.is_empty() {
                Vec::new()
            } else {
                pick(values, rows)
            }
        };
        Dataset {
            times: pick(&self.times, rows),
            features: pick(&self.features, rows),
            target: if self.target.is_empty() {
                Vec::new()
            } else {
                pick(&self.target, rows)
            },
            keys: optional(&self.keys),
            baselines: self
                .baselines
                .iter()
                .map(|(name, values)| (name.clone(), pick(values, rows)))
                .collect(),
            columns: self.columns.clone(),
            skipped: self.skipped.clone(),
        }
    }
}

/// The result of training and judging one model.
#[derive(Debug)]
pub struct Evaluation {
    /// The trained model.
    pub model: Model,
    /// Its holdout error.
    pub model_error: f64,
    /// The best baseline and its holdout error.
    pub baseline: (String, f64),
    /// Every baseline's holdout error (NaN when undefined).
    pub baselines: Vec<(String, f64)>,
    /// The current champion's error on the same holdout, if there is one.
    pub champion_error: Option<f64>,
    /// Rows trained on / held out.
    pub train_rows: usize,
    /// Rows held out.
    pub holdout_rows: usize,
    /// Publish or not.
    pub decision: Promotion,
}

/// Fits the estimator `spec` on `x` (rows) and `y`, with its kind.
pub fn fit(spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
    crate::kinds::fit(spec, x, y)
}

/// [`fit`] on the target as `transform` says: for [`TargetTransform::Log`] the estimator
/// is fitted on ln(y) and wrapped so that it predicts exp of its own prediction.
pub fn fit_transformed(
    spec: &ModelSpec,
    transform: TargetTransform,
    x: &[Vec<f64>],
    y: &[f64],
) -> Result<Model> {
    match transform {
        TargetTransform::None => fit(spec, x, y),
        TargetTransform::Log => {
            if let Some(bad) = y.iter().find(|v| !(**v > 0.0 && v.is_finite())) {
                return Err(PipelineError::Data(format!(
                    "model.target_transform = \"log\" needs positive targets, got {bad}"
                )));
            }
            let logs: Vec<f64> = y.iter().map(|v| v.ln()).collect();
            Ok(Model::LogTarget(Box::new(fit(spec, x, &logs)?)))
        }
    }
}

/// Row indices (train, holdout): the newest `fraction` of rows by time are held out.
pub fn split_by_time(times: &[i64], fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    let holdout = ((times.len() as f64 * fraction).ceil() as usize).min(times.len());
    let train = order.split_off(times.len() - holdout);
    (order, train)
}

/// [`split_by_time`], refusing a split that leaves either side empty.
pub(crate) fn split_nonempty(times: &[i64], fraction: f64) -> Result<(Vec<usize>, Vec<usize>)> {
    let (train, holdout) = split_by_time(times, fraction);
    if train.is_empty() || holdout.is_empty() {
        return Err(PipelineError::Data(format!(
            "{} rows leave no training or holdout rows",
            times.len()
        )));
    }
    Ok((train, holdout))
}

/// The values at `rows`, in that order.
pub(crate) fn pick<T: Clone>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&i| values[i].clone()).collect()
}

/// `model`'s prediction for each row, as its kind predicts.
pub(crate) fn predict_rows(
    kind: &dyn crate::kinds::ModelKind,
    model: &PreparedModel,
    rows: &[Vec<f64>],
) -> Result<Vec<f64>> {
    rows.iter().map(|row| kind.predict(model, row)).collect()
}

/// Each baseline's error against `actual`, in the given order (NaN when undefined).
pub(crate) fn baseline_errors<'a, V: AsRef<[f64]>>(
    metric: ErrorMetric,
    actual: &[f64],
    baselines: impl IntoIterator<Item = (&'a str, V)>,
) -> Vec<(String, f64)> {
    baselines
        .into_iter()
        .map(|(name, values)| (name.to_string(), metric.error(actual, values.as_ref())))
        .collect()
}

/// The baseline with the lowest defined error: the bar a model must clear.
pub(crate) fn best_baseline(errors: &[(String, f64)]) -> Result<(String, f64)> {
    errors
        .iter()
        .filter(|(_, e)| !e.is_nan())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .ok_or_else(|| PipelineError::Data("no baseline column has a defined error".into()))
}

/// Trains `spec` on the older rows of `data`, judges it on the newest, next to each
/// baseline column and to `champion` (the currently served model), and decides.
pub fn evaluate(
    spec: &ModelSpec,
    metric: ErrorMetric,
    holdout_fraction: f64,
    data: &Dataset,
    champion: Option<&PreparedModel>,
) -> Result<Evaluation> {
    evaluate_with_ablations(
        (spec, TargetTransform::None),
        metric,
        holdout_fraction,
        data,
        champion,
        &[],
    )
}

/// [`evaluate`] for a job: its model, metric and holdout, and its baseline models (the
/// same estimator trained on fewer features) beside its baseline columns.
pub fn evaluate_job(
    job: &JobSpec,
    data: &Dataset,
    champion: Option<&PreparedModel>,
) -> Result<Evaluation> {
    let ablations = job
        .baseline_models
        .iter()
        .map(|(name, subset)| {
            let columns = subset
                .iter()
                .map(|f| {
                    job.features.iter().position(|c| c == f).ok_or_else(|| {
                        PipelineError::Spec(format!("baseline model {name}: no feature {f:?}"))
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            Ok((name.clone(), columns))
        })
        .collect::<Result<Vec<_>>>()?;
    evaluate_with_ablations(
        (&job.model, job.target_transform),
        job.metric,
        job.holdout_fraction,
        data,
        champion,
        &ablations,
    )
}

/// Holdout error of `spec` trained on only the feature `columns`.
fn ablation_error(
    (spec, transform): (&ModelSpec, TargetTransform),
    metric: ErrorMetric,
    data: &Dataset,
    (train, holdout): (&[usize], &[usize]),
    columns: &[usize],
) -> Result<f64> {
    let subset = |rows: &[usize]| -> Vec<Vec<f64>> {
        rows.iter()
            .map(|&r| columns.iter().map(|&c| data.features[r][c]).collect())
            .collect()
    };
    let model = fit_transformed(spec, transform, &subset(train), &pick(&data.target, train))?;
    let kind = crate::kinds::of(spec);
    let prepared = kind.prepare(model, columns.len())?;
    let predicted = predict_rows(kind, &prepared, &subset(holdout))?;
    Ok(metric.error(&pick(&data.target, holdout), &predicted))
}

fn evaluate_with_ablations(
    (spec, transform): (&ModelSpec, TargetTransform),
    metric: ErrorMetric,
    holdout_fraction: f64,
    data: &Dataset,
    champion: Option<&PreparedModel>,
    ablations: &[(String, Vec<usize>)],
) -> Result<Evaluation> {
    if let ModelSpec::QuantileTable { .. } = spec {
        return crate::table::evaluate(spec, metric, holdout_fraction, data, champion);
    }
    let rows = data.times.len();
    if rows < 4 || data.features.len() != rows || data.target.len() != rows {
        return Err(PipelineError::Data(format!(
            "{rows} rows ({} feature rows, {} targets): too few or ragged",
            data.features.len(),
            data.target.len()
        )));
    }
    let (train, holdout) = split_nonempty(&data.times, holdout_fraction)?;
    let model = fit_transformed(
        spec,
        transform,
        &pick(&data.features, &train),
        &pick(&data.target, &train),
    )?;
    let holdout_x = pick(&data.features, &holdout);
    let actual = pick(&data.target, &holdout);
    let width = holdout_x.first().map_or(0, Vec::len);
    let kind = crate::kinds::of(spec);
    let prepared = kind.prepare(model_copy(&model)?, width)?;
    let model_error = metric.error(&actual, &predict_rows(kind, &prepared, &holdout_x)?);
    let mut baselines = baseline_errors(
        metric,
        &actual,
        data.baselines
            .iter()
            .map(|(name, values)| (name.as_str(), pick(values, &holdout))),
    );
    for (name, columns) in ablations {
        let error = ablation_error((spec, transform), metric, data, (&train, &holdout), columns)?;
        baselines.push((name.clone(), error));
    }
    let baseline = best_baseline(&baselines)?;
    // A champion whose features no longer fit is no champion: the challenger competes
    // only against the baseline.
    let champion_error = champion
        .and_then(|c| predict_rows(kind, c, &holdout_x).ok())
        .map(|p| metric.error(&actual, &p));
    let decision = promotion(model_error, baseline.1, champion_error);
    Ok(Evaluation {
        model,
        model_error,
        baseline,
        baselines,
        champion_error,
        train_rows: train.len(),
        holdout_rows: holdout.len(),
        decision,
    })
}

/// smartcore estimators are not `Clone`; a serde round trip copies one.
fn model_copy(model: &Model) -> Result<Model> {
    let text = serde_json::to_string(model).map_err(|e| PipelineError::Training(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| PipelineError::Training(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 2·x0 + noise-free step in x1; times ascending.
    fn data(rows: usize) -> Dataset {
        let features: Vec<Vec<f64>> = (0..rows)
            .map(|i| vec![(i % 17) as f64, (i % 5) as f64])
            .collect();
        let target: Vec<f64> = features
            .iter()
            .map(|r| 2.0 * r[0] + if r[1] > 2.0 { 10.0 } else { 0.0 })
            .collect();
        let mean = target.iter().sum::<f64>() / rows as f64;
        Dataset {
            times: (0..rows as i64).map(|i| i * 1000).collect(),
            features,
            baselines: vec![("mean".into(), vec![mean; rows])],
            target,
            ..Dataset::default()
        }
    }

    #[test]
    fn holdout_is_the_newest_rows() {
        let (train, holdout) = split_by_time(&[50, 10, 40, 20, 30], 0.4);
        assert_eq!(holdout, vec![2, 0]);
        assert_eq!(train, vec![1, 3, 4]);
    }

    #[test]
    fn every_kind_trains_and_beats_the_mean_baseline() {
        let specs = [
            ModelSpec::LinearRegression,
            ModelSpec::RidgeRegression {
                alpha: 0.1,
                normalize: true,
            },
            ModelSpec::DecisionTree {
                max_depth: Some(8),
                min_samples_leaf: 1,
            },
            ModelSpec::RandomForest {
                n_trees: 10,
                max_depth: Some(8),
                min_samples_leaf: 1,
                seed: 1,
                features_per_split: None,
            },
            ModelSpec::GradientBoosting {
                n_trees: 50,
                learning_rate: 0.3,
                max_depth: 4,
                min_samples_leaf: 1,
                l2: 1.0,
            },
            ModelSpec::Knn { k: 3 },
        ];
        let data = data(400);
        for spec in specs {
            let e = evaluate(&spec, ErrorMetric::Mae, 0.2, &data, None).expect("evaluate");
            assert_eq!((e.train_rows, e.holdout_rows), (320, 80));
            assert!(
                e.model_error < e.baseline.1,
                "{spec:?}: {} vs {}",
                e.model_error,
                e.baseline.1
            );
            assert_eq!(e.decision, Promotion::Promote, "{spec:?}");
        }
    }

    #[test]
    fn a_better_champion_keeps_its_place() {
        let data = data(400);
        let tree = evaluate(
            &ModelSpec::DecisionTree {
                max_depth: None,
                min_samples_leaf: 1,
            },
            ErrorMetric::Mae,
            0.2,
            &data,
            None,
        )
        .expect("tree");
        let champion = PreparedModel::prepare(tree.model, 2).expect("prepare");
        let linear = evaluate(
            &ModelSpec::LinearRegression,
            ErrorMetric::Mae,
            0.2,
            &data,
            Some(&champion),
        )
        .expect("linear");
        assert!(linear.champion_error.is_some());
        assert!(
            matches!(linear.decision, Promotion::Reject(_)),
            "{:?}",
            linear.decision
        );
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        let mut d = data(10);
        d.target.pop();
        assert!(evaluate(
            &ModelSpec::LinearRegression,
            ErrorMetric::Mae,
            0.2,
            &d,
            None
        )
        .is_err());
        assert!(fit(&ModelSpec::LinearRegression, &[], &[]).is_err());
        let mut no_baseline = data(10);
        no_baseline.baselines.clear();
        assert!(evaluate(
            &ModelSpec::LinearRegression,
            ErrorMetric::Mae,
            0.2,
            &no_baseline,
            None
        )
        .is_err());
    }
}
