//! `gradient_boosting`: gradient-boosted trees on squared loss, trained by forust-ml
//! ([`crate::boost`]) and stored as dcpilot's own boosted trees.

use dcpilot_info_core::Model;
use serde::Deserialize;

use super::{count, read_params, ModelKind};
use crate::error::Result;
use crate::spec::{ModelSpec, Problems};

/// Gradient-boosted trees.
pub struct GradientBoosting;

/// `[model.params]` of `gradient_boosting`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Trees (boosting rounds), at least 1 (default 100).
    n_trees: Option<u64>,
    /// Shrinkage of each tree, in (0, 1] (default 0.1).
    learning_rate: Option<f64>,
    /// Depth limit of each tree, at least 1 (default 5).
    max_depth: Option<u64>,
    /// Minimum rows per leaf, at least 1 (default 1).
    min_samples_leaf: Option<u64>,
    /// L2 penalty on leaf values, at least 0 (default 1).
    l2: Option<f64>,
}

impl ModelKind for GradientBoosting {
    fn name(&self) -> &'static str {
        "gradient_boosting"
    }

    fn params(&self) -> &'static [&'static str] {
        &[
            "n_trees",
            "learning_rate",
            "max_depth",
            "min_samples_leaf",
            "l2",
        ]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        let (n_trees, max_depth) = (p.n_trees.unwrap_or(100), p.max_depth.unwrap_or(5));
        let min_samples_leaf = p.min_samples_leaf.unwrap_or(1);
        let (learning_rate, l2) = (p.learning_rate.unwrap_or(0.1), p.l2.unwrap_or(1.0));
        problems.at_least_one("model.params.n_trees", n_trees);
        problems.at_least_one("model.params.max_depth", max_depth);
        problems.at_least_one("model.params.min_samples_leaf", min_samples_leaf);
        // The trainer reads f32: a rate that would round to 0 (or to a subnormal, which
        // leaves every tree at nothing) is refused here, not silently.
        if !(learning_rate >= f64::from(f32::MIN_POSITIVE) && learning_rate <= 1.0) {
            problems.add(
                "model.params.learning_rate",
                format!("must be in (0, 1], got {learning_rate}"),
            );
        }
        if !(l2 >= 0.0 && l2 <= f64::from(f32::MAX)) {
            problems.add(
                "model.params.l2",
                format!("must be a number of at least 0, got {l2}"),
            );
        }
        Some(ModelSpec::GradientBoosting {
            n_trees: count(n_trees),
            learning_rate,
            max_depth: count(max_depth),
            min_samples_leaf: count(min_samples_leaf),
            l2,
        })
    }

    fn fit(&self, spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
        Ok(Model::GradientBoosting(crate::boost::fit(spec, x, y)?))
    }
}
