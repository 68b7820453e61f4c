//! The intent loop's decision core: for one target at one tick, from what telemetry says
//! now (its p99 and request rate, each node's counters) and the served models, classify
//! its latency objective (met, at risk, violated, or no fresh data) and search the plans
//! that change its replicas — scale out or in on a node, move a replica between nodes —
//! within a time budget, costing each by the predicted SLO risk against the replicas it
//! holds. Synchronous and allocation-light: the caller (the replay, or a live loop) owns
//! the clock and applies what it decides.
//!
//! The latency of a placement is predicted as the target's *quiet* p99 (learned from its
//! own telemetry on ticks where the models see no interference) times the slowdown the
//! `interference-slowdown` model predicts on the worst node that holds a replica.

pub mod actuate;
pub mod events;
pub mod live;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dcpilot_info_core::Snapshot;
use dcpilot_schemas::names::topics;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::landscape::{HostCounters, Pressure};
use crate::planner::{ModelUse, PlannerConfig, Provenance};

/// The longest period any autopilot setting may name (30 days).
const MAX_SECS: u64 = 30 * 86_400;

/// How the autopilot keeps latency objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AutopilotConfig {
    /// Time budget of one target's plan search, ms.
    pub budget_ms: f64,
    /// How far ahead "at risk" looks, seconds (the rate's trend is followed this far).
    pub horizon_secs: u64,
    /// A p99 or rate sample older than this is not current: the objective has no data.
    pub freshness_secs: u64,
    /// Fewest replicas a plan may leave.
    pub min_replicas: u32,
    /// Most replicas a plan may ask for.
    pub max_replicas: u32,
    /// Most actions (one replica added, removed or moved each) in one tick's plan.
    pub max_actions_per_tick: u32,
    /// After acting on a target, no further plan for it this long unless it is violated.
    pub cooldown_secs: u64,
    /// A plan must lower the cost by at least this much to be worth acting (no flapping).
    pub hysteresis: f64,
    /// Fraction of the objective kept as a margin: below (1 - tolerance) x objective a
    /// prediction carries no risk.
    pub tolerance: f64,
    /// Cost of predicted p99 at the objective (risk 1); it grows linearly beyond.
    pub risk_weight: f64,
    /// Cost of one replica held.
    pub replica_cost: f64,
    /// Cost of one action.
    pub action_cost: f64,
    /// Cost of evicting a best-effort co-runner, beyond the action's.
    pub evict_cost: f64,
    /// Plan and report, never act.
    pub dry_run: bool,
    /// Run the loop in the foreground (off: intents are only scored, never acted on).
    pub enabled: bool,
    /// Seconds between ticks.
    pub tick_secs: u64,
    /// The telemetry metric holding a workload's p99 latency, ms.
    pub p99_metric: String,
    /// The telemetry metric holding a workload's request rate, requests/s.
    pub rps_metric: String,
    /// Seconds after a plan when its outcome (p99 before and after) is recorded.
    pub settle_secs: u64,
    /// Topic every plan is published on (with brokers); empty: not published.
    pub actions_topic: String,
    /// Directory the Kubernetes requests of every plan are written to; unset: none.
    pub kubernetes_dir: Option<std::path::PathBuf>,
    /// `kubectl` to apply those requests with; unset: written only.
    pub kubectl: Option<std::path::PathBuf>,
    /// kubeconfig for `kubectl`.
    pub kubeconfig: Option<std::path::PathBuf>,
}

impl Default for AutopilotConfig {
    fn default() -> Self {
        Self {
            budget_ms: 5.0,
            horizon_secs: 300,
            freshness_secs: 180,
            min_replicas: 1,
            max_replicas: 8,
            max_actions_per_tick: 2,
            cooldown_secs: 180,
            hysteresis: 0.5,
            tolerance: 0.2,
            risk_weight: 10.0,
            replica_cost: 1.0,
            action_cost: 0.25,
            evict_cost: 2.0,
            dry_run: false,
            enabled: false,
            tick_secs: 30,
            p99_metric: "p99_latency_ms".into(),
            rps_metric: "rps".into(),
            settle_secs: 120,
            actions_topic: topics::ACTIONS.into(),
            kubernetes_dir: None,
            kubectl: None,
            kubeconfig: None,
        }
    }
}

impl AutopilotConfig {
    /// What is wrong with these settings, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.budget_ms.is_finite() && self.budget_ms > 0.0 && self.budget_ms <= 60_000.0) {
            problems.push(format!(
                "budget_ms must be in (0, 60000], got {}",
                self.budget_ms
            ));
        }
        if self.min_replicas == 0 || self.min_replicas > self.max_replicas {
            problems.push(format!(
                "min_replicas must be at least 1 and at most max_replicas ({}), got {}",
                self.max_replicas, self.min_replicas
            ));
        }
        if !(0.0..1.0).contains(&self.tolerance) {
            problems.push(format!(
                "tolerance must be in [0, 1), got {}",
                self.tolerance
            ));
        }
        for (key, value) in [
            ("hysteresis", self.hysteresis),
            ("risk_weight", self.risk_weight),
            ("replica_cost", self.replica_cost),
            ("action_cost", self.action_cost),
            ("evict_cost", self.evict_cost),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push(format!("{key} must be a finite number >= 0, got {value}"));
            }
        }
        if self.tick_secs == 0 {
            problems.push("tick_secs must be at least 1".to_string());
        }
        if self.max_actions_per_tick == 0 {
            problems.push("max_actions_per_tick must be at least 1".to_string());
        }
        for (key, value) in [
            ("tick_secs", self.tick_secs),
            ("horizon_secs", self.horizon_secs),
            ("freshness_secs", self.freshness_secs),
            ("cooldown_secs", self.cooldown_secs),
            ("settle_secs", self.settle_secs),
        ] {
            if value > MAX_SECS {
                problems.push(format!(
                    "{key} must be at most {MAX_SECS} (30 days), got {value}"
                ));
            }
        }
        for (key, value) in [
            ("p99_metric", &self.p99_metric),
            ("rps_metric", &self.rps_metric),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{key} must name a metric"));
            }
        }
        if self.kubectl.is_some() && self.kubernetes_dir.is_none() {
            problems
                .push("kubectl needs kubernetes_dir (where the requests are written)".to_string());
        }
        problems
    }
}

/// One telemetry value and when it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reading {
    /// The value.
    pub value: f64,
    /// When it was measured, Unix ms.
    pub at_ms: i64,
}

/// A node the target may run on, as telemetry shows it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// The target's replicas there now.
    pub replicas: u32,
    /// What the node's counters measure (NaN: not reported).
    pub counters: HostCounters,
    /// Declared co-runner pressure, for a model that reads pods.
    pub pressure: Pressure,
    /// How many more of the target's replicas fit there (free cores / a replica's
    /// request; `u32::MAX`: no limit known).
    pub room: u32,
    /// Best-effort co-runners a plan may evict, with the pressure they declare.
    pub evictable: Vec<(String, Pressure)>,
}

/// What the autopilot knows of one target at a tick.
#[derive(Debug, Clone)]
pub struct TargetView {
    /// The target (e.g. `default/nginx`).
    pub target: String,
    /// The tick's time, Unix ms.
    pub now_ms: i64,
    /// The newest p99 latency sample, ms.
    pub p99_ms: Option<Reading>,
    /// The newest request-rate sample, requests/s.
    pub rps: Option<Reading>,
    /// How the rate changes, requests/s per minute (from recent samples; 0 if unknown).
    pub rps_trend_per_min: f64,
    /// Every node the target may use, with its replicas there.
    pub nodes: Vec<NodeView>,
    /// Its p99 without co-runners, if an intent or profile states it (else it is learned
    /// from its telemetry).
    pub quiet_p99_ms: Option<f64>,
}

/// How a latency objective stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveState {
    /// Within the objective, and predicted to stay so over the horizon.
    Met,
    /// Within it now, predicted to break within the horizon.
    AtRisk,
    /// The newest p99 breaks the objective.
    Violated,
    /// No current p99 (or rate) sample: nothing is guessed.
    NoData,
}

impl ObjectiveState {
    /// The name used in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::AtRisk => "at_risk",
            Self::Violated => "violated",
            Self::NoData => "no_data",
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start one more replica on `node`.
    ScaleOut {
        /// Where.
        node: String,
    },
    /// Stop one replica on `node`.
    ScaleIn {
        /// Where.
        node: String,
    },
    /// Evict a best-effort co-runner `instance` from `node` (its workload's scheduler
    /// places it elsewhere, or not).
    Evict {
        /// The co-runner.
        instance: String,
        /// Where it runs.
        node: String,
    },
    /// Move one replica from `from` to `to`.
    Move {
        /// From this node.
        from: String,
        /// To this one.
        to: String,
    },
}

/// A plan: the placement it leads to and the steps there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Replicas per node after the plan, in the view's node order.
    pub placement: Vec<u32>,
    /// The steps.
    pub actions: Vec<Action>,
    /// Predicted p99 after the plan, at the rate planned for, ms.
    pub predicted_p99_ms: Option<f64>,
    /// Cost of staying as is, and after the plan.
    pub cost_before: f64,
    /// See `cost_before`.
    pub cost_after: f64,
}

/// What one tick decided for one target.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The target.
    pub target: String,
    /// The tick's time, Unix ms.
    pub now_ms: i64,
    /// Its objective, p99 ms.
    pub objective_p99_ms: f64,
    /// How it stands.
    pub state: ObjectiveState,
    /// The newest p99 and rate.
    pub p99_ms: Option<Reading>,
    /// See `p99_ms`.
    pub rps: Option<Reading>,
    /// The rate planned for: the larger of now and the horizon's forecast.
    pub planned_rps: Option<f64>,
    /// Predicted p99 of the current placement at the planned rate.
    pub predicted_p99_ms: Option<f64>,
    /// The plan to carry out, if any is worth it.
    pub plan: Option<Plan>,
    /// Why there is (no) plan, for people.
    pub reason: String,
    /// Placements costed.
    pub evaluated: usize,
    /// Models used, budget, whether it was exhausted.
    pub provenance: Provenance,
}

/// What the autopilot remembers of a target between ticks.
#[derive(Debug, Clone, Default)]
struct Memory {
    /// The target's learned p99 without interference, ms (moving average).
    quiet_p99_ms: Option<f64>,
    /// When a plan for it was last carried out.
    last_action_ms: Option<i64>,
}

/// How far in the future a sample may be stamped and still count (clock skew).
pub const CLOCK_SKEW_MS: i64 = 60_000;

/// Seconds as milliseconds, saturating.
pub(crate) fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

/// Weight of a new observation in the quiet-latency average.
const QUIET_LEARNING_RATE: f64 = 0.2;
/// Predicted slowdowns up to this count as quiet (the quiet latency learns from them).
const QUIET_SLOWDOWN: f64 = 1.2;

/// The decision core, with its memory of every target.
#[derive(Debug, Default)]
pub struct Autopilot {
    config: AutopilotConfig,
    planner: PlannerConfig,
    memory: HashMap<String, Memory>,
}

impl Autopilot {
    /// An autopilot with these settings.
    pub fn new(config: AutopilotConfig) -> Self {
        let planner = PlannerConfig {
            budget_ms: config.budget_ms,
            ..PlannerConfig::default()
        };
        Self {
            config,
            planner,
            memory: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AutopilotConfig {
        &self.config
    }

    /// Records that `decision`'s plan was carried out at `at_ms` (starts the cool-down).
    pub fn acted(&mut self, target: &str, at_ms: i64) {
        self.memory
            .entry(target.to_string())
            .or_default()
            .last_action_ms = Some(at_ms);
    }

    /// One tick for one target with a p99 objective.
    pub fn tick(
        &mut self,
        view: &TargetView,
        objective_p99_ms: f64,
        snapshot: &Snapshot,
    ) -> Decision {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(self.config.budget_ms / 1000.0);
        let mut models = ModelUse::new(snapshot, &self.planner, view.now_ms);
        let slowdowns = models.slowdowns();
        let slowdown = slowdowns.measured.as_ref().or(slowdowns.declared.as_ref());
        let config = &self.config;
        // Current: measured within the freshness window, and not from the future (beyond a
        // clock skew's worth): a bad clock must not pin a value as current.
        let fresh = |r: Option<Reading>| {
            r.filter(|r| {
                let age = view.now_ms.saturating_sub(r.at_ms);
                (-CLOCK_SKEW_MS..=secs_ms(config.freshness_secs)).contains(&age)
            })
        };
        let (p99, rps) = (fresh(view.p99_ms), fresh(view.rps));
        let mut decision = Decision {
            target: view.target.clone(),
            now_ms: view.now_ms,
            objective_p99_ms,
            state: ObjectiveState::NoData,
            p99_ms: view.p99_ms,
            rps: view.rps,
            planned_rps: None,
            predicted_p99_ms: None,
            plan: None,
            reason: String::new(),
            evaluated: 0,
            provenance: Provenance::default(),
        };
        let (Some(p99), Some(rps)) = (p99, rps) else {
            decision.reason = format!(
                "no current {} (newest older than {} s, or none): nothing is guessed",
                if p99.is_none() { "p99" } else { "request rate" },
                config.freshness_secs
            );
            decision.provenance = models.finish(config.budget_ms, elapsed_ms(started), false);
            return decision;
        };
        let current: Vec<u32> = view.nodes.iter().map(|n| n.replicas).collect();
        let planned_rps = rps
            .value
            .max(rps.value + view.rps_trend_per_min * config.horizon_secs as f64 / 60.0);
        decision.planned_rps = Some(planned_rps);
        let (mut row, mut pods_row) = (Vec::new(), Vec::new());
        // The worst predicted slowdown over the nodes holding replicas; `eased` scales one
        // node's (what evicting a co-runner there is predicted to leave of it).
        let mut slowdown_eased = |placement: &[u32],
                                  at_rps: f64,
                                  eased: Option<(usize, f64)>|
         -> Option<f64> {
            let Some(model) = slowdown else {
                return Some(1.0);
            };
            let total = f64::from(placement.iter().sum::<u32>());
            let mut worst: Option<f64> = None;
            for (i, (node, &n)) in view.nodes.iter().zip(placement).enumerate() {
                if n > 0 {
                    let mut s =
                        model.slowdown(at_rps, total, &node.pressure, &node.counters, &mut row)?;
                    if let Some((_, factor)) = eased.filter(|(at, _)| *at == i) {
                        s = (s * factor).max(1.0);
                    }
                    worst = Some(worst.map_or(s, |w: f64| w.max(s)));
                }
            }
            worst
        };
        let mut worst_slowdown =
            |placement: &[u32], at_rps: f64| slowdown_eased(placement, at_rps, None);

        // Learn the quiet latency while the objective is met and the models see no
        // interference where the target runs.
        let memory = self.memory.entry(view.target.clone()).or_default();
        let slowdown_now = worst_slowdown(&current, rps.value);
        if memory.quiet_p99_ms.is_none() {
            memory.quiet_p99_ms = view.quiet_p99_ms.filter(|q| q.is_finite() && *q > 0.0);
        }
        if let Some(now) = slowdown_now {
            let quiet_now = now <= QUIET_SLOWDOWN && p99.value <= objective_p99_ms;
            if (quiet_now || memory.quiet_p99_ms.is_none()) && p99.value > 0.0 {
                let observed = p99.value / now;
                memory.quiet_p99_ms = Some(
                    memory
                        .quiet_p99_ms
                        .map_or(observed, |q| q + QUIET_LEARNING_RATE * (observed - q)),
                );
            }
        }
        let quiet = memory.quiet_p99_ms.unwrap_or(p99.value);
        // What the models do not explain of the latency seen now (>= 1) stays in every
        // prediction — a plan must beat the latency observed, not the one foreseen — and
        // its excess is taken to grow with the load each replica carries: more replicas
        // shrink it, fewer grow it (the load -> latency-per-replica effect, learned from
        // the target's own telemetry).
        let unexplained = slowdown_now.map_or(1.0, |s| (p99.value / (quiet * s)).max(1.0));
        let replicas_now = f64::from(current.iter().sum::<u32>().max(1));
        let predict = |placement: &[u32], s: &mut dyn FnMut(&[u32], f64) -> Option<f64>| {
            let replicas = f64::from(placement.iter().sum::<u32>().max(1));
            let excess = (unexplained - 1.0) * replicas_now / replicas;
            s(placement, planned_rps).map(|s| quiet * s * (1.0 + excess))
        };
        let predicted_now = predict(&current, &mut worst_slowdown);
        decision.predicted_p99_ms = predicted_now;
        decision.state = if p99.value > objective_p99_ms {
            ObjectiveState::Violated
        } else if predicted_now.is_some_and(|p| p > objective_p99_ms) {
            ObjectiveState::AtRisk
        } else {
            ObjectiveState::Met
        };

        // Cooling down after acting, unless a p99 measured since then still breaks the
        // objective (the same old sample must not ratchet plans up tick after tick).
        let cooling = memory
            .last_action_ms
            .filter(|t| view.now_ms.saturating_sub(*t) < secs_ms(config.cooldown_secs))
            .is_some_and(|t| decision.state != ObjectiveState::Violated || p99.at_ms <= t);
        if cooling {
            decision.reason = format!(
                "cooling down after the last plan ({} s)",
                config.cooldown_secs
            );
            decision.provenance = models.finish(config.budget_ms, elapsed_ms(started), false);
            return decision;
        }

        // The current placement's cost uses what is observed now as well as the forecast:
        // a violation seen is a risk, whatever the models say.
        let safe = objective_p99_ms * (1.0 - config.tolerance);
        let risk = |p99: f64| ((p99 - safe) / (objective_p99_ms - safe).max(f64::EPSILON)).max(0.0);
        let cost = |placement: &[u32], predicted: Option<f64>, actions: usize| {
            config.risk_weight * predicted.map_or(1.0, risk)
                + config.replica_cost * f64::from(placement.iter().sum::<u32>())
                + config.action_cost * actions as f64
        };
        let before_p99 = Some(predicted_now.map_or(p99.value, |p| p.max(p99.value)));
        let cost_before = cost(&current, before_p99, 0);
        let mut best = (
            current.clone(),
            cost_before,
            before_p99,
            Vec::<Action>::new(),
        );
        let mut frontier = vec![(current.clone(), Vec::<Action>::new())];
        // Never fewer replicas while the objective is broken or at risk.
        let scale_in = decision.state == ObjectiveState::Met;
        let mut exhausted = false;
        'search: for _ in 0..config.max_actions_per_tick {
            let mut next = Vec::new();
            for (placement, actions) in &frontier {
                for (candidate, action) in neighbours(placement, &view.nodes, config, scale_in) {
                    if Instant::now() >= deadline {
                        exhausted = true;
                        break 'search;
                    }
                    decision.evaluated += 1;
                    let predicted = predict(&candidate, &mut worst_slowdown);
                    let mut steps = actions.clone();
                    steps.push(action);
                    let c = cost(&candidate, predicted, steps.len());
                    if c < best.1 {
                        best = (candidate.clone(), c, predicted, steps.clone());
                    }
                    next.push((candidate, steps));
                }
            }
            frontier = next;
        }
        // Evicting a best-effort co-runner from a node holding replicas, as a plan of its
        // own: what it leaves of that node's slowdown is what the declared-pods model says
        // of the node without its pressure (no pods model: no eviction is foreseen).
        let replicas_total = f64::from(current.iter().sum::<u32>());
        'evict: for (i, node) in view.nodes.iter().enumerate() {
            let Some(pods) = slowdowns.declared.as_ref().filter(|_| current[i] > 0) else {
                continue;
            };
            for (instance, pressure) in &node.evictable {
                if Instant::now() >= deadline {
                    exhausted = true;
                    break 'evict;
                }
                decision.evaluated += 1;
                let without = Pressure {
                    cpu: (node.pressure.cpu - pressure.cpu).max(0.0),
                    l3: (node.pressure.l3 - pressure.l3).max(0.0),
                    membw: (node.pressure.membw - pressure.membw).max(0.0),
                };
                let none = HostCounters::default();
                let (Some(with), Some(after)) = (
                    pods.slowdown(
                        planned_rps,
                        replicas_total,
                        &node.pressure,
                        &none,
                        &mut pods_row,
                    ),
                    pods.slowdown(planned_rps, replicas_total, &without, &none, &mut pods_row),
                ) else {
                    continue;
                };
                let eased = Some((i, after / with));
                let predicted = slowdown_eased(&current, planned_rps, eased).map(|s| {
                    let excess = unexplained - 1.0;
                    quiet * s * (1.0 + excess)
                });
                let c = cost(&current, predicted, 1) + config.evict_cost;
                if c < best.1 {
                    let evict = Action::Evict {
                        instance: instance.clone(),
                        node: node.name.clone(),
                    };
                    best = (current.clone(), c, predicted, vec![evict]);
                }
            }
        }
        let (placement, cost_after, predicted, actions) = best;
        decision.reason = if actions.is_empty() {
            "no plan is cheaper than staying".to_string()
        } else if cost_after > cost_before - config.hysteresis {
            format!(
                "the best plan saves {:.2} < hysteresis {}: staying",
                cost_before - cost_after,
                config.hysteresis
            )
        } else {
            decision.plan = Some(Plan {
                placement,
                actions,
                predicted_p99_ms: predicted,
                cost_before,
                cost_after,
            });
            if config.dry_run {
                "dry run: planned, not carried out".to_string()
            } else {
                "planned".to_string()
            }
        };
        if slowdown.is_none() {
            decision
                .reason
                .push_str("; no slowdown model: interference is not foreseen");
        }
        decision.provenance = models.finish(config.budget_ms, elapsed_ms(started), exhausted);
        decision
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// Placements one action away from `placement`, within the replica bounds (removing a
/// replica only if `scale_in`).
fn neighbours<'a>(
    placement: &'a [u32],
    nodes: &'a [NodeView],
    config: &'a AutopilotConfig,
    scale_in: bool,
) -> impl Iterator<Item = (Vec<u32>, Action)> + 'a {
    let total: u32 = placement.iter().sum();
    let with = move |changes: &[(usize, i64)]| {
        let mut p = placement.to_vec();
        for &(i, d) in changes {
            p[i] = (i64::from(p[i]) + d) as u32;
        }
        p
    };
    let n = placement.len();
    // A node takes another replica only within the room it has beyond what runs there.
    let fits = move |i: usize| placement[i] < nodes[i].replicas.saturating_add(nodes[i].room);
    let out = (0..n)
        .filter(move |&i| total < config.max_replicas && fits(i))
        .map(move |i| {
            (
                with(&[(i, 1)]),
                Action::ScaleOut {
                    node: nodes[i].name.clone(),
                },
            )
        });
    let scale_in = (0..n)
        .filter(move |&i| scale_in && placement[i] > 0 && total > config.min_replicas)
        .map(move |i| {
            (
                with(&[(i, -1)]),
                Action::ScaleIn {
                    node: nodes[i].name.clone(),
                },
            )
        });
    let moves = (0..n)
        .flat_map(move |i| (0..n).map(move |j| (i, j)))
        .filter(move |&(i, j)| i != j && placement[i] > 0 && fits(j))
        .map(move |(i, j)| {
            (
                with(&[(i, -1), (j, 1)]),
                Action::Move {
                    from: nodes[i].name.clone(),
                    to: nodes[j].name.clone(),
                },
            )
        });
    out.chain(scale_in).chain(moves)
}
