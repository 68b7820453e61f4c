//! The landscape's own file: its whole history (every node and edge with its spans and
//! versions) as JSON, written atomically, read back exactly.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::graph::StoredGraph;
use crate::{GraphError, LandscapeGraph};

/// The file format's version.
pub const FORMAT_VERSION: u32 = 1;

/// The file name under a data directory's `landscape/`.
pub const FILE_NAME: &str = dcpilot_schemas::names::data_dir::LANDSCAPE_GRAPH_FILE;

#[derive(Serialize, Deserialize)]
struct File {
    format_version: u32,
    #[serde(flatten)]
    graph: StoredGraph,
}

/// The graph as the history file's JSON.
pub fn to_json(graph: &LandscapeGraph) -> String {
    let file = File {
        format_version: FORMAT_VERSION,
        graph: graph.to_stored(),
    };
    serde_json::to_string(&file).expect("a landscape serializes")
}

/// Reads the history file's JSON.
pub fn from_json(text: &str) -> Result<LandscapeGraph, GraphError> {
    let file: File = serde_json::from_str(text)
        .map_err(|e| GraphError::format("landscape history", e.to_string()))?;
    if file.format_version != FORMAT_VERSION {
        return Err(GraphError::format(
            "landscape history",
            format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                file.format_version
            ),
        ));
    }
    LandscapeGraph::from_stored(file.graph)
}

/// Loads the graph from `path`; an absent file is an empty landscape.
pub fn load(path: &Path) -> Result<LandscapeGraph, GraphError> {
    match std::fs::read_to_string(path) {
        Ok(text) => from_json(&text).map_err(|e| GraphError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LandscapeGraph::new()),
        Err(e) => Err(GraphError::io(path)(e)),
    }
}

/// Saves the graph to `path` atomically (a temporary file renamed over it).
pub fn save(graph: &LandscapeGraph, path: &Path) -> Result<(), GraphError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(GraphError::io(dir))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, to_json(graph)).map_err(GraphError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(GraphError::io(path))
}
