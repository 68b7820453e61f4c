//! `quantile_table`: per-key values at chosen quantiles of each feature column, from a
//! histogram whose weights halve every `half_life_secs` — the rule-of-thumb table, built
//! from keyed rows by [`crate::table`], not fitted on (x, y).

use dcpilot_info_core::Model;
use serde::Deserialize;

use super::{read_params, ModelKind};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// Per-key quantiles of each feature.
pub struct QuantileTable;

/// `[model.params]` of `quantile_table`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Column holding the key, e.g. the workload (required).
    key: Option<String>,
    /// Quantiles stored, ascending strictly within (0, 1] (default 0.5, 0.9, 0.99).
    quantiles: Option<Vec<f64>>,
    /// The quantile judged against the holdout, one of `quantiles` (default 0.9).
    judged_quantile: Option<f64>,
    /// Half-life of a row's weight, by event time, at least 1 (default one day).
    half_life_secs: Option<u64>,
}

impl ModelKind for QuantileTable {
    fn name(&self) -> &'static str {
        "quantile_table"
    }

    fn params(&self) -> &'static [&'static str] {
        &["key", "quantiles", "judged_quantile", "half_life_secs"]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        problems.text("model.params.key", p.key.as_deref(), true);
        let quantiles = p.quantiles.unwrap_or_else(|| vec![0.5, 0.9, 0.99]);
        let judged_quantile = p.judged_quantile.unwrap_or(0.9);
        let half_life_secs = p.half_life_secs.unwrap_or(86_400);
        let ascending = !quantiles.is_empty()
            && quantiles.windows(2).all(|w| w[0] < w[1])
            && quantiles.iter().all(|&q| q > 0.0 && q <= 1.0);
        if !ascending {
            problems.add(
                "model.params.quantiles",
                format!("must ascend strictly within (0, 1], got {quantiles:?}"),
            );
        }
        if !quantiles.contains(&judged_quantile) {
            problems.add(
                "model.params.judged_quantile",
                format!("{judged_quantile} is not one of the quantiles {quantiles:?}"),
            );
        }
        problems.at_least_one("model.params.half_life_secs", half_life_secs);
        Some(ModelSpec::QuantileTable {
            key: p.key.unwrap_or_default(),
            quantiles,
            judged_quantile,
            half_life_secs,
        })
    }

    fn fit(&self, _spec: &ModelSpec, _x: &[Vec<f64>], _y: &[f64]) -> Result<Model> {
        Err(PipelineError::Spec(
            "a quantile_table is built from keyed rows, not fitted on (x, y)".into(),
        ))
    }
}
