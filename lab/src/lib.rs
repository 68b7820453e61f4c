//! What spans both flows, for people and experiments:
//!
//! - [`demo`]: `dcpilot demo` — both loops end to end on embedded defaults and the bundled
//!   real-trace samples, and its report (text, JSON, HTML);
//! - [`planner`]: the intent loop's proof — a plant built from the NTUA measurements, the
//!   autopilot next to an HPA-style, a fixed and an oracle controller on the same days;
//! - [`processes`]: the background, the foreground, or both in one process, until a signal;
//! - [`simulate`]: a synthetic landscape and its telemetry at a chosen rate, for load tests;
//! - [`datasets`]: readers of the real traces (Bitbrains, NTUA, Nezha, native trace
//!   directories);
//! - [`rca`]: root-cause ranking judged against labelled faults, next to naive rankers;
//! - [`replay`]: a trace sent to the telemetry (and landscape) topics;
//! - [`stats`]: the one percentile every report uses;
//! - [`tools`]: what the operator commands (`models`, `jobs`, `landscape`) do.

pub mod datasets;
pub mod demo;
pub mod error;
pub mod planner;
pub mod processes;
pub mod rca;
pub mod replay;
pub mod simulate;
pub mod stats;
pub mod tools;

pub use error::{Context, LabError, Result};
