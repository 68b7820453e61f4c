//! Follows `dcpilot.landscape` (and hosts' measured CPU use and hardware counters on a
//! telemetry topic) into the foreground's landscape: every replica reads the topics from their beginning and applies
//! what arrives in small batches, so a request sees either all of a batch or none of it.

use std::sync::Arc;
use std::time::Duration;

use dcpilot_info_core::now_ms;
use dcpilot_landscape::formats::topic;
use dcpilot_runtime::kafka::{client_config, log_client_error, QuietContext};
use dcpilot_schemas::decode::Decoder;
use dcpilot_schemas::{DecodeContext, Format, LandscapeEvent, TelemetrySample};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

use crate::config::SourcesConfig;
use crate::landscape::HostMeasure;
use crate::server::{FollowSkipped, Foreground};

/// A landscape follower.
pub struct LandscapeFollower {
    consumer: BaseConsumer<QuietContext>,
    foreground: Arc<Foreground>,
    landscape_topic: String,
    utilization_metric: String,
    decoder: Decoder,
}

impl LandscapeFollower {
    /// Subscribes to the landscape topic (and the utilization topic, when set) from their
    /// beginning, in a consumer group of this process's own (see
    /// [`dcpilot_runtime::kafka::follower_group`]).
    pub fn new(
        brokers: &str,
        sources: &SourcesConfig,
        foreground: Arc<Foreground>,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let consumer: BaseConsumer<QuietContext> = client_config(brokers, &sources.client)
            .set(
                "group.id",
                dcpilot_runtime::kafka::follower_group("landscape", &sources.replica),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(QuietContext::new("landscape follower"))?;
        let mut topics = vec![sources.landscape_topic.as_str()];
        if !sources.utilization_topic.is_empty()
            && sources.utilization_topic != sources.landscape_topic
        {
            topics.push(sources.utilization_topic.as_str());
        }
        consumer.subscribe(&topics)?;
        Ok(Self {
            consumer,
            foreground,
            landscape_topic: sources.landscape_topic.clone(),
            utilization_metric: sources.utilization_metric.clone(),
            decoder: Decoder::new(Format::Auto),
        })
    }

    /// Applies what arrives within `timeout` (up to 1,000 messages as one batch; a
    /// Kubernetes listing is read against the graph as it is after the messages before
    /// it); returns the events applied. Undecodable messages and events that do not apply are logged
    /// and skipped: waiting cannot fix them.
    pub fn poll(&mut self, timeout: Duration) -> usize {
        let mut events = Vec::new();
        let mut applied = 0;
        let mut measured: Vec<(String, HostMeasure, f64)> = Vec::new();
        let mut samples: Vec<TelemetrySample> = Vec::new();
        let mut wait = timeout;
        for _ in 0..1000 {
            let Some(message) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    let kind = dcpilot_runtime::kafka::error_kind(&e);
                    log_client_error("landscape follower", &e, &kind);
                    break;
                }
            };
            let Some(payload) = message.payload() else {
                continue;
            };
            if message.topic() != self.landscape_topic {
                // Telemetry: keep host measures and what the intent loop reads, drop the rest.
                let ctx = DecodeContext {
                    default_timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
                };
                samples.clear();
                let (_, outcome) = self.decoder.decode(payload, &ctx, &mut samples);
                FollowSkipped {
                    topic: "telemetry",
                    reason: "decode",
                    count: outcome.error_count,
                    example: outcome.errors.first().map_or("", |e| e.message.as_str()),
                }
                .emit();
                // Workloads' p99 and request rates, for the intent loop.
                let _ = self.foreground.observe_telemetry(&samples);
                // Host measurements: busy cores, and hardware counters.
                measured.extend(samples.drain(..).filter_map(|s| {
                    let measure = HostMeasure::of(&s.metric, &self.utilization_metric)?;
                    Some((s.host.unwrap_or(s.entity), measure, s.value))
                }));
                continue;
            }
            let at = message.timestamp().to_millis().unwrap_or_else(now_ms);
            if topic::is_kubernetes(payload) {
                // A listing is read against the graph it changes: what came before it in
                // this batch must be in the graph first, as it is in the background's.
                applied += self.apply(&mut events, &mut measured);
            }
            let graph = self.foreground.graph();
            let outcome = topic::decode_message(payload, &graph, at, |e| events.push(e));
            for e in &outcome.errors {
                tracing::error!(
                    partition = message.partition(),
                    offset = message.offset(),
                    kind = e.kind.as_str(),
                    reason = %e.message,
                    "skipping a malformed landscape event"
                );
            }
            metrics::counter!("dcpilot_foreground_follow_errors_total", "topic" => "landscape", "reason" => "decode")
                .increment(outcome.error_count as u64);
        }
        applied + self.apply(&mut events, &mut measured)
    }

    /// Applies (and clears) what was gathered; returns the events applied.
    fn apply(
        &self,
        events: &mut Vec<LandscapeEvent>,
        measured: &mut Vec<(String, HostMeasure, f64)>,
    ) -> usize {
        if events.is_empty() && measured.is_empty() {
            return 0;
        }
        let refused = self.foreground.apply_events_lenient(events, measured);
        for error in &refused {
            tracing::warn!(%error, "skipping a landscape change that does not apply");
        }
        metrics::counter!("dcpilot_foreground_follow_errors_total", "topic" => "landscape", "reason" => "apply")
            .increment(refused.len() as u64);
        metrics::counter!("dcpilot_foreground_landscape_events_total")
            .increment(events.len() as u64);
        let n = events.len();
        events.clear();
        measured.clear();
        n
    }

    /// Follows until `stop` returns true.
    pub fn run(&mut self, mut stop: impl FnMut() -> bool) {
        while !stop() {
            self.poll(Duration::from_millis(200));
        }
    }
}
