//! Recipes (place, migrate, kill, scale, tune) applied to a [`State`] with an undo log, so
//! each is judged by how much it changes the objective of the hosts it touches; and
//! rebalancing — local search over migrate, kill and scale moves within a budget.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::landscape::Pressure;
use crate::objective::{Member, Scorer, State};
use crate::planner::Provenance;

/// A change to the landscape to be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "recipe", rename_all = "snake_case", deny_unknown_fields)]
pub enum Recipe {
    /// Start a new instance of `workload` on `host`.
    Place {
        /// Workload.
        workload: String,
        /// Host.
        host: String,
        /// Cores.
        cores: f64,
        /// Memory.
        memory_bytes: u64,
        /// Pressure on neighbours.
        #[serde(default)]
        pressure: Pressure,
        /// Latency-critical.
        #[serde(default)]
        latency_critical: bool,
        /// Rps it serves.
        #[serde(default)]
        rps: Option<f64>,
        /// Quiet p99, ms.
        #[serde(default)]
        quiet_p99_ms: Option<f64>,
    },
    /// Move an instance to another host.
    Migrate {
        /// Instance id.
        instance: String,
        /// Target host.
        to: String,
    },
    /// Stop an instance.
    Kill {
        /// Instance id.
        instance: String,
    },
    /// Change a workload's replicas: copies of an existing replica on `add_on` hosts, and
    /// removal of the `remove` instances; its rps is spread over the replicas it then has.
    Scale {
        /// Workload.
        workload: String,
        /// Hosts to add a replica on.
        #[serde(default)]
        add_on: Vec<String>,
        /// Replicas to remove.
        #[serde(default)]
        remove: Vec<String>,
    },
    /// Resize an instance.
    Tune {
        /// Instance id.
        instance: String,
        /// New cores.
        #[serde(default)]
        cores: Option<f64>,
        /// New memory.
        #[serde(default)]
        memory_bytes: Option<u64>,
    },
}

/// Why a recipe cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecipeError {
    /// It names an instance that does not exist.
    #[error("unknown instance {0:?}")]
    UnknownInstance(String),
    /// It names a host that does not exist.
    #[error("unknown host {0:?}")]
    UnknownHost(String),
    /// It names a workload without instances.
    #[error("unknown workload {0:?} (it has no instances)")]
    UnknownWorkload(String),
    /// A size that cannot be.
    #[error("{0}")]
    Invalid(String),
}

enum Undo {
    Relocated(usize, Option<usize>),
    Added(usize),
    Resized(usize, f64, u64),
    Rps(usize, Option<f64>),
}

/// Applies recipes to a [`State`] and takes them back.
pub struct Applied {
    undo: Vec<Undo>,
    /// Hosts whose cost may have changed.
    pub touched: BTreeSet<usize>,
    /// Whether every touched host still fits its capacity.
    pub feasible: bool,
}

fn host_of(state: &State, name: &str) -> Result<usize, RecipeError> {
    state
        .host_index
        .get(name)
        .copied()
        .ok_or_else(|| RecipeError::UnknownHost(name.to_string()))
}

fn live_member(state: &State, id: &str) -> Result<usize, RecipeError> {
    state
        .by_id
        .get(id)
        .copied()
        .filter(|&m| state.members[m].host.is_some())
        .ok_or_else(|| RecipeError::UnknownInstance(id.to_string()))
}

impl Applied {
    fn new() -> Self {
        Self {
            undo: Vec::new(),
            touched: BTreeSet::new(),
            feasible: true,
        }
    }

    fn relocate(&mut self, state: &mut State, m: usize, to: Option<usize>) {
        let from = state.members[m].host;
        self.touched.extend(from);
        self.touched.extend(to);
        state.relocate(m, to);
        self.undo.push(Undo::Relocated(m, from));
    }

    fn set_rps(&mut self, state: &mut State, m: usize, rps: Option<f64>) {
        self.undo.push(Undo::Rps(m, state.members[m].rps));
        self.touched.extend(state.members[m].host);
        state.members[m].rps = rps;
    }

    /// Spreads a workload's total rps over its live replicas.
    fn respread(&mut self, state: &mut State, workload: usize, total: Option<f64>) {
        let Some(total) = total else { return };
        let replicas: Vec<usize> = state.replicas_of(workload).collect();
        let each = total / replicas.len().max(1) as f64;
        for m in replicas {
            self.set_rps(state, m, Some(each));
        }
    }

    fn workload_rps(state: &State, workload: usize) -> Option<f64> {
        let mut total = 0.0;
        for m in state.replicas_of(workload) {
            total += state.members[m].rps?;
        }
        Some(total)
    }

    /// Applies `recipe`; on error nothing is changed.
    pub fn apply(state: &mut State, recipe: &Recipe) -> Result<Self, RecipeError> {
        let mut applied = Self::new();
        match recipe {
            Recipe::Place {
                workload,
                host,
                cores,
                memory_bytes,
                pressure,
                latency_critical,
                rps,
                quiet_p99_ms,
            } => {
                let h = host_of(state, host)?;
                if !(cores.is_finite() && *cores >= 0.0) {
                    return Err(RecipeError::Invalid(format!(
                        "cores must be a non-negative number, got {cores}"
                    )));
                }
                let workload = match state.workloads.iter().position(|w| &w.name == workload) {
                    Some(w) => w,
                    None => {
                        state.workloads.push(crate::objective::WorkloadInfo {
                            name: workload.clone(),
                            p99_objective_ms: None,
                            priority: 1.0,
                            quiet_p99_ms: None,
                            rps: None,
                        });
                        state.workloads.len() - 1
                    }
                };
                let id = format!("new-{}", state.members.len()).into();
                let m = state.add(
                    Member {
                        id,
                        workload,
                        host: None,
                        cores: *cores,
                        memory_bytes: *memory_bytes,
                        pressure: *pressure,
                        latency_critical: *latency_critical
                            || state.workloads[workload].p99_objective_ms.is_some(),
                        rps: *rps,
                        quiet_p99_ms: *quiet_p99_ms,
                        evictable: false,
                    },
                    h,
                );
                applied.touched.insert(h);
                applied.undo.push(Undo::Added(m));
            }
            Recipe::Migrate { instance, to } => {
                let m = live_member(state, instance)?;
                let to = host_of(state, to)?;
                applied.relocate(state, m, Some(to));
            }
            Recipe::Kill { instance } => {
                let m = live_member(state, instance)?;
                applied.relocate(state, m, None);
            }
            Recipe::Scale {
                workload,
                add_on,
                remove,
            } => {
                let w = state
                    .workloads
                    .iter()
                    .position(|x| &x.name == workload)
                    .ok_or_else(|| RecipeError::UnknownWorkload(workload.clone()))?;
                let template = state
                    .replicas_of(w)
                    .next()
                    .ok_or_else(|| RecipeError::UnknownWorkload(workload.clone()))?;
                let hosts = add_on
                    .iter()
                    .map(|h| host_of(state, h))
                    .collect::<Result<Vec<_>, _>>()?;
                let removed = remove
                    .iter()
                    .map(|id| {
                        live_member(state, id).and_then(|m| {
                            if state.members[m].workload == w {
                                Ok(m)
                            } else {
                                Err(RecipeError::Invalid(format!(
                                    "instance {id:?} is not a replica of {workload:?}"
                                )))
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let total = Self::workload_rps(state, w);
                for (k, h) in hosts.into_iter().enumerate() {
                    let mut copy = state.members[template].clone();
                    copy.id = format!("{}-scale-{k}", copy.id).into();
                    let m = state.add(copy, h);
                    applied.touched.insert(h);
                    applied.undo.push(Undo::Added(m));
                }
                for m in removed {
                    applied.relocate(state, m, None);
                }
                applied.respread(state, w, total);
            }
            Recipe::Tune {
                instance,
                cores,
                memory_bytes,
            } => {
                let m = live_member(state, instance)?;
                if let Some(c) = cores {
                    if !(c.is_finite() && *c >= 0.0) {
                        return Err(RecipeError::Invalid(format!(
                            "cores must be a non-negative number, got {c}"
                        )));
                    }
                }
                let host = state.members[m].host;
                let (old_cores, old_memory) =
                    (state.members[m].cores, state.members[m].memory_bytes);
                state.relocate(m, None);
                state.members[m].cores = cores.unwrap_or(old_cores);
                state.members[m].memory_bytes = memory_bytes.unwrap_or(old_memory);
                state.relocate(m, host);
                applied.touched.extend(host);
                applied.undo.push(Undo::Resized(m, old_cores, old_memory));
            }
        }
        applied.feasible = applied.touched.iter().all(|&h| state.fits(h, 0.0, 0));
        Ok(applied)
    }

    /// Takes the recipe back.
    pub fn undo(self, state: &mut State) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Relocated(m, from) => state.relocate(m, from),
                Undo::Added(m) => {
                    state.relocate(m, None);
                    let member = state.members.pop();
                    if let Some(member) = member {
                        state.by_id.remove(&member.id);
                    }
                }
                Undo::Resized(m, cores, memory) => {
                    let host = state.members[m].host;
                    state.relocate(m, None);
                    state.members[m].cores = cores;
                    state.members[m].memory_bytes = memory;
                    state.relocate(m, host);
                }
                Undo::Rps(m, rps) => state.members[m].rps = rps,
            }
        }
    }
}

/// How much `recipe` changes the objective (negative = better), and whether the result
/// fits; the state is left as it was.
pub fn score_recipe(
    state: &mut State,
    scorer: &mut Scorer<'_>,
    recipe: &Recipe,
) -> Result<(f64, bool), RecipeError> {
    // Cost of the hosts it may touch, before: found by applying once, then undoing.
    let probe = Applied::apply(state, recipe)?;
    let touched = probe.touched.clone();
    probe.undo(state);
    let before: f64 = touched.iter().map(|&h| scorer.host_cost(state, h)).sum();
    let applied = Applied::apply(state, recipe)?;
    let after: f64 = touched.iter().map(|&h| scorer.host_cost(state, h)).sum();
    let feasible = applied.feasible;
    applied.undo(state);
    Ok((after - before, feasible))
}

/// One step of a rebalancing plan.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Action {
    /// The move.
    #[serde(flatten)]
    pub recipe: Recipe,
    /// Objective change of this step (negative = better).
    pub objective_delta: f64,
    /// Why.
    pub explanation: String,
}

/// What a local search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// Ordered steps.
    pub actions: Vec<Action>,
    /// Objective before (`None`: the budget ended before every host was costed).
    pub before: Option<f64>,
    /// Objective after all steps (`None` with `before`).
    pub after: Option<f64>,
    /// Moves evaluated.
    pub moves_evaluated: usize,
    /// Whether the deadline ended the search (else: no improving move left, or the cap).
    pub exhausted: bool,
}

/// Which moves rebalancing may use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// Move an instance.
    Migrate,
    /// Kill an evictable instance.
    Kill,
    /// Add a replica of a workload at risk of missing its objective.
    Scale,
}

/// Hosts considered as targets per move (the cheapest ones, plus a rotating sample).
const TARGETS: usize = 48;

/// Local search: from the costliest hosts, the best improving move of each of their
/// instances (migrate to one of the cheapest hosts, kill if evictable, add a replica if it
/// is at risk), applied greedily until none improves, `max_actions` is reached or the
/// deadline passes. `state` ends in the planned landscape.
pub fn local_search(
    state: &mut State,
    scorer: &mut Scorer<'_>,
    weights: &crate::planner::Weights,
    allowed: &BTreeSet<MoveKind>,
    max_actions: usize,
    deadline: Instant,
) -> SearchResult {
    let hosts = state.capacity.len();
    let out_of_time = || Instant::now() >= deadline;
    let mut costs: Vec<f64> = Vec::with_capacity(hosts);
    for h in 0..hosts {
        if h % 256 == 0 && out_of_time() {
            return SearchResult {
                actions: Vec::new(),
                before: None,
                after: None,
                moves_evaluated: 0,
                exhausted: true,
            };
        }
        costs.push(scorer.host_cost(state, h));
    }
    let before: f64 = costs.iter().sum();
    // Kept current step by step: recomputing every host at the end would overrun the budget.
    let mut after = before;
    let mut actions = Vec::new();
    let mut evaluated = 0usize;
    let mut exhausted = false;
    let mut rotation = 0usize;
    'search: while actions.len() < max_actions {
        let mut order: Vec<usize> = (0..hosts).collect();
        order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(a.cmp(&b)));
        let mut targets: Vec<usize> = order.iter().rev().take(TARGETS).copied().collect();
        if hosts > TARGETS {
            for k in 0..TARGETS / 3 {
                targets.push((rotation + k * 7919) % hosts);
            }
            rotation = rotation.wrapping_add(TARGETS / 3);
        }
        targets.sort_unstable();
        targets.dedup();
        for &h in &order {
            if costs[h] < 1e-9 {
                break;
            }
            let members = state.members_of[h].clone();
            for m in members {
                if out_of_time() {
                    exhausted = true;
                    break 'search;
                }
                let mut best: Option<(f64, Recipe, Vec<usize>)> = None;
                let id = state.members[m].id.to_string();
                let mut consider = |state: &mut State,
                                    scorer: &mut Scorer<'_>,
                                    recipe: Recipe,
                                    penalty: f64,
                                    costs: &[f64]| {
                    evaluated += 1;
                    let Ok(applied) = Applied::apply(state, &recipe) else {
                        return;
                    };
                    if applied.feasible {
                        let touched: Vec<usize> = applied.touched.iter().copied().collect();
                        let delta: f64 = touched
                            .iter()
                            .map(|&t| scorer.host_cost(state, t) - costs[t])
                            .sum::<f64>()
                            + penalty;
                        if delta < best.as_ref().map_or(-1e-9, |b| b.0) {
                            best = Some((delta, recipe, touched));
                        }
                    }
                    applied.undo(state);
                };
                if allowed.contains(&MoveKind::Migrate) {
                    for &t in &targets {
                        if out_of_time() {
                            break;
                        }
                        if t != h {
                            let recipe = Recipe::Migrate {
                                instance: id.clone(),
                                to: state.host_names[t].clone(),
                            };
                            consider(state, scorer, recipe, weights.migration, &costs);
                        }
                    }
                }
                if allowed.contains(&MoveKind::Kill) && state.members[m].evictable {
                    let recipe = Recipe::Kill {
                        instance: id.clone(),
                    };
                    consider(state, scorer, recipe, weights.kill, &costs);
                }
                let at_risk = state.members[m].latency_critical
                    && scorer
                        .risk(state, m, h, &state.loads[h].clone())
                        .is_some_and(|r| r.cost > 0.0);
                if allowed.contains(&MoveKind::Scale) && at_risk {
                    let workload = state.workloads[state.members[m].workload].name.clone();
                    for &t in targets.iter().take(8) {
                        if out_of_time() {
                            break;
                        }
                        let recipe = Recipe::Scale {
                            workload: workload.clone(),
                            add_on: vec![state.host_names[t].clone()],
                            remove: Vec::new(),
                        };
                        consider(state, scorer, recipe, weights.scale, &costs);
                    }
                }
                if let Some((delta, recipe, touched)) = best {
                    let explanation = explain_move(state, m, &recipe, delta);
                    if let Ok(applied) = Applied::apply(state, &recipe) {
                        for &t in &touched {
                            let cost = scorer.host_cost(state, t);
                            after += cost - costs[t];
                            costs[t] = cost;
                        }
                        drop(applied);
                        actions.push(Action {
                            recipe,
                            objective_delta: delta,
                            explanation,
                        });
                        if out_of_time() {
                            exhausted = true;
                            break 'search;
                        }
                        continue 'search;
                    }
                }
            }
        }
        // A full pass without an improving move: a local optimum.
        break;
    }
    SearchResult {
        actions,
        before: Some(before),
        after: Some(after),
        moves_evaluated: evaluated,
        exhausted,
    }
}

fn explain_move(state: &State, m: usize, recipe: &Recipe, delta: f64) -> String {
    let member = &state.members[m];
    let from = member.host.map_or("?", |h| state.host_names[h].as_str());
    let what = match recipe {
        Recipe::Migrate { to, .. } => format!("move {} from {from} to {to}", member.id),
        Recipe::Kill { .. } => format!("kill evictable {} on {from}", member.id),
        Recipe::Scale {
            workload, add_on, ..
        } => {
            format!("add a replica of {workload} on {}", add_on.join(", "))
        }
        other => format!("{other:?}"),
    };
    let load = member.host.map(|h| state.loads[h]);
    let pressure = load.map_or(String::new(), |l| {
        format!(
            " (its host: {:.1} cores used, pressure cpu {:.0} / l3 {:.0} / membw {:.0}, {} latency-critical)",
            l.cores, l.pressure.cpu, l.pressure.l3, l.pressure.membw, l.latency_critical
        )
    });
    format!("{what}{pressure}: objective {delta:+.3}")
}

/// Budget and model bookkeeping shared by the planner's answers.
pub fn deadline_after(started: Instant, budget_ms: f64) -> Instant {
    started + Duration::from_secs_f64(budget_ms.max(0.0) / 1000.0)
}

/// Models used, by name → version (for answers).
pub type ModelVersions = BTreeMap<String, u64>;

/// `POST /v1/rebalance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RebalanceRequest {
    /// Budget, ms (default from config).
    pub budget_ms: Option<f64>,
    /// At most this many actions (default 20).
    pub max_actions: Option<usize>,
    /// Moves allowed (default: all).
    pub moves: Option<Vec<MoveKind>>,
}

/// The rebalancing plan.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RebalancePlan {
    /// Ordered steps.
    pub actions: Vec<Action>,
    /// Predicted objective of the landscape now (`null` when the budget ended before every
    /// host was costed: then there are no actions).
    pub objective_before: Option<f64>,
    /// Predicted objective after every step.
    pub objective_after: Option<f64>,
    /// Moves evaluated.
    pub moves_evaluated: usize,
    /// Instances in the landscape.
    pub instances: usize,
    /// Budget, time used, models and whether the answer is degraded.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Plans rebalancing of `landscape` within the budget.
pub fn rebalance(
    request: &RebalanceRequest,
    landscape: &crate::Landscape,
    snapshot: &dcpilot_info_core::Snapshot,
    intents: &crate::Intents,
    config: &crate::PlannerConfig,
    now_ms: i64,
) -> Result<RebalancePlan, crate::PlanError> {
    let started = Instant::now();
    let state = State::new(landscape, intents);
    rebalance_state(request, state, started, snapshot, config, now_ms)
}

/// [`rebalance`] on a landscape already in index form (a copy the caller may keep
/// prepared between requests), with the budget counted from `started`.
pub fn rebalance_state(
    request: &RebalanceRequest,
    mut state: State,
    started: Instant,
    snapshot: &dcpilot_info_core::Snapshot,
    config: &crate::PlannerConfig,
    now_ms: i64,
) -> Result<RebalancePlan, crate::PlanError> {
    let budget_ms = crate::planner::budget_of(request.budget_ms, config)?;
    let deadline = deadline_after(started, budget_ms);
    let allowed: BTreeSet<MoveKind> = match &request.moves {
        Some(moves) if moves.is_empty() => {
            return Err(crate::PlanError::BadRequest(
                "moves: name at least one of migrate, kill, scale".into(),
            ))
        }
        Some(moves) => moves.iter().copied().collect(),
        None => [MoveKind::Migrate, MoveKind::Kill, MoveKind::Scale].into(),
    };
    let mut models = crate::planner::ModelUse::new(snapshot, config, now_ms);
    let mut scorer = Scorer::new(config.weights, models.slowdown());
    let instances = state.members.iter().filter(|m| m.host.is_some()).count();
    let result = local_search(
        &mut state,
        &mut scorer,
        &config.weights,
        &allowed,
        request.max_actions.unwrap_or(20),
        deadline,
    );
    let used_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Freeing a copy of a large landscape takes a while: not on the answer's clock.
    if state.members.len() > 10_000 {
        std::thread::spawn(move || drop(state));
    }
    Ok(RebalancePlan {
        actions: result.actions,
        objective_before: result.before,
        objective_after: result.after,
        moves_evaluated: result.moves_evaluated,
        instances,
        provenance: models.finish(budget_ms, used_ms, result.exhausted),
    })
}

/// `POST /v1/score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// Recipes, each scored on its own against the current landscape.
    pub recipes: Vec<Recipe>,
    /// Budget, ms (default from config).
    #[serde(default)]
    pub budget_ms: Option<f64>,
}

/// One scored recipe.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScoredRecipe {
    /// Position in the request.
    pub index: usize,
    /// Whether it was scored before the budget ran out.
    pub scored: bool,
    /// Objective change (negative = better); absent when not scored.
    pub objective_delta: Option<f64>,
    /// Whether every host it touches still fits.
    pub feasible: Option<bool>,
}

/// The scores, best first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScoreAnswer {
    /// Scored recipes best (most negative delta, feasible) first, then unscored ones.
    pub results: Vec<ScoredRecipe>,
    /// Recipes scored.
    pub candidates_scored: usize,
    /// Recipes sent.
    pub candidates_total: usize,
    /// Budget, time used, models and whether the answer is degraded.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Scores `request.recipes` against `landscape`, each on its own. A recipe naming an
/// unknown instance, host or workload fails the request, naming it and its position.
pub fn score(
    request: &ScoreRequest,
    landscape: &crate::Landscape,
    snapshot: &dcpilot_info_core::Snapshot,
    intents: &crate::Intents,
    config: &crate::PlannerConfig,
    now_ms: i64,
) -> Result<ScoreAnswer, crate::PlanError> {
    let started = Instant::now();
    let budget_ms = crate::planner::budget_of(request.budget_ms, config)?;
    if request.recipes.is_empty() {
        return Err(crate::PlanError::BadRequest(
            "recipes: send at least one recipe".into(),
        ));
    }
    let deadline = deadline_after(started, budget_ms);
    let mut models = crate::planner::ModelUse::new(snapshot, config, now_ms);
    let mut scorer = Scorer::new(config.weights, models.slowdown());
    let mut state = State::new(landscape, intents);
    let mut results = Vec::with_capacity(request.recipes.len());
    let mut exhausted = false;
    for (index, recipe) in request.recipes.iter().enumerate() {
        if exhausted || Instant::now() >= deadline {
            exhausted = true;
            results.push(ScoredRecipe {
                index,
                scored: false,
                objective_delta: None,
                feasible: None,
            });
            continue;
        }
        let (delta, feasible) = score_recipe(&mut state, &mut scorer, recipe)
            .map_err(|e| crate::PlanError::BadRequest(format!("recipes[{index}]: {e}")))?;
        results.push(ScoredRecipe {
            index,
            scored: true,
            objective_delta: Some(delta),
            feasible: Some(feasible),
        });
    }
    let scored = results.iter().filter(|r| r.scored).count();
    results.sort_by(|a, b| {
        let key = |r: &ScoredRecipe| {
            (
                !r.scored,
                !r.feasible.unwrap_or(false),
                r.objective_delta.unwrap_or(f64::INFINITY),
            )
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(a.index.cmp(&b.index))
    });
    Ok(ScoreAnswer {
        results,
        candidates_scored: scored,
        candidates_total: request.recipes.len(),
        provenance: models.finish(
            budget_ms,
            started.elapsed().as_secs_f64() * 1000.0,
            exhausted,
        ),
    })
}
