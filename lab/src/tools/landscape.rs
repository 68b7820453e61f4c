//! `dcpilot landscape …`: the landscape graph in a data directory's history file (or any
//! landscape file), for operators: import, export, and the questions. Each function
//! returns what to print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dcpilot_landscape::formats::{self, history, networkx, ExportFormat, ImportFormat};
use dcpilot_landscape::{LandscapeGraph, NodeFilter, NodeView, Subgraph, Walk};
use dcpilot_schemas::{Layer, Relation};
use serde::Serialize;
use serde_json::json;

use crate::error::{Context, LabError, Result};

/// The landscape file under a data directory.
pub fn graph_file(data_dir: &Path) -> PathBuf {
    dcpilot_schemas::names::data_dir::landscape_graph(data_dir)
}

/// A time argument: Unix milliseconds, or an RFC 3339 timestamp.
fn time_arg(flag: &str, text: Option<&str>) -> Result<i64> {
    let Some(text) = text else {
        return Ok(dcpilot_info_core::now_ms());
    };
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "{flag} {text:?}: not Unix milliseconds or an RFC 3339 time (2026-12-01T10:00:00Z)"
            ))
        })
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Opens the landscape at `path`: dcpilot's history file, or a networkx file (read as it
/// is); an absent file is an empty landscape.
pub fn open(path: &Path) -> Result<LandscapeGraph> {
    if !path.exists() {
        return Ok(LandscapeGraph::new());
    }
    let text = read_input(path)?;
    let is_history = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("format_version").is_some());
    let graph = if is_history {
        history::from_json(&text)
    } else {
        networkx::events(&text).and_then(|events| {
            let mut graph = LandscapeGraph::new();
            graph.apply_all(&events).map(|_| graph)
        })
    };
    graph.with_context(|| path.display().to_string())
}

fn parse_relations(names: &[String]) -> Result<Vec<Relation>> {
    names
        .iter()
        .map(|n| {
            Relation::parse(n).ok_or_else(|| {
                let known: Vec<&str> = Relation::ALL.iter().map(|r| r.as_str()).collect();
                LabError::Invalid(format!("--relation {n:?}: not one of {}", known.join(", ")))
            })
        })
        .collect()
}

fn print_subgraph(out: &mut String, view: &Subgraph) -> std::fmt::Result {
    for node in &view.nodes {
        writeln!(out, "{} ({} {})", node.id, node.layer, node.node_type)?;
    }
    for edge in &view.edges {
        let weight = edge.weight.map(|w| format!(" [{w}]")).unwrap_or_default();
        writeln!(
            out,
            "  {} -{}-> {}{weight}",
            edge.source, edge.relation, edge.target
        )?;
    }
    Ok(())
}

/// `value` as JSON, or what `text` writes.
fn emit(
    json: bool,
    value: &impl Serialize,
    text: impl FnOnce(&mut String) -> std::fmt::Result,
) -> Result<String> {
    let mut out = String::new();
    if json {
        out = serde_json::to_string_pretty(value)? + "\n";
    } else {
        // Writing into a String cannot fail.
        let _ = text(&mut out);
    }
    Ok(out)
}

fn ids(nodes: &[NodeView]) -> String {
    nodes
        .iter()
        .map(|n| n.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The telemetry of a node from the tables in `data_dir` (read only, beside a running
/// background).
fn node_telemetry(
    data_dir: &Path,
    names: &[String],
    window_ms: i64,
    at_ms: Option<i64>,
) -> Result<Vec<dcpilot_background::annotate::MetricSummary>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::Stream)?;
    runtime.block_on(async {
        let config = dcpilot_background::BackgroundConfig::load(None)?;
        let store = dcpilot_background::TelemetryStore::open(
            Some(data_dir),
            &config.store,
            dcpilot_background::OpenMode::ReadOnly,
        )?;
        Ok(dcpilot_background::annotate::node_telemetry(&store, names, window_ms, at_ms).await?)
    })
}

/// What an import added.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// Events applied.
    pub events: usize,
    /// New nodes.
    pub nodes_added: usize,
    /// New edges.
    pub edges_added: usize,
    /// The landscape file written.
    pub file: PathBuf,
}

/// `landscape import`: what `input` describes in `format`, added to the landscape at
/// `path` whole or not at all.
pub fn import(
    path: &Path,
    format: &str,
    input: &Path,
    host: Option<String>,
    at: Option<&str>,
    json: bool,
) -> Result<String> {
    let Some(import) = ImportFormat::parse(format) else {
        let known: Vec<&str> = ImportFormat::ALL.iter().map(|(n, _)| *n).collect();
        return Err(LabError::Invalid(format!(
            "--format {format:?}: not one of {}",
            known.join(", ")
        )));
    };
    let mut graph = open(path)?;
    let text = read_input(input)?;
    let options = formats::ImportOptions {
        at_ms: time_arg("--at", at)?,
        host,
    };
    let place = input.display().to_string();
    let events =
        formats::import_events(import, &text, &graph, &options).with_context(|| place.clone())?;
    let (nodes, edges) = (graph.node_count(), graph.edge_count());
    graph
        .apply_all(&events)
        .map_err(|e| LabError::Invalid(format!("{place}: {e}; nothing was imported")))?;
    history::save(&graph, path)?;
    let added = Imported {
        events: events.len(),
        nodes_added: graph.node_count() - nodes,
        edges_added: graph.edge_count() - edges,
        file: path.to_path_buf(),
    };
    emit(json, &added, |out| {
        writeln!(
            out,
            "imported {place}: {} events, {} new nodes, {} new edges → {}",
            added.events,
            added.nodes_added,
            added.edges_added,
            path.display()
        )
    })
}

/// `landscape export`: the landscape at `path` in `format` (DOT as of `at`; networkx with
/// links by `index` or `id`).
pub fn export(path: &Path, format: &str, at: Option<&str>, links: &str) -> Result<String> {
    let format = ExportFormat::parse(format).map_err(|e| LabError::Invalid(format!("--{e}")))?;
    let graph = open(path)?;
    let (at_ms, style) = match format {
        ExportFormat::Dot => (time_arg("--at", at)?, networkx::LinkStyle::Index),
        ExportFormat::Networkx => match links {
            "index" => (0, networkx::LinkStyle::Index),
            "id" => (0, networkx::LinkStyle::Id),
            other => {
                return Err(LabError::Invalid(format!(
                    "--links {other:?}: not index or id"
                )))
            }
        },
        ExportFormat::History => (0, networkx::LinkStyle::Index),
    };
    Ok(format.export(&graph, at_ms, style))
}

/// What `landscape show` asks.
#[derive(Debug, Clone, Default)]
pub struct ShowQuery {
    /// A node id or alias (default: the summary, or the filtered node list).
    pub node: Option<String>,
    /// As of when (Unix ms or RFC 3339; default: now).
    pub at: Option<String>,
    /// Only this layer.
    pub layer: Option<String>,
    /// Only these types.
    pub types: Vec<String>,
    /// Only nodes with these labels, `key=value`.
    pub labels: Vec<String>,
    /// With a node: also its telemetry from the tables of the data directory.
    pub telemetry: bool,
    /// The telemetry summary's window in seconds.
    pub window_secs: u64,
}

/// `landscape show`: a summary by layer and type, the nodes passing filters, or one node
/// (always JSON), with its telemetry from the tables in `data_dir` if asked.
pub fn show(path: &Path, data_dir: &Path, q: ShowQuery, json: bool) -> Result<String> {
    let graph = open(path)?;
    let t = time_arg("--at", q.at.as_deref())?;
    if let Some(name) = q.node {
        let ix = graph.node_at(&name, t)?;
        let view = graph.view(ix, t);
        if !q.telemetry {
            return emit(true, &view, |_| Ok(()));
        }
        let mut names = vec![view.id.clone(), view.name.clone()];
        names.extend(view.aliases.iter().cloned());
        names.sort();
        names.dedup();
        let window_ms = i64::try_from(q.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let end = q.at.as_ref().map(|_| t);
        let metrics = node_telemetry(data_dir, &names, window_ms, end)?;
        return emit(true, &json!({ "node": view, "telemetry": metrics }), |_| {
            Ok(())
        });
    }
    let layer = match q.layer {
        None => None,
        Some(l) => Some(Layer::parse(&l).ok_or_else(|| {
            LabError::Invalid(format!("--layer {l:?}: not physical, virtual or service"))
        })?),
    };
    let mut filter = NodeFilter {
        layer,
        types: q.types,
        ..NodeFilter::default()
    };
    for label in q.labels {
        let (k, v) = label
            .split_once('=')
            .ok_or_else(|| LabError::Invalid(format!("--label {label:?}: want key=value")))?;
        filter.labels.insert(k.to_string(), v.to_string());
    }
    if filter.layer.is_some() || !filter.types.is_empty() || !filter.labels.is_empty() {
        let view = graph.at(t, &filter);
        return emit(json, &view, |out| print_subgraph(out, &view));
    }
    let summary = graph.summary(t);
    emit(json, &summary, |out| write!(out, "{summary}"))
}

/// `landscape subgraph`: what lies below (or above) `node`, to `depth` hops.
pub fn subgraph(
    path: &Path,
    node: &str,
    depth: usize,
    walk: &str,
    relations: &[String],
    at: Option<&str>,
    json: bool,
) -> Result<String> {
    let graph = open(path)?;
    let walk = Walk::parse(walk)
        .ok_or_else(|| LabError::Invalid(format!("--walk {walk:?}: not down, up or both")))?;
    let relations = parse_relations(relations)?;
    let t = time_arg("--at", at)?;
    let view = graph.subgraph(node, walk, depth, &relations, t)?;
    emit(json, &view, |out| print_subgraph(out, &view))
}

/// `landscape path`: the shortest paths between two nodes.
pub fn paths(path: &Path, from: &str, to: &str, at: Option<&str>, json: bool) -> Result<String> {
    let graph = open(path)?;
    let t = time_arg("--at", at)?;
    let paths = graph.paths(from, to, t)?;
    emit(json, &json!({ "paths": paths }), |out| {
        if paths.is_empty() {
            writeln!(out, "{from} and {to} are not connected")?;
        }
        for p in &paths {
            writeln!(out, "{}", p.join(" — "))?;
        }
        Ok(())
    })
}

/// `landscape blast`: what fails when `node` fails, across layers.
pub fn blast(path: &Path, node: &str, at: Option<&str>, json: bool) -> Result<String> {
    let graph = open(path)?;
    let t = time_arg("--at", at)?;
    let affected = graph.blast_radius(node, t)?;
    emit(
        json,
        &json!({ "node": node, "affected": affected }),
        |out| {
            writeln!(out, "{} nodes fail with {node}:", affected.len())?;
            for a in &affected {
                writeln!(
                    out,
                    "  {:>2} {} ({} {}) via {} {}",
                    a.depth, a.node.id, a.node.layer, a.node.node_type, a.via, a.relation
                )?;
            }
            Ok(())
        },
    )
}

/// `landscape diff`: what changed between two times.
pub fn diff(path: &Path, from: &str, to: Option<&str>, json: bool) -> Result<String> {
    let graph = open(path)?;
    let (from, to) = (time_arg("FROM", Some(from))?, time_arg("TO", to)?);
    if to < from {
        return Err(LabError::Invalid(format!(
            "TO ({to}) is before FROM ({from})"
        )));
    }
    let diff = graph.diff(from, to);
    emit(json, &diff, |out| {
        writeln!(out, "between {from} and {to} ms:")?;
        for (what, nodes) in [
            ("added", &diff.nodes_added),
            ("removed", &diff.nodes_removed),
            ("changed", &diff.nodes_changed),
        ] {
            writeln!(out, "  nodes {what} ({}): {}", nodes.len(), ids(nodes))?;
        }
        for (what, edges) in [
            ("added", &diff.edges_added),
            ("removed", &diff.edges_removed),
            ("changed", &diff.edges_changed),
        ] {
            writeln!(out, "  edges {what} ({}):", edges.len())?;
            for e in edges {
                writeln!(out, "    {} -{}-> {}", e.source, e.relation, e.target)?;
            }
        }
        Ok(())
    })
}
