//! `dcpilot demo`: both loops end to end on embedded defaults — an in-process broker, the
//! file-backed tables and Information Core under `--data-dir/demo`, a replay of the bundled
//! real-trace sample, the built-in jobs trained on it — then the foreground serving those
//! models to a simulated placement engine over HTTP, and a report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dcpilot_background::replay::{replay, send_waiting, ReplayKey, ReplayOptions};
use dcpilot_background::{BackgroundConfig, BackgroundService, TelemetryStore};
use dcpilot_schemas::traces::{parse_bitbrains, parse_ntua, pcm_of_tests};
use dcpilot_schemas::TelemetrySample;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;
use tokio::sync::watch;

use crate::sample_data::{BITBRAINS, NTUA, NTUA_PCM};

/// Options of `dcpilot demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Event-time speed-up of the replay; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    speedup: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also write the report as an HTML page with plots (predictions against the truth,
    /// placement latency histogram).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Give up waiting for ingestion after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
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
    let mut skipped = dcpilot_schemas::traces::Skipped::default();
    for (file, text) in BITBRAINS {
        samples.extend(parse_bitbrains(Path::new(file), text, &mut skipped));
    }
    anyhow::ensure!(skipped.is_empty(), "the bundled sample: {skipped}");
    samples.extend(bundled_ntua_samples()?);
    samples.sort_by_key(|s| s.timestamp_ms);
    Ok(samples)
}

/// The bundled NTUA runs (nginx measurements and each test's host counters).
pub(crate) fn bundled_ntua_samples() -> Result<Vec<TelemetrySample>> {
    let mut samples = Vec::new();
    let mut skipped = dcpilot_schemas::traces::Skipped::default();
    for (run_index, (run, text)) in NTUA.iter().enumerate() {
        let path = PathBuf::from(run).join("nginx_metrics.csv");
        let nginx = parse_ntua(&path, text, run_index, &mut skipped);
        // Each test's host counters, as `replay --format ntua` reads them beside the file.
        let counters = pcm_of_tests(
            &nginx,
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
    anyhow::ensure!(skipped.is_empty(), "the bundled sample: {skipped}");
    samples.sort_by_key(|s| s.timestamp_ms);
    Ok(samples)
}

fn progress(json: bool, message: &str) {
    if !json {
        eprintln!("{message}");
    }
}

pub async fn run(data_dir: &Path, args: DemoArgs) -> Result<ExitCode> {
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
        args.json,
        &format!(
            "[1/6] embedded broker at {brokers}; tables in {}",
            dir.display()
        ),
    );

    let samples = bundled_samples()?;
    progress(
        args.json,
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
    let quiet = args.json;
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
    send_garbage(&brokers, &k.telemetry_topic)?;

    progress(
        args.json,
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

    progress(args.json, "[4/6] querying the tables with SQL");
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
        args.json,
        "[5/6] training the built-in jobs on the tables; publishing winners to the Information Core",
    );
    let models = train_builtin_jobs(&dir, &store).await?;
    progress(
        args.json,
        "      colouring the bundled Online Boutique sample (labelled faults) with the colouring job",
    );
    let colouring = {
        let core = dcpilot_info_core::InfoCore::open_dir(&dcpilot_info_core_dir(&dir))?;
        crate::demo_colouring::run(&dir, &core).await?
    };

    progress(
        args.json,
        "[6/6] serving the models over HTTP; placements, a rebalance and scheduler-extender calls as a placement engine would",
    );
    let counters = measured_counters(&store).await?;
    let fg = crate::demo_foreground::run(&dcpilot_info_core_dir(&dir), &counters).await?;
    progress(
        args.json,
        "      the intent loop: a day of traffic and noisy neighbours against a plant built from the NTUA runs (dcpilot planner replay)",
    );
    let intent_loop = crate::planner::replay(
        &bundled_ntua_samples()?,
        &crate::planner::ReplayArgs {
            plant_runs: "_V04".into(),
            traces: 3,
            seed: 1,
            slo_ms: 1.0,
            minutes: 24 * 60,
        },
    )
    .await?;
    if let Some(path) = &args.html {
        let page = html_report(&dir, &store, &models, &fg, count).await?;
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        progress(
            args.json,
            &format!("report with plots written to {}", path.display()),
        );
    }

    if args.json {
        let report = json!({
            "ingested_samples": count,
            "models": models,
            "placements": fg.placements,
            "decisions": fg.decisions,
            "rebalance": fg.rebalance,
            "extender": fg.extender,
            "landscape": fg.landscape,
            "colouring": colouring,
            "intent_loop": intent_loop,
            "replayed_samples": replayed.samples,
            "ingest_seconds": ingest_secs,
            "ingest_rate_samples_per_s": replayed.samples as f64 / ingest_secs,
            "dead_letters": stats.dead_letters,
            "duplicates_dropped": stats.duplicates,
            "entities": entities,
            "archived_parquet_files": archived,
            "busiest_vms": serde_json::from_slice::<serde_json::Value>(&json_array(&busiest)?)?,
            "p99_by_interference": serde_json::from_slice::<serde_json::Value>(&json_array(&interference)?)?,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("\ndcpilot demo — both loops on the bundled real-trace sample\n");
        println!("  samples replayed       {}", replayed.samples);
        println!("  samples in `telemetry` {count} ({entities} entities; {archived} partitions spilled to Parquet, still queryable)");
        println!(
            "  ingest                 {:.1}s, {:.0} samples/s end to end",
            ingest_secs,
            replayed.samples as f64 / ingest_secs
        );
        println!("  dead letters           {} (malformed messages sent on purpose, each with its reason)", stats.dead_letters);
        println!("\nBitbrains VMs with the highest mean CPU (SQL over `telemetry`):");
        println!("{}", dcpilot_background::pretty(&busiest)?);
        println!("\nnginx p99 latency under co-located interference (NTUA, run TheGame_V03):");
        println!("{}", dcpilot_background::pretty(&interference)?);
        println!("\nEffect models (holdout = newest 20% by time; published only if better than the best baseline):");
        println!(
            "  {:<22} {:>7} {:<6} {:>11} {:>14}  best baseline / outcome",
            "model", "version", "metric", "model error", "baseline error"
        );
        for m in &models {
            println!(
                "  {:<22} {:>7} {:<6} {:>11.3} {:>14.3}  {} / {}",
                m.name,
                m.version.map_or("-".to_string(), |v| v.to_string()),
                m.metric,
                m.model_error,
                m.baseline_error,
                m.baseline,
                m.outcome
            );
        }
        for m in models
            .iter()
            .filter(|m| m.outcome.starts_with("not published"))
        {
            println!(
                "  note: {} is not served from this run. On this sample's holdout it lost to {} ({:.3} vs {:.3}),\n        and a model that loses to a naive baseline is never published; the foreground then uses\n        rules of thumb and says so (`degraded`). The bundled sample is small (8 VMs, 7 days): the\n        verdict on the full traces is in the README (\"Models in the demo\").",
                m.name, m.baseline, m.model_error, m.baseline_error
            );
        }
        println!(
            "  Information Core: {}",
            dcpilot_info_core_dir(&dir).display()
        );
        let p = &fg.placements;
        println!("\nForeground (HTTP on loopback, default 10 ms budget):");
        println!(
            "  placements             {} requests: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms round trip",
            p.count, p.p50_ms, p.p99_ms, p.max_ms
        );
        println!(
            "  budget overruns        {} (anytime answers: {}, degraded: {})",
            p.budget_overruns, p.budget_exhausted, p.degraded
        );
        for d in &fg.decisions {
            println!(
                "  {} -> {}: {}",
                d["workload"].as_str().unwrap_or("?"),
                d["chosen"].as_str().unwrap_or("?"),
                d["explanation"].as_str().unwrap_or("")
            );
            println!(
                "      not {}: {}",
                d["runner_up"].as_str().unwrap_or("?"),
                d["runner_up_explanation"].as_str().unwrap_or("")
            );
        }
        let r = &fg.rebalance;
        println!(
            "  rebalance              {} actions, objective {} -> {} in {} ms; first: {}",
            r["actions"],
            r["objective_before"],
            r["objective_after"],
            r["used_ms"],
            r["first_action"].as_str().unwrap_or("-")
        );
        println!(
            "  scheduler extender     filter passed {} nodes; prioritize best {} / worst {}",
            fg.extender["filter_passed"],
            fg.extender["prioritize_top"],
            fg.extender["prioritize_bottom"]
        );
        let summary = &fg.landscape["summary"];
        let count = |layer: &str| -> String {
            summary["nodes"][layer]
                .as_object()
                .map_or("-".into(), |types| {
                    let parts: Vec<String> =
                        types.iter().map(|(t, n)| format!("{n} {t}")).collect();
                    parts.join(", ")
                })
        };
        println!(
            "  landscape graph        physical: {}; virtual: {}; service: {}",
            count("physical"),
            count("virtual"),
            count("service")
        );
        let affected: Vec<&str> = fg.landscape["affected"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "  blast radius           {} takes down {} nodes: {}",
            fg.landscape["blast_of"].as_str().unwrap_or("-"),
            affected.len(),
            affected.join(", ")
        );
        println!(
            "  landscape view         {} (open it in a browser: layers, utilisation as colour, details on click)",
            fg.landscape["page"].as_str().unwrap_or("-")
        );
        print_colouring(&colouring);
        print_intent_loop(&intent_loop);
    }
    if count as u64 != replayed.samples {
        bail!(
            "{count} samples in the table, {} replayed",
            replayed.samples
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One model line of the demo report.
#[derive(serde::Serialize)]
struct ModelLine {
    name: String,
    /// The version served after this run (the new one if published, else the previous
    /// champion's, if any).
    version: Option<u64>,
    metric: String,
    model_error: f64,
    baseline: String,
    baseline_error: f64,
    outcome: String,
}

fn dcpilot_info_core_dir(dir: &Path) -> std::path::PathBuf {
    crate::models::store_dir(dir)
}

/// The colouring section of the text report.
fn print_colouring(c: &serde_json::Value) {
    println!(
        "\nLandscape colouring (bundled Online Boutique sample, real metrics, labelled faults):"
    );
    for f in c["faults"].as_array().into_iter().flatten() {
        let top: Vec<&str> = f["top"]
            .as_array()
            .map(|t| {
                t.iter()
                    .take(3)
                    .filter_map(serde_json::Value::as_str)
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "  fault at {} {:<22} on {:<22} ranked {:<4} (top 3: {})",
            f["at"],
            f["kind"].as_str().unwrap_or("-"),
            f["service"].as_str().unwrap_or("-"),
            f["rank"].as_u64().map_or("-".into(), |r| r.to_string()),
            top.join(", ")
        );
    }
    let job = &c["job"];
    println!(
        "  colouring job          v{} at {}: {} entities, {} anomalous; labelled cause {} ({})",
        job["version"],
        job["at"],
        job["entities"],
        job["anomalous"],
        job["labelled"]["service"].as_str().unwrap_or("-"),
        job["labelled"]["kind"].as_str().unwrap_or("-")
    );
    for (i, cause) in job["top_causes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        println!(
            "    {}. {:<24} score {:>5.2}  metrics {}  explains {}",
            i + 1,
            cause["entity"].as_str().unwrap_or("-"),
            cause["score"].as_f64().unwrap_or(f64::NAN),
            cause["metrics"],
            cause["explains"]
        );
    }
    println!(
        "  coloured view          {} (green normal to red anomalous, the likeliest cause outlined)",
        c["page"].as_str().unwrap_or("-")
    );
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

fn send_garbage(brokers: &str, topic: &str) -> Result<()> {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
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

/// What the demo's hosts report as hardware counters, from the bundled NTUA run
/// TheGame_V03's PCM files: per pod kind (`l3`, `membw`, `cpu`: its four-pod scenario) and
/// `quiet` (its Baseline tests), each counter's mean — `(kind, metric, value)`.
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
             FROM telemetry WHERE metric LIKE 'pcm_%' AND labels['run'] = 'TheGame_V03' \
               AND (labels['interference'] LIKE 'Baseline%' \
                    OR labels['interference'] IN ('4_stress-ng_l3_pods', '4_iBench_memBW_pods', '4_iBench_CPU_pods')) \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await?;
    let rows: Vec<Row> = serde_json::from_slice(&json_array(&batches)?)?;
    anyhow::ensure!(
        rows.len() == 4 * dcpilot_schemas::traces::PCM_SYSTEM_METRICS.len(),
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

/// The report as one HTML page with inline SVG plots.
async fn html_report(
    dir: &Path,
    store: &TelemetryStore,
    models: &[ModelLine],
    fg: &crate::demo_foreground::ForegroundReport,
    ingested: i64,
) -> Result<String> {
    use crate::report_html::{escape, latency_histogram, predicted_vs_actual};
    let core = dcpilot_info_core::InfoCore::open_dir(&dcpilot_info_core_dir(dir))?;
    let snapshot = core.snapshot();
    let registry = dcpilot_pipelines::Registry::builtin()?;
    let mut plots = String::new();
    for job in registry.jobs() {
        let points =
            dcpilot_pipelines::holdout_predictions(job.clone(), store.context(), &snapshot).await?;
        if !points.is_empty() {
            let title = format!(
                "{}: predicted vs actual on its holdout ({} rows)",
                job.name(),
                points.len()
            );
            plots.push_str(&predicted_vs_actual(&title, &points)?);
        }
    }
    let p = &fg.placements;
    plots.push_str(&latency_histogram(
        &format!("placement round trips over HTTP ({} requests)", p.count),
        &p.latencies_ms,
    )?);
    let mut rows = String::new();
    for m in models {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3} ({})</td><td>{}</td></tr>",
            escape(&m.name),
            m.version.map_or("-".to_string(), |v| v.to_string()),
            escape(&m.metric),
            m.model_error,
            m.baseline_error,
            escape(&m.baseline),
            escape(&m.outcome)
        ));
    }
    let decisions: String = fg
        .decisions
        .iter()
        .map(|d| {
            format!(
                "<li><b>{}</b> → {}: {}</li>",
                escape(d["workload"].as_str().unwrap_or("?")),
                escape(d["chosen"].as_str().unwrap_or("?")),
                escape(d["explanation"].as_str().unwrap_or(""))
            )
        })
        .collect();
    Ok(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>dcpilot demo</title>\
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}svg{{margin:8px}}</style></head><body>\
<h1>dcpilot demo</h1><p>{ingested} real-trace samples ingested (Bitbrains + NTUA).</p>\
<h2>Effect models</h2><table><tr><th>model</th><th>version</th><th>metric</th><th>model error</th><th>best baseline error</th><th>outcome</th></tr>{rows}</table>\
<h2>Placements</h2><p>{} requests over HTTP: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; budget overruns {}.</p><ul>{decisions}</ul>\
<h2>Plots</h2><div>{plots}</div></body></html>\n",
        p.count, p.p50_ms, p.p99_ms, p.max_ms, p.budget_overruns
    ))
}

/// The intent-loop section of the text report: each controller on the replayed day, and
/// the autopilot's first plan that answered a broken objective.
fn print_intent_loop(r: &crate::planner::ReplayReport) {
    println!(
        "\nIntent loop (`dcpilot planner replay`: three days, nginx p99 <= {} ms, plant from the NTUA runs matching {:?}, model from the others):",
        r.config.slo_p99_ms, r.plant_runs
    );
    for o in &r.totals {
        println!(
            "  {:<10} {:>5} violation minutes  {:>6} replica-minutes  {:>4} actions",
            o.controller, o.violation_minutes, o.replica_minutes, o.actions
        );
    }
    // An example of the loop at work: its first change that answered a broken objective
    // (one that mended it, if any did).
    let slo = r.config.slo_p99_ms;
    let changes: Vec<_> = r
        .traces
        .iter()
        .filter_map(|t| t.outcomes.iter().find(|o| o.controller == "autopilot"))
        .flat_map(|o| &o.changes)
        .filter(|c| c.p99_before_ms.is_some_and(|p| p > slo))
        .collect();
    let example = changes
        .iter()
        .find(|c| c.p99_after_ms.is_some_and(|p| p <= slo))
        .or(changes.first());
    if let Some(c) = example {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} ms"));
        println!(
            "  e.g. minute {}: {} on {}, {:.0} req/s, p99 {} (violated) -> the autopilot sets replicas on node-a/node-b from {}/{} to {}/{}; the next minute p99 {}",
            c.minute,
            c.scenario,
            c.noisy_node,
            c.rps,
            ms(c.p99_before_ms),
            c.from[0],
            c.from[1],
            c.to[0],
            c.to[1],
            ms(c.p99_after_ms)
        );
    }
}
