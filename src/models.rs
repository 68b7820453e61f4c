//! `dcpilot models …`: the Information Core under `--data-dir/models`, for operators.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use dcpilot_info_core::{InfoCore, ModelRecord};
use serde_json::json;

/// `dcpilot models` subcommands.
#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// Every model with its current version and holdout error.
    List,
    /// Every predicting model: its holdout error, its live error on rows it never saw next
    /// to its best baseline's, and whether it is demoted (answered by that baseline).
    Status,
    /// One version's record (default: the current one).
    Show {
        /// Model name.
        name: String,
        /// Version (default: current).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Publishes and rollbacks of a model, oldest first.
    History {
        /// Model name.
        name: String,
    },
    /// Serve an earlier version again (recorded as a new pointer; nothing is rewritten).
    Rollback {
        /// Model name.
        name: String,
        /// Version to serve.
        version: u64,
        /// Why, kept in the history.
        #[arg(long, default_value = "manual rollback")]
        reason: String,
    },
    /// Write a version (default: current) to a self-checking file.
    Export {
        /// Model name.
        name: String,
        /// Output file.
        file: PathBuf,
        /// Version (default: current).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Publish an exported file as the next version of its model.
    Import {
        /// File written by `export`.
        file: PathBuf,
    },
}

/// The Information Core directory under a data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

fn summary(r: &ModelRecord) -> serde_json::Value {
    json!({
        "name": r.name,
        "version": r.version,
        "kind": r.kind,
        "target": r.target,
        "features": r.features,
        "rows": r.rows,
        "window": {"start_ms": r.window.start_ms, "end_ms": r.window.end_ms},
        "metric": r.metrics.metric,
        "model_error": r.metrics.model_error,
        "baseline_error": r.metrics.baseline_error,
        "baseline": r.metrics.baseline,
        "job": r.lineage.job,
        "spec_hash": r.lineage.spec_hash,
        "created_at_ms": r.created_at_ms,
        "format_version": r.format_version,
        "checksum": format!("{:08x}", r.checksum),
    })
}

/// Runs one `models` subcommand.
pub fn run(data_dir: &Path, command: ModelsCommand, as_json: bool) -> Result<ExitCode> {
    let dir = store_dir(data_dir);
    let store = InfoCore::open_dir(&dir)
        .with_context(|| format!("opening the Information Core in {}", dir.display()))?;
    for problem in store.problems() {
        eprintln!("warning: {problem} (quarantined; the previous good version is served)");
    }
    match command {
        ModelsCommand::List => {
            let rows: Vec<_> = store
                .names()
                .iter()
                .filter_map(|n| store.latest(n).ok())
                .map(|r| summary(&r))
                .collect();
            if as_json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no models in {}", dir.display());
            } else {
                println!(
                    "{:<28} {:>7} {:<18} {:>6} {:>12} {:>12}  baseline",
                    "name", "version", "kind", "metric", "model_error", "base_error"
                );
                for r in &rows {
                    println!(
                        "{:<28} {:>7} {:<18} {:>6} {:>12.4} {:>12.4}  {}",
                        r["name"].as_str().unwrap_or_default(),
                        r["version"],
                        r["kind"].as_str().unwrap_or_default(),
                        r["metric"].as_str().unwrap_or_default(),
                        r["model_error"].as_f64().unwrap_or(f64::NAN),
                        r["baseline_error"].as_f64().unwrap_or(f64::NAN),
                        r["baseline"].as_str().unwrap_or_default(),
                    );
                }
            }
        }
        ModelsCommand::Status => {
            let snapshot = store.snapshot();
            let rows: Vec<_> = snapshot
                .models()
                .filter(|(_, m)| {
                    m.prepared.table().is_none()
                        && m.prepared.colouring().is_none()
                        && m.prepared.verdict().is_none()
                })
                .map(|(name, m)| {
                    let verdict = snapshot.served_verdict(name);
                    let answerer = snapshot.answerer(name, dcpilot_info_core::now_ms());
                    json!({
                        "name": name,
                        "version": m.version(),
                        "metric": m.record.metrics.metric,
                        "holdout": {"model_error": m.record.metrics.model_error,
                                    "baseline": m.record.metrics.baseline,
                                    "baseline_error": m.record.metrics.baseline_error},
                        "state": match verdict {
                            None => "not judged live yet",
                            Some(v) if v.demoted => "demoted",
                            Some(_) => "serving",
                        },
                        "answered_by": answerer.map(|a| a.answered_by()),
                        "live": verdict,
                    })
                })
                .collect();
            if as_json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no predicting models in {}", dir.display());
            } else {
                println!(
                    "{:<24} {:>7} {:<6} {:>11} {:>11} {:>11} {:>7}  {:<20} state / answered by",
                    "name",
                    "version",
                    "metric",
                    "holdout",
                    "live",
                    "live base",
                    "rows",
                    "best baseline"
                );
                for r in &rows {
                    let live = &r["live"];
                    let best = live["baselines"].get(0);
                    println!(
                        "{:<24} {:>7} {:<6} {:>11.4} {:>11.4} {:>11.4} {:>7}  {:<20} {} / {}",
                        r["name"].as_str().unwrap_or_default(),
                        r["version"],
                        r["metric"].as_str().unwrap_or_default(),
                        r["holdout"]["model_error"].as_f64().unwrap_or(f64::NAN),
                        live["model_error"].as_f64().unwrap_or(f64::NAN),
                        best.and_then(|b| b["error"].as_f64()).unwrap_or(f64::NAN),
                        live["rows"].as_u64().unwrap_or(0),
                        best.and_then(|b| b["name"].as_str()).unwrap_or("-"),
                        r["state"].as_str().unwrap_or_default(),
                        r["answered_by"].as_str().unwrap_or("-"),
                    );
                }
            }
        }
        ModelsCommand::Show { name, version } => {
            let record = match version {
                Some(v) => store.get(&name, v)?,
                None => store.latest(&name)?,
            };
            let value = summary(&record);
            if as_json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else if let Some(fields) = value.as_object() {
                for (k, v) in fields {
                    println!(
                        "{k:<15} {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    );
                }
            }
        }
        ModelsCommand::History { name } => {
            let history = store.history(&name)?;
            let current = store.latest(&name).ok().map(|r| r.version);
            if as_json {
                println!("{}", serde_json::to_string_pretty(&history)?);
            } else {
                println!(
                    "{:>5} {:<12} {:>7} {:<7} note",
                    "seq", "action", "version", "stored"
                );
                for h in &history {
                    let marker = if Some(h.version) == current && Some(h) == history.last() {
                        "  ← current"
                    } else {
                        ""
                    };
                    println!(
                        "{:>5} {:<12} {:>7} {:<7} {}{marker}",
                        h.seq, h.action, h.version, h.stored, h.note
                    );
                }
            }
        }
        ModelsCommand::Rollback {
            name,
            version,
            reason,
        } => {
            let pointer = store.rollback(&name, version, &reason)?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&pointer)?);
            } else {
                println!(
                    "{name}: now serving version {} (history step {})",
                    pointer.version, pointer.seq
                );
            }
        }
        ModelsCommand::Export {
            name,
            file,
            version,
        } => {
            let bytes = store.export(&name, version)?;
            std::fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
            if !as_json {
                println!("exported {name} to {}", file.display());
            }
        }
        ModelsCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let record = store.import(&bytes, &file.display().to_string())?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&summary(&record))?);
            } else {
                println!("imported {} as version {}", record.name, record.version);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
