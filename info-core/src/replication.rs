//! Replication through the compacted topic `dcpilot.models`, keyed by model name.
//!
//! Every change of a model is one message carrying the files that make its current state
//! self-contained: a publish carries the new version; a rollback carries the pointer and
//! the version it points to. So a follower that starts late — after compaction kept only
//! the newest message per model — still serves the same current version as the leader,
//! and one that saw every message has the whole history. Applying a message is idempotent
//! (files are immutable and checked before they are written).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use serde::{Deserialize, Serialize};

use crate::error::{InfoCoreError, Result};
use crate::record::{Lease, LineageInput};
use crate::store::InfoCore;
use dcpilot_runtime::kafka::{client_config, QuietContext};

/// Default topic.
pub const MODELS_TOPIC: &str = dcpilot_schemas::names::topics::MODELS;

/// One replicated file: its storage key and its checksummed content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicatedFile {
    /// Storage key (`<name>/v<version>.model`, `<name>/p<seq>.pointer`).
    pub key: String,
    /// The file's text (header line + JSON).
    pub content: String,
}

/// The payload of a `dcpilot.models` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChange {
    /// Model name (also the message key).
    pub name: String,
    /// Files to apply, in order (none: a lease marker).
    pub files: Vec<ReplicatedFile>,
    /// The job lease the change was made under (scaled-out background only). Every store
    /// applying the topic in order refuses a change whose epoch is below the newest one it
    /// has seen for the model, so a replica that lost its lease cannot publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// Decides, at the moment a store publishes, whether this process may publish a model,
/// and under which lease (set with [`InfoCore::set_publish_guard`]).
pub trait PublishGuard: Send + Sync {
    /// The lease and training inputs to stamp on `model`'s next version, or why this
    /// process must not publish it now.
    fn authorise(&self, model: &str) -> std::result::Result<Authorised, String>;
}

/// What a [`PublishGuard`] lets a publish carry.
#[derive(Debug, Clone)]
pub struct Authorised {
    /// The lease held.
    pub lease: Lease,
    /// The ingest replicas the training read.
    pub inputs: Vec<LineageInput>,
}

/// Receives every change a store makes (set with [`InfoCore::set_change_sink`]).
pub trait ChangeSink: Send + Sync {
    /// Called after a change is durable locally.
    fn changed(&self, change: &ModelChange) -> Result<()>;
}

fn kafka(context: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> InfoCoreError + '_ {
    move |e| InfoCoreError::Replication(format!("{context}: {e}"))
}

/// Publishes changes to a Kafka topic (the leader side).
pub struct KafkaSink {
    producer: ThreadedProducer<QuietContext>,
    topic: String,
}

impl KafkaSink {
    /// A sink producing to `topic` at `brokers`.
    pub fn new(brokers: &str, topic: &str) -> Result<Self> {
        Self::with_properties(brokers, &BTreeMap::new(), topic)
    }

    /// A sink producing to `topic` at `brokers` with the user's librdkafka `properties`
    /// (security, compression; see [`client_config`]).
    pub fn with_properties(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
    ) -> Result<Self> {
        let producer = client_config(brokers, properties)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create_with_context(QuietContext::new("models producer"))
            .map_err(kafka("creating the models producer"))?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
        })
    }
}

impl ChangeSink for KafkaSink {
    fn changed(&self, change: &ModelChange) -> Result<()> {
        let payload = serde_json::to_vec(change)
            .map_err(|e| InfoCoreError::Replication(format!("encoding a change: {e}")))?;
        // A lease marker has a key of its own: in the compacted topic it must not replace
        // the model's newest state (the topic has one partition, so order is kept).
        let key = match change.files.is_empty() {
            true => format!("{}#lease", change.name),
            false => change.name.clone(),
        };
        self.producer
            .send(
                BaseRecord::to(&self.topic)
                    .key(key.as_str())
                    .payload(&payload),
            )
            .map_err(|(e, _)| kafka("producing a model change")(e))?;
        // Publishes are rare and must not be lost silently: wait for the broker.
        self.producer
            .flush(Duration::from_secs(30))
            .map_err(kafka("flushing a model change"))
    }
}

/// Follows a `dcpilot.models` topic into a local store (a foreground replica). It reads
/// every partition from its beginning by assignment, not through a consumer group: a
/// replica needs all of the topic and commits nothing, and waiting for a group
/// coordinator could hold its models back for minutes on a busy broker. Partitions added
/// to the topic after they were assigned are not followed (the topic has one).
pub struct Follower {
    consumer: BaseConsumer<QuietContext>,
    topic: String,
    /// Whether the topic's partitions are assigned (not before the topic exists).
    assigned: std::sync::atomic::AtomicBool,
    store: Arc<InfoCore>,
    /// Per partition, the offset after the last message handled.
    consumed: parking_lot::Mutex<BTreeMap<i32, i64>>,
}

impl Follower {
    /// Reads `topic` from its beginning into `store`. `replica` names the follower; each
    /// replica reads every message (its own consumer group, no commits: it rebuilds from
    /// the compacted topic on every start).
    pub fn new(brokers: &str, topic: &str, replica: &str, store: Arc<InfoCore>) -> Result<Self> {
        Self::with_properties(brokers, &BTreeMap::new(), topic, replica, store)
    }

    /// [`Follower::new`] with the user's librdkafka `properties` (see [`client_config`]).
    pub fn with_properties(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
        replica: &str,
        store: Arc<InfoCore>,
    ) -> Result<Self> {
        let consumer: BaseConsumer<QuietContext> = client_config(brokers, properties)
            .set(
                "group.id",
                dcpilot_runtime::kafka::follower_group("models", replica),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(QuietContext::new("models follower"))
            .map_err(kafka("creating the models consumer"))?;
        // The partitions are assigned by the first `poll` (the topic may not exist yet).
        Ok(Self {
            consumer,
            topic: topic.to_string(),
            assigned: std::sync::atomic::AtomicBool::new(false),
            store,
            consumed: parking_lot::Mutex::new(BTreeMap::new()),
        })
    }

    /// Assigns every partition of the topic from its beginning, once the topic exists.
    fn assign(&self, timeout: Duration) -> Result<()> {
        use rdkafka::{Offset, TopicPartitionList};
        use std::sync::atomic::Ordering;
        if self.assigned.load(Ordering::Relaxed) {
            return Ok(());
        }
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(kafka("reading the models topic's metadata"))?;
        let mut partitions = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == self.topic) {
            for p in t.partitions() {
                partitions
                    .add_partition_offset(&self.topic, p.id(), Offset::Beginning)
                    .map_err(kafka("assigning the models topic"))?;
            }
        }
        if partitions.count() == 0 {
            return Err(InfoCoreError::Replication(format!(
                "topic {} has no partitions yet (does it exist?)",
                self.topic
            )));
        }
        self.consumer
            .assign(&partitions)
            .map_err(kafka("assigning the models topic"))?;
        self.assigned.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether every message before `offsets` (per partition, as from
    /// [`end_offsets`]) has been handled.
    pub fn caught_up(&self, offsets: &BTreeMap<i32, i64>) -> bool {
        let consumed = self.consumed.lock();
        offsets
            .iter()
            .all(|(p, end)| *end <= 0 || consumed.get(p).is_some_and(|c| c >= end))
    }

    /// Applies what arrives within `timeout`; returns how many changes were applied. A
    /// malformed message is logged and skipped (it cannot be fixed by waiting).
    pub fn poll(&self, timeout: Duration) -> Result<usize> {
        if let Err(e) = self.assign(timeout) {
            std::thread::sleep(timeout);
            return Err(e);
        }
        let mut applied = 0;
        let Some(message) = self.consumer.poll(timeout) else {
            return Ok(0);
        };
        let message = message.map_err(kafka("consuming model changes"))?;
        self.consumed
            .lock()
            .insert(message.partition(), message.offset() + 1);
        let Some(payload) = message.payload() else {
            return Ok(0);
        };
        match serde_json::from_slice::<ModelChange>(payload) {
            Ok(change) => match self.store.apply_change(&change) {
                Ok(()) => applied += 1,
                Err(e) if e.is_retryable() => return Err(e),
                Err(e @ InfoCoreError::Fenced { .. }) => tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    error = %e,
                    "refusing a change from a replica whose lease had ended"
                ),
                Err(e) => tracing::error!(
                    partition = message.partition(),
                    offset = message.offset(),
                    error = %e,
                    "skipping a model change that cannot be applied"
                ),
            },
            Err(e) => tracing::error!(
                partition = message.partition(),
                offset = message.offset(),
                error = %e,
                "skipping a malformed model change"
            ),
        }
        Ok(applied)
    }

    /// Follows until `stop` returns true. Kafka trouble (the topic not created yet, a
    /// broker away, a group coordinator moving) is logged at most every 30 s and waited
    /// out — librdkafka recovers on its own, and a replica that stopped following would
    /// serve its last models forever; only an error that waiting cannot fix ends it.
    pub fn run(&self, mut stop: impl FnMut() -> bool) -> Result<()> {
        let mut last_warned: Option<std::time::Instant> = None;
        while !stop() {
            match self.poll(Duration::from_millis(200)) {
                Ok(_) => {}
                Err(e) if e.is_retryable() => {
                    if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                        tracing::warn!(error = %e, "models follower: retrying");
                        last_warned = Some(std::time::Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The end offset (high watermark) of every partition of `topic`: what a reader must have
/// handled to have seen everything written so far.
pub fn end_offsets(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer<QuietContext> = client_config(brokers, properties)
        .create_with_context(QuietContext::new("models watermarks"))
        .map_err(kafka("creating the watermark client"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka("reading the models topic's metadata"))?;
    let mut ends = BTreeMap::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .map_err(kafka("reading the models topic's end offsets"))?;
            ends.insert(p.id(), high);
        }
    }
    if ends.is_empty() {
        return Err(InfoCoreError::Replication(format!(
            "topic {topic} has no partitions (does it exist?)"
        )));
    }
    Ok(ends)
}
