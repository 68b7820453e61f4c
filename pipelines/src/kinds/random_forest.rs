//! `random_forest`: bagged CART trees (smartcore), served as flat trees.

use dcpilot_info_core::model::Forest;
use dcpilot_info_core::Model;
use serde::Deserialize;
use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;

use super::{count, matrix, read_params, ModelKind};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// Bagged trees.
pub struct RandomForest;

/// `[model.params]` of `random_forest`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Trees, at least 1 (default 50).
    n_trees: Option<u64>,
    /// Depth limit, at least 1 (default none).
    max_depth: Option<u64>,
    /// Minimum rows per leaf, at least 1 (default 1).
    min_samples_leaf: Option<u64>,
    /// Seed (default 0; training is reproducible).
    seed: Option<u64>,
    /// Features each split chooses from, at least 1; more than there are means all of them,
    /// which makes it bagged trees (default ⌊√features⌋).
    features_per_split: Option<u64>,
}

impl ModelKind for RandomForest {
    fn name(&self) -> &'static str {
        "random_forest"
    }

    fn params(&self) -> &'static [&'static str] {
        &[
            "n_trees",
            "max_depth",
            "min_samples_leaf",
            "seed",
            "features_per_split",
        ]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        let n_trees = p.n_trees.unwrap_or(50);
        problems.at_least_one("model.params.n_trees", n_trees);
        let max_depth = p.max_depth.map(|d| u16::try_from(d).unwrap_or(u16::MAX));
        if let Some(depth) = max_depth {
            problems.at_least_one("model.params.max_depth", u64::from(depth));
        }
        let min_samples_leaf = p.min_samples_leaf.unwrap_or(1);
        problems.at_least_one("model.params.min_samples_leaf", min_samples_leaf);
        if let Some(n) = p.features_per_split {
            problems.at_least_one("model.params.features_per_split", n);
        }
        Some(ModelSpec::RandomForest {
            n_trees: count(n_trees),
            max_depth,
            min_samples_leaf: count(min_samples_leaf),
            seed: p.seed.unwrap_or(0),
            features_per_split: p.features_per_split.map(count),
        })
    }

    fn fit(&self, spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
        let ModelSpec::RandomForest {
            n_trees,
            max_depth,
            min_samples_leaf,
            seed,
            features_per_split,
        } = *spec
        else {
            return Err(PipelineError::Spec(format!(
                "{spec:?} is not a random forest"
            )));
        };
        let mut p = RandomForestRegressorParameters::default()
            .with_n_trees(n_trees)
            .with_min_samples_leaf(min_samples_leaf)
            .with_seed(seed);
        if let Some(d) = max_depth {
            p = p.with_max_depth(d);
        }
        // At most the features there are (a baseline model reads fewer).
        if let Some(n) = features_per_split {
            p = p.with_m(n.min(x[0].len()));
        }
        let fitted = Forest::fit(&matrix(x)?, &y.to_vec(), p).map_err(PipelineError::training)?;
        Ok(Model::RandomForest(fitted))
    }
}
