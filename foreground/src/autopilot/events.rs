//! The autopilot's typed events: each `emit` logs and counts; metric names live here.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

use super::actuate::ActuateError;
use super::live::PlanRecord;
use super::{Action, Decision, ObjectiveState};

/// Metric names.
pub mod names {
    /// Objectives by state (met, at_risk, violated, no_data) after the last tick.
    pub const OBJECTIVES: &str = "dcpilot_autopilot_objectives";
    /// Plans made, by mode (applied, dry_run, failed; unapplied: no actuator configured).
    pub const PLANS: &str = "dcpilot_autopilot_plans_total";
    /// Actions in plans carried out, by kind (scale_out, scale_in, move, evict).
    pub const ACTIONS: &str = "dcpilot_autopilot_actions_total";
    /// Seconds one tick over every objective took.
    pub const TICK_SECONDS: &str = "dcpilot_autopilot_tick_seconds";
    /// Decisions whose time budget ran out before every plan was costed.
    pub const OVERRUNS: &str = "dcpilot_autopilot_budget_exhausted_total";
    /// Plans an actuator failed to carry out, by actuator.
    pub const ACTUATOR_FAILURES: &str = "dcpilot_autopilot_actuator_failures_total";
}

const STATES: [ObjectiveState; 4] = [
    ObjectiveState::Met,
    ObjectiveState::AtRisk,
    ObjectiveState::Violated,
    ObjectiveState::NoData,
];
const ACTION_KINDS: [&str; 4] = ["scale_out", "scale_in", "move", "evict"];

/// Describes every autopilot metric and zeroes the counters.
pub fn describe_metrics() {
    describe_gauge!(
        names::OBJECTIVES,
        Unit::Count,
        "Latency objectives by state after the last autopilot tick."
    );
    describe_counter!(
        names::PLANS,
        Unit::Count,
        "Autopilot plans, by mode (applied, dry_run, failed)."
    );
    describe_counter!(
        names::ACTIONS,
        Unit::Count,
        "Actions of the plans carried out, by kind."
    );
    describe_histogram!(
        names::TICK_SECONDS,
        Unit::Seconds,
        "Time one autopilot tick over every objective took."
    );
    describe_counter!(
        names::OVERRUNS,
        Unit::Count,
        "Autopilot decisions whose budget ran out (the best plan found was used)."
    );
    describe_counter!(
        names::ACTUATOR_FAILURES,
        Unit::Count,
        "Plans an actuator failed to carry out, by actuator."
    );
    for state in STATES {
        gauge!(names::OBJECTIVES, "state" => state.as_str()).set(0.0);
    }
    for mode in ["applied", "dry_run", "failed", "unapplied"] {
        counter!(names::PLANS, "mode" => mode).absolute(0);
    }
    for kind in ACTION_KINDS {
        counter!(names::ACTIONS, "kind" => kind).absolute(0);
    }
    counter!(names::OVERRUNS).absolute(0);
}

/// One target decided.
pub struct Decided<'a> {
    /// The decision.
    pub decision: &'a Decision,
}

impl Decided<'_> {
    /// Logs a broken or unknown objective; counts an exhausted budget.
    pub fn emit(&self) {
        let d = self.decision;
        if d.provenance.budget_exhausted {
            counter!(names::OVERRUNS).increment(1);
        }
        if matches!(
            d.state,
            ObjectiveState::Violated | ObjectiveState::AtRisk | ObjectiveState::NoData
        ) {
            tracing::info!(
                target_workload = %d.target,
                state = d.state.as_str(),
                p99_ms = ?d.p99_ms.map(|r| r.value),
                objective_ms = d.objective_p99_ms,
                reason = %d.reason,
                "objective not met"
            );
        }
    }
}

/// A tick over every objective ended.
pub struct Ticked {
    /// How long it took.
    pub seconds: f64,
    /// Objectives by state.
    pub counts: std::collections::BTreeMap<ObjectiveState, usize>,
    /// Decisions over budget.
    pub overruns: usize,
}

impl Ticked {
    /// Sets the state gauges and records the tick's duration.
    pub fn emit(&self) {
        histogram!(names::TICK_SECONDS).record(self.seconds);
        for state in STATES {
            let n = self.counts.get(&state).copied().unwrap_or(0);
            gauge!(names::OBJECTIVES, "state" => state.as_str()).set(n as f64);
        }
        if self.overruns > 0 {
            tracing::warn!(
                overruns = self.overruns,
                "autopilot decisions ran out of budget"
            );
        }
    }
}

/// A plan was handed to the actuators.
pub struct Planned<'a> {
    /// What happened to it.
    pub record: &'a PlanRecord,
}

impl Planned<'_> {
    /// Logs the plan; counts it and its actions.
    pub fn emit(&self) {
        let r = self.record;
        let mode = if r.message.dry_run {
            "dry_run"
        } else if !r.applied_by.is_empty() {
            "applied"
        } else if r.failures.is_empty() {
            "unapplied"
        } else {
            "failed"
        };
        counter!(names::PLANS, "mode" => mode).increment(1);
        if mode == "applied" {
            for action in &r.message.actions {
                let kind = match action {
                    Action::ScaleOut { .. } => "scale_out",
                    Action::ScaleIn { .. } => "scale_in",
                    Action::Move { .. } => "move",
                    Action::Evict { .. } => "evict",
                };
                counter!(names::ACTIONS, "kind" => kind).increment(1);
            }
        }
        tracing::info!(
            plan = %r.message.plan_id,
            mode,
            actions = r.message.actions.len(),
            replicas = r.message.replicas(),
            predicted_p99_ms = ?r.message.predicted_p99_ms_after,
            "autopilot plan"
        );
    }
}

/// An actuator failed.
pub struct ActuatorFailed<'a> {
    /// Why.
    pub error: &'a ActuateError,
}

impl ActuatorFailed<'_> {
    /// Logs and counts the failure.
    pub fn emit(&self) {
        counter!(names::ACTUATOR_FAILURES, "actuator" => self.error.actuator).increment(1);
        tracing::warn!(error = %self.error, retryable = self.error.retryable, "actuator failed");
    }
}
