//! Replication through `dcpilot.models` on a real Kafka-protocol broker (librdkafka's mock
//! cluster over loopback TCP): two followers — one from the start, one that starts late —
//! end up serving what the leader serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcpilot_info_core::replication::{ChangeSink, Follower, KafkaSink, ModelChange, MODELS_TOPIC};
use dcpilot_info_core::{
    HoldoutMetrics, InfoCore, Lineage, MemoryStorage, Model, ModelDraft, QuantileTable, Storage,
    TrainingWindow,
};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn draft(name: &str, cores: f64) -> ModelDraft {
    ModelDraft {
        name: name.into(),
        features: vec![],
        target: "cores".into(),
        window: TrainingWindow {
            start_ms: 0,
            end_ms: 1,
        },
        rows: 1,
        metrics: HoldoutMetrics {
            metric: "mae".into(),
            model_error: 0.1,
            baseline_error: 1.0,
            baseline: "p90".into(),
        },
        lineage: Lineage::of_job("rightsizing", "h"),
        model: Model::QuantileTable(QuantileTable {
            quantiles: vec![0.9],
            rows: BTreeMap::from([(
                "shop".to_string(),
                BTreeMap::from([("cores".to_string(), vec![cores])]),
            )]),
        }),
    }
}

fn memory_store() -> Arc<InfoCore> {
    Arc::new(InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("store"))
}

/// name → served version.
fn served(store: &InfoCore) -> BTreeMap<String, u64> {
    store
        .snapshot()
        .models()
        .map(|(name, m)| (name.to_string(), m.version()))
        .collect()
}

fn follow_until_equal(follower: &Follower, store: &InfoCore, leader: &InfoCore, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while served(store) != served(leader) {
        assert!(
            Instant::now() < deadline,
            "{what}: follower serves {:?}, leader {:?}",
            served(store),
            served(leader)
        );
        follower.poll(Duration::from_millis(100)).expect("poll");
    }
}

#[test]
fn followers_early_and_late_serve_what_the_leader_serves() {
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(MODELS_TOPIC, 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();

    let dir = tempfile::tempdir().expect("tempdir");
    let leader = InfoCore::open_dir(dir.path()).expect("leader");
    leader.set_change_sink(Arc::new(
        KafkaSink::new(&brokers, MODELS_TOPIC).expect("sink"),
    ));

    let early_store = memory_store();
    let early =
        Follower::new(&brokers, MODELS_TOPIC, "early", early_store.clone()).expect("follower");

    leader.publish(draft("rightsizing", 2.0)).expect("publish");
    leader.publish(draft("rightsizing", 3.0)).expect("publish");
    leader.publish(draft("cpu-table", 1.0)).expect("publish");
    follow_until_equal(&early, &early_store, &leader, "early follower");

    leader
        .rollback("rightsizing", 1, "regressed")
        .expect("rollback");
    follow_until_equal(
        &early,
        &early_store,
        &leader,
        "early follower after rollback",
    );
    assert_eq!(served(&early_store)["rightsizing"], 1);
    assert_eq!(
        early_store.history("rightsizing").expect("history").len(),
        leader.history("rightsizing").expect("history").len(),
        "the early follower has the whole history"
    );
    // A replica's table answers like the leader's.
    let lookup = |s: &InfoCore| {
        s.snapshot().get("rightsizing").and_then(|m| {
            m.prepared
                .table()
                .and_then(|t| t.lookup("shop", "cores", 0.9))
        })
    };
    assert_eq!(lookup(&early_store), Some(2.0));
    assert_eq!(lookup(&early_store), lookup(&leader));

    // A malformed message on the topic is skipped, not fatal.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    producer
        .send(
            BaseRecord::to(MODELS_TOPIC)
                .key("rightsizing")
                .payload("{not json"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");

    leader.publish(draft("rightsizing", 4.0)).expect("publish");
    follow_until_equal(
        &early,
        &early_store,
        &leader,
        "early follower after garbage",
    );

    // The late follower starts after everything happened.
    let late_store = memory_store();
    let late = Follower::new(&brokers, MODELS_TOPIC, "late", late_store.clone()).expect("follower");
    follow_until_equal(&late, &late_store, &leader, "late follower");
    assert_eq!(
        served(&late_store)["rightsizing"],
        3,
        "v1, v2, rollback, v3"
    );

    // A restarted leader resyncs; followers stay equal (applying is idempotent).
    drop(leader);
    let leader = InfoCore::open_dir(dir.path()).expect("leader again");
    leader.set_change_sink(Arc::new(
        KafkaSink::new(&brokers, MODELS_TOPIC).expect("sink"),
    ));
    leader.resync().expect("resync");
    for _ in 0..5 {
        late.poll(Duration::from_millis(100)).expect("poll");
    }
    assert_eq!(served(&late_store), served(&leader));
    assert!(
        late_store.problems().is_empty(),
        "{:?}",
        late_store.problems()
    );
}

/// Storage that counts the reads of each model's files.
#[derive(Default)]
struct CountingStorage {
    inner: MemoryStorage,
    reads: parking_lot::Mutex<BTreeMap<String, usize>>,
}

impl Storage for CountingStorage {
    fn list(&self) -> dcpilot_info_core::Result<Vec<String>> {
        self.inner.list()
    }
    fn read(&self, key: &str) -> dcpilot_info_core::Result<Vec<u8>> {
        let model = key.split('/').next().unwrap_or_default().to_string();
        *self.reads.lock().entry(model).or_default() += 1;
        self.inner.read(key)
    }
    fn create(&self, key: &str, bytes: &[u8]) -> dcpilot_info_core::Result<bool> {
        self.inner.create(key, bytes)
    }
    fn remove(&self, key: &str) -> dcpilot_info_core::Result<()> {
        self.inner.remove(key)
    }
    fn quarantine(&self, key: &str, reason: &str) -> dcpilot_info_core::Result<()> {
        self.inner.quarantine(key, reason)
    }
    fn quarantined_keys(&self) -> dcpilot_info_core::Result<Vec<String>> {
        self.inner.quarantined_keys()
    }
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
}

/// Collects a leader's changes.
#[derive(Default)]
struct Collect(parking_lot::Mutex<Vec<ModelChange>>);

impl ChangeSink for Collect {
    fn changed(&self, change: &ModelChange) -> dcpilot_info_core::Result<()> {
        self.0.lock().push(change.clone());
        Ok(())
    }
}

#[test]
fn applying_a_change_reads_and_prepares_that_model_only() {
    let leader = memory_store();
    let changes = Arc::new(Collect::default());
    leader.set_change_sink(changes.clone());
    let storage = Arc::new(CountingStorage::default());
    let follower = InfoCore::open(storage.clone(), 2).expect("follower");
    for name in ["a", "b"] {
        leader.publish(draft(name, 1.0)).expect("publish");
    }
    for change in changes.0.lock().drain(..) {
        follower.apply_change(&change).expect("apply");
    }
    let before = follower.snapshot();
    let b_before = before.get("b").expect("b served") as *const _;
    storage.reads.lock().clear();

    leader.publish(draft("a", 2.0)).expect("publish a v2");
    for change in changes.0.lock().drain(..) {
        follower.apply_change(&change).expect("apply");
    }
    let reads = storage.reads.lock().clone();
    assert_eq!(reads.get("b"), None, "b's files were read again: {reads:?}");
    assert!(reads.get("a").is_some_and(|n| *n >= 1), "{reads:?}");
    let after = follower.snapshot();
    assert_eq!(served(&follower), served(&leader));
    assert_eq!(after.get("a").map(|m| m.version()), Some(2));
    assert!(
        std::ptr::eq(after.get("b").expect("b still served"), b_before),
        "b was prepared again"
    );
    assert!(after.generation > before.generation);

    // The follower keeps what its retention keeps, as the leader does: a model that
    // changes often costs each change O(kept versions), not O(history).
    for cores in [3.0, 4.0, 5.0] {
        leader.publish(draft("a", cores)).expect("publish");
    }
    for change in changes.0.lock().drain(..) {
        follower.apply_change(&change).expect("apply");
    }
    let kept = storage
        .list()
        .expect("list")
        .iter()
        .filter(|k| k.starts_with("a/") && k.ends_with(".model"))
        .count();
    assert!(
        kept <= 3,
        "{kept} versions of a kept by a follower keeping 2"
    );
    assert_eq!(follower.snapshot().get("a").map(|m| m.version()), Some(5));
}
