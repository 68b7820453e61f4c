//! Recipes (place, migrate, kill, scale, tune) applied to a
//! [`State`](crate::objective::State) with an undo log, so each is judged by how much it
//! changes the objective of the hosts it touches; and rebalancing — local search over
//! migrate, kill and scale moves within a budget.
//!
//! - `recipe`: the [`Recipe`] enum and applying one ([`Applied`], [`RecipeError`]);
//! - `rebalancing`: local search for improving moves ([`rebalance`], [`rebalance_state`],
//!   [`local_search`]) and its request and plan;
//! - `scoring`: scoring given recipes ([`score`], [`score_recipe`]) and its request and
//!   answer;
//! - here: the budget and model bookkeeping both share.

mod rebalancing;
mod recipe;
mod scoring;

use std::collections::BTreeMap;

pub use rebalancing::{
    local_search, rebalance, rebalance_state, Action, MoveKind, RebalancePlan, RebalanceRequest,
    SearchResult,
};
pub use recipe::{Applied, Recipe, RecipeError};
pub use scoring::{score, score_on, score_recipe, ScoreAnswer, ScoreRequest, ScoredRecipe};

/// Models used, by name → version (for answers).
pub type ModelVersions = BTreeMap<String, u64>;
