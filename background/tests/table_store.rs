//! The telemetry table's insert path: duplicates dropped within and across batches, rows
//! split over time partitions, and a batch that cannot be made durable leaves nothing
//! behind (its rows are not mistaken for duplicates when it comes again).

use std::collections::BTreeMap;

use dcpilot_background::{RecordBatch, TableSettings, TableSpec, TableStore};
use dcpilot_schemas::decode::SampleSink;
use dcpilot_schemas::{TelemetryBatchBuilder, TelemetrySample};

const HOUR_MS: i64 = 3_600_000;

/// One sample per (entity, second) pair given.
fn batch(samples: &[(&str, i64)]) -> RecordBatch {
    let mut builder = TelemetryBatchBuilder::with_capacity(samples.len());
    for (entity, ms) in samples {
        let sample = TelemetrySample {
            timestamp_ms: *ms,
            entity: (*entity).into(),
            host: None,
            workload: None,
            metric: "x".into(),
            value: 1.0,
            labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        builder.push(&sample.as_ref());
    }
    builder.finish()
}

fn table(dir: Option<&std::path::Path>) -> TableStore {
    TableStore::open(
        TableSpec::telemetry(),
        TableSettings {
            retention_ms: 24 * HOUR_MS,
            partition_ms: HOUR_MS,
            dir: dir.map(|d| d.to_path_buf()),
            spill: true,
            read_only: false,
            memory_ceiling_bytes: None,
        },
    )
    .expect("table")
}

#[test]
fn duplicates_are_dropped_within_and_across_batches_and_buckets_split() {
    let t = table(None);
    let first = t
        .insert(&batch(&[
            ("a", 1000),
            ("b", 1000),
            ("a", 1000),
            ("a", HOUR_MS + 5),
        ]))
        .expect("insert");
    assert_eq!((first.inserted, first.duplicates), (3, 1));
    let again = t
        .insert(&batch(&[("a", 1000), ("c", 1000), ("a", HOUR_MS + 5)]))
        .expect("insert");
    assert_eq!((again.inserted, again.duplicates), (1, 2));
    assert_eq!(t.live_rows(), 4);
    assert_eq!(t.inserted_rows(), 4);
}

#[test]
fn a_batch_that_cannot_be_made_durable_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = table(Some(dir.path()));
    t.insert(&batch(&[("a", 1000)])).expect("insert");
    // Bucket 1's segment directory cannot be created: a file is in the way.
    let blocker = dir.path().join("live").join("1");
    std::fs::write(&blocker, b"").expect("block");
    let failing = batch(&[("b", 2000), ("c", HOUR_MS + 1)]);
    assert!(t.insert(&failing).is_err());
    assert_eq!(t.live_rows(), 1, "nothing of the failed batch is visible");
    std::fs::remove_file(&blocker).expect("unblock");
    let retried = t.insert(&failing).expect("retry");
    assert_eq!(
        (retried.inserted, retried.duplicates),
        (2, 0),
        "the retry's rows are new, not duplicates"
    );
    assert_eq!(t.live_rows(), 3);
    // Recovered from disk: the same three rows, and their keys still deduplicate.
    drop(t);
    let reopened = table(Some(dir.path()));
    assert_eq!(reopened.live_rows(), 3);
    let replayed = reopened.insert(&failing).expect("insert");
    assert_eq!((replayed.inserted, replayed.duplicates), (0, 2));
}

fn count_rows(table: TableStore) -> (i64, TableStore) {
    let table = std::sync::Arc::new(table);
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", table.clone()).expect("register");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let batches = runtime
        .block_on(async { ctx.sql("SELECT count(*) FROM t").await?.collect().await })
        .expect("count");
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<dcpilot_background::Int64Array>()
        .expect("count")
        .value(0);
    drop(ctx);
    (
        n,
        std::sync::Arc::try_unwrap(table).unwrap_or_else(|_| panic!("table still shared")),
    )
}

#[test]
fn a_table_over_its_memory_ceiling_spills_its_oldest_partitions_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |ceiling| {
        TableStore::open(
            TableSpec::telemetry(),
            TableSettings {
                retention_ms: 24 * HOUR_MS,
                partition_ms: HOUR_MS,
                dir: Some(dir.path().to_path_buf()),
                spill: true,
                read_only: false,
                memory_ceiling_bytes: ceiling,
            },
        )
        .expect("table")
    };
    // Ten hourly partitions of 2,000 rows; one partition alone is far under the ceiling,
    // all ten together far over it.
    let hour = |h: i64| -> Vec<(String, i64)> {
        (0..2_000)
            .map(|i| (format!("vm-{i}"), h * HOUR_MS + 1_000))
            .collect()
    };
    let unbounded = open(None);
    for h in 0..10 {
        let rows = hour(h);
        let refs: Vec<(&str, i64)> = rows.iter().map(|(e, t)| (e.as_str(), *t)).collect();
        unbounded.insert(&batch(&refs)).expect("insert");
    }
    let all_in_memory = unbounded.live_bytes();
    drop(unbounded);
    std::fs::remove_dir_all(dir.path()).expect("clean");

    let ceiling = all_in_memory / 4;
    let t = open(Some(ceiling));
    for h in 0..10 {
        let rows = hour(h);
        let refs: Vec<(&str, i64)> = rows.iter().map(|(e, t)| (e.as_str(), *t)).collect();
        let outcome = t.insert(&batch(&refs)).expect("insert");
        assert_eq!(outcome.inserted, 2_000);
        assert!(
            t.live_bytes() <= ceiling,
            "hour {h}: {} bytes held, ceiling {ceiling}",
            t.live_bytes()
        );
    }
    assert!(t.live_rows() < 20_000 && t.live_rows() >= 2_000);
    assert!(
        !t.archive_files().is_empty(),
        "the oldest partitions went to Parquet"
    );
    // A row of a partition moved out early is still recognised as a duplicate.
    let again = t.insert(&batch(&[("vm-7", 1_000)])).expect("insert");
    assert_eq!((again.inserted, again.duplicates), (0, 1));
    let (n, t) = count_rows(t);
    assert_eq!(n, 20_000, "every row queryable, in memory or in Parquet");
    // After a restart: the same rows, under the ceiling, duplicates still caught.
    drop(t);
    let t = open(Some(ceiling));
    assert!(t.live_bytes() <= ceiling);
    let again = t.insert(&batch(&[("vm-9", 1_000)])).expect("insert");
    assert_eq!((again.inserted, again.duplicates), (0, 1));
    let (n, _) = count_rows(t);
    assert_eq!(n, 20_000);
    println!("10 partitions of 2,000 rows: {all_in_memory} bytes in memory without a ceiling ({} per row)", all_in_memory / 20_000);
}

#[test]
fn late_rows_over_many_archived_partitions_are_still_deduplicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TableStore::open(
        TableSpec::telemetry(),
        TableSettings {
            retention_ms: HOUR_MS,
            partition_ms: HOUR_MS,
            dir: Some(dir.path().to_path_buf()),
            spill: true,
            read_only: false,
            memory_ceiling_bytes: None,
        },
    )
    .expect("table");
    let hour = |h: i64| -> Vec<(String, i64)> {
        (0..10)
            .map(|i| (format!("vm-{i}"), h * HOUR_MS + i * 1_000))
            .collect()
    };
    let insert = |rows: &[(String, i64)]| {
        let refs: Vec<(&str, i64)> = rows.iter().map(|(e, t)| (e.as_str(), *t)).collect();
        t.insert(&batch(&refs)).expect("insert")
    };
    for h in 0..13 {
        insert(&hour(h));
    }
    // One new late row in each of ten archived partitions: more than the archive's key
    // cache holds, so it is emptied part-way through the batch.
    let news: Vec<(String, i64)> = (0..10)
        .map(|h| ("new".to_string(), h * HOUR_MS + 500))
        .collect();
    let outcome = insert(&news);
    assert_eq!((outcome.inserted, outcome.late), (10, 10));
    // The first partition's rows, delivered again, are all known.
    let again = insert(&hour(0));
    assert_eq!((again.inserted, again.duplicates), (0, 10));
    let again = insert(&news);
    assert_eq!((again.inserted, again.duplicates), (0, 10));
}
