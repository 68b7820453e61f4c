//! `dcpilot anomalies …`: the landscape's colouring and root-cause ranking on a trace
//! directory held in memory, for data scientists and for judging the method.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use anyhow::{Context, Result};
use dcpilot_background::config::KafkaConfig;
use dcpilot_background::replay::send_waiting;
use dcpilot_info_core::anomaly::{detect, native, nezha, RankParams, Window};
use dcpilot_schemas::traces::TraceFormat;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;

/// `dcpilot anomalies` subcommands.
#[derive(clap::Subcommand)]
pub enum AnomaliesCommand {
    /// The ranking of root-cause candidates for one moment, best first, with evidence.
    Rank {
        /// The moment (Unix seconds): behaviour from it on is judged against before it.
        #[arg(long)]
        at: i64,
        /// How many candidates to print (JSON prints them all).
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// AC@1, AC@3, AC@5 and Avg@5 over every labelled fault, next to naive rankers.
    Evaluate,
    /// Writes the trace as a native trace directory (telemetry.ndjson, landscape.ndjson,
    /// faults.json), e.g. to replay it or to edit its labels.
    Export {
        /// The directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The method a command judges with: a colouring job's detector, windows and weights.
pub struct Method {
    detector: std::sync::Arc<dyn detect::Detector>,
    window: Window,
    params: RankParams,
}

/// The colouring job the background runs by default.
const DEFAULT_JOB: &str = "landscape-colouring";

impl Method {
    /// The method of `job` (a spec file, or a built-in job's name; default: the built-in
    /// colouring job), its detector replaced by `detector` if given.
    pub fn of(job: Option<&str>, detector: Option<&str>) -> Result<Self> {
        let name = job.unwrap_or(DEFAULT_JOB);
        let registry = dcpilot_pipelines::Registry::builtin()?;
        // A built-in job's name wins over a file of that name in the working directory.
        let spec = if registry.get(name).is_none() && Path::new(name).is_file() {
            dcpilot_pipelines::JobSpec::load(Path::new(name))?
        } else {
            let known: Vec<&str> = registry
                .jobs()
                .filter(|j| j.spec().model.is_colouring())
                .map(|j| j.name())
                .collect();
            registry
                .get(name)
                .map(|j| j.spec().clone())
                .with_context(|| {
                    format!(
                        "--job {name}: no such file and no such built-in job (colouring jobs: {})",
                        known.join(", ")
                    )
                })?
        };
        let dcpilot_pipelines::ModelSpec::Colouring {
            detector: spec_detector,
            window,
            rank,
            ..
        } = spec.model
        else {
            anyhow::bail!("--job {name}: {} is not a colouring job", spec.name);
        };
        let detector = detector.unwrap_or(&spec_detector);
        Ok(Self {
            detector: detect::by_name(detector).map_err(anyhow::Error::msg)?,
            window,
            params: rank,
        })
    }
}

/// Runs a subcommand on the trace directory `data` (the Nezha or the native format).
pub fn run(
    data: &Path,
    method: &Method,
    command: AnomaliesCommand,
    json_out: bool,
) -> Result<ExitCode> {
    let trace = load(data)?;
    let (detector, window, params) = (&method.detector, method.window, method.params);
    let out = match command {
        AnomaliesCommand::Rank { at, top } => {
            let colouring = nezha::rank_at(&trace, at, detector.as_ref(), &window, &params);
            if json_out {
                let mut problems = trace.problems.clone();
                problems.extend(colouring.problems.iter().cloned());
                serde_json::to_string_pretty(&json!({
                    "at": at,
                    "detector": colouring.detector,
                    "ranking": colouring.ranking,
                    "entities": colouring.entities,
                    "problems": problems,
                }))?
            } else {
                let mut text = format!(
                    "root-cause candidates at {at} ({}), best first:\n",
                    colouring.detector
                );
                for (i, c) in colouring.ranking.iter().take(top).enumerate() {
                    let metrics: Vec<String> = c
                        .evidence
                        .metrics
                        .iter()
                        .map(|m| format!("{} {:+.1}σ", m.metric, m.score.deviation))
                        .collect();
                    let _ = write!(
                        text,
                        "{:>3}. {:<32} {:<8} score {:>6.2}  {}",
                        i + 1,
                        c.entity,
                        c.kind,
                        c.score,
                        metrics.join(", ")
                    );
                    if let Some(by) = &c.evidence.explained_by {
                        let _ = write!(
                            text,
                            "  (explained by {} -{}-> {})",
                            by.from, by.relation, by.to
                        );
                    }
                    if !c.evidence.explains.is_empty() {
                        let who: Vec<&str> = c
                            .evidence
                            .explains
                            .iter()
                            .map(|l| l.from.as_str())
                            .collect();
                        let _ = write!(text, "  (explains {})", who.join(", "));
                    }
                    text.push('\n');
                }
                for p in trace.problems.iter().chain(&colouring.problems) {
                    let _ = writeln!(text, "note: {p}");
                }
                text
            }
        }
        AnomaliesCommand::Export { out } => {
            native::write(&trace, &out).with_context(|| format!("writing {}", out.display()))?;
            format!(
                "wrote {} entities, {} landscape nodes and {} faults to {}",
                trace.telemetry.entities.len(),
                trace.graph.node_count(),
                trace.faults.len(),
                out.display()
            )
        }
        AnomaliesCommand::Evaluate => {
            let evaluation = nezha::evaluate(&trace, detector.as_ref(), &window, &params);
            if json_out {
                serde_json::to_string_pretty(&evaluation)?
            } else {
                let mut text = format!(
                    "{} faults, {} services ranked\n{:<24} {:>5} {:>5} {:>5} {:>6}\n",
                    evaluation.faults,
                    evaluation.services,
                    "ranker",
                    "AC@1",
                    "AC@3",
                    "AC@5",
                    "Avg@5"
                );
                let name = format!("dcpilot ({})", detector.name());
                for (name, a) in
                    std::iter::once((&name, &evaluation.method)).chain(evaluation.baselines.iter())
                {
                    let _ = writeln!(
                        text,
                        "{name:<24} {:>5.2} {:>5.2} {:>5.2} {:>6.2}",
                        a.ac1, a.ac3, a.ac5, a.avg5
                    );
                }
                for p in &evaluation.problems {
                    let _ = writeln!(text, "note: {p}");
                }
                text
            }
        }
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// What `dcpilot replay --format` reads: a telemetry trace, or a whole trace directory.
#[derive(Debug, Clone, Copy)]
pub enum ReplayFormat {
    /// Telemetry samples only.
    Samples(TraceFormat),
    /// A trace directory (Nezha or native): its landscape, then its telemetry.
    TraceDir,
}

impl std::str::FromStr for ReplayFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nezha" => Ok(Self::TraceDir),
            other => other.parse().map(Self::Samples).map_err(|_| {
                format!("unknown trace format `{other}`: expected bitbrains, ntua, native or nezha")
            }),
        }
    }
}

/// Sends the live landscape of `trace` to `topic` as events stamped with its first
/// sample's time (telemetry joins with it as of its own time), under one key so they stay
/// in order (nodes before their edges); returns how many.
pub fn send_landscape(
    trace: &nezha::TraceDir,
    kafka: &KafkaConfig,
    brokers: &str,
    topic: &str,
) -> Result<usize> {
    let events =
        dcpilot_info_core::landscape::formats::live_events(&trace.graph, native::first_ms(trace));
    let producer: BaseProducer = dcpilot_background::ingest::client_config(kafka, brokers)
        .create()
        .context("creating a producer")?;
    for event in &events {
        let payload = serde_json::to_string(event)?;
        send_waiting(
            &producer,
            BaseRecord::<str, str>::to(topic)
                .key("landscape")
                .payload(&payload),
        )?;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing landscape events")?;
    Ok(events.len())
}

/// Reads a trace directory: the native format when it has `telemetry.ndjson`, else Nezha.
pub fn load(data: &Path) -> Result<nezha::TraceDir> {
    let trace = if native::is_native(data) {
        native::load(data)
    } else {
        nezha::load(data)
    };
    trace.with_context(|| format!("reading {}", data.display()))
}

/// The trace directory argument, checked early so a typo is named.
pub fn data_dir(data: PathBuf) -> Result<PathBuf> {
    anyhow::ensure!(data.is_dir(), "--data {}: not a directory", data.display());
    Ok(data)
}
