//! `dcpilot`: the command line. Wiring only; the logic lives in the library crates.

mod anomalies;
mod demo;
mod demo_colouring;
mod demo_foreground;
mod foreground;
mod http_client;
mod jobs;
mod landscape;
mod models;
mod planner;
mod report_html;
mod sample_data;
mod simulate;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use dcpilot_background::broker::read_broker_address;
use dcpilot_background::replay::{replay, ReplayKey, ReplayOptions};
use dcpilot_background::{
    BackgroundConfig, BackgroundOutcome, BackgroundService, OpenMode, TelemetryStore,
};
use dcpilot_schemas::decode::Decoder;
use dcpilot_schemas::traces::read_trace;
use dcpilot_schemas::{DecodeContext, Format, LandscapeDecoder, TelemetrySample};
use tokio::sync::watch;

/// Placement autopilot for data centers: telemetry from Kafka, effect models, and
/// deadline-bounded placement.
#[derive(Parser)]
#[command(name = "dcpilot", version, about)]
struct Cli {
    /// Data directory (tables, broker address, Information Core).
    #[arg(
        long,
        global = true,
        env = "DCPILOT_DATA_DIR",
        default_value = "./dcpilot-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process on embedded defaults and a bundled real-trace sample.
    Demo(demo::DemoArgs),
    /// Run both loops in one process: the background (ingest, jobs, models published to
    /// `dcpilot.models`) and the foreground API following the same brokers.
    Run {
        /// TOML configuration: the background's keys (config/background.toml) plus a
        /// `[foreground]` section with config/foreground.toml's keys.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Send a synthetic landscape and its telemetry at a given rate (load tests, benches).
    Simulate(simulate::SimulateArgs),
    /// Run the background flow: ingest telemetry and landscape into SQL tables.
    Background {
        /// TOML configuration; defaults are embedded, `DCPILOT__SECTION__KEY` overrides.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Serve placements, rebalancing, recipe scoring, intents and the Kubernetes scheduler
    /// extender over HTTP (standalone, or following the brokers with --brokers).
    Foreground(foreground::ForegroundArgs),
    /// Decode telemetry from stdin and print samples as NDJSON, bad records as errors.
    Decode {
        /// Wire format of the input.
        #[arg(long, default_value = "auto")]
        format: Format,
        /// Decode landscape events instead of telemetry.
        #[arg(long)]
        landscape: bool,
    },
    /// Send a trace to a telemetry topic.
    Replay {
        /// Trace file or directory.
        #[arg(long)]
        source: PathBuf,
        /// Trace format: bitbrains, ntua or native (NDJSON samples) for telemetry; nezha
        /// for a trace directory (Nezha or native, as `dcpilot anomalies` reads it): its
        /// landscape goes to the landscape topic first, then its telemetry.
        #[arg(long)]
        format: anomalies::ReplayFormat,
        /// The landscape topic (for `--format nezha`); default: the configuration's.
        #[arg(long)]
        landscape_topic: Option<String>,
        /// Bootstrap servers; default: the embedded broker of a running `dcpilot background`.
        #[arg(long)]
        brokers: Option<String>,
        /// Target topic.
        #[arg(long, default_value = "dcpilot.telemetry")]
        topic: String,
        /// Event-time speed-up (3600 = one hour of trace per second); 0 = unpaced.
        #[arg(long, default_value_t = 0.0)]
        speedup: f64,
        /// Message key: `entity` (one entity's samples in order on one partition) or `none`
        /// (spread evenly over partitions).
        #[arg(long, default_value = "entity")]
        key: ReplayKey,
        /// The background's TOML configuration, for `[kafka.client]` (security,
        /// compression) and `kafka.brokers`; `DCPILOT__SECTION__KEY` overrides.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Background jobs: list, validate specs, train once.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
        /// Print JSON for scripts instead of text.
        #[arg(long, global = true)]
        json: bool,
        /// Also register every `*.toml` job spec in this directory (as `[jobs] spec_dir`).
        #[arg(long, global = true)]
        spec_dir: Option<PathBuf>,
    },
    /// The intent planner: `planner replay` proves it on a plant built from measurements.
    Planner {
        #[command(subcommand)]
        command: planner::PlannerCommand,
    },
    /// The Information Core: list, inspect, roll back, export and import models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
        /// Print JSON for scripts instead of text.
        #[arg(long, global = true)]
        json: bool,
    },
    /// The landscape graph: import (networkx, Kubernetes, hwloc, call files, events),
    /// export (networkx, DOT), and what is connected to what, as of any time.
    Landscape {
        #[command(subcommand)]
        command: landscape::LandscapeCommand,
        /// Print JSON for scripts instead of text.
        #[arg(long, global = true)]
        json: bool,
        /// Work on this landscape file instead of `--data-dir`'s (dcpilot's history file,
        /// or a networkx node-link file read as it is).
        #[arg(long, global = true)]
        file: Option<PathBuf>,
    },
    /// Colour a trace by how abnormal each entity is and rank root causes over its graph
    /// (a Nezha-format directory — per-pod metrics, call graph, labelled faults — or a
    /// native one: telemetry.ndjson, landscape.ndjson, faults.json).
    Anomalies {
        #[command(subcommand)]
        command: anomalies::AnomaliesCommand,
        /// The trace directory.
        #[arg(long, global = true)]
        data: Option<PathBuf>,
        /// The colouring job whose detector, windows and weights to use: a spec file, or
        /// a built-in job's name (default: landscape-colouring, as the background runs it).
        #[arg(long, global = true)]
        job: Option<String>,
        /// The detector, instead of the job's: calibrated-robust-z, robust-z or n-sigma.
        #[arg(long, global = true)]
        detector: Option<String>,
        /// Print JSON for scripts instead of text.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Run SQL over the telemetry and landscape tables in the data directory.
    Query {
        /// The query, e.g. "SELECT metric, count(*) FROM telemetry GROUP BY metric".
        sql: String,
        /// Print rows as NDJSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Query a trace directory (as for `jobs run-once --data`) held in memory, instead
        /// of the tables in `--data-dir`: handy while writing a job's SQL.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Query the tables of every replica of a scaled-out background, under its
        /// `cluster.shared_dir`, as one.
        #[arg(long, conflicts_with = "data")]
        shared_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo(_)
            | Command::Decode { .. }
            | Command::Query { .. }
            | Command::Landscape { .. }
            | Command::Anomalies { .. }
    );
    init_logging(if quiet { "warn" } else { "info" });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message before
/// it already quotes (most of ours say what their source said).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DCPILOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => runtime()?.block_on(demo::run(&cli.data_dir, args)),
        Command::Background { config } => {
            let config = BackgroundConfig::load(config.as_deref())?;
            runtime()?.block_on(background(&cli.data_dir, config))
        }
        Command::Run { config } => runtime()?.block_on(run_both(&cli.data_dir, config.as_deref())),
        Command::Simulate(args) => simulate::run(&cli.data_dir, args).map(|()| ExitCode::SUCCESS),
        Command::Foreground(args) => runtime()?.block_on(foreground::run(&cli.data_dir, args)),
        Command::Decode { format, landscape } => decode(format, landscape),
        Command::Replay {
            source,
            format,
            landscape_topic,
            brokers,
            topic,
            speedup,
            key,
            config,
        } => {
            let kafka = BackgroundConfig::load(config.as_deref())?.kafka;
            let brokers = match brokers.or_else(|| kafka.brokers.clone()) {
                Some(b) => b,
                None => read_broker_address(&cli.data_dir).with_context(|| {
                    format!(
                        "no --brokers given and no embedded broker address in {}; start `dcpilot background` first",
                        cli.data_dir.display()
                    )
                })?,
            };
            if !(speedup >= 0.0 && speedup.is_finite()) {
                bail!("--speedup must be a non-negative number, got {speedup}");
            }
            let samples = match format {
                anomalies::ReplayFormat::Samples(format) => {
                    let trace = read_trace(format, &source)?;
                    if !trace.skipped.is_empty() {
                        eprintln!("{}: {}", source.display(), trace.skipped);
                    }
                    trace.samples
                }
                anomalies::ReplayFormat::TraceDir => {
                    let trace = anomalies::load(&source)?;
                    let topic = landscape_topic.unwrap_or_else(|| kafka.landscape_topic.clone());
                    let events = anomalies::send_landscape(&trace, &kafka, &brokers, &topic)?;
                    eprintln!("sent {events} landscape events to {topic}");
                    dcpilot_info_core::anomaly::native::samples(&trace)
                }
            };
            eprintln!(
                "replaying {} samples from {} to {topic} at {brokers}",
                samples.len(),
                source.display()
            );
            let options = ReplayOptions {
                brokers,
                topic,
                speedup,
                key,
            };
            let stats = replay(&samples, &kafka, &options, |sent, total| {
                eprint!("\r  {sent}/{total} messages");
            })?;
            eprintln!(
                "\nsent {} samples in {} messages in {:.1}s",
                stats.samples,
                stats.messages,
                stats.elapsed.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs {
            command,
            json,
            spec_dir,
        } => runtime()?.block_on(jobs::run(&cli.data_dir, spec_dir, command, json)),
        Command::Models { command, json } => models::run(&cli.data_dir, command, json),
        Command::Planner { command } => runtime()?.block_on(planner::run(command)),
        Command::Landscape {
            command,
            json,
            file,
        } => landscape::run(&cli.data_dir, file, command, json),
        Command::Anomalies {
            command,
            data,
            job,
            detector,
            json,
        } => {
            let data = anomalies::data_dir(data.context("--data DIR is required")?)?;
            let method = anomalies::Method::of(job.as_deref(), detector.as_deref())?;
            anomalies::run(&data, &method, command, json)
        }
        Command::Query {
            sql,
            json,
            data,
            shared_dir,
        } => runtime()?.block_on(query(
            &cli.data_dir,
            data.as_deref(),
            shared_dir.as_deref(),
            &sql,
            json,
        )),
    }
}

/// `dcpilot run`: the background and the foreground in one process. The foreground follows
/// the background's brokers (the embedded one when none is configured), so it serves the
/// models the jobs publish and the landscape the topic carries.
async fn run_both(data_dir: &Path, file: Option<&Path>) -> Result<ExitCode> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (label, mut table) = match file {
        Some(path) => (
            path.display().to_string(),
            BackgroundConfig::read_table(path)?,
        ),
        None => ("<defaults>".to_string(), toml::Table::new()),
    };
    let fg_section = table.remove("foreground");
    let mut fg = dcpilot_foreground::ForegroundConfig::from_section(&label, fg_section, &env)?;
    let config = BackgroundConfig::from_table(&label, table, &env)?;
    let client = config.kafka.client.clone();
    let (stop, stopped) = watch::channel(false);
    let service = BackgroundService::start(Some(data_dir), config, stopped.clone()).await?;
    announce(data_dir, &service);
    fg.sources.brokers = Some(service.brokers().to_string());
    if fg.sources.client.is_empty() {
        fg.sources.client = client;
    }
    tokio::spawn(stop_on_signal(stop));
    let foreground = foreground::serve(data_dir, fg, stopped);
    let background = async { Ok::<_, anyhow::Error>(service.run().await?) };
    let (outcome, fg) = tokio::try_join!(background, foreground)?;
    report_stopped(&outcome);
    Ok(fg)
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Flips `stop` on SIGINT/SIGTERM.
async fn stop_on_signal(stop: watch::Sender<bool>) {
    termination().await;
    tracing::info!("shutting down: storing and committing the current batch");
    let _ = stop.send(true);
}

fn announce(data_dir: &Path, service: &BackgroundService) {
    if service.embedded() {
        eprintln!(
            "embedded broker at {} (also in {})",
            service.brokers(),
            data_dir
                .join(dcpilot_background::broker::BROKER_ADDRESS_FILE)
                .display()
        );
    }
    if let Some(addr) = service.metrics_addr() {
        eprintln!("metrics at http://{addr}/metrics, readiness at http://{addr}/readyz");
    }
}

fn report_stopped(outcome: &BackgroundOutcome) {
    if let Some(jobs) = &outcome.jobs {
        for (job, r) in &jobs.runs {
            eprintln!(
                "job {job}: {} runs completed, {} failed",
                r.succeeded, r.failed
            );
        }
    }
    let stats = &outcome.ingest;
    eprintln!(
        "stopped: {} messages, {} rows stored, {} duplicates dropped, {} dead letters",
        stats.messages, stats.rows, stats.duplicates, stats.dead_letters
    );
}

async fn background(data_dir: &Path, config: BackgroundConfig) -> Result<ExitCode> {
    let (stop, stopped) = watch::channel(false);
    let service = BackgroundService::start(Some(data_dir), config, stopped).await?;
    announce(data_dir, &service);
    tokio::spawn(stop_on_signal(stop));
    let outcome = service.run().await?;
    report_stopped(&outcome);
    Ok(ExitCode::SUCCESS)
}

fn decode(format: Format, landscape: bool) -> Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let outcome = if landscape {
        let mut events = Vec::new();
        let outcome = LandscapeDecoder.decode(&input, |e| events.push(e));
        for e in &events {
            serde_json::to_writer(&mut out, e)?;
            writeln!(out)?;
        }
        outcome
    } else {
        let mut samples: Vec<TelemetrySample> = Vec::new();
        let ctx = DecodeContext {
            default_timestamp_ms: now_ms(),
        };
        let (detected, outcome) = Decoder::new(format).decode(&input, &ctx, &mut samples);
        if format == Format::Auto {
            eprintln!("detected format: {detected}");
        }
        for s in &samples {
            serde_json::to_writer(&mut out, s)?;
            writeln!(out)?;
        }
        outcome
    };
    for e in &outcome.errors {
        let line = serde_json::json!({"error": {"record": e.record, "kind": e.kind.as_str(), "reason": e.message}});
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    let dropped = outcome.error_count - outcome.errors.len();
    if dropped > 0 {
        eprintln!("... and {dropped} more bad records");
    }
    eprintln!("{} decoded, {} bad", outcome.samples, outcome.error_count);
    Ok(if outcome.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn query(
    data_dir: &Path,
    trace: Option<&Path>,
    shared_dir: Option<&Path>,
    sql: &str,
    json: bool,
) -> Result<ExitCode> {
    let store = match (trace, shared_dir) {
        (Some(dir), _) => jobs::load_trace(dir)?,
        (None, Some(shared)) => {
            if !shared.is_dir() {
                anyhow::bail!("--shared-dir {}: not a directory", shared.display());
            }
            let store = TelemetryStore::open(
                None,
                &BackgroundConfig::load(None)?.store,
                OpenMode::ReadOnly,
            )?;
            store.share(shared, None)?;
            store
        }
        (None, None) => TelemetryStore::open(
            Some(data_dir),
            &BackgroundConfig::load(None)?.store,
            OpenMode::ReadOnly,
        )?,
    };
    let batches = store.sql(sql).await?;
    if json {
        let mut writer = datafusion_json_lines(&batches)?;
        std::io::stdout().write_all(&std::mem::take(&mut writer))?;
    } else {
        println!("{}", dcpilot_background::pretty(&batches)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn datafusion_json_lines(batches: &[dcpilot_background::RecordBatch]) -> Result<Vec<u8>> {
    dcpilot_background::json_lines(batches).context("formatting rows as JSON")
}

pub(crate) use dcpilot_info_core::now_ms;
