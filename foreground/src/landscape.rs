//! The landscape the planner places into: hosts with capacity and platform features, the
//! instances on them, and per-host aggregates, so scoring a host is O(1). In the
//! foreground it is a view of the landscape graph ([`Landscape::from_graph`]), rebuilt
//! when the graph changes; a landscape document or events can also build one directly
//! (placements with an inline landscape, checks before a change).

use dcpilot_schemas::Invalid;
use std::collections::BTreeMap;

use dcpilot_landscape::{Direction, LandscapeGraph, NodeIndex, NodeVersion};
use dcpilot_schemas::names::PCM_SYSTEM_METRICS;
use dcpilot_schemas::{LandscapeEvent, Layer, PlatformFeatures, Relation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Shared-resource pressure a workload puts on its neighbours, in "co-runner pods" of each
/// kind — the unit the `interference-slowdown` model was trained on (NTUA: iBench CPU,
/// stress-ng L3, iBench memory bandwidth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Pressure {
    /// CPU pressure.
    pub cpu: f64,
    /// Last-level-cache pressure.
    pub l3: f64,
    /// Memory-bandwidth pressure.
    pub membw: f64,
}

impl Pressure {
    fn add(&mut self, other: &Pressure, sign: f64) {
        self.cpu += sign * other.cpu;
        self.l3 += sign * other.l3;
        self.membw += sign * other.membw;
    }

    /// All kinds together.
    pub fn total(&self) -> f64 {
        self.cpu + self.l3 + self.membw
    }
}

/// A host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Unique name (a Kubernetes node name).
    pub name: String,
    /// Allocatable cores.
    pub cores: f64,
    /// Allocatable memory.
    pub memory_bytes: u64,
    /// Platform features.
    #[serde(default)]
    pub features: PlatformFeatures,
    /// Labels (zone, rack, …).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A running instance of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Unique id.
    pub id: String,
    /// Its workload.
    pub workload: String,
    /// Where it runs.
    pub host: String,
    /// Cores it holds (request, or recent use).
    pub cores: f64,
    /// Memory it holds.
    pub memory_bytes: u64,
    /// Pressure it puts on its neighbours.
    #[serde(default)]
    pub pressure: Pressure,
    /// Whether its latency matters (it has latency objectives).
    #[serde(default)]
    pub latency_critical: bool,
    /// Requests per second this instance serves (a feature of the slowdown model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Its p99 latency without co-runners, ms; else the workload's intent may say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_p99_ms: Option<f64>,
    /// Whether rebalancing may kill it (best-effort work).
    #[serde(default)]
    pub evictable: bool,
}

/// The `dcpilot.io/` labels (landscape events) and annotations (pods) describing an
/// instance's profile.
pub const PROFILE_KEYS: [&str; 7] = [
    "pressure-cpu",
    "pressure-l3",
    "pressure-membw",
    "latency-critical",
    "rps",
    "quiet-p99-ms",
    "evictable",
];

/// Reads a `dcpilot.io/<key>` number (≥ 0) through `get`.
pub fn profile_number(
    get: impl Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<f64>, Invalid> {
    match get(&format!("dcpilot.io/{key}")) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Some)
            .ok_or_else(|| Invalid(format!("dcpilot.io/{key}: {text:?} is not a number ≥ 0"))),
    }
}

fn profile_flag(get: impl Fn(&str) -> Option<String>, key: &str) -> Result<Option<bool>, String> {
    match get(&format!("dcpilot.io/{key}")) {
        None => Ok(None),
        Some(text) => match text.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            other => Err(format!("dcpilot.io/{key}: {other:?} is not true or false")),
        },
    }
}

impl Instance {
    /// Sets the profile fields that `dcpilot.io/` labels give (`get` looks a label up);
    /// fields without a label keep their value. A label that cannot be read is an error
    /// naming it, and nothing changes.
    pub fn apply_labels<'a>(
        &mut self,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(), Invalid> {
        let get = |k: &str| get(k).map(str::to_string);
        let n = |key| profile_number(get, key);
        let (cpu, l3, membw) = (n("pressure-cpu")?, n("pressure-l3")?, n("pressure-membw")?);
        let (rps, quiet) = (n("rps")?, n("quiet-p99-ms")?);
        let latency_critical = profile_flag(get, "latency-critical")?;
        let evictable = profile_flag(get, "evictable")?;
        self.pressure.cpu = cpu.unwrap_or(self.pressure.cpu);
        self.pressure.l3 = l3.unwrap_or(self.pressure.l3);
        self.pressure.membw = membw.unwrap_or(self.pressure.membw);
        self.rps = rps.or(self.rps);
        self.quiet_p99_ms = quiet.or(self.quiet_p99_ms);
        self.latency_critical = latency_critical.unwrap_or(self.latency_critical);
        self.evictable = evictable.unwrap_or(self.evictable);
        Ok(())
    }

    /// The `dcpilot.io/` labels that give this instance's profile (what
    /// [`apply_labels`](Self::apply_labels) reads back): the landscape graph keeps an
    /// instance's profile in its pod's labels.
    pub fn profile_labels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            out.insert(format!("dcpilot.io/{key}"), value);
        };
        for (key, value) in [
            ("pressure-cpu", self.pressure.cpu),
            ("pressure-l3", self.pressure.l3),
            ("pressure-membw", self.pressure.membw),
        ] {
            if value != 0.0 {
                put(key, value.to_string());
            }
        }
        if let Some(rps) = self.rps {
            put("rps", rps.to_string());
        }
        if let Some(quiet) = self.quiet_p99_ms {
            put("quiet-p99-ms", quiet.to_string());
        }
        if self.latency_critical {
            put("latency-critical", "true".into());
        }
        if self.evictable {
            put("evictable", "true".into());
        }
        out
    }

    /// An instance with no pressure, not latency-critical, no profile.
    pub fn new(id: &str, workload: &str, host: &str, cores: f64, memory_bytes: u64) -> Self {
        Self {
            id: id.into(),
            workload: workload.into(),
            host: host.into(),
            cores,
            memory_bytes,
            pressure: Pressure::default(),
            latency_critical: false,
            rps: None,
            quiet_p99_ms: None,
            evictable: false,
        }
    }
}

/// A host's hardware counters as it last reported them (Intel PCM's system counters, in
/// the order of [`dcpilot_schemas::names::PCM_SYSTEM_METRICS`]); NaN: not reported.
/// What the host *measures* — the pressure of whatever runs there, declared or not.
#[derive(Debug, Clone, Copy)]
pub struct HostCounters(pub [f64; PCM_SYSTEM_METRICS.len()]);

/// Equal when every counter is the same, unreported (NaN) ones included.
impl PartialEq for HostCounters {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }
}

impl Default for HostCounters {
    fn default() -> Self {
        Self([f64::NAN; PCM_SYSTEM_METRICS.len()])
    }
}

impl HostCounters {
    /// Position of counter `metric` (e.g. `pcm_ipc`), if it is one.
    pub fn index_of(metric: &str) -> Option<usize> {
        PCM_SYSTEM_METRICS.iter().position(|(_, m)| *m == metric)
    }

    /// The value of counter `i`, if reported.
    pub fn get(&self, i: usize) -> Option<f64> {
        self.0.get(i).copied().filter(|v| v.is_finite())
    }
}

/// What a host reports about itself, by telemetry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HostMeasure {
    /// Busy cores (`sources.utilization_metric`).
    BusyCores,
    /// One of its hardware counters ([`HostCounters::index_of`]).
    Counter(usize),
}

impl HostMeasure {
    /// What a sample of `metric` measures, with `busy_cores` the metric of busy cores;
    /// `None` for anything else.
    pub fn of(metric: &str, busy_cores: &str) -> Option<Self> {
        if metric == busy_cores {
            Some(Self::BusyCores)
        } else {
            HostCounters::index_of(metric).map(Self::Counter)
        }
    }
}

/// Hosts' measurements that outlive rebuilds of the placement view, by host.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Cores in use beyond the instances' requests.
    pub unrequested: BTreeMap<String, f64>,
    /// Hardware counters.
    pub counters: BTreeMap<String, HostCounters>,
}

impl Measured {
    /// Forgets hosts the view no longer has.
    pub fn retain_hosts_of(&mut self, view: &Landscape) {
        self.unrequested.retain(|h, _| view.host_index(h).is_some());
        self.counters.retain(|h, _| view.host_index(h).is_some());
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.unrequested.clear();
        self.counters.clear();
    }
}

/// Per-host totals of what runs there.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostLoad {
    /// Cores held.
    pub cores: f64,
    /// Memory held.
    pub memory_bytes: u64,
    /// Instances.
    pub instances: u32,
    /// Latency-critical instances.
    pub latency_critical: u32,
    /// Pressure of all instances.
    pub pressure: Pressure,
    /// Cores in use beyond what the instances requested, from host telemetry (0 until a
    /// measurement arrives; kept as instances come and go).
    pub unrequested_cores: f64,
    /// The host's hardware counters, from host telemetry (kept as instances come and go).
    pub counters: HostCounters,
}

impl HostLoad {
    /// Cores busy: requested, plus what telemetry measured beyond the requests.
    pub fn busy_cores(&self) -> f64 {
        self.cores + self.unrequested_cores
    }

    /// Adds (`sign` = 1) or removes (`sign` = −1) one instance's share.
    pub fn account(
        &mut self,
        cores: f64,
        memory_bytes: u64,
        pressure: &Pressure,
        latency_critical: bool,
        sign: f64,
    ) {
        self.cores += sign * cores;
        self.pressure.add(pressure, sign);
        if sign > 0.0 {
            self.memory_bytes += memory_bytes;
            self.instances += 1;
            self.latency_critical += u32::from(latency_critical);
        } else {
            self.memory_bytes = self.memory_bytes.saturating_sub(memory_bytes);
            self.instances = self.instances.saturating_sub(1);
            self.latency_critical = self
                .latency_critical
                .saturating_sub(u32::from(latency_critical));
        }
    }
}

/// What went wrong changing the landscape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LandscapeError {
    /// The instance names a host that is not in the landscape.
    #[error("unknown host {0:?}")]
    UnknownHost(String),
    /// A host name appears twice.
    #[error("host {0:?} is listed twice")]
    DuplicateHost(String),
    /// A host with no capacity cannot take anything.
    #[error("host {0:?}: cores and memory must be positive")]
    EmptyHost(String),
    /// Removing an instance that is not there.
    #[error("unknown instance {0:?}")]
    UnknownInstance(String),
    /// A number that cannot be.
    #[error("instance {0:?}: cores must be a non-negative number")]
    BadSize(String),
    /// A `dcpilot.io/` label that cannot be read.
    #[error("instance {instance:?}: {problem}")]
    BadLabel {
        /// The instance.
        instance: String,
        /// Which label, and why.
        problem: String,
    },
}

/// Hosts (in a stable order, addressed by index on the hot path), their loads, and the
/// instances.
#[derive(Debug, Clone, Default)]
pub struct Landscape {
    hosts: Vec<Host>,
    loads: Vec<HostLoad>,
    index: BTreeMap<String, usize>,
    instances: BTreeMap<String, Instance>,
}

impl Landscape {
    /// A landscape of `hosts`, empty of instances.
    pub fn new(hosts: Vec<Host>) -> Result<Self, LandscapeError> {
        let mut index = BTreeMap::new();
        for (i, host) in hosts.iter().enumerate() {
            if !(host.cores > 0.0 && host.memory_bytes > 0) {
                return Err(LandscapeError::EmptyHost(host.name.clone()));
            }
            if index.insert(host.name.clone(), i).is_some() {
                return Err(LandscapeError::DuplicateHost(host.name.clone()));
            }
        }
        Ok(Self {
            loads: vec![HostLoad::default(); hosts.len()],
            hosts,
            index,
            instances: BTreeMap::new(),
        })
    }

    /// Adds a host, or changes its capacity, features and labels (its instances stay).
    pub fn upsert_host(&mut self, host: Host) -> Result<(), LandscapeError> {
        if !(host.cores.is_finite() && host.cores > 0.0 && host.memory_bytes > 0) {
            return Err(LandscapeError::EmptyHost(host.name.clone()));
        }
        match self.index.get(&host.name) {
            Some(&i) => self.hosts[i] = host,
            None => {
                self.index.insert(host.name.clone(), self.hosts.len());
                self.hosts.push(host);
                self.loads.push(HostLoad::default());
            }
        }
        Ok(())
    }

    /// Records a host's measured CPU use (cores busy, from telemetry).
    pub fn set_measured_cores(&mut self, host: &str, cores: f64) -> Result<(), LandscapeError> {
        let i = self
            .host_index(host)
            .ok_or_else(|| LandscapeError::UnknownHost(host.to_string()))?;
        if !(cores.is_finite() && cores >= 0.0) {
            return Err(LandscapeError::BadSize(host.to_string()));
        }
        let load = &mut self.loads[i];
        load.unrequested_cores = (cores - load.cores).max(0.0);
        Ok(())
    }

    /// Records a host's measurement (`measure` of `value`): busy cores, or a counter.
    pub fn set_measured(
        &mut self,
        host: &str,
        measure: HostMeasure,
        value: f64,
    ) -> Result<(), LandscapeError> {
        match measure {
            HostMeasure::BusyCores => self.set_measured_cores(host, value),
            HostMeasure::Counter(c) => {
                let i = self
                    .host_index(host)
                    .ok_or_else(|| LandscapeError::UnknownHost(host.to_string()))?;
                // Counters are rates and ratios: never negative.
                if !(value.is_finite() && value >= 0.0) || c >= PCM_SYSTEM_METRICS.len() {
                    return Err(LandscapeError::BadSize(host.to_string()));
                }
                self.loads[i].counters.0[c] = value;
                Ok(())
            }
        }
    }

    /// Removes a host and every instance on it; returns how many instances went with it.
    pub fn remove_host(&mut self, name: &str) -> Result<usize, LandscapeError> {
        let i = self
            .index
            .remove(name)
            .ok_or_else(|| LandscapeError::UnknownHost(name.to_string()))?;
        let before = self.instances.len();
        self.instances.retain(|_, inst| inst.host != name);
        let removed = before - self.instances.len();
        self.hosts.swap_remove(i);
        self.loads.swap_remove(i);
        if let Some(moved) = self.hosts.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
        Ok(removed)
    }

    /// Applies a `dcpilot.landscape` event. A placement keeps the profile (pressure,
    /// latency class, rps) an instance already had.
    pub fn apply(&mut self, event: &LandscapeEvent) -> Result<(), LandscapeError> {
        match event {
            LandscapeEvent::HostUp {
                host,
                cores,
                memory_bytes,
                features,
                labels,
                ..
            } => self.upsert_host(Host {
                name: host.clone(),
                cores: *cores,
                memory_bytes: *memory_bytes,
                features: features.clone(),
                labels: labels.clone(),
            }),
            LandscapeEvent::HostDown { host, .. } => self.remove_host(host).map(|_| ()),
            LandscapeEvent::InstancePlaced {
                instance,
                workload,
                host,
                cpu_request,
                memory_request_bytes,
                labels,
                ..
            } => {
                let mut next = self.instances.get(instance).cloned().unwrap_or_else(|| {
                    Instance::new(
                        instance,
                        workload,
                        host,
                        *cpu_request,
                        *memory_request_bytes,
                    )
                });
                next.workload.clone_from(workload);
                next.host.clone_from(host);
                next.cores = *cpu_request;
                next.memory_bytes = *memory_request_bytes;
                next.apply_labels(|key| labels.get(key).map(String::as_str))
                    .map_err(|problem| LandscapeError::BadLabel {
                        instance: instance.clone(),
                        problem: problem.0,
                    })?;
                self.upsert(next)
            }
            LandscapeEvent::InstanceRemoved { instance, .. } => self.remove(instance).map(|_| ()),
            // Generic graph events describe the structure (the landscape graph keeps them);
            // the placement view is built from host and instance events.
            LandscapeEvent::NodeUp { .. }
            | LandscapeEvent::NodeDown { .. }
            | LandscapeEvent::EdgeUp { .. }
            | LandscapeEvent::EdgeDown { .. } => Ok(()),
        }
    }

    /// Places (or moves) an instance.
    pub fn upsert(&mut self, instance: Instance) -> Result<(), LandscapeError> {
        if !(instance.cores.is_finite() && instance.cores >= 0.0) {
            return Err(LandscapeError::BadSize(instance.id.clone()));
        }
        let host = *self
            .index
            .get(&instance.host)
            .ok_or_else(|| LandscapeError::UnknownHost(instance.host.clone()))?;
        if self.instances.contains_key(&instance.id) {
            self.remove(&instance.id)?;
        }
        Self::account(&mut self.loads[host], &instance, 1.0);
        self.instances.insert(instance.id.clone(), instance);
        Ok(())
    }

    /// Removes an instance.
    pub fn remove(&mut self, id: &str) -> Result<Instance, LandscapeError> {
        let instance = self
            .instances
            .remove(id)
            .ok_or_else(|| LandscapeError::UnknownInstance(id.to_string()))?;
        if let Some(&host) = self.index.get(&instance.host) {
            Self::account(&mut self.loads[host], &instance, -1.0);
        }
        Ok(instance)
    }

    fn account(load: &mut HostLoad, instance: &Instance, sign: f64) {
        load.account(
            instance.cores,
            instance.memory_bytes,
            &instance.pressure,
            instance.latency_critical,
            sign,
        );
    }

    /// The placement view of a landscape graph as it is now (see the module doc): live
    /// `host`/`machine` nodes with positive `cores` and `memory_bytes` attributes, in the
    /// order they first appeared; and every live virtual node that `runs_on` one of them,
    /// sized by its `cpu_request` / `memory_request_bytes` attributes, profiled by its
    /// `dcpilot.io/` labels, of its workload (see [`workload_of`]; itself if none).
    /// `measured` holds hosts' measured use beyond requests and counters. Returns what it
    /// left out (node id, why).
    pub fn from_graph(
        graph: &LandscapeGraph,
        measured: &Measured,
    ) -> (Self, Vec<(String, String)>) {
        let mut view = Landscape::default();
        let mut left_out = Vec::new();
        let number = |v: &NodeVersion, key: &str| v.attributes.get(key).and_then(Value::as_f64);
        for (_, node) in graph.nodes() {
            if !(node.is_host() && node.lifetime.alive()) {
                continue;
            }
            let v = node.current();
            let host = Host {
                name: node.id.clone(),
                cores: number(v, "cores").unwrap_or(0.0),
                memory_bytes: number(v, "memory_bytes").map_or(0, |m| m as u64),
                features: v
                    .attributes
                    .get("features")
                    .and_then(|f| serde_json::from_value(f.clone()).ok())
                    .unwrap_or_default(),
                labels: v.labels.clone(),
            };
            if let Err(e) = view.upsert_host(host) {
                left_out.push((node.id.clone(), e.to_string()));
            }
        }
        for (ix, node) in graph.nodes() {
            if node.layer != Layer::Virtual || !node.lifetime.alive() {
                continue;
            }
            let v = node.current();
            // A finished pod (a done Job, an evicted pod) holds nothing.
            let phase = v.attributes.get("phase").and_then(Value::as_str);
            if matches!(phase, Some("Succeeded" | "Failed")) {
                continue;
            }
            let runs_on: Vec<&str> = graph
                .live_edges(ix, Direction::Outgoing, Some(Relation::RunsOn))
                .map(|(_, host)| graph.node(host).id.as_str())
                .collect();
            if runs_on.is_empty() {
                continue;
            }
            let Some(host) = runs_on.iter().find(|host| view.index.contains_key(**host)) else {
                left_out.push((
                    node.id.clone(),
                    format!(
                        "{:?} runs on {}, which is not a host with capacity",
                        node.id,
                        runs_on.join(", ")
                    ),
                ));
                continue;
            };
            let workload = workload_of(graph, ix).unwrap_or(&node.id);
            let mut instance = Instance::new(
                &node.id,
                workload,
                host,
                number(v, "cpu_request").unwrap_or(0.0),
                number(v, "memory_request_bytes").map_or(0, |m| m as u64),
            );
            // A label that cannot be read leaves the profile at its defaults (the pod
            // still holds its cores), and is reported.
            if let Err(problem) = instance.apply_labels(|key| v.labels.get(key).map(String::as_str))
            {
                let e = LandscapeError::BadLabel {
                    instance: node.id.clone(),
                    problem: problem.0,
                };
                left_out.push((node.id.clone(), e.to_string()));
            }
            if let Err(e) = view.upsert(instance) {
                left_out.push((node.id.clone(), e.to_string()));
            }
        }
        for (host, cores) in &measured.unrequested {
            if let Some(&i) = view.index.get(host) {
                view.loads[i].unrequested_cores = *cores;
            }
        }
        for (host, counters) in &measured.counters {
            if let Some(&i) = view.index.get(host) {
                view.loads[i].counters = *counters;
            }
        }
        (view, left_out)
    }

    /// Hosts, in index order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Loads, by host index.
    pub fn loads(&self) -> &[HostLoad] {
        &self.loads
    }

    /// A host's index by name.
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Instances by id.
    pub fn instances(&self) -> &BTreeMap<String, Instance> {
        &self.instances
    }

    /// A landscape of only `names` (their loads kept, instances left out: enough to place
    /// into). A name not known here is taken from `extra` with no load; names found in
    /// neither are returned as unknown.
    pub fn subset(&self, names: &[String], extra: &[Host]) -> (Landscape, Vec<String>) {
        let mut out = Landscape::default();
        let mut unknown = Vec::new();
        for name in names {
            if out.index.contains_key(name) {
                continue;
            }
            let (host, load) = match self.index.get(name) {
                Some(&i) => (self.hosts[i].clone(), self.loads[i]),
                None => match extra.iter().find(|h| &h.name == name) {
                    Some(h) => (h.clone(), HostLoad::default()),
                    None => {
                        unknown.push(name.clone());
                        continue;
                    }
                },
            };
            out.index.insert(host.name.clone(), out.hosts.len());
            out.hosts.push(host);
            out.loads.push(load);
        }
        (out, unknown)
    }

    /// Instances of a workload.
    pub fn replicas_of<'a>(&'a self, workload: &'a str) -> impl Iterator<Item = &'a Instance> {
        self.instances
            .values()
            .filter(move |i| i.workload == workload)
    }
}

/// The workload an instance belongs to: the service it is a `member_of` (the lowest id if
/// several select it), else the top of its ownership chain (a pod's replica set's
/// deployment: stable across rollouts), else none.
fn workload_of(graph: &LandscapeGraph, instance: NodeIndex) -> Option<&String> {
    let groups = |ix| {
        let mut g: Vec<NodeIndex> = graph
            .live_edges(ix, Direction::Outgoing, Some(Relation::MemberOf))
            .map(|(_, group)| group)
            .collect();
        g.sort_by(|a, b| graph.node(*a).id.cmp(&graph.node(*b).id));
        g
    };
    let direct = groups(instance);
    if let Some(&service) = direct
        .iter()
        .find(|&&g| graph.node(g).node_type == "service")
    {
        return Some(&graph.node(service).id);
    }
    let mut at = *direct.first()?;
    // Owners up the chain (bounded: ownership does not loop, but data might).
    for _ in 0..8 {
        match groups(at).first() {
            Some(&up) => at = up,
            None => break,
        }
    }
    Some(&graph.node(at).id)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn host(name: &str, cores: f64) -> Host {
        Host {
            name: name.into(),
            cores,
            memory_bytes: 64 << 30,
            features: PlatformFeatures::default(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn loads_follow_instances_in_and_out() {
        let mut l = Landscape::new(vec![host("a", 8.0), host("b", 8.0)]).expect("hosts");
        let inst = Instance {
            pressure: Pressure {
                l3: 1.0,
                ..Pressure::default()
            },
            latency_critical: true,
            ..Instance::new("i1", "w", "a", 2.0, 1 << 30)
        };
        l.upsert(inst.clone()).expect("place");
        assert_eq!(l.loads()[0].cores, 2.0);
        assert_eq!(l.loads()[0].latency_critical, 1);
        // Moving it to b moves its load.
        l.upsert(Instance {
            host: "b".into(),
            ..inst
        })
        .expect("move");
        assert_eq!(l.loads()[0], HostLoad::default());
        assert_eq!(l.loads()[1].pressure.l3, 1.0);
        l.remove("i1").expect("remove");
        assert_eq!(l.loads()[1], HostLoad::default());
    }

    #[test]
    fn bad_changes_are_errors() {
        assert_eq!(
            Landscape::new(vec![host("a", 8.0), host("a", 4.0)]).err(),
            Some(LandscapeError::DuplicateHost("a".into()))
        );
        assert!(Landscape::new(vec![host("z", 0.0)]).is_err());
        let mut l = Landscape::new(vec![host("a", 8.0)]).expect("hosts");
        let err = l
            .upsert(Instance::new("x", "w", "nowhere", 1.0, 1))
            .expect_err("unknown host");
        assert_eq!(err, LandscapeError::UnknownHost("nowhere".into()));
        assert!(l.remove("x").is_err());
        assert!(l.upsert(Instance::new("x", "w", "a", f64::NAN, 1)).is_err());
    }

    #[test]
    fn measured_use_beyond_requests_stays_with_the_host() {
        let mut l = Landscape::new(vec![host("a", 8.0)]).expect("hosts");
        l.upsert(Instance::new("i", "w", "a", 2.0, 1)).expect("i");
        l.set_measured_cores("a", 5.0).expect("measured");
        assert_eq!(l.loads()[0].busy_cores(), 5.0);
        // A new instance adds its request to what was measured beyond the requests.
        l.upsert(Instance::new("j", "w", "a", 1.0, 1)).expect("j");
        assert_eq!(l.loads()[0].busy_cores(), 6.0);
        assert!(l.set_measured_cores("zz", 1.0).is_err());
        assert!(l.set_measured_cores("a", f64::NAN).is_err());
    }

    #[test]
    fn landscape_events_add_move_and_drop() {
        let mut l = Landscape::default();
        let up = |name: &str| LandscapeEvent::HostUp {
            timestamp_ms: 0,
            host: name.into(),
            cores: 4.0,
            memory_bytes: 1 << 30,
            features: PlatformFeatures::default(),
            labels: BTreeMap::new(),
        };
        l.apply(&up("a")).expect("a");
        l.apply(&up("b")).expect("b");
        l.apply(&LandscapeEvent::InstancePlaced {
            timestamp_ms: 0,
            instance: "p".into(),
            workload: "w".into(),
            host: "a".into(),
            cpu_request: 1.5,
            memory_request_bytes: 10,
            labels: BTreeMap::from([("dcpilot.io/pressure-l3".into(), "2".into())]),
        })
        .expect("placed");
        assert_eq!(l.loads()[0].pressure.l3, 2.0);
        let bad = LandscapeEvent::InstancePlaced {
            timestamp_ms: 0,
            instance: "q".into(),
            workload: "w".into(),
            host: "a".into(),
            cpu_request: 1.0,
            memory_request_bytes: 1,
            labels: BTreeMap::from([("dcpilot.io/latency-critical".into(), "yes".into())]),
        };
        let err = l.apply(&bad).expect_err("bad label").to_string();
        assert!(err.contains("dcpilot.io/latency-critical"), "{err}");
        assert_eq!(l.loads()[0].cores, 1.5);
        l.apply(&LandscapeEvent::HostDown {
            timestamp_ms: 0,
            host: "a".into(),
        })
        .expect("down");
        assert_eq!(l.hosts().len(), 1);
        assert_eq!(l.host_index("b"), Some(0));
        assert!(l.instances().is_empty());
        assert_eq!(l.loads()[0], HostLoad::default());
        let err = l
            .apply(&LandscapeEvent::InstanceRemoved {
                timestamp_ms: 0,
                instance: "p".into(),
                host: "a".into(),
            })
            .expect_err("gone with its host");
        assert_eq!(err, LandscapeError::UnknownInstance("p".into()));
    }

    /// The same events give the same placement view whether applied to a view directly or
    /// to the graph the view is built from; and what the graph alone knows (a Kubernetes
    /// listing's nodes and pods) is in the view too.
    #[test]
    fn the_placement_view_is_a_view_of_the_graph() {
        let up = |name: &str, cores: f64| LandscapeEvent::HostUp {
            timestamp_ms: 1,
            host: name.into(),
            cores,
            memory_bytes: 1 << 30,
            features: PlatformFeatures {
                rdt: true,
                ..PlatformFeatures::default()
            },
            labels: BTreeMap::from([("zone".into(), "z1".into())]),
        };
        let placed = |id: &str, host: &str, t: i64, labels: &[(&str, &str)]| {
            LandscapeEvent::InstancePlaced {
                timestamp_ms: t,
                instance: id.into(),
                workload: "web".into(),
                host: host.into(),
                cpu_request: 1.5,
                memory_request_bytes: 10,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }
        };
        let events = [
            up("a", 4.0),
            up("b", 8.0),
            placed(
                "p",
                "a",
                2,
                &[
                    ("dcpilot.io/pressure-membw", "3"),
                    ("dcpilot.io/latency-critical", "true"),
                ],
            ),
            placed("q", "a", 2, &[]),
            placed("q", "b", 3, &[("dcpilot.io/evictable", "true")]),
            LandscapeEvent::InstanceRemoved {
                timestamp_ms: 4,
                instance: "p".into(),
                host: "a".into(),
            },
            placed("r", "a", 5, &[("dcpilot.io/rps", "250.5")]),
            // A move that does not restate the profile keeps it.
            placed("r", "b", 6, &[]),
        ];
        let mut direct = Landscape::default();
        let mut graph = LandscapeGraph::new();
        for e in &events {
            direct.apply(e).expect("view");
            graph.apply_event(e).expect("graph");
        }
        let (view, left_out) = Landscape::from_graph(&graph, &Measured::default());
        assert!(left_out.is_empty(), "{left_out:?}");
        assert_eq!(view.hosts(), direct.hosts());
        assert_eq!(view.loads(), direct.loads());
        assert_eq!(view.instances(), direct.instances());

        // A profile survives the graph: labels written from an instance read back to it.
        let mut profiled = Instance::new("s", "web", "b", 2.0, 1);
        profiled.pressure.l3 = 0.25;
        profiled.quiet_p99_ms = Some(0.3);
        profiled.latency_critical = true;
        let labels = profiled.profile_labels();
        let mut back = Instance::new("s", "web", "b", 2.0, 1);
        back.apply_labels(|k| labels.get(k).map(String::as_str))
            .expect("labels");
        assert_eq!(back, profiled);

        // A Kubernetes listing: its nodes are hosts (allocatable capacity), its pods
        // instances of their service, sized by their requests.
        let listing = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/kubernetes/cluster.json"
        ))
        .expect("fixture");
        let mut k8s = LandscapeGraph::new();
        let events =
            dcpilot_landscape::formats::kubernetes::events(&listing, &k8s, 1).expect("listing");
        k8s.apply_all(&events).expect("applies");
        let (view, _) = Landscape::from_graph(&k8s, &Measured::default());
        assert_eq!(view.hosts().len(), 3, "{:?}", view.hosts());
        let frontend: Vec<&Instance> = view.replicas_of("shop/service/frontend").collect();
        assert_eq!(frontend.len(), 3, "{:?}", view.instances());
        assert!(frontend.iter().all(|i| i.cores > 0.0), "{frontend:?}");
        let busy: f64 = view.loads().iter().map(|l| l.cores).sum();
        assert!(busy > 0.0);

        // Measured use beyond requests is carried by the caller, per host.
        let (view, _) = Landscape::from_graph(
            &graph,
            &Measured {
                unrequested: BTreeMap::from([("a".to_string(), 0.5)]),
                ..Measured::default()
            },
        );
        assert_eq!(view.loads()[0].unrequested_cores, 0.5);
    }
}
