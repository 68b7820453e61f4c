//! The job spec: one TOML file per background job, validated with every problem reported at
//! once, each naming its file and key.
//!
//! The file is read by serde into its own shape, `SpecFile` (unknown keys and mistyped
//! values are errors named by their full key, through `serde_path_to_error`), checked by
//! `SpecFile::problems`, then turned into the flat [`JobSpec`] the jobs read.
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
//! kind = "random_forest"          # linear_regression | ridge_regression | decision_tree | random_forest | gradient_boosting | knn
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
//!
//! [live]                          # judging the served version on rows it never saw
//! every_secs = 300
//! window_secs = 86400             # sliding window of judged rows, event time
//! min_rows = 30                   # fewer: no verdict yet
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::colouring::{RankParams, Window};
use crate::kinds::{self, ModelKind as _};
use serde::{Deserialize, Serialize};
use serde_path_to_error::Segment;

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
        /// Features a split chooses from (`None`: smartcore's ⌊√features⌋).
        features_per_split: Option<usize>,
    },
    /// Gradient-boosted trees on squared loss (forust-ml, histogram-based as XGBoost's
    /// `hist`; trained on one thread, reproducibly).
    GradientBoosting {
        /// Trees (boosting rounds).
        n_trees: usize,
        /// Shrinkage of each tree's values, in (0, 1].
        learning_rate: f64,
        /// Depth limit of each tree.
        max_depth: usize,
        /// Minimum rows per leaf (the hessian sum, under squared loss).
        min_samples_leaf: usize,
        /// L2 penalty on leaf values (≥ 0).
        l2: f64,
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
    /// Not a model: colours the landscape. Each run scores every entity of the query's
    /// `(ts, entity, metric, value)` rows around the newest moment it can judge and ranks
    /// root causes over the landscape graph (`landscape_nodes`, `landscape_edges`); the
    /// colouring is published as a new version each time.
    Colouring {
        /// The detector's registry name.
        detector: String,
        /// The windows around the judged moment.
        window: Window,
        /// How the ranking weighs the graph.
        rank: RankParams,
        /// A colouring that tells the same story as the served one (the same anomalous
        /// entities and hosts, the same top five causes) is published again only once the
        /// served one is this old: the models topic is not flooded, and the served one
        /// never goes stale while telemetry flows.
        republish_secs: u64,
    },
}

impl ModelSpec {
    /// The kind's name (`model.kind`).
    pub fn kind(&self) -> &'static str {
        kinds::of(self).name()
    }

    /// Whether the kind is the per-key quantile table (no target, keyed rows).
    pub fn is_table(&self) -> bool {
        matches!(self, Self::QuantileTable { .. })
    }

    /// Whether the kind is a landscape colouring (no features, target or baselines).
    pub fn is_colouring(&self) -> bool {
        matches!(self, Self::Colouring { .. })
    }
}

/// When a job runs; the spec's `[trigger]` (at least one of the two, each at least 1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// How the target is transformed for fitting (predictions are transformed back).
    pub target_transform: TargetTransform,
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
    /// Live judgement of the served version (`None` for tables and colourings, which are
    /// not predictions whose truth arrives later).
    pub live: Option<Live>,
}

/// `[live]`: how the served version is judged on the rows whose truth arrived after its
/// training window, next to the baseline columns; worse than the best one, it is demoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Live {
    /// Judge at all (default true).
    pub enabled: bool,
    /// How often, seconds (default 300).
    pub every_secs: u64,
    /// The sliding window of judged rows behind the newest, event time (default 1 day).
    pub window_secs: u64,
    /// Fewer rows than this in the window: no verdict (default 30).
    pub min_rows: u64,
    /// An unchanged verdict is published again after this long, so the live errors
    /// others read stay fresh (default 3600).
    pub republish_secs: u64,
    /// A demoted version is re-promoted only when its error is below the best baseline's
    /// by this share, in [0, 1) (default 0.02: hysteresis against flapping).
    pub repromote_margin: f64,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            enabled: true,
            every_secs: 300,
            window_secs: 86_400,
            min_rows: 30,
            republish_secs: 3600,
            repromote_margin: 0.02,
        }
    }
}

/// Every problem of a spec file, each `file: key: what`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct SpecErrors {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// A spec file as written. Required keys are `Option`s so that a missing one is reported by
/// [`SpecFile::problems`] along with everything else.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SpecFile {
    /// Job name = the model's name in the Information Core (required; letters, digits, '-',
    /// '_' and '.').
    name: Option<String>,
    /// What it learns, for humans (`jobs list`).
    description: Option<String>,
    /// `[source]`: the query.
    source: Source,
    /// `[model]`: the estimator, its columns and hyperparameters.
    model: ModelSection,
    /// `[trigger]`: when to run.
    trigger: Trigger,
    /// `[training]`: the window, the holdout and the metric.
    training: Training,
    /// `[promotion]`: the baselines a new model has to beat.
    promotion: Promotion,
    /// `[live]`: judging the served version as the truth arrives.
    live: Option<Live>,
}

/// `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Source {
    /// DataFusion SQL over `telemetry` and `landscape` (required).
    sql: Option<String>,
    /// The query's event-time column: training window, holdout (default `ts`).
    time_column: String,
}

impl Default for Source {
    fn default() -> Self {
        Self {
            sql: None,
            time_column: "ts".into(),
        }
    }
}

/// `[model]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ModelSection {
    /// The estimator (required): a kind of [`crate::kinds::registry`].
    kind: Option<String>,
    /// Query columns the model reads, in that order (required).
    features: Option<Vec<String>>,
    /// Query column the model predicts (required; a `quantile_table` has none).
    target: Option<String>,
    /// `log`: fit the estimator on ln(target) and predict exp of it (targets must be
    /// positive); `none` (default).
    target_transform: TargetTransform,
    /// `[model.params]`: the kind's hyperparameters, read by the kind.
    params: toml::Table,
}

/// `model.target_transform`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetTransform {
    /// The target as it is.
    #[default]
    None,
    /// ln(target): for positive ratios with a heavy tail (a slowdown of 1.1× or 80×).
    Log,
}

/// `[training]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Training {
    /// Event time of training rows, behind the newest, at least 1 (default 7 days).
    window_secs: u64,
    /// The newest share of rows held out, by time, in (0, 0.5] (default 0.2).
    holdout_fraction: f64,
    /// Error metric: `mae`, `mape`, `rmse` or `r2` (default `mae`).
    metric: ErrorMetric,
}

impl Default for Training {
    fn default() -> Self {
        Self {
            window_secs: 7 * 86_400,
            holdout_fraction: 0.2,
            metric: ErrorMetric::Mae,
        }
    }
}

/// `[promotion]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Promotion {
    /// Query columns holding naive predictions; the best one is the bar (required).
    baseline_columns: Option<Vec<String>>,
    /// `{ name = [features] }`: the same estimator trained on only those features (some,
    /// not all, of `model.features`) is a baseline too. Not for a `quantile_table`.
    baseline_models: Option<BTreeMap<String, Vec<String>>>,
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
        let mut problems = Vec::new();
        let (spec, dropped) = deserialize_every_error(doc, file, &mut problems);
        let Some(spec) = spec else {
            return Err(SpecErrors { problems });
        };
        // A dropped key was reported already; what its absence implies is not news.
        let reported = |key: &str| {
            dropped.iter().any(|d| {
                key.strip_prefix(d.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
        };
        problems.extend(
            spec.problems()
                .into_iter()
                .filter(|(key, _)| !reported(key))
                .map(|(key, what)| format!("{file}: {key}: {what}")),
        );
        if !problems.is_empty() {
            return Err(SpecErrors { problems });
        }
        spec.into_spec().ok_or_else(|| SpecErrors {
            problems: vec![format!("{file}: incomplete spec")],
        })
    }
}

/// Deserializes `doc`, reporting every type error and unknown key rather than the first:
/// each is reported under its full key (`model.params.n_trees: invalid type: ...`), that key
/// is dropped, and the rest is deserialized again. Returns the file (`None` if an error
/// names no key to drop) and the keys dropped.
fn deserialize_every_error(
    mut doc: toml::Table,
    file: &str,
    problems: &mut Vec<String>,
) -> (Option<SpecFile>, Vec<String>) {
    let mut dropped = Vec::new();
    loop {
        let result: Result<SpecFile, serde_path_to_error::Error<toml::de::Error>> =
            serde_path_to_error::deserialize(toml::Value::Table(doc.clone()));
        let error = match result {
            Ok(spec) => return (Some(spec), dropped),
            Err(error) => error,
        };
        problems.push(format!(
            "{file}: {}: {}",
            error.path(),
            unknown_key(error.inner().message())
        ));
        // The key holding the bad value (`model.features` for `model.features[2]`).
        let keys: Vec<&str> = error
            .path()
            .iter()
            .map_while(|segment| match segment {
                Segment::Map { key } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        if remove(&mut doc, &keys).is_none() {
            return (None, dropped);
        }
        dropped.push(keys.join("."));
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" in the spec's words, "unknown key
/// (expected one of: a, b)"; any other message as it is.
fn unknown_key(message: &str) -> String {
    match message.strip_prefix("unknown field `") {
        // After the field: ", expected one of ", "a", ", ", "b", ...
        Some(rest) => {
            let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
            format!("unknown key (expected one of: {})", expected.join(", "))
        }
        None => message.to_string(),
    }
}

/// Removes the value at `keys` from `doc`.
fn remove(doc: &mut toml::Table, keys: &[&str]) -> Option<toml::Value> {
    let (last, parents) = keys.split_last()?;
    let mut table = doc;
    for key in parents {
        table = table.get_mut(*key)?.as_table_mut()?;
    }
    table.remove(*last)
}

/// Problems of a spec as `(key, what)`, gathered so that all are reported at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    /// Notes a problem with `key`.
    pub fn add(&mut self, key: impl Into<String>, what: impl std::fmt::Display) {
        self.0.push((key.into(), what.to_string()));
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A string that must not be blank (nor missing, if `required`); `Some` if usable.
    pub fn text<'a>(
        &mut self,
        key: &str,
        value: Option<&'a str>,
        required: bool,
    ) -> Option<&'a str> {
        match value {
            None if required => self.add(key, "missing"),
            None => {}
            Some(s) if s.trim().is_empty() => self.add(key, "must not be empty"),
            Some(s) => return Some(s),
        }
        None
    }

    /// A required list of columns, non-empty and without repeats; `Some` if usable.
    fn columns<'a>(&mut self, key: &str, value: Option<&'a [String]>) -> Option<&'a [String]> {
        match value {
            None => self.add(key, "missing"),
            Some([]) => self.add(key, "must list at least one column"),
            Some(columns) => {
                if columns.iter().collect::<BTreeSet<_>>().len() != columns.len() {
                    self.add(key, "lists a column twice");
                }
                return Some(columns);
            }
        }
        None
    }

    /// A key this kind does not take: a problem when it is set.
    fn refuse(&mut self, key: &str, set: bool, why: &str) {
        if set {
            self.add(key, why);
        }
    }

    /// A count that must be at least 1.
    pub fn at_least_one(&mut self, key: &str, value: u64) {
        if value < 1 {
            self.add(key, format!("must be at least 1, got {value}"));
        }
    }
}

impl ModelSection {
    /// The model `kind` and its `params` describe, parameters left out at their defaults;
    /// problems with the parameters go to `p`.
    fn spec(&self, p: &mut Problems) -> Option<ModelSpec> {
        let kind = kinds::by_name(self.kind.as_deref()?)?;
        let own: toml::Table = self
            .params
            .iter()
            .filter(|(key, _)| kind.params().contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        kind.spec(own, p)
    }
}

impl SpecFile {
    /// Every problem serde does not see (missing keys, values out of range, columns that
    /// contradict each other), each as `(key, what)`.
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Problems::default();
        if let Some(name) = p.text("name", self.name.as_deref(), true) {
            if !dcpilot_info_core::core::valid_name(name) {
                p.add(
                    "name",
                    "use letters, digits, '-', '_' and '.' (it names the model)",
                );
            }
            if name.ends_with(dcpilot_info_core::live::VERDICT_SUFFIX) {
                p.add(
                    "name",
                    "must not end in `.live`: that names the live verdicts on a model",
                );
            }
        }
        p.text("description", self.description.as_deref(), false);
        p.text("source.sql", self.source.sql.as_deref(), true);
        p.text("source.time_column", Some(&self.source.time_column), true);

        let m = &self.model;
        let is_colouring = m.kind.as_deref() == Some(kinds::colouring::Colouring.name());
        let features = if is_colouring {
            p.refuse(
                "model.features",
                m.features.is_some(),
                "a colouring takes no features (its query yields ts, entity, metric, value)",
            );
            None
        } else {
            p.columns("model.features", m.features.as_deref())
        };
        let kind = m.kind.as_deref().and_then(kinds::by_name);
        match m.kind.as_deref() {
            None => p.add("model.kind", "missing"),
            Some(name) if kind.is_none() => {
                let known: Vec<String> = kinds::registry()
                    .iter()
                    .map(|k| format!("`{}`", k.name()))
                    .collect();
                p.add(
                    "model.kind",
                    format!(
                        "unknown variant `{name}`, expected one of {}",
                        known.join(", ")
                    ),
                );
            }
            Some(_) => {}
        }
        // Keys no kind reads are reported whatever the kind; another kind's only with one.
        let every = kinds::every_param();
        for param in m.params.keys() {
            let what = if !every.contains(&param.as_str()) {
                format!("unknown key (expected one of: {})", every.join(", "))
            } else if let Some(kind) = kind.filter(|k| !k.params().contains(&param.as_str())) {
                let reads = kind.params();
                let expected = if reads.is_empty() {
                    "none".to_string()
                } else {
                    reads.join(", ")
                };
                format!("not a parameter of {} (expected: {expected})", kind.name())
            } else {
                continue;
            };
            p.add(format!("model.params.{param}"), what);
        }
        let model = m.spec(&mut p);
        let is_table = m.kind.as_deref() == Some(kinds::quantile_table::QuantileTable.name());
        if m.target_transform != TargetTransform::None && (is_table || is_colouring) {
            p.add(
                "model.target_transform",
                "only for estimators (a quantile_table or a colouring has no target)",
            );
        }
        let target = if is_table || is_colouring {
            if m.target.is_some() {
                let why = if is_table {
                    "a quantile_table has no target (it summarises the features)"
                } else {
                    "a colouring has no target (it judges every metric)"
                };
                p.add("model.target", why);
            }
            Some("")
        } else {
            p.text("model.target", m.target.as_deref(), true)
        };
        if let (Some(features), Some(target)) = (features, target) {
            if features.iter().any(|f| f == target) {
                p.add(
                    "model.target",
                    "is also a feature (the model would see the answer)",
                );
            }
        }

        let trigger = &self.trigger;
        for (key, value) in [
            ("trigger.every_secs", trigger.every_secs),
            ("trigger.after_rows", trigger.after_rows),
        ] {
            if let Some(value) = value {
                p.at_least_one(key, value);
            }
        }
        if trigger.every_secs.is_none() && trigger.after_rows.is_none() {
            p.add("trigger", "set every_secs, after_rows or both");
        }

        p.at_least_one("training.window_secs", self.training.window_secs);
        if let Some(ModelSpec::Colouring { window, .. }) = &model {
            let needed = window
                .history_secs
                .saturating_add(window.baseline_secs)
                .saturating_add(window.observe_secs);
            if i64::try_from(self.training.window_secs).unwrap_or(i64::MAX) < needed {
                p.add(
                    "training.window_secs",
                    format!(
                        "a colouring reads history_secs + baseline_secs + observe_secs = {needed} s, got {}",
                        self.training.window_secs
                    ),
                );
            }
        }
        let holdout = self.training.holdout_fraction;
        if !(holdout > 0.0 && holdout <= 0.5) {
            p.add(
                "training.holdout_fraction",
                format!("must be in (0, 0.5], got {holdout}"),
            );
        }

        let promotion = &self.promotion;
        let baselines = if is_colouring {
            p.refuse(
                "promotion.baseline_columns",
                promotion.baseline_columns.is_some(),
                "a colouring has no baselines to beat (it is published whenever newer telemetry arrives)",
            );
            None
        } else {
            p.columns(
                "promotion.baseline_columns",
                promotion.baseline_columns.as_deref(),
            )
        };
        if let (Some(baselines), Some(features)) = (baselines, features) {
            for column in baselines.iter().filter(|c| features.contains(c)) {
                p.add(
                    "promotion.baseline_columns",
                    format!(
                        "{column:?} is also a feature; a baseline column holds a naive prediction"
                    ),
                );
            }
        }
        if let Some(live) = &self.live {
            if is_table || is_colouring {
                p.add(
                    "live",
                    "only for estimators (a quantile_table or a colouring is not a forecast whose truth arrives later)",
                );
            }
            for (key, value) in [
                ("live.every_secs", live.every_secs),
                ("live.window_secs", live.window_secs),
                ("live.min_rows", live.min_rows),
                ("live.republish_secs", live.republish_secs),
            ] {
                p.at_least_one(key, value);
            }
            if !(0.0..1.0).contains(&live.repromote_margin) {
                p.add(
                    "live.repromote_margin",
                    format!("must be in [0, 1), got {}", live.repromote_margin),
                );
            }
        }
        match &promotion.baseline_models {
            None => {}
            Some(_) if is_table || is_colouring => p.add(
                "promotion.baseline_models",
                "only for estimators (a quantile_table or a colouring has none to retrain)",
            ),
            Some(models) => {
                for (name, subset) in models {
                    let key = format!("promotion.baseline_models.{name}");
                    let (Some(subset), Some(features)) = (p.columns(&key, Some(subset)), features)
                    else {
                        continue;
                    };
                    let unknown: Vec<&String> =
                        subset.iter().filter(|f| !features.contains(f)).collect();
                    if !unknown.is_empty() {
                        p.add(key, format!("{unknown:?} are not in model.features"));
                    } else if subset.len() >= features.len() {
                        p.add(key, "must list some, not all, of model.features");
                    }
                }
            }
        }
        p.0
    }

    /// The job spec; `Some` whenever [`problems`](Self::problems) finds none.
    fn into_spec(self) -> Option<JobSpec> {
        let model = self.model.spec(&mut Problems::default())?;
        let live = (!(model.is_table() || model.is_colouring()))
            .then(|| self.live.unwrap_or_default())
            .filter(|l| l.enabled);
        let target = if model.is_table() || model.is_colouring() {
            String::new()
        } else {
            self.model.target?
        };
        let (features, baseline_columns) = if model.is_colouring() {
            (Vec::new(), Vec::new())
        } else {
            (self.model.features?, self.promotion.baseline_columns?)
        };
        Some(JobSpec {
            name: self.name?,
            description: self.description.unwrap_or_default(),
            sql: self.source.sql?,
            time_column: self.source.time_column,
            model,
            features,
            target,
            target_transform: self.model.target_transform,
            trigger: self.trigger,
            window_secs: self.training.window_secs,
            holdout_fraction: self.training.holdout_fraction,
            metric: self.training.metric,
            baseline_columns,
            baseline_models: self
                .promotion
                .baseline_models
                .unwrap_or_default()
                .into_iter()
                .collect(),
            live,
        })
    }
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
    use crate::colouring::detect;

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
                seed: 0,
                features_per_split: None,
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
eta = 0.1
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
            "jobs/bad.toml: colour: unknown key (expected one of: name, description, source, model, trigger, training, promotion, live)",
            "source.sql: must not be empty",
            "model.features: lists a column twice",
            "model.target: is also a feature",
            "model.params.n_trees: must be at least 1",
            "model.params.eta: unknown key (expected one of: alpha, normalize, max_depth,",
            "trigger: set every_secs",
            "training.holdout_fraction",
            "training.metric: unknown metric \"accuracy\" (expected mae, mape, rmse or r2)",
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
            err.to_string().contains(
                "k.toml: model.kind: unknown variant `xgboost`, expected one of `linear_regression`, `ridge_regression`"
            ),
            "{err}"
        );
    }

    #[test]
    fn type_errors_name_the_full_key_and_do_not_hide_other_problems() {
        let text = GOOD
            .replace("n_trees = 20", "n_trees = \"many\"\nalpha = 0.5")
            .replace(
                "features = [\"cpu_now\", \"hour\"]",
                "features = [\"cpu_now\", 3]",
            )
            .replace("every_secs = 300", "every_secs = 0\nevery = 5")
            .replace("metric = \"rmse\"", "metric = \"mse\"\nwindow_secs = -1");
        let err = JobSpec::parse(&text, "t.toml").expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "t.toml: model.features[1]: invalid type: integer `3`, expected a string",
            "t.toml: model.params.n_trees: invalid type: string \"many\", expected u64",
            "t.toml: model.params.alpha: not a parameter of random_forest (expected: n_trees, max_depth, min_samples_leaf, seed, features_per_split)",
            "t.toml: trigger.every: unknown key (expected one of: every_secs, after_rows)",
            "t.toml: trigger.every_secs: must be at least 1, got 0",
            "t.toml: training.metric: unknown metric \"mse\" (expected mae, mape, rmse or r2)",
            "t.toml: training.window_secs: invalid value: integer `-1`, expected u64",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        // A dropped key is reported once, not again as missing.
        assert!(!text.contains("model.features: missing"), "{text}");
        assert_eq!(err.problems.len(), 7, "{text}");
    }

    #[test]
    fn gradient_boosting_refuses_bad_parameters_all_at_once() {
        let text = GOOD.replace("random_forest", "gradient_boosting").replace(
            "n_trees = 20\nmax_depth = 8\n",
            "n_trees = 0\nmax_depth = 0\nlearning_rate = 1e-50\nl2 = -1.0\nseed = 2\n",
        );
        let err = JobSpec::parse(&text, "g.toml").expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "g.toml: model.params.n_trees: must be at least 1, got 0",
            "g.toml: model.params.max_depth: must be at least 1, got 0",
            "g.toml: model.params.learning_rate: must be in (0, 1], got 0.0000000000",
            "g.toml: model.params.l2: must be a number of at least 0, got -1",
            "g.toml: model.params.seed: not a parameter of gradient_boosting",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }

    #[test]
    fn missing_sections_are_problems_too() {
        let err = JobSpec::parse("name = \"x\"\n[model]\nkind = \"knn\"\n", "m.toml")
            .expect_err("incomplete");
        assert_eq!(
            err.problems,
            [
                "m.toml: source.sql: missing",
                "m.toml: model.features: missing",
                "m.toml: model.target: missing",
                "m.toml: trigger: set every_secs, after_rows or both",
                "m.toml: promotion.baseline_columns: missing",
            ]
        );
    }

    #[test]
    fn each_kind_defaults_its_parameters() {
        let spec = |kind: &str| {
            let text = GOOD
                .replace("random_forest", kind)
                .replace("n_trees = 20\nmax_depth = 8\n", "");
            JobSpec::parse(&text, "d.toml").expect("valid").model
        };
        assert_eq!(spec("linear_regression"), ModelSpec::LinearRegression);
        assert_eq!(
            spec("ridge_regression"),
            ModelSpec::RidgeRegression {
                alpha: 1.0,
                normalize: true
            }
        );
        assert_eq!(
            spec("decision_tree"),
            ModelSpec::DecisionTree {
                max_depth: None,
                min_samples_leaf: 1
            }
        );
        assert_eq!(
            spec("random_forest"),
            ModelSpec::RandomForest {
                n_trees: 50,
                max_depth: None,
                min_samples_leaf: 1,
                seed: 0,
                features_per_split: None,
            }
        );
        assert_eq!(spec("knn"), ModelSpec::Knn { k: 5 });
        assert_eq!(
            spec("gradient_boosting"),
            ModelSpec::GradientBoosting {
                n_trees: 100,
                learning_rate: 0.1,
                max_depth: 5,
                min_samples_leaf: 1,
                l2: 1.0,
            }
        );
    }

    #[test]
    fn the_shipped_specs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in [
            "jobs/cpu-demand.toml",
            "jobs/interference-slowdown.toml",
            "jobs/rightsizing.toml",
            "jobs/landscape-colouring.toml",
            "examples/memory-demand.toml",
        ] {
            let spec = JobSpec::load(&dir.join(file)).expect("valid");
            assert!(!spec.description.is_empty(), "{file}");
        }
        let table = JobSpec::load(&dir.join("jobs/rightsizing.toml")).expect("valid");
        assert_eq!(
            table.model,
            ModelSpec::QuantileTable {
                key: "workload".into(),
                quantiles: vec![0.5, 0.9, 0.99],
                judged_quantile: 0.9,
                half_life_secs: 86_400
            }
        );
        assert_eq!(table.target, "");
    }

    const COLOURING: &str = r#"
name = "colours"
[source]
sql = "SELECT ts, entity, metric, value FROM telemetry"
[model]
kind = "colouring"
[model.params]
observe_secs = 120
[trigger]
every_secs = 60
[training]
window_secs = 4100
"#;

    #[test]
    fn a_colouring_takes_its_windows_and_weights_with_defaults() {
        let spec = JobSpec::parse(COLOURING, "c.toml").expect("valid");
        assert_eq!(
            spec.model,
            ModelSpec::Colouring {
                detector: detect::DEFAULT.into(),
                window: Window {
                    observe_secs: 120,
                    ..Window::default()
                },
                rank: RankParams::default(),
                republish_secs: 300,
            }
        );
        assert!(spec.features.is_empty() && spec.baseline_columns.is_empty());
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/landscape-colouring.toml");
        let shipped = JobSpec::load(&shipped).expect("valid");
        assert_eq!(
            shipped.model,
            ModelSpec::Colouring {
                detector: detect::DEFAULT.into(),
                window: Window::default(),
                rank: RankParams::default(),
                republish_secs: 300,
            },
            "the shipped colouring spec spells out the defaults"
        );
    }

    #[test]
    fn a_colouring_refuses_model_keys_and_bad_params_all_at_once() {
        let bad = COLOURING
            .replace(
                "kind = \"colouring\"",
                "kind = \"colouring\"\nfeatures = [\"x\"]\ntarget = \"y\"",
            )
            .replace(
                "observe_secs = 120",
                "observe_secs = 120\ndetector = \"magic\"\nexplained_weight = 2.0\nn_trees = 3",
            )
            .replace("window_secs = 4100", "window_secs = 100")
            + "[promotion]\nbaseline_columns = [\"last\"]\n";
        let text = JobSpec::parse(&bad, "c.toml")
            .expect_err("invalid")
            .to_string();
        for expected in [
            "c.toml: model.features: a colouring takes no features",
            "c.toml: model.target: a colouring has no target",
            "c.toml: model.params.detector: unknown detector \"magic\"",
            "c.toml: model.params: explained_weight",
            "c.toml: model.params.n_trees: not a parameter of colouring",
            "c.toml: training.window_secs: a colouring reads history_secs + baseline_secs + observe_secs = 4020 s",
            "c.toml: promotion.baseline_columns: a colouring has no baselines to beat",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn live_judgement_defaults_on_for_estimators_and_refuses_bad_settings() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
        let spec = |file: &str| JobSpec::load(&shipped.join(file)).expect("valid");
        assert_eq!(spec("cpu-demand.toml").live, Some(Live::default()));
        assert_eq!(
            spec("rightsizing.toml").live,
            None,
            "a table is not judged live"
        );
        assert_eq!(spec("landscape-colouring.toml").live, None);

        let read = |file: &str| std::fs::read_to_string(shipped.join(file)).expect("read");
        let text = read("cpu-demand.toml");
        let off = JobSpec::parse(&format!("{text}\n[live]\nenabled = false\n"), "off.toml");
        assert_eq!(off.expect("valid").live, None);
        // `base` with `[live]` holding `live`, in file `file`: every problem refused.
        let refused = |base: &str, live: &str, file: &str| {
            JobSpec::parse(&format!("{base}\n[live]\n{live}\n"), file)
                .expect_err("invalid")
                .to_string()
        };
        for (live, file, says) in [
            (
                "every_secs = 0\nwindow = 3",
                "bad.toml",
                "bad.toml: live.window: unknown key",
            ),
            (
                "repromote_margin = 1.5",
                "m.toml",
                "m.toml: live.repromote_margin: must be in [0, 1)",
            ),
            ("min_rows = 0", "zero.toml", "zero.toml: live.min_rows"),
        ] {
            let problems = refused(&text, live, file);
            assert!(problems.contains(says), "{problems}");
        }
        let problems = refused(&read("rightsizing.toml"), "every_secs = 60", "t.toml");
        assert!(
            problems.contains("t.toml: live: only for estimators"),
            "{problems}"
        );
    }
}
