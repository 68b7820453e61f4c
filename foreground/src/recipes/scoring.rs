//! Scoring: how much one recipe changes the objective ([`score_recipe`]), and the
//! `POST /v1/score` request and answer scoring each given recipe on its own ([`score`]).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Applied, Recipe, RecipeError};
use crate::objective::{Scorer, State};
use crate::planner::Provenance;

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
    let clock = crate::planner::Clock::now(crate::planner::budget_of(request.budget_ms, config)?);
    score_on(request, landscape, snapshot, intents, config, now_ms, clock)
}

/// [`score`] on a request's `clock` (its budget already chosen, counted from arrival).
pub fn score_on(
    request: &ScoreRequest,
    landscape: &crate::Landscape,
    snapshot: &dcpilot_info_core::Snapshot,
    intents: &crate::Intents,
    config: &crate::PlannerConfig,
    now_ms: i64,
    clock: crate::planner::Clock,
) -> Result<ScoreAnswer, crate::PlanError> {
    if request.recipes.is_empty() {
        return Err(crate::PlanError::BadRequest(
            "recipes: send at least one recipe".into(),
        ));
    }
    let deadline = clock.due;
    let mut models = crate::planner::ModelUse::new(snapshot, config, now_ms);
    let colouring = models.colouring();
    let state = State::new(landscape, intents);
    let mut scorer =
        Scorer::new(config.weights, models.slowdowns()).with_anomalies(&state, colouring);
    let mut state = state;
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
        provenance: models.finish_on(&clock, exhausted),
    })
}
