//! `linear_regression`: ordinary least squares (smartcore). No parameters.

use dcpilot_info_core::model::Linear;
use dcpilot_info_core::Model;
use serde::Deserialize;
use smartcore::linear::linear_regression::LinearRegressionParameters;

use super::{matrix, read_params, ModelKind};
use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// Ordinary least squares.
pub struct LinearRegression;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

impl ModelKind for LinearRegression {
    fn name(&self) -> &'static str {
        "linear_regression"
    }

    fn params(&self) -> &'static [&'static str] {
        &[]
    }

    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec> {
        let Params {} = read_params(params, problems);
        Some(ModelSpec::LinearRegression)
    }

    fn fit(&self, _spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
        let fitted = Linear::fit(
            &matrix(x)?,
            &y.to_vec(),
            LinearRegressionParameters::default(),
        )
        .map_err(PipelineError::training)?;
        Ok(Model::LinearRegression(fitted))
    }
}
