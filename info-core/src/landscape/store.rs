//! [`GraphStore`]: the background's landscape graph, fed event by event by ingestion and
//! kept in the data directory's history file (`landscape/graph.json`) — what `dcpilot
//! landscape …` reads.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dcpilot_schemas::LandscapeEvent;
use parking_lot::Mutex;

use super::formats::history;
use super::{Applied, GraphError, LandscapeGraph};
use crate::Result;

struct State {
    graph: LandscapeGraph,
    dirty: bool,
    saved: Instant,
}

/// A landscape graph with a file it is saved to.
pub struct GraphStore {
    state: Mutex<State>,
    file: Option<PathBuf>,
}

impl GraphStore {
    /// The graph in `file` (an absent file is an empty landscape), or a memory-only one.
    pub fn open(file: Option<PathBuf>) -> Result<Self> {
        let graph = match &file {
            Some(path) => history::load(path)?,
            None => LandscapeGraph::new(),
        };
        Ok(Self {
            state: Mutex::new(State {
                graph,
                dirty: false,
                saved: Instant::now(),
            }),
            file,
        })
    }

    /// Applies one event; a refused one changes nothing.
    pub fn apply(&self, event: &LandscapeEvent) -> Result<Applied, GraphError> {
        let mut state = self.state.lock();
        let applied = state.graph.apply_event(event)?;
        state.dirty |= applied != Applied::Unchanged;
        Ok(applied)
    }

    /// Reads the graph under its lock (for what must not copy it).
    pub fn read<T>(&self, f: impl FnOnce(&LandscapeGraph) -> T) -> T {
        f(&self.state.lock().graph)
    }

    /// A copy of the graph now.
    pub fn graph(&self) -> LandscapeGraph {
        self.state.lock().graph.clone()
    }

    /// Saves the graph if it changed and `min_interval` passed since the last save (so a
    /// busy topic does not rewrite the file per batch); `Duration::ZERO` saves any change.
    pub fn save_if_due(&self, min_interval: Duration) -> Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let mut state = self.state.lock();
        if !state.dirty || state.saved.elapsed() < min_interval {
            return Ok(false);
        }
        history::save(&state.graph, file)?;
        state.dirty = false;
        state.saved = Instant::now();
        Ok(true)
    }
}
