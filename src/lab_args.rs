//! Arguments of the commands whose work is in `dcpilot_lab`: `demo`, `simulate`, `planner`.

use std::path::PathBuf;

use anyhow::Result;
use dcpilot_background::BackgroundConfig;
use dcpilot_lab::demo::DemoOptions;
use dcpilot_lab::simulate::SimulateOptions;

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

/// Runs the demo; returns the report to print (text or JSON), after writing the HTML page
/// if asked for.
pub async fn demo(data_dir: &std::path::Path, args: DemoArgs) -> Result<String> {
    let options = DemoOptions {
        speedup: args.speedup,
        quiet: args.json,
        plots: args.html.is_some(),
        timeout_secs: args.timeout_secs,
    };
    let report = dcpilot_lab::demo::run(data_dir, options).await?;
    if let Some(path) = &args.html {
        std::fs::write(path, report.html()?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        if !args.json {
            eprintln!("report with plots written to {}", path.display());
        }
    }
    Ok(if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        report.text()
    })
}

/// Options of `dcpilot simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Hosts.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Workloads (each with `--replicas` instances).
    #[arg(long, default_value_t = 50)]
    workloads: usize,
    /// Instances per workload.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Telemetry samples per second.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// How long to send telemetry, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Bootstrap servers; default: the configuration's, else the embedded broker of a
    /// running `dcpilot background`.
    #[arg(long)]
    brokers: Option<String>,
    /// The background's TOML configuration, for topics and `[kafka.client]` (security,
    /// compression); `DCPILOT__SECTION__KEY` overrides.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the synthetic landscape and values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

impl SimulateArgs {
    /// The options, with the configuration loaded.
    pub fn into_options(self) -> Result<SimulateOptions> {
        Ok(SimulateOptions {
            hosts: self.hosts,
            workloads: self.workloads,
            replicas: self.replicas,
            rate: self.rate,
            duration_secs: self.duration_secs,
            brokers: self.brokers,
            config: BackgroundConfig::load(self.config.as_deref())?,
            seed: self.seed,
            json: self.json,
        })
    }
}

/// `dcpilot planner …`
#[derive(clap::Subcommand)]
pub enum PlannerCommand {
    /// Replay days of traffic with co-runner episodes against a plant built from NTUA-format
    /// profiling runs: the autopilot (its model trained on the other runs) next to HPA-style
    /// controllers, a counter-threshold rule, the rule with an HPA, a fixed replica count and
    /// the oracle bound, on the same plant, traces, noise and rollout delay.
    Replay {
        /// NTUA runs (`Profiling/Raw_Data`, or a directory of runs); default: the bundled
        /// sample.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Which cores form each node and where each run put nginx and its co-runners
        /// (TOML, as `lab/ntua-layout.toml`); default: the NTUA machine's.
        #[arg(long)]
        layout: Option<PathBuf>,
        /// Runs whose name contains this (any case) give the plant its co-runner tests; the
        /// others train the models and the rule, and may share none of its scenarios.
        #[arg(long, default_value = "mix")]
        plant_runs: String,
        /// How many traces (days), each from its own seed.
        #[arg(long, default_value_t = 20)]
        traces: u64,
        /// The first trace's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The latency objective, p99 ms.
        #[arg(long, default_value_t = 1.0)]
        slo_ms: f64,
        /// Minutes per trace.
        #[arg(long, default_value_t = 1440)]
        minutes: usize,
        /// Minutes from a scale-out or move until the new replica serves.
        #[arg(long, default_value_t = 1)]
        rollout_minutes: usize,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `planner` subcommand; returns what to print.
pub async fn planner(command: PlannerCommand) -> Result<String> {
    let PlannerCommand::Replay {
        data,
        layout,
        plant_runs,
        traces,
        seed,
        slo_ms,
        minutes,
        rollout_minutes,
        json,
    } = command;
    let layout = match layout {
        Some(path) => dcpilot_lab::datasets::Layout::from_file(&path)?,
        None => dcpilot_lab::datasets::Layout::ntua(),
    };
    let samples = dcpilot_lab::planner::ntua_samples(data.as_deref(), &layout)?;
    let args = dcpilot_lab::planner::ReplayArgs {
        plant_runs,
        layout,
        traces,
        seed,
        slo_ms,
        minutes,
        rollout_minutes,
    };
    let report = dcpilot_lab::planner::replay(&samples, &args).await?;
    Ok(if json {
        serde_json::to_string_pretty(&report)?
    } else {
        report.text()
    })
}
