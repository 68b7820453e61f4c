//! The Information Core's one error type.

use std::path::PathBuf;

/// What went wrong in the Information Core.
#[derive(Debug, thiserror::Error)]
pub enum InfoCoreError {
    /// Disk trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored file fails its checksum or does not parse: it is quarantined.
    #[error("{path}: corrupt ({reason})")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record written by a newer or unknown dcpilot.
    #[error("{path}: format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        /// The file.
        path: String,
        /// Its format version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// No such model, or no such version of it.
    #[error("model {name:?}{}: not found", .version.map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound {
        /// Model name.
        name: String,
        /// Version asked for.
        version: Option<u64>,
    },
    /// A request the store refuses (bad name, rollback to a quarantined version, ...).
    #[error("{0}")]
    Rejected(String),
    /// An estimator that cannot be prepared for prediction.
    #[error("invalid model: {reason}")]
    InvalidModel {
        /// Why.
        reason: String,
    },
    /// A publish or replicated change from a replica that no longer holds the job's lease
    /// (a newer owner's lease marker was seen): refused everywhere, so versions stay unique.
    #[error("model {model:?}: fenced ({reason})")]
    Fenced {
        /// Model name.
        model: String,
        /// Why: whose lease, which epochs.
        reason: String,
    },
    /// Replication trouble (Kafka unreachable, ...).
    #[error("replication: {0}")]
    Replication(String),
    /// A prediction failed (wrong row width, ...).
    #[error("prediction failed: {reason}")]
    Prediction {
        /// Why.
        reason: String,
    },
}

impl InfoCoreError {
    /// Whether trying again may succeed (I/O or Kafka trouble), as opposed to bad input.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Replication(_))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result with [`InfoCoreError`].
pub type Result<T, E = InfoCoreError> = std::result::Result<T, E>;
