//! `dcpilot planner replay`: controllers run minute by minute over synthesised days
//! against the measured [`Plant`], every one on the same plant, trace, noise and delays —
//! the autopilot, Kubernetes HPA-style controllers, a counter-threshold rule (descheduler
//! / Koordinator LowNodeLoad style), the rule with an HPA, a fixed replica count and the
//! oracle bound — reporting SLO-violation minutes, replica-minutes, actions, moves and
//! evicted-pod minutes of each.
//!
//! The setting: nginx on two nodes; co-runner episodes come and go on one of them; every
//! controller starts with two replicas, one a node. A decision at the end of minute *m*
//! acts from minute *m* + 1: replicas removed stop then; replicas added (a scale-out, or
//! the new half of a move) are paid for from then but serve only after
//! [`ReplayConfig::rollout_minutes`] (readiness); a moved replica keeps serving on its old
//! node until its replacement is ready, as a rolling update does.

use std::collections::VecDeque;

use dcpilot_info_core::Snapshot;
use dcpilot_schemas::TelemetrySample;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use dcpilot_foreground::autopilot::live::TelemetryWindow;
use dcpilot_foreground::autopilot::{Autopilot, AutopilotConfig, NodeView, TargetView};
use dcpilot_foreground::landscape::{HostCounters, Pressure};

use super::plant::{Plant, QUIET};
use super::rule::NodeRule;

/// The nodes of the replay.
pub const NODES: [&str; 2] = ["node-a", "node-b"];
const MINUTE_MS: i64 = 60_000;
/// The replayed workload.
const TARGET: &str = "default/nginx";

/// One minute of a trace: the request rate, what co-runs on which node, and the
/// measurement noise drawn for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Minute {
    /// Requests per second.
    pub rps: f64,
    /// The co-runner scenario (`none`: quiet).
    pub scenario: String,
    /// The node it runs on (0 or 1).
    pub noisy_node: usize,
    /// The factor this minute's p99 is off the measured mean (a repeated test's residual).
    pub noise: f64,
}

impl Minute {
    /// nginx's p99 on `plant` with `placement` (replicas per node) this minute.
    pub fn p99(&self, plant: &Plant, placement: [u32; 2]) -> Option<f64> {
        self.mean_p99(plant, placement).map(|p| p * self.noise)
    }

    /// The same without this minute's noise (what the oracle plans with).
    fn mean_p99(&self, plant: &Plant, placement: [u32; 2]) -> Option<f64> {
        plant.p99(self.rps, self.noisy_first(placement), &self.scenario)
    }

    /// What each node's counters report this minute.
    pub fn counters(&self, plant: &Plant, placement: [u32; 2]) -> [HostCounters; 2] {
        // Swapping twice is the identity: the plant's order back to the nodes'.
        self.noisy_first(plant.counters(self.rps, self.noisy_first(placement), &self.scenario))
    }

    /// Per-node values in the plant's order: the noisy node first.
    fn noisy_first<T: Copy>(&self, by_node: [T; 2]) -> [T; 2] {
        [by_node[self.noisy_node], by_node[1 - self.noisy_node]]
    }
}

/// How traces are made and judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayConfig {
    /// Minutes per trace.
    pub minutes: usize,
    /// The latency objective, p99 ms.
    pub slo_p99_ms: f64,
    /// Lowest and highest request rate of the daily pattern.
    pub rps_range: (f64, f64),
    /// Mean minutes between co-runner episodes, and their length range.
    pub episode_every_min: f64,
    /// See `episode_every_min`.
    pub episode_minutes: (usize, usize),
    /// Fewest and most replicas any controller may run.
    pub replicas: (u32, u32),
    /// The HPA baselines' CPU utilisation targets.
    pub hpa_targets: Vec<f64>,
    /// The target of the HPA that scales beside the rule.
    pub rule_hpa_target: f64,
    /// The fixed baseline's replica count.
    pub fixed_replicas: u32,
    /// Minutes from a scale-out or move until the new replica serves (readiness).
    pub rollout_minutes: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            minutes: 24 * 60,
            slo_p99_ms: 1.0,
            rps_range: (500.0, 3500.0),
            episode_every_min: 120.0,
            episode_minutes: (20, 90),
            replicas: (1, 4),
            hpa_targets: vec![0.5, 0.7, 0.9],
            rule_hpa_target: 0.7,
            fixed_replicas: 2,
            rollout_minutes: 1,
        }
    }
}

/// A day of traffic with co-runner episodes, from a seed: the rate follows a daily wave
/// between `rps_range` with 5% noise; episodes start at random (on average every
/// `episode_every_min` minutes) on a node drawn at random, with a scenario drawn from
/// those the plant measured; each minute's measurement noise is one of the plant's
/// repeated-test residuals, drawn at random.
pub fn synthesise(plant: &Plant, config: &ReplayConfig, seed: u64) -> Vec<Minute> {
    let mut rng = StdRng::seed_from_u64(seed);
    let noisy: Vec<String> = plant
        .scenarios()
        .into_iter()
        .filter(|s| s != QUIET)
        .collect();
    let residuals = plant.noise();
    let (low, high) = config.rps_range;
    let mut minutes = Vec::with_capacity(config.minutes);
    let mut episode: Option<(String, usize, usize)> = None;
    for m in 0..config.minutes {
        let phase = 2.0 * std::f64::consts::PI * m as f64 / (24.0 * 60.0);
        let wave = 0.5 - 0.5 * phase.cos();
        let jitter = 1.0 + rng.random_range(-0.05..0.05);
        let rps = ((low + (high - low) * wave) * jitter).max(1.0);
        if episode.as_ref().is_some_and(|(_, _, left)| *left == 0) {
            episode = None;
        }
        if episode.is_none()
            && !noisy.is_empty()
            && rng.random_bool((1.0 / config.episode_every_min).clamp(0.0, 1.0))
        {
            let scenario = noisy[rng.random_range(0..noisy.len())].clone();
            let length = rng.random_range(config.episode_minutes.0..=config.episode_minutes.1);
            episode = Some((scenario, rng.random_range(0..2usize), length));
        }
        let (scenario, noisy_node) = match &mut episode {
            Some((name, node, left)) => {
                *left -= 1;
                (name.clone(), *node)
            }
            None => (QUIET.to_string(), 0),
        };
        let noise = if residuals.is_empty() {
            1.0
        } else {
            residuals[rng.random_range(0..residuals.len())].exp()
        };
        minutes.push(Minute {
            rps,
            scenario,
            noisy_node,
            noise,
        });
    }
    minutes
}

/// What a controller sees at the end of a minute (the plant's telemetry).
#[derive(Debug, Clone)]
pub struct Observation {
    /// The minute, from 0.
    pub minute: usize,
    /// Requests per second.
    pub rps: f64,
    /// p99 latency, ms (none: no replica served).
    pub p99_ms: Option<f64>,
    /// CPU utilisation of the replicas' requests, those starting at 0 (HPA's input).
    pub cpu_utilisation: f64,
    /// Each node's PCM counters.
    pub counters: [HostCounters; 2],
}

/// A replica controller: from what it sees, the placement it wants.
pub trait Controller {
    /// Its name in the report.
    fn name(&self) -> String;
    /// The placement (replicas on node 0, node 1) wanted from the next minute, given the
    /// one asked for so far (serving and starting replicas).
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2];
}

/// A fixed replica count, spread.
pub struct Fixed(pub u32);

impl Controller for Fixed {
    fn name(&self) -> String {
        "fixed".into()
    }
    fn decide(&mut self, _: &Observation, _: [u32; 2]) -> [u32; 2] {
        spread(self.0)
    }
}

/// Replicas spread over the two nodes as evenly as they go, node 0 first.
pub fn spread(replicas: u32) -> [u32; 2] {
    [replicas.div_ceil(2), replicas / 2]
}

/// The Kubernetes HPA algorithm on CPU utilisation.
pub struct Hpa {
    target: f64,
    bounds: (u32, u32),
    /// Recommendations of the last 5 minutes (the scale-down stabilisation window).
    recent: VecDeque<u32>,
}

impl Hpa {
    /// An HPA-style controller with a utilisation target and replica bounds.
    pub fn new(target: f64, bounds: (u32, u32)) -> Self {
        Self {
            target,
            bounds,
            recent: VecDeque::new(),
        }
    }

    /// The replica count it wants, from `current`.
    pub fn desired(&mut self, seen: &Observation, current: u32) -> u32 {
        let ratio = seen.cpu_utilisation / self.target;
        let desired = if (ratio - 1.0).abs() <= HPA_TOLERANCE {
            current
        } else {
            (f64::from(current) * ratio).ceil() as u32
        }
        .clamp(self.bounds.0, self.bounds.1);
        self.recent.push_back(desired);
        while self.recent.len() > HPA_STABILISATION_MIN {
            self.recent.pop_front();
        }
        let stabilised = self.recent.iter().copied().max().unwrap_or(desired);
        if desired > current {
            desired
        } else {
            stabilised.min(current.max(desired))
        }
    }
}

/// HPA's tolerance: no change while utilisation / target is within 10% of 1.
const HPA_TOLERANCE: f64 = 0.1;
/// HPA's default scale-down stabilisation window, minutes.
const HPA_STABILISATION_MIN: usize = 5;

impl Controller for Hpa {
    fn name(&self) -> String {
        format!("hpa-{:.0}", self.target * 100.0)
    }
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2] {
        spread(self.desired(seen, placement[0] + placement[1]))
    }
}

/// The rule an SRE writes first: when one node's counters cross the threshold fitted on
/// the training runs and the other's do not, every replica goes to the other node
/// (descheduler / Koordinator LowNodeLoad style); otherwise the placement stays. The
/// replica count is fixed, or an HPA's.
pub struct Rule {
    rule: NodeRule,
    hpa: Option<Hpa>,
}

impl Rule {
    /// The rule alone (the count stays), or beside an HPA.
    pub fn new(rule: NodeRule, hpa: Option<Hpa>) -> Self {
        Self { rule, hpa }
    }
}

impl Controller for Rule {
    fn name(&self) -> String {
        match &self.hpa {
            Some(hpa) => format!("rule+{}", hpa.name()),
            None => "rule".into(),
        }
    }
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2] {
        let current = placement[0] + placement[1];
        let count = match &mut self.hpa {
            Some(hpa) => hpa.desired(seen, current),
            None => current,
        };
        let hot = seen.counters.map(|c| self.rule.crosses(&c));
        match hot {
            [true, false] => [0, count],
            [false, true] => [count, 0],
            _ if count == current => placement,
            // A new count stays on the node in use, if only one is.
            _ if placement[0] == 0 => [0, count],
            _ if placement[1] == 0 => [count, 0],
            _ => spread(count),
        }
    }
}

/// The autopilot as a replay controller: the plant's telemetry as its view, its plan as
/// the placement.
pub struct AutopilotController<'s> {
    autopilot: Autopilot,
    snapshot: &'s Snapshot,
    objective_p99_ms: f64,
    /// The plant's telemetry, kept as the live loop keeps it (newest p99, rate's trend).
    window: TelemetryWindow,
    /// Decisions that exhausted their budget.
    pub overruns: usize,
    /// The longest decision, ms.
    pub longest_ms: f64,
}

impl<'s> AutopilotController<'s> {
    /// An autopilot keeping `objective_p99_ms` with the models of `snapshot`.
    pub fn new(config: AutopilotConfig, snapshot: &'s Snapshot, objective_p99_ms: f64) -> Self {
        Self {
            autopilot: Autopilot::new(config),
            snapshot,
            objective_p99_ms,
            window: TelemetryWindow::default(),
            overruns: 0,
            longest_ms: 0.0,
        }
    }
}

impl Controller for AutopilotController<'_> {
    fn name(&self) -> String {
        "autopilot".into()
    }
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2] {
        let now_ms = seen.minute as i64 * MINUTE_MS;
        let sample = |metric: &str, value: f64| TelemetrySample {
            timestamp_ms: now_ms,
            entity: "nginx-0".into(),
            host: None,
            workload: Some(TARGET.into()),
            metric: metric.into(),
            value,
            labels: Default::default(),
        };
        let config = self.autopilot.config();
        let minute = [
            seen.p99_ms.map(|p99| sample(&config.p99_metric, p99)),
            Some(sample(&config.rps_metric, seen.rps)),
        ];
        for s in minute.iter().flatten() {
            self.window.observe(config, s, now_ms);
        }
        let (p99_ms, rps, rps_trend_per_min) = self.window.of(TARGET);
        let view = TargetView {
            target: TARGET.into(),
            now_ms,
            p99_ms,
            rps,
            rps_trend_per_min,
            nodes: NODES
                .iter()
                .zip(placement)
                .zip(seen.counters)
                .map(|((name, replicas), counters)| NodeView {
                    name: (*name).to_string(),
                    replicas,
                    counters,
                    pressure: Pressure::default(),
                    room: u32::MAX,
                    evictable: Vec::new(),
                })
                .collect(),
            quiet_p99_ms: None,
        };
        let decision = self
            .autopilot
            .tick(&view, self.objective_p99_ms, self.snapshot);
        self.overruns += usize::from(decision.provenance.budget_exhausted);
        self.longest_ms = self.longest_ms.max(decision.provenance.used_ms);
        match decision.plan {
            Some(plan) if !self.autopilot.config().dry_run => {
                self.autopilot.acted(&view.target, now_ms);
                [plan.placement[0], plan.placement[1]]
            }
            _ => placement,
        }
    }
}

/// Not a controller but a bound: knowing the plant and the minute its replicas would be
/// ready in (without that minute's noise), the fewest replicas (placed best) that meet
/// the objective, else the lowest p99 — what no controller can beat by much, so a reader
/// sees how many violation minutes were avoidable.
pub struct Oracle<'p> {
    plant: &'p Plant,
    trace: &'p [Minute],
    slo_p99_ms: f64,
    bounds: (u32, u32),
    lead: usize,
}

impl<'p> Oracle<'p> {
    /// The bound for `trace` on `plant`, planning `lead` minutes ahead (the rollout).
    pub fn new(
        plant: &'p Plant,
        trace: &'p [Minute],
        slo_p99_ms: f64,
        bounds: (u32, u32),
        lead: usize,
    ) -> Self {
        Self {
            plant,
            trace,
            slo_p99_ms,
            bounds,
            lead,
        }
    }
}

impl Controller for Oracle<'_> {
    fn name(&self) -> String {
        "oracle".into()
    }
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2] {
        let Some(next) = self.trace.get(seen.minute + 1 + self.lead) else {
            return placement;
        };
        let mut best: Option<([u32; 2], f64)> = None;
        for total in self.bounds.0..=self.bounds.1 {
            for first in 0..=total {
                let candidate = [first, total - first];
                let Some(p99) = next.mean_p99(self.plant, candidate) else {
                    continue;
                };
                if p99 <= self.slo_p99_ms {
                    return candidate;
                }
                if best.is_none_or(|(_, b)| p99 < b) {
                    best = Some((candidate, p99));
                }
            }
        }
        best.map_or(placement, |(p, _)| p)
    }
}

/// How one controller did on one trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// The controller.
    pub controller: String,
    /// Minutes whose p99 broke the objective.
    pub violation_minutes: usize,
    /// Sum over minutes of the replicas running (serving or starting).
    pub replica_minutes: u64,
    /// Replicas added, removed or moved.
    pub actions: u64,
    /// Of those, moves (one replica started on a node as one stopped on the other).
    pub moves: u64,
    /// Sum over minutes of co-runner pods evicted (none evicts in this replay: the
    /// co-runners are not declared evictable).
    pub evicted_pod_minutes: u64,
    /// Minutes the plant could not answer (a scenario it did not measure there; a minute
    /// with no replica serving counts as a violation instead).
    pub unknown_minutes: usize,
    /// The first placement changes, with the latency before and after.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// One placement change in a replay: what was seen, what the controller asked for, and
/// the latency when it had taken effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The minute it was decided in.
    pub minute: usize,
    /// The co-runners then, and the node they were on.
    pub scenario: String,
    /// See `scenario`.
    pub noisy_node: String,
    /// Requests per second then.
    pub rps: f64,
    /// Replicas per node asked for before and after.
    pub from: [u32; 2],
    /// See `from`.
    pub to: [u32; 2],
    /// p99 in the minute it was decided, and `rollout_minutes` after the change acted, ms.
    pub p99_before_ms: Option<f64>,
    /// See `p99_before_ms`.
    pub p99_after_ms: Option<f64>,
}

/// Placement changes kept per outcome.
const CHANGES_KEPT: usize = 5;

/// The replicas of a replay: those serving, and pending changes (minute, node, delta).
struct Rollout {
    serving: [u32; 2],
    pending: Vec<(usize, usize, i64)>,
}

impl Rollout {
    /// Applies the changes due by `minute`.
    fn advance(&mut self, minute: usize) {
        let serving = &mut self.serving;
        self.pending.retain(|(at, node, delta)| {
            if *at <= minute {
                serving[*node] = (i64::from(serving[*node]) + delta).max(0) as u32;
                false
            } else {
                true
            }
        });
    }

    /// Replicas asked for: serving plus pending.
    fn planned(&self) -> [u32; 2] {
        let mut planned = self.serving.map(i64::from);
        for (_, node, delta) in &self.pending {
            planned[*node] += delta;
        }
        planned.map(|p| p.max(0) as u32)
    }

    /// Replicas paid for this minute: serving plus those starting.
    fn paid(&self) -> u64 {
        let starting: i64 = self
            .pending
            .iter()
            .filter(|(_, _, d)| *d > 0)
            .map(|(_, _, d)| d)
            .sum();
        u64::from(self.serving[0] + self.serving[1]) + starting as u64
    }

    /// Asks for `target` at the end of `minute`. A change first undoes pending changes of
    /// the opposite sign on its node (a replica still starting is cancelled, one still
    /// draining kept); what remains is scheduled: additions serve after `rollout` minutes,
    /// removals happen next minute, or when the last addition still starting is ready (a
    /// move keeps the old replica until the new one serves).
    fn ask(&mut self, minute: usize, target: [u32; 2], rollout: usize) {
        let planned = self.planned();
        let mut delta = [0, 1].map(|n| i64::from(target[n]) - i64::from(planned[n]));
        for (node, d) in delta.iter_mut().enumerate() {
            // Newest pending changes first.
            for (_, n, pending) in self.pending.iter_mut().rev() {
                if *n != node || *d == 0 || pending.signum() == d.signum() {
                    continue;
                }
                let undo = pending.abs().min(d.abs()) * d.signum();
                *pending += undo;
                *d -= undo;
            }
        }
        self.pending.retain(|(_, _, d)| *d != 0);
        let ready = minute + 1 + rollout;
        // Removals wait for every addition still starting, this one's and earlier ones'.
        let last_ready = self
            .pending
            .iter()
            .filter(|(_, _, d)| *d > 0)
            .map(|(at, _, _)| *at)
            .chain(delta.iter().filter(|d| **d > 0).map(|_| ready))
            .max();
        for (node, d) in delta.into_iter().enumerate() {
            match d {
                0 => {}
                d if d > 0 => self.pending.push((ready, node, d)),
                d => self
                    .pending
                    .push((last_ready.unwrap_or(minute + 1), node, d)),
            }
        }
    }
}

/// Runs `controller` over `trace` on `plant`, all starting at the spread of two; the
/// HPA's utilisation is the rate over the serving replicas times `rps_at_full_request`.
pub fn run(
    plant: &Plant,
    trace: &[Minute],
    config: &ReplayConfig,
    rps_at_full_request: f64,
    controller: &mut dyn Controller,
) -> Outcome {
    let mut rollout = Rollout {
        serving: spread(2),
        pending: Vec::new(),
    };
    let mut outcome = Outcome {
        controller: controller.name(),
        ..Outcome::default()
    };
    let mut awaiting: Option<(usize, usize)> = None;
    for (minute, m) in trace.iter().enumerate() {
        rollout.advance(minute);
        let serving = rollout.serving;
        let replicas = serving[0] + serving[1];
        let p99 = m.p99(plant, serving);
        match p99 {
            Some(p) if p > config.slo_p99_ms => outcome.violation_minutes += 1,
            Some(_) => {}
            // Nothing serving breaks the objective; otherwise the plant lacks the scenario.
            None if replicas == 0 => outcome.violation_minutes += 1,
            None => outcome.unknown_minutes += 1,
        }
        outcome.replica_minutes += rollout.paid();
        if let Some((index, ready)) = awaiting {
            if minute >= ready {
                outcome.changes[index].p99_after_ms = p99;
                awaiting = None;
            }
        }
        let planned = rollout.planned();
        // Over every replica asked for: one still starting uses no CPU (as the HPA counts
        // an unready pod when scaling up).
        let asked = (planned[0] + planned[1]).max(1);
        let seen = Observation {
            minute,
            rps: m.rps,
            p99_ms: p99,
            cpu_utilisation: m.rps / (f64::from(asked) * rps_at_full_request),
            counters: m.counters(plant, serving),
        };
        let next = controller.decide(&seen, planned);
        let (added, removed) = added_removed(planned, next);
        if added + removed == 0 {
            continue;
        }
        if outcome.changes.len() < CHANGES_KEPT && awaiting.is_none() {
            awaiting = Some((outcome.changes.len(), minute + 1 + config.rollout_minutes));
            outcome.changes.push(Change {
                minute,
                scenario: m.scenario.clone(),
                noisy_node: NODES[m.noisy_node].to_string(),
                rps: m.rps,
                from: planned,
                to: next,
                p99_before_ms: p99,
                p99_after_ms: None,
            });
        }
        outcome.actions += u64::from(added.max(removed));
        outcome.moves += u64::from(added.min(removed));
        rollout.ask(minute, next, config.rollout_minutes);
    }
    outcome
}

/// Replicas added and removed between two placements.
fn added_removed(from: [u32; 2], to: [u32; 2]) -> (u32, u32) {
    let added: u32 = from.iter().zip(to).map(|(a, b)| b.saturating_sub(*a)).sum();
    let removed: u32 = from.iter().zip(to).map(|(a, b)| a.saturating_sub(b)).sum();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(cpu: f64) -> Observation {
        Observation {
            minute: 0,
            rps: 0.0,
            p99_ms: None,
            cpu_utilisation: cpu,
            counters: [HostCounters::default(); 2],
        }
    }

    #[test]
    fn hpa_scales_up_at_once_and_down_after_its_window() {
        let mut hpa = Hpa::new(0.7, (1, 4));
        // 2 replicas at twice the target: 4 at once (spread 2 + 2).
        assert_eq!(hpa.decide(&seen(1.4), [1, 1]), [2, 2]);
        // Load gone: stays at 4 for the window's 5 minutes, then 1.
        let mut placement = [2, 2];
        let mut counts = Vec::new();
        for _ in 0..6 {
            placement = hpa.decide(&seen(0.1), placement);
            counts.push(placement[0] + placement[1]);
        }
        assert_eq!(counts, [4, 4, 4, 4, 1, 1], "{counts:?}");
        assert_eq!(hpa.name(), "hpa-70");
    }

    #[test]
    fn spread_and_changes() {
        assert_eq!(spread(3), [2, 1]);
        assert_eq!(added_removed([2, 0], [1, 1]), (1, 1));
        assert_eq!(added_removed([1, 1], [2, 2]), (2, 0));
        assert_eq!(added_removed([2, 2], [1, 0]), (0, 3));
    }

    #[test]
    fn the_rule_moves_every_replica_off_the_hot_node() {
        let rule = NodeRule {
            counter: "pcm_c0_residency_pct".into(),
            index: HostCounters::index_of("pcm_c0_residency_pct").expect("counter"),
            above: true,
            threshold: 5.0,
            balanced_accuracy: 1.0,
        };
        let mut r = Rule::new(rule, None);
        let mut o = seen(0.5);
        let c0 = HostCounters::index_of("pcm_c0_residency_pct").expect("counter");
        o.counters[0].0[c0] = 9.0;
        o.counters[1].0[c0] = 1.0;
        assert_eq!(r.decide(&o, [2, 1]), [0, 3]);
        // Neither (or both) hot: the placement stays.
        o.counters[0].0[c0] = 1.0;
        assert_eq!(r.decide(&o, [0, 3]), [0, 3]);
    }

    #[test]
    fn added_replicas_are_paid_for_at_once_and_serve_after_the_rollout() {
        let mut r = Rollout {
            serving: [1, 1],
            pending: Vec::new(),
        };
        // A move at the end of minute 0 with a 2-minute rollout: the new replica is paid
        // from minute 1 and serves from minute 3, when the old one stops.
        r.ask(0, [0, 2], 2);
        let mut seen = Vec::new();
        for minute in 1..5 {
            r.advance(minute);
            seen.push((r.serving, r.paid()));
        }
        assert_eq!(
            seen,
            [([1, 1], 3), ([1, 1], 3), ([0, 2], 2), ([0, 2], 2)],
            "{seen:?}"
        );
        // A scale-in acts next minute.
        r.ask(4, [0, 1], 2);
        r.advance(5);
        assert_eq!((r.serving, r.paid()), ([0, 1], 1));
    }

    #[test]
    fn a_change_of_mind_undoes_pending_changes_and_never_leaves_nothing_serving() {
        let mut r = Rollout {
            serving: [1, 0],
            pending: Vec::new(),
        };
        // Move to node 1, then back before the move is ready: the starting replica is
        // cancelled and the draining one kept.
        r.ask(0, [0, 1], 3);
        r.ask(1, [1, 0], 3);
        assert!(r.pending.is_empty(), "{:?}", r.pending);
        // A move half done, then a scale-in of the node being filled: nothing is left to
        // remove from a node that serves nothing yet.
        r.ask(2, [0, 1], 3);
        r.ask(3, [1, 0], 3);
        for minute in 3..10 {
            r.advance(minute);
            assert!(
                r.serving[0] + r.serving[1] >= 1,
                "minute {minute}: {:?}",
                r.serving
            );
        }
        assert_eq!(r.serving, [1, 0]);
        // A scale-out still starting, then a move onto it: the old replica serves until
        // the starting one is ready.
        let mut r = Rollout {
            serving: [1, 0],
            pending: Vec::new(),
        };
        r.ask(0, [1, 1], 3);
        r.ask(1, [0, 1], 3);
        for minute in 1..8 {
            r.advance(minute);
            assert!(
                r.serving[0] + r.serving[1] >= 1,
                "minute {minute}: {:?}",
                r.serving
            );
        }
        assert_eq!(r.serving, [0, 1]);
    }
}
