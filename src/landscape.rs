//! `dcpilot landscape …`: arguments and dispatch; the work is `dcpilot_lab::tools::landscape`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use dcpilot_lab::tools::landscape::{self, ShowQuery};

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

/// Runs a `dcpilot landscape` command on `file` (default: the data directory's); returns
/// what to print, or writes the export to its output file.
pub fn run(
    data_dir: &Path,
    file: Option<PathBuf>,
    command: LandscapeCommand,
    json: bool,
) -> Result<String> {
    let path = file.unwrap_or_else(|| landscape::graph_file(data_dir));
    Ok(match command {
        LandscapeCommand::Import {
            format,
            input,
            host,
            at,
        } => landscape::import(&path, &format, &input, host, at.as_deref(), json)?,
        LandscapeCommand::Export {
            format,
            output,
            at,
            links,
        } => {
            let text = landscape::export(&path, &format, at.as_deref(), &links)?;
            match output {
                Some(out) => {
                    std::fs::write(&out, text)
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
                    String::new()
                }
                None => text,
            }
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
            let query = ShowQuery {
                node,
                at,
                layer,
                types,
                labels,
                telemetry,
                window_secs: window,
            };
            landscape::show(&path, data_dir, query, json)?
        }
        LandscapeCommand::Subgraph {
            node,
            depth,
            walk,
            relations,
            at,
        } => landscape::subgraph(&path, &node, depth, &walk, &relations, at.as_deref(), json)?,
        LandscapeCommand::Path { from, to, at } => {
            landscape::paths(&path, &from, &to, at.as_deref(), json)?
        }
        LandscapeCommand::Blast { node, at } => {
            landscape::blast(&path, &node, at.as_deref(), json)?
        }
        LandscapeCommand::Diff { from, to } => landscape::diff(&path, &from, to.as_deref(), json)?,
    })
}
