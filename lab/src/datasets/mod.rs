//! Readers of the real traces dcpilot is built and judged on (provenance in
//! `tests/data/README.md`), all failing with one [`TraceError`]:
//!
//! - [`traces`]: the Bitbrains GWA-T-12 VM utilisation trace and the NTUA nginx
//!   interference measurements (with their PCM counters), as telemetry samples;
//! - [`nezha`]: Nezha trace directories (per-pod metrics, call graph, labelled faults);
//! - [`native`]: trace directories in dcpilot's own format (telemetry, landscape, faults).

pub mod layout;
pub mod native;
pub mod nezha;
pub mod traces;

use std::path::{Path, PathBuf};

pub use layout::Layout;
pub use traces::{
    parse_bitbrains, parse_ntua, parse_pcm_nodes, parse_pcm_system, pcm_of_tests, read_trace,
    read_trace_laid_out, Trace, TraceFormat, UnknownTraceFormat, BITBRAINS_METRICS,
    BITBRAINS_WORKLOAD, NTUA_EPOCH_MS,
};

/// A trace that cannot be read. None of these is helped by retrying: the path or the
/// data must change.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file or directory cannot be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line does not have the expected shape.
    #[error("{}:{line}: {reason}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A file's content is wrong (not line by line: a key, a column, the whole file).
    #[error("{}: {reason}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line or key.
        reason: String,
    },
    /// No trace files were found.
    #[error("{}: no {what} found", .path.display())]
    Empty {
        /// Where we looked.
        path: PathBuf,
        /// What we looked for.
        what: &'static str,
    },
}

/// Maps an I/O error on `path` to [`TraceError::Io`].
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A [`TraceError::Format`] on `path`.
pub(crate) fn format_error(path: &Path, reason: impl Into<String>) -> TraceError {
    TraceError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}
