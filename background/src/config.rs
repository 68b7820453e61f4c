//! Typed, loud configuration: embedded defaults, then a TOML file, then
//! `DCPILOT__SECTION__KEY` environment variables. Unknown keys are errors; all problems are
//! reported at once with the file and key.

use dcpilot_schemas::names::topics;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use dcpilot_schemas::{CounterForm, DecoderOptions, Format};
use serde::{Deserialize, Serialize};

use crate::error::{BackgroundError, Result};

/// Configuration of the background flow.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackgroundConfig {
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// Micro-batching.
    pub ingest: IngestConfig,
    /// The telemetry and landscape tables.
    pub store: StoreConfig,
    /// The process's HTTP endpoint (`/metrics`, `/healthz`).
    pub http: HttpConfig,
    /// The in-process broker used when `kafka.brokers` is not set.
    pub embedded: EmbeddedConfig,
    /// Background jobs.
    pub jobs: crate::runner::JobsConfig,
    /// Scale-out: job leases and shared tables across replicas.
    pub cluster: crate::cluster::ClusterConfig,
}

/// Kafka connection and topics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,...`). Unset: start an in-process broker.
    pub brokers: Option<String>,
    /// Consumer group shared by background instances.
    pub group_id: String,
    /// Telemetry topic.
    pub telemetry_topic: String,
    /// Landscape topic.
    pub landscape_topic: String,
    /// Dead-letter topic for undecodable telemetry and landscape messages.
    pub dlq_topic: String,
    /// Wire format of the telemetry topic; `auto` detects it per message.
    pub telemetry_format: Format,
    /// Consumer session timeout; a dead instance's partitions move after this long.
    pub session_timeout_ms: u32,
    /// How often librdkafka reports statistics (consumer lag); 0 disables.
    pub statistics_interval_ms: u32,
    /// Extra librdkafka properties for every client (e.g. `security.protocol`).
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            group_id: "dcpilot-background".into(),
            telemetry_topic: topics::TELEMETRY.into(),
            landscape_topic: topics::LANDSCAPE.into(),
            dlq_topic: topics::TELEMETRY_DLQ.into(),
            telemetry_format: Format::Auto,
            session_timeout_ms: 6_000,
            statistics_interval_ms: 5_000,
            client: BTreeMap::new(),
        }
    }
}

/// Micro-batching: a batch is stored and committed when it holds `max_batch_samples` or
/// `max_batch_delay_ms` passed since its first message, whichever comes first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Samples per batch at most.
    pub max_batch_samples: usize,
    /// Milliseconds a batch may wait for more samples.
    pub max_batch_delay_ms: u64,
    /// How collectd sends `derive`/`counter` values: `auto` (per series: decimals or `null`
    /// mean rates, as collectd 5.12's `write_kafka` sends by default; integers only mean raw
    /// counters), `rates` or `raw`.
    pub collectd_counters: CounterForm,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_samples: 50_000,
            max_batch_delay_ms: 500,
            collectd_counters: CounterForm::Auto,
        }
    }
}

impl IngestConfig {
    /// The decoders' settings.
    pub fn decoder_options(&self) -> DecoderOptions {
        DecoderOptions {
            collectd_counters: self.collectd_counters,
        }
    }
}

/// The tables' retention and durability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Event time kept in memory, behind the newest sample; older partitions move to Parquet.
    pub retention_secs: u64,
    /// Width of a time partition.
    pub partition_secs: u64,
    /// Write every batch to the data directory before committing its offsets, so a crash
    /// loses nothing. Off: memory only (tests, benchmarks of the pure path).
    pub durable: bool,
    /// Move expired partitions to Parquet (queryable); off: drop them.
    pub spill: bool,
    /// Memory each table's live partitions may hold, in MiB; past it the oldest partitions
    /// move to Parquet before their time (still queryable; dropped when `spill` is off).
    /// 0: no ceiling (the retention window alone bounds memory).
    pub memory_ceiling_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            retention_secs: 24 * 3600,
            partition_secs: 3600,
            durable: true,
            spill: true,
            memory_ceiling_mb: 0,
        }
    }
}

/// The HTTP endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of `/metrics` and `/healthz`; unset: no HTTP endpoint.
    pub listen: Option<SocketAddr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}

/// The in-process broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Partitions of each topic it creates. librdkafka's mock cluster keeps only the newest
    /// 5 MB of each partition, so more partitions give a lagging consumer more slack.
    pub partitions: i32,
    /// Stable address producers connect to (forwarded to the in-process broker, which
    /// advertises it), so their configuration survives restarts. Port 0: any free port;
    /// unset: the broker's own random port.
    pub listen: Option<SocketAddr>,
}

/// The embedded broker's default address: where Kafka clients look by default.
pub const EMBEDDED_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9092);

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            partitions: 16,
            listen: Some(EMBEDDED_LISTEN),
        }
    }
}

impl BackgroundConfig {
    /// Defaults, overlaid by `file` (if given), overlaid by `DCPILOT__SECTION__KEY`
    /// environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &vars)
    }

    /// [`load`](Self::load) with an explicit environment (for tests).
    pub fn load_with_env(file: Option<&Path>, env: &[(String, String)]) -> Result<Self> {
        let (label, doc) = match file {
            Some(path) => (path.display().to_string(), Self::read_table(path)?),
            None => ("<defaults>".to_string(), toml::Table::new()),
        };
        Self::from_table(&label, doc, env)
    }

    /// Reads a TOML file into a table; a syntax error names the file.
    pub fn read_table(path: &Path) -> Result<toml::Table> {
        let text = std::fs::read_to_string(path).map_err(BackgroundError::io(path))?;
        text.parse::<toml::Table>()
            .map_err(|e| BackgroundError::Config {
                file: path.display().to_string(),
                problems: vec![e.to_string()],
            })
    }

    /// The configuration in `doc` (from `label`), overlaid by `DCPILOT__SECTION__KEY`
    /// variables of `env`. For files that hold other sections too (`dcpilot run`), the
    /// caller removes them first.
    pub fn from_table(label: &str, mut doc: toml::Table, env: &[(String, String)]) -> Result<Self> {
        use dcpilot_schemas::config_env::{describe_source, overlay_env, FOREGROUND_SECTION};
        let applied = overlay_env(&mut doc, env, None, &[FOREGROUND_SECTION]);
        let source = describe_source(label, &applied);
        // serde_path_to_error names the offending key (`ingest.max_batch_samples: ...`).
        let config: Self = serde_path_to_error::deserialize(toml::Value::Table(doc)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| BackgroundError::Config {
                file: source.clone(),
                problems: vec![format!("{}: {}", e.path(), e.inner().message())],
            },
        )?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(BackgroundError::Config {
                file: source,
                problems,
            })
        }
    }

    /// Cross-field checks; one line per problem, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let k = &self.kafka;
        for (key, topic) in [
            ("kafka.telemetry_topic", &k.telemetry_topic),
            ("kafka.landscape_topic", &k.landscape_topic),
            ("kafka.dlq_topic", &k.dlq_topic),
        ] {
            if topic.is_empty() {
                p.push(format!("{key}: must not be empty"));
            }
        }
        if k.dlq_topic == k.telemetry_topic || k.dlq_topic == k.landscape_topic {
            p.push("kafka.dlq_topic: must differ from the topics it guards".into());
        }
        if k.group_id.is_empty() {
            p.push("kafka.group_id: must not be empty".into());
        }
        if k.brokers.as_deref().is_some_and(|b| b.trim().is_empty()) {
            p.push("kafka.brokers: empty; remove the key to use the embedded broker".into());
        }
        if k.session_timeout_ms < 1000 {
            p.push("kafka.session_timeout_ms: must be at least 1000".into());
        }
        if self.ingest.max_batch_samples == 0 {
            p.push("ingest.max_batch_samples: must be positive".into());
        }
        if self.ingest.max_batch_delay_ms == 0 {
            p.push("ingest.max_batch_delay_ms: must be positive".into());
        }
        if self.store.partition_secs == 0 {
            p.push("store.partition_secs: must be positive".into());
        } else if self.store.retention_secs < self.store.partition_secs {
            p.push("store.retention_secs: must be at least store.partition_secs".into());
        }
        p.extend(self.jobs.problems());
        p.extend(self.cluster.problems(k.brokers.as_deref()));
        if self.cluster.enabled && !self.store.durable {
            p.push("store.durable: must be true with cluster.enabled (the other replicas read this one's tables from cluster.shared_dir)".into());
        }
        if self.embedded.partitions < 1 {
            p.push("embedded.partitions: must be at least 1".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_are_valid() {
        let c = BackgroundConfig::load_with_env(None, &[]).expect("defaults");
        assert_eq!(c, BackgroundConfig::default());
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/background.toml"
        ));
        let c = BackgroundConfig::load_with_env(Some(path), &[]).expect("example loads");
        assert_eq!(c, BackgroundConfig::default());
    }

    #[test]
    fn file_then_environment() {
        let f = file("[kafka]\nbrokers = \"127.0.0.1:9092\"\ntelemetry_format = \"influx\"\n[ingest]\nmax_batch_samples = 10\n");
        let env = vec![(
            "DCPILOT__INGEST__MAX_BATCH_SAMPLES".to_string(),
            "20".to_string(),
        )];
        let c = BackgroundConfig::load_with_env(Some(f.path()), &env).expect("valid");
        assert_eq!(c.kafka.brokers.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(c.kafka.telemetry_format, Format::Influx);
        assert_eq!(c.ingest.max_batch_samples, 20);
    }

    #[test]
    fn unknown_keys_name_file_and_key() {
        let f = file("[ingest]\nmax_batch_sample = 10\n");
        let err = BackgroundConfig::load_with_env(Some(f.path()), &[])
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(err.contains("max_batch_sample"), "{err}");
    }

    #[test]
    fn mistyped_values_name_the_full_key() {
        let f = file("[store]\nretention_secs = \"a day\"\n");
        let err = BackgroundConfig::load_with_env(Some(f.path()), &[])
            .expect_err("string for a number")
            .to_string();
        assert!(err.contains("store.retention_secs"), "{err}");
    }

    #[test]
    fn all_problems_at_once() {
        let f = file("[ingest]\nmax_batch_samples = 0\n[store]\nretention_secs = 10\npartition_secs = 60\n[kafka]\ndlq_topic = \"dcpilot.telemetry\"\n");
        let err = BackgroundConfig::load_with_env(Some(f.path()), &[])
            .expect_err("invalid")
            .to_string();
        for key in [
            "ingest.max_batch_samples",
            "store.retention_secs",
            "kafka.dlq_topic",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
    }
}
