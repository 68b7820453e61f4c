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
    /// A configured address cannot be listened on (in use, not local, no permission).
    #[error("{key}: cannot listen on {addr}: {source}{hint}")]
    Listen {
        /// The configuration key that set the address.
        key: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// What to do about it, when there is an obvious fix.
        hint: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory cannot be created or written.
    #[error("data directory {}: {source} (choose another with --data-dir or DCPILOT_DATA_DIR)", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// librdkafka refused the client properties.
    #[error("{key}: the Kafka {role} rejects these properties: {source}{}", client_config_hint(.source))]
    ClientConfig {
        /// The configuration key holding the properties.
        key: &'static str,
        /// Which client.
        role: &'static str,
        /// librdkafka's words.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The Information Core could not be opened or replicated.
    #[error("Information Core in {}: {source}", .path.display())]
    InfoCore {
        /// Its directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: dcpilot_info_core::InfoCoreError,
    },
    /// The landscape's file could not be read or written.
    #[error("landscape in {}: {source}", .path.display())]
    Landscape {
        /// Its file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: dcpilot_landscape::GraphError,
    },
    /// A bug: something that cannot happen did.
    #[error("internal error: {0}")]
    Internal(String),
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
            Self::Config { .. }
            | Self::Listen { .. }
            | Self::DataDir { .. }
            | Self::ClientConfig { .. } => Cause::User,
            Self::InfoCore { source, .. } if !source.is_retryable() => Cause::User,
            Self::InfoCore { .. } => Cause::External,
            Self::Landscape { source, .. } if !source.is_retryable() => Cause::User,
            Self::Landscape { .. } => Cause::External,
            Self::Internal(_) => Cause::Internal,
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

    /// Maps a failed bind of `addr` (set by `key`) to [`BackgroundError::Listen`], with
    /// `in_use_hint` when the address is taken.
    pub(crate) fn listen(
        key: &'static str,
        addr: std::net::SocketAddr,
        in_use_hint: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Listen {
            key,
            addr,
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                in_use_hint
            } else {
                ""
            },
            source,
        }
    }

    pub(crate) fn kafka(
        context: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let context = context.into();
        move |source| Self::Kafka { context, source }
    }
}

/// What to do about a refused client configuration, when it is obvious.
fn client_config_hint(error: &rdkafka::error::KafkaError) -> &'static str {
    if error.to_string().contains("GSSAPI") {
        " (Kerberos/GSSAPI, librdkafka's default sasl.mechanism, is not built in: set \"sasl.mechanism\" to PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
    } else {
        ""
    }
}

/// Result alias of this crate.
pub type Result<T, E = BackgroundError> = std::result::Result<T, E>;
