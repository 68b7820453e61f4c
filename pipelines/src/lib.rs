//! What a data scientist touches: background jobs and the models they publish.
//!
//! - [`job`]: the `Job` trait, the registry (built-in specs under `jobs/` and a spec
//!   directory) and one run: query, train, judge, publish;
//! - [`spec`]: the job spec format, every problem reported at once with its file and key;
//! - [`kinds`]: the model kinds, one module each behind [`ModelKind`], in one registry;
//! - [`train`]: a time-based holdout, the estimator next to its naive baselines and the
//!   champion, the champion/challenger decision; [`metrics`]: the error metrics;
//! - [`boost`] (gradient boosting by forust-ml) and [`table`] (quantile tables);
//! - [`live`]: the served version judged on rows it never saw, and demotion;
//! - [`colouring`]: detectors, scoring and root-cause ranking over the landscape, and the
//!   colouring job kind.

pub mod boost;
pub mod colouring;
pub mod error;
pub mod job;
pub mod kinds;
pub mod live;
pub mod metrics;
pub mod spec;
pub mod table;
pub mod train;

pub use colouring::ColouringSummary;
pub use error::{PipelineError, Result};
pub use job::{
    evaluate_served, holdout_predictions, run_once, run_once_at, run_once_cancellable,
    EvaluationReport, Job, Registry, RunReport, SpecJob,
};
pub use kinds::ModelKind;
pub use live::{judge_live, LiveChange, LiveReport};
pub use metrics::ErrorMetric;
pub use spec::{JobSpec, ModelSpec, Problems, SpecErrors};
pub use train::{evaluate, evaluate_job, fit, Dataset, Evaluation};
