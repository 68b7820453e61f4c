//! Ingestion against a real Kafka-protocol broker (librdkafka's mock cluster, over loopback
//! TCP): 100k samples in native JSON, Influx line protocol and collectd JSON, mixed on one
//! topic with 1% garbage and some redelivered messages. Every good sample must be queryable
//! exactly once and every bad message must be in the dead-letter topic with its reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dcpilot_background::ingest::dlq_headers;
use dcpilot_background::replay::send_waiting;
use dcpilot_background::{BackgroundConfig, EmbeddedBroker, Int64Array, OpenMode, TelemetryStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use tokio::sync::watch;

const BASE_TS_MS: i64 = 1_700_000_000_000;
const PARTITIONS: i32 = 8;

/// Messages to produce and what must come of them.
struct Workload {
    good: Vec<Vec<u8>>,
    /// Malformed messages, each with the error kind the decoder must name.
    garbage: Vec<(Vec<u8>, &'static str)>,
    /// Samples per entity prefix (`native-`, `influx-`, `collectd-`).
    expected: HashMap<&'static str, i64>,
}

fn native_message(i: usize) -> Vec<u8> {
    let entity = format!("native-{}", i % 40);
    let ts = BASE_TS_MS + i as i64 * 1000;
    let samples: Vec<_> = (0..10)
        .map(|m| {
            serde_json::json!({
                "timestamp_ms": ts, "entity": entity, "metric": format!("m{m}"),
                "value": (i * 10 + m) as f64 * 0.5, "labels": {"source": "test"}
            })
        })
        .collect();
    // Alternate the array and newline-delimited forms.
    if i.is_multiple_of(2) {
        serde_json::to_vec(&samples).expect("plain JSON values serialize")
    } else {
        let lines: Vec<String> = samples.iter().map(|s| s.to_string()).collect();
        lines.join("\n").into_bytes()
    }
}

/// Five lines of four fields (float, integer, boolean, float): 20 samples.
fn influx_message(i: usize) -> Vec<u8> {
    let ts_ns = (BASE_TS_MS + i as i64 * 1000) as i128 * 1_000_000;
    (0..5)
        .map(|l| {
            format!(
                "cpu,entity=influx-{},cpu=cpu{l} usage_user={}.25,procs={}i,throttled={},usage_system=0.5 {ts_ns}\n",
                i % 40,
                i % 100,
                i % 7,
                i.is_multiple_of(2)
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// Five gauge value lists of two data sources: 10 samples.
fn collectd_message(i: usize) -> Vec<u8> {
    let time = (BASE_TS_MS + i as i64 * 1000) as f64 / 1000.0;
    let lists: Vec<_> = (0..5)
        .map(|l| {
            serde_json::json!({
                "values": [i as f64, (i * 2) as f64], "dstypes": ["gauge", "gauge"],
                "dsnames": ["rx", "tx"], "time": time, "interval": 10.0,
                "host": format!("collectd-{}", i % 40), "plugin": "interface",
                "plugin_instance": format!("eth{l}"), "type": "if_octets", "type_instance": ""
            })
        })
        .collect();
    serde_json::to_vec(&lists).expect("plain JSON values serialize")
}

fn workload(samples: i64) -> Workload {
    let mut good = Vec::new();
    let mut expected: HashMap<&'static str, i64> = HashMap::new();
    let (mut native, mut influx, mut collectd) = (0usize, 0usize, 0usize);
    let mut total = 0;
    while total < samples {
        let (message, prefix, n) = match good.len() % 3 {
            0 => {
                native += 1;
                (native_message(native), "native-", 10)
            }
            1 => {
                influx += 1;
                (influx_message(influx), "influx-", 20)
            }
            _ => {
                collectd += 1;
                (collectd_message(collectd), "collectd-", 10)
            }
        };
        good.push(message);
        *expected.entry(prefix).or_default() += n;
        total += n;
    }
    let kinds: [(&[u8], &str); 5] = [
        (b"[{\"timestamp_ms\": 1, \"entity\": \"x\"", "malformed_json"),
        (b"cpu,entity=e usage=oops 1700000000000000000", "influx_syntax"),
        (
            b"[{\"values\":[1,2],\"dstypes\":[\"gauge\"],\"dsnames\":[\"a\",\"b\"],\"time\":1.0,\"host\":\"h\",\"plugin\":\"p\",\"type\":\"t\"}]",
            "invalid_value",
        ),
        (b"\xff\xfe\x00 binary", "invalid_utf8"),
        (b"{\"timestamp_ms\": 1, \"entity\": \"x\", \"metric\": \"m\"}", "schema_mismatch"),
    ];
    // 1% of the messages are garbage.
    let garbage = (0..good.len() / 100)
        .map(|i| {
            let (bytes, kind) = kinds[i % kinds.len()];
            let mut bytes = bytes.to_vec();
            // Make each one distinct, so the DLQ check can find every one.
            bytes.extend_from_slice(format!(" #{i}").as_bytes());
            (bytes, kind)
        })
        .collect();
    Workload {
        good,
        garbage,
        expected,
    }
}

fn produce(brokers: &str, topic: &str, payloads: impl IntoIterator<Item = Vec<u8>>) {
    produce_to(brokers, topic, PARTITIONS, payloads)
}

fn produce_to(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payloads: impl IntoIterator<Item = Vec<u8>>,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    // Round-robin: the mock broker keeps only 5 MB per partition, and librdkafka's sticky
    // partitioner would put a fast producer's unkeyed messages on one partition at a time.
    for (i, payload) in payloads.into_iter().enumerate() {
        let record = BaseRecord::<(), Vec<u8>>::to(topic)
            .payload(&payload)
            .partition(i as i32 % partitions);
        send_waiting(&producer, record).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// A config with its own consumer group and batch delay, and an embedded broker with its
/// topics, one partition each.
fn one_partition_broker(
    group: &str,
    max_batch_delay_ms: u64,
) -> (BackgroundConfig, EmbeddedBroker) {
    let mut config = BackgroundConfig::default();
    config.kafka.group_id = group.into();
    config.ingest.max_batch_delay_ms = max_batch_delay_ms;
    let k = &config.kafka;
    let broker = EmbeddedBroker::start(
        &[&k.telemetry_topic, &k.landscape_topic, &k.dlq_topic],
        1,
        None,
    )
    .expect("broker");
    (config, broker)
}

async fn count(store: &TelemetryStore, sql: &str) -> i64 {
    let batches = store.sql(sql).await.expect("query");
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("count is an integer")
        .value(0)
}

/// Reads the whole dead-letter topic: payload → header map.
fn read_dead_letters(
    brokers: &str,
    topic: &str,
    expected: usize,
) -> HashMap<Vec<u8>, HashMap<String, String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut letters = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while letters.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("dead letter");
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                        (h.key.to_string(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        letters.insert(message.payload().unwrap_or_default().to_vec(), headers);
    }
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_formats_with_garbage_land_exactly_once() {
    let mut config = BackgroundConfig::default();
    config.kafka.group_id = "mixed-formats".into();
    config.ingest.max_batch_samples = 20_000;
    config.ingest.max_batch_delay_ms = 100;
    let k = config.kafka.clone();
    let broker = EmbeddedBroker::start(
        &[&k.telemetry_topic, &k.landscape_topic, &k.dlq_topic],
        PARTITIONS,
        None,
    )
    .expect("broker");
    let brokers = broker.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        TelemetryStore::open(Some(dir.path()), &config.store, OpenMode::ReadWrite).expect("store");

    let work = workload(100_000);
    let total: i64 = work.expected.values().sum();
    assert!(work.garbage.len() >= work.good.len() / 100 && !work.garbage.is_empty());
    // Redeliver every 50th good message, as a producer retrying after a timeout would.
    let redelivered: Vec<Vec<u8>> = work.good.iter().step_by(50).cloned().collect();
    let mut payloads = work.good.clone();
    for (i, (bad, _)) in work.garbage.iter().enumerate() {
        payloads.insert((i * 97) % payloads.len(), bad.clone());
    }
    payloads.extend(redelivered.iter().cloned());
    produce(&brokers, &k.telemetry_topic, payloads);

    // Install the metrics recorder before anything is counted.
    let metrics = dcpilot_background::http::metrics_handle();
    let (stop, stopped) = watch::channel(false);
    let ingest = {
        let (config, brokers) = (config.clone(), brokers.clone());
        async move {
            let stats = dcpilot_background::run_ingest(
                &config,
                &brokers,
                &store,
                Default::default(),
                stopped,
            )
            .await;
            (stats, store)
        }
    };
    let ingest = tokio::spawn(ingest);
    let want_messages = (work.good.len() + work.garbage.len() + redelivered.len()) as f64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = metrics.render();
        let consumed: f64 = body
            .lines()
            .filter(|l| l.starts_with("dcpilot_ingest_messages_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if consumed >= want_messages {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {consumed} of {want_messages} messages consumed\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).expect("stop");
    let (stats, store) = ingest.await.expect("ingest task");
    let stats = stats.expect("ingest");
    assert_eq!(stats.dead_letters, work.garbage.len() as u64);
    assert_eq!(stats.duplicates, redelivered_samples(&redelivered));

    assert_eq!(count(&store, "SELECT count(*) FROM telemetry").await, total);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM (SELECT DISTINCT entity, metric, labels, ts FROM telemetry)"
        )
        .await,
        total,
        "a sample is in the table more than once"
    );
    for (prefix, want) in &work.expected {
        let sql = format!("SELECT count(*) FROM telemetry WHERE starts_with(entity, '{prefix}')");
        assert_eq!(count(&store, &sql).await, *want, "samples of {prefix}*");
    }

    let letters = read_dead_letters(&brokers, &k.dlq_topic, work.garbage.len());
    assert_eq!(letters.len(), work.garbage.len());
    for (payload, kind) in &work.garbage {
        let headers = letters
            .get(payload)
            .unwrap_or_else(|| panic!("{:?} not in the DLQ", String::from_utf8_lossy(payload)));
        assert_eq!(
            headers.get(dlq_headers::ERROR_KIND).map(String::as_str),
            Some(*kind),
            "{headers:?}"
        );
        assert!(!headers[dlq_headers::ERROR_REASON].is_empty());
        assert_eq!(headers[dlq_headers::SOURCE_TOPIC], k.telemetry_topic);
        let partition: i32 = headers[dlq_headers::SOURCE_PARTITION]
            .parse()
            .expect("partition");
        assert!((0..PARTITIONS).contains(&partition));
        let _: i64 = headers[dlq_headers::SOURCE_OFFSET].parse().expect("offset");
    }
}

fn redelivered_samples(messages: &[Vec<u8>]) -> u64 {
    messages
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            if text.starts_with("cpu,") {
                20
            } else {
                10
            }
        })
        .sum()
}

/// Messages the broker dropped before the consumer reached them are detected and counted:
/// the consumer commits offset N, the broker's retention (here the embedded broker's 5 MB
/// per partition) then removes offsets past N, and the restarted consumer reports the jump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_dropped_by_the_broker_are_reported_as_lost() {
    let (config, broker) = one_partition_broker("retention-loss", 50);
    let k = config.kafka.clone();
    let brokers = broker.bootstrap_servers();
    let store = TelemetryStore::open(None, &config.store, OpenMode::ReadWrite).expect("store");
    let metrics = dcpilot_background::http::metrics_handle();
    let counter = |name: &str| -> f64 {
        metrics
            .render()
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let message = |i: usize| {
        // ~1 KB each: the padding label makes the broker's 5 MB fill quickly.
        serde_json::to_vec(&serde_json::json!({
            "timestamp_ms": BASE_TS_MS + i as i64, "entity": "e", "metric": "m", "value": 1.0,
            "labels": {"pad": "x".repeat(1000)}
        }))
        .expect("json")
    };
    let run = |store: TelemetryStore, until: f64| {
        let (config, brokers) = (config.clone(), brokers.clone());
        async move {
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(async move {
                let stats = dcpilot_background::run_ingest(
                    &config,
                    &brokers,
                    &store,
                    Default::default(),
                    stopped,
                )
                .await
                .expect("ingest");
                (stats, store)
            });
            let deadline = Instant::now() + Duration::from_secs(60);
            while counter("dcpilot_ingest_messages_total") < until {
                assert!(
                    Instant::now() < deadline,
                    "timed out consuming: {} of {until}, {} skipped",
                    counter("dcpilot_ingest_messages_total"),
                    counter("dcpilot_ingest_offsets_skipped_total")
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.send(true).expect("stop");
            task.await.expect("task")
        }
    };

    produce_to(&brokers, &k.telemetry_topic, 1, (0..100).map(message));
    let (_, store) = run(store, 100.0).await;
    assert_eq!(counter("dcpilot_ingest_offsets_skipped_total"), 0.0);

    produce_to(&brokers, &k.telemetry_topic, 1, (100..8_100).map(message));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks(&k.telemetry_topic, 0, Duration::from_secs(5))
        .expect("watermarks");
    assert!(
        low > 100,
        "the broker kept everything (low watermark {low}); the test needs it to drop"
    );

    let (_, store) = run(store, 100.0 + (high - low) as f64).await;
    assert_eq!(
        counter("dcpilot_ingest_offsets_skipped_total"),
        (low - 100) as f64,
        "every dropped offset is counted as lost"
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM telemetry").await,
        100 + (high - low),
        "what the broker still had is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landscape_events_build_the_graph_and_refused_ones_are_dead_letters() {
    let (config, broker) = one_partition_broker("landscape-graph", 100);
    let k = config.kafka.clone();
    let brokers = broker.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        TelemetryStore::open(Some(dir.path()), &config.store, OpenMode::ReadWrite).expect("store");
    let loop_event = br#"{"kind":"edge_up","timestamp_ms":3,"edge":{"source":"host-1","target":"rack-1","relation":"contains"}}"#.to_vec();
    let events: Vec<Vec<u8>> = vec![
        br#"{"kind":"host_up","timestamp_ms":1,"host":"host-1","cores":8,"memory_bytes":1024}"#.to_vec(),
        br#"{"kind":"node_up","timestamp_ms":2,"node":{"id":"rack-1","layer":"physical","category":"compute","type":"rack"}}"#.to_vec(),
        br#"{"kind":"edge_up","timestamp_ms":2,"edge":{"source":"rack-1","target":"host-1","relation":"contains"}}"#.to_vec(),
        loop_event.clone(),
        br#"{"kind":"instance_placed","timestamp_ms":4,"instance":"vm-1","workload":"web","host":"host-1","cpu_request":1,"memory_request_bytes":1}"#.to_vec(),
    ];
    produce_to(&brokers, &k.landscape_topic, 1, events);
    let (stop, stopped) = watch::channel(false);
    let ingest = {
        let (config, brokers) = (config.clone(), brokers.clone());
        tokio::spawn(async move {
            let stats = dcpilot_background::run_ingest(
                &config,
                &brokers,
                &store,
                Default::default(),
                stopped,
            )
            .await;
            (stats, store)
        })
    };
    let letters = read_dead_letters(&brokers, &k.dlq_topic, 1);
    stop.send(true).expect("stop");
    let (stats, store) = ingest.await.expect("ingest task");
    assert_eq!(stats.expect("ingest").dead_letters, 1);
    let headers = letters.get(&loop_event).expect("the loop is a dead letter");
    assert!(
        headers[dlq_headers::ERROR_REASON].contains("containment cannot loop"),
        "{headers:?}"
    );
    // The good events are in the graph (and the events table); the loop is in neither.
    assert_eq!(count(&store, "SELECT count(*) FROM landscape").await, 4);
    let graph = store.graph.graph();
    assert_eq!(graph.node_count(), 4, "host, rack, vm-1, web");
    let blast = graph.blast_radius("rack-1", 10).expect("rack");
    assert_eq!(blast.len(), 3, "host-1, vm-1 on it, web it serves");
    // And queryable with SQL, with validity times.
    assert_eq!(
        count(&store, "SELECT count(*) FROM landscape_nodes").await,
        4
    );
    let sql = "SELECT count(*) FROM landscape_edges e JOIN landscape_nodes n ON n.id = e.target \
               WHERE e.relation = 'runs_on' AND n.type = 'host' AND e.valid_to IS NULL \
               AND e.valid_from = arrow_cast(4, 'Timestamp(Millisecond, Some(\"UTC\"))')";
    assert_eq!(
        count(&store, sql).await,
        1,
        "vm-1 runs on host-1 since 4 ms"
    );
    // Saved where `dcpilot landscape` reads it.
    let file = dir
        .path()
        .join("landscape")
        .join(dcpilot_background::GRAPH_FILE);
    let saved = dcpilot_landscape::formats::history::load(&file).expect("saved");
    assert_eq!(saved.edge_count(), graph.edge_count());
}

/// The other two ways the landscape topic and telemetry feed the graph: a Kubernetes
/// listing as kubectl prints it, sent as is on the landscape topic, and the OpenTelemetry
/// service-graph connector's request counters arriving as telemetry, which become weighted
/// `calls` edges published on the landscape topic (and applied from there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_listings_and_service_graph_counters_feed_the_graph() {
    let (config, broker) = one_partition_broker("landscape-k8s-otel", 100);
    let k = config.kafka.clone();
    let brokers = broker.bootstrap_servers();
    let store = TelemetryStore::open(None, &config.store, OpenMode::ReadWrite).expect("store");
    let graph = store.graph.clone();
    let listing = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/kubernetes/cluster.json"
    ))
    .expect("fixture");
    produce_to(&brokers, &k.landscape_topic, 1, [listing]);
    // frontend calls cartservice 12 times a second, read every 15 s; the collector names
    // services without their namespace.
    // Readings from now on: the cluster's services exist from the listing's time (the
    // message's timestamp) on.
    let start_ms = dcpilot_info_core::now_ms() + 1_000;
    let counters: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "timestamp_ms": start_ms + i * 15_000, "entity": "otel-collector",
                "metric": "traces_service_graph_request_total", "value": (i * 180) as f64,
                "labels": {"client": "frontend", "server": "cartservice", "connection_type": ""}
            }))
            .expect("JSON")
        })
        .collect();
    let (stop, stopped) = watch::channel(false);
    let ingest = {
        let (config, brokers) = (config.clone(), brokers.clone());
        tokio::spawn(async move {
            dcpilot_background::run_ingest(&config, &brokers, &store, Default::default(), stopped)
                .await
                .map(|stats| (stats, store))
        })
    };
    // The listing first, so the collector's names resolve to the cluster's services.
    let deadline = Instant::now() + Duration::from_secs(60);
    while graph.graph().get("shop/frontend-7d9c5b8f4-a0q0").is_none() {
        assert!(
            Instant::now() < deadline,
            "the listing never reached the graph"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    produce_to(&brokers, &k.telemetry_topic, 1, counters);
    let calls = |g: &dcpilot_landscape::LandscapeGraph| {
        g.edge(
            "shop/service/frontend",
            dcpilot_schemas::Relation::Calls,
            "shop/service/cartservice",
        )
        .and_then(|e| e.version_at(i64::MAX).weight)
    };
    while calls(&graph.graph()).is_none() {
        assert!(Instant::now() < deadline, "no weighted call edge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    let (stats, store) = ingest.await.expect("task").expect("ingest");
    assert_eq!(stats.dead_letters, 0);
    let g = graph.graph();
    assert_eq!(calls(&g), Some(12.0), "requests per second");
    let node = g.get("worker-1").expect("the listing's node");
    assert_eq!(node.node_type, "host");
    let pods_on_worker_1 = g
        .live_edges(
            g.resolve("worker-1").expect("node"),
            dcpilot_landscape::Direction::Incoming,
            Some(dcpilot_schemas::Relation::RunsOn),
        )
        .count();
    assert!(pods_on_worker_1 >= 1, "pods run on worker-1");
    // A steady rate made one weighted version, not one per reading; and the derived
    // events were stored like any landscape event.
    let edge = g
        .edge(
            "shop/service/frontend",
            dcpilot_schemas::Relation::Calls,
            "shop/service/cartservice",
        )
        .expect("edge");
    assert_eq!(edge.versions.len(), 2, "{:?}", edge.versions);
    assert!(
        count(
            &store,
            "SELECT count(*) FROM landscape_edges WHERE relation = 'calls'"
        )
        .await
            >= 1
    );
}
