//! Replays samples (from the real traces, see `dcpilot_lab::datasets`) onto a telemetry
//! topic as native JSON, one message per entity and timestamp, keyed by entity, optionally
//! paced at a speed-up of their event time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcpilot_schemas::TelemetrySample;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;

use crate::config::KafkaConfig;
use crate::error::{BackgroundError, Result};
use crate::ingest::client_config;

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// Target topic.
    pub topic: String,
    /// Event-time speed-up (e.g. 3600: an hour of trace per second); 0 = as fast as possible.
    pub speedup: f64,
    /// How messages are keyed, which decides their partition.
    pub key: ReplayKey,
}

/// Message key of replayed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayKey {
    /// Keyed by entity: one entity's samples stay in order on one partition.
    #[default]
    Entity,
    /// Unkeyed: librdkafka spreads messages evenly over partitions. Use it on the embedded
    /// broker, whose partitions keep only the newest 5 MB each, when a few entities
    /// dominate a trace.
    None,
}

/// What a replay sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayStats {
    /// Messages acknowledged by the broker.
    pub messages: u64,
    /// Samples in them.
    pub samples: u64,
    /// Wall time.
    pub elapsed: Duration,
}

#[derive(Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct CountingContext(Arc<DeliveryCounter>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.0.delivered
        } else {
            &self.0.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A replay key name that is not `entity` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown replay key {0:?}; expected entity or none")]
pub struct UnknownReplayKey(pub String);

impl std::str::FromStr for ReplayKey {
    type Err = UnknownReplayKey;
    fn from_str(s: &str) -> std::result::Result<Self, UnknownReplayKey> {
        match s {
            "entity" => Ok(Self::Entity),
            "none" => Ok(Self::None),
            other => Err(UnknownReplayKey(other.to_string())),
        }
    }
}

/// Enqueues `record` on `producer`, serving delivery callbacks while its queue is full;
/// any other error is returned.
pub fn send_waiting<K, P>(producer: &BaseProducer, mut record: BaseRecord<'_, K, P>) -> Result<()>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(BackgroundError::kafka("producing a message")(e)),
        }
    }
}

/// Encodes samples as native JSON messages: one per (entity, timestamp), in time order.
pub fn encode_messages(samples: &[TelemetrySample]) -> Vec<(String, i64, Vec<u8>, usize)> {
    let mut messages = Vec::new();
    let mut start = 0;
    while start < samples.len() {
        let (ts, entity) = (samples[start].timestamp_ms, &samples[start].entity);
        let mut end = start + 1;
        while end < samples.len()
            && samples[end].timestamp_ms == ts
            && &samples[end].entity == entity
        {
            end += 1;
        }
        // Serializing plain structs of strings and finite numbers cannot fail.
        let payload = serde_json::to_vec(&samples[start..end]).unwrap_or_default();
        messages.push((entity.clone(), ts, payload, end - start));
        start = end;
    }
    messages
}

/// Sends `samples` (sorted by time) to `options.topic`, calling `progress(sent, total)` now
/// and then; returns once every message is acknowledged or has failed.
pub fn replay(
    samples: &[TelemetrySample],
    kafka: &KafkaConfig,
    options: &ReplayOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayStats> {
    let counter = Arc::new(DeliveryCounter::default());
    let producer: ThreadedProducer<CountingContext> = client_config(kafka, &options.brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        // Unkeyed messages: random partition each, not librdkafka's sticky batches, which
        // would fill one partition of the embedded broker at a time.
        .set("sticky.partitioning.linger.ms", "0")
        .create_with_context(CountingContext(counter.clone()))
        .map_err(BackgroundError::kafka("creating the replay producer"))?;
    let messages = encode_messages(samples);
    let total = messages.len() as u64;
    let started = Instant::now();
    let first_ts = messages.first().map_or(0, |m| m.1);
    let mut sample_count = 0u64;
    for (i, (key, ts, payload, n)) in messages.iter().enumerate() {
        if options.speedup > 0.0 {
            let due = Duration::from_secs_f64(((ts - first_ts) as f64 / 1000.0) / options.speedup);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut record = BaseRecord::to(&options.topic)
            .payload(payload.as_slice())
            .timestamp(*ts);
        if options.key == ReplayKey::Entity {
            record = record.key(key.as_str());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(BackgroundError::kafka("producing a replay message")(e)),
            }
        }
        sample_count += *n as u64;
        if i % 10_000 == 0 {
            progress(i as u64, total);
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(BackgroundError::kafka("flushing the replay producer"))?;
    progress(total, total);
    let failed = counter.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(BackgroundError::kafka(format!(
            "{failed} replay messages were not delivered"
        ))(KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        )));
    }
    Ok(ReplayStats {
        messages: counter.delivered.load(Ordering::Relaxed),
        samples: sample_count,
        elapsed: started.elapsed(),
    })
}
