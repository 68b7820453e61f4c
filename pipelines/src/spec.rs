//! The job spec: one TOML file per background job, validated with every problem reported at
//! once, each naming its file and key.
//!
//! ```toml
//! name = "cpu-demand"
//! description = "a VM's CPU usage 30 minutes ahead"
//!
//! [source]
//! sql = "SELECT ts, cpu_now, hour, cpu_next, cpu_now AS last_value FROM ..."
//! time_column = "ts"
//!
//! [model]
//! kind = "random_forest"          # linear_regression | ridge_regression | decision_tree | random_forest | knn
//! features = ["cpu_now", "hour"]
//! target = "cpu_next"
//! [model.params]
//! n_trees = 50
//! max_depth = 12
//!
//! [trigger]
//! every_secs = 300                # and/or after_rows = 10000
//!
//! [training]
//! window_secs = 604800
//! holdout_fraction = 0.2          # the newest 20% of rows, by time
//! metric = "mae"                  # mae | mape | rmse | r2
//!
//! [promotion]
//! baseline_columns = ["last_value"]   # columns of the query holding naive predictions
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::metrics::ErrorMetric;

/// A model kind with its hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Ordinary least squares.
    LinearRegression,
    /// Ridge regression.
    RidgeRegression {
        /// L2 penalty (> 0).
        alpha: f64,
        /// Standardize features first.
        normalize: bool,
    },
    /// One CART tree.
    DecisionTree {
        /// Depth limit.
        max_depth: Option<u16>,
        /// Minimum rows per leaf.
        min_samples_leaf: usize,
    },
    /// Bagged trees.
    RandomForest {
        /// Trees.
        n_trees: usize,
        /// Depth limit.
        max_depth: Option<u16>,
        /// Minimum rows per leaf.
        min_samples_leaf: usize,
        /// Seed (fixed: training is reproducible).
        seed: u64,
    },
    /// k nearest neighbours.
    Knn {
        /// Neighbours.
        k: usize,
    },
    /// Per-key values at chosen quantiles of each feature column, from a histogram whose
    /// weights halve every `half_life_secs` (as Kubernetes' VPA recommender does): the
    /// rule-of-thumb table. Reads no target; each baseline column `b` names the per-row
    /// columns `b_<feature>`.
    QuantileTable {
        /// Column holding the key (e.g. the workload).
        key: String,
        /// Quantiles stored, ascending in (0, 1].
        quantiles: Vec<f64>,
        /// The quantile judged against the holdout (one of `quantiles`).
        judged_quantile: f64,
        /// Half-life of a row's weight, by event time.
        half_life_secs: u64,
    },
}

impl ModelSpec {
    /// Whether the kind is the per-key quantile table (no target, keyed rows).
    pub fn is_table(&self) -> bool {
        matches!(self, Self::QuantileTable { .. })
    }
}

/// When a job runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    /// Every this many seconds.
    pub every_secs: Option<u64>,
    /// After this many new rows in the source tables.
    pub after_rows: Option<u64>,
}

/// A validated job spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSpec {
    /// Job name, also the name of the model it publishes.
    pub name: String,
    /// What it learns, for humans.
    pub description: String,
    /// DataFusion SQL over `telemetry` and `landscape`.
    pub sql: String,
    /// The query's event-time column (training window, holdout).
    pub time_column: String,
    /// Estimator and hyperparameters.
    pub model: ModelSpec,
    /// Feature columns, in the order the model reads them.
    pub features: Vec<String>,
    /// Target column.
    pub target: String,
    /// When to run.
    pub trigger: Trigger,
    /// Event time of training data, behind the newest row.
    pub window_secs: u64,
    /// Share of the newest rows held out for validation.
    pub holdout_fraction: f64,
    /// Error metric.
    pub metric: ErrorMetric,
    /// Query columns holding naive baseline predictions; the best one is the bar to beat.
    pub baseline_columns: Vec<String>,
    /// Baselines that are the same estimator trained on fewer features (e.g. without the
    /// co-runner features: "a model that ignores interference"): name → features.
    pub baseline_models: Vec<(String, Vec<String>)>,
}

/// Every problem of a spec file, each `file: key: what`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct SpecErrors {
    /// One line per problem.
    pub problems: Vec<String>,
}

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "name",
            "description",
            "source",
            "model",
            "trigger",
            "training",
            "promotion",
        ],
    ),
    ("source", &["sql", "time_column"]),
    ("model", &["kind", "features", "target", "params"]),
    ("trigger", &["every_secs", "after_rows"]),
    ("training", &["window_secs", "holdout_fraction", "metric"]),
    ("promotion", &["baseline_columns", "baseline_models"]),
];

const KIND_PARAMS: &[(&str, &[&str])] = &[
    ("linear_regression", &[]),
    ("ridge_regression", &["alpha", "normalize"]),
    ("decision_tree", &["max_depth", "min_samples_leaf"]),
    (
        "random_forest",
        &["n_trees", "max_depth", "min_samples_leaf", "seed"],
    ),
    ("knn", &["k"]),
    (
        "quantile_table",
        &["key", "quantiles", "judged_quantile", "half_life_secs"],
    ),
];

/// Collects problems while reading typed values out of a TOML document.
struct Reader<'a> {
    file: &'a str,
    doc: &'a toml::Table,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    fn problem(&mut self, key: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{}: {key}: {what}", self.file));
    }

    fn value(&self, key: &str) -> Option<&'a toml::Value> {
        let mut parts = key.split('.');
        let mut value = self.doc.get(parts.next()?)?;
        for part in parts {
            value = value.as_table()?.get(part)?;
        }
        Some(value)
    }

    fn string(&mut self, key: &str, required: bool) -> Option<String> {
        match self.value(key) {
            None if required => {
                self.problem(key, "missing");
                None
            }
            None => None,
            Some(toml::Value::String(s)) if s.trim().is_empty() => {
                self.problem(key, "must not be empty");
                None
            }
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        match self.value(key) {
            None => {
                self.problem(key, "missing");
                None
            }
            Some(toml::Value::Array(items)) => {
                let strings: Vec<String> = items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                if strings.len() != items.len() {
                    self.problem(key, "expected an array of strings");
                    return None;
                }
                if strings.is_empty() {
                    self.problem(key, "must list at least one column");
                    return None;
                }
                let unique: BTreeSet<&String> = strings.iter().collect();
                if unique.len() != strings.len() {
                    self.problem(key, "lists a column twice");
                }
                Some(strings)
            }
            Some(other) => {
                self.problem(
                    key,
                    format!("expected an array, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn numbers(&mut self, key: &str) -> Option<Vec<f64>> {
        match self.value(key)? {
            toml::Value::Array(items) => {
                let numbers: Vec<f64> = items
                    .iter()
                    .filter_map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
                    .collect();
                if numbers.len() != items.len() {
                    self.problem(key, "expected an array of numbers");
                    return None;
                }
                Some(numbers)
            }
            other => {
                self.problem(
                    key,
                    format!("expected an array, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn integer(&mut self, key: &str, min: i64) -> Option<u64> {
        match self.value(key)? {
            toml::Value::Integer(i) if *i >= min => Some(*i as u64),
            toml::Value::Integer(i) => {
                self.problem(key, format!("must be at least {min}, got {i}"));
                None
            }
            other => {
                self.problem(
                    key,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn float(&mut self, key: &str) -> Option<f64> {
        match self.value(key)? {
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            other => {
                self.problem(
                    key,
                    format!("expected a number, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.value(key)? {
            toml::Value::Boolean(b) => Some(*b),
            other => {
                self.problem(
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn unknown_keys(&mut self) {
        for (section, known) in SECTIONS {
            let table = if section.is_empty() {
                Some(self.doc)
            } else {
                match self.value(section) {
                    Some(toml::Value::Table(t)) => Some(t),
                    Some(other) => {
                        self.problem(
                            section,
                            format!("expected a table, found {}", other.type_str()),
                        );
                        None
                    }
                    None => None,
                }
            };
            for key in table.into_iter().flat_map(|t| t.keys()) {
                if !known.contains(&key.as_str()) {
                    let path = if section.is_empty() {
                        key.clone()
                    } else {
                        format!("{section}.{key}")
                    };
                    self.problem(
                        &path,
                        format!("unknown key (expected one of: {})", known.join(", ")),
                    );
                }
            }
        }
    }
}

impl JobSpec {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Self, SpecErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecErrors {
            problems: vec![format!("{file}: {e}")],
        })?;
        Self::parse(&text, &file)
    }

    /// Validates a spec's text; `file` names it in problems.
    pub fn parse(text: &str, file: &str) -> Result<Self, SpecErrors> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| SpecErrors {
            problems: vec![format!("{file}: {}", e.to_string().trim_end())],
        })?;
        let mut r = Reader {
            file,
            doc: &doc,
            problems: Vec::new(),
        };
        r.unknown_keys();
        let name = r.string("name", true);
        if let Some(n) = &name {
            if !dcpilot_info_core::core::valid_name(n) {
                r.problem(
                    "name",
                    "use letters, digits, '-', '_' and '.' (it names the model)",
                );
            }
        }
        let description = r.string("description", false).unwrap_or_default();
        let sql = r.string("source.sql", true);
        let time_column = r
            .string("source.time_column", false)
            .unwrap_or_else(|| "ts".into());
        let features = r.strings("model.features");
        let model = read_model(&mut r);
        // By the kind's name: a table with bad params is still a table.
        let is_table =
            r.value("model.kind").and_then(toml::Value::as_str) == Some("quantile_table");
        let target = if is_table {
            if r.value("model.target").is_some() {
                r.problem(
                    "model.target",
                    "a quantile_table has no target (it summarises the features)",
                );
            }
            Some(String::new())
        } else {
            r.string("model.target", true)
        };
        if let (Some(f), Some(t)) = (&features, &target) {
            if f.contains(t) {
                r.problem(
                    "model.target",
                    "is also a feature (the model would see the answer)",
                );
            }
        }
        let trigger = Trigger {
            every_secs: r.integer("trigger.every_secs", 1),
            after_rows: r.integer("trigger.after_rows", 1),
        };
        if trigger.every_secs.is_none() && trigger.after_rows.is_none() {
            r.problem("trigger", "set every_secs, after_rows or both");
        }
        let window_secs = r.integer("training.window_secs", 1).unwrap_or(7 * 86_400);
        let holdout_fraction = r.float("training.holdout_fraction").unwrap_or(0.2);
        if !(holdout_fraction > 0.0 && holdout_fraction <= 0.5) {
            r.problem(
                "training.holdout_fraction",
                format!("must be in (0, 0.5], got {holdout_fraction}"),
            );
        }
        let metric = match r.string("training.metric", false).as_deref() {
            None => Some(ErrorMetric::Mae),
            Some(m) => match m.parse::<ErrorMetric>() {
                Ok(metric) => Some(metric),
                Err(e) => {
                    r.problem("training.metric", e);
                    None
                }
            },
        };
        let baseline_columns = r.strings("promotion.baseline_columns");
        if let (Some(b), Some(f)) = (&baseline_columns, &features) {
            for column in b.iter().filter(|c| f.contains(c)) {
                r.problem(
                    "promotion.baseline_columns",
                    format!(
                        "{column:?} is also a feature; a baseline column holds a naive prediction"
                    ),
                );
            }
        }
        let baseline_models = read_baseline_models(&mut r, features.as_deref(), is_table);
        match (name, sql, features, target, model, metric, baseline_columns) {
            (
                Some(name),
                Some(sql),
                Some(features),
                Some(target),
                Some(model),
                Some(metric),
                Some(baseline_columns),
            ) if r.problems.is_empty() => Ok(Self {
                name,
                description,
                sql,
                time_column,
                model,
                features,
                target,
                trigger,
                window_secs,
                holdout_fraction,
                metric,
                baseline_columns,
                baseline_models,
            }),
            _ => Err(SpecErrors {
                problems: r.problems,
            }),
        }
    }
}

fn read_model(r: &mut Reader<'_>) -> Option<ModelSpec> {
    let kind = r.string("model.kind", true)?;
    let Some((_, params)) = KIND_PARAMS.iter().find(|(k, _)| *k == kind) else {
        let kinds: Vec<&str> = KIND_PARAMS.iter().map(|(k, _)| *k).collect();
        r.problem(
            "model.kind",
            format!(
                "unknown kind {kind:?} (expected one of: {})",
                kinds.join(", ")
            ),
        );
        return None;
    };
    match r.value("model.params") {
        Some(toml::Value::Table(t)) => {
            for key in t.keys().filter(|k| !params.contains(&k.as_str())) {
                r.problem(
                    &format!("model.params.{key}"),
                    format!(
                        "not a parameter of {kind} (expected: {})",
                        if params.is_empty() {
                            "none".to_string()
                        } else {
                            params.join(", ")
                        }
                    ),
                );
            }
        }
        Some(other) => r.problem(
            "model.params",
            format!("expected a table, found {}", other.type_str()),
        ),
        None => {}
    }
    let depth = |r: &mut Reader<'_>| {
        r.integer("model.params.max_depth", 1)
            .map(|d| u16::try_from(d).unwrap_or(u16::MAX))
    };
    let model = match kind.as_str() {
        "linear_regression" => ModelSpec::LinearRegression,
        "ridge_regression" => {
            let alpha = r.float("model.params.alpha").unwrap_or(1.0);
            if !(alpha > 0.0 && alpha.is_finite()) {
                r.problem(
                    "model.params.alpha",
                    format!("must be positive, got {alpha}"),
                );
            }
            ModelSpec::RidgeRegression {
                alpha,
                normalize: r.boolean("model.params.normalize").unwrap_or(true),
            }
        }
        "decision_tree" => ModelSpec::DecisionTree {
            max_depth: depth(r),
            min_samples_leaf: r.integer("model.params.min_samples_leaf", 1).unwrap_or(1) as usize,
        },
        "random_forest" => ModelSpec::RandomForest {
            n_trees: r.integer("model.params.n_trees", 1).unwrap_or(50) as usize,
            max_depth: depth(r),
            min_samples_leaf: r.integer("model.params.min_samples_leaf", 1).unwrap_or(1) as usize,
            seed: r.integer("model.params.seed", 0).unwrap_or(0),
        },
        "quantile_table" => read_table(r)?,
        _ => ModelSpec::Knn {
            k: r.integer("model.params.k", 1).unwrap_or(5) as usize,
        },
    };
    Some(model)
}

/// `[promotion.baseline_models]`: name = [features], each a strict, non-empty subset.
fn read_baseline_models(
    r: &mut Reader<'_>,
    features: Option<&[String]>,
    is_table: bool,
) -> Vec<(String, Vec<String>)> {
    let table = match r.value("promotion.baseline_models") {
        None => return Vec::new(),
        Some(toml::Value::Table(t)) => t,
        Some(other) => {
            r.problem(
                "promotion.baseline_models",
                format!(
                    "expected a table of name = [features], found {}",
                    other.type_str()
                ),
            );
            return Vec::new();
        }
    };
    if is_table {
        r.problem(
            "promotion.baseline_models",
            "not available for a quantile_table (it has no estimator to retrain)",
        );
        return Vec::new();
    }
    let mut models = Vec::new();
    for name in table.keys() {
        let key = format!("promotion.baseline_models.{name}");
        let Some(subset) = r.strings(&key) else {
            continue;
        };
        let Some(features) = features else {
            continue;
        };
        let unknown: Vec<&String> = subset.iter().filter(|f| !features.contains(f)).collect();
        if !unknown.is_empty() {
            r.problem(&key, format!("{unknown:?} are not in model.features"));
        } else if subset.is_empty() || subset.len() >= features.len() {
            r.problem(&key, "must list some, not all, of model.features");
        } else {
            models.push((name.clone(), subset));
        }
    }
    models
}

fn read_table(r: &mut Reader<'_>) -> Option<ModelSpec> {
    let key = r.string("model.params.key", true);
    let quantiles = r
        .numbers("model.params.quantiles")
        .unwrap_or_else(|| vec![0.5, 0.9, 0.99]);
    let valid = !quantiles.is_empty()
        && quantiles.windows(2).all(|w| w[0] < w[1])
        && quantiles.iter().all(|&q| q > 0.0 && q <= 1.0);
    if !valid {
        r.problem(
            "model.params.quantiles",
            format!("must ascend strictly within (0, 1], got {quantiles:?}"),
        );
    }
    let judged_quantile = r.float("model.params.judged_quantile").unwrap_or(0.9);
    if !quantiles.contains(&judged_quantile) {
        r.problem(
            "model.params.judged_quantile",
            format!("{judged_quantile} is not one of the quantiles {quantiles:?}"),
        );
    }
    Some(ModelSpec::QuantileTable {
        key: key?,
        quantiles,
        judged_quantile,
        half_life_secs: r
            .integer("model.params.half_life_secs", 1)
            .unwrap_or(86_400),
    })
}

impl JobSpec {
    /// The query columns holding naive predictions: the baseline columns themselves, or
    /// for a quantile table `<baseline>_<feature>` for each feature.
    pub fn baseline_query_columns(&self) -> Vec<String> {
        if self.model.is_table() {
            self.baseline_columns
                .iter()
                .flat_map(|b| self.features.iter().map(move |f| format!("{b}_{f}")))
                .collect()
        } else {
            self.baseline_columns.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "cpu-demand"
[source]
sql = "SELECT 1"
[model]
kind = "random_forest"
features = ["cpu_now", "hour"]
target = "cpu_next"
[model.params]
n_trees = 20
max_depth = 8
[trigger]
every_secs = 300
[training]
metric = "rmse"
[promotion]
baseline_columns = ["last_value"]
"#;

    #[test]
    fn a_good_spec_with_defaults() {
        let spec = JobSpec::parse(GOOD, "good.toml").expect("valid");
        assert_eq!(spec.name, "cpu-demand");
        assert_eq!(
            spec.model,
            ModelSpec::RandomForest {
                n_trees: 20,
                max_depth: Some(8),
                min_samples_leaf: 1,
                seed: 0
            }
        );
        assert_eq!(spec.metric, ErrorMetric::Rmse);
        assert_eq!(spec.holdout_fraction, 0.2);
        assert_eq!(spec.time_column, "ts");
    }

    #[test]
    fn baseline_models_are_strict_subsets_of_the_features() {
        let good = format!("{GOOD}baseline_models = {{ hour_only = [\"hour\"] }}\n");
        let spec = JobSpec::parse(&good, "g.toml").expect("valid");
        assert_eq!(
            spec.baseline_models,
            vec![("hour_only".to_string(), vec!["hour".to_string()])]
        );
        let bad = format!(
            "{GOOD}baseline_models = {{ all = [\"cpu_now\", \"hour\"], odd = [\"load\"] }}\n"
        );
        let err = JobSpec::parse(&bad, "b.toml").expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains("b.toml: promotion.baseline_models.all: must list some, not all"),
            "{text}"
        );
        assert!(
            text.contains(
                "b.toml: promotion.baseline_models.odd: [\"load\"] are not in model.features"
            ),
            "{text}"
        );
    }

    #[test]
    fn quantile_tables_take_no_target_and_check_their_quantiles() {
        let text = r#"
name = "sizes"
[source]
sql = "SELECT 1"
[model]
kind = "quantile_table"
features = ["cores"]
target = "y"
[model.params]
quantiles = [0.9, 0.5]
judged_quantile = 0.95
[trigger]
after_rows = 10
[promotion]
baseline_columns = ["provisioned"]
"#;
        let err = JobSpec::parse(text, "t.toml").expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "t.toml: model.target: a quantile_table has no target",
            "t.toml: model.params.key: missing",
            "t.toml: model.params.quantiles: must ascend strictly",
            "t.toml: model.params.judged_quantile: 0.95 is not one of the quantiles",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }

    #[test]
    fn every_problem_at_once_with_file_and_key() {
        let bad = r#"
name = "no spaces allowed"
colour = "blue"
[source]
sql = ""
[model]
kind = "random_forest"
features = ["a", "a", "y"]
target = "y"
[model.params]
n_trees = 0
learning_rate = 0.1
[trigger]
[training]
holdout_fraction = 0.9
metric = "accuracy"
[promotion]
baseline_columns = ["a"]
"#;
        let err = JobSpec::parse(bad, "jobs/bad.toml").expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "jobs/bad.toml: name:",
            "jobs/bad.toml: colour: unknown key",
            "source.sql: must not be empty",
            "model.features: lists a column twice",
            "model.target: is also a feature",
            "model.params.n_trees: must be at least 1",
            "model.params.learning_rate: not a parameter of random_forest",
            "trigger: set every_secs",
            "training.holdout_fraction",
            "training.metric",
            "promotion.baseline_columns",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert!(err.problems.len() >= 11, "{text}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = JobSpec::parse("name = ", "x.toml").expect_err("syntax");
        assert!(err.to_string().starts_with("x.toml: "), "{err}");
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let text = GOOD
            .replace("random_forest", "xgboost")
            .replace("n_trees = 20\nmax_depth = 8\n", "");
        let err = JobSpec::parse(&text, "k.toml").expect_err("kind");
        assert!(
            err.to_string()
                .contains("linear_regression, ridge_regression"),
            "{err}"
        );
    }
}
