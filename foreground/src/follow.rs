//! Follows `dcpilot.landscape` into the foreground's landscape: every replica reads the
//! whole (compacted) topic from its beginning and applies events in small batches, so a
//! request sees either all of a batch or none of it.

use std::sync::Arc;
use std::time::Duration;

use dcpilot_schemas::LandscapeDecoder;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

use crate::server::Foreground;

/// A landscape follower.
pub struct LandscapeFollower {
    consumer: BaseConsumer,
    foreground: Arc<Foreground>,
}

impl LandscapeFollower {
    /// Subscribes to `topic` from its beginning as consumer group `dcpilot-landscape-{replica}`.
    pub fn new(
        brokers: &str,
        topic: &str,
        replica: &str,
        foreground: Arc<Foreground>,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("dcpilot-landscape-{replica}"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        consumer.subscribe(&[topic])?;
        Ok(Self {
            consumer,
            foreground,
        })
    }

    /// Applies what arrives within `timeout` (up to 1,000 messages as one batch); returns
    /// the events applied. Undecodable messages and events that do not apply are logged
    /// and skipped: waiting cannot fix them.
    pub fn poll(&self, timeout: Duration) -> usize {
        let mut events = Vec::new();
        let mut wait = timeout;
        for _ in 0..1000 {
            let Some(message) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "landscape consumer error");
                    break;
                }
            };
            let Some(payload) = message.payload() else {
                continue;
            };
            let outcome = LandscapeDecoder.decode(payload, |e| events.push(e));
            for e in &outcome.errors {
                tracing::error!(
                    partition = message.partition(),
                    offset = message.offset(),
                    kind = e.kind.as_str(),
                    reason = %e.message,
                    "skipping a malformed landscape event"
                );
            }
        }
        if events.is_empty() {
            return 0;
        }
        for error in self.foreground.apply_events_lenient(&events) {
            tracing::warn!(%error, "skipping a landscape event that does not apply");
        }
        metrics::counter!("dcpilot_foreground_landscape_events_total")
            .increment(events.len() as u64);
        events.len()
    }

    /// Follows until `stop` returns true.
    pub fn run(&self, mut stop: impl FnMut() -> bool) {
        while !stop() {
            self.poll(Duration::from_millis(200));
        }
    }
}
