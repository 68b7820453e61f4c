//! The foreground loop (issue #5, in progress): landscape state, the scorer and the
//! deadline-bounded anytime placement planner over an Information Core snapshot.
//!
//! Built so far: [`landscape`] (hosts, instances, O(1) per-host aggregates) and
//! [`planner::place`] (least-loaded ranking at once, model scoring in that order until the
//! budget is spent, `degraded` fallback to rules of thumb). Not yet: rebalancing, the
//! other recipes (migrate, kill, scale, tune), intents documents, the HTTP API and the
//! Kubernetes scheduler extender.

pub mod landscape;
pub mod planner;

pub use landscape::{Host, HostLoad, Instance, Landscape, LandscapeError, Pressure};
pub use planner::{
    place, Choice, PlacementAnswer, PlacementRequest, PlanError, PlannerConfig, Weights,
};
