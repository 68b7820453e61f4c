//! The lab's one error type: every library error it drives, an I/O error (the step names
//! its file), a bad argument, or an experiment whose expectation did not hold — each with
//! the step it happened in ([`Context`]) and whether a retry can help.

/// What went wrong in a demo, an experiment or a dataset.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A trace could not be read.
    #[error(transparent)]
    Trace(#[from] crate::datasets::TraceError),
    /// The background flow failed (ingest, tables, SQL, jobs).
    #[error(transparent)]
    Background(#[from] dcpilot_background::BackgroundError),
    /// A job failed (spec, training, judging).
    #[error(transparent)]
    Pipeline(#[from] dcpilot_pipelines::PipelineError),
    /// The Information Core failed.
    #[error(transparent)]
    InfoCore(#[from] dcpilot_info_core::InfoCoreError),
    /// The foreground failed.
    #[error(transparent)]
    Foreground(#[from] dcpilot_foreground::ForegroundError),
    /// A job spec with problems, each naming its file and key.
    #[error(transparent)]
    Spec(#[from] dcpilot_pipelines::SpecErrors),
    /// The foreground's configuration is invalid.
    #[error(transparent)]
    ForegroundConfig(#[from] dcpilot_foreground::config::ConfigError),
    /// The planner replay's plant cannot be built from the runs given.
    #[error(transparent)]
    Plant(#[from] crate::planner::plant::PlantError),
    /// Arrow could not format rows.
    #[error("arrow: {0}")]
    Arrow(#[from] dcpilot_background::ArrowError),
    /// The landscape refused a change or a file.
    #[error(transparent)]
    Landscape(#[from] dcpilot_landscape::GraphError),
    /// A Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// JSON that does not parse or serialise.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// An I/O error (a file, a socket, standard input); the step it happened in names the
    /// file ([`Context`]).
    #[error("i/o: {0}")]
    Stream(#[from] std::io::Error),
    /// An HTTP exchange with the foreground failed.
    #[error("http: {0}")]
    Http(#[from] dcpilot_foreground::client::ClientError),
    /// A task of the async runtime panicked or was cancelled.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// An argument out of range; names the argument.
    #[error("{0}")]
    Invalid(String),
    /// What an experiment or the demo expected did not hold (the data, a service).
    #[error("{0}")]
    Failed(String),
    /// The step an error happened in.
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<LabError>,
    },
}

impl LabError {
    /// Whether trying again may succeed (a broker, the disk, a socket), as opposed to bad
    /// input or a broken expectation.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Background(e) => e.is_retryable(),
            Self::InfoCore(e) => e.is_retryable(),
            Self::Pipeline(e) => e.is_retryable(),
            Self::Foreground(e) => e.is_retryable(),
            Self::Landscape(e) => e.is_retryable(),
            Self::Kafka(_) | Self::Stream(_) | Self::Http(_) => true,
            Self::Context { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

/// Result with [`LabError`].
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Names the step a fallible value comes from, as the error's context.
pub trait Context<T> {
    /// The error (or absence) with `context` in front.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// The same, with the context built only on failure.
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<LabError>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| LabError::Context {
            context: context.into(),
            source: Box::new(e.into()),
        })
    }
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| LabError::Context {
            context: context().into(),
            source: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| LabError::Failed(context.into()))
    }
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| LabError::Failed(context().into()))
    }
}

/// Returns [`LabError::Failed`] with a formatted message.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::LabError::Failed(format!($($arg)*)))
    };
}

/// Returns [`LabError::Failed`] unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::bail!($($arg)*);
        }
    };
}
