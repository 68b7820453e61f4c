//! Live judgement: how a served model does on telemetry it never saw, next to its job's
//! baselines, and whether it is demoted.
//!
//! The background judges each served version on the rows whose truth has arrived since
//! its training window ended, over a sliding window, and publishes a [`LiveVerdict`] as
//! the model `<name>.live` (versioned and replicated like any other). A verdict applies
//! to the version it judged only: a new version of the model is not demoted by its
//! predecessor's verdict. While a version is demoted, [`Snapshot::answerer`] answers with
//! the best baseline the foreground can compute from a request's features.
//!
//! [`Snapshot::answerer`]: crate::Snapshot::answerer

use serde::{Deserialize, Serialize};

use crate::error::{InfoCoreError, Result};
use crate::snapshot::ServedModel;

/// Suffix of a verdict's model name.
pub const VERDICT_SUFFIX: &str = ".live";

/// The name under which the verdicts on `model` are published.
pub fn verdict_name(model: &str) -> String {
    format!("{model}{VERDICT_SUFFIX}")
}

/// How the foreground computes a baseline from the features of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Fallback {
    /// Always this value (e.g. "no interference": a slowdown of 1).
    Constant(f64),
    /// The value of this feature (e.g. the last value, which is the feature `cpu_now`).
    Feature(String),
}

impl Fallback {
    /// How the baseline in `values` can be computed from the feature columns `features`
    /// (`rows`, one value per feature each), if it can: a constant column, or one equal to
    /// a feature on every row. `None` for an empty column.
    pub fn detect(values: &[f64], features: &[String], rows: &[Vec<f64>]) -> Option<Self> {
        let first = *values.first()?;
        // A feature first: a last value that happened to be constant in the window is
        // still the last value, not that constant.
        let feature = features.iter().enumerate().find_map(|(i, name)| {
            let equal = values.len() == rows.len()
                && values
                    .iter()
                    .zip(rows)
                    .all(|(v, row)| row.get(i).is_some_and(|x| same(*v, *x)));
            equal.then(|| Self::Feature(name.clone()))
        });
        feature.or_else(|| {
            values
                .iter()
                .all(|v| same(*v, first))
                .then_some(Self::Constant(first))
        })
    }
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// One baseline's live error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveBaseline {
    /// Baseline name (its query column).
    pub name: String,
    /// Its error on the rows judged (NaN when undefined).
    #[serde(with = "crate::record::maybe_number")]
    pub error: f64,
    /// How the foreground computes it, if it can.
    pub fallback: Option<Fallback>,
}

/// How one version of a model did on the newest rows it never saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveVerdict {
    /// The model judged.
    pub model: String,
    /// Its version.
    pub version: u64,
    /// Error metric (as the job's).
    pub metric: String,
    /// Length of the sliding window, event time.
    pub window_secs: u64,
    /// First row judged, ms since the epoch.
    pub from_ms: i64,
    /// Last row judged.
    pub to_ms: i64,
    /// Rows judged.
    pub rows: u64,
    /// The model's error on them (NaN when undefined).
    #[serde(with = "crate::record::maybe_number")]
    pub model_error: f64,
    /// Every baseline's error on the same rows, best first.
    pub baselines: Vec<LiveBaseline>,
    /// Whether the model was worse than its best baseline.
    pub demoted: bool,
    /// When the verdict was reached, ms since the epoch.
    pub judged_at_ms: i64,
    /// After this (ms since the epoch) the verdict no longer holds: judgement stopped (no
    /// new rows, failures), and a demotion must not outlive the evidence for it.
    pub expires_at_ms: i64,
}

impl LiveVerdict {
    /// The verdict on `model_error` next to `baselines` (sorted here, best first; an
    /// undefined error last): demoted when the best defined baseline does better.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &str,
        version: u64,
        metric: &str,
        window_secs: u64,
        (from_ms, to_ms): (i64, i64),
        rows: u64,
        model_error: f64,
        mut baselines: Vec<LiveBaseline>,
        (judged_at_ms, expires_at_ms): (i64, i64),
    ) -> Self {
        baselines.sort_by(|a, b| match (a.error.is_finite(), b.error.is_finite()) {
            (true, true) => a.error.total_cmp(&b.error),
            (x, y) => y.cmp(&x),
        });
        let demoted = baselines
            .first()
            // An undefined model error (NaN) loses to any defined baseline.
            .is_some_and(|b| {
                b.error.is_finite() && (model_error.is_nan() || model_error > b.error)
            });
        Self {
            model: model.into(),
            version,
            metric: metric.into(),
            window_secs,
            from_ms,
            to_ms,
            rows,
            model_error,
            baselines,
            demoted,
            judged_at_ms,
            expires_at_ms,
        }
    }

    /// Whether a baseline could answer in the model's place: defined, and better than the
    /// model (a demoted model is never replaced by something worse than itself).
    fn may_replace(&self, b: &LiveBaseline) -> bool {
        b.error.is_finite() && (self.model_error.is_nan() || b.error < self.model_error)
    }

    /// The best baseline (defined error), if any.
    pub fn best(&self) -> Option<&LiveBaseline> {
        self.baselines.first().filter(|b| b.error.is_finite())
    }

    /// The best baseline the foreground can compute that does better than the model, if
    /// any.
    pub fn fallback(&self) -> Option<&LiveBaseline> {
        self.baselines
            .iter()
            .find(|b| b.fallback.is_some() && self.may_replace(b))
    }

    /// The verdict in words: `live rmse 9.10 vs 7.91 for last_value over 120 rows`.
    pub fn summary(&self) -> String {
        match self.best() {
            Some(best) => format!(
                "live {} {:.4} vs {:.4} for {} over {} rows",
                self.metric, self.model_error, best.error, best.name, self.rows
            ),
            None => format!(
                "live {} {:.4} over {} rows (no baseline defined)",
                self.metric, self.model_error, self.rows
            ),
        }
    }

    /// Checks what a stored verdict must hold.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.version == 0 {
            return Err("a verdict on version 0".into());
        }
        if self.from_ms > self.to_ms {
            return Err(format!(
                "a verdict window from {} after its end {}",
                self.from_ms, self.to_ms
            ));
        }
        Ok(())
    }
}

/// A baseline computed from a request's feature row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Constant(f64),
    Feature(usize),
}

/// A demoted version: the verdict, and the baseline that answers in its place (none when
/// no baseline can be computed from the features; the model then still answers).
#[derive(Debug, Clone, Copy)]
pub struct Demotion<'a> {
    /// The verdict that demoted it.
    pub verdict: &'a LiveVerdict,
    baseline: Option<(&'a LiveBaseline, Rule)>,
}

impl<'a> Demotion<'a> {
    /// The baseline answering, if one can.
    pub fn baseline(&self) -> Option<&'a LiveBaseline> {
        self.baseline.map(|(b, _)| b)
    }

    /// Why answers are degraded, with both errors.
    pub fn reason(&self) -> String {
        let v = self.verdict;
        let by = match self.baseline() {
            Some(b) => format!("answered by baseline {}", b.name),
            None => {
                "no baseline is computable from the features, so the model still answers".into()
            }
        };
        format!(
            "model {} v{} is demoted ({}); {by}",
            v.model,
            v.version,
            v.summary()
        )
    }
}

/// What answers for a model: the served version, or its baseline while it is demoted.
#[derive(Debug, Clone, Copy)]
pub struct Answerer<'a> {
    /// The served version.
    pub served: &'a ServedModel,
    /// Set while a live verdict on this very version demotes it.
    pub demotion: Option<Demotion<'a>>,
}

impl<'a> Answerer<'a> {
    /// `served`, demoted if `verdict` judged this version, demoted it, and has not expired
    /// by `now_ms`.
    pub fn new(served: &'a ServedModel, verdict: Option<&'a LiveVerdict>, now_ms: i64) -> Self {
        let demotion = verdict
            .filter(|v| v.demoted && v.version == served.version() && now_ms < v.expires_at_ms)
            .map(|verdict| Demotion {
                verdict,
                baseline: verdict.baselines.iter().find_map(|b| {
                    if !verdict.may_replace(b) {
                        return None;
                    }
                    let rule = match b.fallback.as_ref()? {
                        Fallback::Constant(v) => Rule::Constant(*v),
                        Fallback::Feature(name) => {
                            Rule::Feature(served.record.features.iter().position(|f| f == name)?)
                        }
                    };
                    Some((b, rule))
                }),
            });
        Self { served, demotion }
    }

    /// The answer for one feature row (in the model's feature order).
    pub fn predict(&self, row: &[f64]) -> Result<f64> {
        match self.demotion.and_then(|d| d.baseline) {
            Some((_, rule)) => {
                let width = self.served.record.features.len();
                if row.len() != width {
                    return Err(InfoCoreError::Prediction {
                        reason: format!(
                            "row of {} values for a model of {width} features",
                            row.len()
                        ),
                    });
                }
                Ok(match rule {
                    Rule::Constant(v) => v,
                    Rule::Feature(i) => row[i],
                })
            }
            None => self.served.prepared.predict(row),
        }
    }

    /// The answers for `rows` (`width` values each, in the model's feature order) into
    /// `out`: the model's batched prediction, or its baseline's row by row while it is
    /// demoted. A model without features has no rows to answer.
    pub fn predict_many(&self, rows: &[f64], width: usize, out: &mut Vec<f64>) -> Result<()> {
        out.clear();
        if width == 0 {
            return Ok(());
        }
        if self.demotion.and_then(|d| d.baseline).is_none() {
            return self.served.prepared.predict_many(rows, width, out);
        }
        for row in rows.chunks_exact(width) {
            out.push(self.predict(row)?);
        }
        Ok(())
    }

    /// Who answers: `model` or `baseline:<name>`.
    pub fn answered_by(&self) -> String {
        match self.demotion.and_then(|d| d.baseline()) {
            Some(b) => format!("baseline:{}", b.name),
            None => "model".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn fallbacks_are_constants_or_features() {
        let features = names(&["a", "b"]);
        let rows = vec![vec![1.0, 5.0], vec![2.0, 6.0], vec![3.0, 7.0]];
        assert_eq!(
            Fallback::detect(&[1.0, 1.0, 1.0], &features, &rows),
            Some(Fallback::Constant(1.0))
        );
        let flat = vec![vec![2.0, 5.0], vec![2.0, 6.0]];
        assert_eq!(
            Fallback::detect(&[2.0, 2.0], &features, &flat),
            Some(Fallback::Feature("a".into())),
            "a constant that is also a feature is the feature"
        );
        assert_eq!(
            Fallback::detect(&[5.0, 6.0, 7.0], &features, &rows),
            Some(Fallback::Feature("b".into()))
        );
        assert_eq!(Fallback::detect(&[5.0, 6.0, 8.0], &features, &rows), None);
        assert_eq!(Fallback::detect(&[], &features, &rows), None);
    }

    fn baseline(name: &str, error: f64, fallback: Option<Fallback>) -> LiveBaseline {
        LiveBaseline {
            name: name.into(),
            error,
            fallback,
        }
    }

    #[test]
    fn demoted_only_when_a_defined_baseline_does_better() {
        let verdict = |model_error: f64, errors: &[f64]| {
            let baselines = errors
                .iter()
                .enumerate()
                .map(|(i, e)| baseline(&format!("b{i}"), *e, None))
                .collect();
            LiveVerdict::new(
                "m",
                1,
                "mae",
                60,
                (0, 1),
                10,
                model_error,
                baselines,
                (0, 1),
            )
        };
        assert!(verdict(2.0, &[f64::NAN, 1.5, 3.0]).demoted);
        assert_eq!(
            verdict(2.0, &[f64::NAN, 1.5, 3.0])
                .best()
                .map(|b| &b.name[..]),
            Some("b1")
        );
        assert!(!verdict(1.0, &[1.5, 3.0]).demoted);
        assert!(!verdict(1.5, &[1.5]).demoted, "a tie keeps the model");
        assert!(
            verdict(f64::NAN, &[1.5]).demoted,
            "an undefined model error"
        );
        assert!(!verdict(9.0, &[f64::NAN]).demoted, "no defined baseline");
    }

    #[test]
    fn undefined_errors_survive_a_round_trip_through_json() {
        let baselines = vec![
            baseline("a", f64::NAN, Some(Fallback::Constant(1.0))),
            baseline("b", 2.0, None),
        ];
        let v = LiveVerdict::new(
            "m",
            1,
            "r2",
            60,
            (0, 1),
            10,
            f64::INFINITY,
            baselines,
            (0, 1),
        );
        let text = serde_json::to_string(&v).expect("json");
        let back: LiveVerdict = serde_json::from_str(&text).expect("read back");
        assert!(back.model_error.is_nan() && back.baselines[1].error.is_nan());
        assert!(back.demoted && back.best().is_some_and(|b| b.name == "b"));
        // The only computable baseline is undefined: nothing replaces the model.
        assert!(back.fallback().is_none());
    }

    #[test]
    fn only_a_better_baseline_replaces_the_model() {
        let v = |errors: [f64; 2]| {
            let baselines = vec![
                baseline("best_not_computable", errors[0], None),
                baseline("computable", errors[1], Some(Fallback::Constant(1.0))),
            ];
            LiveVerdict::new("m", 1, "mae", 60, (0, 1), 10, 2.0, baselines, (0, 1))
        };
        assert!(v([1.0, 3.0]).demoted);
        assert!(
            v([1.0, 3.0]).fallback().is_none(),
            "3.0 is worse than the model's 2.0"
        );
        assert_eq!(
            v([1.0, 1.5]).fallback().map(|b| &b.name[..]),
            Some("computable")
        );
    }
}
