//! What the landscape is read from and written to. Every loader turns its input into
//! landscape events (the same ones a producer may send on `dcpilot.landscape`), so a file
//! import and the topic feed one graph the same way; exporters read the graph as of a time.

pub mod calls;
pub mod dot;
pub mod history;
pub mod hwloc;
pub mod kubernetes;
pub mod networkx;
pub mod topic;

use dcpilot_schemas::{EdgeSpec, LandscapeEvent, NodeSpec};

use super::{GraphError, LandscapeGraph};

/// The import formats, by the name the CLI takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// networkx node-link JSON (Intel Landscaper's shape).
    Networkx,
    /// `kubectl get … -o json` (a `List` of nodes, pods, replica sets, deployments,
    /// services).
    Kubernetes,
    /// `lstopo --of xml` (hwloc 1.x or 2.x).
    Hwloc,
    /// `Source,Target,Weight` (Nezha's dependency and call-graph files).
    Calls,
    /// A list of landscape events (JSON array or NDJSON).
    Events,
}

impl ImportFormat {
    /// Every format with its CLI name.
    pub const ALL: [(&'static str, ImportFormat); 5] = [
        ("networkx", ImportFormat::Networkx),
        ("kubernetes", ImportFormat::Kubernetes),
        ("hwloc", ImportFormat::Hwloc),
        ("calls", ImportFormat::Calls),
        ("events", ImportFormat::Events),
    ];

    /// Reads a CLI name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == text).map(|(_, f)| *f)
    }
}

/// The export formats, by the name the CLI's `--format` and the API's `format=` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// networkx node-link JSON of the whole history (Intel Landscaper's shape).
    Networkx,
    /// Graphviz DOT of the graph as of a time.
    Dot,
    /// dcpilot's own history file (read back exactly).
    History,
}

impl ExportFormat {
    /// Every format with its name.
    pub const ALL: [(&'static str, ExportFormat); 3] = [
        ("networkx", ExportFormat::Networkx),
        ("dot", ExportFormat::Dot),
        ("history", ExportFormat::History),
    ];

    /// Reads a name; the error names the known ones.
    pub fn parse(text: &str) -> Result<Self, GraphError> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                GraphError::Invalid(format!(
                    "format {text:?} is not one of {}",
                    known.join(", ")
                ))
            })
    }

    /// The media type of the exported text.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Networkx | Self::History => "application/json",
            Self::Dot => "text/vnd.graphviz",
        }
    }

    /// `graph` in this format: DOT as of `at_ms`, networkx with links named `links`' way,
    /// ending in a newline.
    pub fn export(self, graph: &LandscapeGraph, at_ms: i64, links: networkx::LinkStyle) -> String {
        match self {
            Self::Networkx => {
                // A document of plain values always serialises.
                serde_json::to_string_pretty(&networkx::export(graph, links)).unwrap_or_default()
                    + "\n"
            }
            Self::Dot => dot::export(&graph.at(at_ms, &crate::NodeFilter::default())),
            Self::History => history::to_json(graph) + "\n",
        }
    }
}

/// How an import is done.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The time the import describes (Unix ms); files without times of their own are
    /// stamped with it.
    pub at_ms: i64,
    /// hwloc: the host the topology is of (else the XML's `HostName`).
    pub host: Option<String>,
}

/// Turns `text` in `format` into landscape events, in time order, ready to apply to
/// `graph` (some formats resolve names against what the graph already holds).
pub fn import_events(
    format: ImportFormat,
    text: &str,
    graph: &LandscapeGraph,
    options: &ImportOptions,
) -> Result<Vec<LandscapeEvent>, GraphError> {
    let mut events = match format {
        ImportFormat::Networkx => networkx::events(text)?,
        ImportFormat::Kubernetes => kubernetes::events(text, graph, options.at_ms)?,
        ImportFormat::Hwloc => hwloc::events(text, options.host.as_deref(), graph, options.at_ms)?,
        ImportFormat::Calls => calls::events(text, graph, options.at_ms)?,
        ImportFormat::Events => parse_events(text)?,
    };
    // History is written forward: apply in time order (stable, so a node's `node_up`
    // stays before the edges of the same instant).
    events.sort_by_key(LandscapeEvent::timestamp_ms);
    Ok(events)
}

/// A JSON array of events, or NDJSON; errors name the line or index and the field.
pub fn parse_events(text: &str) -> Result<Vec<LandscapeEvent>, GraphError> {
    parse_json_items(text, "events")
}

/// A JSON array of `what`, or NDJSON (one object alone is one line); errors name the line
/// or index (`what[i]`) and the field; no line at all is an error.
pub fn parse_json_items<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<Vec<T>, GraphError> {
    let one = |s: &str, place: String| -> Result<T, GraphError> {
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(s)).map_err(|e| {
            let at = e.path().to_string();
            let field = if at == "." {
                String::new()
            } else {
                format!("{at}: ")
            };
            GraphError::format(what, format!("{place}: {field}{}", e.inner()))
        })
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| GraphError::format(what, e.to_string()))?;
        return values
            .iter()
            .enumerate()
            .map(|(i, v)| one(&v.to_string(), format!("{what}[{i}]")))
            .collect();
    }
    let items: Vec<T> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| one(l, format!("line {}", i + 1)))
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err(GraphError::format(what, format!("no {what}")));
    }
    Ok(items)
}

/// The graph as it is now, as events stamped `timestamp_ms`: every live node, then every
/// live edge (replaying them rebuilds the live graph, without its history).
pub fn live_events(graph: &LandscapeGraph, timestamp_ms: i64) -> Vec<LandscapeEvent> {
    let mut events = Vec::with_capacity(graph.node_count() + graph.edge_count());
    for (_, node) in graph.nodes() {
        if node.lifetime.alive() {
            events.push(node_up(timestamp_ms, node.spec_at(i64::MAX)));
        }
    }
    for (_, source, target, edge) in graph.edges() {
        if edge.lifetime.alive() {
            let mut spec = EdgeSpec::new(
                graph.node(source).id.clone(),
                edge.relation,
                graph.node(target).id.clone(),
            );
            spec.weight = edge.version_at(i64::MAX).weight;
            events.push(edge_up(timestamp_ms, spec));
        }
    }
    events
}

pub(crate) fn node_up(timestamp_ms: i64, node: NodeSpec) -> LandscapeEvent {
    LandscapeEvent::NodeUp { timestamp_ms, node }
}

pub(crate) fn edge_up(timestamp_ms: i64, edge: EdgeSpec) -> LandscapeEvent {
    LandscapeEvent::EdgeUp { timestamp_ms, edge }
}
