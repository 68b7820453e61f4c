//! `decision_tree`: one CART regression tree (smartcore).

use dcpilot_info_core::model::Tree;
use dcpilot_info_core::Model;
use serde::Deserialize;
use smartcore::tree::decision_tree_regressor::DecisionTreeRegressorParameters;

use super::{count, matrix, read_params, ModelKind};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// One CART tree.
pub struct DecisionTree;

/// `[model.params]` of `decision_tree`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Depth limit, at least 1 (default none).
    max_depth: Option<u64>,
    /// Minimum rows per leaf, at least 1 (default 1).
    min_samples_leaf: Option<u64>,
}

impl ModelKind for DecisionTree {
    fn name(&self) -> &'static str {
        "decision_tree"
    }

    fn params(&self) -> &'static [&'static str] {
        &["max_depth", "min_samples_leaf"]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        let max_depth = p.max_depth.map(|d| u16::try_from(d).unwrap_or(u16::MAX));
        if let Some(depth) = max_depth {
            problems.at_least_one("model.params.max_depth", u64::from(depth));
        }
        let min_samples_leaf = p.min_samples_leaf.unwrap_or(1);
        problems.at_least_one("model.params.min_samples_leaf", min_samples_leaf);
        Some(ModelSpec::DecisionTree {
            max_depth,
            min_samples_leaf: count(min_samples_leaf),
        })
    }

    fn fit(&self, spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
        let ModelSpec::DecisionTree {
            max_depth,
            min_samples_leaf,
        } = *spec
        else {
            return Err(PipelineError::Spec(format!(
                "{spec:?} is not a decision tree"
            )));
        };
        let mut p =
            DecisionTreeRegressorParameters::default().with_min_samples_leaf(min_samples_leaf);
        if let Some(d) = max_depth {
            p = p.with_max_depth(d);
        }
        let fitted = Tree::fit(&matrix(x)?, &y.to_vec(), p).map_err(PipelineError::training)?;
        Ok(Model::DecisionTree(fitted))
    }
}
