//! `dcpilot models …`: arguments and dispatch; the work is `dcpilot_lab::tools::models`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use dcpilot_lab::tools::models;

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

/// Runs one `models` subcommand; returns what to print.
pub fn run(data_dir: &Path, command: ModelsCommand, json: bool) -> Result<String> {
    let m = models::open(data_dir)?;
    Ok(match command {
        ModelsCommand::List => models::list(&m, json)?,
        ModelsCommand::Status => models::status(&m, json)?,
        ModelsCommand::Show { name, version } => models::show(&m.store, &name, version, json)?,
        ModelsCommand::History { name } => models::history(&m.store, &name, json)?,
        ModelsCommand::Rollback {
            name,
            version,
            reason,
        } => models::rollback(&m.store, &name, version, &reason, json)?,
        ModelsCommand::Export {
            name,
            file,
            version,
        } => models::export(&m.store, &name, version, &file, json)?,
        ModelsCommand::Import { file } => models::import(&m.store, &file, json)?,
    })
}
