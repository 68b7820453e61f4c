//! `ridge_regression`: L2-regularised least squares (smartcore).

use dcpilot_info_core::model::Ridge;
use dcpilot_info_core::Model;
use serde::Deserialize;
use smartcore::linear::ridge_regression::RidgeRegressionParameters;

use super::{matrix, read_params, ModelKind};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// Ridge regression.
pub struct RidgeRegression;

/// `[model.params]` of `ridge_regression`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// L2 penalty, > 0 (default 1).
    alpha: Option<f64>,
    /// Standardize features first (default true).
    normalize: Option<bool>,
}

impl ModelKind for RidgeRegression {
    fn name(&self) -> &'static str {
        "ridge_regression"
    }

    fn params(&self) -> &'static [&'static str] {
        &["alpha", "normalize"]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let p: Params = read_params(params, problems);
        let alpha = p.alpha.unwrap_or(1.0);
        if !(alpha > 0.0 && alpha.is_finite()) {
            problems.add(
                "model.params.alpha",
                format!("must be positive, got {alpha}"),
            );
        }
        Some(ModelSpec::RidgeRegression {
            alpha,
            normalize: p.normalize.unwrap_or(true),
        })
    }

    fn fit(&self, spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
        let ModelSpec::RidgeRegression { alpha, normalize } = *spec else {
            return Err(PipelineError::Spec(format!(
                "{spec:?} is not ridge regression"
            )));
        };
        let parameters = RidgeRegressionParameters::default()
            .with_alpha(alpha)
            .with_normalize(normalize);
        let fitted =
            Ridge::fit(&matrix(x)?, &y.to_vec(), parameters).map_err(PipelineError::training)?;
        Ok(Model::RidgeRegression(fitted))
    }
}
