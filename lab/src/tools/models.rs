//! `dcpilot models …`: the Information Core under a data directory, for operators. Each
//! function does one subcommand and returns what to print (text for people, or JSON).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dcpilot_info_core::live::LiveVerdict;
use dcpilot_info_core::{InfoCore, ModelRecord};
use serde::Serialize;

use crate::error::{Context, Result};

/// A model version in brief.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// Model name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// Model kind.
    pub kind: String,
    /// What it predicts.
    pub target: String,
    /// What it reads, in order.
    pub features: Vec<String>,
    /// Training rows.
    pub rows: u64,
    /// Training window.
    pub window: Window,
    /// Holdout error metric.
    pub metric: String,
    /// The model's holdout error.
    pub model_error: f64,
    /// The best baseline's holdout error.
    pub baseline_error: f64,
    /// The best baseline.
    pub baseline: String,
    /// The producing job.
    pub job: String,
    /// The job spec's hash.
    pub spec_hash: String,
    /// When it was published, ms since the epoch.
    pub created_at_ms: i64,
    /// The record's format version.
    pub format_version: u32,
    /// The record's checksum, hex.
    pub checksum: String,
}

/// A training window, ms since the epoch.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    /// First row.
    pub start_ms: i64,
    /// Last row.
    pub end_ms: i64,
}

impl ModelSummary {
    /// The summary of `r`.
    pub fn of(r: &ModelRecord) -> Self {
        Self {
            name: r.name.clone(),
            version: r.version,
            kind: r.kind.clone(),
            target: r.target.clone(),
            features: r.features.clone(),
            rows: r.rows,
            window: Window {
                start_ms: r.window.start_ms,
                end_ms: r.window.end_ms,
            },
            metric: r.metrics.metric.clone(),
            model_error: r.metrics.model_error,
            baseline_error: r.metrics.baseline_error,
            baseline: r.metrics.baseline.clone(),
            job: r.lineage.job.clone(),
            spec_hash: r.lineage.spec_hash.clone(),
            created_at_ms: r.created_at_ms,
            format_version: r.format_version,
            checksum: format!("{:08x}", r.checksum),
        }
    }
}

/// A predicting model as it is served.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    /// Model name.
    pub name: String,
    /// Version served.
    pub version: u64,
    /// Error metric.
    pub metric: String,
    /// Its holdout verdict.
    pub holdout: Holdout,
    /// `not judged live yet`, `demoted` or `serving`.
    pub state: &'static str,
    /// `model`, or the baseline answering for a demoted model.
    pub answered_by: Option<String>,
    /// The live verdict, if any.
    pub live: Option<LiveVerdict>,
}

/// A model's holdout errors.
#[derive(Debug, Clone, Serialize)]
pub struct Holdout {
    /// The model's.
    pub model_error: f64,
    /// The best baseline.
    pub baseline: String,
    /// Its error.
    pub baseline_error: f64,
}

/// The Information Core of a data directory, opened for a command.
pub struct Models {
    /// The store.
    pub store: InfoCore,
    /// Its directory.
    pub dir: PathBuf,
}

/// Opens the Information Core of `data_dir`; its problems (quarantined files) as warnings.
pub fn open(data_dir: &Path) -> Result<Models> {
    let dir = dcpilot_schemas::names::data_dir::models(data_dir);
    let store = InfoCore::open_dir(&dir)
        .with_context(|| format!("opening the Information Core in {}", dir.display()))?;
    for problem in store.problems() {
        eprintln!("warning: {problem} (quarantined; the previous good version is served)");
    }
    Ok(Models { store, dir })
}

fn to_json(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}

/// `models list`: every model's current version.
pub fn list(models: &Models, json: bool) -> Result<String> {
    let store = &models.store;
    let rows: Vec<ModelSummary> = store
        .names()
        .iter()
        .filter_map(|n| store.latest(n).ok())
        .map(|r| ModelSummary::of(&r))
        .collect();
    if json {
        return to_json(&rows);
    }
    if rows.is_empty() {
        return Ok(format!("no models in {}", models.dir.display()));
    }
    let mut text = format!(
        "{:<28} {:>7} {:<18} {:>6} {:>12} {:>12}  baseline\n",
        "name", "version", "kind", "metric", "model_error", "base_error"
    );
    for r in &rows {
        let _ = writeln!(
            text,
            "{:<28} {:>7} {:<18} {:>6} {:>12.4} {:>12.4}  {}",
            r.name, r.version, r.kind, r.metric, r.model_error, r.baseline_error, r.baseline
        );
    }
    Ok(text)
}

/// `models status`: every predicting model with its holdout and live errors.
pub fn status(models: &Models, json: bool) -> Result<String> {
    let snapshot = models.store.snapshot();
    let now = dcpilot_info_core::now_ms();
    let rows: Vec<ModelStatus> = snapshot
        .models()
        .filter(|(_, m)| {
            m.prepared.table().is_none()
                && m.prepared.colouring().is_none()
                && m.prepared.verdict().is_none()
        })
        .map(|(name, m)| {
            let verdict = snapshot.served_verdict(name);
            ModelStatus {
                name: name.to_string(),
                version: m.version(),
                metric: m.record.metrics.metric.clone(),
                holdout: Holdout {
                    model_error: m.record.metrics.model_error,
                    baseline: m.record.metrics.baseline.clone(),
                    baseline_error: m.record.metrics.baseline_error,
                },
                state: match verdict {
                    None => "not judged live yet",
                    Some(v) if v.demoted => "demoted",
                    Some(_) => "serving",
                },
                answered_by: snapshot.answerer(name, now).map(|a| a.answered_by()),
                live: verdict.cloned(),
            }
        })
        .collect();
    if json {
        return to_json(&rows);
    }
    if rows.is_empty() {
        return Ok(format!("no predicting models in {}", models.dir.display()));
    }
    let mut text = format!(
        "{:<24} {:>7} {:<6} {:>11} {:>11} {:>11} {:>7}  {:<20} state / answered by\n",
        "name", "version", "metric", "holdout", "live", "live base", "rows", "best baseline"
    );
    for r in &rows {
        let best = r.live.as_ref().and_then(|l| l.baselines.first());
        let _ = writeln!(
            text,
            "{:<24} {:>7} {:<6} {:>11.4} {:>11.4} {:>11.4} {:>7}  {:<20} {} / {}",
            r.name,
            r.version,
            r.metric,
            r.holdout.model_error,
            r.live.as_ref().map_or(f64::NAN, |l| l.model_error),
            best.map_or(f64::NAN, |b| b.error),
            r.live.as_ref().map_or(0, |l| l.rows),
            best.map_or("-", |b| b.name.as_str()),
            r.state,
            r.answered_by.as_deref().unwrap_or("-"),
        );
    }
    Ok(text)
}

/// `models show`: one version's record (default: the current one).
pub fn show(store: &InfoCore, name: &str, version: Option<u64>, json: bool) -> Result<String> {
    let record = match version {
        Some(v) => store.get(name, v)?,
        None => store.latest(name)?,
    };
    let summary = ModelSummary::of(&record);
    if json {
        return to_json(&summary);
    }
    let value = serde_json::to_value(&summary)?;
    let mut text = String::new();
    for (k, v) in value.as_object().into_iter().flatten() {
        let _ = writeln!(
            text,
            "{k:<15} {}",
            v.as_str().map_or_else(|| v.to_string(), str::to_string)
        );
    }
    Ok(text)
}

/// `models history`: publishes and rollbacks, oldest first.
pub fn history(store: &InfoCore, name: &str, json: bool) -> Result<String> {
    let history = store.history(name)?;
    if json {
        return to_json(&history);
    }
    let current = store.latest(name).ok().map(|r| r.version);
    let mut text = format!(
        "{:>5} {:<12} {:>7} {:<7} note\n",
        "seq", "action", "version", "stored"
    );
    for h in &history {
        let marker = if Some(h.version) == current && Some(h) == history.last() {
            "  ← current"
        } else {
            ""
        };
        let _ = writeln!(
            text,
            "{:>5} {:<12} {:>7} {:<7} {}{marker}",
            h.seq, h.action, h.version, h.stored, h.note
        );
    }
    Ok(text)
}

/// `models rollback`: serve `version` again.
pub fn rollback(
    store: &InfoCore,
    name: &str,
    version: u64,
    reason: &str,
    json: bool,
) -> Result<String> {
    let pointer = store.rollback(name, version, reason)?;
    if json {
        return to_json(&pointer);
    }
    Ok(format!(
        "{name}: now serving version {} (history step {})",
        pointer.version, pointer.seq
    ))
}

/// `models export`: a version (default: current) to a self-checking file.
pub fn export(
    store: &InfoCore,
    name: &str,
    version: Option<u64>,
    file: &Path,
    json: bool,
) -> Result<String> {
    let bytes = store.export(name, version)?;
    std::fs::write(file, bytes).with_context(|| format!("writing {}", file.display()))?;
    Ok(if json {
        String::new()
    } else {
        format!("exported {name} to {}", file.display())
    })
}

/// `models import`: an exported file as the next version of its model.
pub fn import(store: &InfoCore, file: &Path, json: bool) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let record = store.import(&bytes, &file.display().to_string())?;
    if json {
        return to_json(&ModelSummary::of(&record));
    }
    Ok(format!(
        "imported {} as version {}",
        record.name, record.version
    ))
}
