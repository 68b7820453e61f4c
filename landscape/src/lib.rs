//! The landscape: the data center as a typed, temporal graph of what is connected to what.
//!
//! - [`graph`]: [`LandscapeGraph`], every node and edge that ever existed with the spans it
//!   was alive and the versions of what it said; changes are checked first and either
//!   apply whole or not at all;
//! - [`query`]: a node, subgraphs, neighbours, paths, blast radius, diffs — as of any time;
//! - [`formats`]: the loaders (networkx node-link JSON in Intel Landscaper's shape,
//!   Kubernetes object lists, hwloc XML, `Source,Target,Weight` call files) and the
//!   exporters (node-link JSON, Graphviz DOT), and the graph's own history file;
//! - [`service_graph`]: weighted `calls` edges from the OpenTelemetry service-graph
//!   connector's request counters arriving as telemetry;
//! - [`shared`]: [`SharedLandscape`], the graph behind immutable snapshots swapped
//!   atomically, changed without copying it (two copies, left-right);
//! - [`store`]: [`GraphStore`], the background's graph, saved to that file.

pub mod formats;
pub mod graph;
pub mod query;
pub mod service_graph;
pub mod shared;
pub mod store;

pub use graph::{Applied, Edge, EdgeVersion, LandscapeGraph, Lifetime, Node, NodeVersion, Span};
pub use petgraph::stable_graph::NodeIndex;
pub use petgraph::Direction;
pub use query::{
    Affected, Diff, EdgeView, NodeBrief, NodeFilter, NodeView, Subgraph, Summary, Walk,
};
pub use shared::{EachOutcome, SharedLandscape};
pub use store::GraphStore;

/// Why the landscape refused a change or a question, or could not read or write its file.
/// Only [`GraphError::Io`] may be helped by retrying ([`GraphError::is_retryable`]); for
/// the rest the input must change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// An edge or a change names a node the landscape never had.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// Removing an edge the landscape never had.
    #[error("unknown edge {0}")]
    UnknownEdge(String),
    /// The node exists but was not alive at that time.
    #[error("node {id:?} is not alive at {at_ms} ms")]
    NotAlive {
        /// The node.
        id: String,
        /// The time asked.
        at_ms: i64,
    },
    /// Containment must not loop (a host cannot be inside what it contains).
    #[error("containment cannot loop: {0}")]
    ContainmentCycle(String),
    /// An event older than what it changes (history is written forward only).
    #[error("{what}: event at {event_ms} ms is older than its last change at {last_change_ms} ms")]
    Stale {
        /// The node or edge.
        what: String,
        /// The event's time.
        event_ms: i64,
        /// Its last change.
        last_change_ms: i64,
    },
    /// A node or edge that cannot be (empty id, a type in the wrong layer, …).
    #[error("{0}")]
    Invalid(String),
    /// A file that does not parse as its format; names the place.
    #[error("{format}: {reason}")]
    Format {
        /// The format.
        format: &'static str,
        /// What is wrong, and where.
        reason: String,
    },
    /// The landscape's file could not be read or written (disk trouble; a retry may help).
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The landscape's file does not parse (it is left as it is).
    #[error("{path}: corrupt ({reason})")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// One event of a batch failed; nothing of the batch applied.
    #[error("events[{index}] ({kind}): {source}")]
    InEvent {
        /// Its position.
        index: usize,
        /// Its kind.
        kind: &'static str,
        /// Why.
        source: Box<GraphError>,
    },
}

impl GraphError {
    /// Whether trying again may succeed (disk trouble), as opposed to bad input.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |e| Self::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn format(format: &'static str, reason: impl Into<String>) -> Self {
        Self::Format {
            format,
            reason: reason.into(),
        }
    }
}
