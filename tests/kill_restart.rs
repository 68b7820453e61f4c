//! At-least-once ingestion with dedupe, end to end through the `dcpilot` binary: the
//! background process is SIGKILLed mid-stream (twice) and restarted; in the end every
//! sample is in the table once — none lost, none duplicated.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dcpilot_background::replay::send_waiting;
use dcpilot_background::{BackgroundConfig, EmbeddedBroker, Int64Array, OpenMode, TelemetryStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TOPIC: &str = "dcpilot.telemetry";
const PARTITIONS: i32 = 4;
const GROUP: &str = "kill-restart";
const SAMPLES_PER_MESSAGE: i64 = 10;

/// Produces `messages` native messages of ten samples each, numbered from `first`.
fn produce(brokers: &str, first: i64, messages: i64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in first..first + messages {
        let samples: Vec<_> = (0..SAMPLES_PER_MESSAGE)
            .map(|m| {
                serde_json::json!({
                    "timestamp_ms": 1_700_000_000_000i64 + i * 1000,
                    "entity": format!("vm-{}", i % 16),
                    "metric": format!("m{m}"),
                    "value": i as f64,
                })
            })
            .collect();
        let payload = serde_json::to_vec(&samples).expect("serialize");
        let key = format!("vm-{}", i % 16);
        let record = BaseRecord::to(TOPIC).key(&key).payload(&payload);
        send_waiting(&producer, record).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// (committed offsets summed over partitions, high watermarks summed).
fn progress(brokers: &str) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", GROUP)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    let mut high = 0;
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
        high += consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(5))
            .expect("watermarks")
            .1;
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .expect("committed offsets")
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum();
    (committed, high)
}

fn start_background(data_dir: &Path, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("background")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dcpilot background")
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_mid_stream_loses_and_duplicates_nothing() {
    let broker = EmbeddedBroker::start(
        &[TOPIC, "dcpilot.landscape", "dcpilot.telemetry.dlq"],
        PARTITIONS,
        None,
    )
    .expect("broker");
    let brokers = broker.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("background.toml");
    // Small batches: many commits, so the kills land between them.
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{GROUP}\"\n\
             [ingest]\nmax_batch_samples = 500\nmax_batch_delay_ms = 50\n\
             [http]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .expect("write config");
    let data_dir = dir.path().join("data");

    // Enough that the stream outlasts the first commit by far, within the embedded
    // broker's 5 MB per partition (it drops older messages beyond).
    let per_round = 8_000;
    let mut produced = 0;
    for round in 0..2 {
        produce(&brokers, produced, per_round);
        produced += per_round;
        let mut child = start_background(&data_dir, &config);
        let before = progress(&brokers).0;
        wait_until("a commit", Duration::from_secs(60), || {
            progress(&brokers).0 > before
        });
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let (committed, high) = progress(&brokers);
        assert!(
            committed < high,
            "round {round}: the kill came after everything was committed ({committed}/{high}); \
             the test must kill mid-stream"
        );
    }

    // The last run finishes the stream and stops cleanly on SIGTERM.
    let mut child = start_background(&data_dir, &config);
    wait_until("every offset committed", Duration::from_secs(120), || {
        let (committed, high) = progress(&brokers);
        committed == high
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = child.wait().expect("reap");
    assert!(exit.success(), "dcpilot background exited with {exit}");

    let store = TelemetryStore::open(
        Some(&data_dir),
        &BackgroundConfig::default().store,
        OpenMode::ReadOnly,
    )
    .expect("open the store read-only");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let count = |sql: &str| {
        runtime.block_on(async {
            let batches = store.sql(sql).await.expect("query");
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("integer")
                .value(0)
        })
    };
    let want = produced * SAMPLES_PER_MESSAGE;
    assert_eq!(
        count("SELECT count(*) FROM telemetry"),
        want,
        "samples lost or duplicated"
    );
    assert_eq!(
        count("SELECT count(*) FROM (SELECT DISTINCT entity, metric, labels, ts FROM telemetry)"),
        want
    );
}
