//! The embedded default: librdkafka's mock cluster, in-process, on a real loopback listener
//! that other processes (collectd, Telegraf, `dcpilot replay`) can produce to.

use std::path::{Path, PathBuf};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::{BackgroundError, Result};

/// File in the data directory holding the embedded broker's bootstrap address.
pub const BROKER_ADDRESS_FILE: &str = "broker.addr";

/// An in-process Kafka-protocol broker. Dropping it stops the broker.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
    address_file: Option<PathBuf>,
}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster and creates `topics` with `partitions` each (the
    /// mock cluster does not support the CreateTopics admin API). The bootstrap address is
    /// logged and, with a data directory, written to `broker.addr` in it.
    pub fn start(topics: &[&str], partitions: i32, data_dir: Option<&Path>) -> Result<Self> {
        let cluster =
            MockCluster::new(1).map_err(BackgroundError::kafka("starting the embedded broker"))?;
        for topic in topics {
            cluster
                .create_topic(topic, partitions, 1)
                .map_err(BackgroundError::kafka(format!("creating topic {topic}")))?;
        }
        let bootstrap = cluster.bootstrap_servers();
        let address_file = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(BackgroundError::io(dir))?;
                let path = dir.join(BROKER_ADDRESS_FILE);
                std::fs::write(&path, format!("{bootstrap}\n"))
                    .map_err(BackgroundError::io(&path))?;
                Some(path)
            }
            None => None,
        };
        tracing::info!(bootstrap = %bootstrap, topics = ?topics, partitions, "embedded Kafka-protocol broker started");
        Ok(Self {
            cluster,
            address_file,
        })
    }

    /// `host:port` of the broker.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates another topic.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(BackgroundError::kafka(format!("creating topic {topic}")))
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(path) = &self.address_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Reads the bootstrap address an embedded broker wrote to `data_dir`.
pub fn read_broker_address(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(BROKER_ADDRESS_FILE)).ok()?;
    let address = text.trim();
    (!address.is_empty()).then(|| address.to_string())
}
