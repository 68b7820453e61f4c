//! The job runner keeps good jobs training while others panic, hang past their budget or
//! fail, and while rows keep arriving.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dcpilot_background::config::StoreConfig;
use dcpilot_background::{JobRunner, JobsConfig, OpenMode, RecordBatch, TelemetryStore};
use dcpilot_info_core::{InfoCore, MemoryStorage};
use dcpilot_pipelines::{Dataset, Job, JobSpec, Registry, SpecJob};
use dcpilot_schemas::decode::SampleSink;
use dcpilot_schemas::{TelemetryBatchBuilder, TelemetrySample};
use tokio::sync::watch;

fn spec(name: &str, sql: &str) -> JobSpec {
    let text = format!(
        r#"
name = "{name}"
[source]
sql = "{sql}"
[model]
kind = "linear_regression"
features = ["x"]
target = "y"
[trigger]
every_secs = 1
[training]
metric = "mae"
[promotion]
baseline_columns = ["zero"]
"#
    );
    JobSpec::parse(&text, &format!("{name}.toml")).expect("test spec is valid")
}

const GOOD_SQL: &str =
    "SELECT ts, value AS x, value * 2 + 1 AS y, 0.0 AS zero FROM telemetry WHERE metric = 'x'";

/// A job whose own code panics.
struct Panics(JobSpec);

impl Job for Panics {
    fn spec(&self) -> &JobSpec {
        &self.0
    }
    fn dataset(&self, _: &[RecordBatch]) -> dcpilot_pipelines::Result<Dataset> {
        panic!("boom: a bug in a data scientist's feature code")
    }
}

/// A job whose own code blocks far past its time budget.
struct Hangs(JobSpec);

impl Job for Hangs {
    fn spec(&self) -> &JobSpec {
        &self.0
    }
    fn dataset(&self, batches: &[RecordBatch]) -> dcpilot_pipelines::Result<Dataset> {
        std::thread::sleep(Duration::from_secs(3));
        dcpilot_pipelines::job::dataset_from_columns(&self.0, batches)
    }
}

fn rows(from: i64, count: i64) -> RecordBatch {
    rows_of(from, count, |i| (i % 100) as f64)
}

/// Samples of metric `x` for vm-1, one a second from second `from`, valued `value(i)`.
fn rows_of(from: i64, count: i64, value: impl Fn(i64) -> f64) -> RecordBatch {
    let mut builder = TelemetryBatchBuilder::with_capacity(count as usize);
    for i in from..from + count {
        let sample = TelemetrySample {
            timestamp_ms: 1_700_000_000_000 + i * 1000,
            entity: "vm-1".into(),
            host: None,
            workload: None,
            metric: "x".into(),
            value: value(i),
            labels: BTreeMap::new(),
        };
        builder.push(&sample.as_ref());
    }
    builder.finish()
}

/// Memory-only tables holding a year.
fn memory_tables() -> TelemetryStore {
    let config = StoreConfig {
        durable: false,
        spill: false,
        retention_secs: 365 * 86_400,
        partition_secs: 86_400,
        memory_ceiling_mb: 0,
    };
    TelemetryStore::open(None, &config, OpenMode::ReadWrite).expect("tables")
}

/// Starts a runner of `registry` over `store` publishing into `models`; flip the sender
/// to stop it.
fn start_runner(
    jobs: JobsConfig,
    registry: Registry,
    store: &TelemetryStore,
    models: &Arc<InfoCore>,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<dcpilot_background::Result<dcpilot_background::JobRunnerStats>>,
    watch::Receiver<dcpilot_background::JobRunnerStats>,
) {
    let runner = JobRunner::new(
        jobs,
        registry,
        store.context().clone(),
        store.telemetry.clone(),
        models.clone(),
    );
    let progress = runner.progress();
    let (stop, stopped) = watch::channel(false);
    (stop, tokio::spawn(runner.run(stopped)), progress)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_slow_and_panicking_jobs_do_not_stop_good_ones_or_ingestion() {
    let store = memory_tables();
    store.telemetry.insert(&rows(0, 500)).expect("seed rows");

    let mut registry = Registry::default();
    registry
        .register(Arc::new(SpecJob(spec("good", GOOD_SQL))))
        .expect("good");
    registry
        .register(Arc::new(Panics(spec("panics", GOOD_SQL))))
        .expect("panics");
    registry
        .register(Arc::new(Hangs(spec("hangs", GOOD_SQL))))
        .expect("hangs");
    registry
        .register(Arc::new(SpecJob(spec(
            "bad-sql",
            "SELECT no_such_column FROM telemetry",
        ))))
        .expect("bad-sql");

    let models = Arc::new(InfoCore::open(Arc::new(MemoryStorage::default()), 5).expect("models"));
    let jobs = JobsConfig {
        timeout_secs: 1,
        backoff_initial_secs: 1,
        backoff_max_secs: 600,
        poll_ms: 50,
        ..JobsConfig::default()
    };
    let (stop, runner, mut progress) = start_runner(jobs, registry, &store, &models);

    // "Ingestion": rows keep arriving on the main runtime while jobs run.
    let inserted = Arc::new(AtomicU64::new(0));
    let writer = {
        let telemetry = store.telemetry.clone();
        let inserted = inserted.clone();
        tokio::spawn(async move {
            let mut next = 500;
            for _ in 0..200 {
                telemetry.insert(&rows(next, 10)).expect("insert");
                next += 10;
                inserted.fetch_add(10, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Until the good job ran twice and every bad one failed once (the hanging job's run
    // ends 3 s in, after its budget of 1 s ran out).
    let count = |s: &dcpilot_background::JobRunnerStats, job: &str| {
        s.runs.get(job).map_or((0, 0), |r| (r.succeeded, r.failed))
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|s| {
            count(s, "good").0 >= 2
                && count(s, "panics").1 >= 1
                && count(s, "hangs").1 >= 1
                && count(s, "bad-sql").1 >= 1
        }),
    )
    .await
    .expect("every job ran within 60 s")
    .expect("runner alive");
    writer.await.expect("writer");
    stop.send(true).expect("stop");
    let stats = runner.await.expect("runner task").expect("runner");

    let good = &stats.runs["good"];
    assert!(good.succeeded >= 2, "good job ran {good:?}");
    assert_eq!(good.failed, 0, "{good:?}");
    assert!(models.snapshot().get("good").is_some(), "good model served");

    // A panic is not retryable: one run, then the maximum backoff.
    let panics = &stats.runs["panics"];
    assert_eq!((panics.succeeded, panics.failed), (0, 1), "{panics:?}");

    // Timed out once; cancelled, so it published nothing even though its code finished.
    let hangs = &stats.runs["hangs"];
    assert_eq!((hangs.succeeded, hangs.failed), (0, 1), "{hangs:?}");
    assert!(models.snapshot().get("hangs").is_none());

    // A query error may clear up (more data, a table appearing): retried with backoff.
    let bad = &stats.runs["bad-sql"];
    assert_eq!(bad.succeeded, 0);
    assert!(bad.failed >= 1, "{bad:?}");

    assert_eq!(inserted.load(Ordering::Relaxed), 2_000);
    assert_eq!(store.telemetry.inserted_rows(), 2_500);
}

#[test]
fn spec_dir_problems_name_file_and_key_and_only_names_unknown_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("mine.toml"),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../pipelines/jobs/cpu-demand.toml"
        ))
        .expect("builtin spec")
        .replace("name = \"cpu-demand\"", "name = \"my-cpu\""),
    )
    .expect("write");
    let good = JobsConfig {
        spec_dir: Some(dir.path().to_path_buf()),
        ..JobsConfig::default()
    };
    let registry = good.registry().expect("a valid extra spec loads");
    assert!(registry.get("my-cpu").is_some());
    assert!(registry.get("cpu-demand").is_some());

    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"broken\"\n[model]\nkind = \"svm\"\n",
    )
    .expect("write");
    let err = good.registry().err().expect("a broken spec is refused");
    let text = err.to_string();
    assert!(text.contains("broken.toml: model.kind"), "{text}");
    assert!(text.contains("broken.toml: source.sql: missing"), "{text}");

    let only = JobsConfig {
        only: vec!["rightsizing".into(), "nope".into()],
        ..JobsConfig::default()
    };
    let err = only.registry().err().expect("unknown job refused");
    assert!(err.to_string().contains("no job named \"nope\""), "{err}");
    let triggers = JobsConfig {
        triggers: [(
            "nope".to_string(),
            dcpilot_background::TriggerOverride {
                after_rows: Some(10),
                every_secs: None,
            },
        )]
        .into(),
        ..JobsConfig::default()
    };
    let err = triggers.registry().err().expect("unknown job refused");
    assert!(
        err.to_string()
            .contains("jobs.triggers: no job named \"nope\""),
        "{err}"
    );
    let empty = JobsConfig {
        triggers: [("rightsizing".to_string(), Default::default())].into(),
        ..JobsConfig::default()
    };
    assert!(empty.problems()[0].starts_with("jobs.triggers.rightsizing"));
    let only = JobsConfig {
        only: vec!["rightsizing".into()],
        ..JobsConfig::default()
    };
    let names: Vec<String> = only
        .registry()
        .expect("registry")
        .jobs()
        .map(|j| j.name().to_string())
        .collect();
    assert_eq!(names, vec!["rightsizing".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_judges_served_models_live_and_demotes_one_that_drifted() {
    let store = memory_tables();
    store.telemetry.insert(&rows(0, 500)).expect("seed rows");
    // Up to x = 99 the truth is 2x + 1, which the model learns; from x = 1000 on (the
    // drift) it is 450, which the constant baseline says all along.
    let text = r#"
name = "drifts"
[source]
sql = "SELECT ts, value AS x, CASE WHEN value >= 1000 THEN 450.0 ELSE value * 2 + 1 END AS y, 450.0 AS always_450 FROM telemetry WHERE metric = 'x'"
[model]
kind = "linear_regression"
features = ["x"]
target = "y"
[trigger]
every_secs = 3600
[training]
metric = "mae"
[promotion]
baseline_columns = ["always_450"]
[live]
every_secs = 1
min_rows = 20
window_secs = 3600
"#;
    let job: Arc<dyn Job> = Arc::new(SpecJob(JobSpec::parse(text, "drifts.toml").expect("spec")));
    let models = Arc::new(InfoCore::open(Arc::new(MemoryStorage::default()), 5).expect("models"));
    let trained = dcpilot_pipelines::run_once(job.clone(), store.context(), &models)
        .await
        .expect("trained");
    assert_eq!(trained.published_version, Some(1), "{trained:?}");

    let mut registry = Registry::default();
    registry.register(job).expect("register");
    let jobs = JobsConfig {
        poll_ms: 50,
        ..JobsConfig::default()
    };
    let (stop, runner, _) = start_runner(jobs, registry, &store, &models);
    // The drift: 100 rows past the training window, at x = 1000..1099.
    let drifted = rows_of(500, 100, |i| 500.0 + i as f64);
    store.telemetry.insert(&drifted).expect("drift");
    let started = std::time::Instant::now();
    while models.snapshot().verdict("drifts").is_none()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    let stats = runner.await.expect("runner task").expect("runner");

    let snapshot = models.snapshot();
    let verdict = snapshot.verdict("drifts").expect("a verdict published");
    assert_eq!((verdict.version, verdict.rows), (1, 100), "{verdict:?}");
    assert!(verdict.demoted, "{verdict:?}");
    assert!(
        verdict.model_error > 1000.0 && verdict.baselines[0].error == 0.0,
        "{verdict:?}"
    );
    let answerer = snapshot
        .answerer("drifts", dcpilot_info_core::now_ms())
        .expect("served");
    assert_eq!(answerer.answered_by(), "baseline:always_450");
    assert_eq!(answerer.predict(&[1234.0]).expect("answer"), 450.0);
    let live = stats.runs["drifts"].last_live.as_ref().expect("judged");
    assert!(live.verdict.as_ref().is_some_and(|v| v.demoted), "{live:?}");
}
