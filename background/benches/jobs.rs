//! Background jobs on real traces: for each built-in job, `job_features/<job>` runs its SQL
//! over the `telemetry` table and turns the rows into its dataset (throughput in telemetry
//! samples scanned per second), and `job_train/<job>` trains and judges it on that dataset
//! (rows of its training window, time-based holdout, baselines) — what one run costs
//! beyond the query.
//!
//! The traces come from `DCPILOT_BENCH_SHARED` (default `../shared/data` beside the
//! workspace): `bitbrains_rnd/2013-8` for `cpu-demand` and `rightsizing`,
//! `ntua_interference/Profiling` for `interference-slowdown`. Without it, the samples
//! bundled under `tests/data` are used and the bench ids say `sample` instead of `full`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dcpilot_background::{RecordBatch, TelemetryStore};
use dcpilot_lab::datasets::{read_trace, TraceFormat};
use dcpilot_pipelines::{evaluate_job, Registry};

/// (job, trace format, path under the shared data, path under tests/data)
const JOBS: &[(&str, TraceFormat, &str, &str)] = &[
    (
        "cpu-demand",
        TraceFormat::Bitbrains,
        "bitbrains_rnd/2013-8",
        "bitbrains_rnd/2013-8",
    ),
    (
        "interference-slowdown",
        TraceFormat::Ntua,
        "ntua_interference/Profiling",
        "ntua_interference",
    ),
    (
        "rightsizing",
        TraceFormat::Bitbrains,
        "bitbrains_rnd/2013-8",
        "bitbrains_rnd/2013-8",
    ),
];

fn source(shared_path: &str, sample_path: &str) -> (PathBuf, &'static str) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = std::env::var_os("DCPILOT_BENCH_SHARED")
        .map_or_else(|| workspace.join("../shared/data"), PathBuf::from)
        .join(shared_path);
    if shared.is_dir() {
        (shared, "full")
    } else {
        (workspace.join("tests/data").join(sample_path), "sample")
    }
}

fn jobs(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let registry = Registry::builtin().expect("built-in jobs");
    for (name, format, shared_path, sample_path) in JOBS {
        let job = registry.get(name).expect("registered");
        let spec = job.spec();
        let (dir, label) = source(shared_path, sample_path);
        let samples = read_trace(*format, &dir).expect("read the trace").samples;
        let tables = TelemetryStore::from_samples(&samples).expect("tables");
        let query = || -> Vec<RecordBatch> {
            runtime.block_on(async {
                tables
                    .context()
                    .sql(&spec.sql)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run")
            })
        };
        let data = job
            .dataset(&query())
            .expect("dataset")
            .within_window(spec.window_secs);
        eprintln!(
            "{name}: {} telemetry samples from {} → {} rows",
            samples.len(),
            dir.display(),
            data.times.len()
        );

        let mut group = c.benchmark_group("job_features");
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(20));
        group.throughput(Throughput::Elements(samples.len() as u64));
        group.bench_function(format!("{name}/{label}"), |b| {
            b.iter(|| job.dataset(&query()).expect("dataset"))
        });
        group.finish();

        let mut group = c.benchmark_group("job_train");
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(30));
        group.throughput(Throughput::Elements(data.times.len() as u64));
        group.bench_function(format!("{name}/{label}"), |b| {
            b.iter(|| evaluate_job(spec, &data, None).expect("train"))
        });
        group.finish();
    }
}

criterion_group!(benches, jobs);
criterion_main!(benches);
