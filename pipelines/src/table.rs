//! The `quantile_table` kind: per key, the values of each feature column at chosen
//! quantiles of a histogram whose weights decay with age — the rule of thumb Kubernetes'
//! VPA recommender uses for requests, and what the foreground falls back to when a model
//! is missing.
//!
//! Judging: the table's value at the judged quantile is compared, per (key, column), with
//! the same quantile of that key's held-out rows; a baseline `b` offers the value of column
//! `b_<column>` at the key's newest training row (e.g. what was provisioned, or the last
//! observed usage).

use std::collections::BTreeMap;

use dcpilot_info_core::core::promotion;
use dcpilot_info_core::{Model, PreparedModel, QuantileTable};

use crate::error::{PipelineError, Result};
use crate::metrics::ErrorMetric;
use crate::spec::ModelSpec;
use crate::train::{baseline_errors, best_baseline, split_nonempty, Dataset, Evaluation};

/// The value at quantile `q` of weighted values (sorted in place): the smallest value
/// whose cumulative weight reaches `q` of the total.
fn weighted_quantile(values: &mut [(f64, f64)], q: f64) -> f64 {
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = values.iter().map(|v| v.1).sum();
    let mut cumulative = 0.0;
    for &(value, weight) in values.iter() {
        cumulative += weight;
        if cumulative >= q * total {
            return value;
        }
    }
    values.last().map_or(f64::NAN, |v| v.0)
}

/// Rows by key, in the given order.
fn by_key<'a>(data: &'a Dataset, rows: &[usize]) -> BTreeMap<&'a str, Vec<usize>> {
    let mut keyed: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &row in rows {
        keyed.entry(data.keys[row].as_str()).or_default().push(row);
    }
    keyed
}

/// Builds the table from `rows` of `data`; weights halve every `half_life_secs` behind the
/// newest of those rows.
pub fn build(
    data: &Dataset,
    rows: &[usize],
    quantiles: &[f64],
    half_life_secs: u64,
) -> QuantileTable {
    let newest = rows.iter().map(|&r| data.times[r]).max().unwrap_or(0);
    let half_life_ms = (half_life_secs as f64 * 1000.0).max(1.0);
    let weight = |row: usize| 0.5f64.powf((newest - data.times[row]) as f64 / half_life_ms);
    let rows_by_key = by_key(data, rows)
        .into_iter()
        .map(|(key, rows)| {
            let columns = data
                .columns
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let mut values: Vec<(f64, f64)> = rows
                        .iter()
                        .map(|&r| (data.features[r][c], weight(r)))
                        .collect();
                    let at = quantiles
                        .iter()
                        .map(|&q| weighted_quantile(&mut values, q))
                        .collect();
                    (name.clone(), at)
                })
                .collect();
            (key.to_string(), columns)
        })
        .collect();
    QuantileTable {
        quantiles: quantiles.to_vec(),
        rows: rows_by_key,
    }
}

/// Baseline prefixes present for every column (`b` such that each `b_<column>` exists).
fn baseline_prefixes(data: &Dataset) -> Vec<String> {
    let Some(first) = data.columns.first() else {
        return Vec::new();
    };
    let suffix = format!("_{first}");
    data.baselines
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(&suffix))
        .filter(|prefix| {
            data.columns.iter().all(|c| {
                data.baselines
                    .iter()
                    .any(|(n, _)| *n == format!("{prefix}_{c}"))
            })
        })
        .map(str::to_string)
        .collect()
}

fn baseline_values<'a>(data: &'a Dataset, prefix: &str, column: &str) -> Option<&'a [f64]> {
    let name = format!("{prefix}_{column}");
    data.baselines
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_slice())
}

/// Errors of a table against the truth rows, per (key, column) present in both.
struct Judgement {
    model_error: f64,
    baseline: (String, f64),
    baselines: Vec<(String, f64)>,
    champion_error: Option<f64>,
}

/// `reference` picks, per key, the row whose baseline values stand for that key.
fn judge(
    table: &QuantileTable,
    champion: Option<&QuantileTable>,
    metric: ErrorMetric,
    q: f64,
    data: &Dataset,
    truth: &[usize],
    reference: &BTreeMap<&str, usize>,
) -> Result<Judgement> {
    let prefixes = baseline_prefixes(data);
    let (mut actual, mut predicted, mut champion_predicted) = (Vec::new(), Vec::new(), Vec::new());
    let mut baselines: Vec<Vec<f64>> = vec![Vec::new(); prefixes.len()];
    for (key, rows) in by_key(data, truth) {
        let Some(&reference_row) = reference.get(key) else {
            continue;
        };
        for (c, column) in data.columns.iter().enumerate() {
            let Some(prediction) = table.lookup(key, column, q) else {
                continue;
            };
            let mut values: Vec<(f64, f64)> =
                rows.iter().map(|&r| (data.features[r][c], 1.0)).collect();
            actual.push(weighted_quantile(&mut values, q));
            predicted.push(prediction);
            champion_predicted.push(
                champion
                    .and_then(|t| t.lookup(key, column, q))
                    .unwrap_or(f64::NAN),
            );
            for (i, prefix) in prefixes.iter().enumerate() {
                let value = baseline_values(data, prefix, column)
                    .and_then(|v| v.get(reference_row).copied())
                    .unwrap_or(f64::NAN);
                baselines[i].push(value);
            }
        }
    }
    if actual.is_empty() {
        return Err(PipelineError::Data(
            "no key has rows both in the table and in the rows judged".into(),
        ));
    }
    let errors = baseline_errors(
        metric,
        &actual,
        prefixes.iter().map(String::as_str).zip(&baselines),
    );
    let baseline = best_baseline(&errors).map_err(|_| {
        PipelineError::Data(format!(
            "no baseline has a defined error (a quantile table reads baseline `b` as \
             columns b_<feature>: {})",
            data.columns.join(", ")
        ))
    })?;
    let champion_error = champion
        .map(|_| metric.error(&actual, &champion_predicted))
        .filter(|e| !e.is_nan());
    Ok(Judgement {
        model_error: metric.error(&actual, &predicted),
        baseline,
        baselines: errors,
        champion_error,
    })
}

fn params(spec: &ModelSpec) -> Result<(&[f64], f64, u64)> {
    match spec {
        ModelSpec::QuantileTable {
            quantiles,
            judged_quantile,
            half_life_secs,
            ..
        } => Ok((quantiles, *judged_quantile, *half_life_secs)),
        other => Err(PipelineError::Spec(format!(
            "{other:?} is not a quantile table"
        ))),
    }
}

fn check_keyed(data: &Dataset) -> Result<()> {
    if data.keys.len() != data.times.len() || data.features.len() != data.times.len() {
        return Err(PipelineError::Data(format!(
            "{} rows with {} keys and {} feature rows: ragged",
            data.times.len(),
            data.keys.len(),
            data.features.len()
        )));
    }
    Ok(())
}

/// Builds the table from the older rows, judges it on the newest, and decides.
pub(crate) fn evaluate(
    spec: &ModelSpec,
    metric: ErrorMetric,
    holdout_fraction: f64,
    data: &Dataset,
    champion: Option<&PreparedModel>,
) -> Result<Evaluation> {
    let (quantiles, q, half_life_secs) = params(spec)?;
    check_keyed(data)?;
    let (train, holdout) = split_nonempty(&data.times, holdout_fraction)?;
    let table = build(data, &train, quantiles, half_life_secs);
    // Baselines speak for a key as of its newest training row.
    let mut newest: BTreeMap<&str, usize> = BTreeMap::new();
    for &row in &train {
        let key = data.keys[row].as_str();
        let entry = newest.entry(key).or_insert(row);
        if data.times[row] >= data.times[*entry] {
            *entry = row;
        }
    }
    let judged = judge(
        &table,
        champion.and_then(PreparedModel::table),
        metric,
        q,
        data,
        &holdout,
        &newest,
    )?;
    Ok(Evaluation {
        decision: promotion(judged.model_error, judged.baseline.1, judged.champion_error),
        model: Model::QuantileTable(table),
        model_error: judged.model_error,
        baseline: judged.baseline,
        baselines: judged.baselines,
        champion_error: judged.champion_error,
        train_rows: train.len(),
        holdout_rows: holdout.len(),
    })
}

/// Judges a served table on all rows of `data` (nothing is built); baselines speak for a
/// key as of its oldest row. Returns (model error, best baseline).
pub(crate) fn judge_served(
    table: &QuantileTable,
    spec: &ModelSpec,
    metric: ErrorMetric,
    data: &Dataset,
) -> Result<(f64, Vec<(String, f64)>)> {
    let (_, q, _) = params(spec)?;
    check_keyed(data)?;
    let all: Vec<usize> = (0..data.times.len()).collect();
    let mut oldest: BTreeMap<&str, usize> = BTreeMap::new();
    for &row in &all {
        let entry = oldest.entry(data.keys[row].as_str()).or_insert(row);
        if data.times[row] < data.times[*entry] {
            *entry = row;
        }
    }
    let judged = judge(table, None, metric, q, data, &all, &oldest)?;
    Ok((judged.model_error, judged.baselines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcpilot_info_core::core::Promotion;

    fn spec() -> ModelSpec {
        ModelSpec::QuantileTable {
            key: "workload".into(),
            quantiles: vec![0.5, 0.9],
            judged_quantile: 0.9,
            // Near-flat weights over these few hours: quantiles of the plain histogram.
            half_life_secs: 10_000_000,
        }
    }

    /// Two workloads: "small" cycles through 1..=7 cores, "big" through 10..=70 (seven
    /// values: no quantile lands on a boundary); "provisioned" says 64 for both, "last"
    /// repeats the current value.
    fn data() -> Dataset {
        let mut d = Dataset {
            columns: vec!["cores".into()],
            baselines: vec![
                ("provisioned_cores".into(), Vec::new()),
                ("last_cores".into(), Vec::new()),
            ],
            ..Dataset::default()
        };
        for i in 0..400i64 {
            for (key, scale) in [("small", 1.0), ("big", 10.0)] {
                let cores = scale * ((i % 7) + 1) as f64;
                d.times.push(i * 60_000);
                d.keys.push(key.into());
                d.features.push(vec![cores]);
                d.baselines[0].1.push(64.0);
                d.baselines[1].1.push(cores);
            }
        }
        d
    }

    #[test]
    fn weighted_quantiles_follow_the_weights() {
        let mut even = [(3.0, 1.0), (1.0, 1.0), (2.0, 1.0), (4.0, 1.0)];
        assert_eq!(weighted_quantile(&mut even, 0.5), 2.0);
        assert_eq!(weighted_quantile(&mut even, 1.0), 4.0);
        // All weight on the newest value.
        let mut skewed = [(1.0, 0.01), (2.0, 0.01), (9.0, 10.0)];
        assert_eq!(weighted_quantile(&mut skewed, 0.5), 9.0);
    }

    #[test]
    fn the_table_beats_provisioned_and_last_value() {
        let e = evaluate(&spec(), ErrorMetric::Mape, 0.2, &data(), None).expect("evaluate");
        let Model::QuantileTable(table) = &e.model else {
            panic!("not a table: {:?}", e.model.kind());
        };
        assert_eq!(table.lookup("small", "cores", 0.9), Some(7.0));
        assert_eq!(table.lookup("big", "cores", 0.9), Some(70.0));
        assert_eq!(table.lookup("small", "cores", 0.5), Some(4.0));
        assert!(e.model_error < 1e-9, "{}", e.model_error);
        assert!(e.baseline.1 > 0.0, "{:?}", e.baseline);
        assert_eq!(e.decision, Promotion::Promote);
    }

    #[test]
    fn decay_follows_a_workload_that_grew() {
        let mut d = data();
        // The small workload doubled for its newest rows.
        let n = d.times.len();
        for row in n / 2..n {
            if d.keys[row] == "small" {
                d.features[row][0] *= 2.0;
            }
        }
        let all: Vec<usize> = (0..n).collect();
        let decayed = build(&d, &all, &[0.9], 600);
        let flat = build(&d, &all, &[0.9], 10_000_000);
        let now = decayed.lookup("small", "cores", 0.9).expect("small");
        let long_run = flat.lookup("small", "cores", 0.9).expect("small");
        assert_eq!(now, 14.0);
        assert!(long_run < now, "{long_run} vs {now}");
    }

    #[test]
    fn missing_baseline_columns_are_a_clear_error() {
        let mut d = data();
        d.baselines.clear();
        let err = evaluate(&spec(), ErrorMetric::Mae, 0.2, &d, None).expect_err("no baseline");
        assert!(err.to_string().contains("b_<feature>"), "{err}");
    }
}
