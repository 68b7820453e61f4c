//! Replication through `dcpilot.models` on a real Kafka-protocol broker (librdkafka's mock
//! cluster over loopback TCP): two followers — one from the start, one that starts late —
//! end up serving what the leader serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcpilot_info_core::replication::{
    Authorised, ChangeSink, Follower, KafkaSink, ModelChange, PublishGuard, MODELS_TOPIC,
};
use dcpilot_info_core::{
    HoldoutMetrics, InfoCore, Lease, Lineage, LineageInput, MemoryStorage, Model, ModelDraft,
    QuantileTable, Storage, TrainingWindow,
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

/// Collects every change a store sends.
#[derive(Default)]
struct Recorder(parking_lot::Mutex<Vec<ModelChange>>);

impl ChangeSink for Recorder {
    fn changed(&self, change: &ModelChange) -> dcpilot_info_core::Result<()> {
        self.0.lock().push(change.clone());
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<ModelChange> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// Grants one fixed lease (or none) to every publish.
struct FixedLease(Option<Lease>);

impl PublishGuard for FixedLease {
    fn authorise(&self, _: &str) -> Result<Authorised, String> {
        self.0
            .clone()
            .map(|lease| Authorised {
                lease,
                inputs: vec![LineageInput {
                    replica: "r0".into(),
                    offsets: BTreeMap::from([("dcpilot.telemetry/0".to_string(), 42)]),
                }],
            })
            .ok_or_else(|| "no lease held".to_string())
    }
}

fn leased_store(owner: &str, epoch: u64) -> (Arc<InfoCore>, Arc<Recorder>) {
    let store = memory_store();
    let sink = Arc::new(Recorder::default());
    store.set_change_sink(sink.clone());
    store.set_publish_guard(Arc::new(FixedLease(Some(Lease {
        owner: owner.into(),
        epoch,
    }))));
    (store, sink)
}

#[test]
fn a_replica_whose_lease_ended_cannot_publish_and_versions_stay_unique() {
    let (old, old_sink) = leased_store("r0", 3);
    let (new, new_sink) = leased_store("r1", 7);
    let follower = memory_store();
    let apply = |changes: &[ModelChange], store: &InfoCore| -> Vec<bool> {
        changes
            .iter()
            .map(|c| store.apply_change(c).is_ok())
            .collect()
    };

    // The old owner publishes v1 under epoch 3, stamped with its lease and inputs.
    let v1 = old.publish(draft("rightsizing", 2.0)).expect("v1");
    assert_eq!(v1.lineage.lease.as_ref().map(|l| l.epoch), Some(3));
    assert_eq!(v1.lineage.inputs[0].offsets["dcpilot.telemetry/0"], 42);
    let log_v1 = old_sink.take();
    // The new owner announces epoch 7; in the topic it follows v1.
    new.announce_lease(
        "rightsizing",
        &Lease {
            owner: "r1".into(),
            epoch: 7,
        },
    )
    .expect("announce");
    let marker = new_sink.take();
    assert!(marker[0].files.is_empty());
    // The old owner, not knowing, publishes again: its change lands after the marker.
    old.publish(draft("rightsizing", 3.0))
        .expect("a zombie publishes locally");
    let zombie = old_sink.take();

    // Everyone applying the topic in order refuses the zombie's v2.
    assert_eq!(apply(&log_v1, &follower), [true]);
    assert_eq!(apply(&marker, &follower), [true]);
    let refused = follower.apply_change(&zombie[0]).expect_err("fenced");
    assert!(
        matches!(refused, dcpilot_info_core::InfoCoreError::Fenced { .. }),
        "{refused}"
    );
    assert_eq!(served(&follower)["rightsizing"], 1);

    // The new owner caught up (v1, its marker, the refused zombie), then publishes v2.
    assert_eq!(apply(&log_v1, &new), [true]);
    assert_eq!(apply(&marker, &new), [true]);
    assert!(new.apply_change(&zombie[0]).is_err());
    let v2 = new.publish(draft("rightsizing", 4.0)).expect("v2");
    assert_eq!(v2.version, 2);
    let owners_v2 = new_sink.take();
    assert_eq!(apply(&owners_v2, &follower), [true]);
    // The zombie, applying the topic too, replaces its own refused v2 with the owner's.
    assert_eq!(apply(&marker, &old), [true]);
    assert!(
        old.apply_change(&zombie[0]).is_err(),
        "its own change is refused too"
    );
    assert_eq!(apply(&owners_v2, &old), [true]);
    assert_eq!(old.latest("rightsizing").expect("v2").checksum, v2.checksum);
    let served_v2 = follower.latest("rightsizing").expect("latest");
    assert_eq!(served_v2.version, 2);
    assert_eq!(
        served_v2.lineage.lease.as_ref().map(|l| l.owner.as_str()),
        Some("r1")
    );

    // A store that saw epoch 7 refuses to publish under epoch 3 itself.
    assert!(matches!(
        old.publish(draft("rightsizing", 5.0)),
        Err(dcpilot_info_core::InfoCoreError::Fenced { .. })
    ));

    // A guard that grants nothing stops a publish before anything is stored.
    let unleased = memory_store();
    unleased.set_publish_guard(Arc::new(FixedLease(None)));
    assert!(unleased.publish(draft("rightsizing", 1.0)).is_err());
    assert!(unleased.versions("rightsizing").is_empty());

    // Two different files under one key: the second is refused, not silently skipped.
    let (other, _) = leased_store("r9", 9);
    other
        .publish(draft("rightsizing", 9.0))
        .expect("v1 elsewhere");
    let clash_target = memory_store();
    clash_target
        .apply_change(&ModelChange {
            name: "rightsizing".into(),
            files: log_v1[0].files.clone(),
            lease: None,
        })
        .expect("v1");
    let mut conflicting = log_v1[0].clone();
    conflicting.lease = None;
    conflicting.files[0].content = other
        .export("rightsizing", Some(1))
        .map(|b| String::from_utf8(b).expect("utf-8"))
        .expect("export");
    assert!(clash_target.apply_change(&conflicting).is_err());
}

/// A replica started before the models topic exists (the background not deployed yet)
/// keeps following: its consumer reports the missing topic, and once the topic is there
/// it serves what the leader publishes.
#[test]
fn a_follower_started_before_the_topic_exists_keeps_following() {
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let store = memory_store();
    let follower =
        Arc::new(Follower::new(&brokers, MODELS_TOPIC, "early", store.clone()).expect("follower"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let thread = {
        let (follower, stop) = (Arc::clone(&follower), Arc::clone(&stop));
        std::thread::spawn(move || follower.run(|| stop.load(std::sync::atomic::Ordering::Relaxed)))
    };
    // Long enough for the consumer to find the topic missing.
    std::thread::sleep(Duration::from_secs(2));
    cluster.create_topic(MODELS_TOPIC, 1, 1).expect("topic");
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = InfoCore::open_dir(dir.path()).expect("leader");
    leader.set_change_sink(Arc::new(
        KafkaSink::new(&brokers, MODELS_TOPIC).expect("sink"),
    ));
    leader.publish(draft("rightsizing", 2.0)).expect("publish");
    let deadline = Instant::now() + Duration::from_secs(30);
    while served(&store) != served(&leader) {
        assert!(
            !thread.is_finished(),
            "the follower stopped: {:?}",
            thread.join()
        );
        assert!(
            Instant::now() < deadline,
            "follower serves {:?}",
            served(&store)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().expect("joined").expect("stopped cleanly");
}
