//! Readers of the real traces dcpilot is built and judged on (see `tests/data/README.md`):
//! the Bitbrains GWA-T-12 VM utilisation trace and the NTUA nginx interference measurements.
//! Both become [`TelemetrySample`]s, so they can be replayed onto `dcpilot.telemetry`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::wire::TelemetrySample;

/// A trace file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file or directory cannot be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line does not have the expected shape.
    #[error("{}:{line}: {reason}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No trace files were found.
    #[error("{}: no {what} found", .path.display())]
    Empty {
        /// Where we looked.
        path: PathBuf,
        /// What we looked for.
        what: &'static str,
    },
}

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

impl std::str::FromStr for TraceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bitbrains" => Ok(Self::Bitbrains),
            "ntua" => Ok(Self::Ntua),
            "native" => Ok(Self::Native),
            other => Err(format!(
                "unknown trace format `{other}`: expected bitbrains, ntua or native"
            )),
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

/// Reads every sample of a trace at `path`, sorted by time (stable within a time).
pub fn read_trace(format: TraceFormat, path: &Path) -> Result<Vec<TelemetrySample>, TraceError> {
    let mut samples = match format {
        TraceFormat::Bitbrains => {
            let files = list_files(path, |p| p.extension().is_some_and(|e| e == "csv"))?;
            let mut all = Vec::new();
            for file in &files {
                let text = read(file)?;
                all.extend(parse_bitbrains(file, &text)?);
            }
            all
        }
        TraceFormat::Ntua => {
            let files = list_files_recursive(path, "nginx_metrics.csv")?;
            let mut all = Vec::new();
            for (run_index, file) in files.iter().enumerate() {
                let text = read(file)?;
                all.extend(parse_ntua(file, &text, run_index)?);
            }
            all
        }
        TraceFormat::Native => {
            let files = list_files(path, |p| {
                p.extension().is_some_and(|e| e == "json" || e == "ndjson")
            })?;
            let mut all = Vec::new();
            for file in &files {
                let text = read(file)?;
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let sample = serde_json::from_str(line).map_err(|e| TraceError::Malformed {
                        path: file.clone(),
                        line: i + 1,
                        reason: e.to_string(),
                    })?;
                    all.push(sample);
                }
            }
            all
        }
    };
    samples.sort_by_key(|s| s.timestamp_ms);
    Ok(samples)
}

/// Parses one Bitbrains VM file (`;\t`-separated, Unix seconds despite the `[ms]` header).
/// The VM id is the file stem; repeated timestamps (VM 265) keep their first row.
pub fn parse_bitbrains(path: &Path, text: &str) -> Result<Vec<TelemetrySample>, TraceError> {
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
        let malformed = |reason: String| TraceError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let fields: Vec<&str> = line.split(';').map(str::trim).collect();
        if fields.len() != 1 + BITBRAINS_METRICS.len() {
            return Err(malformed(format!(
                "expected 11 fields, found {}",
                fields.len()
            )));
        }
        let seconds: i64 = fields[0]
            .parse()
            .map_err(|_| malformed(format!("bad timestamp `{}`", fields[0])))?;
        if !seen.insert(seconds) {
            continue;
        }
        for (metric, raw) in BITBRAINS_METRICS.iter().zip(&fields[1..]) {
            let value: f64 = raw
                .parse()
                .map_err(|_| malformed(format!("bad {metric} `{raw}`")))?;
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
    Ok(samples)
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
) -> Result<Vec<TelemetrySample>, TraceError> {
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
    let missing = |name: &str| TraceError::Malformed {
        path: path.to_path_buf(),
        line: 1,
        reason: format!("missing column {name}"),
    };
    let test_col = col("Test_ID").ok_or_else(|| missing("Test_ID"))?;
    let replicas_col = col("Replicas").ok_or_else(|| missing("Replicas"))?;
    let interference_col = col("Interference_Name").ok_or_else(|| missing("Interference_Name"))?;
    let metric_cols = COLUMNS
        .iter()
        .map(|(c, m)| col(c).map(|i| (i, *m)).ok_or_else(|| missing(c)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut samples = Vec::new();
    for (test_index, (i, line)) in lines.filter(|(_, l)| !l.trim().is_empty()).enumerate() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let malformed = |reason: String| TraceError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        if fields.len() != header.len() {
            return Err(malformed(format!(
                "expected {} fields, found {}",
                header.len(),
                fields.len()
            )));
        }
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
            let value: f64 = raw
                .parse()
                .map_err(|_| malformed(format!("bad {metric} `{raw}`")))?;
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
    Ok(samples)
}

fn read(path: &Path) -> Result<String, TraceError> {
    std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
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
        let s = parse_bitbrains(Path::new("dir/265.csv"), text).expect("parses");
        assert_eq!(s.len(), 10);
        assert_eq!(s[0].entity, "vm-265");
        assert_eq!(s[0].timestamp_ms, 1_375_308_176_000);
        assert_eq!(s[2].metric, "cpu_usage_mhz");
        assert_eq!(s[2].value, 747.1);
        let err = parse_bitbrains(Path::new("1.csv"), "h\n1;2\n").expect_err("short row");
        assert!(err.to_string().contains("1.csv:2"), "{err}");
    }

    #[test]
    fn ntua_rows_carry_their_scenario() {
        let text = "Test_ID,Replicas,Interference_Name,Interference_ID,Given_RPS,Throughput,Avg_Latency,P50_Latency,P75_Latency,P90_Latency,P95_Latency,P99_Latency,Max_Latency,Errors\n\
                    3replicas_scenario0_100rps,3,Baseline0,0,100,100.0,0.321,0.334,0.0,0.471,0.579,0.647,2.47,0\n";
        let s = parse_ntua(Path::new("TheGame_V03/nginx_metrics.csv"), text, 2).expect("parses");
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
