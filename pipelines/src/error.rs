//! The pipelines' one error type.

/// What went wrong in a background job.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A job spec or registration is invalid.
    #[error("{0}")]
    Spec(String),
    /// The job's data cannot train a model (too few rows, ragged columns, ...).
    #[error("data: {0}")]
    Data(String),
    /// The estimator failed to fit.
    #[error("training: {0}")]
    Training(String),
    /// The job's code panicked (caught; the process and other jobs go on).
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// The run was cancelled (its time budget ran out) before it published.
    #[error("cancelled before publishing (time budget exceeded)")]
    Cancelled,
    /// The Information Core refused or failed.
    #[error(transparent)]
    InfoCore(#[from] dcpilot_info_core::InfoCoreError),
}

impl PipelineError {
    /// Whether running the job again later may succeed (more data may arrive, the store
    /// may recover), as opposed to a spec that cannot work.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Data(_) => true,
            Self::Spec(_) => false,
            Self::Training(_) => false,
            Self::Panicked(_) => false,
            Self::Cancelled => true,
            Self::InfoCore(e) => e.is_retryable(),
        }
    }

    /// Stable, bounded name of the error's kind (for metric labels).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Spec(_) => "spec",
            Self::Data(_) => "data",
            Self::Training(_) => "training",
            Self::Panicked(_) => "panic",
            Self::Cancelled => "cancelled",
            Self::InfoCore(_) => "info_core",
        }
    }

    pub(crate) fn training(e: impl std::fmt::Display) -> Self {
        Self::Training(e.to_string())
    }
}

/// Result with [`PipelineError`].
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
