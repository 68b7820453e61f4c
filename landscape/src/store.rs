//! [`GraphStore`]: the background's landscape graph, fed event by event by ingestion and
//! kept in the data directory's history file (`landscape/graph.json`) — what `dcpilot
//! landscape …` reads. Readers (the SQL tables, saving) work on immutable snapshots, so
//! neither holds up ingestion.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcpilot_schemas::LandscapeEvent;
use parking_lot::Mutex;

use super::formats::history;
use super::{GraphError, LandscapeGraph, SharedLandscape};

/// A landscape graph with a file it is saved to.
pub struct GraphStore {
    graph: SharedLandscape,
    dirty: AtomicBool,
    /// When it was last saved; held while saving, so saves do not overlap.
    saved: Mutex<Instant>,
    file: Option<PathBuf>,
}

impl GraphStore {
    /// The file it is saved to (`None`: memory only).
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// The graph in `file` (an absent file is an empty landscape), or a memory-only one.
    pub fn open(file: Option<PathBuf>) -> Result<Self, GraphError> {
        let graph = match &file {
            Some(path) => history::load(path)?,
            None => LandscapeGraph::new(),
        };
        Ok(Self {
            graph: SharedLandscape::new(graph),
            dirty: AtomicBool::new(false),
            saved: Mutex::new(Instant::now()),
            file,
        })
    }

    /// Applies the events the graph accepts, in order, and returns the refused ones (by
    /// position) with the reason; a refused event changes nothing. The file is due for a
    /// save only when something changed (a redelivery rewrites nothing).
    pub fn apply_each(&self, events: &[LandscapeEvent]) -> Vec<(usize, GraphError)> {
        let outcome = self.graph.apply_each(events);
        if outcome.changed {
            self.dirty.store(true, Ordering::Release);
        }
        outcome.refused
    }

    /// Reads the graph now (a snapshot: no lock is held).
    pub fn read<T>(&self, f: impl FnOnce(&LandscapeGraph) -> T) -> T {
        self.graph.read(f)
    }

    /// The graph now, as an immutable snapshot.
    pub fn graph(&self) -> Arc<LandscapeGraph> {
        self.graph.load()
    }

    /// Whether [`save_if_due`](Self::save_if_due) would write now (cheap: no I/O).
    pub fn save_due(&self, min_interval: Duration) -> bool {
        self.file.is_some()
            && self.dirty.load(Ordering::Acquire)
            && self
                .saved
                .try_lock()
                .is_some_and(|s| s.elapsed() >= min_interval)
    }

    /// Saves the graph if it changed and `min_interval` passed since the last save (so a
    /// busy topic does not rewrite the file per batch); `Duration::ZERO` saves any change.
    pub fn save_if_due(&self, min_interval: Duration) -> Result<bool, GraphError> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let mut saved = self.saved.lock();
        if !self.dirty.load(Ordering::Acquire) || saved.elapsed() < min_interval {
            return Ok(false);
        }
        // Cleared before the snapshot: a change landing meanwhile marks it dirty again.
        self.dirty.store(false, Ordering::Release);
        let snapshot = self.graph.load();
        if let Err(e) = history::save(&snapshot, file) {
            self.dirty.store(true, Ordering::Release);
            return Err(e);
        }
        *saved = Instant::now();
        Ok(true)
    }
}
