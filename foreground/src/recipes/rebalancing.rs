//! Rebalancing: local search from the costliest hosts for improving migrate, kill and scale
//! moves within a budget ([`local_search`]), and the `POST /v1/rebalance` request and plan
//! around it ([`rebalance`], [`rebalance_state`]).

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Applied, Recipe};
use crate::objective::{Scorer, State};
use crate::planner::Provenance;

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
                    let explanation = explain_move(state, scorer, m, &recipe, delta);
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

fn explain_move(state: &State, scorer: &Scorer, m: usize, recipe: &Recipe, delta: f64) -> String {
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
    let anomaly = member
        .host
        .map(|h| scorer.anomaly_of(h))
        .filter(|penalty| *penalty > 0.0)
        .map_or(String::new(), |penalty| {
            format!("; its host is coloured anomalous (+{penalty:.2} per instance)")
        });
    format!("{what}{pressure}{anomaly}: objective {delta:+.3}")
}

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
    let clock = crate::planner::Clock::now(crate::planner::budget_of(request.budget_ms, config)?);
    let state = State::new(landscape, intents);
    rebalance_state(request, state, clock, snapshot, config, now_ms)
}

/// [`rebalance`] on a landscape already in index form (a copy the caller may keep
/// prepared between requests), on a request's `clock` (its budget already chosen).
pub fn rebalance_state(
    request: &RebalanceRequest,
    mut state: State,
    clock: crate::planner::Clock,
    snapshot: &dcpilot_info_core::Snapshot,
    config: &crate::PlannerConfig,
    now_ms: i64,
) -> Result<RebalancePlan, crate::PlanError> {
    let deadline = clock.due;
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
    let colouring = models.colouring();
    let mut scorer =
        Scorer::new(config.weights, models.slowdowns()).with_anomalies(&state, colouring);
    let instances = state.members.iter().filter(|m| m.host.is_some()).count();
    let result = local_search(
        &mut state,
        &mut scorer,
        &config.weights,
        &allowed,
        request.max_actions.unwrap_or(20),
        deadline,
    );
    let provenance = models.finish_on(&clock, result.exhausted);
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
        provenance,
    })
}
