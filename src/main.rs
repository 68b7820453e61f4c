//! `dcpilot`: the command line. Wiring only; the logic lives in the library crates.

mod anomalies;
mod foreground;
mod jobs;
mod lab_args;
mod landscape;
mod models;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dcpilot_background::replay::ReplayKey;
use dcpilot_background::BackgroundConfig;
use dcpilot_lab::tools::query::Tables;
use dcpilot_schemas::Format;

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
    Demo(lab_args::DemoArgs),
    /// Run both loops in one process: the background (ingest, jobs, models published to
    /// `dcpilot.models`) and the foreground API following the same brokers.
    Run {
        /// TOML configuration: the background's keys (config/background.toml) plus a
        /// `[foreground]` section with config/foreground.toml's keys.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Send a synthetic landscape and its telemetry at a given rate (load tests, benches).
    Simulate(lab_args::SimulateArgs),
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
        #[arg(long, value_enum)]
        format: anomalies::ReplayFormat,
        /// The landscape topic (for `--format nezha`); default: the configuration's.
        #[arg(long)]
        landscape_topic: Option<String>,
        /// Bootstrap servers; default: the embedded broker of a running `dcpilot background`.
        #[arg(long)]
        brokers: Option<String>,
        /// Target topic.
        #[arg(long, default_value = dcpilot_schemas::names::topics::TELEMETRY)]
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
        command: lab_args::PlannerCommand,
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
        .event_interval(dcpilot_foreground::service::EVENT_INTERVAL)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = cli.data_dir;
    let printed = |text: String| print(&text).map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Demo(args) => printed(runtime()?.block_on(lab_args::demo(&data_dir, args))?),
        Command::Background { config } => {
            let config = BackgroundConfig::load(config.as_deref())?;
            runtime()?.block_on(dcpilot_lab::processes::background(&data_dir, config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            runtime()?.block_on(dcpilot_lab::processes::both(&data_dir, config.as_deref()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate(args) => {
            let options = args.into_options()?;
            dcpilot_lab::simulate::run(&data_dir, options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Foreground(args) => runtime()?.block_on(foreground::run(&data_dir, args)),
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
            let brokers = dcpilot_lab::replay::brokers(brokers, &kafka, &data_dir)?;
            let replay = dcpilot_lab::replay::TraceReplay {
                source,
                format: format.samples(),
                landscape_topic,
                brokers,
                topic,
                speedup,
                key,
            };
            dcpilot_lab::replay::send(replay, &kafka)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs {
            command,
            json,
            spec_dir,
        } => {
            let (text, ok) = runtime()?.block_on(jobs::run(&data_dir, spec_dir, command, json))?;
            print(&text)?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Models { command, json } => printed(models::run(&data_dir, command, json)?),
        Command::Planner { command } => printed(runtime()?.block_on(lab_args::planner(command))?),
        Command::Landscape {
            command,
            json,
            file,
        } => printed(landscape::run(&data_dir, file, command, json)?),
        Command::Anomalies {
            command,
            data,
            job,
            detector,
            json,
        } => {
            let data = dcpilot_lab::rca::data_dir(data.context("--data DIR is required")?)?;
            let method = dcpilot_lab::rca::Method::of(job.as_deref(), detector.as_deref())?;
            printed(anomalies::run(&data, &method, command, json)?)
        }
        Command::Query {
            sql,
            json,
            data,
            shared_dir,
        } => {
            let tables = match (&data, &shared_dir) {
                (Some(dir), _) => Tables::Trace(dir),
                (None, Some(shared)) => Tables::Shared(shared),
                (None, None) => Tables::DataDir(&data_dir),
            };
            printed(runtime()?.block_on(dcpilot_lab::tools::query::run(tables, &sql, json))?)
        }
    }
}

/// Writes `text` to stdout (a newline added if it has none); a closed pipe (`… | head`)
/// ends the output quietly instead of panicking.
fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let newline = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(newline.as_bytes()))
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing stdout"),
        _ => Ok(()),
    }
}

fn decode(format: Format, landscape: bool) -> Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let decoded = dcpilot_lab::tools::decode::decode(&input, format, landscape)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&decoded.ndjson)?;
    stdout.flush()?;
    eprintln!("{}", decoded.summary);
    Ok(if decoded.clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
