//! `dcpilot landscape …`: the landscape graph under `--data-dir/landscape/graph.json` (or a
//! file given with `--file`), for operators: import, export, and the questions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use dcpilot_info_core::landscape::formats::{self, history, networkx, ImportFormat};
use dcpilot_info_core::landscape::{LandscapeGraph, NodeFilter, NodeView, Subgraph, Walk};
use dcpilot_schemas::{Layer, Relation};
use serde_json::json;

/// `dcpilot landscape` subcommands.
#[derive(clap::Subcommand)]
pub enum LandscapeCommand {
    /// Add what a file describes to the landscape (all of it, or nothing).
    Import {
        /// networkx (Landscaper node-link JSON), kubernetes (`kubectl get … -o json`),
        /// hwloc (`lstopo --of xml`), calls (`Source,Target,Weight`), events (landscape
        /// events, JSON array or NDJSON).
        #[arg(long)]
        format: String,
        /// The file (`-` for stdin).
        input: PathBuf,
        /// hwloc: the host the topology is of (default: the XML's HostName).
        #[arg(long)]
        host: Option<String>,
        /// The time the file describes, for formats without times (Unix ms or RFC 3339;
        /// default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Write the landscape out: networkx (whole history, Landscaper's shape), dot (as of
    /// --at), history (dcpilot's own file).
    Export {
        /// networkx, dot or history.
        #[arg(long, default_value = "networkx")]
        format: String,
        /// Output file (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// As of when (dot; Unix ms or RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
        /// networkx: links name their ends by `index` (Landscaper) or `id` (networkx ≥ 2).
        #[arg(long, default_value = "index")]
        links: String,
    },
    /// A summary by layer and type, the nodes passing filters, or one node.
    Show {
        /// A node id or alias (default: the summary, or the filtered node list).
        node: Option<String>,
        /// As of when (Unix ms or RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
        /// Only this layer.
        #[arg(long)]
        layer: Option<String>,
        /// Only these types (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Only nodes with this label, `key=value` (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// With a node: also its telemetry from the tables in `--data-dir` (samples whose
        /// entity, host or workload is one of its names): latest values and a summary.
        #[arg(long)]
        telemetry: bool,
        /// The summary's window in seconds, ending at --at or the newest sample.
        #[arg(long, default_value_t = 900)]
        window: u64,
    },
    /// What lies below (or above) a node, to a depth.
    Subgraph {
        /// A node id or alias.
        node: String,
        /// Hops.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// down (along edges: contains, runs on, calls), up, or both.
        #[arg(long, default_value = "down")]
        walk: String,
        /// Only through these relations (repeatable).
        #[arg(long = "relation")]
        relations: Vec<String>,
        /// As of when.
        #[arg(long)]
        at: Option<String>,
    },
    /// The shortest paths between two nodes (edges walked either way).
    Path {
        /// From.
        from: String,
        /// To.
        to: String,
        /// As of when.
        #[arg(long)]
        at: Option<String>,
    },
    /// What fails when a node fails, across layers.
    Blast {
        /// A node id or alias.
        node: String,
        /// As of when.
        #[arg(long)]
        at: Option<String>,
    },
    /// What changed between two times.
    Diff {
        /// From (exclusive; Unix ms or RFC 3339).
        from: String,
        /// To (inclusive; default: now).
        to: Option<String>,
    },
}

/// The landscape file under a data directory.
pub fn graph_file(data_dir: &Path) -> PathBuf {
    data_dir.join("landscape").join(history::FILE_NAME)
}

/// A time argument: Unix milliseconds, or an RFC 3339 timestamp.
fn time_arg(flag: &str, text: Option<&str>) -> Result<i64> {
    let Some(text) = text else {
        return Ok(crate::now_ms());
    };
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .with_context(|| {
            format!(
                "{flag} {text:?}: not Unix milliseconds or an RFC 3339 time (2026-12-01T10:00:00Z)"
            )
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
fn open(path: &Path) -> Result<LandscapeGraph> {
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
    graph.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn parse_relations(names: &[String]) -> Result<Vec<Relation>> {
    names
        .iter()
        .map(|n| {
            Relation::parse(n).with_context(|| {
                let known: Vec<&str> = Relation::ALL.iter().map(|r| r.as_str()).collect();
                format!("--relation {n:?}: not one of {}", known.join(", "))
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

/// Writes to stdout; a closed pipe (`… | head`) ends the output quietly instead of
/// panicking.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing stdout"),
        _ => Ok(()),
    }
}

/// Prints `value` as JSON, or what `text` writes.
fn emit(
    json: bool,
    value: serde_json::Value,
    text: impl FnOnce(&mut String) -> std::fmt::Result,
) -> Result<ExitCode> {
    let mut out = String::new();
    if json {
        out = serde_json::to_string_pretty(&value)? + "\n";
    } else {
        text(&mut out)?;
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
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
        .context("starting the async runtime")?;
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

/// Runs a `dcpilot landscape` command on `file` (default: the data directory's).
pub fn run(
    data_dir: &Path,
    file: Option<PathBuf>,
    command: LandscapeCommand,
    json: bool,
) -> Result<ExitCode> {
    let path = file.unwrap_or_else(|| graph_file(data_dir));
    match command {
        LandscapeCommand::Import {
            format,
            input,
            host,
            at,
        } => {
            let Some(import) = ImportFormat::parse(&format) else {
                let known: Vec<&str> = ImportFormat::ALL.iter().map(|(n, _)| *n).collect();
                bail!("--format {format:?}: not one of {}", known.join(", "));
            };
            let mut graph = open(&path)?;
            let text = read_input(&input)?;
            let options = formats::ImportOptions {
                at_ms: time_arg("--at", at.as_deref())?,
                host,
            };
            let place = input.display().to_string();
            let events = formats::import_events(import, &text, &graph, &options)
                .map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
            let (nodes, edges) = (graph.node_count(), graph.edge_count());
            graph
                .apply_all(&events)
                .map_err(|e| anyhow::anyhow!("{place}: {e}; nothing was imported"))?;
            history::save(&graph, &path)?;
            let added = json!({
                "events": events.len(),
                "nodes_added": graph.node_count() - nodes,
                "edges_added": graph.edge_count() - edges,
                "file": path,
            });
            emit(json, added.clone(), |out| {
                writeln!(
                    out,
                    "imported {place}: {} events, {} new nodes, {} new edges → {}",
                    added["events"],
                    added["nodes_added"],
                    added["edges_added"],
                    path.display()
                )
            })
        }
        LandscapeCommand::Export {
            format,
            output,
            at,
            links,
        } => {
            let graph = open(&path)?;
            let text = match format.as_str() {
                "networkx" => {
                    let style = match links.as_str() {
                        "index" => networkx::LinkStyle::Index,
                        "id" => networkx::LinkStyle::Id,
                        other => bail!("--links {other:?}: not index or id"),
                    };
                    serde_json::to_string_pretty(&networkx::export(&graph, style))? + "\n"
                }
                "dot" => {
                    let t = time_arg("--at", at.as_deref())?;
                    formats::dot::export(&graph.at(t, &NodeFilter::default()))
                }
                "history" => history::to_json(&graph) + "\n",
                other => bail!("--format {other:?}: not networkx, dot or history"),
            };
            match output {
                Some(out) => std::fs::write(&out, text)
                    .with_context(|| format!("writing {}", out.display()))?,
                None => write_stdout(&text)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        LandscapeCommand::Show {
            node,
            at,
            layer,
            types,
            labels,
            telemetry,
            window,
        } => {
            let graph = open(&path)?;
            let t = time_arg("--at", at.as_deref())?;
            if let Some(name) = node {
                let ix = graph.node_at(&name, t)?;
                let view = graph.view(ix, t);
                if !telemetry {
                    return emit(true, json!(view), |_| Ok(()));
                }
                let mut names = vec![view.id.clone(), view.name.clone()];
                names.extend(view.aliases.iter().cloned());
                names.sort();
                names.dedup();
                let window_ms = i64::try_from(window.saturating_mul(1000)).unwrap_or(i64::MAX);
                let end = at.as_ref().map(|_| t);
                let metrics = node_telemetry(data_dir, &names, window_ms, end)?;
                return emit(true, json!({ "node": view, "telemetry": metrics }), |_| {
                    Ok(())
                });
            }
            let layer =
                match layer {
                    None => None,
                    Some(l) => Some(Layer::parse(&l).with_context(|| {
                        format!("--layer {l:?}: not physical, virtual or service")
                    })?),
                };
            let mut filter = NodeFilter {
                layer,
                types,
                ..NodeFilter::default()
            };
            for label in labels {
                let (k, v) = label
                    .split_once('=')
                    .with_context(|| format!("--label {label:?}: want key=value"))?;
                filter.labels.insert(k.to_string(), v.to_string());
            }
            if filter.layer.is_some() || !filter.types.is_empty() || !filter.labels.is_empty() {
                let view = graph.at(t, &filter);
                return emit(json, json!(view), |out| print_subgraph(out, &view));
            }
            let summary = graph.summary(t);
            emit(json, json!(summary), |out| write!(out, "{summary}"))
        }
        LandscapeCommand::Subgraph {
            node,
            depth,
            walk,
            relations,
            at,
        } => {
            let graph = open(&path)?;
            let walk = Walk::parse(&walk)
                .with_context(|| format!("--walk {walk:?}: not down, up or both"))?;
            let relations = parse_relations(&relations)?;
            let t = time_arg("--at", at.as_deref())?;
            let view = graph.subgraph(&node, walk, depth, &relations, t)?;
            emit(json, json!(view), |out| print_subgraph(out, &view))
        }
        LandscapeCommand::Path { from, to, at } => {
            let graph = open(&path)?;
            let t = time_arg("--at", at.as_deref())?;
            let paths = graph.paths(&from, &to, t)?;
            emit(json, json!({ "paths": paths }), |out| {
                if paths.is_empty() {
                    writeln!(out, "{from} and {to} are not connected")?;
                }
                for p in &paths {
                    writeln!(out, "{}", p.join(" — "))?;
                }
                Ok(())
            })
        }
        LandscapeCommand::Blast { node, at } => {
            let graph = open(&path)?;
            let t = time_arg("--at", at.as_deref())?;
            let affected = graph.blast_radius(&node, t)?;
            emit(json, json!({ "node": node, "affected": affected }), |out| {
                writeln!(out, "{} nodes fail with {node}:", affected.len())?;
                for a in &affected {
                    writeln!(
                        out,
                        "  {:>2} {} ({} {}) via {} {}",
                        a.depth, a.node.id, a.node.layer, a.node.node_type, a.via, a.relation
                    )?;
                }
                Ok(())
            })
        }
        LandscapeCommand::Diff { from, to } => {
            let graph = open(&path)?;
            let (from, to) = (
                time_arg("FROM", Some(&from))?,
                time_arg("TO", to.as_deref())?,
            );
            if to < from {
                bail!("TO ({to}) is before FROM ({from})");
            }
            let diff = graph.diff(from, to);
            emit(json, json!(diff), |out| {
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
    }
}
