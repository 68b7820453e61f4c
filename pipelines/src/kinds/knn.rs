//! `knn`: k nearest neighbours (smartcore, Euclidean).

use dcpilot_info_core::model::Knn as KnnRegressor;
use dcpilot_info_core::Model;
use serde::Deserialize;
use smartcore::neighbors::knn_regressor::KNNRegressorParameters;

use super::{count, matrix, read_params, ModelKind};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// k nearest neighbours.
pub struct Knn;

/// `[model.params]` of `knn`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Neighbours, at least 1 (default 5).
    k: Option<u64>,
}

impl ModelKind for Knn {
    fn name(&self) -> &'static str {
        "knn"
    }

    fn params(&self) -> &'static [&'static str] {
        &["k"]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        let k = p.k.unwrap_or(5);
        problems.at_least_one("model.params.k", k);
        Some(ModelSpec::Knn { k: count(k) })
    }

    fn fit(&self, spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
        let ModelSpec::Knn { k } = *spec else {
            return Err(PipelineError::Spec(format!("{spec:?} is not knn")));
        };
        let parameters = KNNRegressorParameters::default().with_k(k.min(x.len()));
        let fitted = KnnRegressor::fit(&matrix(x)?, &y.to_vec(), parameters)
            .map_err(PipelineError::training)?;
        Ok(Model::Knn(fitted))
    }
}
