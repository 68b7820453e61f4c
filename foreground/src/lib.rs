//! The foreground loop: landscape state, intents, the scorer, the deadline-bounded
//! planner (placement, recipes, rebalancing) and its HTTP API with the Kubernetes
//! scheduler-extender endpoints.
//!
//! - [`landscape`]: hosts, instances, O(1) per-host aggregates, `dcpilot.landscape` events;
//! - [`intents`]: objectives per workload, from IDO `Intent`/`KPIProfile` documents or
//!   dcpilot's `WorkloadIntent`;
//! - [`objective`]: model predictions → one objective per host and for the landscape;
//! - [`planner::place`]: least-loaded ranking at once, model scoring in that order until
//!   the budget is spent, `degraded` fallback to rules of thumb;
//! - [`recipes`]: place / migrate / kill / scale / tune scored by objective change, and
//!   rebalancing by local search within the budget;
//! - [`client`]: a client of the API, and a load generator measuring it at the client.

pub mod autopilot;
pub mod client;
pub mod config;
pub mod error;
pub mod extender;
pub mod follow;
pub mod intents;
pub mod landscape;
pub mod objective;
pub mod openapi;
pub mod planner;
pub mod recipes;
pub mod server;
pub mod service;

pub use config::ForegroundConfig;
pub use error::ForegroundError;
pub use intents::{IntentError, Intents, WorkloadObjectives};
pub use landscape::{
    Host, HostCounters, HostLoad, HostMeasure, Instance, Landscape, LandscapeError, Measured,
    Pressure,
};
pub use planner::{
    place, Choice, PlacementAnswer, PlacementRequest, PlanError, PlannerConfig, Weights,
};
pub use recipes::{
    rebalance, rebalance_state, score, RebalancePlan, RebalanceRequest, Recipe, ScoreAnswer,
    ScoreRequest,
};
pub use server::{Foreground, LandscapeDocument};
pub use service::ForegroundService;
