//! The Information Core: every learned model and rule-of-thumb table, versioned and
//! crash-safe, served to the foreground through immutable snapshots.
//!
//! - [`core`]: the decisions (current version, next version, rollback, retention,
//!   champion/challenger) as plain functions;
//! - [`storage`]: a small [`Storage`] trait with in-memory and file-backed implementations;
//! - [`store::InfoCore`]: publish, get, history, rollback, export/import over a storage;
//! - [`snapshot`]: the current version of every model, prepared for prediction, swapped
//!   atomically;
//! - [`replication`]: model changes sent to and followed from a compacted Kafka topic,
//!   with leases that fence a replica that lost its job;
//! - [`colouring`]: the landscape's colouring as it is stored and served (every entity's
//!   abnormality, ranked root causes, host colours); the algorithms that make it live with
//!   the jobs (`dcpilot_pipelines::colouring`);
//! - [`live`]: how served models do on telemetry they never saw, and their demotion;
//! - [`model`]: smartcore estimators and quantile tables, and their prepared form.

pub mod colouring;
pub mod core;
pub mod error;
pub mod live;
pub mod model;
pub mod record;
pub mod replication;
pub mod snapshot;
pub mod storage;
pub mod store;

pub use error::{InfoCoreError, Result};

/// The wall clock in Unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
pub use model::{
    BoostedNode, BoostedTrees, Model, PreparedColouring, PreparedModel, QuantileTable,
};
pub use record::{
    HoldoutMetrics, Lease, Lineage, LineageInput, ModelDraft, ModelRecord, Pointer, TrainingWindow,
    FORMAT_VERSION,
};
pub use snapshot::{ServedModel, Snapshot, SnapshotCell};
pub use storage::{FileStorage, MemoryStorage, Storage};
pub use store::{HistoryEntry, InfoCore};

/// smartcore's dense matrix, for callers building training data.
pub use smartcore::linalg::basic::matrix::DenseMatrix;
