//! The live intent loop: every tick, for every workload with a p99 objective, the view
//! from the landscape (where its replicas run, the hosts it could use and what they
//! measure) and from telemetry (its newest p99 and request rate), one decision of the
//! [`Autopilot`], the plan handed to the actuators, and the status kept for people — and,
//! a settle time after each plan, its outcome (p99 before and after) recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};

use dcpilot_info_core::Snapshot;
use dcpilot_schemas::TelemetrySample;
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::Serialize;

use super::actuate::{ActionMessage, Actuator};
use super::{
    secs_ms, Autopilot, AutopilotConfig, Decision, NodeView, ObjectiveState, Reading, TargetView,
    CLOCK_SKEW_MS,
};
use crate::intents::Intents;
use crate::landscape::{Landscape, Pressure};

/// A target's name without its namespace (`default/nginx` → `nginx`).
fn short_name(target: &str) -> &str {
    target.split_once('/').map_or(target, |(_, name)| name)
}

/// Whether `workload` is the target's: its full name, or the name without namespace.
fn is_of(target: &str, workload: &str) -> bool {
    workload == target || workload == short_name(target)
}

/// Request-rate readings kept per target, at most.
const RATE_READINGS: usize = 64;
/// The span of rate readings the trend is drawn through, and the least it needs.
const TREND_SPAN_MS: i64 = 5 * 60_000;
const TREND_MIN_SPAN_MS: i64 = 60_000;

/// The newest p99 and request rates of each workload, from telemetry.
#[derive(Debug, Default)]
pub struct TelemetryWindow {
    series: Mutex<HashMap<String, Series>>,
}

#[derive(Debug, Default, Clone)]
struct Series {
    p99: Option<Reading>,
    rates: VecDeque<Reading>,
}

impl TelemetryWindow {
    /// Keeps `sample` if it is a workload's p99 (> 0) or request rate (>= 0), named by
    /// `config`, measured no later than a clock skew past `now_ms`; returns whether it did.
    pub fn observe(&self, config: &AutopilotConfig, sample: &TelemetrySample, now_ms: i64) -> bool {
        let is_p99 = sample.metric == config.p99_metric;
        if !(is_p99 || sample.metric == config.rps_metric) {
            return false;
        }
        let valid = if is_p99 {
            sample.value > 0.0
        } else {
            sample.value >= 0.0
        };
        if !(valid && sample.value.is_finite())
            || sample.timestamp_ms > now_ms.saturating_add(CLOCK_SKEW_MS)
        {
            return false;
        }
        let Some(workload) = sample.workload.as_deref() else {
            return false;
        };
        let reading = Reading {
            value: sample.value,
            at_ms: sample.timestamp_ms,
        };
        let mut series = self.series.lock();
        let s = series.entry(workload.to_string()).or_default();
        if is_p99 {
            if s.p99.is_some_and(|p| p.at_ms > reading.at_ms) {
                return false;
            }
            s.p99 = Some(reading);
        } else {
            if s.rates.back().is_some_and(|r| r.at_ms > reading.at_ms) {
                return false;
            }
            s.rates.push_back(reading);
            while s.rates.len() > RATE_READINGS
                || s.rates
                    .front()
                    .is_some_and(|r| reading.at_ms - r.at_ms > TREND_SPAN_MS)
            {
                s.rates.pop_front();
            }
        }
        true
    }

    /// The newest p99, the newest rate and the rate's trend per minute of `target`
    /// (`namespace/name` also matches telemetry of workload `name`).
    pub fn of(&self, target: &str) -> (Option<Reading>, Option<Reading>, f64) {
        let series = self.series.lock();
        let Some(s) = series
            .get(target)
            .or_else(|| series.get(short_name(target)))
        else {
            return (None, None, 0.0);
        };
        // The rate's trend: a least-squares line through the last five minutes of rates
        // (none over less than a minute: a few noisy readings are no trend).
        let trend = match (s.rates.front(), s.rates.back()) {
            (Some(first), Some(last)) if last.at_ms - first.at_ms >= TREND_MIN_SPAN_MS => {
                let n = s.rates.len() as f64;
                let t = |r: &Reading| (r.at_ms - first.at_ms) as f64 / 60_000.0;
                let (mean_t, mean_v) = (
                    s.rates.iter().map(t).sum::<f64>() / n,
                    s.rates.iter().map(|r| r.value).sum::<f64>() / n,
                );
                let (mut cov, mut var) = (0.0, 0.0);
                for r in &s.rates {
                    cov += (t(r) - mean_t) * (r.value - mean_v);
                    var += (t(r) - mean_t).powi(2);
                }
                if var > 0.0 {
                    cov / var
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        (s.p99, s.rates.back().copied(), trend)
    }
}

/// One plan as the loop carried it out.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanRecord {
    /// The plan as published.
    pub message: ActionMessage,
    /// Actuators that carried it out.
    pub applied_by: Vec<String>,
    /// Actuators that failed, with why.
    pub failures: Vec<String>,
    /// The objective after the settle time: p99 before and after, ms.
    pub outcome: Option<PlanOutcome>,
}

/// What a plan did to its objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct PlanOutcome {
    /// The p99 the plan was made on, ms.
    pub p99_ms_before: f64,
    /// The newest p99 a settle time later, ms (none: no fresh sample then).
    pub p99_ms_after: Option<f64>,
    /// When it was judged, Unix ms.
    pub judged_at_ms: i64,
}

/// How one target's objective stands, for people (`GET /v1/intents/{name}/status`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetStatus {
    /// The target.
    pub target: String,
    /// The objective, p99 ms.
    pub objective_p99_ms: f64,
    /// How it stands.
    pub state: ObjectiveState,
    /// The newest p99 and rate, with their times.
    pub p99_ms: Option<Reading>,
    /// See `p99_ms`.
    pub rps: Option<Reading>,
    /// Seconds since the newest p99 sample (none: never seen).
    pub p99_age_secs: Option<f64>,
    /// Predicted p99 of the current placement, ms.
    pub predicted_p99_ms: Option<f64>,
    /// Replicas per host now.
    pub placement: BTreeMap<String, u32>,
    /// Why it stands so, and why there is (no) plan.
    pub reason: String,
    /// The newest plan for it.
    pub last_plan: Option<PlanRecord>,
    /// When this status was made, Unix ms.
    pub updated_ms: i64,
}

/// What the loop shows: every target's status and the recent plans.
#[derive(Debug, Default)]
pub struct AutopilotStatus {
    targets: Mutex<BTreeMap<String, TargetStatus>>,
    plans: Mutex<VecDeque<PlanRecord>>,
}

/// Plans kept for `GET /v1/plans`.
const PLANS_KEPT: usize = 200;

impl AutopilotStatus {
    /// The status of `target` (`namespace/name`, or a name whose namespace is omitted).
    pub fn target(&self, target: &str) -> Option<TargetStatus> {
        let targets = self.targets.lock();
        targets.get(target).cloned().or_else(|| {
            targets
                .values()
                .find(|t| short_name(&t.target) == target)
                .cloned()
        })
    }

    /// Every target's status.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.targets.lock().values().cloned().collect()
    }

    /// The recent plans, newest first.
    pub fn plans(&self) -> Vec<PlanRecord> {
        self.plans.lock().iter().rev().cloned().collect()
    }

    /// Objectives by state.
    pub fn counts(&self) -> BTreeMap<ObjectiveState, usize> {
        let mut counts = BTreeMap::new();
        for t in self.targets.lock().values() {
            *counts.entry(t.state).or_default() += 1;
        }
        counts
    }
}

/// The autopilot's shared parts: what telemetry feeds and what the API reads.
#[derive(Debug, Default)]
pub struct AutopilotShared {
    /// Its settings.
    pub config: AutopilotConfig,
    /// The newest p99 and rates per workload.
    pub window: TelemetryWindow,
    /// Status and plans.
    pub status: AutopilotStatus,
}

/// The loop: its decision core, actuators and plans awaiting their outcome.
pub struct AutopilotLoop {
    autopilot: Autopilot,
    actuators: Vec<Box<dyn Actuator>>,
    /// (plan id, target, p99 before, when it was planned).
    settling: Vec<(String, String, f64, i64)>,
}

/// Hosts beyond those holding replicas that a plan may use: the emptiest ones.
const CANDIDATE_HOSTS: usize = 4;

impl AutopilotLoop {
    /// A loop deciding with `shared.config` and acting through `actuators`.
    pub fn new(config: AutopilotConfig, actuators: Vec<Box<dyn Actuator>>) -> Self {
        Self {
            autopilot: Autopilot::new(config),
            actuators,
            settling: Vec::new(),
        }
    }

    /// One tick over every workload with a p99 objective; returns the decisions.
    pub fn tick(
        &mut self,
        shared: &AutopilotShared,
        landscape: &Landscape,
        intents: &Intents,
        snapshot: &Snapshot,
        now_ms: i64,
    ) -> Vec<Decision> {
        let started = std::time::Instant::now();
        self.judge_outcomes(shared, now_ms);
        // Higher priorities first: when capacity is short, they take it.
        let mut objectives: Vec<(&String, f64, f64)> = intents
            .all_objectives()
            .iter()
            .filter_map(|(target, o)| Some((target, o.p99_latency_ms?, o.priority)))
            .collect();
        objectives.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
        let mut decisions = Vec::with_capacity(objectives.len());
        let mut statuses = BTreeMap::new();
        // Cores promised this tick by plans carried out for targets before.
        let mut promised: HashMap<String, f64> = HashMap::new();
        for (target, objective, _) in objectives {
            let (mut view, names, request) =
                self.view(shared, landscape, target, now_ms, &promised);
            view.quiet_p99_ms = intents.objectives(target).and_then(|o| o.quiet_p99_ms);
            let mut decision = self.autopilot.tick(&view, objective, snapshot);
            if view.nodes.iter().all(|n| n.replicas == 0) {
                decision.plan = None;
                decision.reason = format!(
                    "target {target} has no replicas in the landscape: nothing to plan for"
                );
            }
            let record = decision.plan.as_ref().and_then(|_| {
                let message =
                    ActionMessage::of(&decision, &names, self.autopilot.config().dry_run)?;
                Some(self.carry_out(message, &decision, now_ms))
            });
            if let (Some(r), Some(plan)) = (&record, &decision.plan) {
                if !r.message.dry_run && !r.applied_by.is_empty() {
                    for (node, after) in view.nodes.iter().zip(&plan.placement) {
                        let added = f64::from(after.saturating_sub(node.replicas));
                        *promised.entry(node.name.clone()).or_default() += added * request;
                    }
                }
            }
            if let Some(record) = &record {
                let mut plans = shared.status.plans.lock();
                plans.push_back(record.clone());
                while plans.len() > PLANS_KEPT {
                    plans.pop_front();
                }
            }
            let previous = shared.status.target(target).and_then(|s| s.last_plan);
            statuses.insert(
                target.clone(),
                TargetStatus {
                    target: target.clone(),
                    objective_p99_ms: objective,
                    state: decision.state,
                    p99_ms: decision.p99_ms,
                    rps: decision.rps,
                    p99_age_secs: decision
                        .p99_ms
                        .map(|r| now_ms.saturating_sub(r.at_ms) as f64 / 1000.0),
                    predicted_p99_ms: decision.predicted_p99_ms,
                    placement: names
                        .iter()
                        .cloned()
                        .zip(view.nodes.iter().map(|n| n.replicas))
                        .filter(|(_, n)| *n > 0)
                        .collect(),
                    reason: decision.reason.clone(),
                    last_plan: record.or(previous),
                    updated_ms: now_ms,
                },
            );
            super::events::Decided {
                decision: &decision,
            }
            .emit();
            decisions.push(decision);
        }
        *shared.status.targets.lock() = statuses;
        super::events::Ticked {
            seconds: started.elapsed().as_secs_f64(),
            counts: shared.status.counts(),
            overruns: decisions
                .iter()
                .filter(|d| d.provenance.budget_exhausted)
                .count(),
        }
        .emit();
        decisions
    }

    /// The view of `target`: the hosts holding its replicas, then the emptiest others, each
    /// with the room left after what earlier plans this tick `promised`; and a replica's
    /// request (cores).
    fn view(
        &self,
        shared: &AutopilotShared,
        landscape: &Landscape,
        target: &str,
        now_ms: i64,
        promised: &HashMap<String, f64>,
    ) -> (TargetView, Vec<String>, f64) {
        let mut replicas: BTreeMap<&str, u32> = BTreeMap::new();
        let mut request = 0.0_f64;
        for instance in landscape
            .instances()
            .values()
            .filter(|i| is_of(target, &i.workload))
        {
            *replicas.entry(instance.host.as_str()).or_default() += 1;
            request = request.max(instance.cores);
        }
        // Best-effort co-runners that declare some pressure, by host.
        let mut evictable: HashMap<&str, Vec<(String, Pressure)>> = HashMap::new();
        for i in landscape.instances().values().filter(|i| {
            i.evictable
                && !is_of(target, &i.workload)
                && i.pressure.cpu + i.pressure.l3 + i.pressure.membw > 0.0
        }) {
            evictable
                .entry(i.host.as_str())
                .or_default()
                .push((i.id.clone(), i.pressure));
        }
        let hosts = landscape.hosts();
        let loads = landscape.loads();
        let free = |i: usize| {
            let promised = promised.get(&hosts[i].name).copied().unwrap_or(0.0);
            hosts[i].cores - loads[i].busy_cores() - promised
        };
        let mut others: Vec<usize> = (0..hosts.len())
            .filter(|&i| !replicas.contains_key(hosts[i].name.as_str()))
            .filter(|&i| free(i) >= request)
            .collect();
        others.sort_by(|&a, &b| {
            free(b)
                .total_cmp(&free(a))
                .then(hosts[a].name.cmp(&hosts[b].name))
        });
        let room = |i: usize| {
            if request > 0.0 {
                (free(i).max(0.0) / request)
                    .floor()
                    .min(f64::from(u32::MAX)) as u32
            } else {
                u32::MAX
            }
        };
        let chosen = replicas
            .keys()
            .filter_map(|h| landscape.host_index(h))
            .chain(others.into_iter().take(CANDIDATE_HOSTS));
        let nodes: Vec<NodeView> = chosen
            .map(|i| NodeView {
                name: hosts[i].name.clone(),
                replicas: replicas.get(hosts[i].name.as_str()).copied().unwrap_or(0),
                counters: loads[i].counters,
                pressure: loads[i].pressure,
                room: room(i),
                evictable: evictable
                    .get(hosts[i].name.as_str())
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        let names = nodes.iter().map(|n| n.name.clone()).collect();
        let (p99_ms, rps, rps_trend_per_min) = shared.window.of(target);
        (
            TargetView {
                target: target.to_string(),
                now_ms,
                p99_ms,
                rps,
                rps_trend_per_min,
                nodes,
                quiet_p99_ms: None,
            },
            names,
            request,
        )
    }

    /// Hands the plan to every actuator; starts its cool-down if one carried it out.
    fn carry_out(
        &mut self,
        message: ActionMessage,
        decision: &Decision,
        now_ms: i64,
    ) -> PlanRecord {
        let mut record = PlanRecord {
            message,
            applied_by: Vec::new(),
            failures: Vec::new(),
            outcome: None,
        };
        for actuator in &mut self.actuators {
            match actuator.apply(&record.message) {
                Ok(()) => record.applied_by.push(actuator.name().to_string()),
                Err(e) => {
                    super::events::ActuatorFailed { error: &e }.emit();
                    record.failures.push(e.to_string());
                }
            }
        }
        if !self.autopilot.config().dry_run && !record.applied_by.is_empty() {
            self.autopilot.acted(&decision.target, now_ms);
            if let Some(p99) = decision.p99_ms {
                self.settling.push((
                    record.message.plan_id.clone(),
                    decision.target.clone(),
                    p99.value,
                    now_ms,
                ));
            }
        }
        super::events::Planned { record: &record }.emit();
        record
    }

    /// Judges the plans whose settle time has passed: their p99 before and after, into
    /// the plan records and, as telemetry, to every actuator that records outcomes.
    fn judge_outcomes(&mut self, shared: &AutopilotShared, now_ms: i64) {
        let settle_ms = secs_ms(self.autopilot.config().settle_secs);
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.settling)
            .into_iter()
            .partition(|(_, _, _, planned)| planned.saturating_add(settle_ms) <= now_ms);
        self.settling = waiting;
        for (plan_id, target, before, planned) in due {
            let (p99, _, _) = shared.window.of(&target);
            // Only a sample measured once the plan settled says what it did.
            let after = p99
                .filter(|r| r.at_ms >= planned.saturating_add(settle_ms))
                .map(|r| r.value);
            let outcome = PlanOutcome {
                p99_ms_before: before,
                p99_ms_after: after,
                judged_at_ms: now_ms,
            };
            if let Some(plan) = shared
                .status
                .plans
                .lock()
                .iter_mut()
                .find(|p| p.message.plan_id == plan_id)
            {
                plan.outcome = Some(outcome);
            }
            if let Some(status) = shared.status.targets.lock().get_mut(&target) {
                if let Some(last) = status
                    .last_plan
                    .as_mut()
                    .filter(|p| p.message.plan_id == plan_id)
                {
                    last.outcome = Some(outcome);
                }
            }
            let samples = outcome_samples(&plan_id, &target, &outcome);
            for actuator in &mut self.actuators {
                if let Err(e) = actuator.record_outcome(&samples) {
                    super::events::ActuatorFailed { error: &e }.emit();
                }
            }
        }
    }
}

/// A plan's outcome as telemetry of its target: p99 before and after, labelled with the
/// plan, so jobs can learn from what the actions did.
pub fn outcome_samples(plan_id: &str, target: &str, outcome: &PlanOutcome) -> Vec<TelemetrySample> {
    let labels = BTreeMap::from([("plan".to_string(), plan_id.to_string())]);
    let sample = |metric: &str, value: f64| TelemetrySample {
        timestamp_ms: outcome.judged_at_ms,
        entity: target.to_string(),
        host: None,
        workload: Some(target.to_string()),
        metric: metric.to_string(),
        value,
        labels: labels.clone(),
    };
    let mut samples = vec![sample(
        "autopilot_plan_p99_before_ms",
        outcome.p99_ms_before,
    )];
    if let Some(after) = outcome.p99_ms_after {
        samples.push(sample("autopilot_plan_p99_after_ms", after));
    }
    samples
}
