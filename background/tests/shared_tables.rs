//! Every replica's tables under a shared directory, queried as one: rows of all replicas,
//! re-read when another replica writes, with each replica's stored Kafka offsets; and the
//! `[cluster]` section's checks.

use std::collections::BTreeMap;
use std::path::Path;

use dcpilot_background::config::StoreConfig;
use dcpilot_background::{BackgroundConfig, OpenMode, RecordBatch, TelemetryStore};
use dcpilot_schemas::decode::SampleSink;
use dcpilot_schemas::{TelemetryBatchBuilder, TelemetrySample};

/// `count` samples of `entity`, one a second from second `from`.
fn rows(entity: &str, from: i64, count: i64) -> RecordBatch {
    let mut builder = TelemetryBatchBuilder::with_capacity(count as usize);
    for i in from..from + count {
        let sample = TelemetrySample {
            timestamp_ms: 1_700_000_000_000 + i * 1000,
            entity: entity.into(),
            host: None,
            workload: None,
            metric: "x".into(),
            value: i as f64,
            labels: BTreeMap::new(),
        };
        builder.push(&sample.as_ref());
    }
    builder.finish()
}

fn config() -> StoreConfig {
    StoreConfig {
        durable: true,
        spill: true,
        retention_secs: 365 * 86_400,
        partition_secs: 86_400,
        memory_ceiling_mb: 0,
    }
}

/// Replica `name`'s tables under `shared`, as `dcpilot background` keeps them.
fn replica(shared: &Path, name: &str) -> TelemetryStore {
    let tables = shared.join(name).join("tables");
    TelemetryStore::open_with_tables(None, Some(&tables), &config(), OpenMode::ReadWrite)
        .expect("tables")
}

async fn count(store: &TelemetryStore) -> i64 {
    let batches = store
        .sql("SELECT count(*) AS n FROM telemetry")
        .await
        .expect("query");
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<dcpilot_background::Int64Array>()
        .expect("count")
        .value(0)
}

#[tokio::test]
async fn the_trainer_reads_every_replicas_rows_and_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path();
    let r0 = replica(shared, "r0");
    let r1 = replica(shared, "r1");
    r0.telemetry.insert(&rows("vm-1", 0, 100)).expect("insert");
    r0.telemetry
        .record_offsets([("dcpilot.telemetry", 0, 100)])
        .expect("offsets");
    r1.telemetry.insert(&rows("vm-2", 0, 50)).expect("insert");
    r1.telemetry
        .record_offsets([("dcpilot.telemetry", 1, 50), ("dcpilot.telemetry", 1, 20)])
        .expect("offsets");

    let view = r0.share(shared, Some("r0")).expect("share");
    assert_eq!(count(&r0).await, 150, "its own rows and r1's");
    let inputs: BTreeMap<String, BTreeMap<String, i64>> = view
        .last_inputs()
        .into_iter()
        .map(|i| (i.replica, i.offsets))
        .collect();
    assert_eq!(inputs["r0"]["dcpilot.telemetry/0"], 100);
    assert_eq!(inputs["r1"]["dcpilot.telemetry/1"], 50, "offsets only grow");

    // r1 writes more: the next scan sees it; r0's own rows come from memory.
    r1.telemetry.insert(&rows("vm-2", 50, 25)).expect("insert");
    r0.telemetry.insert(&rows("vm-1", 100, 10)).expect("insert");
    assert_eq!(count(&r0).await, 185);

    // A replica restarted on its directory keeps its offsets.
    drop(r1);
    let r1 = replica(shared, "r1");
    assert_eq!(r1.telemetry.stored_offsets()["dcpilot.telemetry/1"], 50);

    // A reader with no tables of its own (`dcpilot query --shared-dir`) sees them all.
    let reader = TelemetryStore::open(None, &config(), OpenMode::ReadOnly).expect("reader");
    reader.share(shared, None).expect("share");
    assert_eq!(count(&reader).await, 185);

    // A directory that is not a replica's is ignored.
    std::fs::create_dir_all(shared.join("lost+found")).expect("mkdir");
    assert_eq!(count(&reader).await, 185);
}

#[test]
fn cluster_settings_are_checked_with_their_keys() {
    let mut config = BackgroundConfig::default();
    config.cluster.enabled = true;
    config.cluster.replica_id = Some("bad/name".into());
    config.cluster.catch_up_timeout_secs = 0;
    let problems = config.problems().join("\n");
    for key in [
        "cluster.enabled: needs kafka.brokers",
        "cluster.shared_dir: required",
        "cluster.replica_id: \"bad/name\"",
        "cluster.catch_up_timeout_secs",
    ] {
        assert!(problems.contains(key), "{key} missing in:\n{problems}");
    }
    config.kafka.brokers = Some("127.0.0.1:9092".into());
    config.cluster.shared_dir = Some("/shared".into());
    config.cluster.replica_id = Some("bg-0".into());
    config.cluster.catch_up_timeout_secs = 60;
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    config.store.durable = false;
    assert!(config
        .problems()
        .join("\n")
        .contains("store.durable: must be true"));
    config.store.durable = true;
    assert_eq!(
        config.cluster.tables_dir("bg-0"),
        Some(Path::new("/shared/bg-0/tables").to_path_buf())
    );
}

#[test]
fn a_job_keeps_its_lease_partition() {
    use dcpilot_background::cluster::lease_partition;
    for job in ["rightsizing", "cpu-demand", "interference"] {
        let p = lease_partition(job, 12);
        assert!((0..12).contains(&p));
        assert_eq!(p, lease_partition(job, 12), "stable across replicas");
    }
    assert_eq!(lease_partition("rightsizing", 1), 0);
}
