//! The embedded default: librdkafka's mock cluster, in-process, on a real loopback listener
//! that other processes (collectd, Telegraf, `dcpilot replay`) can produce to.
//!
//! The mock cluster always listens on a random port. So that a producer's configuration
//! keeps working across restarts, the broker can be given a stable address
//! (`embedded.listen`, default `127.0.0.1:9092`): dcpilot listens there, forwards every
//! connection to the mock broker, and has the mock broker advertise the stable address in
//! its metadata, so clients never learn the random port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dcpilot_runtime::kafka::QuietContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};

use crate::error::{BackgroundError, Result};

/// File in the data directory holding the embedded broker's bootstrap address.
pub const BROKER_ADDRESS_FILE: &str = dcpilot_schemas::names::data_dir::BROKER_ADDRESS_FILE;

/// The mock broker's id (a one-broker cluster).
const BROKER_ID: i32 = 1;

/// An in-process Kafka-protocol broker. Dropping it stops the broker.
pub struct EmbeddedBroker {
    /// The client that owns the mock cluster (created with `test.mock.num.brokers`).
    owner: BaseProducer<QuietContext>,
    bootstrap: String,
    forwarder: Option<tokio::task::JoinHandle<()>>,
    address_file: Option<PathBuf>,
}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster on a random loopback port and creates `topics` with
    /// `partitions` each (the mock cluster does not support the CreateTopics admin API).
    /// The bootstrap address is logged and, with a data directory, written to `broker.addr`
    /// in it.
    pub fn start(topics: &[&str], partitions: i32, data_dir: Option<&Path>) -> Result<Self> {
        Self::start_at(None, topics, partitions, data_dir)
    }

    /// [`EmbeddedBroker::start`] on a stable address `listen` (port 0: any free port, still
    /// forwarded). Needs a Tokio runtime when `listen` is set.
    pub fn start_at(
        listen: Option<SocketAddr>,
        topics: &[&str],
        partitions: i32,
        data_dir: Option<&Path>,
    ) -> Result<Self> {
        // Bind first: an address in use is the likeliest failure and needs no cleanup.
        let listener = match listen {
            Some(addr) => Some(bind(addr)?),
            None => None,
        };
        let owner: BaseProducer<QuietContext> = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create_with_context(QuietContext::new("embedded broker"))
            .map_err(BackgroundError::kafka("starting the embedded broker"))?;
        let mock = owner
            .client()
            .mock_cluster()
            .ok_or_else(|| BackgroundError::Kafka {
                context: "starting the embedded broker".into(),
                source: rdkafka::error::KafkaError::MockCluster(
                    rdkafka::types::RDKafkaErrorCode::Fail,
                ),
            })?;
        for topic in topics {
            mock.create_topic(topic, partitions, 1)
                .map_err(BackgroundError::kafka(format!("creating topic {topic}")))?;
        }
        let internal = mock.bootstrap_servers();
        drop(mock);
        let (bootstrap, forwarder) = match listener {
            None => (internal.clone(), None),
            Some(listener) => {
                let stable = listener
                    .local_addr()
                    .map_err(BackgroundError::io("embedded.listen"))?;
                let target = internal.clone();
                let listener = tokio::net::TcpListener::from_std(listener)
                    .map_err(BackgroundError::io("embedded.listen"))?;
                let task = tokio::spawn(forward(listener, target));
                advertise(&owner, stable);
                (stable.to_string(), Some(task))
            }
        };
        let address_file = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(BackgroundError::io(dir))?;
                let path = dir.join(BROKER_ADDRESS_FILE);
                // Written whole or not at all: a producer waiting for it never reads it
                // half-written.
                let tmp = dir.join(format!("{BROKER_ADDRESS_FILE}.tmp"));
                std::fs::write(&tmp, format!("{bootstrap}\n"))
                    .map_err(BackgroundError::io(&tmp))?;
                std::fs::rename(&tmp, &path).map_err(BackgroundError::io(&path))?;
                Some(path)
            }
            None => None,
        };
        tracing::info!(bootstrap = %bootstrap, internal = %internal, topics = ?topics, partitions, "embedded Kafka-protocol broker started");
        Ok(Self {
            owner,
            bootstrap,
            forwarder,
            address_file,
        })
    }

    /// `host:port` of the broker.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap.clone()
    }

    /// Creates another topic.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let mock = self
            .owner
            .client()
            .mock_cluster()
            .ok_or_else(|| BackgroundError::Kafka {
                context: format!("creating topic {topic}"),
                source: rdkafka::error::KafkaError::MockCluster(
                    rdkafka::types::RDKafkaErrorCode::Fail,
                ),
            })?;
        mock.create_topic(topic, partitions, 1)
            .map_err(BackgroundError::kafka(format!("creating topic {topic}")))
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    // A broker of this process stopped a moment ago frees the address once its forwarder
    // task is dropped: give that a moment before calling the address taken.
    let mut attempt = std::net::TcpListener::bind(addr);
    for _ in 0..10 {
        match &attempt {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                attempt = std::net::TcpListener::bind(addr);
            }
            _ => break,
        }
    }
    let listener = attempt.map_err(BackgroundError::listen(
        "embedded.listen",
        addr,
        " (a Kafka broker already there? set kafka.brokers to use it, or pick another embedded.listen; 127.0.0.1:0 takes any free port)",
    ))?;
    listener
        .set_nonblocking(true)
        .map_err(BackgroundError::io("embedded.listen"))?;
    Ok(listener)
}

/// Forwards every connection on `listener` to the mock broker at `target`.
async fn forward(listener: tokio::net::TcpListener, target: String) {
    loop {
        let (mut inbound, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "embedded broker: accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let target = target.clone();
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            match tokio::net::TcpStream::connect(&target).await {
                Ok(mut outbound) => {
                    let _ = outbound.set_nodelay(true);
                    // Ends when either side closes; nothing to report for a client leaving.
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "embedded broker: forwarding failed")
                }
            }
        });
    }
}

/// Makes the mock broker advertise `stable` in its metadata, so clients come back through
/// the forwarder. rdkafka has no safe wrapper for this call.
#[allow(unsafe_code)]
fn advertise(owner: &BaseProducer<QuietContext>, stable: SocketAddr) {
    let host =
        std::ffi::CString::new(stable.ip().to_string()).unwrap_or_else(|_| c"127.0.0.1".to_owned());
    // SAFETY: `owner` was created with `test.mock.num.brokers`, so it has a mock cluster that
    // lives as long as `owner` (checked non-null below); the broker id exists (a one-broker
    // cluster has id 1); librdkafka copies `host` under the cluster's lock.
    unsafe {
        let native = owner.client().native_ptr();
        let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(native);
        if !cluster.is_null() {
            rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                cluster,
                BROKER_ID,
                host.as_ptr(),
                i32::from(stable.port()),
            );
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(task) = &self.forwarder {
            task.abort();
        }
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
