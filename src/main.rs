//! `dcpilot`: the command line. Wiring only; the logic lives in the library crates.

mod demo;
mod demo_foreground;
mod foreground;
mod http_client;
mod jobs;
mod models;
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
use dcpilot_background::{BackgroundConfig, EmbeddedBroker, OpenMode, TelemetryStore};
use dcpilot_schemas::decode::Decoder;
use dcpilot_schemas::traces::{read_trace, TraceFormat};
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
        /// Trace format: bitbrains, ntua or native (NDJSON samples).
        #[arg(long)]
        format: TraceFormat,
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
    /// The Information Core: list, inspect, roll back, export and import models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo(_) | Command::Decode { .. } | Command::Query { .. }
    );
    init_logging(if quiet { "warn" } else { "info" });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
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
            brokers,
            topic,
            speedup,
            key,
        } => {
            let brokers = match brokers {
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
            let samples = read_trace(format, &source)?;
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
            let stats = replay(
                &samples,
                &BackgroundConfig::default().kafka,
                &options,
                |sent, total| {
                    eprint!("\r  {sent}/{total} messages");
                },
            )?;
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
        Command::Query { sql, json, data } => {
            runtime()?.block_on(query(&cli.data_dir, data.as_deref(), &sql, json))
        }
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
    let mut fg = match table.remove("foreground") {
        None => dcpilot_foreground::ForegroundConfig::default(),
        Some(section) => {
            let text = toml::to_string(&section).context("re-reading [foreground]")?;
            dcpilot_foreground::ForegroundConfig::parse(&text).map_err(|problems| {
                anyhow::anyhow!(
                    "invalid configuration in {}:\n{}",
                    label,
                    problems
                        .iter()
                        .map(|p| format!("foreground.{p}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?
        }
    };
    let config = BackgroundConfig::from_table(&label, table, &env)?;
    if config.kafka.brokers.is_none() {
        // A broker.addr left by a killed run would point the foreground at nothing.
        let _ = std::fs::remove_file(data_dir.join("broker.addr"));
    }
    let configured = config.kafka.brokers.clone();
    let foreground = async {
        let brokers = match configured {
            Some(b) => b,
            None => {
                let started = std::time::Instant::now();
                loop {
                    if let Some(b) = read_broker_address(data_dir) {
                        break b;
                    }
                    if started.elapsed() > std::time::Duration::from_secs(60) {
                        bail!("the embedded broker did not start within 60 s");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        };
        fg.sources.brokers = Some(brokers);
        foreground::serve(data_dir, fg).await
    };
    let (bg, fg) = tokio::try_join!(background(data_dir, config), foreground)?;
    Ok(if bg == ExitCode::SUCCESS { fg } else { bg })
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

async fn background(data_dir: &Path, config: BackgroundConfig) -> Result<ExitCode> {
    // Bad job specs are configuration errors: report them before starting anything.
    let registry = match config.jobs.enabled {
        true => Some(config.jobs.registry()?),
        false => None,
    };
    let k = &config.kafka;
    let embedded = match &k.brokers {
        Some(_) => None,
        None => Some(EmbeddedBroker::start(
            &[
                &k.telemetry_topic,
                &k.landscape_topic,
                &k.dlq_topic,
                dcpilot_info_core::replication::MODELS_TOPIC,
            ],
            config.embedded.partitions,
            Some(data_dir),
        )?),
    };
    let brokers = match (&k.brokers, &embedded) {
        (Some(b), _) => b.clone(),
        (None, Some(e)) => e.bootstrap_servers(),
        (None, None) => unreachable!("an embedded broker is started when none is configured"),
    };
    if embedded.is_some() {
        eprintln!(
            "embedded broker at {brokers} (also in {})",
            data_dir.join("broker.addr").display()
        );
    }
    let store = TelemetryStore::open(Some(data_dir), &config.store, OpenMode::ReadWrite)?;
    let (stop, stopped) = watch::channel(false);
    if let Some(addr) = config.http.listen {
        let mut rx = stopped.clone();
        let bound = dcpilot_background::http::serve(addr, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await?;
        eprintln!("metrics at http://{bound}/metrics");
    }
    tokio::spawn(async move {
        termination().await;
        tracing::info!("shutting down: storing and committing the current batch");
        let _ = stop.send(true);
    });
    let jobs = match registry {
        Some(registry) => Some(start_jobs(
            data_dir,
            &config,
            registry,
            &brokers,
            &store,
            stopped.clone(),
        )?),
        None => None,
    };
    let stats = dcpilot_background::run_ingest(&config, &brokers, &store, stopped).await?;
    if let Some(jobs) = jobs {
        let runs = jobs.await.context("the job runner stopped abnormally")??;
        for (job, r) in &runs.runs {
            eprintln!(
                "job {job}: {} runs completed, {} failed",
                r.succeeded, r.failed
            );
        }
    }
    eprintln!(
        "stopped: {} messages, {} rows stored, {} duplicates dropped, {} dead letters",
        stats.messages, stats.rows, stats.duplicates, stats.dead_letters
    );
    drop(embedded);
    Ok(ExitCode::SUCCESS)
}

/// Opens the Information Core (publishing every change to `dcpilot.models` for foreground
/// replicas) and starts the job runner.
fn start_jobs(
    data_dir: &Path,
    config: &BackgroundConfig,
    registry: dcpilot_pipelines::Registry,
    brokers: &str,
    store: &TelemetryStore,
    stopped: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<dcpilot_background::Result<dcpilot_background::JobRunnerStats>>>
{
    let models_dir = models::store_dir(data_dir);
    let models = std::sync::Arc::new(
        dcpilot_info_core::InfoCore::open_dir(&models_dir)
            .with_context(|| format!("opening the Information Core in {}", models_dir.display()))?,
    );
    let sink = dcpilot_info_core::replication::KafkaSink::new(
        brokers,
        dcpilot_info_core::replication::MODELS_TOPIC,
    )?;
    models.set_change_sink(std::sync::Arc::new(sink));
    models.resync()?;
    let runner = dcpilot_background::JobRunner::new(
        config.jobs.clone(),
        registry,
        store.context().clone(),
        store.telemetry.clone(),
        models,
    );
    Ok(tokio::spawn(runner.run(stopped)))
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

async fn query(data_dir: &Path, trace: Option<&Path>, sql: &str, json: bool) -> Result<ExitCode> {
    let store = match trace {
        Some(dir) => jobs::load_trace(dir)?,
        None => TelemetryStore::open(
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

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
