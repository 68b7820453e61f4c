//! `dcpilot jobs …`: arguments and dispatch; the work is `dcpilot_lab::tools::jobs`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use dcpilot_lab::tools::jobs;

/// `dcpilot jobs` subcommands.
#[derive(clap::Subcommand)]
pub enum JobsCommand {
    /// The registered jobs.
    List,
    /// Check spec files; every problem is reported with its file and key.
    Validate {
        /// Spec files (TOML).
        files: Vec<PathBuf>,
    },
    /// Train a job once, judge it against its baselines and the served model, and publish
    /// it to the Information Core in `--data-dir` if it wins.
    RunOnce {
        /// Job name, or the path of a spec file (`*.toml`) to run without registering it.
        name: String,
        /// Train on this trace directory (Bitbrains `*.csv` files, or NTUA runs with
        /// `Raw_Data/`) instead of the tables in `--data-dir`.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Judge the served version of a job's model live: on the rows whose truth arrived
    /// after its training window (the newest `live.window_secs`), next to its baselines;
    /// worse than the best one, it is demoted (the verdict is published as `<job>.live`).
    Judge {
        /// Job name, or the path of a spec file (`*.toml`).
        name: String,
        /// Judge on this trace directory instead of the tables in `--data-dir`.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Judge the served version of a job's model on other data, without training on it.
    Evaluate {
        /// Job name, or the path of a spec file (`*.toml`).
        name: String,
        /// Trace directory to judge on (as for `run-once`).
        #[arg(long)]
        data: PathBuf,
    },
}

/// Runs one `jobs` subcommand; returns what to print and whether it succeeded.
pub async fn run(
    data_dir: &Path,
    spec_dir: Option<PathBuf>,
    command: JobsCommand,
    json: bool,
) -> Result<(String, bool)> {
    let registry = || jobs::registry(spec_dir.clone());
    Ok(match command {
        JobsCommand::List => (jobs::list(&registry()?, json)?, true),
        JobsCommand::Validate { files } => jobs::validate(&files)?,
        JobsCommand::Evaluate { name, data } => (
            jobs::evaluate(&registry()?, data_dir, &name, &data, json).await?,
            true,
        ),
        JobsCommand::Judge { name, data } => (
            jobs::judge(&registry()?, data_dir, &name, data.as_deref(), json).await?,
            true,
        ),
        JobsCommand::RunOnce { name, data } => (
            jobs::run_once(&registry()?, data_dir, &name, data.as_deref(), json).await?,
            true,
        ),
    })
}
