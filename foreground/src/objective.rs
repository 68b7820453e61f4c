//! The scorer: model predictions turned into one objective (lower is better), per host and
//! for the whole landscape, so recipes and rebalancing moves are judged by how much they
//! change it.
//!
//! Host cost = `headroom`·(share of cores in use)² + `interference`·(pressure on the host ×
//! its latency-critical instances) + `consolidation` if it runs anything + Σ over its
//! latency-critical instances with a p99 objective of `slo_risk`·priority·max(0,
//! predicted p99 / objective − 1). The predicted p99 is the instance's quiet p99 × the
//! `interference-slowdown` model's slowdown for the pressure of its co-runners, its rps
//! and the replicas of its workload on that host. A host the landscape colouring marks
//! anomalous (itself, its NIC or switch) adds `anomalous_host`·score per instance on it.

use dcpilot_schemas::Invalid;
use std::collections::HashMap;
use std::sync::Arc;

use dcpilot_info_core::live::Answerer;

use crate::intents::Intents;
use crate::landscape::{HostCounters, HostLoad, Landscape, Pressure};
use crate::planner::Weights;
use dcpilot_schemas::names::PCM_SYSTEM_METRICS;

/// A slowdown model with its features resolved by name once; per use only the pressure,
/// counters, rps and replicas change.
pub struct SlowdownModel<'a> {
    answerer: Answerer<'a>,
    slots: Vec<Slot>,
    /// Counters if it reads any, else declared pods.
    judges_by: JudgedBy,
}

#[derive(Clone, Copy)]
enum Slot {
    Rps,
    Replicas,
    Cpu,
    L3,
    Membw,
    /// One of the host's hardware counters.
    Counter(usize),
}

impl<'a> SlowdownModel<'a> {
    /// Resolves the model's features; an unknown feature makes it unusable (and says which).
    pub fn resolve(answerer: Answerer<'a>) -> Result<Self, Invalid> {
        let slots = answerer
            .served
            .record
            .features
            .iter()
            .map(|f| match f.as_str() {
                "cpu_pods" => Ok(Slot::Cpu),
                "l3_pods" => Ok(Slot::L3),
                "membw_pods" => Ok(Slot::Membw),
                "rps" => Ok(Slot::Rps),
                "replicas" => Ok(Slot::Replicas),
                other => HostCounters::index_of(other)
                    .map(Slot::Counter)
                    .ok_or_else(|| {
                        format!("it reads feature {other:?}, unknown to the foreground")
                    }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let judges_by = if slots.iter().any(|s| matches!(s, Slot::Counter(_))) {
            JudgedBy::Counters
        } else {
            JudgedBy::DeclaredPods
        };
        Ok(Self {
            answerer,
            slots,
            judges_by,
        })
    }

    /// Whether the model needs the workload's rps.
    pub fn needs_rps(&self) -> bool {
        self.slots.iter().any(|s| matches!(s, Slot::Rps))
    }

    /// Whether the model reads every counter it needs from `counters`.
    fn can_read(&self, counters: &HostCounters) -> bool {
        self.slots.iter().all(|s| match s {
            Slot::Counter(i) => counters.get(*i).is_some(),
            _ => true,
        })
    }

    /// The model's version.
    pub fn version(&self) -> u64 {
        self.answerer.served.version()
    }

    /// Predicted slowdown (≥ 1) next to `pressure` on a host reporting `counters`, or
    /// `None` when the model cannot say (a counter it reads is not reported; while the
    /// model is demoted, its best computable baseline says).
    pub fn slowdown(
        &self,
        rps: f64,
        replicas: f64,
        pressure: &Pressure,
        counters: &HostCounters,
        row: &mut Vec<f64>,
    ) -> Option<f64> {
        row.clear();
        if !self.push_row(rps, replicas, pressure, counters, row) {
            return None;
        }
        self.answerer.predict(row).ok().and_then(as_slowdown)
    }

    /// Appends the model's feature row for these inputs to `rows`; false, appending
    /// nothing, when a counter it reads is not reported.
    pub fn push_row(
        &self,
        rps: f64,
        replicas: f64,
        pressure: &Pressure,
        counters: &HostCounters,
        rows: &mut Vec<f64>,
    ) -> bool {
        let start = rows.len();
        for slot in &self.slots {
            let value = match slot {
                Slot::Rps => rps,
                Slot::Replicas => replicas,
                Slot::Cpu => pressure.cpu.max(0.0),
                Slot::L3 => pressure.l3.max(0.0),
                Slot::Membw => pressure.membw.max(0.0),
                Slot::Counter(i) => match counters.get(*i) {
                    Some(v) => v,
                    None => {
                        rows.truncate(start);
                        return false;
                    }
                },
            };
            rows.push(value);
        }
        true
    }

    /// The slowdowns of `count` rows made by [`SlowdownModel::push_row`], into `answers`:
    /// exactly what [`SlowdownModel::slowdown`] gives one by one, in one batched
    /// prediction (a forest walks every row through a tree before the next).
    pub fn slowdowns(
        &self,
        rows: &[f64],
        count: usize,
        scratch: &mut Vec<f64>,
        answers: &mut Vec<Option<f64>>,
    ) {
        answers.clear();
        let width = self.slots.len();
        if width > 0 && self.answerer.predict_many(rows, width, scratch).is_ok() {
            answers.extend(scratch.iter().map(|&v| as_slowdown(v)));
        } else {
            // No features, or a row the batch refused: one by one, each row its own answer.
            let row = |k: usize| &rows[k * width..(k + 1) * width];
            answers.extend(
                (0..count).map(|k| self.answerer.predict(row(k)).ok().and_then(as_slowdown)),
            );
        }
    }
}

/// A model's answer as a slowdown: at least 1, or none if it is not a number.
fn as_slowdown(value: f64) -> Option<f64> {
    value.is_finite().then_some(value.max(1.0))
}

/// The slowdown models a scorer uses: the one reading what a host measures (its hardware
/// counters), and the one reading what runs there declares (co-runner pods), for hosts
/// that report no counters.
#[derive(Default)]
pub struct Slowdowns<'a> {
    /// `interference-slowdown`: host counters (or, from an older job, declared pods).
    pub measured: Option<SlowdownModel<'a>>,
    /// `interference-slowdown-pods`: declared co-runner pods.
    pub declared: Option<SlowdownModel<'a>>,
}

/// Which slowdown model judged a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgedBy {
    /// What the host measures.
    Counters,
    /// What runs there declares.
    DeclaredPods,
}

impl<'a> Slowdowns<'a> {
    /// Whether neither model is usable.
    pub fn is_empty(&self) -> bool {
        self.measured.is_none() && self.declared.is_none()
    }

    /// Whether a usable model needs the workload's rps.
    pub fn needs_rps(&self) -> bool {
        [&self.measured, &self.declared]
            .into_iter()
            .flatten()
            .any(SlowdownModel::needs_rps)
    }

    /// The model for a host reporting `counters`: the measured one if it can read them,
    /// else the declared one.
    pub fn for_host(&self, counters: &HostCounters) -> Option<(&SlowdownModel<'a>, JudgedBy)> {
        // A demoted counter model gives way to a pods model that is not demoted: its
        // baseline (say, "no interference") would judge every host alike.
        let declared_better = self
            .declared
            .as_ref()
            .is_some_and(|d| d.answerer.demotion.is_none());
        match &self.measured {
            Some(m)
                if m.can_read(counters) && !(m.answerer.demotion.is_some() && declared_better) =>
            {
                Some((m, m.judges_by))
            }
            _ => self.declared.as_ref().map(|m| (m, JudgedBy::DeclaredPods)),
        }
    }
}

/// A memo key for one slowdown prediction: the bits of everything a model may read.
pub type SlowdownKey = [u64; 5 + PCM_SYSTEM_METRICS.len()];

/// The memo key of one slowdown prediction.
pub fn slowdown_key(
    pressure: &Pressure,
    rps: f64,
    replicas: f64,
    counters: &HostCounters,
) -> SlowdownKey {
    let mut key = [0u64; 5 + PCM_SYSTEM_METRICS.len()];
    key[..5].copy_from_slice(&[
        pressure.cpu.to_bits(),
        pressure.l3.to_bits(),
        pressure.membw.to_bits(),
        rps.to_bits(),
        replicas.to_bits(),
    ]);
    for (k, c) in key[5..].iter_mut().zip(counters.0) {
        *k = c.to_bits();
    }
    key
}

/// One instance in the scorer's compact form.
#[derive(Debug, Clone)]
pub struct Member {
    /// Instance id (shared: copying a [`State`] must be cheap).
    pub id: Arc<str>,
    /// Index of its workload in [`State::workloads`].
    pub workload: usize,
    /// Host index; `None` once killed.
    pub host: Option<usize>,
    /// Cores held.
    pub cores: f64,
    /// Memory held.
    pub memory_bytes: u64,
    /// Pressure on neighbours.
    pub pressure: Pressure,
    /// Latency-critical.
    pub latency_critical: bool,
    /// Rps it serves.
    pub rps: Option<f64>,
    /// Quiet p99, ms.
    pub quiet_p99_ms: Option<f64>,
    /// May be killed.
    pub evictable: bool,
}

/// What one workload is promised, resolved for scoring.
#[derive(Debug, Clone)]
pub struct WorkloadInfo {
    /// Name.
    pub name: String,
    /// p99 objective, ms.
    pub p99_objective_ms: Option<f64>,
    /// Priority (≥ 0).
    pub priority: f64,
    /// Fallback quiet p99 and rps from the intents.
    pub quiet_p99_ms: Option<f64>,
    /// Workload rps from the intents (split over its replicas).
    pub rps: Option<f64>,
}

/// A mutable copy of the landscape in index form, for recipes and local search.
#[derive(Debug, Clone)]
pub struct State {
    /// Host names (fixed for a state's life, shared between copies).
    pub host_names: Arc<Vec<String>>,
    /// Host capacity (cores, memory).
    pub capacity: Vec<(f64, u64)>,
    /// Loads by host.
    pub loads: Vec<HostLoad>,
    /// Member indexes by host.
    pub members_of: Vec<Vec<usize>>,
    /// All members (killed ones keep their slot with `host = None`).
    pub members: Vec<Member>,
    /// Workloads.
    pub workloads: Vec<WorkloadInfo>,
    /// Instance id → member index.
    pub by_id: HashMap<Arc<str>, usize>,
    /// Host name → index.
    pub host_index: Arc<HashMap<String, usize>>,
}

impl State {
    /// Builds the index form of `landscape` with the workloads' intents.
    pub fn new(landscape: &Landscape, intents: &Intents) -> Self {
        let hosts = landscape.hosts();
        let mut state = Self {
            host_names: Arc::new(hosts.iter().map(|h| h.name.clone()).collect()),
            capacity: hosts.iter().map(|h| (h.cores, h.memory_bytes)).collect(),
            loads: landscape.loads().to_vec(),
            members_of: vec![Vec::new(); hosts.len()],
            members: Vec::with_capacity(landscape.instances().len()),
            workloads: Vec::new(),
            by_id: HashMap::with_capacity(landscape.instances().len()),
            host_index: Arc::new(
                hosts
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.name.clone(), i))
                    .collect(),
            ),
        };
        let mut workload_index: HashMap<&str, usize> = HashMap::new();
        for inst in landscape.instances().values() {
            let Some(host) = landscape.host_index(&inst.host) else {
                continue;
            };
            let workload = *workload_index.entry(&inst.workload).or_insert_with(|| {
                let o = intents
                    .objectives(&inst.workload)
                    .copied()
                    .unwrap_or_default();
                state.workloads.push(WorkloadInfo {
                    name: inst.workload.clone(),
                    p99_objective_ms: o.p99_latency_ms,
                    priority: if o.priority > 0.0 { o.priority } else { 1.0 },
                    quiet_p99_ms: o.quiet_p99_ms,
                    rps: o.rps,
                });
                state.workloads.len() - 1
            });
            let m = state.members.len();
            let id: Arc<str> = Arc::from(inst.id.as_str());
            state.by_id.insert(Arc::clone(&id), m);
            state.members.push(Member {
                id,
                workload,
                host: Some(host),
                cores: inst.cores,
                memory_bytes: inst.memory_bytes,
                pressure: inst.pressure,
                latency_critical: inst.latency_critical
                    || state.workloads[workload].p99_objective_ms.is_some(),
                rps: inst.rps,
                quiet_p99_ms: inst.quiet_p99_ms,
                evictable: inst.evictable,
            });
            state.members_of[host].push(m);
        }
        // Workload rps from intents is split evenly over its replicas.
        let mut replicas = vec![0u32; state.workloads.len()];
        for m in &state.members {
            replicas[m.workload] += 1;
        }
        for m in &mut state.members {
            if m.rps.is_none() {
                let w = &state.workloads[m.workload];
                m.rps = w.rps.map(|r| r / f64::from(replicas[m.workload].max(1)));
            }
        }
        state
    }

    /// Moves member `m` to `host` (or kills it with `None`), keeping loads current.
    pub fn relocate(&mut self, m: usize, host: Option<usize>) {
        if let Some(from) = self.members[m].host {
            self.members_of[from].retain(|&x| x != m);
            account(&mut self.loads[from], &self.members[m], -1.0);
        }
        self.members[m].host = host;
        if let Some(to) = host {
            self.members_of[to].push(m);
            account(&mut self.loads[to], &self.members[m], 1.0);
        }
    }

    /// Adds a member (a new replica) on `host`; returns its index.
    pub fn add(&mut self, mut member: Member, host: usize) -> usize {
        member.host = None;
        let m = self.members.len();
        self.by_id.insert(Arc::clone(&member.id), m);
        self.members.push(member);
        self.relocate(m, Some(host));
        m
    }

    /// Whether `host` has room for `cores` and `memory` more.
    pub fn fits(&self, host: usize, cores: f64, memory: u64) -> bool {
        let (c, mem) = self.capacity[host];
        let load = &self.loads[host];
        load.busy_cores() + cores <= c + 1e-9 && load.memory_bytes + memory <= mem
    }

    /// Live members of a workload.
    pub fn replicas_of(&self, workload: usize) -> impl Iterator<Item = usize> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter(move |(_, m)| m.workload == workload && m.host.is_some())
            .map(|(i, _)| i)
    }
}

fn account(load: &mut HostLoad, m: &Member, sign: f64) {
    load.account(
        m.cores,
        m.memory_bytes,
        &m.pressure,
        m.latency_critical,
        sign,
    );
}

/// Scores hosts of a [`State`]: weights, the slowdown model if usable, and a memo of its
/// predictions (the same co-runner pressure, rps and replicas recur across hosts).
pub struct Scorer<'a> {
    weights: Weights,
    slowdown: Slowdowns<'a>,
    /// Per host index, the penalty per instance of a host coloured anomalous (empty: none).
    anomaly: Vec<f64>,
    memo: HashMap<SlowdownKey, Option<f64>>,
    row: Vec<f64>,
}

/// One instance's predicted p99 and its risk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Risk {
    /// Predicted p99, ms.
    pub p99_ms: f64,
    /// The objective, ms.
    pub objective_ms: f64,
    /// Weighted risk.
    pub cost: f64,
}

impl<'a> Scorer<'a> {
    /// A scorer with these weights and the slowdown models (possibly none).
    pub fn new(weights: Weights, slowdown: Slowdowns<'a>) -> Self {
        Self {
            weights,
            slowdown,
            anomaly: Vec::new(),
            memo: HashMap::new(),
            row: Vec::with_capacity(8),
        }
    }

    /// Penalises the hosts of `state` that `colouring` marks anomalous, per instance.
    pub fn with_anomalies(
        mut self,
        state: &State,
        colouring: Option<&dcpilot_info_core::PreparedColouring>,
    ) -> Self {
        self.anomaly = match colouring {
            None => Vec::new(),
            Some(_) => state
                .host_names
                .iter()
                .map(|h| {
                    crate::planner::anomaly_penalty(colouring, h, &self.weights)
                        .map_or(0.0, |(penalty, _)| penalty)
                })
                .collect(),
        };
        self
    }

    /// The penalty per instance on `host` for its anomaly colour (0: none).
    pub fn anomaly_of(&self, host: usize) -> f64 {
        self.anomaly.get(host).copied().unwrap_or(0.0)
    }

    /// Predicted p99 risk of member `m` on `host` whose load (with `m`) is `load`. The
    /// model sees, as in training, the rps and replicas of `m`'s workload on that host and
    /// the pressure of everything else there.
    pub fn risk(&mut self, state: &State, m: usize, host: usize, load: &HostLoad) -> Option<Risk> {
        let member = &state.members[m];
        let workload = &state.workloads[member.workload];
        let objective = workload.p99_objective_ms?;
        let quiet = member.quiet_p99_ms.or(workload.quiet_p99_ms)?;
        let (model, _) = self.slowdown.for_host(&load.counters)?;
        if model.needs_rps() && member.rps.is_none() {
            return None;
        }
        // As in training: the traffic and the replica count of the workload on this host.
        let (mut rps, mut replicas) = (0.0_f64, 0.0_f64);
        for &x in &state.members_of[host] {
            let other = &state.members[x];
            if other.workload == member.workload {
                rps += other.rps.unwrap_or(0.0);
                replicas += 1.0;
            }
        }
        if !state.members_of[host].contains(&m) {
            rps += member.rps.unwrap_or(0.0);
            replicas += 1.0;
        }
        let mut others = load.pressure;
        others.cpu -= member.pressure.cpu;
        others.l3 -= member.pressure.l3;
        others.membw -= member.pressure.membw;
        let key = slowdown_key(&others, rps, replicas, &load.counters);
        let row = &mut self.row;
        let factor = *self
            .memo
            .entry(key)
            .or_insert_with(|| model.slowdown(rps, replicas, &others, &load.counters, row));
        let p99 = quiet * factor?;
        Some(Risk {
            p99_ms: p99,
            objective_ms: objective,
            cost: self.weights.slo_risk * workload.priority * (p99 / objective - 1.0).max(0.0),
        })
    }

    /// The cost of `host` as it stands in `state`.
    pub fn host_cost(&mut self, state: &State, host: usize) -> f64 {
        let load = state.loads[host];
        let (cores, _) = state.capacity[host];
        let w = self.weights;
        let util = load.busy_cores() / cores;
        let mut cost = w.headroom * util * util
            + w.interference * load.pressure.total().max(0.0) * f64::from(load.latency_critical)
            + if load.instances > 0 {
                w.consolidation
            } else {
                0.0
            }
            + self.anomaly_of(host) * f64::from(load.instances);
        for i in 0..state.members_of[host].len() {
            let m = state.members_of[host][i];
            if state.members[m].latency_critical {
                if let Some(r) = self.risk(state, m, host, &load) {
                    cost += r.cost;
                }
            }
        }
        cost
    }

    /// The whole landscape's objective.
    pub fn total(&mut self, state: &State) -> f64 {
        (0..state.capacity.len())
            .map(|h| self.host_cost(state, h))
            .sum()
    }

    /// Whether the slowdown model is in use.
    pub fn has_model(&self) -> bool {
        !self.slowdown.is_empty()
    }
}
