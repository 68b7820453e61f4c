//! `dcpilot query`: SQL over the tables of a data directory, of every replica of a
//! scaled-out background, or of a trace directory held in memory.

use std::path::Path;

use dcpilot_background::{BackgroundConfig, OpenMode, TelemetryStore};

use crate::error::{LabError, Result};

/// Where the tables come from.
#[derive(Debug, Clone, Copy)]
pub enum Tables<'a> {
    /// The background's tables in a data directory (read only, beside a running one).
    DataDir(&'a Path),
    /// A trace directory (as `jobs run-once --data` reads it), in memory.
    Trace(&'a Path),
    /// Every replica's tables under a cluster's shared directory, as one.
    Shared(&'a Path),
}

/// Opens the tables.
pub fn open(tables: Tables<'_>) -> Result<TelemetryStore> {
    let store_config = || BackgroundConfig::load(None).map(|c| c.store);
    Ok(match tables {
        Tables::Trace(dir) => super::jobs::load_trace(dir)?,
        Tables::Shared(shared) => {
            if !shared.is_dir() {
                return Err(LabError::Invalid(format!(
                    "--shared-dir {}: not a directory",
                    shared.display()
                )));
            }
            let store = TelemetryStore::open(None, &store_config()?, OpenMode::ReadOnly)?;
            store.share(shared, None)?;
            store
        }
        Tables::DataDir(dir) => {
            TelemetryStore::open(Some(dir), &store_config()?, OpenMode::ReadOnly)?
        }
    })
}

/// Runs `sql`; the rows as a table for people, or as NDJSON.
pub async fn run(tables: Tables<'_>, sql: &str, json: bool) -> Result<String> {
    let store = open(tables)?;
    let batches = store.sql(sql).await?;
    Ok(if json {
        String::from_utf8_lossy(&dcpilot_background::json_lines(&batches)?).into_owned()
    } else {
        dcpilot_background::pretty(&batches)? + "\n"
    })
}
