//! Readers of the real traces dcpilot is built and judged on (see `tests/data/README.md`):
//! the Bitbrains GWA-T-12 VM utilisation trace and the NTUA nginx interference measurements.
//! Both become [`TelemetrySample`]s, so they can be replayed onto `dcpilot.telemetry`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use dcpilot_schemas::names::PCM_SYSTEM_METRICS;
use dcpilot_schemas::{Skipped, TelemetrySample};

use super::layout::{Layout, NODE};
use super::TraceError;

/// A trace format known to `dcpilot replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// Bitbrains GWA-T-12: a directory of `<vm>.csv` files (or one file).
    Bitbrains,
    /// NTUA interference: a directory searched for `nginx_metrics.csv` files.
    Ntua,
    /// Native NDJSON samples: a file or a directory of `.json`/`.ndjson` files.
    Native,
}

/// A trace format name that is not one of [`TraceFormat`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace format `{0}`: expected bitbrains, ntua or native")]
pub struct UnknownTraceFormat(pub String);

impl std::str::FromStr for TraceFormat {
    type Err = UnknownTraceFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bitbrains" => Ok(Self::Bitbrains),
            "ntua" => Ok(Self::Ntua),
            "native" => Ok(Self::Native),
            other => Err(UnknownTraceFormat(other.to_string())),
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bitbrains => "bitbrains",
            Self::Ntua => "ntua",
            Self::Native => "native",
        })
    }
}

/// Metric names of the Bitbrains columns after the timestamp, in file order.
pub const BITBRAINS_METRICS: [&str; 10] = [
    "cpu_cores",
    "cpu_capacity_mhz",
    "cpu_usage_mhz",
    "cpu_usage_pct",
    "memory_capacity_kb",
    "memory_usage_kb",
    "disk_read_kbps",
    "disk_write_kbps",
    "net_rx_kbps",
    "net_tx_kbps",
];

/// Workload name given to Bitbrains VMs (the trace has no application information).
pub const BITBRAINS_WORKLOAD: &str = "bitbrains-rnd";

/// A trace read: its samples, sorted by time (stable within a time), and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The samples.
    pub samples: Vec<TelemetrySample>,
    /// What could not be read.
    pub skipped: Skipped,
}

/// Reads every sample of a trace at `path` (NTUA runs as the NTUA machine's
/// [`Layout::ntua`] lays them out). Unreadable lines and values (and NTUA files
/// without a needed column) are left out and counted in [`Trace::skipped`]; only a path
/// that cannot be read or holds no trace files is an error.
pub fn read_trace(format: TraceFormat, path: &Path) -> Result<Trace, TraceError> {
    read_trace_laid_out(format, path, &Layout::ntua())
}

/// [`read_trace`], NTUA runs laid out by `layout`.
pub fn read_trace_laid_out(
    format: TraceFormat,
    path: &Path,
    layout: &Layout,
) -> Result<Trace, TraceError> {
    let mut trace = Trace::default();
    let skipped = &mut trace.skipped;
    let all = &mut trace.samples;
    match format {
        TraceFormat::Bitbrains => {
            let files = list_files(path, |p| p.extension().is_some_and(|e| e == "csv"))?;
            for file in &files {
                let text = read(file)?;
                all.extend(parse_bitbrains(file, &text, skipped));
            }
        }
        TraceFormat::Ntua => {
            let files = list_files_recursive(path, "nginx_metrics.csv")?;
            for (run_index, file) in files.iter().enumerate() {
                let text = read(file)?;
                let mut nginx = parse_ntua(file, &text, run_index, skipped);
                layout.label(&mut nginx);
                all.extend(read_pcm_beside(file, &nginx, layout, skipped)?);
                all.extend(nginx);
            }
        }
        TraceFormat::Native => {
            let files = list_files(path, |p| {
                p.extension().is_some_and(|e| e == "json" || e == "ndjson")
            })?;
            for file in &files {
                let text = read(file)?;
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    match serde_json::from_str(line) {
                        Ok(sample) => all.push(sample),
                        Err(e) => skipped.add(file, i + 1, e),
                    }
                }
            }
        }
    }
    trace.samples.sort_by_key(|s| s.timestamp_ms);
    Ok(trace)
}

/// Parses one Bitbrains VM file (`;\t`-separated, Unix seconds despite the `[ms]` header).
/// The VM id is the file stem; repeated timestamps (VM 265) keep their first row. A line of
/// the wrong shape or with a bad timestamp, and a value that is not a number, are left out
/// and noted in `skipped`.
pub fn parse_bitbrains(path: &Path, text: &str, skipped: &mut Skipped) -> Vec<TelemetrySample> {
    let vm = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entity = format!("vm-{vm}");
    let mut seen = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(';').map(str::trim).collect();
        if fields.len() != 1 + BITBRAINS_METRICS.len() {
            skipped.add(
                path,
                i + 1,
                format_args!("expected 11 fields, found {}", fields.len()),
            );
            continue;
        }
        let Ok(seconds) = fields[0].parse::<i64>() else {
            skipped.add(path, i + 1, format_args!("bad timestamp `{}`", fields[0]));
            continue;
        };
        if !seen.insert(seconds) {
            continue;
        }
        for (metric, raw) in BITBRAINS_METRICS.iter().zip(&fields[1..]) {
            let Some(value) = number(raw) else {
                skipped.add(path, i + 1, format_args!("bad {metric} `{raw}`"));
                continue;
            };
            samples.push(TelemetrySample {
                timestamp_ms: seconds * 1000,
                entity: entity.clone(),
                host: None,
                workload: Some(BITBRAINS_WORKLOAD.to_string()),
                metric: (*metric).to_string(),
                value,
                labels: BTreeMap::new(),
            });
        }
    }
    samples
}

/// A finite number, or `None`.
fn number(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Start of the synthetic clock of NTUA runs (the measurements carry no timestamps):
/// 2024-01-01T00:00:00Z, one day per run, three minutes per test as in the experiments.
pub const NTUA_EPOCH_MS: i64 = 1_704_067_200_000;
const NTUA_TEST_MS: i64 = 180_000;
const NTUA_RUN_MS: i64 = 86_400_000;

/// Parses one `nginx_metrics.csv`. Entity `nginx-<run>`, workload `nginx`; labels carry the
/// test, interference scenario and replicas. A P75 of 0.0 means "not measured" and is skipped.
pub fn parse_ntua(
    path: &Path,
    text: &str,
    run_index: usize,
    skipped: &mut Skipped,
) -> Vec<TelemetrySample> {
    const COLUMNS: [(&str, &str); 10] = [
        ("Given_RPS", "given_rps"),
        ("Throughput", "throughput_rps"),
        ("Avg_Latency", "avg_latency_ms"),
        ("P50_Latency", "p50_latency_ms"),
        ("P75_Latency", "p75_latency_ms"),
        ("P90_Latency", "p90_latency_ms"),
        ("P95_Latency", "p95_latency_ms"),
        ("P99_Latency", "p99_latency_ms"),
        ("Max_Latency", "max_latency_ms"),
        ("Errors", "errors"),
    ];
    let run = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(test_col), Some(replicas_col), Some(interference_col)) =
        (col("Test_ID"), col("Replicas"), col("Interference_Name"))
    else {
        skipped.add(
            path,
            1,
            "missing column Test_ID, Replicas or Interference_Name: file left out",
        );
        return Vec::new();
    };
    let metric_cols = metric_columns(path, &header, &COLUMNS, skipped);
    let mut samples = Vec::new();
    for (test_index, (i, line)) in lines.filter(|(_, l)| !l.trim().is_empty()).enumerate() {
        let Some(fields) = csv_fields(path, i + 1, line, header.len(), skipped) else {
            continue;
        };
        let timestamp_ms =
            NTUA_EPOCH_MS + run_index as i64 * NTUA_RUN_MS + test_index as i64 * NTUA_TEST_MS;
        let labels = BTreeMap::from([
            ("run".to_string(), run.clone()),
            ("test".to_string(), fields[test_col].to_string()),
            (
                "interference".to_string(),
                fields[interference_col].to_string(),
            ),
            ("replicas".to_string(), fields[replicas_col].to_string()),
        ]);
        for (index, metric) in &metric_cols {
            let raw = fields[*index];
            let Some(value) = number(raw) else {
                skipped.add(path, i + 1, format_args!("bad {metric} `{raw}`"));
                continue;
            };
            if *metric == "p75_latency_ms" && value == 0.0 {
                continue;
            }
            samples.push(TelemetrySample {
                timestamp_ms,
                entity: format!("nginx-{run}"),
                host: None,
                workload: Some("nginx".into()),
                metric: (*metric).to_string(),
                value,
                labels: labels.clone(),
            });
        }
    }
    samples
}

/// The counters PCM counts per interval rather than as a rate or ratio.
const PER_INTERVAL: [&str; 4] = [
    "pcm_l3_misses_m",
    "pcm_l2_misses_m",
    "pcm_mem_read_gbps",
    "pcm_mem_write_gbps",
];

/// For each test of an NTUA `nginx_metrics.csv` (its `nginx` samples), the host counters
/// of `pcm_system_<test>.csv` beside it, if there is one.
fn read_pcm_beside(
    nginx_file: &Path,
    nginx: &[TelemetrySample],
    layout: &Layout,
    skipped: &mut Skipped,
) -> Result<Vec<TelemetrySample>, TraceError> {
    let Some(dir) = nginx_file.parent() else {
        return Ok(Vec::new());
    };
    pcm_of_tests(
        nginx,
        layout,
        |file| {
            let path = dir.join(file);
            if path.is_file() {
                Ok(Some((read(&path)?, path)))
            } else {
                Ok(None)
            }
        },
        skipped,
    )
}

/// For each test among the `nginx` samples of one NTUA run, the counters of the files
/// `open` finds (its text and path; `None`: there is none): the machine's from
/// `pcm_system_<test>.csv` (entity `node-<run>`) and each node's of `layout` from
/// `pcm_core_<test>.csv` (see [`parse_pcm_nodes`]); the test's labels, each row at the
/// test's time + its own time since the file's first row (rows past the test's 180 s are
/// left out).
pub fn pcm_of_tests(
    nginx: &[TelemetrySample],
    layout: &Layout,
    mut open: impl FnMut(&str) -> Result<Option<(String, PathBuf)>, TraceError>,
    skipped: &mut Skipped,
) -> Result<Vec<TelemetrySample>, TraceError> {
    let mut tests: BTreeMap<&str, &TelemetrySample> = BTreeMap::new();
    for sample in nginx {
        if let Some(test) = sample.labels.get("test") {
            tests.entry(test.as_str()).or_insert(sample);
        }
    }
    let mut samples = Vec::new();
    for (test, first) in tests {
        if let Some((text, path)) = open(&format!("pcm_core_{test}.csv"))? {
            samples.extend(parse_pcm_nodes(
                &path,
                &text,
                &layout.nodes,
                first.timestamp_ms,
                &first.labels,
                skipped,
            ));
        }
        let Some((text, path)) = open(&format!("pcm_system_{test}.csv"))? else {
            continue;
        };
        let host = first
            .labels
            .get("run")
            .map_or_else(|| "node".into(), |run| format!("node-{run}"));
        samples.extend(parse_pcm_system(
            &path,
            &text,
            &host,
            first.timestamp_ms,
            &first.labels,
            skipped,
        ));
    }
    Ok(samples)
}

/// Parses one Intel PCM system CSV (`pcm -csv`: a header of `Group - Counter` columns,
/// then one row per interval) into [`PCM_SYSTEM_METRICS`] samples of `host`, each row at
/// `start_ms` plus its `System - Time` since the first row's, at most [`NTUA_TEST_MS`]
/// after `start_ms`. PCM's interval differs between runs (5 s in some, 2 s in others), so
/// per-interval counts are made per second with the file's own interval (the median step
/// between its rows' times); a file without readable times is taken as 5 s a row, a row
/// whose time does not read as one interval after the row before. A
/// missing column, a row of the wrong shape or a value that is not a number is left out
/// and counted.
pub fn parse_pcm_system(
    path: &Path,
    text: &str,
    host: &str,
    start_ms: i64,
    labels: &BTreeMap<String, String>,
    skipped: &mut Skipped,
) -> Vec<TelemetrySample> {
    let pcm = PcmRows::read(path, text, skipped);
    let columns = metric_columns(path, &pcm.header, &PCM_SYSTEM_METRICS, skipped);
    let interval_ms = pcm.interval_ms;
    let mut samples = Vec::new();
    for (line_no, fields, offset_ms) in &pcm.rows {
        for (index, metric) in &columns {
            let raw = fields[*index];
            let Some(value) = number(raw) else {
                skipped.add(path, *line_no, format_args!("bad {metric} `{raw}`"));
                continue;
            };
            // PCM writes misses (M) and traffic (GB) per interval: made per second.
            let value = if PER_INTERVAL.contains(metric) {
                value * 1000.0 / interval_ms as f64
            } else {
                value
            };
            samples.push(TelemetrySample {
                timestamp_ms: start_ms + offset_ms,
                entity: host.to_string(),
                host: Some(host.to_string()),
                workload: None,
                metric: (*metric).to_string(),
                value,
                labels: labels.clone(),
            });
        }
    }
    samples
}

/// The per-node counters PCM's per-core file measures: for each node of `nodes` (its
/// cores), the mean IPC and C0 residency of its cores and their summed L3 and L2 misses
/// (made per second like the system file's), as [`PCM_SYSTEM_METRICS`] samples of host
/// `<node>` labelled [`NODE`]. Rows are placed in time as [`parse_pcm_system`] places
/// them; a node whose cores the file lacks, or a value that is not a number, is left out
/// and counted.
pub fn parse_pcm_nodes(
    path: &Path,
    text: &str,
    nodes: &BTreeMap<String, Vec<usize>>,
    start_ms: i64,
    labels: &BTreeMap<String, String>,
    skipped: &mut Skipped,
) -> Vec<TelemetrySample> {
    /// (per-core counter, the node metric it makes, summed rather than averaged)
    const COUNTERS: [(&str, &str, bool); 4] = [
        ("IPC", "pcm_ipc", false),
        ("L3MISS", "pcm_l3_misses_m", true),
        ("L2MISS", "pcm_l2_misses_m", true),
        ("C0res%", "pcm_c0_residency_pct", false),
    ];
    let pcm = PcmRows::read(path, text, skipped);
    let header = &pcm.header;
    // Per node and counter, the columns of its cores.
    let mut columns: Vec<(&str, [Vec<usize>; 4])> = Vec::new();
    for (node, cores) in nodes {
        let mut of_node: [Vec<usize>; 4] = Default::default();
        let mut missing = None;
        for (k, (counter, _, _)) in COUNTERS.iter().enumerate() {
            for core in cores {
                let name = format!("Core{core} (Socket 0) - {counter}");
                match header.iter().position(|h| *h == name) {
                    Some(i) => of_node[k].push(i),
                    None => missing = Some(name),
                }
            }
        }
        match missing {
            Some(name) => skipped.add(
                path,
                1,
                format_args!("no column `{name}`: node {node} left out"),
            ),
            None => columns.push((node, of_node)),
        }
    }
    let interval_ms = pcm.interval_ms;
    let mut samples = Vec::new();
    for (line_no, fields, offset_ms) in &pcm.rows {
        for (node, of_node) in &columns {
            for ((_, metric, summed), cols) in COUNTERS.iter().zip(of_node) {
                let values: Option<Vec<f64>> = cols.iter().map(|c| number(fields[*c])).collect();
                let Some(values) = values else {
                    skipped.add(path, *line_no, format_args!("bad {metric} of node {node}"));
                    continue;
                };
                let total: f64 = values.iter().sum();
                let value = if *summed {
                    total * 1000.0 / interval_ms as f64
                } else {
                    total / values.len() as f64
                };
                let mut labels = labels.clone();
                labels.insert(NODE.into(), (*node).to_string());
                samples.push(TelemetrySample {
                    timestamp_ms: start_ms + offset_ms,
                    entity: (*node).to_string(),
                    host: Some((*node).to_string()),
                    workload: None,
                    metric: (*metric).to_string(),
                    value,
                    labels,
                });
            }
        }
    }
    samples
}

/// A PCM CSV (`pcm -csv`): its header, and its rows within a test's time — each with its
/// line number, fields and milliseconds after the first row — and the file's interval.
struct PcmRows<'t> {
    header: Vec<&'t str>,
    rows: Vec<(usize, Vec<&'t str>, i64)>,
    interval_ms: i64,
}

impl<'t> PcmRows<'t> {
    /// Reads `text`; rows of the wrong shape are left out and counted, rows past
    /// [`NTUA_TEST_MS`] dropped.
    fn read(path: &Path, text: &'t str, skipped: &mut Skipped) -> Self {
        let mut lines = text.lines().enumerate();
        let header: Vec<&str> = lines
            .next()
            .map(|(_, l)| l.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let rows: Vec<(usize, Vec<&str>)> = lines
            .filter(|(_, l)| !l.trim().is_empty())
            .filter_map(|(i, line)| {
                csv_fields(path, i + 1, line, header.len(), skipped).map(|f| (i + 1, f))
            })
            .collect();
        let time_column = header.iter().position(|h| *h == "System - Time");
        let (offsets, interval_ms) = pcm_row_offsets(&rows, time_column);
        let rows = rows
            .into_iter()
            .zip(offsets)
            .take_while(|(_, offset)| *offset < NTUA_TEST_MS)
            .map(|((line, fields), offset)| (line, fields, offset))
            .collect();
        Self {
            header,
            rows,
            interval_ms,
        }
    }
}

/// PCM's interval when a file's rows carry no readable time.
const NTUA_PCM_INTERVAL_MS: i64 = 5_000;

/// Each row's milliseconds after the first row, and the file's interval: the median step
/// per row between rows whose `HH:MM:SS.mmm` times read ([`NTUA_PCM_INTERVAL_MS`] when
/// fewer than two do). A row with a readable time is placed by its clock from the last
/// row that had one — past midnight only when the clock goes from after 23:00 to before
/// 01:00; a row whose time does not read, or whose clock went back, one interval after the
/// row before.
fn pcm_row_offsets(rows: &[(usize, Vec<&str>)], time_column: Option<usize>) -> (Vec<i64>, i64) {
    const HOUR: i64 = 3_600_000;
    let clocks: Vec<Option<i64>> = rows
        .iter()
        .map(|(_, fields)| time_column.and_then(|c| clock_ms(fields[c])))
        .collect();
    let forward = |a: i64, b: i64| match b - a {
        d if d >= 0 => Some(d),
        _ if a >= 23 * HOUR && b < HOUR => Some(b + 24 * HOUR - a),
        _ => None,
    };
    let readable: Vec<(usize, i64)> = clocks
        .iter()
        .enumerate()
        .filter_map(|(k, c)| c.map(|c| (k, c)))
        .collect();
    let mut steps: Vec<i64> = readable
        .windows(2)
        .filter_map(|w| forward(w[0].1, w[1].1).map(|d| d / (w[1].0 - w[0].0) as i64))
        .filter(|d| *d > 0)
        .collect();
    steps.sort_unstable();
    let interval_ms = steps
        .get(steps.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(NTUA_PCM_INTERVAL_MS);
    let mut offsets: Vec<i64> = Vec::with_capacity(rows.len());
    let mut last_read: Option<(i64, i64)> = None; // (clock, offset)
    for clock in &clocks {
        let by_interval = offsets.last().map_or(0, |o| o + interval_ms);
        let offset = match (last_read, clock) {
            (Some((c0, o0)), Some(c)) => forward(c0, *c)
                .map(|d| o0 + d)
                .filter(|o| *o >= offsets.last().copied().unwrap_or(0))
                .unwrap_or(by_interval),
            _ => by_interval,
        };
        if let Some(c) = clock {
            last_read = Some((*c, offset));
        }
        offsets.push(offset);
    }
    (offsets, interval_ms)
}

/// Milliseconds since midnight of a clock time `HH:MM:SS` or `HH:MM:SS.fff`.
fn clock_ms(time: &str) -> Option<i64> {
    let mut parts = time.trim().splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    let valid =
        (0..24).contains(&hours) && (0..60).contains(&minutes) && (0.0..61.0).contains(&seconds);
    valid.then(|| (hours * 60 + minutes) * 60_000 + (seconds * 1000.0).round() as i64)
}

/// The comma-separated fields of line `line_no`, if there are `width` of them (else the
/// line is noted in `skipped`).
fn csv_fields<'l>(
    path: &Path,
    line_no: usize,
    line: &'l str,
    width: usize,
    skipped: &mut Skipped,
) -> Option<Vec<&'l str>> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.len() == width {
        return Some(fields);
    }
    skipped.add(
        path,
        line_no,
        format_args!("expected {width} fields, found {}", fields.len()),
    );
    None
}

/// For each `(column, metric)`, the column's position in `header` with the metric; a
/// column not there is noted in `skipped` (its values are left out).
fn metric_columns<'m>(
    path: &Path,
    header: &[&str],
    wanted: &[(&str, &'m str)],
    skipped: &mut Skipped,
) -> Vec<(usize, &'m str)> {
    wanted
        .iter()
        .filter_map(|(column, metric)| {
            let found = header
                .iter()
                .position(|h| h == column)
                .map(|i| (i, *metric));
            if found.is_none() {
                skipped.add(path, 1, format_args!("missing column {column}: left out"));
            }
            found
        })
        .collect()
}

/// A file's text; bytes that are not UTF-8 become U+FFFD (the values they were in then
/// fail to parse and are left out and counted, like any bad value).
fn read(path: &Path) -> Result<String, TraceError> {
    let bytes = std::fs::read(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn list_files(path: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, TraceError> {
    let io = |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && keep(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TraceError::Empty {
            path: path.to_path_buf(),
            what: "trace files",
        });
    }
    Ok(files)
}

fn list_files_recursive(path: &Path, name: &str) -> Result<Vec<PathBuf>, TraceError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| TraceError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                found.push(p);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(TraceError::Empty {
            path: path.to_path_buf(),
            what: "nginx_metrics.csv files",
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitbrains_rows_become_ten_samples_and_duplicates_drop() {
        let text = "Timestamp [ms];\tCPU cores;\tx;\tx;\tx;\tx;\tx;\tx;\tx;\tx;\tx\n\
                    1375308176;\t2;\t5851.9989;\t747.1;\t12.7;\t8388608.0;\t1308620.0;\t0.0;\t1.0;\t11.0;\t27.2\n\
                    1375308176;\t2;\t5851.9989;\t747.1;\t12.7;\t8388608.0;\t1308620.0;\t0.0;\t1.0;\t11.0;\t27.2\n";
        let mut skipped = Skipped::default();
        let s = parse_bitbrains(Path::new("dir/265.csv"), text, &mut skipped);
        assert!(skipped.is_empty(), "{skipped}");
        assert_eq!(s.len(), 10);
        assert_eq!(s[0].entity, "vm-265");
        assert_eq!(s[0].timestamp_ms, 1_375_308_176_000);
        assert_eq!(s[2].metric, "cpu_usage_mhz");
        assert_eq!(s[2].value, 747.1);
    }

    #[test]
    fn unreadable_lines_and_values_are_left_out_and_counted() {
        let mut skipped = Skipped::default();
        let text = "h\n1;2\nsoon;2;1;1;1;1;1;1;1;1;1\n10;2;1;n/a;1;1;1;1;1;1;inf\n";
        let s = parse_bitbrains(Path::new("1.csv"), text, &mut skipped);
        assert_eq!(s.len(), 8, "the row's 8 readable values are kept");
        assert_eq!(skipped.count, 4);
        assert!(
            skipped.examples[0].starts_with("1.csv:2: expected 11 fields"),
            "{skipped}"
        );
        assert!(
            skipped.examples[1].contains("bad timestamp `soon`"),
            "{skipped}"
        );
        assert!(
            skipped.examples[2].contains("bad cpu_usage_mhz `n/a`"),
            "{skipped}"
        );

        let mut skipped = Skipped::default();
        let s = parse_ntua(
            Path::new("r/nginx_metrics.csv"),
            "Test_ID,Given_RPS\nx,1\n",
            0,
            &mut skipped,
        );
        assert!(s.is_empty());
        assert!(skipped.examples[0].contains("file left out"), "{skipped}");
    }

    #[test]
    fn per_core_rows_become_each_nodes_counters() {
        let mut header = vec!["System - Date".to_string(), "System - Time".to_string()];
        for core in 0..4 {
            for counter in ["IPC", "L3MISS", "L2MISS", "C0res%"] {
                header.push(format!("Core{core} (Socket 0) - {counter}"));
            }
        }
        let text = format!(
            "{}\n\
             2025-07-02,00:39:27.370,1.0,0.1,0.2,1.0,3.0,0.3,0.4,5.0,0.5,0.0,0.0,1.0,1.5,0.0,0.0,3.0\n\
             2025-07-02,00:39:29.370,1.0,0.1,0.2,1.0,3.0,0.3,0.4,5.0,0.5,0.0,0.0,1.0,1.5,0.0,0.0,3.0\n\
             2025-07-02,00:39:31.370,x,0.1,0.2,1.0,3.0,0.3,0.4,5.0,0.5,0.0,0.0,1.0,1.5,0.0,0.0,3.0\n",
            header.join(",")
        );
        let nodes = BTreeMap::from([
            ("a".to_string(), vec![0, 1]),
            ("b".to_string(), vec![2, 3]),
            ("c".to_string(), vec![6]),
        ]);
        let labels = BTreeMap::from([("test".to_string(), "t1".to_string())]);
        let mut skipped = Skipped::default();
        let s = parse_pcm_nodes(Path::new("c.csv"), &text, &nodes, 0, &labels, &mut skipped);
        // Node c's core is not in the file; row 3's IPC of core 0 is not a number.
        assert_eq!(skipped.count, 2, "{skipped}");
        let of = |node: &str, metric: &str| -> Vec<f64> {
            s.iter()
                .filter(|x| {
                    x.labels["node"] == node
                        && x.metric == metric
                        && x.host.as_deref() == Some(node)
                })
                .map(|x| x.value)
                .collect()
        };
        // IPC and C0 residency: the cores' mean; misses: their sum per second (2 s rows).
        assert_eq!(of("a", "pcm_ipc"), [2.0, 2.0]);
        assert_eq!(of("b", "pcm_ipc"), [1.0, 1.0, 1.0]);
        assert_eq!(of("a", "pcm_c0_residency_pct"), [3.0, 3.0, 3.0]);
        assert_eq!(of("b", "pcm_c0_residency_pct"), [2.0, 2.0, 2.0]);
        let l3 = of("a", "pcm_l3_misses_m");
        assert!(l3.len() == 3 && (l3[0] - 0.2).abs() < 1e-12, "{l3:?}");
        assert!(of("c", "pcm_ipc").is_empty());
    }

    #[test]
    fn pcm_system_rows_become_host_counters_of_the_test() {
        let text = "System - Date,System - Time,System - IPC,System - L3MISS,System - L2MISS,System - READ,System - WRITE,System - PhysIPC,System Core C-States - C0res%\n\
                    2025-07-01,05:13:56.141,1.26,0.07,0.80,1.16,0.16,2.52,0.86\n\
                    2025-07-01,05:14:01.141,1.28,x,0.84,0.80,0.14,2.55,0.89\n\
                    2025-07-01,05:14:06.141,1.27\n";
        let labels = BTreeMap::from([("test".to_string(), "t1".to_string())]);
        let mut skipped = Skipped::default();
        let s = parse_pcm_system(
            Path::new("p.csv"),
            text,
            "node-r",
            1000,
            &labels,
            &mut skipped,
        );
        assert_eq!(s.len(), 6 + 5, "two rows, one bad value");
        assert_eq!(skipped.count, 2, "{skipped}");
        let read: Vec<(i64, f64)> = s
            .iter()
            .filter(|s| s.metric == "pcm_mem_read_gbps")
            .map(|s| (s.timestamp_ms, s.value))
            .collect();
        // GB per 5-second interval, as GB/s; IPC is a ratio, as it is.
        assert_eq!(read.len(), 2);
        for ((t, v), (want_t, want)) in read.iter().zip([(1000, 0.232), (6000, 0.16)]) {
            assert!(*t == want_t && (v - want).abs() < 1e-12, "{read:?}");
        }
        assert!(s.iter().any(|s| s.metric == "pcm_ipc" && s.value == 1.26));
        assert!(s
            .iter()
            .all(|s| s.entity == "node-r" && s.labels["test"] == "t1"));
        let no_read = "System - Date,System - IPC\n2025-07-01,1.1\n";
        let mut skipped = Skipped::default();
        let s = parse_pcm_system(Path::new("q.csv"), no_read, "h", 0, &labels, &mut skipped);
        assert_eq!(s.len(), 1);
        assert_eq!(skipped.count, PCM_SYSTEM_METRICS.len() - 1, "{skipped}");
    }

    #[test]
    fn pcm_rates_use_the_files_own_interval() {
        // A run sampled every 2 s, across midnight: misses and traffic per second are the
        // per-row counts divided by 2 s, not by 5 s, and times follow the rows' clocks.
        let text = "System - Date,System - Time,System - IPC,System - L3MISS,System - L2MISS,System - READ,System - WRITE,System Core C-States - C0res%\n\
                    2025-07-16,23:59:58.000,0.86,0.02,0.07,0.60,0.10,0.10\n\
                    2025-07-17,00:00:00.000,0.86,0.04,0.10,0.40,0.08,0.12\n\
                    2025-07-17,00:00:02.001,0.86,0.06,0.10,0.20,0.06,0.12\n";
        let labels = BTreeMap::new();
        let mut skipped = Skipped::default();
        let s = parse_pcm_system(Path::new("p.csv"), text, "h", 0, &labels, &mut skipped);
        assert!(skipped.is_empty(), "{skipped}");
        let l3: Vec<(i64, f64)> = s
            .iter()
            .filter(|s| s.metric == "pcm_l3_misses_m")
            .map(|s| (s.timestamp_ms, s.value))
            .collect();
        let want = [(0, 0.01), (2000, 0.02), (4001, 0.03)];
        assert_eq!(l3.len(), 3, "{l3:?}");
        for ((t, v), (want_t, want_v)) in l3.iter().zip(want) {
            assert!(*t == want_t && (v - want_v).abs() < 1e-12, "{l3:?}");
        }
        // One time that does not read costs that row its clock, not the file its interval:
        // it is one interval (2 s) after the row before.
        let ipc_times = |text: &str, skipped: &mut Skipped| -> Vec<i64> {
            parse_pcm_system(Path::new("r.csv"), text, "h", 0, &labels, skipped)
                .iter()
                .filter(|s| s.metric == "pcm_ipc")
                .map(|s| s.timestamp_ms)
                .collect()
        };
        let one_bad = text.replace("00:00:00.000", "??");
        assert_eq!(ipc_times(&one_bad, &mut skipped), [0, 2000, 4001]);
        // Without readable times every row is 5 s after the one before.
        let untimed = text.replace("System - Time", "System - Clock");
        assert_eq!(ipc_times(&untimed, &mut skipped), [0, 5000, 10_000]);
        assert_eq!(clock_ms("17:14:15.847"), Some(62_055_847));
        assert_eq!(clock_ms("24:00:00"), None);
    }

    #[test]
    fn ntua_rows_carry_their_scenario() {
        let text = "Test_ID,Replicas,Interference_Name,Interference_ID,Given_RPS,Throughput,Avg_Latency,P50_Latency,P75_Latency,P90_Latency,P95_Latency,P99_Latency,Max_Latency,Errors\n\
                    3replicas_scenario0_100rps,3,Baseline0,0,100,100.0,0.321,0.334,0.0,0.471,0.579,0.647,2.47,0\n";
        let mut skipped = Skipped::default();
        let s = parse_ntua(
            Path::new("TheGame_V03/nginx_metrics.csv"),
            text,
            2,
            &mut skipped,
        );
        assert!(skipped.is_empty(), "{skipped}");
        assert_eq!(s.len(), 9, "P75 of 0.0 is skipped");
        let p99 = s
            .iter()
            .find(|s| s.metric == "p99_latency_ms")
            .expect("p99");
        assert_eq!(p99.value, 0.647);
        assert_eq!(p99.labels["interference"], "Baseline0");
        assert_eq!(p99.entity, "nginx-TheGame_V03");
        assert_eq!(p99.timestamp_ms, NTUA_EPOCH_MS + 2 * NTUA_RUN_MS);
    }
}
