//! Every registered job — the built-ins and the README's example — behaves as the runner and
//! the foreground expect: its SQL yields the columns its spec names, it trains on the bundled
//! real-trace sample, its errors are defined, a published model carries its lineage, runs
//! are reproducible, and the served version can be judged on data.

use std::path::Path;
use std::sync::Arc;

use dcpilot_background::{JobsConfig, TelemetryStore};
use dcpilot_info_core::{InfoCore, MemoryStorage};
use dcpilot_pipelines::{evaluate_served, run_once, Job, ModelSpec};
use dcpilot_schemas::traces::{read_trace, TraceFormat};

fn bundled_tables() -> TelemetryStore {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut samples = read_trace(TraceFormat::Bitbrains, &root.join("bitbrains_rnd/2013-8"))
        .expect("bundled Bitbrains sample");
    samples.extend(
        read_trace(TraceFormat::Ntua, &root.join("ntua_interference")).expect("bundled NTUA"),
    );
    TelemetryStore::from_samples(&samples).expect("tables")
}

fn memory_core() -> InfoCore {
    InfoCore::open(Arc::new(MemoryStorage::default()), 5).expect("store")
}

/// Columns the job's spec reads from its query.
fn columns_read(job: &dyn Job) -> Vec<String> {
    let spec = job.spec();
    let mut columns = vec![spec.time_column.clone()];
    if spec.model.is_colouring() {
        columns.extend(["entity", "metric", "value"].map(String::from));
        return columns;
    }
    columns.extend(spec.features.iter().cloned());
    columns.extend(spec.baseline_query_columns());
    match &spec.model {
        ModelSpec::QuantileTable { key, .. } => columns.push(key.clone()),
        _ => columns.push(spec.target.clone()),
    }
    columns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_job_complies() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/examples");
    let registry = JobsConfig {
        spec_dir: Some(examples),
        ..JobsConfig::default()
    }
    .registry()
    .expect("registry");
    let names: Vec<String> = registry.jobs().map(|j| j.name().to_string()).collect();
    for builtin in [
        "cpu-demand",
        "interference-slowdown",
        "rightsizing",
        "memory-demand",
    ] {
        assert!(
            names.iter().any(|n| n == builtin),
            "{builtin} missing: {names:?}"
        );
    }
    let tables = bundled_tables();
    for job in registry.jobs() {
        let name = job.name();
        let spec = job.spec();
        assert!(
            spec.trigger.every_secs.is_some() || spec.trigger.after_rows.is_some(),
            "{name}: no trigger"
        );

        // The query yields every column the spec reads.
        let frame = tables.context().sql(&spec.sql).await.expect("SQL plans");
        let schema = frame.schema().clone();
        for column in columns_read(job.as_ref()) {
            assert!(
                schema.has_column_with_unqualified_name(&column),
                "{name}: the query yields no column {column:?}"
            );
        }

        if spec.model.is_colouring() {
            colouring_complies(job.clone()).await;
            continue;
        }

        // It trains and judges on the bundled sample, with defined errors.
        let core = memory_core();
        let report = run_once(job.clone(), tables.context(), &core)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.model_error.is_finite(), "{name}: {report:?}");
        assert!(report.baseline_error.is_finite(), "{name}: {report:?}");
        assert!(report.train_rows > 0 && report.holdout_rows > 0, "{name}");
        assert!(
            report.published_version.is_some() != report.rejected.is_some(),
            "{name}: published xor rejected: {report:?}"
        );

        // A published model carries its lineage and serves.
        if let Some(version) = report.published_version {
            let snapshot = core.snapshot();
            let served = snapshot.get(name).expect("published model is served");
            assert_eq!(served.version(), version);
            let record = &served.record;
            assert_eq!(record.lineage.job, name);
            assert_eq!(record.lineage.spec_hash.len(), 8, "{name}");
            assert_eq!(
                record.rows as usize,
                report.train_rows + report.holdout_rows,
                "{name}"
            );
            assert!(record.window.start_ms < record.window.end_ms, "{name}");
            assert_eq!(record.features, spec.features);

            let judged = evaluate_served(job.as_ref(), tables.context(), &core)
                .await
                .unwrap_or_else(|e| panic!("{name}: evaluate: {e}"));
            assert_eq!(judged.version, version);
            assert!(judged.model_error.is_finite(), "{name}: {judged:?}");
        }

        // Reproducible: the same data and spec give the same model error.
        let again = run_once(job.clone(), tables.context(), &memory_core())
            .await
            .expect("second run");
        assert_eq!(again.model_error, report.model_error, "{name}");
    }
}

/// A colouring job, on the bundled Online Boutique sample with its graph, publishes every
/// run (nothing to beat), its colouring is served and reproducible, and it is not judged
/// on rows (it points at `dcpilot anomalies evaluate`).
async fn colouring_complies(job: Arc<dyn Job>) {
    use dcpilot_info_core::anomaly::{native, nezha};
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nezha/online-boutique/sample");
    let trace = nezha::load(&sample).expect("bundled Nezha sample");
    let tables = TelemetryStore::from_samples(&native::samples(&trace)).expect("tables");
    assert!(tables
        .graph
        .apply_each(&native::events(&trace.graph, 0))
        .is_empty());
    let tables = &tables;
    let name = job.name().to_string();
    let core = memory_core();
    let report = run_once(job.clone(), tables.context(), &core)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let summary = report.colouring.as_ref().expect("a colouring report");
    assert!(summary.entities > 0, "{name}: {report:?}");
    assert!(summary.top_cause.is_some(), "{name}: {report:?}");
    assert!(report.train_rows > 0, "{name}: {report:?}");
    let version = report.published_version.expect("every run publishes");
    let snapshot = core.snapshot();
    let served = snapshot.get(&name).expect("served");
    assert_eq!(served.version(), version);
    assert_eq!(served.record.lineage.job, name);
    let colouring = &served.prepared.colouring().expect("a colouring").colouring;
    assert_eq!(colouring.entities.len(), summary.entities);
    assert!(
        !colouring.hosts.is_empty(),
        "{name}: the graph places pods on nodes"
    );
    let err = evaluate_served(job.as_ref(), tables.context(), &core)
        .await
        .expect_err("not judged on rows");
    assert!(err.to_string().contains("anomalies evaluate"), "{err}");

    let again = memory_core();
    run_once(job, tables.context(), &again)
        .await
        .expect("again");
    let snapshot = again.snapshot();
    let twice = &snapshot
        .get(&name)
        .and_then(|m| m.prepared.colouring())
        .expect("served")
        .colouring;
    assert_eq!(twice.ranking, colouring.ranking, "{name}: reproducible");
}
