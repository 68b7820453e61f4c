//! The foreground crate's service error: whose fault it is and whether a retry can help.

use std::path::PathBuf;

/// Errors starting or running the foreground service.
#[derive(Debug, thiserror::Error)]
pub enum ForegroundError {
    /// The configuration is invalid; every problem names its key.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The landscape file cannot be read or is not a landscape document.
    #[error("sources.landscape_file {}: {reason}", .path.display())]
    LandscapeFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The Information Core cannot be opened or followed.
    #[error("Information Core: {0}")]
    InfoCore(#[from] dcpilot_info_core::InfoCoreError),
    /// A Kafka client cannot be created (bad `sources.client` properties).
    #[error("sources.client: the Kafka {role} rejects these properties: {source}")]
    Kafka {
        /// Which client.
        role: &'static str,
        /// librdkafka's words.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The API address cannot be listened on.
    #[error("listen: cannot listen on {addr}: {source}{hint}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// What to do about it, when obvious.
        hint: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory cannot be written.
    #[error("data directory {}: {source}", .path.display())]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Serving stopped with an I/O error.
    #[error("serving the API: {0}")]
    Serve(std::io::Error),
    /// An actuator of the intent loop cannot be set up (`autopilot.*`).
    #[error("autopilot: {0}")]
    Actuator(String),
}

impl ForegroundError {
    /// Whether retrying may help (an outside system's trouble, not the configuration).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InfoCore(e) => e.is_retryable(),
            Self::Serve(_) => true,
            Self::Config(_)
            | Self::LandscapeFile { .. }
            | Self::Kafka { .. }
            | Self::Listen { .. }
            | Self::DataDir { .. }
            | Self::Actuator(_) => false,
        }
    }
}
