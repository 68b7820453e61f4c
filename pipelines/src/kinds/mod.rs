//! Model kinds: each is one module behind [`ModelKind`] — the `[model.params]` it reads
//! (typed, defaults filled in, every problem under its full key), how it is fitted, and how
//! it is prepared for serving — listed once in [`registry`].
//!
//! A kind trains into one of the Information Core's stored forms
//! (`dcpilot_info_core::Model`: linear coefficients, flat trees, boosted trees, a table, …),
//! which the foreground prepares and serves without this crate. A new kind that trains into
//! an existing form touches its module, its [`ModelSpec`] variant and [`registry`]; a new
//! stored form is a change to the Information Core's format.

pub mod colouring;
pub mod decision_tree;
pub mod gradient_boosting;
pub mod knn;
pub mod linear_regression;
pub mod quantile_table;
pub mod random_forest;
pub mod ridge_regression;

use dcpilot_info_core::{DenseMatrix, Model, PreparedModel};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::error::{PipelineError, Result};
use crate::spec::{ModelSpec, Problems};

/// One model kind.
pub trait ModelKind: Send + Sync {
    /// Its name in a spec's `model.kind`.
    fn name(&self) -> &'static str;

    /// The `[model.params]` keys it reads.
    fn params(&self) -> &'static [&'static str];

    /// Its hyperparameters from `params` (only its own keys), defaults filled in; values out
    /// of range are added to `problems` under their full key (`model.params.n_trees`).
    /// `None` when the kind cannot be built from them.
    fn spec(&self, params: toml::Table, problems: &mut Problems) -> Option<ModelSpec>;

    /// Fits `spec` (of this kind) on `x` (rows, at least one) and `y`.
    fn fit(&self, spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model>;

    /// The stored model prepared for rows of `features` values, as the foreground serves it.
    fn prepare(&self, model: Model, features: usize) -> Result<PreparedModel> {
        Ok(PreparedModel::prepare(model, features)?)
    }

    /// One prediction of a prepared model.
    fn predict(&self, prepared: &PreparedModel, row: &[f64]) -> Result<f64> {
        Ok(prepared.predict(row)?)
    }
}

/// Every model kind, in the order specs and errors list them.
pub fn registry() -> [&'static dyn ModelKind; 8] {
    [
        &linear_regression::LinearRegression,
        &ridge_regression::RidgeRegression,
        &decision_tree::DecisionTree,
        &random_forest::RandomForest,
        &gradient_boosting::GradientBoosting,
        &knn::Knn,
        &quantile_table::QuantileTable,
        &colouring::Colouring,
    ]
}

/// The kind called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn ModelKind> {
    registry().into_iter().find(|k| k.name() == name)
}

/// The kind of `spec` (a new `ModelSpec` variant does not compile without one).
pub fn of(spec: &ModelSpec) -> &'static dyn ModelKind {
    match spec {
        ModelSpec::LinearRegression => &linear_regression::LinearRegression,
        ModelSpec::RidgeRegression { .. } => &ridge_regression::RidgeRegression,
        ModelSpec::DecisionTree { .. } => &decision_tree::DecisionTree,
        ModelSpec::RandomForest { .. } => &random_forest::RandomForest,
        ModelSpec::GradientBoosting { .. } => &gradient_boosting::GradientBoosting,
        ModelSpec::Knn { .. } => &knn::Knn,
        ModelSpec::QuantileTable { .. } => &quantile_table::QuantileTable,
        ModelSpec::Colouring { .. } => &colouring::Colouring,
    }
}

/// Every parameter any kind reads, each once, in registry order.
pub fn every_param() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for param in registry().iter().flat_map(|k| k.params()) {
        if !all.contains(param) {
            all.push(param);
        }
    }
    all
}

/// Fits `spec` on `x` (rows) and `y` with its kind.
pub fn fit(spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<Model> {
    if x.is_empty() || x.len() != y.len() {
        return Err(PipelineError::Data(format!(
            "{} feature rows for {} targets",
            x.len(),
            y.len()
        )));
    }
    of(spec).fit(spec, x, y)
}

/// Reads a kind's `[model.params]` into `T` (fields optional), reporting every type error
/// under `model.params.<key>` and reading the rest again without that key.
pub(crate) fn read_params<T: DeserializeOwned + Default>(
    mut table: toml::Table,
    problems: &mut Problems,
) -> T {
    loop {
        let result: std::result::Result<T, serde_path_to_error::Error<toml::de::Error>> =
            serde_path_to_error::deserialize(toml::Value::Table(table.clone()));
        let error = match result {
            Ok(params) => return params,
            Err(error) => error,
        };
        let key = error.path().iter().find_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
        problems.add(
            format!("model.params.{}", error.path()),
            error.inner().message(),
        );
        match key.and_then(|k| table.remove(&k)) {
            Some(_) => {}
            None => return T::default(),
        }
    }
}

/// smartcore's copy of the rows (forust-ml reads its own).
pub(crate) fn matrix(x: &[Vec<f64>]) -> Result<DenseMatrix<f64>> {
    DenseMatrix::from_2d_vec(&x.to_vec()).map_err(PipelineError::training)
}

/// A count parameter as the estimator takes it.
pub(crate) fn count(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name_and_names_are_unique() {
        let names: Vec<&str> = registry().iter().map(|k| k.name()).collect();
        for name in &names {
            assert_eq!(by_name(name).map(|k| k.name()), Some(*name));
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(by_name("xgboost").is_none());
    }

    #[test]
    fn every_kind_builds_its_own_spec_from_no_params() {
        for kind in registry() {
            let mut problems = Problems::default();
            let mut params = toml::Table::new();
            if kind.name() == "quantile_table" {
                params.insert("key".into(), toml::Value::String("workload".into()));
            }
            let spec = kind.spec(params, &mut problems).expect("defaults");
            assert_eq!(spec.kind(), kind.name());
            assert_eq!(of(&spec).name(), kind.name());
            assert!(problems.is_empty(), "{}: {problems:?}", kind.name());
        }
    }

    #[test]
    fn type_errors_name_the_key_and_the_rest_is_read() {
        let mut problems = Problems::default();
        let params: toml::Table = "n_trees = \"many\"\nmax_depth = 4".parse().expect("toml");
        let spec = random_forest::RandomForest
            .spec(params, &mut problems)
            .expect("spec");
        assert!(
            matches!(
                spec,
                ModelSpec::RandomForest {
                    n_trees: 50,
                    max_depth: Some(4),
                    ..
                }
            ),
            "{spec:?}"
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
