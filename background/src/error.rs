//! The background crate's one error type. Every variant says whose fault it is and whether
//! retrying can help, so runners decide without string matching.

use std::path::PathBuf;

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Bad configuration or input from the user: fix it, do not retry.
    User,
    /// Kafka, the disk, or another system outside the process: a retry may help.
    External,
    /// A bug in dcpilot.
    Internal,
}

/// Errors of the background flow.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    /// A configuration file or value is invalid; all problems are listed.
    #[error("invalid configuration in {file}:\n{}", .problems.join("\n"))]
    Config {
        /// The file (or `<defaults>` / `<environment>`).
        file: String,
        /// One line per problem, each naming its key.
        problems: Vec<String>,
    },
    /// Talking to Kafka failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What we were doing.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Reading or writing the data directory failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A stored file exists but cannot be read back (torn write, corruption).
    #[error("corrupt file {}: {reason}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A query or table operation failed.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// A table opened for queries only was asked to change.
    #[error("table {table} is open read-only")]
    ReadOnly {
        /// The table.
        table: &'static str,
    },
    /// Arrow rejected a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl BackgroundError {
    /// Who caused the error.
    pub fn cause(&self) -> Cause {
        match self {
            Self::Config { .. } => Cause::User,
            Self::Kafka { .. } | Self::Io { .. } | Self::Corrupt { .. } => Cause::External,
            Self::Query(_) => Cause::User,
            Self::Arrow(_) | Self::ReadOnly { .. } => Cause::Internal,
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        self.cause() == Cause::External
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn kafka(
        context: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let context = context.into();
        move |source| Self::Kafka { context, source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = BackgroundError> = std::result::Result<T, E>;
