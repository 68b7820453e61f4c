//! Names that cross crate and process boundaries, defined once: the default topics, the
//! models the foreground reads by name, the layout of a data directory, and well-known
//! metric names. Configuration may rename topics; these are the defaults.

use std::path::{Path, PathBuf};

/// Default topic names.
pub mod topics {
    /// Telemetry samples, any producer format (keyed by entity).
    pub const TELEMETRY: &str = "dcpilot.telemetry";
    /// Messages that could not be decoded, each with its reason.
    pub const TELEMETRY_DLQ: &str = "dcpilot.telemetry.dlq";
    /// Landscape changes (keyed, compacted).
    pub const LANDSCAPE: &str = "dcpilot.landscape";
    /// Model records (keyed by model name, compacted; one partition).
    pub const MODELS: &str = "dcpilot.models";
    /// Plans for actuators.
    pub const ACTIONS: &str = "dcpilot.actions";
    /// Job leases for a scaled-out background (one partition per job at least).
    pub const JOBS: &str = "dcpilot.jobs";
}

/// Models and colourings the loops read by name (each published by a built-in job of the
/// same name under `pipelines/jobs/`).
pub mod models {
    /// Per-workload CPU demand.
    pub const CPU_DEMAND: &str = "cpu-demand";
    /// Slowdown under co-runners, from hosts' measured counters.
    pub const SLOWDOWN: &str = "interference-slowdown";
    /// Slowdown under co-runners, from declared pods (hosts that report no counters).
    pub const SLOWDOWN_PODS: &str = "interference-slowdown-pods";
    /// The rule-of-thumb sizing table.
    pub const RIGHTSIZING: &str = "rightsizing";
    /// The landscape's colouring and ranked root causes.
    pub const COLOURING: &str = "landscape-colouring";
}

/// The layout of a data directory (`--data-dir`, `DCPILOT_DATA_DIR`).
pub mod data_dir {
    use super::{Path, PathBuf};

    /// The Information Core's directory.
    pub fn models(data_dir: &Path) -> PathBuf {
        data_dir.join("models")
    }

    /// The background's tables (live segments, Parquet archive).
    pub fn tables(data_dir: &Path) -> PathBuf {
        data_dir.join("tables")
    }

    /// The landscape's history file.
    pub fn landscape_graph(data_dir: &Path) -> PathBuf {
        data_dir.join("landscape").join(LANDSCAPE_GRAPH_FILE)
    }

    /// The file name of the landscape's history, under `landscape/`.
    pub const LANDSCAPE_GRAPH_FILE: &str = "graph.json";
    /// Where a background with an embedded broker writes the broker's address.
    pub const BROKER_ADDRESS_FILE: &str = "broker.addr";
    /// Where a foreground writes the address it serves on.
    pub const FOREGROUND_ADDRESS_FILE: &str = "foreground.addr";
}

/// The host counters Intel PCM's `pcm` writes per interval (its `-csv` system columns),
/// as metric names, always per second whatever the interval: instructions per cycle, L3
/// and L2 misses (millions per second), memory read and write traffic (GB per second),
/// and the cores' C0 residency (%).
pub const PCM_SYSTEM_METRICS: [(&str, &str); 6] = [
    ("System - IPC", "pcm_ipc"),
    ("System - L3MISS", "pcm_l3_misses_m"),
    ("System - L2MISS", "pcm_l2_misses_m"),
    ("System - READ", "pcm_mem_read_gbps"),
    ("System - WRITE", "pcm_mem_write_gbps"),
    ("System Core C-States - C0res%", "pcm_c0_residency_pct"),
];
