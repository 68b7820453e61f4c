//! `dcpilot planner`: the intent planner proven on a plant built from measurements.

pub mod plant;
pub mod replay;
pub mod rule;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::bail;
use crate::datasets::{read_trace_laid_out, Layout, TraceFormat};
use crate::error::{Context, LabError, Result};
use dcpilot_background::TelemetryStore;
use dcpilot_foreground::autopilot::AutopilotConfig;
use dcpilot_info_core::{InfoCore, MemoryStorage};
use dcpilot_schemas::TelemetrySample;
use plant::{Plant, SplitCheck};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replay::{AutopilotController, Controller, Fixed, Hpa, Oracle, Outcome, ReplayConfig, Rule};
use rule::NodeRule;
use serde::Serialize;
use std::collections::BTreeSet;

/// The model the replayed autopilot predicts interference with.
const SLOWDOWN_JOB: &str = dcpilot_schemas::names::models::SLOWDOWN;

/// What a replay found, per trace and over all of them.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub config: ReplayConfig,
    /// Runs whose interference tests make the plant (name contains this, any case).
    pub plant_runs: String,
    /// The runs the models and the rule were fitted on.
    pub training_runs: Vec<String>,
    /// The co-runner scenarios of the plant (none of them in the training runs).
    pub plant_scenarios: Vec<String>,
    /// Replica counts measured per side for each plant scenario.
    pub plant_replicas: Vec<String>,
    /// Repeated-test residuals the noise is drawn from, and their spread (log sd).
    pub noise_residuals: usize,
    pub noise_log_sd: f64,
    pub model: Option<String>,
    /// The HPA's request: the rate one replica serves at 100 % of it.
    pub rps_at_full_cpu_request: f64,
    /// The rule's fitted counter threshold.
    pub rule: NodeRule,
    /// The plant's split model against every measured split.
    pub split_checks: Vec<SplitCheck>,
    pub traces: Vec<TraceResult>,
    /// Per controller over the traces: means with 95 % intervals.
    pub summary: Vec<Summary>,
    /// Per controller, summed over the traces.
    pub totals: Vec<Outcome>,
    /// The autopilot against the best baseline and the oracle.
    pub verdict: Verdict,
    pub autopilot_overruns: usize,
    pub autopilot_longest_tick_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct TraceResult {
    pub seed: u64,
    pub noisy_minutes: usize,
    pub outcomes: Vec<Outcome>,
}

/// A mean over traces and its 95 % interval (percentile bootstrap over the traces).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// One controller over every trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub controller: String,
    pub violation_minutes: Interval,
    pub replica_minutes: Interval,
    pub actions: Interval,
    pub moves: Interval,
    pub evicted_pod_minutes: Interval,
}

/// The autopilot against the baseline with the fewest violation minutes (the oracle
/// aside), and the oracle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub best_baseline: String,
    /// Autopilot's mean violation minutes over the best baseline's.
    pub violation_ratio: f64,
    /// Autopilot's mean replica-minutes over the best baseline's.
    pub replica_ratio: f64,
    /// Autopilot's mean violation minutes over the oracle's.
    pub oracle_ratio: f64,
    /// <= 0.7x the best baseline's violation minutes at no more replica-minutes.
    pub goal_met: bool,
}

/// What a replay is asked for.
pub struct ReplayArgs {
    pub plant_runs: String,
    pub layout: Layout,
    pub traces: u64,
    pub seed: u64,
    pub slo_ms: f64,
    pub minutes: usize,
    pub rollout_minutes: usize,
}

impl Default for ReplayArgs {
    /// The held-out replay: the plant from the mixed-scenario runs, the models and the
    /// rule from the 14 basic scenarios; 20 days, p99 <= 1 ms, a 1-minute rollout.
    fn default() -> Self {
        Self {
            plant_runs: "mix".into(),
            layout: Layout::ntua(),
            traces: 20,
            seed: 1,
            slo_ms: 1.0,
            minutes: 24 * 60,
            rollout_minutes: 1,
        }
    }
}

/// Controller names in the report, the autopilot first.
const AUTOPILOT: &str = "autopilot";
const ORACLE: &str = "oracle";

/// The NTUA runs to build the plant and train on: those under `data` (`Profiling/Raw_Data`,
/// or a directory of runs) laid out by `layout`, or the bundled sample (the NTUA layout).
pub fn ntua_samples(data: Option<&Path>, layout: &Layout) -> Result<Vec<TelemetrySample>> {
    match data {
        Some(dir) => {
            let trace = read_trace_laid_out(TraceFormat::Ntua, dir, layout)
                .with_context(|| format!("reading the NTUA runs in {}", dir.display()))?;
            if !trace.skipped.is_empty() {
                eprintln!("{}: {}", dir.display(), trace.skipped);
            }
            Ok(trace.samples)
        }
        None => crate::demo::bundled_ntua_samples(),
    }
}

/// Builds the plant from the interference tests of the runs matching `args.plant_runs`
/// (and every run's quiet tests), fits the autopilot's model, the rule and the HPA's
/// request on the other runs — refusing if a plant scenario is among theirs — and replays
/// every controller over `args.traces` synthesised days.
pub async fn replay(samples: &[TelemetrySample], args: &ReplayArgs) -> Result<ReplayReport> {
    let ReplayArgs {
        plant_runs,
        layout,
        traces,
        seed,
        slo_ms,
        minutes,
        rollout_minutes,
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
    let Some(last_seed) = seed.checked_add(traces) else {
        return Err(LabError::Invalid(format!(
            "--seed {seed} plus --traces {traces} overflows"
        )));
    };
    if *rollout_minutes > 60 {
        return Err(LabError::Invalid(format!(
            "--rollout-minutes must be at most 60, got {rollout_minutes}"
        )));
    }
    let needle = plant_runs.to_lowercase();
    let plant_run = |run: &str| run.to_lowercase().contains(&needle);
    let tests = plant::Tests::of(samples);
    let plant = Plant::from_tests(&tests, plant_run)
        .with_context(|| format!("building the plant from the runs matching {plant_runs:?}"))?;
    let plant_scenarios: Vec<String> = plant
        .scenarios()
        .into_iter()
        .filter(|s| s != plant::QUIET)
        .collect();
    if plant_scenarios.is_empty() {
        bail!(
            "no run matching {plant_runs:?} measured a co-runner scenario on both sides of nginx (its node and the other): no plant"
        );
    }
    let training: Vec<TelemetrySample> = samples
        .iter()
        .filter(|s| !s.labels.get("run").is_some_and(|r| plant_run(r)))
        .cloned()
        .collect();
    let training_tests = tests.measured(|run| !plant_run(run));
    if training_tests.is_empty() {
        bail!("every run matches {plant_runs:?}: none is left to train the models on");
    }
    // Held out by scenario: no co-runner mix of the plant may be one the models saw.
    if let Some(seen) = plant_scenarios
        .iter()
        .find(|s| training_tests.iter().any(|t| &&t.scenario == s))
    {
        bail!(
            "scenario {seen:?} is in the plant (runs matching {plant_runs:?}) and in the training runs: the replay would be in distribution; choose plant runs whose co-runner scenarios the others did not measure"
        );
    }
    let training_runs: Vec<String> = training_tests
        .iter()
        .map(|t| t.run.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rule = NodeRule::fit(&training_tests, slo_ms)
        .context("no counter threshold could be fitted on the training runs (they need per-node counters of tests that broke the objective and of tests that kept it)")?;
    let rps_at_full_request = training_tests
        .iter()
        .filter(|t| t.scenario == plant::QUIET && t.replicas == 1 && t.p99_ms <= slo_ms)
        .map(|t| t.rps)
        .fold(f64::NAN, f64::max);
    if !rps_at_full_request.is_finite() {
        bail!("no quiet one-replica test of the training runs kept the objective: the HPA's request cannot be calibrated");
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
        rollout_minutes: *rollout_minutes,
        ..ReplayConfig::default()
    };
    let autopilot_config = AutopilotConfig {
        min_replicas: config.replicas.0,
        max_replicas: config.replicas.1,
        ..AutopilotConfig::default()
    };
    let mut results = Vec::new();
    let (mut overruns, mut longest) = (0, 0.0_f64);
    for seed in seed..last_seed {
        let trace = replay::synthesise(&plant, &config, seed);
        let mut autopilot = AutopilotController::new(autopilot_config.clone(), &snapshot, slo_ms);
        let mut controllers: Vec<Box<dyn Controller + '_>> = Vec::new();
        for target in &config.hpa_targets {
            controllers.push(Box::new(Hpa::new(*target, config.replicas)));
        }
        controllers.push(Box::new(Rule::new(rule.clone(), None)));
        controllers.push(Box::new(Rule::new(
            rule.clone(),
            Some(Hpa::new(config.rule_hpa_target, config.replicas)),
        )));
        controllers.push(Box::new(Fixed(config.fixed_replicas)));
        controllers.push(Box::new(Oracle::new(
            &plant,
            &trace,
            slo_ms,
            config.replicas,
            config.rollout_minutes,
        )));
        let mut outcomes = vec![replay::run(
            &plant,
            &trace,
            &config,
            rps_at_full_request,
            &mut autopilot,
        )];
        for c in &mut controllers {
            outcomes.push(replay::run(
                &plant,
                &trace,
                &config,
                rps_at_full_request,
                c.as_mut(),
            ));
        }
        overruns += autopilot.overruns;
        longest = longest.max(autopilot.longest_ms);
        results.push(TraceResult {
            seed,
            noisy_minutes: trace.iter().filter(|m| m.scenario != plant::QUIET).count(),
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
            total.moves += o.moves;
            total.evicted_pod_minutes += o.evicted_pod_minutes;
            total.unknown_minutes += o.unknown_minutes;
        }
    }
    let summary = summarise(&results, seed);
    let verdict = verdict(&summary)?;
    let noise = plant.noise();
    let noise_log_sd = if noise.is_empty() {
        0.0
    } else {
        (noise.iter().map(|r| r * r).sum::<f64>() / noise.len() as f64).sqrt()
    };
    let plant_replicas = plant_scenarios
        .iter()
        .map(|s| {
            format!(
                "{s}: {:?} on the noisy node, {:?} beside it",
                plant.replica_counts(plant::Side::Same, s),
                plant.replica_counts(plant::Side::Other, s)
            )
        })
        .collect();
    // The split model is judged as a method: on a plant of every single-node run, against
    // every measured split (their scenarios are the basic ones, not the plant's mixes).
    let node_order: Vec<String> = layout.nodes.keys().cloned().collect();
    let split_checks = Plant::from_tests(&tests, |_| true)
        .map(|all| all.validate_splits(&tests, &node_order))
        .unwrap_or_default();
    Ok(ReplayReport {
        split_checks,
        config,
        plant_runs: plant_runs.clone(),
        training_runs,
        plant_scenarios,
        plant_replicas,
        noise_residuals: noise.len(),
        noise_log_sd,
        model,
        rps_at_full_cpu_request: rps_at_full_request,
        rule,
        traces: results,
        summary,
        totals,
        verdict,
        autopilot_overruns: overruns,
        autopilot_longest_tick_ms: longest,
    })
}

/// Per controller, the mean over traces of each figure with a 95 % percentile-bootstrap
/// interval (2,000 resamples of the traces, seeded).
fn summarise(results: &[TraceResult], seed: u64) -> Vec<Summary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = results.len();
    let resamples: Vec<Vec<usize>> = (0..2000)
        .map(|_| (0..n).map(|_| rng.random_range(0..n)).collect())
        .collect();
    let interval = |values: &[f64]| {
        let mean = values.iter().sum::<f64>() / n as f64;
        let mut means: Vec<f64> = resamples
            .iter()
            .map(|r| r.iter().map(|i| values[*i]).sum::<f64>() / n as f64)
            .collect();
        means.sort_by(f64::total_cmp);
        Interval {
            mean,
            low: crate::stats::percentile(&means, 0.025),
            high: crate::stats::percentile(&means, 0.975),
        }
    };
    (0..results[0].outcomes.len())
        .map(|c| {
            let of = |pick: fn(&Outcome) -> f64| -> Interval {
                let values: Vec<f64> = results.iter().map(|r| pick(&r.outcomes[c])).collect();
                interval(&values)
            };
            Summary {
                controller: results[0].outcomes[c].controller.clone(),
                violation_minutes: of(|o| o.violation_minutes as f64),
                replica_minutes: of(|o| o.replica_minutes as f64),
                actions: of(|o| o.actions as f64),
                moves: of(|o| o.moves as f64),
                evicted_pod_minutes: of(|o| o.evicted_pod_minutes as f64),
            }
        })
        .collect()
}

/// The autopilot against the baseline with the fewest mean violation minutes.
fn verdict(summary: &[Summary]) -> Result<Verdict> {
    let find = |name: &str| summary.iter().find(|s| s.controller == name);
    let (Some(pilot), Some(oracle)) = (find(AUTOPILOT), find(ORACLE)) else {
        bail!("the replay ran no autopilot or no oracle");
    };
    let best = summary
        .iter()
        .filter(|s| s.controller != AUTOPILOT && s.controller != ORACLE)
        .min_by(|a, b| {
            (a.violation_minutes.mean, a.replica_minutes.mean)
                .partial_cmp(&(b.violation_minutes.mean, b.replica_minutes.mean))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .context("the replay ran no baseline")?;
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            a / b
        } else if a > 0.0 {
            f64::INFINITY
        } else {
            1.0
        }
    };
    let violation_ratio = ratio(pilot.violation_minutes.mean, best.violation_minutes.mean);
    let replica_ratio = ratio(pilot.replica_minutes.mean, best.replica_minutes.mean);
    Ok(Verdict {
        best_baseline: best.controller.clone(),
        violation_ratio,
        replica_ratio,
        oracle_ratio: ratio(pilot.violation_minutes.mean, oracle.violation_minutes.mean),
        goal_met: pilot.violation_minutes.mean <= 0.7 * best.violation_minutes.mean
            && replica_ratio <= 1.0,
    })
}

impl ReplayReport {
    /// The report for people: the plant and its checks, each controller over the traces,
    /// the verdict.
    pub fn text(&self) -> String {
        let r = self;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plant: co-runner tests of the runs matching {:?} ({} scenario(s), none in the {} training runs), quiet tests of every run",
            r.plant_runs,
            r.plant_scenarios.len(),
            r.training_runs.len()
        );
        for line in &r.plant_replicas {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(
            out,
            "  noise: {} residuals of repeated tests, log sd {:.3}; rollout {} min; objective p99 <= {} ms; {} trace(s) of {} min",
            r.noise_residuals,
            r.noise_log_sd,
            r.config.rollout_minutes,
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
        let _ = writeln!(
            out,
            "HPA: 100 % of a replica's CPU request = {:.0} rps (the highest rate a quiet one-replica training test kept the objective at)",
            r.rps_at_full_cpu_request
        );
        let _ = writeln!(
            out,
            "rule: a node is noisy when {} {} {:.3} (balanced accuracy {:.2} on the training tests)",
            r.rule.counter,
            if r.rule.above { ">" } else { "<" },
            r.rule.threshold,
            r.rule.balanced_accuracy
        );
        if r.split_checks.is_empty() {
            let _ = writeln!(out, "split model: no measured split to check it against");
        } else {
            let _ = writeln!(
                out,
                "\nsplit model vs measured splits\n{:<24} {:>6} {:>12} {:>12} {:>9} {:>7}",
                "scenario", "splits", "measured ms", "plant ms", "MAE ms", "MAPE"
            );
            for c in &r.split_checks {
                let _ = writeln!(
                    out,
                    "{:<24} {:>6} {:>12.3} {:>12.3} {:>9.3} {:>6.0}%",
                    c.scenario,
                    c.splits,
                    c.measured_mean_ms,
                    c.predicted_mean_ms,
                    c.mean_abs_error_ms,
                    100.0 * c.mean_abs_pct_error
                );
            }
        }
        let interval = |i: &Interval| format!("{:.1} [{:.1}, {:.1}]", i.mean, i.low, i.high);
        let _ = writeln!(
            out,
            "\nper trace, mean [95 % interval] over {} trace(s)\n{:<14} {:>24} {:>27} {:>22} {:>22} {:>8}",
            r.traces.len(),
            "controller",
            "violation min",
            "replica-min",
            "actions",
            "moves",
            "evicted"
        );
        for s in &r.summary {
            let _ = writeln!(
                out,
                "{:<14} {:>24} {:>27} {:>22} {:>22} {:>8.1}",
                s.controller,
                interval(&s.violation_minutes),
                interval(&s.replica_minutes),
                interval(&s.actions),
                interval(&s.moves),
                s.evicted_pod_minutes.mean
            );
        }
        for o in r.totals.iter().filter(|o| o.unknown_minutes > 0) {
            let _ = writeln!(
                out,
                "  {}: {} minute(s) the plant could not answer",
                o.controller, o.unknown_minutes
            );
        }
        let v = &r.verdict;
        let _ = writeln!(
            out,
            "\nautopilot: {:.2}x the violation minutes of the best baseline ({}) at {:.2}x its replica-minutes; {:.2}x the oracle's violation minutes. Goal (<= 0.7x at <= 1x): {}",
            v.violation_ratio,
            v.best_baseline,
            v.replica_ratio,
            v.oracle_ratio,
            if v.goal_met { "met" } else { "not met" }
        );
        let _ = writeln!(
            out,
            "autopilot ticks: longest {:.3} ms, {} over budget",
            r.autopilot_longest_tick_ms, r.autopilot_overruns
        );
        out
    }
}
