//! Root-cause ranking judged against labelled faults: AC@k and Avg@k of a method over a
//! trace directory (Nezha or native), next to the naive rankers an SRE would try first;
//! the ranking at one moment; a trace directory exported or sent to the landscape topic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcpilot_background::config::KafkaConfig;
use dcpilot_background::replay::send_waiting;
use dcpilot_pipelines::colouring::detect::{self, Detector, Window};
use dcpilot_pipelines::colouring::{colour, Candidate, Colouring, EntityColour, RankParams};
use dcpilot_schemas::Layer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::{Deserialize, Serialize};

use crate::datasets::nezha::{Fault, TraceDir};
use crate::error::{Context, LabError, Result};

/// AC@1, AC@3, AC@5 (share of faults whose cause is in the top k) and Avg@5 (their mean
/// over k = 1..5).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Accuracy {
    /// Top 1.
    pub ac1: f64,
    /// Top 3.
    pub ac3: f64,
    /// Top 5.
    pub ac5: f64,
    /// Mean of AC@1..AC@5.
    pub avg5: f64,
}

impl Accuracy {
    /// From each fault's share of hits at k = 1..5.
    fn from_hits(hits: &[[f64; 5]]) -> Self {
        if hits.is_empty() {
            return Self::default();
        }
        let n = hits.len() as f64;
        let at = |k: usize| hits.iter().map(|h| h[k]).sum::<f64>() / n;
        Self {
            ac1: at(0),
            ac3: at(2),
            ac5: at(4),
            avg5: (0..5).map(at).sum::<f64>() / 5.0,
        }
    }
}

/// One fault's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultResult {
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// Where the cause came (1 is first; `None`: not ranked).
    pub rank: Option<usize>,
    /// The first five services.
    pub top: Vec<String>,
}

/// The evaluation of a trace directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Faults judged.
    pub faults: usize,
    /// Services ranked (the candidates at service level).
    pub services: usize,
    /// The method: detector and ranking over the graph.
    pub method: Accuracy,
    /// Naive rankers, by name: `random` (expected), `n-sigma` and `robust-z` (each
    /// service's own largest deviation, no graph).
    pub baselines: BTreeMap<String, Accuracy>,
    /// Each fault.
    pub per_fault: Vec<FaultResult>,
    /// What the directory left out.
    pub problems: Vec<String>,
}

/// The colouring and ranking of the trace at `at` (`anomaly::colour` on the whole
/// directory).
pub fn rank_at(
    trace: &TraceDir,
    at: i64,
    detector: &dyn Detector,
    window: &Window,
    params: &RankParams,
) -> Colouring {
    colour(&trace.telemetry, &trace.graph, at, detector, window, params)
}

/// Ranks each service by its own most abnormal metric under `detector`, no graph.
fn naive_ranking(
    trace: &TraceDir,
    at: i64,
    detector: &dyn Detector,
    window: &Window,
) -> Vec<String> {
    let mut scored: Vec<(String, f64)> = trace
        .telemetry
        .entities
        .iter()
        .filter(|(name, _)| is_service_name(trace, name))
        .map(|(name, metrics)| {
            let best = metrics
                .values()
                .filter_map(|p| detector.score(p, at, window))
                .map(|s| s.score)
                .filter(|s| s.is_finite())
                .fold(0.0, f64::max);
            (name.clone(), best)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().map(|(n, _)| n).collect()
}

/// Service level: everything that is not a physical node.
fn is_service_name(trace: &TraceDir, name: &str) -> bool {
    trace
        .graph
        .get(name)
        .is_none_or(|n| n.layer != Layer::Physical)
}

/// Where `service` comes in `order` (1 is first).
fn rank_of<'a>(mut order: impl Iterator<Item = &'a str>, service: &str) -> Option<usize> {
    order.position(|s| s == service).map(|i| i + 1)
}

fn hits(rank: Option<usize>) -> [f64; 5] {
    std::array::from_fn(|k| f64::from(u8::from(rank.is_some_and(|r| r <= k + 1))))
}

/// Judges the method (`detector` + `params`) and the naive rankers on every labelled
/// fault of `trace`.
pub fn evaluate(
    trace: &TraceDir,
    detector: &dyn Detector,
    window: &Window,
    params: &RankParams,
) -> Evaluation {
    let services = trace
        .telemetry
        .entities
        .keys()
        .filter(|n| is_service_name(trace, n))
        .count();
    let mut per_fault = Vec::new();
    let mut method_hits = Vec::new();
    let mut naive_hits: BTreeMap<String, Vec<[f64; 5]>> = BTreeMap::new();
    let naive: [&dyn Detector; 2] = [&detect::NSigma, &detect::RobustZ];
    for fault in &trace.faults {
        let colouring = rank_at(trace, fault.at, detector, window, params);
        let ranked: Vec<String> = colouring
            .ranking
            .into_iter()
            .map(|c| c.entity)
            .filter(|e| is_service_name(trace, e))
            .collect();
        let rank = rank_of(ranked.iter().map(String::as_str), &fault.service);
        method_hits.push(hits(rank));
        for d in naive {
            let order = naive_ranking(trace, fault.at, d, window);
            let r = rank_of(order.iter().map(String::as_str), &fault.service);
            naive_hits
                .entry(d.name().to_string())
                .or_default()
                .push(hits(r));
        }
        // A random order puts the cause in the top k with probability k / n.
        let n = services.max(1) as f64;
        naive_hits
            .entry("random".into())
            .or_default()
            .push(std::array::from_fn(|k| ((k + 1) as f64 / n).min(1.0)));
        per_fault.push(FaultResult {
            fault: fault.clone(),
            rank,
            top: ranked.into_iter().take(5).collect(),
        });
    }
    Evaluation {
        faults: trace.faults.len(),
        services,
        method: Accuracy::from_hits(&method_hits),
        baselines: naive_hits
            .into_iter()
            .map(|(name, h)| (name, Accuracy::from_hits(&h)))
            .collect(),
        per_fault,
        problems: trace.problems.clone(),
    }
}

/// The method a command judges with: a colouring job's detector, windows and weights.
pub struct Method {
    /// The detector.
    pub detector: std::sync::Arc<dyn detect::Detector>,
    /// Its windows.
    pub window: Window,
    /// The ranking's weights.
    pub params: RankParams,
}

/// The colouring job the background runs by default.
const DEFAULT_JOB: &str = dcpilot_schemas::names::models::COLOURING;

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
                .ok_or_else(|| {
                    LabError::Invalid(format!(
                        "--job {name}: no such file and no such built-in job (colouring jobs: {})",
                        known.join(", ")
                    ))
                })?
        };
        let dcpilot_pipelines::ModelSpec::Colouring {
            detector: spec_detector,
            window,
            rank,
            ..
        } = spec.model
        else {
            return Err(LabError::Invalid(format!(
                "--job {name}: {} is not a colouring job",
                spec.name
            )));
        };
        let detector = detector.unwrap_or(&spec_detector);
        Ok(Self {
            detector: detect::by_name(detector).map_err(|e| LabError::Invalid(e.to_string()))?,
            window,
            params: rank,
        })
    }
}

/// The ranking of root-cause candidates at `at`, with the problems of the trace and of the
/// colouring.
#[derive(Debug, Clone, Serialize)]
pub struct RankReport {
    /// The moment judged (Unix s).
    pub at: i64,
    /// The detector.
    pub detector: String,
    /// Candidates, likeliest first.
    pub ranking: Vec<Candidate>,
    /// Every entity's colour.
    pub entities: Vec<EntityColour>,
    /// What could not be judged.
    pub problems: Vec<String>,
}

/// Colours `trace` at `at` with `method` and ranks root causes.
pub fn rank(trace: &TraceDir, method: &Method, at: i64) -> RankReport {
    let colouring = rank_at(
        trace,
        at,
        method.detector.as_ref(),
        &method.window,
        &method.params,
    );
    let mut problems = trace.problems.clone();
    problems.extend(colouring.problems.iter().cloned());
    RankReport {
        at,
        detector: colouring.detector,
        ranking: colouring.ranking,
        entities: colouring.entities,
        problems,
    }
}

impl RankReport {
    /// The first `top` candidates with their evidence, one line each, for people.
    pub fn text(&self, top: usize) -> String {
        let mut text = format!(
            "root-cause candidates at {} ({}), best first:\n",
            self.at, self.detector
        );
        for (i, c) in self.ranking.iter().take(top).enumerate() {
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
        for p in &self.problems {
            let _ = writeln!(text, "note: {p}");
        }
        text
    }
}

impl Evaluation {
    /// The accuracy table (the method named `method`, then the naive rankers), for people.
    pub fn text(&self, method: &str) -> String {
        let mut text = format!(
            "{} faults, {} services ranked\n{:<24} {:>5} {:>5} {:>5} {:>6}\n",
            self.faults, self.services, "ranker", "AC@1", "AC@3", "AC@5", "Avg@5"
        );
        let name = format!("dcpilot ({method})");
        for (name, a) in std::iter::once((&name, &self.method)).chain(self.baselines.iter()) {
            let _ = writeln!(
                text,
                "{name:<24} {:>5.2} {:>5.2} {:>5.2} {:>6.2}",
                a.ac1, a.ac3, a.ac5, a.avg5
            );
        }
        for p in &self.problems {
            let _ = writeln!(text, "note: {p}");
        }
        text
    }
}

/// Writes `trace` as a native trace directory under `out`; says what it wrote.
pub fn export(trace: &TraceDir, out: &Path) -> Result<String> {
    crate::datasets::native::write(trace, out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(format!(
        "wrote {} entities, {} landscape nodes and {} faults to {}",
        trace.telemetry.entities.len(),
        trace.graph.node_count(),
        trace.faults.len(),
        out.display()
    ))
}

/// Sends the live landscape of `trace` to `topic` as events stamped with its first
/// sample's time (telemetry joins with it as of its own time), under one key so they stay
/// in order (nodes before their edges); returns how many.
pub fn send_landscape(
    trace: &TraceDir,
    kafka: &KafkaConfig,
    brokers: &str,
    topic: &str,
) -> Result<usize> {
    let events = dcpilot_landscape::formats::live_events(
        &trace.graph,
        crate::datasets::native::first_ms(trace),
    );
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
pub fn load(data: &Path) -> Result<TraceDir> {
    let trace = if crate::datasets::native::is_native(data) {
        crate::datasets::native::load(data)
    } else {
        crate::datasets::nezha::load(data)
    };
    trace.with_context(|| format!("reading {}", data.display()))
}

/// The trace directory argument, checked early so a typo is named.
pub fn data_dir(data: PathBuf) -> Result<PathBuf> {
    if !data.is_dir() {
        return Err(LabError::Invalid(format!(
            "--data {}: not a directory",
            data.display()
        )));
    }
    Ok(data)
}
