//! What every Kafka client of dcpilot shares: the user's librdkafka properties (security,
//! compression, timeouts) on top of the bootstrap servers, and a client context that keeps
//! a broker outage from flooding the log.
//!
//! librdkafka repeats a failing connection every few hundred milliseconds per broker and
//! per client, each time with a log line and an error callback. [`QuietContext`] logs the
//! first of each kind, counts the rest, and logs one summary per [`LOG_INTERVAL`] while
//! they keep coming.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

/// How long repeated client errors of one kind stay summarised before the next line.
pub const LOG_INTERVAL: Duration = Duration::from_secs(30);

/// librdkafka properties for a client of `brokers`: `bootstrap.servers`, then the user's
/// `properties` (e.g. `security.protocol`, `sasl.*`, `ssl.*`, `compression.codec`), which
/// win over nothing dcpilot sets itself; callers add their own role's settings after.
pub fn client_config(brokers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// What a [`LogLimiter`] says to do with one occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Log it: the first of its kind in this interval. `suppressed` more of the same kind
    /// came in the interval before (0 for the very first).
    Log {
        /// Occurrences not logged since the previous line of this kind.
        suppressed: u64,
    },
    /// Count it, do not log it.
    Suppress,
}

struct Window {
    started: Instant,
    suppressed: u64,
}

/// Rate limits log lines per kind: the first one, then at most one per interval, saying how
/// many were left out.
pub struct LogLimiter {
    interval: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

/// Kinds tracked at most; past it the oldest state is dropped (kinds are bounded in
/// practice: error codes and librdkafka facilities).
const MAX_KINDS: usize = 1024;

impl LogLimiter {
    /// A limiter allowing one line per kind per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Decides about one occurrence of `kind` at `now`.
    pub fn check_at(&self, kind: &str, now: Instant) -> Verdict {
        let mut windows = self.windows.lock();
        if let Some(w) = windows.get_mut(kind) {
            if now.duration_since(w.started) < self.interval {
                w.suppressed += 1;
                return Verdict::Suppress;
            }
            let suppressed = std::mem::take(&mut w.suppressed);
            w.started = now;
            return Verdict::Log { suppressed };
        }
        if windows.len() >= MAX_KINDS {
            windows.clear();
        }
        windows.insert(
            kind.to_string(),
            Window {
                started: now,
                suppressed: 0,
            },
        );
        Verdict::Log { suppressed: 0 }
    }

    /// Decides about one occurrence of `kind` now.
    pub fn check(&self, kind: &str) -> Verdict {
        self.check_at(kind, Instant::now())
    }
}

/// The process-wide limiter for Kafka client messages: one outage seen by several clients
/// (consumer, dead-letter producer, models producer) is one stream of lines.
pub static KAFKA_LOG: LazyLock<LogLimiter> = LazyLock::new(|| LogLimiter::new(LOG_INTERVAL));

/// The consumer group of a follower: every replica reads the whole topic from its start and
/// commits nothing, so each process gets a group of its own — two replicas under one name
/// (the default `replica`) must not split the partitions between them.
pub fn follower_group(what: &str, replica: &str) -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("dcpilot-{what}-{replica}-{}-{started}", std::process::id())
}

/// Logs a Kafka client error through [`KAFKA_LOG`]; `context` says which client or step.
pub fn log_client_error(context: &str, error: &dyn std::fmt::Display, kind: &str) {
    if let Verdict::Log { suppressed } = KAFKA_LOG.check(&format!("error:{context}:{kind}")) {
        if suppressed > 0 {
            tracing::warn!(context, error = %error, suppressed, interval_secs = LOG_INTERVAL.as_secs(), "kafka error (repeated; {suppressed} like it not logged)");
        } else {
            tracing::warn!(context, error = %error, "kafka error");
        }
    }
}

/// A short, bounded kind for an error: its librdkafka code where it has one.
pub fn error_kind(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => {
            let text = error.to_string();
            text.split(':').next().unwrap_or_default().to_string()
        }
    }
}

/// Logs one librdkafka log line through [`KAFKA_LOG`], at the matching tracing level.
pub fn log_client_line(level: RDKafkaLogLevel, facility: &str, message: &str) {
    let verdict = KAFKA_LOG.check(&format!("log:{facility}:{}", level as i32));
    let Verdict::Log { suppressed } = verdict else {
        return;
    };
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, suppressed, "{message}")
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", facility, suppressed, "{message}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, suppressed, "{message}")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", facility, suppressed, "{message}")
        }
    }
}

/// A client context that rate-limits librdkafka's log lines and errors (see the module
/// docs); for producers and consumers without context of their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietContext {
    /// Which client, in log lines ("dead-letter producer", "models follower", ...).
    pub client: &'static str,
}

impl QuietContext {
    /// A context naming its client.
    pub fn new(client: &'static str) -> Self {
        Self { client }
    }
}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_client_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(
            self.client,
            &format_args!("{error}: {reason}"),
            &error_kind(&error),
        );
    }
}

impl ConsumerContext for QuietContext {}

impl rdkafka::producer::ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    /// Callers that care about delivery wait on `flush` or use a `FutureProducer`.
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_then_one_summary_per_interval() {
        let limiter = LogLimiter::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(
            limiter.check_at("broker down", t0),
            Verdict::Log { suppressed: 0 }
        );
        for i in 1..=111 {
            assert_eq!(
                limiter.check_at("broker down", t0 + Duration::from_millis(70 * i)),
                Verdict::Suppress
            );
        }
        // Another kind is not held back by the first.
        assert_eq!(
            limiter.check_at("auth failed", t0 + Duration::from_secs(1)),
            Verdict::Log { suppressed: 0 }
        );
        assert_eq!(
            limiter.check_at("broker down", t0 + Duration::from_secs(31)),
            Verdict::Log { suppressed: 111 }
        );
        assert_eq!(
            limiter.check_at("broker down", t0 + Duration::from_secs(32)),
            Verdict::Suppress
        );
    }

    #[test]
    fn user_properties_reach_the_client_config() {
        let props = BTreeMap::from([
            ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ("sasl.mechanism".to_string(), "SCRAM-SHA-512".to_string()),
        ]);
        let c = client_config("k1:9092", &props);
        assert_eq!(c.get("bootstrap.servers"), Some("k1:9092"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
    }
}
