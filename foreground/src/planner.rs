//! Placement within a deadline: the scorer turns model predictions into one objective per
//! candidate host, and the planner is *anytime* — a cheap least-loaded ranking exists at
//! once, model scoring refines it in that priority order until the budget is spent.
//!
//! Objective (lower is better), weights in [`Weights`]:
//! - **SLO risk**: predicted p99 / the workload's p99 objective, above 1 (the
//!   `interference-slowdown` model predicts the slowdown from the host's co-runner
//!   pressure, the workload's load and replicas);
//! - **headroom**: the share of the host's cores in use after placing it (a busy host has
//!   less room for bursts);
//! - **interference inflicted**: the workload's pressure × latency-critical instances on
//!   the host;
//! - **consolidation**: waking an empty host costs energy.
//!
//! Cores needed come from the `rightsizing` table (p90 of the workload's use) when it has
//! the workload, else the request. Missing, stale or unusable models degrade to these
//! rules of thumb, and the answer says so.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use dcpilot_info_core::{ServedModel, Snapshot};
use serde::{Deserialize, Serialize};

use crate::landscape::{HostLoad, Landscape, Pressure};

/// Name of the slowdown model in the Information Core.
pub const SLOWDOWN_MODEL: &str = "interference-slowdown";
/// Name of the rule-of-thumb sizing table.
pub const RIGHTSIZING_MODEL: &str = "rightsizing";

/// How much each part of the objective counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Per unit of predicted p99 above the objective (0.5 = 50% over).
    pub slo_risk: f64,
    /// Per share of the host's cores in use after placing.
    pub headroom: f64,
    /// Per unit of pressure × latency-critical neighbour.
    pub interference: f64,
    /// For waking an empty host.
    pub consolidation: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            slo_risk: 10.0,
            headroom: 1.0,
            interference: 0.5,
            consolidation: 0.3,
        }
    }
}

/// A workload to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// Workload name (the key of the rightsizing table).
    pub workload: String,
    /// Cores requested (used when no rightsizing entry exists).
    pub cores: f64,
    /// Memory requested.
    pub memory_bytes: u64,
    /// Pressure it puts on neighbours.
    #[serde(default)]
    pub pressure: Pressure,
    /// Requests per second it serves (a feature of the slowdown model).
    #[serde(default)]
    pub rps: Option<f64>,
    /// Replicas it runs (a feature of the slowdown model).
    #[serde(default)]
    pub replicas: Option<f64>,
    /// Its p99 latency without co-runners, ms.
    #[serde(default)]
    pub quiet_p99_ms: Option<f64>,
    /// Its p99 objective, ms (an intent).
    #[serde(default)]
    pub p99_objective_ms: Option<f64>,
    /// Budget for this request; default from the planner's config.
    #[serde(default)]
    pub budget_ms: Option<f64>,
}

/// One ranked host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Host name.
    pub host: String,
    /// Objective (lower is better).
    pub score: f64,
    /// Whether the models scored it (else: the least-loaded heuristic only).
    pub model_scored: bool,
    /// Predicted p99 there, ms, when the slowdown model and the quiet p99 are known.
    pub predicted_p99_ms: Option<f64>,
    /// Why, in one line.
    pub explanation: String,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementAnswer {
    /// Best first.
    pub choices: Vec<Choice>,
    /// Candidates the models scored.
    pub candidates_scored: usize,
    /// Feasible candidates.
    pub candidates_feasible: usize,
    /// Hosts considered.
    pub candidates_total: usize,
    /// The budget, ms.
    pub budget_ms: f64,
    /// Time used, ms.
    pub used_ms: f64,
    /// Whether the budget ran out before every feasible candidate was scored.
    pub budget_exhausted: bool,
    /// Models used, with their versions.
    pub models: BTreeMap<String, u64>,
    /// Whether a model was missing, stale or unusable (rules of thumb were used instead).
    pub degraded: bool,
    /// Why it is degraded.
    pub degraded_reasons: Vec<String>,
}

/// Why no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The request itself is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No host has room.
    #[error("no host has {cores:.2} free cores and {memory_bytes} free bytes for {workload}")]
    NoFeasibleHost {
        /// Workload.
        workload: String,
        /// Cores needed.
        cores: f64,
        /// Memory needed.
        memory_bytes: u64,
    },
}

/// Planner settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// Default budget per request, ms.
    pub budget_ms: f64,
    /// A model older than this is stale (the answer is degraded, the model still used).
    pub max_model_age_secs: u64,
    /// Choices returned.
    pub top: usize,
    /// Objective weights.
    pub weights: Weights,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            budget_ms: 10.0,
            max_model_age_secs: 7 * 86_400,
            top: 5,
            weights: Weights::default(),
        }
    }
}

/// How often (in candidates) the clock is read.
const CLOCK_EVERY: usize = 16;

/// The slowdown model, if usable for this request: its feature values are resolved by
/// name once, per host only the pressure features change.
struct SlowdownModel<'a> {
    served: &'a ServedModel,
    /// For each feature: a fixed value, or which pressure kind it reads.
    slots: Vec<Slot>,
}

#[derive(Clone, Copy)]
enum Slot {
    Fixed(f64),
    Cpu,
    L3,
    Membw,
}

impl<'a> SlowdownModel<'a> {
    fn resolve(served: &'a ServedModel, request: &PlacementRequest) -> Result<Self, String> {
        let slots = served
            .record
            .features
            .iter()
            .map(|f| match f.as_str() {
                "cpu_pods" => Ok(Slot::Cpu),
                "l3_pods" => Ok(Slot::L3),
                "membw_pods" => Ok(Slot::Membw),
                "rps" => request
                    .rps
                    .map(Slot::Fixed)
                    .ok_or_else(|| "the request has no rps".to_string()),
                "replicas" => Ok(Slot::Fixed(request.replicas.unwrap_or(1.0))),
                other => Err(format!(
                    "it reads feature {other:?}, unknown to the foreground"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { served, slots })
    }

    fn slowdown(&self, pressure: &Pressure, row: &mut Vec<f64>) -> Option<f64> {
        row.clear();
        row.extend(self.slots.iter().map(|s| match s {
            Slot::Fixed(v) => *v,
            Slot::Cpu => pressure.cpu,
            Slot::L3 => pressure.l3,
            Slot::Membw => pressure.membw,
        }));
        self.served
            .prepared
            .predict(row)
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| v.max(1.0))
    }
}

fn free(load: &HostLoad, cores: f64, memory: u64) -> (f64, u64) {
    (
        (cores - load.cores).max(0.0),
        memory.saturating_sub(load.memory_bytes),
    )
}

/// Places `request` on the best host of `landscape` found within the budget.
pub fn place(
    request: &PlacementRequest,
    landscape: &Landscape,
    snapshot: &Snapshot,
    config: &PlannerConfig,
    now_ms: i64,
) -> Result<PlacementAnswer, PlanError> {
    let started = Instant::now();
    let budget_ms = request.budget_ms.unwrap_or(config.budget_ms);
    if !(budget_ms.is_finite() && budget_ms >= 0.0) {
        return Err(PlanError::BadRequest(format!(
            "budget_ms must be a non-negative number, got {budget_ms}"
        )));
    }
    if !(request.cores.is_finite() && request.cores > 0.0) {
        return Err(PlanError::BadRequest(format!(
            "cores must be positive, got {}",
            request.cores
        )));
    }
    let deadline = started + Duration::from_secs_f64(budget_ms / 1000.0);
    let mut models = BTreeMap::new();
    let mut reasons = Vec::new();
    let mut note_model =
        |name: &str, served: Option<&ServedModel>, reasons: &mut Vec<String>| match served {
            None => reasons.push(format!("model {name} is missing; rules of thumb used")),
            Some(m) => {
                models.insert(name.to_string(), m.version());
                let age_secs = (now_ms - m.record.created_at_ms).max(0) as u64 / 1000;
                if age_secs > config.max_model_age_secs {
                    reasons.push(format!(
                        "model {name} v{} is stale ({age_secs} s old)",
                        m.version()
                    ));
                }
            }
        };

    // Cores needed: the workload's p90 from the rightsizing table, else its request.
    let sizing = snapshot.get(RIGHTSIZING_MODEL);
    note_model(RIGHTSIZING_MODEL, sizing, &mut reasons);
    let sized = sizing
        .and_then(|m| m.prepared.table())
        .and_then(|t| t.lookup(&request.workload, "cores", 0.9));
    let cores = sized.unwrap_or(request.cores);

    // The slowdown model, only for a workload with a latency objective.
    let wants_latency = request.p99_objective_ms.is_some();
    let slowdown = if wants_latency {
        let served = snapshot.get(SLOWDOWN_MODEL);
        note_model(SLOWDOWN_MODEL, served, &mut reasons);
        served.and_then(|m| match SlowdownModel::resolve(m, request) {
            Ok(model) => Some(model),
            Err(why) => {
                reasons.push(format!("model {SLOWDOWN_MODEL} unusable: {why}"));
                None
            }
        })
    } else {
        None
    };

    // The cheap ranking, at once: feasible hosts by free share of cores, most free first.
    let hosts = landscape.hosts();
    let loads = landscape.loads();
    let mut order: Vec<(usize, f64)> = hosts
        .iter()
        .zip(loads)
        .enumerate()
        .filter_map(|(i, (h, load))| {
            let (free_cores, free_memory) = free(load, h.cores, h.memory_bytes);
            (free_cores >= cores && free_memory >= request.memory_bytes)
                .then(|| (i, (free_cores - cores) / h.cores))
        })
        .collect();
    if order.is_empty() {
        return Err(PlanError::NoFeasibleHost {
            workload: request.workload.clone(),
            cores,
            memory_bytes: request.memory_bytes,
        });
    }
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

    // Refine in that order until the budget is spent.
    let w = &config.weights;
    let mut scored: Vec<(usize, f64, Option<f64>)> = Vec::with_capacity(order.len());
    let mut memo: HashMap<[u64; 3], Option<f64>> = HashMap::new();
    let mut row = Vec::with_capacity(8);
    let mut exhausted = false;
    for (n, &(i, idle_share)) in order.iter().enumerate() {
        if n % CLOCK_EVERY == 0 && Instant::now() >= deadline {
            exhausted = true;
            break;
        }
        let load = &loads[i];
        let mut score = w.headroom * (1.0 - idle_share)
            + w.interference * request.pressure.total() * f64::from(load.latency_critical)
            + if load.instances == 0 {
                w.consolidation
            } else {
                0.0
            };
        let mut predicted = None;
        if let (Some(model), Some(quiet)) = (&slowdown, request.quiet_p99_ms) {
            let p = &load.pressure;
            let key = [p.cpu.to_bits(), p.l3.to_bits(), p.membw.to_bits()];
            let factor = *memo
                .entry(key)
                .or_insert_with(|| model.slowdown(p, &mut row));
            if let (Some(factor), Some(objective)) = (factor, request.p99_objective_ms) {
                let p99 = quiet * factor;
                predicted = Some(p99);
                score += w.slo_risk * (p99 / objective - 1.0).max(0.0);
            }
        }
        scored.push((i, score, predicted));
    }
    let scored_count = scored.len();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut choices: Vec<Choice> = scored
        .iter()
        .take(config.top)
        .map(|&(i, score, predicted)| Choice {
            host: hosts[i].name.clone(),
            score,
            model_scored: true,
            predicted_p99_ms: predicted,
            explanation: explain(
                &loads[i],
                hosts[i].cores,
                cores,
                sized.is_some(),
                predicted,
                request.p99_objective_ms,
            ),
        })
        .collect();
    if choices.is_empty() {
        // Not one candidate scored in time: the least-loaded ranking is the answer.
        choices = order
            .iter()
            .take(config.top)
            .map(|&(i, idle_share)| Choice {
                host: hosts[i].name.clone(),
                score: w.headroom * (1.0 - idle_share),
                model_scored: false,
                predicted_p99_ms: None,
                explanation: format!(
                    "least loaded ({:.0}% of cores free after placing); budget ran out before model scoring",
                    idle_share * 100.0
                ),
            })
            .collect();
    }
    Ok(PlacementAnswer {
        choices,
        candidates_scored: scored_count,
        candidates_feasible: order.len(),
        candidates_total: hosts.len(),
        budget_ms,
        used_ms: started.elapsed().as_secs_f64() * 1000.0,
        budget_exhausted: exhausted,
        degraded: !reasons.is_empty(),
        degraded_reasons: reasons,
        models,
    })
}

fn explain(
    load: &HostLoad,
    host_cores: f64,
    cores: f64,
    sized_by_table: bool,
    predicted: Option<f64>,
    objective: Option<f64>,
) -> String {
    let mut parts = vec![format!(
        "{:.1} of {:.0} cores free after placing {cores:.2} ({})",
        host_cores - load.cores - cores,
        host_cores,
        if sized_by_table {
            "p90 from rightsizing"
        } else {
            "as requested"
        }
    )];
    if let (Some(p99), Some(objective)) = (predicted, objective) {
        parts.push(format!(
            "predicted p99 {p99:.2} ms vs objective {objective} ms next to co-runner pressure cpu {:.0} / l3 {:.0} / membw {:.0}",
            load.pressure.cpu, load.pressure.l3, load.pressure.membw
        ));
    }
    if load.latency_critical > 0 {
        parts.push(format!(
            "{} latency-critical neighbour(s)",
            load.latency_critical
        ));
    }
    if load.instances == 0 {
        parts.push("wakes an empty host".into());
    }
    parts.join("; ")
}
