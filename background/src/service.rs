//! The background flow as one library service: the broker connection (or the embedded
//! broker), the tables, the HTTP endpoint, the job runner and ingestion, assembled from a
//! typed [`BackgroundConfig`]. The binary (`dcpilot background`, `run`, `demo`) starts it
//! and wires other services to its handles ([`BackgroundService::brokers`],
//! [`BackgroundService::status`]) — never through files.
//!
//! Everything that can fail at start-up is checked in [`BackgroundService::start`], before
//! anything runs, and fails with an error naming the key or resource.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dcpilot_info_core::replication::{Follower, KafkaSink, MODELS_TOPIC};
use dcpilot_info_core::InfoCore;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{LeaseKeeper, LeaseKeeperParts, Leases};
use crate::error::{BackgroundError, Result};
use crate::health::Readiness;
use crate::ingest::{client_config, IngestStats};
use crate::runner::{JobRunner, JobRunnerStats};
use crate::{BackgroundConfig, EmbeddedBroker, OpenMode, TelemetryStore};

/// What [`BackgroundService::run`] leaves behind.
pub struct BackgroundOutcome {
    /// Totals of ingestion.
    pub ingest: IngestStats,
    /// Runs per job, when jobs ran.
    pub jobs: Option<JobRunnerStats>,
    /// The tables, still queryable.
    pub store: TelemetryStore,
}

/// A started background flow.
pub struct BackgroundService {
    config: BackgroundConfig,
    brokers: String,
    embedded: Option<EmbeddedBroker>,
    store: TelemetryStore,
    status: Arc<Readiness>,
    metrics: Option<SocketAddr>,
    jobs: Option<JoinHandle<Result<JobRunnerStats>>>,
    models: Option<Arc<InfoCore>>,
    shutdown: watch::Receiver<bool>,
    /// The job leases of a scaled-out replica (stops its threads when dropped).
    lease_keeper: Option<LeaseKeeper>,
}

/// The Information Core's directory under a data directory.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    dcpilot_schemas::names::data_dir::models(data_dir)
}

impl BackgroundService {
    /// Checks the configuration against the world and starts everything but ingestion:
    /// job specs, the data directory, the Kafka client properties, the embedded broker
    /// (when `kafka.brokers` is unset), the tables, the HTTP endpoint and the job runner.
    /// `shutdown` flipping to true stops it all. Needs a Tokio runtime.
    pub async fn start(
        data_dir: Option<&Path>,
        config: BackgroundConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(BackgroundError::Config {
                file: "<configuration>".into(),
                problems,
            });
        }
        // Bad job specs are configuration errors: report them before starting anything.
        let registry = match config.jobs.enabled {
            true => Some(config.jobs.registry()?),
            false => None,
        };
        if let Some(dir) = data_dir {
            check_data_dir(dir)?;
        }
        let k = &config.kafka;
        // librdkafka checks its properties when a client is created: do it once up front,
        // for both roles, so a typo or a missing certificate fails here with the key.
        check_client_properties(&config)?;
        let embedded = match &k.brokers {
            Some(_) => None,
            None => {
                let broker = EmbeddedBroker::start_at(
                    config.embedded.listen,
                    &[&k.telemetry_topic, &k.dlq_topic, MODELS_TOPIC],
                    config.embedded.partitions,
                    data_dir,
                )?;
                // One partition: the landscape topic's order is the graph's history, and
                // listings are read against the graph as of their place in it.
                broker.create_topic(&k.landscape_topic, 1)?;
                Some(broker)
            }
        };
        let brokers = match (&k.brokers, &embedded) {
            (Some(b), _) => b.clone(),
            (None, Some(e)) => e.bootstrap_servers(),
            (None, None) => unreachable!("an embedded broker is started when none is configured"),
        };
        let cluster = &config.cluster;
        let replica = match cluster.enabled {
            true => Some(cluster.replica().map_err(|e| BackgroundError::Config {
                file: "[cluster] config".into(),
                problems: vec![e.0],
            })?),
            false => None,
        };
        let tables_dir = match &replica {
            Some(r) => cluster.tables_dir(r),
            None => data_dir.map(dcpilot_schemas::names::data_dir::tables),
        };
        let store = TelemetryStore::open_with_tables(
            data_dir,
            tables_dir.as_deref(),
            &config.store,
            OpenMode::ReadWrite,
        )?;
        let shared = match (&replica, &cluster.shared_dir) {
            (Some(r), Some(dir)) => Some(store.share(dir, Some(r))?),
            _ => None,
        };
        let status = Arc::new(Readiness::default());
        let metrics = match config.http.listen {
            Some(addr) => {
                let mut rx = shutdown.clone();
                Some(
                    crate::http::serve(addr, Some(status.clone()), async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await?,
                )
            }
            None => None,
        };
        crate::events::describe_metrics();
        crate::events::zero_counters(&config, registry.as_ref());
        store.telemetry.report_memory();
        store.landscape.report_memory();
        let mut lease_keeper = None;
        let (jobs, models) =
            match (registry, data_dir) {
                (Some(registry), Some(dir)) => {
                    let models_dir = models_dir(dir);
                    let models = Arc::new(InfoCore::open_dir(&models_dir).map_err(|e| {
                        BackgroundError::InfoCore {
                            path: models_dir.clone(),
                            source: e,
                        }
                    })?);
                    // Every change goes to `dcpilot.models` for foreground replicas.
                    let sink = KafkaSink::with_properties(&brokers, &k.client, MODELS_TOPIC)
                        .map_err(|e| BackgroundError::InfoCore {
                            path: models_dir.clone(),
                            source: e,
                        })?;
                    models.set_change_sink(Arc::new(sink));
                    let job_names: Vec<String> =
                        registry.jobs().map(|j| j.name().to_string()).collect();
                    let mut runner = JobRunner::new(
                        config.jobs.clone(),
                        registry,
                        store.context().clone(),
                        store.telemetry.clone(),
                        models.clone(),
                    );
                    match (&replica, &shared) {
                        (Some(replica), Some(shared)) => {
                            let parts = LeaseKeeperParts {
                                brokers: brokers.clone(),
                                client: k.client.clone(),
                                group_id: k.group_id.clone(),
                                session_timeout_ms: k.session_timeout_ms,
                                config: cluster.clone(),
                                follower: Arc::new(
                                    Follower::with_properties(
                                        &brokers,
                                        &k.client,
                                        MODELS_TOPIC,
                                        replica,
                                        models.clone(),
                                    )
                                    .map_err(|e| {
                                        BackgroundError::InfoCore {
                                            path: models_dir.clone(),
                                            source: e,
                                        }
                                    })?,
                                ),
                                models: models.clone(),
                            };
                            let shared = shared.clone();
                            let leases = Arc::new(Leases::new(
                                replica,
                                job_names,
                                LeaseKeeper::partitions(&parts)?,
                                Box::new(move || shared.last_inputs()),
                            ));
                            // The topic, not this replica's files, says what is current.
                            models.set_publish_guard(leases.clone());
                            lease_keeper = Some(LeaseKeeper::start(parts, leases.clone())?);
                            runner = runner.with_leases(leases);
                        }
                        _ => models.resync().map_err(|e| BackgroundError::InfoCore {
                            path: models_dir.clone(),
                            source: e,
                        })?,
                    }
                    (
                        Some(tokio::spawn(runner.run(shutdown.clone()))),
                        Some(models),
                    )
                }
                _ => (None, None),
            };
        Ok(Self {
            config,
            brokers,
            embedded,
            store,
            status,
            metrics,
            jobs,
            models,
            shutdown,
            lease_keeper,
        })
    }

    /// Bootstrap servers of the broker in use (the embedded one's stable address when
    /// none is configured).
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Whether the broker is embedded (started by this service).
    pub fn embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// The live ingestion state: readiness and committed progress.
    pub fn status(&self) -> Arc<Readiness> {
        self.status.clone()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The Information Core the jobs publish to, when jobs run.
    pub fn models(&self) -> Option<Arc<InfoCore>> {
        self.models.clone()
    }

    /// The tables.
    pub fn store(&self) -> &TelemetryStore {
        &self.store
    }

    /// Ingests until shutdown, then waits for the job runner; the embedded broker stops
    /// last.
    pub async fn run(self) -> Result<BackgroundOutcome> {
        let ingest = crate::run_ingest(
            &self.config,
            &self.brokers,
            &self.store,
            self.status.clone(),
            self.shutdown.clone(),
        )
        .await;
        let jobs = match self.jobs {
            Some(handle) => {
                if ingest.is_err() {
                    handle.abort();
                }
                match handle.await {
                    Ok(stats) => Some(stats?),
                    Err(e) if e.is_cancelled() => None,
                    Err(e) => {
                        return Err(BackgroundError::Internal(format!(
                            "the job runner stopped abnormally: {e}"
                        )))
                    }
                }
            }
            None => None,
        };
        let ingest = ingest?;
        drop(self.lease_keeper);
        drop(self.embedded);
        Ok(BackgroundOutcome {
            ingest,
            jobs,
            store: self.store,
        })
    }
}

fn check_data_dir(dir: &Path) -> Result<()> {
    let unusable = |source| BackgroundError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(unusable)?;
    let probe = dir.join(".dcpilot-write-check");
    std::fs::write(&probe, b"").map_err(unusable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn check_client_properties(config: &BackgroundConfig) -> Result<()> {
    let k = &config.kafka;
    let brokers = k.brokers.as_deref().unwrap_or("127.0.0.1:9092");
    let rejected = |role: &'static str| {
        move |source| BackgroundError::ClientConfig {
            key: "kafka.client",
            role,
            source,
        }
    };
    let _: BaseConsumer<Probe> = client_config(k, brokers)
        .set("group.id", &k.group_id)
        .create_with_context(Probe)
        .map_err(rejected("consumer"))?;
    let _: BaseProducer<Probe> = client_config(k, brokers)
        .create_with_context(Probe)
        .map_err(rejected("producer"))?;
    Ok(())
}

/// The context of the clients made only to check the properties: they live a moment, and
/// what they log about connecting is noise.
struct Probe;

impl rdkafka::ClientContext for Probe {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: rdkafka::error::KafkaError, _: &str) {}
}

impl rdkafka::consumer::ConsumerContext for Probe {}

impl rdkafka::producer::ProducerContext for Probe {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}
