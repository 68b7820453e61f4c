//! `dcpilot planner`: the intent planner proven on a plant built from measurements.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dcpilot_background::TelemetryStore;
use dcpilot_foreground::autopilot::plant::Plant;
use dcpilot_foreground::autopilot::replay::{
    self, AutopilotController, Fixed, Hpa, Oracle, Outcome, ReplayConfig, RPS_AT_FULL_REQUEST,
};
use dcpilot_foreground::autopilot::AutopilotConfig;
use dcpilot_info_core::{InfoCore, MemoryStorage};
use dcpilot_schemas::traces::{read_trace, TraceFormat};
use dcpilot_schemas::TelemetrySample;
use serde::Serialize;

/// The model the replayed autopilot predicts interference with.
const SLOWDOWN_JOB: &str = "interference-slowdown";

/// `dcpilot planner …`
#[derive(Subcommand)]
pub enum PlannerCommand {
    /// Replay days of traffic with co-runner episodes against a plant built from the NTUA
    /// profiling runs: the autopilot (its models trained on the other runs) next to an
    /// HPA-style controller and a fixed replica count, on the same plant and traces.
    Replay {
        /// NTUA runs (`Profiling/Raw_Data`, or a directory of runs); default: the bundled
        /// sample.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Runs whose name contains this make the plant; the others train the models.
        #[arg(long, default_value = "_V04")]
        plant_runs: String,
        /// How many traces (days), each from its own seed.
        #[arg(long, default_value_t = 5)]
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
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What a replay found, per trace and in total.
#[derive(Serialize)]
pub(crate) struct ReplayReport {
    pub config: ReplayConfig,
    pub plant_runs: String,
    pub model: Option<String>,
    pub rps_at_full_cpu_request: f64,
    pub traces: Vec<TraceResult>,
    pub totals: Vec<Outcome>,
    pub autopilot_overruns: usize,
    pub autopilot_longest_tick_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct TraceResult {
    pub seed: u64,
    pub noisy_minutes: usize,
    pub outcomes: Vec<Outcome>,
}

/// What a replay is asked for.
pub(crate) struct ReplayArgs {
    pub plant_runs: String,
    pub traces: u64,
    pub seed: u64,
    pub slo_ms: f64,
    pub minutes: usize,
}

/// Runs one `planner` subcommand.
pub async fn run(command: PlannerCommand) -> Result<ExitCode> {
    let PlannerCommand::Replay {
        data,
        plant_runs,
        traces,
        seed,
        slo_ms,
        minutes,
        json,
    } = command;
    let samples = match &data {
        Some(dir) => {
            let trace = read_trace(TraceFormat::Ntua, dir)
                .with_context(|| format!("reading the NTUA runs in {}", dir.display()))?;
            if !trace.skipped.is_empty() {
                eprintln!("{}: {}", dir.display(), trace.skipped);
            }
            trace.samples
        }
        None => crate::demo::bundled_ntua_samples()?,
    };
    let args = ReplayArgs {
        plant_runs,
        traces,
        seed,
        slo_ms,
        minutes,
    };
    let report = replay(&samples, &args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the plant from the runs matching `args.plant_runs`, trains the autopilot's model
/// on the others, and replays every controller over `args.traces` synthesised days.
pub(crate) async fn replay(samples: &[TelemetrySample], args: &ReplayArgs) -> Result<ReplayReport> {
    let ReplayArgs {
        plant_runs,
        traces,
        seed,
        slo_ms,
        minutes,
    } = args;
    let (traces, seed, slo_ms, minutes) = (*traces, *seed, *slo_ms, *minutes);
    if !(slo_ms.is_finite() && slo_ms > 0.0) {
        bail!("--slo-ms must be a positive number of milliseconds, got {slo_ms}");
    }
    if minutes == 0 || traces == 0 {
        bail!("--minutes and --traces must be at least 1");
    }
    let plant_run = |run: &str| run.contains(plant_runs.as_str());
    let plant = Plant::from_samples(samples, plant_run)
        .with_context(|| format!("building the plant from the runs matching {plant_runs:?}"))?;
    let training: Vec<TelemetrySample> = samples
        .iter()
        .filter(|s| !s.labels.get("run").is_some_and(|r| plant_run(r)))
        .cloned()
        .collect();
    if training.is_empty() {
        bail!("every run matches {plant_runs:?}: none is left to train the models on");
    }

    // The autopilot's models come from the other runs, through the job a user runs.
    let core = InfoCore::open(Arc::new(MemoryStorage::default()), 2)?;
    let registry = dcpilot_pipelines::Registry::builtin()?;
    let job = registry
        .jobs()
        .find(|j| j.name() == SLOWDOWN_JOB)
        .cloned()
        .context("the built-in interference-slowdown job is missing")?;
    let store = TelemetryStore::from_samples(&training)?;
    let trained = dcpilot_pipelines::run_once(job, store.context(), &core)
        .await
        .with_context(|| format!("training {SLOWDOWN_JOB} on the runs not in the plant"))?;
    let model = trained.published_version.map(|v| {
        format!(
            "{SLOWDOWN_JOB} v{v}: {} {:.3} vs {:.3} for {} on held-out runs",
            trained.metric, trained.model_error, trained.baseline_error, trained.baseline
        )
    });
    if model.is_none() {
        eprintln!(
            "warning: {SLOWDOWN_JOB} was not published ({}); the autopilot plans without foreseeing interference",
            trained.rejected.as_deref().unwrap_or("no reason given")
        );
    }
    let snapshot = core.snapshot();

    let config = ReplayConfig {
        minutes,
        slo_p99_ms: slo_ms,
        ..ReplayConfig::default()
    };
    let autopilot_config = AutopilotConfig {
        min_replicas: config.replicas.0,
        max_replicas: config.replicas.1,
        ..AutopilotConfig::default()
    };
    let mut results = Vec::new();
    let (mut overruns, mut longest) = (0, 0.0_f64);
    for seed in seed..seed + traces {
        let trace = replay::synthesise(&plant, &config, seed);
        let mut autopilot = AutopilotController::new(autopilot_config.clone(), &snapshot, slo_ms);
        let mut hpa = Hpa::new(config.hpa_target, config.replicas);
        let mut fixed = Fixed(config.fixed_replicas);
        let outcomes = vec![
            replay::run(&plant, &trace, slo_ms, &mut autopilot),
            replay::run(&plant, &trace, slo_ms, &mut hpa),
            replay::run(&plant, &trace, slo_ms, &mut fixed),
            replay::run(
                &plant,
                &trace,
                slo_ms,
                &mut Oracle::new(&plant, &trace, slo_ms, config.replicas),
            ),
        ];
        overruns += autopilot.overruns;
        longest = longest.max(autopilot.longest_ms);
        results.push(TraceResult {
            seed,
            noisy_minutes: trace.iter().filter(|m| m.scenario != "none").count(),
            outcomes,
        });
    }
    let mut totals: Vec<Outcome> = results[0]
        .outcomes
        .iter()
        .map(|o| Outcome {
            controller: o.controller.clone(),
            ..Outcome::default()
        })
        .collect();
    for r in &results {
        for (total, o) in totals.iter_mut().zip(&r.outcomes) {
            total.violation_minutes += o.violation_minutes;
            total.replica_minutes += o.replica_minutes;
            total.actions += o.actions;
            total.unknown_minutes += o.unknown_minutes;
        }
    }
    Ok(ReplayReport {
        config,
        plant_runs: plant_runs.clone(),
        model,
        rps_at_full_cpu_request: RPS_AT_FULL_REQUEST,
        traces: results,
        totals,
        autopilot_overruns: overruns,
        autopilot_longest_tick_ms: longest,
    })
}

pub(crate) fn print_report(r: &ReplayReport) {
    println!(
        "plant: NTUA runs matching {:?}; objective p99 <= {} ms; {} trace(s) of {} min",
        r.plant_runs,
        r.config.slo_p99_ms,
        r.traces.len(),
        r.config.minutes
    );
    match &r.model {
        Some(m) => println!("autopilot's model: {m}"),
        None => println!("autopilot's model: none published (interference not foreseen)"),
    }
    println!(
        "HPA: CPU target {:.0}%, utilisation modelled as rps / (replicas x {RPS_AT_FULL_REQUEST} rps)",
        r.config.hpa_target * 100.0
    );
    println!(
        "\n{:<6} {:>6}  {:<10} {:>10} {:>14} {:>8}",
        "seed", "noisy", "controller", "violation", "replica-min", "actions"
    );
    for t in &r.traces {
        for o in &t.outcomes {
            println!(
                "{:<6} {:>6}  {:<10} {:>10} {:>14} {:>8}",
                t.seed,
                t.noisy_minutes,
                o.controller,
                o.violation_minutes,
                o.replica_minutes,
                o.actions
            );
        }
    }
    println!("\ntotal");
    let hpa = r.totals.iter().find(|o| o.controller == "hpa");
    for o in &r.totals {
        let ratio = hpa
            .filter(|h| h.violation_minutes > 0)
            .map(|h| {
                format!(
                    "  ({:.2}x HPA's violation minutes)",
                    o.violation_minutes as f64 / h.violation_minutes as f64
                )
            })
            .unwrap_or_default();
        println!(
            "  {:<10} violation {:>6} min  replicas {:>8} replica-min  actions {:>6}{ratio}",
            o.controller, o.violation_minutes, o.replica_minutes, o.actions
        );
        if o.unknown_minutes > 0 {
            println!(
                "  {:<10} {} minute(s) the plant could not answer",
                "", o.unknown_minutes
            );
        }
    }
    println!(
        "autopilot ticks: longest {:.3} ms, {} over budget",
        r.autopilot_longest_tick_ms, r.autopilot_overruns
    );
}
