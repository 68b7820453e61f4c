//! `dcpilot jobs …`: background jobs from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use dcpilot_background::{BackgroundConfig, JobsConfig, OpenMode, TelemetryStore};
use dcpilot_info_core::now_ms;
use dcpilot_info_core::InfoCore;
use dcpilot_pipelines::{
    evaluate_served, judge_live, run_once, Job, JobSpec, LiveChange, LiveReport, Registry,
    RunReport, SpecJob,
};
use dcpilot_schemas::traces::{read_trace, TraceFormat};

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
pub(crate) fn load_trace(dir: &Path) -> Result<TelemetryStore> {
    let trace = read_trace(trace_format(dir), dir)
        .with_context(|| format!("reading the trace in {}", dir.display()))?;
    if !trace.skipped.is_empty() {
        eprintln!("{}: {}", dir.display(), trace.skipped);
    }
    Ok(TelemetryStore::from_samples(&trace.samples)?)
}

/// A trace directory's tables, or (without one) the background's tables in `data_dir`.
fn tables_of(data_dir: &Path, trace: Option<&Path>) -> Result<TelemetryStore> {
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
fn print_live(report: &LiveReport) {
    let version = report.version.map_or_else(|| "-".into(), |v| v.to_string());
    println!("job              {} (version {version})", report.job);
    let Some(v) = &report.verdict else {
        println!(
            "no verdict       {}",
            report.pending.as_deref().unwrap_or_default()
        );
        return;
    };
    println!(
        "rows             {} (event time {} .. {} ms)",
        v.rows, v.from_ms, v.to_ms
    );
    let baselines = v
        .baselines
        .iter()
        .map(|b| (b.name.clone(), b.error))
        .collect();
    let best = v.best().map_or("-", |b| b.name.as_str());
    print_errors(&v.metric, v.model_error, None, &baselines, best);
    let state = if v.demoted { "DEMOTED" } else { "serving" };
    let change = match report.change {
        Some(LiveChange::Demoted) => " (changed: demoted)",
        Some(LiveChange::Repromoted) => " (changed: re-promoted)",
        None => "",
    };
    println!("verdict          {state}{change}: {}", v.summary());
    if let Some(fallback) = v.demoted.then(|| v.fallback()).flatten() {
        println!("answered by      baseline {} while demoted", fallback.name);
    }
    if let Some(published) = report.published_version {
        println!("published        {}.live v{published}", report.job);
    }
}

/// The metrics table: the model's error next to the champion's and each baseline's.
fn print_errors(
    metric: &str,
    model_error: f64,
    champion_error: Option<Option<f64>>,
    baselines: &std::collections::BTreeMap<String, f64>,
    best: &str,
) {
    println!("{:<28} {metric}", "error");
    println!("{:<28} {model_error:.4}", "model");
    if let Some(champion) = champion_error {
        match champion {
            Some(e) => println!("{:<28} {e:.4}", "champion (served)"),
            None => println!("{:<28} none", "champion (served)"),
        }
    }
    for (name, error) in baselines {
        let mark = if name == best {
            "  <- best baseline"
        } else {
            ""
        };
        println!("{:<28} {error:.4}{mark}", format!("baseline {name}"));
    }
}

fn print_report(r: &RunReport) {
    println!("job              {}", r.job);
    println!(
        "rows             {} train, {} holdout (newest by time)",
        r.train_rows, r.holdout_rows
    );
    if r.skipped_rows > 0 {
        println!(
            "rows left out    {} (e.g. {})",
            r.skipped_rows,
            r.skipped_examples.join("; ")
        );
    }
    print_errors(
        &r.metric,
        r.model_error,
        Some(r.champion_error),
        &r.baselines,
        &r.baseline,
    );
    match (r.published_version, &r.rejected) {
        (Some(v), _) => println!("published        version {v}"),
        (None, Some(why)) => println!("not published    {why}"),
        (None, None) => {}
    }
}

/// A registered job by name, or the job a spec file describes.
fn find_job(registry: &Registry, name: &str) -> Result<Arc<dyn Job>> {
    if name.ends_with(".toml") {
        let spec = JobSpec::load(Path::new(name)).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(Arc::new(SpecJob(spec)));
    }
    registry.get(name).with_context(|| {
        let names: Vec<String> = registry.jobs().map(|j| j.name().to_string()).collect();
        format!(
            "no job named {name:?} (registered: {}; or give a spec file path ending in .toml)",
            names.join(", ")
        )
    })
}

fn open_models(data_dir: &Path) -> Result<InfoCore> {
    let dir = crate::models::store_dir(data_dir);
    InfoCore::open_dir(&dir)
        .with_context(|| format!("opening the Information Core in {}", dir.display()))
}

/// Runs one `jobs` subcommand.
pub async fn run(
    data_dir: &Path,
    spec_dir: Option<PathBuf>,
    command: JobsCommand,
    as_json: bool,
) -> Result<ExitCode> {
    let registry = || {
        JobsConfig {
            spec_dir: spec_dir.clone(),
            ..JobsConfig::default()
        }
        .registry()
    };
    match command {
        JobsCommand::List => {
            let registry = registry()?;
            for job in registry.jobs() {
                let spec = job.spec();
                if as_json {
                    println!("{}", serde_json::to_string(spec)?);
                } else {
                    println!("{:<24} {}", spec.name, spec.description);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Validate { files } => {
            if files.is_empty() {
                bail!("give at least one spec file");
            }
            let mut bad = 0;
            for file in &files {
                match JobSpec::load(file) {
                    Ok(spec) => println!("{}: ok ({})", file.display(), spec.name),
                    Err(e) => {
                        bad += 1;
                        for problem in &e.problems {
                            println!("{problem}");
                        }
                    }
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        JobsCommand::Evaluate { name, data } => {
            let registry = registry()?;
            let job = find_job(&registry, &name)?;
            let tables = load_trace(&data)?;
            let store = open_models(data_dir)?;
            let report = evaluate_served(job.as_ref(), tables.context(), &store).await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "job              {} (version {})",
                    report.job, report.version
                );
                println!("rows             {}", report.rows);
                print_errors(
                    &report.metric,
                    report.model_error,
                    None,
                    &report.baselines,
                    &report.baseline,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Judge { name, data } => {
            let registry = registry()?;
            let job = find_job(&registry, &name)?;
            let tables = tables_of(data_dir, data.as_deref())?;
            let store = open_models(data_dir)?;
            let report = judge_live(job.as_ref(), tables.context(), &store, now_ms()).await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_live(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::RunOnce { name, data } => {
            let registry = registry()?;
            let job = find_job(&registry, &name)?;
            let tables = tables_of(data_dir, data.as_deref())?;
            let store = open_models(data_dir)?;
            let report = run_once(job, tables.context(), &store).await?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
