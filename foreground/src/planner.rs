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

use dcpilot_info_core::colouring::HostColour;
use dcpilot_info_core::live::Answerer;
use dcpilot_info_core::{PreparedColouring, ServedModel, Snapshot};
use dcpilot_schemas::names::models;
use serde::{Deserialize, Serialize};

use crate::intents::Intents;
use crate::landscape::{HostLoad, Landscape, Pressure};
use crate::objective::{slowdown_key, JudgedBy, SlowdownKey, SlowdownModel, Slowdowns};

/// Name of the slowdown model in the Information Core (reads hosts' counters).
pub const SLOWDOWN_MODEL: &str = models::SLOWDOWN;
/// Name of the slowdown model for hosts that report no counters (reads declared pods).
pub const SLOWDOWN_PODS_MODEL: &str = models::SLOWDOWN_PODS;
/// Name of the rule-of-thumb sizing table.
pub const RIGHTSIZING_MODEL: &str = models::RIGHTSIZING;
/// Name of the landscape colouring the built-in colouring job publishes.
pub const COLOURING_MODEL: &str = models::COLOURING;

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
    /// For waking an empty host (and per host in use, when rebalancing).
    pub consolidation: f64,
    /// Per migration in a rebalancing plan (moving costs something).
    pub migration: f64,
    /// Per instance killed in a rebalancing plan.
    pub kill: f64,
    /// Per replica added in a rebalancing plan.
    pub scale: f64,
    /// Per unit of anomaly score of a host coloured anomalous (by itself, or by the NIC or
    /// switch it hangs off), per instance on it: work keeps away from a sick host.
    pub anomalous_host: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            slo_risk: 10.0,
            headroom: 1.0,
            interference: 0.5,
            consolidation: 0.3,
            migration: 0.05,
            kill: 2.0,
            scale: 0.5,
            anomalous_host: 1.0,
        }
    }
}

/// A workload to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Hosts to place into instead of the served landscape (with `instances` on them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::landscape::Host>,
    /// Instances on the inline `hosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<crate::landscape::Instance>,
}

impl PlacementRequest {
    /// A request for `cores` and `memory_bytes` of `workload`, everything else unset.
    pub fn new(workload: &str, cores: f64, memory_bytes: u64) -> Self {
        Self {
            workload: workload.into(),
            cores,
            memory_bytes,
            pressure: Pressure::default(),
            rps: None,
            replicas: None,
            quiet_p99_ms: None,
            p99_objective_ms: None,
            budget_ms: None,
            hosts: Vec::new(),
            instances: Vec::new(),
        }
    }
}

/// One ranked host.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PlacementAnswer {
    /// Best first.
    pub choices: Vec<Choice>,
    /// Candidates the models scored.
    pub candidates_scored: usize,
    /// Feasible candidates.
    pub candidates_feasible: usize,
    /// Hosts considered.
    pub candidates_total: usize,
    /// Budget, time used, models and whether the answer is degraded.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// How an answer was made: its budget and the time used, whether the budget ran out
/// first, the models (with versions) it used, and whether it is degraded and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Provenance {
    /// The budget, ms.
    pub budget_ms: f64,
    /// Time used since the request arrived (waiting and scoring), ms.
    pub used_ms: f64,
    /// Of that, time spent waiting for a worker, ms.
    pub waited_ms: f64,
    /// Of that, time spent scoring, ms.
    pub scoring_ms: f64,
    /// Whether the budget ran out before the work was done (the answer is the best found).
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
    /// The landscape colouring whose anomalous hosts are penalised (absent: none is).
    pub colouring_model: String,
    /// A colouring older than this is ignored (the answer is degraded and says so): an
    /// anomaly long gone must not keep work away.
    pub max_colouring_age_secs: u64,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            budget_ms: 10.0,
            max_model_age_secs: 7 * 86_400,
            top: 5,
            weights: Weights::default(),
            colouring_model: COLOURING_MODEL.into(),
            max_colouring_age_secs: 900,
        }
    }
}

/// How often (in candidates) the clock is read.
const CLOCK_EVERY: usize = 16;
/// Hosts whose slowdowns are predicted together: enough rows that each tree is walked by
/// many before the next, few enough that the clock is read often within a small budget.
const PREDICT_BATCH: usize = 256;

/// Slowdown rows of a batch of hosts, per model (the counter model, the pods model), and
/// their memo keys; reused across batches.
#[derive(Default)]
struct SlowdownBatch {
    rows: [Vec<f64>; 2],
    keys: [Vec<SlowdownKey>; 2],
    scratch: Vec<f64>,
    answers: Vec<Option<f64>>,
}

impl SlowdownBatch {
    /// Predicts the slowdown of each of `loads` the memo does not hold yet, a placement of
    /// `rps` and `replicas` there, into the memo.
    fn predict<'l>(
        &mut self,
        slowdown: &Slowdowns<'_>,
        loads: impl Iterator<Item = &'l HostLoad>,
        rps: f64,
        replicas: f64,
        memo: &mut HashMap<SlowdownKey, Option<f64>>,
    ) {
        for k in 0..2 {
            self.rows[k].clear();
            self.keys[k].clear();
        }
        for load in loads {
            let Some((model, _)) = slowdown.for_host(&load.counters) else {
                continue;
            };
            let key = slowdown_key(&load.pressure, rps, replicas, &load.counters);
            if memo.contains_key(&key) {
                continue;
            }
            let k = usize::from(
                !slowdown
                    .measured
                    .as_ref()
                    .is_some_and(|m| std::ptr::eq(m, model)),
            );
            // Once per key: later hosts with the same key find it in the memo (a row the
            // model cannot be given stays `None`, as one by one).
            memo.insert(key, None);
            if model.push_row(
                rps,
                replicas,
                &load.pressure,
                &load.counters,
                &mut self.rows[k],
            ) {
                self.keys[k].push(key);
            }
        }
        for (k, model) in [&slowdown.measured, &slowdown.declared]
            .into_iter()
            .enumerate()
        {
            let (Some(model), false) = (model, self.keys[k].is_empty()) else {
                continue;
            };
            model.slowdowns(
                &self.rows[k],
                self.keys[k].len(),
                &mut self.scratch,
                &mut self.answers,
            );
            for (key, answer) in self.keys[k].iter().zip(&self.answers) {
                memo.insert(*key, *answer);
            }
        }
    }
}

/// A request's clock: its budget runs from when it arrived (time waiting for a worker
/// counts), and its answer is due then plus the budget, or at the client's own deadline if
/// that is sooner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// When the request was read.
    pub arrived: Instant,
    /// When work on it started.
    pub started: Instant,
    /// When its answer is due.
    pub due: Instant,
}

impl Clock {
    /// A request arriving now with `budget_ms`, started at once.
    pub fn now(budget_ms: f64) -> Self {
        Self::arrived(Instant::now(), budget_ms, None)
    }

    /// A request read at `arrived` with `budget_ms`, due no later than `client_deadline`.
    pub fn arrived(arrived: Instant, budget_ms: f64, client_deadline: Option<Instant>) -> Self {
        let budget = arrived + Duration::from_secs_f64(budget_ms.max(0.0) / 1000.0);
        let due = client_deadline.map_or(budget, |d| d.min(budget));
        Self {
            arrived,
            started: arrived,
            due,
        }
    }

    /// The same clock, work starting now.
    pub fn starting_now(self) -> Self {
        Self {
            started: Instant::now(),
            ..self
        }
    }

    /// From arrival to due, ms.
    pub fn budget_ms(&self) -> f64 {
        self.due
            .saturating_duration_since(self.arrived)
            .as_secs_f64()
            * 1000.0
    }
}

/// The request's budget, or the configured default; refused if it is not a number ≥ 0.
pub fn budget_of(requested: Option<f64>, config: &PlannerConfig) -> Result<f64, PlanError> {
    let budget_ms = requested.unwrap_or(config.budget_ms);
    if budget_ms.is_finite() && (0.0..=60_000.0).contains(&budget_ms) {
        Ok(budget_ms)
    } else {
        Err(PlanError::BadRequest(format!(
            "budget_ms must be a number from 0 to 60000, got {budget_ms}"
        )))
    }
}

/// The models an answer used, with their versions, and why it is degraded.
pub struct ModelUse<'a> {
    snapshot: &'a Snapshot,
    max_age_secs: u64,
    colouring_model: &'a str,
    max_colouring_age_secs: u64,
    now_ms: i64,
    /// Name → version of the models used.
    pub versions: BTreeMap<String, u64>,
    /// Why the answer is degraded (empty: it is not).
    pub reasons: Vec<String>,
}

impl<'a> ModelUse<'a> {
    /// Bookkeeping over `snapshot`.
    pub fn new(snapshot: &'a Snapshot, config: &'a PlannerConfig, now_ms: i64) -> Self {
        Self {
            snapshot,
            max_age_secs: config.max_model_age_secs,
            colouring_model: &config.colouring_model,
            max_colouring_age_secs: config.max_colouring_age_secs,
            now_ms,
            versions: BTreeMap::new(),
            reasons: Vec::new(),
        }
    }

    /// Looks a model up, noting its version, or why it is missing or stale.
    pub fn get(&mut self, name: &str) -> Option<&'a ServedModel> {
        match self.snapshot.get(name) {
            None => {
                self.reasons
                    .push(format!("model {name} is missing; rules of thumb used"));
                None
            }
            Some(m) => {
                self.versions.insert(name.to_string(), m.version());
                let age_secs = m.age_secs(self.now_ms);
                if age_secs > self.max_age_secs {
                    self.reasons.push(format!(
                        "model {name} v{} is stale ({age_secs} s old)",
                        m.version()
                    ));
                }
                Some(m)
            }
        }
    }

    /// The answer's provenance, from what was looked up, for work that started when it
    /// was asked for (nothing waited).
    pub fn finish(self, budget_ms: f64, used_ms: f64, budget_exhausted: bool) -> Provenance {
        Provenance {
            budget_ms,
            used_ms,
            waited_ms: 0.0,
            scoring_ms: used_ms,
            budget_exhausted,
            degraded: !self.reasons.is_empty(),
            degraded_reasons: self.reasons,
            models: self.versions,
        }
    }

    /// The answer's provenance for a request on `clock`: its budget from arrival to due,
    /// the time it waited and the time it was scored.
    pub fn finish_on(self, clock: &Clock, budget_exhausted: bool) -> Provenance {
        let now = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut provenance = self.finish(
            clock.budget_ms(),
            ms(now.duration_since(clock.arrived)),
            budget_exhausted,
        );
        provenance.waited_ms = ms(clock.started.duration_since(clock.arrived));
        provenance.scoring_ms = ms(now.duration_since(clock.started));
        provenance
    }

    /// The landscape colouring, when one is served and fresh. None served is no
    /// degradation (the colouring job may be off); a stale or unusable one is.
    pub fn colouring(&mut self) -> Option<&'a PreparedColouring> {
        let name = self.colouring_model;
        let served = self.snapshot.get(name)?;
        let Some(colouring) = served.prepared.colouring() else {
            self.reasons.push(format!(
                "model {name} is not a colouring; hosts not judged by anomaly"
            ));
            return None;
        };
        let age_secs = served.age_secs(self.now_ms);
        if age_secs > self.max_colouring_age_secs {
            self.reasons.push(format!(
                "colouring {name} v{} is stale ({age_secs} s old); hosts not judged by anomaly",
                served.version()
            ));
            return None;
        }
        self.versions.insert(name.to_string(), served.version());
        Some(colouring)
    }

    /// What answers for a model: [`get`](Self::get), and while a live verdict demotes the
    /// served version, its best computable baseline (the answer is degraded and says so,
    /// with both errors).
    pub fn answerer(&mut self, name: &str) -> Option<Answerer<'a>> {
        self.get(name)?;
        let answerer = self.snapshot.answerer(name, self.now_ms)?;
        if let Some(demotion) = answerer.demotion {
            self.reasons.push(demotion.reason());
        }
        Some(answerer)
    }

    /// The slowdown models: [`SLOWDOWN_MODEL`] (hosts' counters) and, for hosts without
    /// counters, [`SLOWDOWN_PODS_MODEL`] (declared co-runner pods), each resolved or with
    /// the reason it cannot be used. The second missing is no degradation (hosts may all
    /// report counters); the first missing is.
    pub fn slowdowns(&mut self) -> Slowdowns<'a> {
        let declared = if self.snapshot.get(SLOWDOWN_PODS_MODEL).is_some() {
            self.slowdown_model(SLOWDOWN_PODS_MODEL)
        } else {
            None
        };
        let measured = if self.snapshot.get(SLOWDOWN_MODEL).is_some() {
            self.slowdown_model(SLOWDOWN_MODEL)
        } else if declared.is_some() {
            self.reasons.push(format!(
                "model {SLOWDOWN_MODEL} is missing; hosts judged by their declared co-runner pods ({SLOWDOWN_PODS_MODEL})"
            ));
            None
        } else {
            self.get(SLOWDOWN_MODEL)
                .and_then(|_| self.slowdown_model(SLOWDOWN_MODEL))
        };
        Slowdowns { measured, declared }
    }

    fn slowdown_model(&mut self, name: &str) -> Option<SlowdownModel<'a>> {
        let answerer = self.answerer(name)?;
        match SlowdownModel::resolve(answerer) {
            Ok(model) => Some(model),
            Err(why) => {
                self.reasons.push(format!("model {name} unusable: {why}"));
                None
            }
        }
    }
}

/// The largest anomaly score a penalty counts (e^10 times a metric's usual deviation).
pub const MAX_ANOMALY_SCORE: f64 = 10.0;

/// The penalty per instance on `host` when the colouring marks it anomalous (its score,
/// at most [`MAX_ANOMALY_SCORE`], × `anomalous_host`), with the colour it rests on.
pub fn anomaly_penalty<'c>(
    colouring: Option<&'c PreparedColouring>,
    host: &str,
    weights: &Weights,
) -> Option<(f64, &'c HostColour)> {
    let colour = colouring?.host(host).filter(|c| c.anomalous)?;
    // Capped: a detector without calibration can score in the millions, and one host's
    // anomaly must not drown every other term (nor overflow a sum of them).
    let score = colour.score.clamp(0.0, MAX_ANOMALY_SCORE);
    Some((weights.anomalous_host * score, colour))
}

/// An anomaly penalty in words, for explanations.
pub fn explain_anomaly(penalty: f64, colour: &HostColour) -> String {
    let via = if colour.via == colour.host {
        String::new()
    } else {
        format!(" via {}", colour.via)
    };
    format!(
        "coloured anomalous (score {:.2}{via}): +{penalty:.2}",
        colour.score
    )
}

fn free(load: &HostLoad, cores: f64, memory: u64) -> (f64, u64) {
    (
        (cores - load.busy_cores()).max(0.0),
        memory.saturating_sub(load.memory_bytes),
    )
}

/// A predicted p99 (ms) and which slowdown model judged the host.
type Predicted = (f64, JudgedBy);

/// Places `request` on the best host of `landscape` found within the budget.
pub fn place(
    request: &PlacementRequest,
    landscape: &Landscape,
    snapshot: &Snapshot,
    intents: &Intents,
    config: &PlannerConfig,
    now_ms: i64,
) -> Result<PlacementAnswer, PlanError> {
    let clock = Clock::now(budget_of(request.budget_ms, config)?);
    place_on(request, landscape, snapshot, intents, config, now_ms, clock)
}

/// [`place`] on a request's `clock` (its budget already chosen, counted from arrival).
pub fn place_on(
    request: &PlacementRequest,
    landscape: &Landscape,
    snapshot: &Snapshot,
    intents: &Intents,
    config: &PlannerConfig,
    now_ms: i64,
    clock: Clock,
) -> Result<PlacementAnswer, PlanError> {
    if !(request.cores.is_finite() && request.cores > 0.0) {
        return Err(PlanError::BadRequest(format!(
            "cores must be positive, got {}",
            request.cores
        )));
    }
    let deadline = clock.due;
    let mut models = ModelUse::new(snapshot, config, now_ms);
    let colouring = models.colouring();

    // Cores needed: the workload's p90 from the rightsizing table, else its request.
    let sized = models
        .get(RIGHTSIZING_MODEL)
        .and_then(|m| m.prepared.table())
        .and_then(|t| t.lookup(&request.workload, "cores", 0.9));
    let cores = sized.unwrap_or(request.cores);

    // The workload's intents fill in what the request leaves out.
    let intent = intents
        .objectives(&request.workload)
        .copied()
        .unwrap_or_default();
    let objective = request.p99_objective_ms.or(intent.p99_latency_ms);
    let quiet_p99 = request.quiet_p99_ms.or(intent.quiet_p99_ms);
    let rps = request.rps.or(intent.rps);
    let replicas = request.replicas.unwrap_or(1.0);

    // The slowdown model, only for a workload with a latency objective.
    let slowdown = if objective.is_some() {
        let slowdowns = models.slowdowns();
        if slowdowns.needs_rps() && rps.is_none() {
            models.reasons.push(format!(
                "model {SLOWDOWN_MODEL} unusable: neither the request nor an intent gives rps"
            ));
            Slowdowns::default()
        } else {
            slowdowns
        }
    } else {
        Slowdowns::default()
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

    // Refine in that order until the budget is spent, a batch of hosts at a time: first
    // the slowdowns the batch needs and the memo lacks, predicted together (the model
    // walks every row through a tree before the next), then each host's score.
    let w = &config.weights;
    let mut scored: Vec<(usize, f64, Option<Predicted>)> = Vec::with_capacity(order.len());
    let mut memo = HashMap::new();
    let mut batch = SlowdownBatch::default();
    let mut exhausted = false;
    let rps = rps.unwrap_or(0.0);
    'batches: for chunk in order.chunks(PREDICT_BATCH) {
        if Instant::now() >= deadline {
            exhausted = true;
            break;
        }
        if quiet_p99.is_some() && !slowdown.is_empty() {
            batch.predict(
                &slowdown,
                chunk.iter().map(|&(i, _)| &loads[i]),
                rps,
                replicas,
                &mut memo,
            );
        }
        for (n, &(i, idle_share)) in chunk.iter().enumerate() {
            if n % CLOCK_EVERY == 0 && n > 0 && Instant::now() >= deadline {
                exhausted = true;
                break 'batches;
            }
            let load = &loads[i];
            let mut score = w.headroom * (1.0 - idle_share)
                + w.interference * request.pressure.total() * f64::from(load.latency_critical)
                + if load.instances == 0 {
                    w.consolidation
                } else {
                    0.0
                };
            if let Some((penalty, _)) = anomaly_penalty(colouring, &hosts[i].name, w) {
                score += penalty;
            }
            let mut predicted = None;
            if let (Some((_, by)), Some(quiet)) = (slowdown.for_host(&load.counters), quiet_p99) {
                let key = slowdown_key(&load.pressure, rps, replicas, &load.counters);
                if let (Some(Some(factor)), Some(objective)) = (memo.get(&key), objective) {
                    let p99 = quiet * factor;
                    predicted = Some((p99, by));
                    score += w.slo_risk * (p99 / objective - 1.0).max(0.0);
                }
            }
            scored.push((i, score, predicted));
        }
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
            predicted_p99_ms: predicted.map(|(p99, _)| p99),
            explanation: explain(
                &loads[i],
                hosts[i].cores,
                cores,
                sized.is_some(),
                predicted,
                objective,
                anomaly_penalty(colouring, &hosts[i].name, w),
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
        provenance: models.finish_on(&clock, exhausted),
    })
}

fn explain(
    load: &HostLoad,
    host_cores: f64,
    cores: f64,
    sized_by_table: bool,
    predicted: Option<Predicted>,
    objective: Option<f64>,
    anomaly: Option<(f64, &HostColour)>,
) -> String {
    let mut parts = vec![format!(
        "{:.1} of {:.0} cores free after placing {cores:.2} ({})",
        host_cores - load.busy_cores() - cores,
        host_cores,
        if sized_by_table {
            "p90 from rightsizing"
        } else {
            "as requested"
        }
    )];
    if let (Some((p99, by)), Some(objective)) = (predicted, objective) {
        let c = &load.counters;
        let next_to = match by {
            JudgedBy::Counters => {
                // In PCM_SYSTEM_METRICS order; only the counters the host reports.
                const SHOWN: [(&str, &str); 6] = [
                    ("IPC", ""),
                    ("L3 misses", " M/s"),
                    ("L2 misses", " M/s"),
                    ("memory read", " GB/s"),
                    ("memory write", " GB/s"),
                    ("C0 residency", " %"),
                ];
                let shown: Vec<String> = SHOWN
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (name, unit))| {
                        c.get(i).map(|v| format!("{name} {v:.3}{unit}"))
                    })
                    .collect();
                format!("the host's measured counters ({})", shown.join(", "))
            }
            JudgedBy::DeclaredPods => format!(
                "declared co-runner pressure cpu {:.0} / l3 {:.0} / membw {:.0}",
                load.pressure.cpu, load.pressure.l3, load.pressure.membw
            ),
        };
        parts.push(format!(
            "predicted p99 {p99:.2} ms vs objective {objective} ms next to {next_to}"
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
    if let Some((penalty, colour)) = anomaly {
        parts.push(explain_anomaly(penalty, colour));
    }
    parts.join("; ")
}
