//! `colouring`: not a model — the landscape coloured around the newest moment it can
//! judge, with root causes ranked over the graph ([`crate::colouring`]); published as a new
//! version every run.

use dcpilot_info_core::Model;
use serde::Deserialize;

use super::{count, read_params, ModelKind};
use crate::colouring::{detect, RankParams, Window};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// The landscape's colouring.
pub struct Colouring;

/// `[model.params]` of `colouring`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The detector (default `calibrated-robust-z`).
    detector: Option<String>,
    /// Normal behaviour, the seconds before the moment (default 300).
    baseline_secs: Option<u64>,
    /// Observed behaviour, the seconds from the moment on (default 180).
    observe_secs: Option<u64>,
    /// Calibration history (default 3600).
    history_secs: Option<u64>,
    /// The sampling step (default 60).
    step_secs: Option<u64>,
    /// What an explained symptom still counts for, 0..=1 (default 0.3).
    explained_weight: Option<f64>,
    /// Weight of a candidate's anomalous dependents (default 0.3).
    support_weight: Option<f64>,
    /// Weight of the latency callers see in their calls to a candidate (default 0.3).
    downstream_weight: Option<f64>,
    /// The score from which an entity is anomalous (default 1).
    anomalous_from: Option<f64>,
    /// Metrics kept as evidence per entity (default 3).
    evidence_metrics: Option<u64>,
    /// Candidates kept, at least 1 (default 1000).
    max_candidates: Option<u64>,
    /// An unchanged colouring is published again after this long, at least 1 (default 300).
    republish_secs: Option<u64>,
}

impl ModelKind for Colouring {
    fn name(&self) -> &'static str {
        "colouring"
    }

    fn params(&self) -> &'static [&'static str] {
        &[
            "detector",
            "baseline_secs",
            "observe_secs",
            "history_secs",
            "step_secs",
            "explained_weight",
            "support_weight",
            "downstream_weight",
            "anomalous_from",
            "evidence_metrics",
            "max_candidates",
            "republish_secs",
        ]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        let (window, rank) = (Window::default(), RankParams::default());
        let secs = |v: Option<u64>, default: i64| {
            v.map_or(default, |v| i64::try_from(v).unwrap_or(i64::MAX))
        };
        let detector = p.detector.unwrap_or_else(|| detect::DEFAULT.to_string());
        let window = Window {
            baseline_secs: secs(p.baseline_secs, window.baseline_secs),
            observe_secs: secs(p.observe_secs, window.observe_secs),
            history_secs: secs(p.history_secs, window.history_secs),
            step_secs: secs(p.step_secs, window.step_secs),
        };
        let rank = RankParams {
            explained_weight: p.explained_weight.unwrap_or(rank.explained_weight),
            support_weight: p.support_weight.unwrap_or(rank.support_weight),
            downstream_weight: p.downstream_weight.unwrap_or(rank.downstream_weight),
            anomalous_from: p.anomalous_from.unwrap_or(rank.anomalous_from),
            evidence_metrics: p.evidence_metrics.map_or(rank.evidence_metrics, count),
            max_candidates: p.max_candidates.map_or(rank.max_candidates, count),
        };
        let republish_secs = p.republish_secs.unwrap_or(300);
        problems.at_least_one("model.params.republish_secs", republish_secs);
        if let Err(why) = detect::by_name(&detector) {
            problems.add("model.params.detector", why);
        }
        for invalid in [window.check(), rank.check()]
            .into_iter()
            .filter_map(std::result::Result::err)
        {
            problems.add("model.params", invalid);
        }
        Some(ModelSpec::Colouring {
            detector,
            window,
            rank,
            republish_secs,
        })
    }

    fn fit(&self, _spec: &ModelSpec, _x: &[Vec<f64>], _y: &[f64]) -> Result<Model> {
        Err(PipelineError::Spec(
            "a colouring judges telemetry around a moment; it is not fitted on (x, y)".into(),
        ))
    }
}
