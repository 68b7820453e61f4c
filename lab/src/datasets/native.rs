//! Trace directories in dcpilot's own format, so any system's data can be judged:
//!
//! - `telemetry.ndjson`: native telemetry samples (one JSON sample or array per line, as
//!   the telemetry topic carries them);
//! - `landscape.ndjson`: landscape events (as the landscape topic carries them);
//! - `faults.json`: the labelled faults, `[{"at": unix_s, "entity": "...", "kind": "..."}]`.
//!
//! [`write`] turns any loaded trace (a Nezha directory, say) into this format; [`load`]
//! reads it back into the same [`TraceDir`] the evaluation takes.

use std::path::Path;

use dcpilot_landscape::formats::{live_events, parse_events};
use dcpilot_schemas::TelemetrySample;
use serde::{Deserialize, Serialize};

use super::nezha::{Fault, TraceDir};
use super::{format_error, io, read_trace, TraceError, TraceFormat};

/// The telemetry file of a native trace directory.
pub const TELEMETRY_FILE: &str = "telemetry.ndjson";
/// The landscape file.
pub const LANDSCAPE_FILE: &str = "landscape.ndjson";
/// The labels file.
pub const FAULTS_FILE: &str = "faults.json";

/// One labelled fault as the labels file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// When the fault began (Unix s).
    pub at: i64,
    /// The faulty entity, named as the telemetry names it.
    pub entity: String,
    /// What kind of fault (free text: `cpu`, `network_delay`, …).
    #[serde(default)]
    pub kind: String,
}

/// Whether `dir` looks like a native trace directory.
pub fn is_native(dir: &Path) -> bool {
    dir.join(TELEMETRY_FILE).is_file()
}

/// Reads a native trace directory. A label naming an entity with no telemetry is reported
/// in `problems` and left out.
pub fn load(dir: &Path) -> Result<TraceDir, TraceError> {
    let mut trace = TraceDir::default();
    let telemetry_path = dir.join(TELEMETRY_FILE);
    let read = read_trace(TraceFormat::Native, &telemetry_path)
        .map_err(|e| format_error(&telemetry_path, e.to_string()))?;
    if !read.skipped.is_empty() {
        trace.problems.push(read.skipped.to_string());
    }
    for s in &read.samples {
        if s.value.is_finite() {
            trace.telemetry.push(
                &s.entity,
                &s.metric,
                s.timestamp_ms.div_euclid(1000),
                s.value,
            );
        }
    }
    trace.telemetry.sort();

    let landscape_path = dir.join(LANDSCAPE_FILE);
    if landscape_path.is_file() {
        let text = std::fs::read_to_string(&landscape_path).map_err(io(&landscape_path))?;
        let events =
            parse_events(&text).map_err(|e| format_error(&landscape_path, e.to_string()))?;
        for (i, e) in events.iter().enumerate() {
            if let Err(e) = trace.graph.apply_event(e) {
                trace.problems.push(format!(
                    "{}: event {}: {e}",
                    landscape_path.display(),
                    i + 1
                ));
            }
        }
    } else {
        trace.problems.push(format!(
            "{} is missing: ranked without the graph",
            landscape_path.display()
        ));
    }

    let faults_path = dir.join(FAULTS_FILE);
    if faults_path.is_file() {
        let text = std::fs::read_to_string(&faults_path).map_err(io(&faults_path))?;
        let labels: Vec<Label> =
            serde_json::from_str(&text).map_err(|e| format_error(&faults_path, e.to_string()))?;
        for label in labels {
            if !trace.telemetry.entities.contains_key(&label.entity) {
                trace.problems.push(format!(
                    "{}: the fault at {} names {:?}, which has no telemetry (left out)",
                    faults_path.display(),
                    label.at,
                    label.entity
                ));
                continue;
            }
            trace.faults.push(Fault {
                at: label.at,
                service: label.entity.clone(),
                pod: label.entity,
                kind: label.kind,
            });
        }
        trace
            .faults
            .sort_by(|a, b| a.at.cmp(&b.at).then(a.service.cmp(&b.service)));
    }
    Ok(trace)
}

/// The trace's telemetry as native samples, in time order; gaps (non-finite values, which
/// the wire format refuses) are left out, as the detectors skip them anyway.
pub fn samples(trace: &TraceDir) -> Vec<TelemetrySample> {
    let mut out = Vec::new();
    for (entity, metrics) in &trace.telemetry.entities {
        for (metric, points) in metrics {
            for &(t, value) in points.iter().filter(|p| p.1.is_finite()) {
                out.push(TelemetrySample {
                    timestamp_ms: t.saturating_mul(1000),
                    entity: entity.clone(),
                    host: None,
                    workload: None,
                    metric: metric.clone(),
                    value,
                    labels: Default::default(),
                });
            }
        }
    }
    out.sort_by_key(|s| s.timestamp_ms);
    out
}

/// The time of the trace's first sample (Unix ms; 0 without any): when its landscape is
/// stamped, so telemetry joins with it as of its own time.
pub fn first_ms(trace: &TraceDir) -> i64 {
    trace
        .telemetry
        .entities
        .values()
        .flat_map(|m| m.values())
        .filter_map(|p| p.first())
        .map(|p| p.0.saturating_mul(1000))
        .min()
        .unwrap_or(0)
}

/// Writes `trace` as a native trace directory `dir` (created if missing).
pub fn write(trace: &TraceDir, dir: &Path) -> Result<(), TraceError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut telemetry = String::new();
    for s in samples(trace) {
        telemetry.push_str(&json_line(&s));
    }
    let mut landscape = String::new();
    for e in live_events(&trace.graph, first_ms(trace)) {
        landscape.push_str(&json_line(&e));
    }
    let labels: Vec<Label> = trace
        .faults
        .iter()
        .map(|f| Label {
            at: f.at,
            entity: f.service.clone(),
            kind: f.kind.clone(),
        })
        .collect();
    let faults = serde_json::to_string_pretty(&labels).unwrap_or_default();
    for (name, text) in [
        (TELEMETRY_FILE, telemetry),
        (LANDSCAPE_FILE, landscape),
        (FAULTS_FILE, faults),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

/// One value as a JSON line (samples and events always serialise).
fn json_line(value: &impl Serialize) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_default();
    line.push('\n');
    line
}
