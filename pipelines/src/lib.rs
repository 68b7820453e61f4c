//! Background jobs: what a data scientist touches.
//!
//! Built so far (issue #4 in progress): the job spec format with validation
//! ([`spec`]), error metrics ([`metrics`]), training with a time-based holdout, baselines
//! and champion/challenger ([`train`]), the `Job` trait, registry and one run
//! ([`job`]), and the `cpu-demand` built-in job. Not yet: the interference-slowdown and
//! rightsizing jobs, the trigger-driven runner in `background`, golden tests.

pub mod boost;
pub mod colouring;
pub mod error;
pub mod job;
pub mod live;
pub mod metrics;
pub mod spec;
pub mod table;
pub mod train;

pub use colouring::ColouringSummary;
pub use error::{PipelineError, Result};
pub use job::{
    evaluate_served, holdout_predictions, run_once, run_once_cancellable, EvaluationReport, Job,
    Registry, RunReport, SpecJob,
};
pub use live::{judge_live, LiveChange, LiveReport};
pub use metrics::ErrorMetric;
pub use spec::{JobSpec, ModelSpec, SpecErrors};
pub use train::{evaluate, evaluate_job, fit, Dataset, Evaluation};
