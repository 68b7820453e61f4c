//! Trace directories in the Nezha format (Yu et al., ESEC/FSE 2023), loaded in memory, and
//! the evaluation of a ranking against their labelled faults.
//!
//! A directory holds `metric/<pod>_metric.csv` (a row a minute: `Time`, `TimeStamp`,
//! `PodName`, the pod's metrics, then its node's `Node*` columns), `metric/dependency.csv`
//! or `metric/call_graph.csv` (`Source,Target,Weight`: service → service calls, service →
//! node IP placements) and `fault_list.json` (`{hour: [{inject_time, inject_timestamp,
//! inject_pod, inject_type}]}`); when present, `metric/source_50.csv` and
//! `metric/destination_50.csv` (median latency per `caller_callee` edge, as the caller and
//! the callee measured it) and `metric/front_service.csv` (the entry service's user-facing
//! latency and success rate).
//!
//! - A pod's service is its name without the two hash suffixes
//!   (`cartservice-579f59597d-wc2lz` → `cartservice`); its metrics are the service's.
//! - Times come from `Time` (its first 19 characters, UTC), bucketed by minute: pods'
//!   clocks are not aligned, and some `TimeStamp` columns are corrupted. (A sample taken
//!   in a fault's own minute but after it counts as baseline; the days here sample at a
//!   fixed second of each minute.)
//! - `Node*` columns describe the pod's node: they become that node's metrics when the
//!   dependency file places the service on it, and are otherwise left out (reported).
//! - An edge's latency is a symptom of its callee (metric `CallLatencyP50(s) from
//!   <caller>, <side> side`); the entry file's columns become `Entry…` metrics of the
//!   service it names (left out, reported, when that service has no pods).
//! - A fault's time is `inject_time` read as UTC (`inject_timestamp` disagrees with it by
//!   hours in some published days); `inject_timestamp` is used only without `inject_time`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dcpilot_schemas::Relation;
use serde::{Deserialize, Serialize};

use dcpilot_landscape::formats::{import_events, ImportFormat, ImportOptions};
use dcpilot_landscape::{Direction, LandscapeGraph};
use dcpilot_pipelines::colouring::Telemetry;

use super::{format_error, io, TraceError};

/// A labelled fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// When it was injected (Unix s).
    pub at: i64,
    /// The faulty service (the pod's name without its hash suffixes).
    pub service: String,
    /// The pod named by the label.
    pub pod: String,
    /// The kind of fault.
    pub kind: String,
}

/// A trace directory in memory.
#[derive(Debug, Default)]
pub struct TraceDir {
    /// Every service's (and placed node's) metrics.
    pub telemetry: Telemetry,
    /// Services, their calls and placements.
    pub graph: LandscapeGraph,
    /// The labelled faults, in time order.
    pub faults: Vec<Fault>,
    /// What was left out, and why.
    pub problems: Vec<String>,
}

/// The service a pod belongs to: its name without the two hash suffixes.
pub fn service_of(pod: &str) -> &str {
    let mut cut = pod;
    for _ in 0..2 {
        match cut.rfind('-') {
            Some(i) if i > 0 => cut = &cut[..i],
            _ => return pod,
        }
    }
    cut
}

/// Reads a Nezha trace directory.
pub fn load(dir: &Path) -> Result<TraceDir, TraceError> {
    let metric_dir = dir.join("metric");
    let mut trace = TraceDir::default();
    for name in ["dependency.csv", "call_graph.csv"] {
        let path = metric_dir.join(name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        import_events(
            ImportFormat::Calls,
            &text,
            &trace.graph,
            &ImportOptions::default(),
        )
        .and_then(|events| trace.graph.apply_all(&events))
        .map_err(|e| format_error(&path, e.to_string()))?;
    }
    if trace.graph.node_count() == 0 {
        trace.problems.push(format!(
            "{}: no dependency.csv or call_graph.csv: services are ranked without a graph",
            metric_dir.display()
        ));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&metric_dir)
        .map_err(io(&metric_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_metric.csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format_error(&metric_dir, "no <pod>_metric.csv files"));
    }
    let mut pods_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut node_columns_left_out = BTreeSet::new();
    for path in &files {
        let file = path.file_name().map(|f| f.to_string_lossy().to_string());
        let pod = file
            .as_deref()
            .and_then(|f| f.strip_suffix("_metric.csv"))
            .unwrap_or_default()
            .to_string();
        let service = service_of(&pod).to_string();
        pods_of
            .entry(service.clone())
            .or_default()
            .push(pod.clone());
        let host = host_of(&trace.graph, &service);
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let skipped =
            read_metric_file(path, &text, &service, host.as_deref(), &mut trace.telemetry)?;
        if skipped > 0 {
            trace.problems.push(format!(
                "{}: {skipped} rows without a readable Time",
                path.display()
            ));
        }
        if host.is_none() {
            node_columns_left_out.insert(service);
        }
    }
    for (name, side) in EDGE_LATENCY_FILES {
        let path = metric_dir.join(name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let skipped = read_edge_latency(&path, &text, side, &mut trace.telemetry)?;
        if skipped > 0 {
            trace.problems.push(format!(
                "{}: {skipped} rows without a readable time",
                path.display()
            ));
        }
    }
    let entry_path = metric_dir.join(ENTRY_FILE);
    if entry_path.is_file() {
        let text = std::fs::read_to_string(&entry_path).map_err(io(&entry_path))?;
        let mut entry = Telemetry::default();
        let skipped = read_entry_file(&entry_path, &text, &mut entry)?;
        for (service, metrics) in entry.entities {
            if trace.telemetry.entities.contains_key(&service) {
                for (metric, points) in metrics {
                    for (t, value) in points {
                        trace.telemetry.push(&service, &metric, t, value);
                    }
                }
            } else {
                trace.problems.push(format!(
                    "{}: service {service:?} has no pod metrics: its entry latency is left out",
                    entry_path.display()
                ));
            }
        }
        if skipped > 0 {
            trace.problems.push(format!(
                "{}: {skipped} rows without a readable Time or ServiceName",
                entry_path.display()
            ));
        }
    }
    trace.telemetry.sort();
    average_duplicates(&mut trace.telemetry);
    for (service, pods) in pods_of.iter().filter(|(_, p)| p.len() > 1) {
        trace.problems.push(format!(
            "service {service} has {} pods ({}): their metrics are averaged per minute",
            pods.len(),
            pods.join(", ")
        ));
    }
    if !node_columns_left_out.is_empty() {
        trace.problems.push(format!(
            "Node* columns of {} services left out: the data does not place them on a node",
            node_columns_left_out.len()
        ));
    }
    let faults_path = dir.join("fault_list.json");
    if faults_path.is_file() {
        let text = std::fs::read_to_string(&faults_path).map_err(io(&faults_path))?;
        let (faults, problems) = read_faults(&faults_path, &text, &trace.telemetry)?;
        trace.faults = faults;
        trace.problems.extend(problems);
    }
    Ok(trace)
}

/// The node a service runs on, when the dependency file says.
fn host_of(graph: &LandscapeGraph, service: &str) -> Option<String> {
    let ix = graph.resolve(service)?;
    graph
        .live_edges(ix, Direction::Outgoing, Some(Relation::RunsOn))
        .map(|(_, host)| graph.node(host).id.clone())
        .next()
}

fn read_metric_file(
    path: &Path,
    text: &str,
    service: &str,
    host: Option<&str>,
    telemetry: &mut Telemetry,
) -> Result<usize, TraceError> {
    let (mut reader, headers) = csv_reader(path, text)?;
    let time_col = headers
        .iter()
        .position(|h| h == "Time")
        .ok_or_else(|| format_error(path, "no Time column"))?;
    let columns: Vec<(usize, &str, bool)> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| !matches!(*h, "Time" | "TimeStamp" | "PodName"))
        .map(|(i, h)| (i, h, h.starts_with("Node")))
        .collect();
    let mut skipped = 0;
    for row in reader.records() {
        let Ok(row) = row else {
            skipped += 1;
            continue;
        };
        let Some(t) = row.get(time_col).and_then(minute_of) else {
            skipped += 1;
            continue;
        };
        for (i, name, of_node) in &columns {
            let value = cell(&row, *i);
            match (of_node, host) {
                (false, _) => telemetry.push(service, name, t, value),
                (true, Some(host)) => telemetry.push(host, name, t, value),
                (true, None) => {}
            }
        }
    }
    Ok(skipped)
}

/// What the users of the entry service see (`Time, TimeStamp, ServiceName,
/// SuccessRate(%), LatencyP50(s), …`).
const ENTRY_FILE: &str = "front_service.csv";

/// The entry service's user-facing latency and success rate, as metrics `Entry…` of the
/// service named in `ServiceName` (lower-cased, as pods name services): a symptom of the
/// entry service that nothing else measures.
fn read_entry_file(
    path: &Path,
    text: &str,
    telemetry: &mut Telemetry,
) -> Result<usize, TraceError> {
    let (mut reader, headers) = csv_reader(path, text)?;
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format_error(path, format!("no {name} column")))
    };
    let (time_col, service_col) = (column("Time")?, column("ServiceName")?);
    let metrics: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| ![time_col, service_col].contains(i) && *h != "TimeStamp")
        .map(|(i, h)| (i, format!("Entry{h}")))
        .collect();
    let mut skipped = 0;
    for row in reader.records() {
        let parsed = row.ok().and_then(|row| {
            let t = row.get(time_col).and_then(minute_of)?;
            let service = row.get(service_col)?.trim().to_ascii_lowercase();
            (!service.is_empty()).then_some((row, t, service))
        });
        let Some((row, t, service)) = parsed else {
            skipped += 1;
            continue;
        };
        for (i, metric) in &metrics {
            let value = cell(&row, *i);
            telemetry.push(&service, metric, t, value);
        }
    }
    Ok(skipped)
}

/// Per-edge call latency files and the side that measured them.
const EDGE_LATENCY_FILES: [(&str, &str); 2] = [
    ("source_50.csv", "caller"),
    ("destination_50.csv", "callee"),
];

/// The metric a call edge's latency becomes on its callee.
pub fn edge_latency_metric(caller: &str, side: &str) -> String {
    format!("CallLatencyP50(s) from {caller}, {side} side")
}

/// `source_50.csv` / `destination_50.csv`: a row a minute, one column per `caller_callee`
/// edge holding its median latency as the `side` measured it. Each column becomes a
/// latency metric of the callee: a call is slow because of what it calls (or the network
/// to it), so the latency its callers see is the callee's symptom — and, unlike the
/// callee's own server-side latency, it shows a delay on the callee's network.
fn read_edge_latency(
    path: &Path,
    text: &str,
    side: &str,
    telemetry: &mut Telemetry,
) -> Result<usize, TraceError> {
    let (mut reader, headers) = csv_reader(path, text)?;
    let time_col = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("time"))
        .ok_or_else(|| format_error(path, "no time column"))?;
    // Service names hold no '_': the first one splits caller from callee.
    let edges: Vec<(usize, String, String)> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let (caller, callee) = h.split_once('_')?;
            Some((i, callee.to_string(), edge_latency_metric(caller, side)))
        })
        .collect();
    let mut skipped = 0;
    for row in reader.records() {
        let Some((row, t)) = row.ok().and_then(|row| {
            let t = row.get(time_col).and_then(minute_of)?;
            Some((row, t))
        }) else {
            skipped += 1;
            continue;
        };
        for (i, callee, metric) in &edges {
            telemetry.push(callee, metric, t, cell(&row, *i));
        }
    }
    Ok(skipped)
}

/// A CSV reader over `text` (rows may differ in length) and its header row.
fn csv_reader<'t>(
    path: &Path,
    text: &'t str,
) -> Result<(csv::Reader<&'t [u8]>, csv::StringRecord), TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format_error(path, format!("header: {e}")))?
        .clone();
    Ok((reader, headers))
}

/// Cell `i` of `row` as a number: unreadable and empty cells are gaps (NaN), not errors.
fn cell(row: &csv::StringRecord, i: usize) -> f64 {
    row.get(i)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// `2022-08-22 03:51:19.799… +0000 UTC …` → the Unix second of its minute.
fn minute_of(time: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(time.get(..19)?).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(secs - secs.rem_euclid(60))
}

/// One value per minute: the mean of the finite samples that share it (a service's pods,
/// a node's pods), NaN when none is finite.
fn average_duplicates(telemetry: &mut Telemetry) {
    for series in telemetry.entities.values_mut().flat_map(|m| m.values_mut()) {
        let mut merged: Vec<(i64, f64)> = Vec::with_capacity(series.len());
        let mut i = 0;
        while i < series.len() {
            let t = series[i].0;
            let (mut sum, mut n, mut j) = (0.0, 0u32, i);
            while j < series.len() && series[j].0 == t {
                if series[j].1.is_finite() {
                    sum += series[j].1;
                    n += 1;
                }
                j += 1;
            }
            merged.push((t, if n > 0 { sum / f64::from(n) } else { f64::NAN }));
            i = j;
        }
        *series = merged;
    }
}

#[derive(Deserialize)]
struct RawFault {
    inject_time: Option<String>,
    inject_timestamp: Option<serde_json::Value>,
    inject_pod: String,
    inject_type: Option<String>,
}

fn read_faults(
    path: &Path,
    text: &str,
    telemetry: &Telemetry,
) -> Result<(Vec<Fault>, Vec<String>), TraceError> {
    let hours: BTreeMap<String, Vec<RawFault>> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
            .map_err(|e| format_error(path, format!("{}: {}", e.path(), e.inner())))?;
    let mut faults = Vec::new();
    let mut problems = Vec::new();
    for (hour, list) in hours {
        for (i, raw) in list.into_iter().enumerate() {
            let place = format!("{}: {hour}[{i}]", path.display());
            let at = match (&raw.inject_time, &raw.inject_timestamp) {
                (Some(time), _) => humantime::parse_rfc3339_weak(time)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64),
                (None, Some(stamp)) => stamp
                    .as_i64()
                    .or_else(|| stamp.as_str().and_then(|s| s.trim().parse().ok())),
                (None, None) => None,
            };
            let Some(at) = at else {
                let key = if raw.inject_time.is_some() {
                    "inject_time"
                } else {
                    "inject_time or inject_timestamp"
                };
                problems.push(format!("{place}: no readable {key}; fault left out"));
                continue;
            };
            let service = service_of(&raw.inject_pod).to_string();
            if !telemetry.entities.contains_key(&service) {
                problems.push(format!(
                    "{place}: pod {} (service {service}) has no metrics in the directory; fault left out",
                    raw.inject_pod
                ));
                continue;
            }
            faults.push(Fault {
                at,
                service,
                pod: raw.inject_pod,
                kind: raw.inject_type.unwrap_or_else(|| "unknown".into()),
            });
        }
    }
    faults.sort_by_key(|f| f.at);
    Ok((faults, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_pods_without_their_hash_suffixes() {
        assert_eq!(service_of("cartservice-579f59597d-wc2lz"), "cartservice");
        assert_eq!(
            service_of("ts-basic-service-6b8c9c4b5-x2x9z"),
            "ts-basic-service"
        );
        assert_eq!(service_of("plain"), "plain");
        assert_eq!(service_of("a-b"), "a-b");
    }

    #[test]
    fn minutes_come_from_the_time_column() {
        assert_eq!(
            minute_of("2022-08-22 03:51:19.799087274 +0000 UTC m=+0.305041286"),
            Some(1_661_140_260)
        );
        assert_eq!(minute_of("garbage"), None);
        assert_eq!(minute_of(""), None);
    }
}
