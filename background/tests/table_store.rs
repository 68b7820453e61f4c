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
