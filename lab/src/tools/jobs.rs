//! `dcpilot jobs …`: background jobs from the command line — list, validate, train once,
//! judge live, evaluate on other data. Each function returns what to print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dcpilot_background::{BackgroundConfig, JobsConfig, OpenMode, TelemetryStore};
use dcpilot_info_core::{now_ms, InfoCore};
use dcpilot_pipelines::{
    evaluate_served, judge_live, Job, JobSpec, LiveChange, LiveReport, Registry, RunReport, SpecJob,
};

use crate::datasets::{read_trace, TraceFormat};
use crate::error::{Context, LabError, Result};

fn trace_format(dir: &Path) -> TraceFormat {
    let ntua = dir.join("Raw_Data").is_dir()
        || dir.file_name().is_some_and(|n| n == "Raw_Data")
        || dir.join("Profiling").is_dir();
    if ntua {
        TraceFormat::Ntua
    } else {
        TraceFormat::Bitbrains
    }
}

/// Memory-only tables holding a trace directory; what could not be read is said on
/// stderr.
pub fn load_trace(dir: &Path) -> Result<TelemetryStore> {
    let trace = read_trace(trace_format(dir), dir)
        .with_context(|| format!("reading the trace in {}", dir.display()))?;
    if !trace.skipped.is_empty() {
        eprintln!("{}: {}", dir.display(), trace.skipped);
    }
    Ok(TelemetryStore::from_samples(&trace.samples)?)
}

/// A trace directory's tables, or (without one) the background's tables in `data_dir`.
pub fn tables_of(data_dir: &Path, trace: Option<&Path>) -> Result<TelemetryStore> {
    Ok(match trace {
        Some(dir) => load_trace(dir)?,
        None => TelemetryStore::open(
            Some(data_dir),
            &BackgroundConfig::default().store,
            OpenMode::ReadOnly,
        )?,
    })
}

/// A live judgement, for people.
fn live_text(out: &mut String, report: &LiveReport) {
    let version = report.version.map_or_else(|| "-".into(), |v| v.to_string());
    let _ = writeln!(out, "job              {} (version {version})", report.job);
    let Some(v) = &report.verdict else {
        let _ = writeln!(
            out,
            "no verdict       {}",
            report.pending.as_deref().unwrap_or_default()
        );
        return;
    };
    let _ = writeln!(
        out,
        "rows             {} (event time {} .. {} ms)",
        v.rows, v.from_ms, v.to_ms
    );
    let baselines = v
        .baselines
        .iter()
        .map(|b| (b.name.clone(), b.error))
        .collect();
    let best = v.best().map_or("-", |b| b.name.as_str());
    errors_text(out, &v.metric, v.model_error, None, &baselines, best);
    let state = if v.demoted { "DEMOTED" } else { "serving" };
    let change = match report.change {
        Some(LiveChange::Demoted) => " (changed: demoted)",
        Some(LiveChange::Repromoted) => " (changed: re-promoted)",
        None => "",
    };
    let _ = writeln!(out, "verdict          {state}{change}: {}", v.summary());
    if let Some(fallback) = v.demoted.then(|| v.fallback()).flatten() {
        let _ = writeln!(
            out,
            "answered by      baseline {} while demoted",
            fallback.name
        );
    }
    if let Some(published) = report.published_version {
        let _ = writeln!(out, "published        {}.live v{published}", report.job);
    }
}

/// The metrics table: the model's error next to the champion's and each baseline's.
fn errors_text(
    out: &mut String,
    metric: &str,
    model_error: f64,
    champion_error: Option<Option<f64>>,
    baselines: &std::collections::BTreeMap<String, f64>,
    best: &str,
) {
    let _ = writeln!(out, "{:<28} {metric}", "error");
    let _ = writeln!(out, "{:<28} {model_error:.4}", "model");
    if let Some(champion) = champion_error {
        match champion {
            Some(e) => _ = writeln!(out, "{:<28} {e:.4}", "champion (served)"),
            None => _ = writeln!(out, "{:<28} none", "champion (served)"),
        }
    }
    for (name, error) in baselines {
        let mark = if name == best {
            "  <- best baseline"
        } else {
            ""
        };
        let _ = writeln!(out, "{:<28} {error:.4}{mark}", format!("baseline {name}"));
    }
}

fn run_text(out: &mut String, r: &RunReport) {
    let _ = writeln!(out, "job              {}", r.job);
    let _ = writeln!(
        out,
        "rows             {} train, {} holdout (newest by time)",
        r.train_rows, r.holdout_rows
    );
    if r.skipped_rows > 0 {
        let _ = writeln!(
            out,
            "rows left out    {} (e.g. {})",
            r.skipped_rows,
            r.skipped_examples.join("; ")
        );
    }
    errors_text(
        out,
        &r.metric,
        r.model_error,
        Some(r.champion_error),
        &r.baselines,
        &r.baseline,
    );
    match (r.published_version, &r.rejected) {
        (Some(v), _) => _ = writeln!(out, "published        version {v}"),
        (None, Some(why)) => _ = writeln!(out, "not published    {why}"),
        (None, None) => {}
    }
}

/// A registered job by name, or the job a spec file describes.
pub fn find_job(registry: &Registry, name: &str) -> Result<Arc<dyn Job>> {
    if name.ends_with(".toml") {
        let spec = JobSpec::load(Path::new(name)).map_err(|e| LabError::Invalid(e.to_string()))?;
        return Ok(Arc::new(SpecJob(spec)));
    }
    registry.get(name).ok_or_else(|| {
        let names: Vec<String> = registry.jobs().map(|j| j.name().to_string()).collect();
        LabError::Invalid(format!(
            "no job named {name:?} (registered: {}; or give a spec file path ending in .toml)",
            names.join(", ")
        ))
    })
}

fn open_models(data_dir: &Path) -> Result<InfoCore> {
    let dir = dcpilot_schemas::names::data_dir::models(data_dir);
    InfoCore::open_dir(&dir)
        .with_context(|| format!("opening the Information Core in {}", dir.display()))
}

/// The registry with every built-in job and, if given, the specs in `spec_dir`.
pub fn registry(spec_dir: Option<PathBuf>) -> Result<Registry> {
    Ok(JobsConfig {
        spec_dir,
        ..JobsConfig::default()
    }
    .registry()?)
}

/// `jobs list`: the registered jobs (JSON: one spec per line).
pub fn list(registry: &Registry, json: bool) -> Result<String> {
    let mut out = String::new();
    for job in registry.jobs() {
        let spec = job.spec();
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(spec)?);
        } else {
            let _ = writeln!(out, "{:<24} {}", spec.name, spec.description);
        }
    }
    Ok(out)
}

/// `jobs validate`: every problem of every file, with its file and key; whether all are
/// valid.
pub fn validate(files: &[PathBuf]) -> Result<(String, bool)> {
    if files.is_empty() {
        return Err(LabError::Invalid("give at least one spec file".into()));
    }
    let mut out = String::new();
    let mut valid = true;
    for file in files {
        match JobSpec::load(file) {
            Ok(spec) => {
                let _ = writeln!(out, "{}: ok ({})", file.display(), spec.name);
            }
            Err(e) => {
                valid = false;
                for problem in &e.problems {
                    let _ = writeln!(out, "{problem}");
                }
            }
        }
    }
    Ok((out, valid))
}

/// `jobs evaluate`: the served model of `name` judged on the trace directory `data`.
pub async fn evaluate(
    registry: &Registry,
    data_dir: &Path,
    name: &str,
    data: &Path,
    json: bool,
) -> Result<String> {
    let job = find_job(registry, name)?;
    let tables = load_trace(data)?;
    let store = open_models(data_dir)?;
    let report = evaluate_served(job.as_ref(), tables.context(), &store).await?;
    if json {
        return Ok(serde_json::to_string_pretty(&report)?);
    }
    let mut out = format!(
        "job              {} (version {})\nrows             {}\n",
        report.job, report.version, report.rows
    );
    errors_text(
        &mut out,
        &report.metric,
        report.model_error,
        None,
        &report.baselines,
        &report.baseline,
    );
    Ok(out)
}

/// The job `name`, the tables it reads (a trace directory's, or the data directory's) and
/// the data directory's Information Core.
fn job_tables_models(
    registry: &Registry,
    data_dir: &Path,
    name: &str,
    data: Option<&Path>,
) -> Result<(Arc<dyn Job>, TelemetryStore, InfoCore)> {
    Ok((
        find_job(registry, name)?,
        tables_of(data_dir, data)?,
        open_models(data_dir)?,
    ))
}

/// `report` as JSON, or as `text` writes it.
fn render<T: serde::Serialize>(
    report: &T,
    json: bool,
    text: fn(&mut String, &T),
) -> Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(report)?);
    }
    let mut out = String::new();
    text(&mut out, report);
    Ok(out)
}

/// `jobs judge`: the served model of `name` judged live (a verdict published).
pub async fn judge(
    registry: &Registry,
    data_dir: &Path,
    name: &str,
    data: Option<&Path>,
    json: bool,
) -> Result<String> {
    let (job, tables, store) = job_tables_models(registry, data_dir, name, data)?;
    let report = judge_live(job.as_ref(), tables.context(), &store, now_ms()).await?;
    render(&report, json, live_text)
}

/// `jobs run-once`: train `name` once, judge it, publish it if it wins.
pub async fn run_once(
    registry: &Registry,
    data_dir: &Path,
    name: &str,
    data: Option<&Path>,
    json: bool,
) -> Result<String> {
    let (job, tables, store) = job_tables_models(registry, data_dir, name, data)?;
    let report = dcpilot_pipelines::run_once(job, tables.context(), &store).await?;
    render(&report, json, run_text)
}
