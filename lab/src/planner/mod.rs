//! `dcpilot planner`: the intent planner proven on a plant built from measurements.

pub mod plant;
pub mod replay;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::bail;
use crate::datasets::{read_trace, TraceFormat};
use crate::error::{Context, LabError, Result};
use dcpilot_background::TelemetryStore;
use dcpilot_foreground::autopilot::AutopilotConfig;
use dcpilot_info_core::{InfoCore, MemoryStorage};
use dcpilot_schemas::TelemetrySample;
use plant::Plant;
use replay::{AutopilotController, Fixed, Hpa, Oracle, Outcome, ReplayConfig, RPS_AT_FULL_REQUEST};
use serde::Serialize;

/// The model the replayed autopilot predicts interference with.
const SLOWDOWN_JOB: &str = dcpilot_schemas::names::models::SLOWDOWN;

/// What a replay found, per trace and in total.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub config: ReplayConfig,
    pub plant_runs: String,
    pub model: Option<String>,
    pub rps_at_full_cpu_request: f64,
    pub traces: Vec<TraceResult>,
    pub totals: Vec<Outcome>,
    pub autopilot_overruns: usize,
    pub autopilot_longest_tick_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct TraceResult {
    pub seed: u64,
    pub noisy_minutes: usize,
    pub outcomes: Vec<Outcome>,
}

/// What a replay is asked for.
pub struct ReplayArgs {
    pub plant_runs: String,
    pub traces: u64,
    pub seed: u64,
    pub slo_ms: f64,
    pub minutes: usize,
}

/// The NTUA runs to build the plant and train on: those under `data` (`Profiling/Raw_Data`,
/// or a directory of runs), or the bundled sample.
pub fn ntua_samples(data: Option<&Path>) -> Result<Vec<TelemetrySample>> {
    match data {
        Some(dir) => {
            let trace = read_trace(TraceFormat::Ntua, dir)
                .with_context(|| format!("reading the NTUA runs in {}", dir.display()))?;
            if !trace.skipped.is_empty() {
                eprintln!("{}: {}", dir.display(), trace.skipped);
            }
            Ok(trace.samples)
        }
        None => crate::demo::bundled_ntua_samples(),
    }
}

/// Builds the plant from the runs matching `args.plant_runs`, trains the autopilot's model
/// on the others, and replays every controller over `args.traces` synthesised days.
pub async fn replay(samples: &[TelemetrySample], args: &ReplayArgs) -> Result<ReplayReport> {
    let ReplayArgs {
        plant_runs,
        traces,
        seed,
        slo_ms,
        minutes,
    } = args;
    let (traces, seed, slo_ms, minutes) = (*traces, *seed, *slo_ms, *minutes);
    if !(slo_ms.is_finite() && slo_ms > 0.0) {
        return Err(LabError::Invalid(format!(
            "--slo-ms must be a positive number of milliseconds, got {slo_ms}"
        )));
    }
    if minutes == 0 || traces == 0 {
        return Err(LabError::Invalid(
            "--minutes and --traces must be at least 1".into(),
        ));
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

impl ReplayReport {
    /// The report for people: each trace, each controller, the totals.
    pub fn text(&self) -> String {
        let r = self;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plant: NTUA runs matching {:?}; objective p99 <= {} ms; {} trace(s) of {} min",
            r.plant_runs,
            r.config.slo_p99_ms,
            r.traces.len(),
            r.config.minutes
        );
        match &r.model {
            Some(m) => _ = writeln!(out, "autopilot's model: {m}"),
            None => {
                _ = writeln!(
                    out,
                    "autopilot's model: none published (interference not foreseen)"
                )
            }
        }
        let _ = writeln!(out,
        "HPA: CPU target {:.0}%, utilisation modelled as rps / (replicas x {RPS_AT_FULL_REQUEST} rps)",
        r.config.hpa_target * 100.0
    );
        let _ = writeln!(
            out,
            "\n{:<6} {:>6}  {:<10} {:>10} {:>14} {:>8}",
            "seed", "noisy", "controller", "violation", "replica-min", "actions"
        );
        for t in &r.traces {
            for o in &t.outcomes {
                let _ = writeln!(
                    out,
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
        let _ = writeln!(out, "\ntotal");
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
            let _ =
                writeln!(out,
            "  {:<10} violation {:>6} min  replicas {:>8} replica-min  actions {:>6}{ratio}",
            o.controller, o.violation_minutes, o.replica_minutes, o.actions
        );
            if o.unknown_minutes > 0 {
                let _ = writeln!(
                    out,
                    "  {:<10} {} minute(s) the plant could not answer",
                    "", o.unknown_minutes
                );
            }
        }
        let _ = writeln!(
            out,
            "autopilot ticks: longest {:.3} ms, {} over budget",
            r.autopilot_longest_tick_ms, r.autopilot_overruns
        );
        out
    }
}
