//! `dcpilot planner replay`: the autopilot run minute by minute over a recorded-style
//! trace against the measured [`Plant`], next to two baselines on the same plant and
//! trace — a Kubernetes HPA-style controller and a fixed replica count with the default
//! spread — reporting SLO-violation minutes, replica-minutes and actions of each.
//!
//! The setting: nginx on two nodes of one machine; co-runner episodes come and go on
//! node 0 (`node-a`); every controller starts with two replicas, one a node. A decision
//! made at minute *m* takes effect at minute *m* + 1.
//!
//! The HPA-style baseline follows the Kubernetes algorithm: desired = ceil(replicas x
//! utilisation / target) outside a 10% tolerance, scale-up at once, scale-down to the
//! highest recommendation of the last 5 minutes (its default stabilisation window),
//! replicas spread over the nodes as evenly as they go (the scheduler's default spread,
//! node 0 first). The runs measured no CPU per replica, so utilisation is *modelled*:
//! requests per second per replica over [`RPS_AT_FULL_REQUEST`] (an assumption, stated in
//! the report).

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

/// Requests per second one replica serves at 100% of its CPU request (the HPA model).
pub const RPS_AT_FULL_REQUEST: f64 = 1000.0;
/// The nodes of the replay.
pub const NODES: [&str; 2] = ["node-a", "node-b"];
const MINUTE_MS: i64 = 60_000;
/// The replayed workload.
const TARGET: &str = "default/nginx";

/// One minute of a trace: the request rate and what co-runs on which node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Minute {
    /// Requests per second.
    pub rps: f64,
    /// The co-runner scenario (`none`: quiet).
    pub scenario: String,
    /// The node it runs on (0 or 1).
    pub noisy_node: usize,
}

impl Minute {
    /// nginx's p99 on `plant` with `placement` this minute.
    pub fn p99(&self, plant: &Plant, placement: [u32; 2]) -> Option<f64> {
        let other = 1 - self.noisy_node;
        plant.p99(
            self.rps,
            [placement[self.noisy_node], placement[other]],
            &self.scenario,
        )
    }

    /// What each node's counters report this minute.
    pub fn counters(&self, plant: &Plant, replicas: u32) -> [HostCounters; 2] {
        let mut counters = [HostCounters::default(); 2];
        for (node, c) in counters.iter_mut().enumerate() {
            *c = plant.counters(self.rps, replicas, &self.scenario, node == self.noisy_node);
        }
        counters
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
    /// The HPA-style baseline's CPU utilisation target.
    pub hpa_target: f64,
    /// The fixed baseline's replica count.
    pub fixed_replicas: u32,
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
            hpa_target: 0.7,
            fixed_replicas: 2,
        }
    }
}

/// A day of traffic with co-runner episodes, from a seed: the rate follows a daily wave
/// between `rps_range` with 5% noise; episodes start at random (on average every
/// `episode_every_min` minutes) on a node drawn at random, with a scenario drawn from
/// those the plant measured.
pub fn synthesise(plant: &Plant, config: &ReplayConfig, seed: u64) -> Vec<Minute> {
    let mut rng = StdRng::seed_from_u64(seed);
    let noisy: Vec<String> = plant
        .scenarios()
        .into_iter()
        .filter(|s| s != QUIET)
        .collect();
    let (low, high) = config.rps_range;
    let mut minutes = Vec::with_capacity(config.minutes);
    let mut episode: Option<(String, usize, usize)> = None;
    for m in 0..config.minutes {
        let phase = 2.0 * std::f64::consts::PI * m as f64 / (24.0 * 60.0);
        let wave = 0.5 - 0.5 * phase.cos();
        let noise = 1.0 + rng.random_range(-0.05..0.05);
        let rps = ((low + (high - low) * wave) * noise).max(1.0);
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
        minutes.push(Minute {
            rps,
            scenario,
            noisy_node,
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
    /// Modelled CPU utilisation of the replicas' request (HPA's input).
    pub cpu_utilisation: f64,
    /// Each node's PCM counters.
    pub counters: [HostCounters; 2],
}

/// A replica controller: from what it sees, the placement for the next minute.
pub trait Controller {
    /// Its name in the report.
    fn name(&self) -> &str;
    /// The placement (replicas on node 0, node 1) for the next minute.
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2];
}

/// A fixed replica count, spread.
pub struct Fixed(pub u32);

impl Controller for Fixed {
    fn name(&self) -> &str {
        "fixed"
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
}

/// HPA's tolerance: no change while utilisation / target is within 10% of 1.
const HPA_TOLERANCE: f64 = 0.1;
/// HPA's default scale-down stabilisation window, minutes.
const HPA_STABILISATION_MIN: usize = 5;

impl Controller for Hpa {
    fn name(&self) -> &str {
        "hpa"
    }
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2] {
        let current = placement[0] + placement[1];
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
        let next = if desired > current {
            desired
        } else {
            stabilised.min(current.max(desired))
        };
        spread(next)
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
    fn name(&self) -> &str {
        "autopilot"
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

/// Not a controller but a bound: knowing the plant and the next minute, the fewest
/// replicas (placed best) that meet the objective, else the lowest p99 — what no
/// controller can beat, so a reader sees how many violation minutes were avoidable.
pub struct Oracle<'p> {
    plant: &'p Plant,
    trace: &'p [Minute],
    slo_p99_ms: f64,
    bounds: (u32, u32),
}

impl<'p> Oracle<'p> {
    /// The bound for `trace` on `plant`.
    pub fn new(plant: &'p Plant, trace: &'p [Minute], slo_p99_ms: f64, bounds: (u32, u32)) -> Self {
        Self {
            plant,
            trace,
            slo_p99_ms,
            bounds,
        }
    }
}

impl Controller for Oracle<'_> {
    fn name(&self) -> &str {
        "oracle"
    }
    fn decide(&mut self, seen: &Observation, placement: [u32; 2]) -> [u32; 2] {
        let Some(next) = self.trace.get(seen.minute + 1) else {
            return placement;
        };
        let mut best: Option<([u32; 2], f64)> = None;
        for total in self.bounds.0..=self.bounds.1 {
            for noisy in 0..=total {
                let candidate = [noisy, total - noisy];
                let Some(p99) = next.p99(self.plant, candidate) else {
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
    /// Sum over minutes of the replicas running.
    pub replica_minutes: u64,
    /// Replicas added, removed or moved.
    pub actions: u64,
    /// Minutes the plant could not answer (a scenario it did not measure there).
    pub unknown_minutes: usize,
    /// The first placement changes, with the latency before and after.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// One placement change in a replay: what was seen, what the controller did, and the
/// minute after.
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
    /// Replicas per node before and after.
    pub from: [u32; 2],
    /// See `from`.
    pub to: [u32; 2],
    /// p99 in the minute it was decided, and in the next (with the new placement), ms.
    pub p99_before_ms: Option<f64>,
    /// See `p99_before_ms`.
    pub p99_after_ms: Option<f64>,
}

/// Placement changes kept per outcome.
const CHANGES_KEPT: usize = 5;

/// Runs `controller` over `trace` on `plant`, all starting at the fixed spread of two.
pub fn run(
    plant: &Plant,
    trace: &[Minute],
    slo_p99_ms: f64,
    controller: &mut dyn Controller,
) -> Outcome {
    let mut placement = spread(2);
    let mut outcome = Outcome {
        controller: controller.name().to_string(),
        ..Outcome::default()
    };
    for (minute, m) in trace.iter().enumerate() {
        let replicas = placement[0] + placement[1];
        let p99 = m.p99(plant, placement);
        match p99 {
            Some(p) if p > slo_p99_ms => outcome.violation_minutes += 1,
            Some(_) => {}
            None => outcome.unknown_minutes += 1,
        }
        outcome.replica_minutes += u64::from(replicas);
        let seen = Observation {
            minute,
            rps: m.rps,
            p99_ms: p99,
            cpu_utilisation: m.rps / (f64::from(replicas.max(1)) * RPS_AT_FULL_REQUEST),
            counters: m.counters(plant, replicas),
        };
        if let Some(last) = outcome.changes.last_mut() {
            if last.minute + 1 == minute {
                last.p99_after_ms = p99;
            }
        }
        let next = controller.decide(&seen, placement);
        let changed = changes(placement, next);
        if changed > 0 && outcome.changes.len() < CHANGES_KEPT {
            outcome.changes.push(Change {
                minute,
                scenario: m.scenario.clone(),
                noisy_node: NODES[m.noisy_node].to_string(),
                rps: m.rps,
                from: placement,
                to: next,
                p99_before_ms: p99,
                p99_after_ms: None,
            });
        }
        outcome.actions += u64::from(changed);
        placement = next;
    }
    outcome
}

/// Replicas added, removed or moved between two placements.
fn changes(from: [u32; 2], to: [u32; 2]) -> u32 {
    let added: u32 = from.iter().zip(to).map(|(a, b)| b.saturating_sub(*a)).sum();
    let removed: u32 = from.iter().zip(to).map(|(a, b)| a.saturating_sub(b)).sum();
    added.max(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_scales_up_at_once_and_down_after_its_window() {
        let mut hpa = Hpa::new(0.7, (1, 4));
        let seen = |cpu| Observation {
            minute: 0,
            rps: 0.0,
            p99_ms: None,
            cpu_utilisation: cpu,
            counters: [HostCounters::default(); 2],
        };
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
    }

    #[test]
    fn spread_and_changes() {
        assert_eq!(spread(3), [2, 1]);
        assert_eq!(changes([2, 0], [1, 1]), 1);
        assert_eq!(changes([1, 1], [2, 2]), 2);
        assert_eq!(changes([2, 2], [1, 0]), 3);
    }
}
