//! `dcpilot demo`: both loops end to end on embedded defaults — an in-process broker, the
//! file-backed tables and Information Core under `--data-dir/demo`, a replay of the bundled
//! real-trace sample, the built-in jobs trained on it — then the foreground serving those
//! models to a simulated placement engine over HTTP, and a report.

pub mod colouring;
pub mod foreground;
pub mod html;
pub mod report;
pub mod sample_data;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bail;
use crate::datasets::{parse_bitbrains, parse_ntua, pcm_of_tests};
use crate::error::{Context, Result};
use dcpilot_background::config::KafkaConfig;
use dcpilot_background::ingest::client_config;
use dcpilot_background::replay::{replay, send_waiting, ReplayKey, ReplayOptions};
use dcpilot_background::{BackgroundConfig, BackgroundService, TelemetryStore};
use dcpilot_schemas::TelemetrySample;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio::sync::watch;

pub use report::DemoReport;
use report::{BusyVm, InterferenceRow, ModelLine};
use sample_data::{BITBRAINS, NTUA, NTUA_PCM};

/// Options of `dcpilot demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Event-time speed-up of the replay; 0 = as fast as possible.
    pub speedup: f64,
    /// Say nothing on stderr while running (the caller prints the report as JSON).
    pub quiet: bool,
    /// Also gather each model's holdout predictions, which [`DemoReport::html`] plots.
    pub plots: bool,
    /// Give up waiting for ingestion after this many seconds.
    pub timeout_secs: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            speedup: 0.0,
            quiet: false,
            plots: false,
            timeout_secs: 120,
        }
    }
}

/// Malformed messages the demo sends on purpose, to show the dead-letter path.
const GARBAGE: &[&[u8]] = &[
    b"{\"timestamp_ms\": 1375308176000, \"entity\": \"vm-1\"",
    b"cpu,host=node1 usage=not-a-number 1375308176000000000",
    b"[{\"values\":[1,2],\"dstypes\":[\"gauge\"],\"dsnames\":[\"a\",\"b\"],\"time\":1375308176,\"host\":\"h\",\"plugin\":\"p\",\"type\":\"t\"}]",
    b"\xff\xfe not even text",
];

fn bundled_samples() -> Result<Vec<TelemetrySample>> {
    let mut samples = Vec::new();
    let mut skipped = dcpilot_schemas::Skipped::default();
    for (file, text) in BITBRAINS {
        samples.extend(parse_bitbrains(Path::new(file), text, &mut skipped));
    }
    crate::ensure!(skipped.is_empty(), "the bundled sample: {skipped}");
    samples.extend(bundled_ntua_samples()?);
    samples.sort_by_key(|s| s.timestamp_ms);
    Ok(samples)
}

/// The bundled NTUA runs (nginx measurements and each test's host counters).
pub fn bundled_ntua_samples() -> Result<Vec<TelemetrySample>> {
    let mut samples = Vec::new();
    let mut skipped = dcpilot_schemas::Skipped::default();
    let layout = crate::datasets::Layout::ntua();
    for (run_index, (run, text)) in NTUA.iter().enumerate() {
        let path = PathBuf::from(run).join("nginx_metrics.csv");
        let mut nginx = parse_ntua(&path, text, run_index, &mut skipped);
        layout.label(&mut nginx);
        // Each test's counters, as `replay --format ntua` reads them beside the file.
        let counters = pcm_of_tests(
            &nginx,
            &layout,
            |file| {
                Ok(NTUA_PCM
                    .iter()
                    .find(|(r, f, _)| r == run && *f == file)
                    .map(|(_, f, text)| (text.to_string(), PathBuf::from(run).join(f))))
            },
            &mut skipped,
        )?;
        samples.extend(nginx);
        samples.extend(counters);
    }
    crate::ensure!(skipped.is_empty(), "the bundled sample: {skipped}");
    samples.sort_by_key(|s| s.timestamp_ms);
    Ok(samples)
}

fn progress(json: bool, message: &str) {
    if !json {
        eprintln!("{message}");
    }
}

/// Runs the demo in `data_dir/demo` (cleared first); returns its report.
pub async fn run(data_dir: &Path, args: DemoOptions) -> Result<DemoReport> {
    let dir = data_dir.join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let mut config = BackgroundConfig::default();
    // The sample spans a week of 2013 and synthetic days of 2024: day partitions, a
    // two-week window; everything older moves to Parquet and stays queryable.
    config.store.partition_secs = 86_400;
    config.store.retention_secs = 14 * 86_400;
    config.ingest.max_batch_delay_ms = 200;
    // The demo trains once itself, after ingesting; its broker and endpoint take free
    // ports, so it runs beside a `dcpilot background` on the defaults.
    config.jobs.enabled = false;
    config.http.listen = Some(([127, 0, 0, 1], 0).into());
    config.embedded.listen = None;
    let k = config.kafka.clone();

    let (stop, stopped) = watch::channel(false);
    let service = BackgroundService::start(Some(&dir), config, stopped).await?;
    let brokers = service.brokers().to_string();
    let status = service.status();
    progress(
        args.quiet,
        &format!(
            "[1/6] embedded broker at {brokers}; tables in {}",
            dir.display()
        ),
    );

    let samples = bundled_samples()?;
    progress(
        args.quiet,
        &format!(
            "[2/6] replaying {} real-trace samples (Bitbrains + NTUA) at speed-up {}",
            samples.len(),
            args.speedup
        ),
    );
    let started = Instant::now();
    let ingest = tokio::spawn(service.run());

    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    while status.report().assigned_partitions < 1 {
        if Instant::now() > deadline {
            bail!("timed out waiting for the consumer group to assign partitions");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replay_options = ReplayOptions {
        brokers: brokers.clone(),
        topic: k.telemetry_topic.clone(),
        speedup: args.speedup,
        // A few VMs dominate the sample; unkeyed messages spread evenly over the embedded
        // broker's partitions, which keep only their newest 5 MB each.
        key: ReplayKey::None,
    };
    let kafka = k.clone();
    let quiet = args.quiet;
    let replayed = tokio::task::spawn_blocking(move || {
        let stats = replay(&samples, &kafka, &replay_options, |sent, total| {
            if !quiet {
                eprint!("\r      {sent}/{total} messages sent");
            }
        });
        if !quiet {
            eprintln!();
        }
        stats
    })
    .await??;
    send_garbage(&k, &brokers, &k.telemetry_topic)?;

    progress(
        args.quiet,
        "[3/6] waiting for the background flow to store every sample",
    );
    loop {
        // Only telemetry is replayed, so every stored row is a telemetry sample.
        let done = status.progress();
        if done.rows >= replayed.samples && done.dead_letters >= GARBAGE.len() as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "timed out: {} of {} samples stored ({} of {} messages consumed), {} dead letters",
                done.rows,
                replayed.samples,
                done.messages,
                replayed.messages,
                done.dead_letters
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let outcome = ingest.await??;
    let (stats, store) = (outcome.ingest, outcome.store);

    progress(args.quiet, "[4/6] querying the tables with SQL");
    let count = scalar(&store, "SELECT count(*) FROM telemetry").await?;
    let entities = scalar(&store, "SELECT count(DISTINCT entity) FROM telemetry").await?;
    let archived = store.telemetry.archive_files().len();
    let busiest = store
        .sql(
            "SELECT entity, round(avg(value), 2) AS avg_cpu_pct, round(max(value), 2) AS max_cpu_pct \
             FROM telemetry WHERE metric = 'cpu_usage_pct' GROUP BY entity ORDER BY avg_cpu_pct DESC LIMIT 5",
        )
        .await?;
    let interference = store
        .sql(
            "SELECT labels['interference'] AS interference, round(avg(value), 2) AS mean_p99_ms, count(*) AS tests \
             FROM telemetry WHERE metric = 'p99_latency_ms' AND labels['run'] = 'TheGame_V03' \
             GROUP BY 1 ORDER BY mean_p99_ms DESC LIMIT 6",
        )
        .await?;

    progress(
        args.quiet,
        "[5/6] training the built-in jobs on the tables; publishing winners to the Information Core",
    );
    let models = train_builtin_jobs(&dir, &store).await?;
    progress(
        args.quiet,
        "      colouring the bundled Online Boutique sample (labelled faults) with the colouring job",
    );
    let colouring = {
        let core = dcpilot_info_core::InfoCore::open_dir(&dcpilot_info_core_dir(&dir))?;
        crate::demo::colouring::run(&dir, &core).await?
    };

    progress(
        args.quiet,
        "[6/6] serving the models over HTTP; placements, a rebalance and scheduler-extender calls as a placement engine would",
    );
    let counters = measured_counters(&store).await?;
    let fg = crate::demo::foreground::run(&dcpilot_info_core_dir(&dir), &counters).await?;
    progress(
        args.quiet,
        "      the intent loop: a day of traffic and noisy neighbours against a plant built from the NTUA runs (dcpilot planner replay)",
    );
    let intent_loop = crate::planner::replay(
        &bundled_ntua_samples()?,
        &crate::planner::ReplayArgs::default(),
    )
    .await?;
    let holdout_predictions = if args.plots {
        holdout_predictions(&dir, &store).await?
    } else {
        Vec::new()
    };
    let busiest_vms: Vec<BusyVm> = serde_json::from_slice(&json_array(&busiest)?)?;
    let p99_by_interference: Vec<InterferenceRow> =
        serde_json::from_slice(&json_array(&interference)?)?;
    if count as u64 != replayed.samples {
        bail!(
            "{count} samples in the table, {} replayed",
            replayed.samples
        );
    }
    Ok(DemoReport {
        replayed_samples: replayed.samples,
        ingested_samples: count,
        entities,
        archived_parquet_files: archived,
        ingest_seconds: ingest_secs,
        ingest_rate_samples_per_s: replayed.samples as f64 / ingest_secs,
        dead_letters: stats.dead_letters,
        duplicates_dropped: stats.duplicates,
        busiest_vms,
        p99_by_interference,
        models,
        foreground: fg,
        colouring,
        intent_loop,
        information_core: dcpilot_info_core_dir(&dir),
        holdout_predictions,
    })
}

fn dcpilot_info_core_dir(dir: &Path) -> std::path::PathBuf {
    dcpilot_schemas::names::data_dir::models(dir)
}

/// Runs every built-in job once on the demo's tables.
async fn train_builtin_jobs(dir: &Path, store: &TelemetryStore) -> Result<Vec<ModelLine>> {
    let core = dcpilot_info_core::InfoCore::open_dir(&dcpilot_info_core_dir(dir))?;
    let registry = dcpilot_pipelines::Registry::builtin()?;
    let mut lines = Vec::new();
    // The colouring job colours the Nezha sample instead (see demo_colouring).
    for job in registry.jobs().filter(|j| !j.spec().model.is_colouring()) {
        let report = dcpilot_pipelines::run_once(job.clone(), store.context(), &core)
            .await
            .with_context(|| format!("job {}", job.name()))?;
        let version = report
            .published_version
            .or_else(|| core.snapshot().get(&report.job).map(|m| m.version()));
        lines.push(ModelLine {
            name: report.job,
            version,
            metric: report.metric,
            model_error: report.model_error,
            baseline: report.baseline,
            baseline_error: report.baseline_error,
            outcome: match (report.published_version, report.rejected) {
                (Some(v), _) => format!("published v{v}"),
                (None, Some(why)) => format!("not published: {why}"),
                (None, None) => "not published".into(),
            },
        });
    }
    Ok(lines)
}

fn send_garbage(kafka: &KafkaConfig, brokers: &str, topic: &str) -> Result<()> {
    let producer: BaseProducer = client_config(kafka, brokers).create()?;
    for payload in GARBAGE {
        send_waiting(
            &producer,
            BaseRecord::<[u8], [u8]>::to(topic).payload(payload),
        )?;
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(())
}

async fn scalar(store: &TelemetryStore, sql: &str) -> Result<i64> {
    let batches = store.sql(sql).await?;
    let value = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).clone())
        .context("query returned no rows")?;
    let array = value
        .as_any()
        .downcast_ref::<dcpilot_background::Int64Array>()
        .context("expected an integer")?;
    Ok(array.value(0))
}

/// Counters the per-core files give per node (IPC, L3 and L2 misses, C0 residency).
const NODE_COUNTERS: usize = 4;

/// What the demo's hosts report as hardware counters, from the bundled NTUA run
/// Memento_V03's per-core files (the co-runners on nginx's node): per pod kind (`l3`,
/// `membw`, `cpu`: its four-pod scenario) and `quiet` (its Baseline tests), the mean of
/// each counter of nginx's node — `(kind, metric, value)`.
async fn measured_counters(store: &TelemetryStore) -> Result<Vec<(String, String, f64)>> {
    #[derive(serde::Deserialize)]
    struct Row {
        kind: String,
        metric: String,
        value: f64,
    }
    let batches = store
        .sql(
            "SELECT CASE WHEN labels['interference'] LIKE 'Baseline%' THEN 'quiet' \
                         WHEN labels['interference'] LIKE '%l3%' THEN 'l3' \
                         WHEN labels['interference'] LIKE '%memBW%' THEN 'membw' ELSE 'cpu' END AS kind, \
                    CAST(metric AS VARCHAR) AS metric, avg(value) AS value \
             FROM telemetry WHERE metric LIKE 'pcm_%' AND labels['run'] = 'Memento_V03' \
               AND labels['node'] = labels['nginx_node'] \
               AND (labels['interference'] LIKE 'Baseline%' \
                    OR labels['interference'] IN ('4_stress-ng_l3_pods', '4_iBench_memBW_pods', '4_iBench_CPU_pods')) \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await?;
    let rows: Vec<Row> = serde_json::from_slice(&json_array(&batches)?)?;
    crate::ensure!(
        rows.len() == 4 * NODE_COUNTERS,
        "the bundled PCM files give {} (kind, counter) means",
        rows.len()
    );
    Ok(rows
        .into_iter()
        .map(|r| (r.kind, r.metric, r.value))
        .collect())
}

fn json_array(batches: &[dcpilot_background::RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = dcpilot_background::JsonArrayWriter::new(Vec::new());
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    Ok(writer.into_inner())
}

/// Each built-in job's (actual, predicted) on its holdout, with the served models.
async fn holdout_predictions(
    dir: &Path,
    store: &TelemetryStore,
) -> Result<Vec<(String, Vec<(f64, f64)>)>> {
    let core = dcpilot_info_core::InfoCore::open_dir(&dcpilot_info_core_dir(dir))?;
    let snapshot = core.snapshot();
    let registry = dcpilot_pipelines::Registry::builtin()?;
    let mut plots = Vec::new();
    for job in registry.jobs() {
        let points =
            dcpilot_pipelines::holdout_predictions(job.clone(), store.context(), &snapshot).await?;
        plots.push((job.name().to_string(), points));
    }
    Ok(plots)
}
