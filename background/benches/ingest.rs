//! Ingest throughput against the embedded Kafka-protocol broker over loopback TCP:
//! `raw_consume` fetches the messages and touches their payloads; `ingest` also decodes them,
//! builds Arrow batches and inserts them into the telemetry table (dedupe, time
//! partitions; in memory, as durability is a per-batch fsync measured elsewhere). One
//! consumer thread, topics of 1 and 4 partitions, the same messages in both.
//!
//! Messages are the Bitbrains sample bundled under `tests/data` replayed as native JSON; set
//! `DCPILOT_BENCH_DATA` to a Bitbrains directory (e.g. `../shared/data/bitbrains/...`) to use
//! another trace. The mock broker keeps the newest 5 MB per partition, so the bench uses
//! at most 4.5 MB of messages.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dcpilot_background::ingest::Assembler;
use dcpilot_background::replay::{encode_messages, send_waiting};
use dcpilot_background::{EmbeddedBroker, TableSettings, TableSpec, TableStore};
use dcpilot_lab::datasets::{read_trace, TraceFormat};
use dcpilot_schemas::decode::Format;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const MAX_BYTES: usize = 4_500_000;
const BATCH_SAMPLES: usize = 50_000;

struct Setup {
    _broker: EmbeddedBroker,
    brokers: String,
    messages: u64,
    samples: u64,
}

fn setup() -> Setup {
    let source = std::env::var_os("DCPILOT_BENCH_DATA").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/data/bitbrains_rnd/2013-8"
            ))
        },
        PathBuf::from,
    );
    let mut samples = read_trace(TraceFormat::Bitbrains, &source)
        .expect("read the trace")
        .samples;
    samples.sort_by_key(|s| s.timestamp_ms);
    let mut messages = encode_messages(&samples);
    let mut bytes = 0;
    messages.retain(|m| {
        bytes += m.2.len();
        bytes <= MAX_BYTES
    });
    let sample_count: u64 = messages.iter().map(|m| m.3 as u64).sum();
    let broker = EmbeddedBroker::start(&[], 1, None).expect("broker");
    let brokers = broker.bootstrap_servers();
    for partitions in [1, 4] {
        let topic = topic(partitions);
        broker.create_topic(&topic, partitions).expect("topic");
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        for (i, (_, ts, payload, _)) in messages.iter().enumerate() {
            let record = BaseRecord::<(), Vec<u8>>::to(&topic)
                .payload(payload)
                .timestamp(*ts)
                .partition(i as i32 % partitions);
            send_waiting(&producer, record).expect("send");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
    Setup {
        _broker: broker,
        brokers,
        messages: messages.len() as u64,
        samples: sample_count,
    }
}

fn topic(partitions: i32) -> String {
    format!("bench-{partitions}p")
}

/// A consumer for the bench (no group membership, no commits: the bench measures fetching
/// and what is done with the messages). Fetches are tuned for throughput on loopback.
fn consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("queued.min.messages", "1000000")
        .create()
        .expect("consumer")
}

/// (Re)assigns every partition of the topic from the beginning.
fn rewind(consumer: &BaseConsumer, partitions: i32) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic(partitions), p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
}

/// Polls `messages` messages, handing each payload to `each`.
fn drain(consumer: &BaseConsumer, messages: u64, mut each: impl FnMut(&[u8], Option<i64>)) {
    let mut seen = 0;
    while seen < messages {
        match consumer.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                each(m.payload().unwrap_or_default(), m.timestamp().to_millis());
                seen += 1;
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => panic!("no message within 5 s ({seen}/{messages})"),
        }
    }
}

/// The telemetry and landscape tables in memory (the per-batch fsync is measured elsewhere).
fn memory_tables() -> (TableStore, TableStore) {
    let settings = TableSettings {
        retention_ms: 30 * 86_400_000,
        partition_ms: 3_600_000,
        dir: None,
        spill: false,
        read_only: false,
        memory_ceiling_bytes: None,
    };
    (
        TableStore::open(TableSpec::telemetry(), settings.clone()).expect("table"),
        TableStore::open(TableSpec::landscape(), settings).expect("table"),
    )
}

fn assembler() -> Assembler {
    Assembler::new(
        Format::Auto,
        &Default::default(),
        "landscape",
        BATCH_SAMPLES,
    )
}

fn bench(c: &mut Criterion) {
    let setup = setup();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(setup.samples));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for partitions in [1, 4] {
        // One consumer per topic, connected before measuring; each iteration rewinds it.
        let consumer = consumer(&setup.brokers);
        rewind(&consumer, partitions);
        drain(&consumer, setup.messages, |_, _| {});
        group.bench_with_input(
            BenchmarkId::new("raw_consume", partitions),
            &partitions,
            |b, &partitions| {
                b.iter(|| {
                    rewind(&consumer, partitions);
                    let mut bytes = 0usize;
                    drain(&consumer, setup.messages, |payload, _| {
                        bytes += payload.len()
                    });
                    bytes
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decode_batch_store", partitions),
            &partitions,
            |b, &partitions| {
                b.iter(|| {
                    rewind(&consumer, partitions);
                    let (telemetry, landscape) = memory_tables();
                    let mut assembler = assembler();
                    drain(&consumer, setup.messages, |payload, ts| {
                        let (_, outcome) = assembler.add("telemetry", Some(payload), ts);
                        assert!(outcome.is_clean());
                        if assembler.pending_rows() >= BATCH_SAMPLES {
                            assembler.store(&telemetry, &landscape).expect("store");
                        }
                    });
                    assembler.store(&telemetry, &landscape).expect("store");
                    assert_eq!(telemetry.live_rows() as u64, setup.samples);
                })
            },
        );
    }
    group.finish();

    // Memory: what the stored samples hold in the table (Arrow buffers and row keys).
    let consumer = consumer(&setup.brokers);
    rewind(&consumer, 1);
    let (telemetry, landscape) = memory_tables();
    let mut assembler = assembler();
    drain(&consumer, setup.messages, |payload, ts| {
        let _ = assembler.add("telemetry", Some(payload), ts);
        if assembler.pending_rows() >= BATCH_SAMPLES {
            assembler.store(&telemetry, &landscape).expect("store");
        }
    });
    assembler.store(&telemetry, &landscape).expect("store");
    eprintln!(
        "memory: {} samples stored hold {} bytes in the table ({} bytes per sample, keys included)",
        telemetry.live_rows(),
        telemetry.live_bytes(),
        telemetry.live_bytes() / telemetry.live_rows().max(1)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
