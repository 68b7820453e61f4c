//! The `Job` trait, the registry of jobs, and one run: SQL → dataset → train → judge →
//! publish.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::prelude::SessionContext;
use dcpilot_info_core::core::Promotion;
use dcpilot_info_core::{
    HoldoutMetrics, InfoCore, Lineage, Model, ModelDraft, ServedModel, TrainingWindow,
};
use serde::Serialize;

use crate::colouring::job::Coloured;
use crate::colouring::ColouringSummary;
use crate::error::{PipelineError, Result};
use crate::spec::{JobSpec, ModelSpec};
use crate::train::{baseline_errors, best_baseline, evaluate_job, predict_rows, Dataset};

/// A background job. Most jobs are a spec file only ([`SpecJob`]); a job that needs code
/// (custom features, a custom model) implements the trait and overrides what it needs.
pub trait Job: Send + Sync {
    /// The job's spec (name, SQL, model, trigger, ...).
    fn spec(&self) -> &JobSpec;

    /// Turns the rows of the spec's query into a dataset. The default reads the spec's
    /// time, feature, target and baseline columns.
    fn dataset(&self, batches: &[RecordBatch]) -> Result<Dataset> {
        dataset_from_columns(self.spec(), batches)
    }

    /// The job's name.
    fn name(&self) -> &str {
        &self.spec().name
    }
}

/// A job that is its spec.
pub struct SpecJob(pub JobSpec);

impl Job for SpecJob {
    fn spec(&self) -> &JobSpec {
        &self.0
    }
}

/// Built-in job specs, embedded in the binary.
const BUILTIN_SPECS: &[(&str, &str)] = &[
    (
        "pipelines/jobs/cpu-demand.toml",
        include_str!("../jobs/cpu-demand.toml"),
    ),
    (
        "pipelines/jobs/interference-slowdown.toml",
        include_str!("../jobs/interference-slowdown.toml"),
    ),
    (
        "pipelines/jobs/interference-slowdown-pods.toml",
        include_str!("../jobs/interference-slowdown-pods.toml"),
    ),
    (
        "pipelines/jobs/rightsizing.toml",
        include_str!("../jobs/rightsizing.toml"),
    ),
    (
        "pipelines/jobs/landscape-colouring.toml",
        include_str!("../jobs/landscape-colouring.toml"),
    ),
];

/// The jobs a process runs, by name.
#[derive(Default)]
pub struct Registry {
    jobs: BTreeMap<String, Arc<dyn Job>>,
}

impl Registry {
    /// The built-in jobs.
    pub fn builtin() -> Result<Self> {
        let mut registry = Self::default();
        for (file, text) in BUILTIN_SPECS {
            let spec =
                JobSpec::parse(text, file).map_err(|e| PipelineError::Spec(e.to_string()))?;
            registry.register(Arc::new(SpecJob(spec)))?;
        }
        Ok(registry)
    }

    /// Adds a job; names are unique.
    pub fn register(&mut self, job: Arc<dyn Job>) -> Result<()> {
        let name = job.name().to_string();
        if self.jobs.contains_key(&name) {
            return Err(PipelineError::Spec(format!(
                "a job named {name:?} is already registered"
            )));
        }
        self.jobs.insert(name, job);
        Ok(())
    }

    /// Keeps only the jobs whose name passes `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.jobs.retain(|name, _| keep(name));
    }

    /// A job by name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Job>> {
        self.jobs.get(name).cloned()
    }

    /// Every job.
    pub fn jobs(&self) -> impl Iterator<Item = &Arc<dyn Job>> {
        self.jobs.values()
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>> {
    batch
        .column_by_name(name)
        .ok_or_else(|| PipelineError::Data(format!("the query has no column {name:?}")))
}

pub(crate) fn floats(batch: &RecordBatch, name: &str) -> Result<Vec<f64>> {
    let array = cast(column(batch, name)?, &DataType::Float64)
        .map_err(|e| PipelineError::Data(format!("column {name:?}: {e}")))?;
    let values = array.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                f64::NAN
            } else {
                values.value(i)
            }
        })
        .collect())
}

pub(crate) fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let array = cast(column(batch, name)?, &DataType::Utf8)
        .map_err(|e| PipelineError::Data(format!("column {name:?}: {e}")))?;
    let values = array.as_string::<i32>();
    Ok((0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i).to_string()))
        .collect())
}

/// The column `name` as Unix milliseconds (any timestamp or integer type).
pub(crate) fn times_ms(
    batch: &RecordBatch,
    name: &str,
) -> Result<datafusion::arrow::array::Int64Array> {
    let times = cast(
        column(batch, name)?,
        &DataType::Timestamp(TimeUnit::Millisecond, None),
    )
    .and_then(|a| cast(&a, &DataType::Int64))
    .map_err(|e| PipelineError::Data(format!("column {name:?}: {e}")))?;
    Ok(times
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .clone())
}

/// Reads the spec's columns out of query results; a row with a missing or non-finite value
/// is left out and noted in [`Dataset::skipped`] (one bad value never fails a run).
pub fn dataset_from_columns(spec: &JobSpec, batches: &[RecordBatch]) -> Result<Dataset> {
    let baseline_columns = spec.baseline_query_columns();
    let key_column = match &spec.model {
        ModelSpec::QuantileTable { key, .. } => Some(key.as_str()),
        _ => None,
    };
    let mut data = Dataset {
        baselines: baseline_columns
            .iter()
            .map(|b| (b.clone(), Vec::new()))
            .collect(),
        columns: spec.features.clone(),
        ..Dataset::default()
    };
    for batch in batches {
        let times = times_ms(batch, &spec.time_column)?;
        let features = spec
            .features
            .iter()
            .map(|f| floats(batch, f))
            .collect::<Result<Vec<_>>>()?;
        // A quantile table has no target: every row counts.
        let target = match key_column {
            Some(_) => vec![0.0; batch.num_rows()],
            None => floats(batch, &spec.target)?,
        };
        let keys = key_column.map(|k| strings(batch, k)).transpose()?;
        let baselines = baseline_columns
            .iter()
            .map(|b| floats(batch, b))
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let x: Vec<f64> = features.iter().map(|f| f[row]).collect();
            let log = spec.target_transform == crate::spec::TargetTransform::Log;
            let unreadable = if !times.is_valid(row) {
                Some(spec.time_column.as_str())
            } else if !target[row].is_finite() || (log && target[row] <= 0.0) {
                Some(spec.target.as_str())
            } else if let Some(f) = x.iter().position(|v| !v.is_finite()) {
                Some(spec.features[f].as_str())
            } else if let Some(b) = baselines.iter().position(|b| !b[row].is_finite()) {
                Some(baseline_columns[b].as_str())
            } else if keys.as_ref().is_some_and(|k| k[row].is_none()) {
                key_column
            } else {
                None
            };
            if let Some(column) = unreadable {
                let at = if times.is_valid(row) {
                    format!("{} = {}", spec.time_column, times.value(row))
                } else {
                    format!("{} null", spec.time_column)
                };
                let what = if log && column == spec.target {
                    "is null, not a finite number or not positive (model.target_transform = \"log\")"
                } else {
                    "is null or not a finite number"
                };
                data.skipped
                    .note(format_args!("row with {at}: {column} {what}"));
                continue;
            }
            data.times.push(times.value(row));
            data.features.push(x);
            if let Some(keys) = &keys {
                data.keys.push(keys[row].clone().unwrap_or_default());
            } else {
                data.target.push(target[row]);
            }
            for (i, b) in baselines.iter().enumerate() {
                data.baselines[i].1.push(b[row]);
            }
        }
    }
    Ok(canonical_order(data))
}

/// Rows sorted by (time, features, target): a parallel query returns rows in varying
/// order, and a seeded forest must see the same rows in the same order to be reproducible.
fn canonical_order(data: Dataset) -> Dataset {
    let mut order: Vec<usize> = (0..data.times.len()).collect();
    order.sort_by(|&a, &b| {
        data.times[a]
            .cmp(&data.times[b])
            .then_with(|| {
                data.features[a]
                    .iter()
                    .zip(&data.features[b])
                    .map(|(x, y)| x.total_cmp(y))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| match (data.target.get(a), data.target.get(b)) {
                (Some(x), Some(y)) => x.total_cmp(y),
                _ => data.keys[a].cmp(&data.keys[b]),
            })
    });
    data.select(&order)
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Job name.
    pub job: String,
    /// Metric name.
    pub metric: String,
    /// The new model's holdout error.
    pub model_error: f64,
    /// The better baseline's name and error.
    pub baseline: String,
    /// Its error.
    pub baseline_error: f64,
    /// Every baseline's error, by name (null when undefined).
    pub baselines: BTreeMap<String, f64>,
    /// The served champion's error on the same holdout, if any.
    pub champion_error: Option<f64>,
    /// Rows trained on and held out.
    pub train_rows: usize,
    /// Rows held out.
    pub holdout_rows: usize,
    /// The version published, if the challenger won.
    pub published_version: Option<u64>,
    /// Why it was not published, if it lost.
    pub rejected: Option<String>,
    /// For a colouring job, what it found (its `model_error` is then the top cause's
    /// score, `baseline` is `none`, and `train_rows` the telemetry rows read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colouring: Option<ColouringSummary>,
    /// Query rows left out because a value the spec reads was null or not a number.
    pub skipped_rows: usize,
    /// The first few of them, with the column.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_examples: Vec<String>,
}

/// Runs the spec's SQL on `ctx`.
pub(crate) async fn query(spec: &JobSpec, ctx: &SessionContext) -> Result<Vec<RecordBatch>> {
    ctx.sql(&spec.sql)
        .await
        .map_err(|e| PipelineError::Data(format!("{}: source.sql: {e}", spec.name)))?
        .collect()
        .await
        .map_err(|e| PipelineError::Data(format!("{}: running source.sql: {e}", spec.name)))
}

/// Runs the spec's SQL on `ctx` and turns the rows into the job's dataset.
pub(crate) async fn query_dataset(job: &dyn Job, ctx: &SessionContext) -> Result<Dataset> {
    let batches = query(job.spec(), ctx).await?;
    job.dataset(&batches)
}

/// Runs `work` (a job's own code, or training) on the blocking pool: CPU-heavy work keeps
/// off the async workers, and a panic becomes an error instead of unwinding further.
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
    })
    .await
    {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(PipelineError::Panicked(panic_message(panic.as_ref()))),
        Err(join) => Err(PipelineError::Panicked(join.to_string())),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Checksum of the spec, as lineage (which spec produced a model).
pub(crate) fn spec_hash(spec: &JobSpec) -> String {
    let text = serde_json::to_string(spec).unwrap_or_default();
    format!("{:08x}", crc32fast::hash(text.as_bytes()))
}

/// Runs `job` once: its SQL on `ctx`, training, judging against the baselines and the
/// champion served by `store`, and publishing the challenger if it wins.
pub async fn run_once(
    job: Arc<dyn Job>,
    ctx: &SessionContext,
    store: &InfoCore,
) -> Result<RunReport> {
    run_once_at(job, ctx, store, dcpilot_info_core::now_ms()).await
}

/// [`run_once`] as if the clock read `now_ms` (Unix ms): what a colouring's age is judged
/// against, so a test need not wait for the served one to age.
pub async fn run_once_at(
    job: Arc<dyn Job>,
    ctx: &SessionContext,
    store: &InfoCore,
    now_ms: i64,
) -> Result<RunReport> {
    run_once_with(job, ctx, store, &AtomicBool::new(false), now_ms).await
}

/// [`run_once`] that gives up, without publishing, once `cancelled` is set (checked after
/// the query and before publishing; training itself is not interrupted).
pub async fn run_once_cancellable(
    job: Arc<dyn Job>,
    ctx: &SessionContext,
    store: &InfoCore,
    cancelled: &AtomicBool,
) -> Result<RunReport> {
    run_once_with(job, ctx, store, cancelled, dcpilot_info_core::now_ms()).await
}

async fn run_once_with(
    job: Arc<dyn Job>,
    ctx: &SessionContext,
    store: &InfoCore,
    cancelled: &AtomicBool,
    now_ms: i64,
) -> Result<RunReport> {
    let spec = job.spec().clone();
    if spec.model.is_colouring() {
        return run_colouring(spec, ctx, store, cancelled, now_ms).await;
    }
    let batches = query(&spec, ctx).await?;
    if cancelled.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled);
    }
    let snapshot = store.snapshot();
    let (data, evaluation) = {
        let spec = spec.clone();
        off_the_runtime(move || {
            let data = job.dataset(&batches)?.within_window(spec.window_secs);
            let champion = snapshot
                .get(&spec.name)
                .filter(|m| m.record.features == spec.features)
                .map(|m| &m.prepared);
            let evaluation = evaluate_job(&spec, &data, champion)?;
            Ok((data, evaluation))
        })
        .await?
    };
    if cancelled.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled);
    }
    let spec = &spec;
    let (mut published_version, mut rejected) = (None, None);
    match &evaluation.decision {
        Promotion::Promote => {
            let record = store.publish(ModelDraft {
                name: spec.name.clone(),
                features: spec.features.clone(),
                target: spec.target.clone(),
                window: TrainingWindow {
                    start_ms: data.times.iter().copied().min().unwrap_or(0),
                    end_ms: data.times.iter().copied().max().unwrap_or(0),
                },
                rows: data.times.len() as u64,
                metrics: HoldoutMetrics {
                    metric: spec.metric.as_str().into(),
                    model_error: evaluation.model_error,
                    baseline_error: evaluation.baseline.1,
                    baseline: evaluation.baseline.0.clone(),
                },
                lineage: Lineage::of_job(spec.name.clone(), spec_hash(spec)),
                model: evaluation.model,
            })?;
            published_version = Some(record.version);
        }
        Promotion::Reject(why) => rejected = Some(why.clone()),
    }
    Ok(RunReport {
        job: spec.name.clone(),
        metric: spec.metric.as_str().into(),
        model_error: evaluation.model_error,
        baseline: evaluation.baseline.0,
        baseline_error: evaluation.baseline.1,
        baselines: evaluation.baselines.into_iter().collect(),
        champion_error: evaluation.champion_error,
        train_rows: evaluation.train_rows,
        holdout_rows: evaluation.holdout_rows,
        published_version,
        rejected,
        colouring: None,
        skipped_rows: data.skipped.count,
        skipped_examples: data.skipped.examples,
    })
}

/// One run of a colouring job: colour, then publish (each new colouring is a version).
async fn run_colouring(
    spec: JobSpec,
    ctx: &SessionContext,
    store: &InfoCore,
    cancelled: &AtomicBool,
    now_ms: i64,
) -> Result<RunReport> {
    let (telemetry, nodes, edges) = crate::colouring::job::query(&spec, ctx).await?;
    if cancelled.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled);
    }
    let snapshot = store.snapshot();
    let served = snapshot.get(&spec.name);
    let coloured = {
        let spec = spec.clone();
        off_the_runtime(move || crate::colouring::job::colour(&spec, &telemetry, &nodes, &edges))
            .await?
    };
    let (colouring, read) = match coloured {
        Coloured::Done(colouring, read) => (colouring, read),
        // Not a failure: nothing new to publish.
        Coloured::Nothing(why) => return Ok(colouring_report(&spec, None, 0, None, Some(why))),
    };
    if let (Some(served), ModelSpec::Colouring { republish_secs, .. }) = (served, &spec.model) {
        let served_colouring = served.prepared.colouring().map(|c| &c.colouring);
        // No newer telemetry: only a changed landscape (say, the graph arrived after the
        // telemetry) makes a new colouring; an identical one would look fresh forever.
        if served.record.window.end_ms == read.end_ms
            && served_colouring.is_some_and(|c| *c == *colouring)
        {
            let why = format!(
                "no telemetry newer than the served v{} and the same landscape",
                served.version()
            );
            return Ok(colouring_report(&spec, None, 0, None, Some(why)));
        }
        let young = served.age_secs(now_ms) < *republish_secs;
        let same =
            served_colouring.is_some_and(|c| crate::colouring::job::same_story(c, &colouring));
        if young && same && served.record.window.end_ms != read.end_ms {
            let why = format!(
                "the same story as the served v{} (republished after {republish_secs} s)",
                served.version()
            );
            return Ok(colouring_report(&spec, None, 0, None, Some(why)));
        }
    }
    if cancelled.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled);
    }
    let summary = ColouringSummary::of(&colouring);
    let record = store.publish(ModelDraft {
        name: spec.name.clone(),
        features: Vec::new(),
        target: String::new(),
        window: TrainingWindow {
            start_ms: read.start_ms,
            end_ms: read.end_ms,
        },
        rows: read.rows,
        metrics: HoldoutMetrics {
            metric: COLOURING_METRIC.into(),
            model_error: summary.top_score(),
            baseline_error: 0.0,
            baseline: "none".into(),
        },
        lineage: Lineage::of_job(spec.name.clone(), spec_hash(&spec)),
        model: Model::Colouring(colouring),
    })?;
    let rows = usize::try_from(read.rows).unwrap_or(usize::MAX);
    Ok(colouring_report(
        &spec,
        Some(summary),
        rows,
        Some(record.version),
        None,
    ))
}

/// What a colouring reports in a model's place: its top cause's score as `model_error`.
const COLOURING_METRIC: &str = "top_cause_score";

fn colouring_report(
    spec: &JobSpec,
    summary: Option<ColouringSummary>,
    rows: usize,
    published_version: Option<u64>,
    rejected: Option<String>,
) -> RunReport {
    RunReport {
        job: spec.name.clone(),
        metric: COLOURING_METRIC.into(),
        model_error: summary.as_ref().map_or(0.0, ColouringSummary::top_score),
        baseline: "none".into(),
        baseline_error: 0.0,
        baselines: BTreeMap::new(),
        champion_error: None,
        train_rows: rows,
        holdout_rows: 0,
        published_version,
        rejected,
        colouring: summary,
        skipped_rows: 0,
        skipped_examples: Vec::new(),
    }
}

/// How the served version of a job's model does on other data (nothing is trained).
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationReport {
    /// Job name.
    pub job: String,
    /// Version judged.
    pub version: u64,
    /// Metric name.
    pub metric: String,
    /// The served model's error on every row of the data.
    pub model_error: f64,
    /// The better baseline's name.
    pub baseline: String,
    /// Its error on the same rows.
    pub baseline_error: f64,
    /// Every baseline's error, by name (null when undefined).
    pub baselines: BTreeMap<String, f64>,
    /// Rows judged.
    pub rows: usize,
}

/// Refuses to judge a served version that reads other features than the spec lists.
pub(crate) fn check_features(spec: &JobSpec, served: &ServedModel) -> Result<()> {
    if served.record.features == spec.features {
        return Ok(());
    }
    Err(PipelineError::Spec(format!(
        "{} v{} reads features {:?}, the spec now lists {:?}",
        spec.name,
        served.version(),
        served.record.features,
        spec.features
    )))
}

/// Judges the version of `job`'s model that `store` serves on the rows `ctx` yields.
pub async fn evaluate_served(
    job: &dyn Job,
    ctx: &SessionContext,
    store: &InfoCore,
) -> Result<EvaluationReport> {
    let spec = job.spec();
    if spec.model.is_colouring() {
        return Err(PipelineError::Spec(format!(
            "{} is a colouring: it is judged against labelled faults with `dcpilot anomalies evaluate`, not against rows",
            spec.name
        )));
    }
    let snapshot = store.snapshot();
    let served = snapshot.get(&spec.name).ok_or_else(|| {
        PipelineError::Data(format!(
            "no version of {:?} is served; run `dcpilot jobs run-once {}` first",
            spec.name, spec.name
        ))
    })?;
    check_features(spec, served)?;
    let data = query_dataset(job, ctx).await?;
    if data.times.is_empty() {
        return Err(PipelineError::Data(format!(
            "the data yields no rows for {}",
            spec.name
        )));
    }
    let (model_error, baselines) = match served.prepared.table() {
        Some(table) => crate::table::judge_served(table, &spec.model, spec.metric, &data)?,
        None => {
            let predicted = predict_rows(
                crate::kinds::of(&spec.model),
                &served.prepared,
                &data.features,
            )?;
            let errors = baseline_errors(
                spec.metric,
                &data.target,
                data.baselines
                    .iter()
                    .map(|(name, values)| (name.as_str(), values.as_slice())),
            );
            (spec.metric.error(&data.target, &predicted), errors)
        }
    };
    let (baseline, baseline_error) = best_baseline(&baselines)?;
    Ok(EvaluationReport {
        job: spec.name.clone(),
        version: served.version(),
        metric: spec.metric.as_str().into(),
        model_error,
        baseline,
        baseline_error,
        baselines: baselines.into_iter().collect(),
        rows: data.times.len(),
    })
}

/// The served version of `job`'s model next to the truth on the job's holdout rows (the
/// newest `holdout_fraction` by time) of the data in `ctx`: `(actual, predicted)` pairs,
/// for plots. Empty when the model is not served or is a table.
pub async fn holdout_predictions(
    job: Arc<dyn Job>,
    ctx: &SessionContext,
    snapshot: &dcpilot_info_core::Snapshot,
) -> Result<Vec<(f64, f64)>> {
    let Some(served) = snapshot.get(job.name()) else {
        return Ok(Vec::new());
    };
    if served.prepared.table().is_some() || served.prepared.colouring().is_some() {
        return Ok(Vec::new());
    }
    let spec = job.spec();
    let data = query_dataset(job.as_ref(), ctx).await?;
    let (_, holdout) = crate::train::split_by_time(&data.times, spec.holdout_fraction);
    Ok(holdout
        .into_iter()
        .filter_map(|i| {
            let predicted = served.prepared.predict(&data.features[i]).ok()?;
            predicted.is_finite().then_some((data.target[i], predicted))
        })
        .collect())
}
