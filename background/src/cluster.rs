//! Scale-out: several `dcpilot background` replicas in one consumer group that agree.
//!
//! - **One trainer per job.** Jobs are leased through a Kafka consumer group over the small
//!   `dcpilot.jobs` topic: a job belongs to one partition (a stable hash of its name), and
//!   whoever is assigned that partition trains it. A replica that dies loses its partitions
//!   after the session timeout and another is assigned them.
//! - **Fencing.** A new owner first appends a claim to the job's partition; the claim's
//!   offset is its lease *epoch* (always larger than any earlier owner's). It announces the
//!   lease on `dcpilot.models` (a change without files for each of the job's models), then
//!   reads `dcpilot.models` up to its end before it publishes. Every store applying the
//!   topic in order refuses a change under an older epoch than the newest it has seen, so a
//!   replica that lost its lease but did not notice cannot publish, and versions stay
//!   unique and increasing across owners.
//! - **Training sees every partition.** Each replica keeps its tables under
//!   `cluster.shared_dir/<replica>/tables` (a shared mount), with the Kafka offsets it has
//!   stored; the trainer queries its own tables and every other replica's as one table
//!   ([`crate::shared::SharedTable`]) and names them in the model's lineage.

use dcpilot_schemas::names::topics;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcpilot_info_core::replication::{end_offsets, Authorised, Follower, PublishGuard};
use dcpilot_info_core::{InfoCore, Lease, LineageInput};
use dcpilot_runtime::kafka::{client_config, QuietContext};
use parking_lot::RwLock;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{Receiver, Sender};

use crate::error::{BackgroundError, Result};
use crate::events::KafkaErrorSeen;

/// The `[cluster]` section: scale-out of the background (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Lease jobs and share tables with the other replicas of `kafka.group_id`.
    pub enabled: bool,
    /// This replica's name, stable across restarts (default: `$HOSTNAME`, e.g. a
    /// StatefulSet pod's name).
    pub replica_id: Option<String>,
    /// The topic whose partitions are the job leases (create it with at least as many
    /// partitions as jobs).
    pub jobs_topic: String,
    /// A directory every replica mounts (NFS, a CSI volume): each keeps its tables in
    /// `<shared_dir>/<replica_id>/tables`, and the trainer reads them all.
    pub shared_dir: Option<PathBuf>,
    /// How long a new lease owner may take to read `dcpilot.models` to its end.
    pub catch_up_timeout_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            replica_id: None,
            jobs_topic: topics::JOBS.into(),
            shared_dir: None,
            catch_up_timeout_secs: 60,
        }
    }
}

impl ClusterConfig {
    /// Cross-field checks, one line per problem naming its key.
    pub fn problems(&self, brokers: Option<&str>) -> Vec<String> {
        let mut p = Vec::new();
        if !self.enabled {
            return p;
        }
        if brokers.is_none() {
            p.push(
                "cluster.enabled: needs kafka.brokers (replicas cannot share an embedded broker)"
                    .into(),
            );
        }
        if self.shared_dir.is_none() {
            p.push("cluster.shared_dir: required when cluster.enabled (the trainer reads every replica's tables there)".into());
        }
        if self.jobs_topic.is_empty() {
            p.push("cluster.jobs_topic: must not be empty".into());
        }
        if self.catch_up_timeout_secs == 0 {
            p.push("cluster.catch_up_timeout_secs: must be positive".into());
        }
        // Unset, it comes from $HOSTNAME where the replica runs: checked at start.
        if let Some(id) = self.replica_id.as_ref().filter(|id| !valid_replica_id(id)) {
            p.push(format!(
                "cluster.replica_id: {id:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        p
    }

    /// This replica's name: `replica_id`, else `$HOSTNAME`.
    pub fn replica(&self) -> std::result::Result<String, dcpilot_schemas::Invalid> {
        let id = match &self.replica_id {
            Some(id) => id.clone(),
            None => std::env::var("HOSTNAME").unwrap_or_default(),
        };
        if id.is_empty() {
            return Err(
                "cluster.replica_id: not set and $HOSTNAME is empty; name this replica".into(),
            );
        }
        if !valid_replica_id(&id) {
            return Err(dcpilot_schemas::Invalid(format!(
                "cluster.replica_id: {id:?} (from $HOSTNAME) must be letters, digits, '-', '_' or '.'"
            )));
        }
        Ok(id)
    }

    /// Where this replica keeps its tables.
    pub fn tables_dir(&self, replica: &str) -> Option<PathBuf> {
        self.shared_dir
            .as_ref()
            .map(|d| dcpilot_schemas::names::data_dir::tables(&d.join(replica)))
    }
}

fn valid_replica_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The end offset of every partition of `dcpilot.models` (see [`end_offsets`]).
fn models_end_offsets(parts: &LeaseKeeperParts) -> Result<BTreeMap<i32, i64>> {
    let topic = dcpilot_info_core::replication::MODELS_TOPIC;
    end_offsets(
        &parts.brokers,
        &parts.client,
        topic,
        Duration::from_secs(10),
    )
    .map_err(|source| BackgroundError::InfoCore {
        path: PathBuf::from(topic),
        source,
    })
}

/// The jobs topic's partition that leases `job`.
pub fn lease_partition(job: &str, partitions: i32) -> i32 {
    (xxhash_rust::xxh3::xxh3_64(job.as_bytes()) % partitions.max(1) as u64) as i32
}

/// The job a model belongs to: its own name, or `<job>.live` for a job's live verdicts.
fn job_of<'a>(model: &'a str, jobs: &BTreeMap<String, i32>) -> &'a str {
    match model.strip_suffix(".live") {
        Some(job) if jobs.contains_key(job) => job,
        _ => model,
    }
}

/// The leases this replica holds; what the Information Core asks before it publishes.
pub struct Leases {
    replica: String,
    /// Job → its partition of the jobs topic.
    jobs: BTreeMap<String, i32>,
    held: RwLock<BTreeMap<String, Lease>>,
    inputs: Box<dyn Fn() -> Vec<LineageInput> + Send + Sync>,
}

impl Leases {
    /// Leases of `jobs` spread over `partitions`, for `replica`; `inputs` says what the
    /// trainer's tables read.
    pub fn new(
        replica: &str,
        jobs: impl IntoIterator<Item = String>,
        partitions: i32,
        inputs: Box<dyn Fn() -> Vec<LineageInput> + Send + Sync>,
    ) -> Self {
        Self {
            replica: replica.to_string(),
            jobs: jobs
                .into_iter()
                .map(|j| {
                    let p = lease_partition(&j, partitions);
                    (j, p)
                })
                .collect(),
            held: RwLock::new(BTreeMap::new()),
            inputs,
        }
    }

    /// Whether this replica may run `job` now.
    pub fn holds(&self, job: &str) -> bool {
        self.held.read().contains_key(job)
    }

    /// The jobs whose lease is held, with their epochs.
    pub fn held(&self) -> BTreeMap<String, Lease> {
        self.held.read().clone()
    }

    fn jobs_in(&self, partition: i32) -> impl Iterator<Item = &String> {
        self.jobs
            .iter()
            .filter(move |(_, p)| **p == partition)
            .map(|(j, _)| j)
    }

    fn revoke(&self, partition: i32) {
        let mut held = self.held.write();
        for job in self.jobs_in(partition) {
            if let Some(lease) = held.remove(job) {
                tracing::warn!(
                    job,
                    epoch = lease.epoch,
                    "job lease lost; this replica stops publishing it"
                );
                metrics::gauge!(crate::events::names::LEASE_HELD, "job" => job.clone()).set(0.0);
            }
        }
    }

    fn grant(&self, job: &str, lease: Lease) {
        tracing::info!(job, epoch = lease.epoch, replica = %lease.owner, "job lease acquired");
        metrics::gauge!(crate::events::names::LEASE_HELD, "job" => job.to_string()).set(1.0);
        metrics::counter!(crate::events::names::LEASES_ACQUIRED, "job" => job.to_string())
            .increment(1);
        self.held.write().insert(job.to_string(), lease);
    }
}

impl PublishGuard for Leases {
    fn authorise(&self, model: &str) -> std::result::Result<Authorised, String> {
        let job = job_of(model, &self.jobs);
        match self.held.read().get(job) {
            Some(lease) => Ok(Authorised {
                lease: lease.clone(),
                inputs: (self.inputs)(),
            }),
            None => Err(format!(
                "replica {} does not hold the lease of job {job}",
                self.replica
            )),
        }
    }
}

/// What the lease consumer's rebalances report to its loop.
enum Rebalanced {
    Assigned(Vec<i32>),
}

struct LeaseContext {
    quiet: QuietContext,
    leases: Arc<Leases>,
    events: Sender<Rebalanced>,
    /// Partitions assigned now (a claim in progress checks it is still wanted).
    assigned: Arc<RwLock<HashSet<i32>>>,
}

impl ClientContext for LeaseContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.quiet.log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.quiet.error(error, reason);
    }
}

impl ConsumerContext for LeaseContext {
    /// Runs before partitions move away: the leases end here, before anyone else can
    /// claim them.
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let revoked: Vec<i32> = match rebalance {
            Rebalance::Revoke(list) => list.elements().iter().map(|e| e.partition()).collect(),
            // The membership is in doubt: hold nothing until the next assignment.
            Rebalance::Error(_) => self.assigned.read().iter().copied().collect(),
            Rebalance::Assign(_) => return,
        };
        let mut assigned = self.assigned.write();
        for p in revoked {
            assigned.remove(&p);
            self.leases.revoke(p);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            self.assigned.write().extend(partitions.iter().copied());
            let _ = self.events.send(Rebalanced::Assigned(partitions));
        }
    }
}

/// What the lease keeper needs from the rest of the service.
pub struct LeaseKeeperParts {
    /// Bootstrap servers.
    pub brokers: String,
    /// The user's librdkafka properties.
    pub client: BTreeMap<String, String>,
    /// Consumer group of the background replicas (the leases use `<group>.jobs`).
    pub group_id: String,
    /// Session timeout: how long a dead owner keeps its leases.
    pub session_timeout_ms: u32,
    /// The cluster settings.
    pub config: ClusterConfig,
    /// This replica's Information Core (announces leases, publishes).
    pub models: Arc<InfoCore>,
    /// Follows `dcpilot.models` into `models`.
    pub follower: Arc<Follower>,
}

/// Keeps this replica's job leases: a thread polling the lease group, claiming what it is
/// assigned and catching up before a lease is used. Stops when dropped.
pub struct LeaseKeeper {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LeaseKeeper {
    /// The jobs topic's partition count (an error names the topic when it is missing);
    /// also checks that `dcpilot.models` has the one partition fencing needs.
    pub fn partitions(parts: &LeaseKeeperParts) -> Result<i32> {
        let models_topic = dcpilot_info_core::replication::MODELS_TOPIC;
        let models = models_end_offsets(parts)?;
        if models.len() != 1 {
            return Err(BackgroundError::Config {
                file: "[cluster] config".into(),
                problems: vec![format!(
                    "cluster.enabled: topic {models_topic} has {} partitions; it must have one (lease markers and model changes are ordered in it)",
                    models.len()
                )],
            });
        }
        let consumer: BaseConsumer<QuietContext> = client_config(&parts.brokers, &parts.client)
            .create_with_context(QuietContext::new("jobs topic metadata"))
            .map_err(BackgroundError::kafka("creating the jobs topic client"))?;
        let topic = &parts.config.jobs_topic;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(BackgroundError::kafka("reading the jobs topic's metadata"))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            return Err(BackgroundError::Config {
                file: "[cluster] config".into(),
                problems: vec![format!(
                    "cluster.jobs_topic: topic {topic:?} does not exist on the brokers; create it with at least one partition per job"
                )],
            });
        }
        Ok(partitions as i32)
    }

    /// Starts the lease thread and the models follower thread.
    pub fn start(parts: LeaseKeeperParts, leases: Arc<Leases>) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let assigned = Arc::new(RwLock::new(HashSet::new()));
        let context = LeaseContext {
            quiet: QuietContext::new("job leases"),
            leases: leases.clone(),
            events: tx,
            assigned: assigned.clone(),
        };
        let consumer: BaseConsumer<LeaseContext> = client_config(&parts.brokers, &parts.client)
            .set("group.id", format!("{}.jobs", parts.group_id))
            .set("session.timeout.ms", parts.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (parts.session_timeout_ms / 3).max(100).to_string(),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create_with_context(context)
            .map_err(BackgroundError::kafka("creating the job lease consumer"))?;
        consumer
            .subscribe(&[&parts.config.jobs_topic])
            .map_err(BackgroundError::kafka("subscribing to the jobs topic"))?;
        let producer: FutureProducer = client_config(&parts.brokers, &parts.client)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(BackgroundError::kafka("creating the job lease producer"))?;
        let follower = parts.follower.clone();
        let follow_stop = stop.clone();
        let follow = std::thread::Builder::new()
            .name("dcpilot-models-follower".into())
            .spawn(move || {
                if let Err(e) = follower.run(|| follow_stop.load(Ordering::Relaxed)) {
                    tracing::error!(error = %e, "stopped following the models topic");
                }
            })
            .map_err(|e| BackgroundError::Internal(format!("starting the follower: {e}")))?;
        let claimer = Claimer {
            parts,
            leases,
            producer,
            assigned,
        };
        let lease_stop = stop.clone();
        let keep = std::thread::Builder::new()
            .name("dcpilot-job-leases".into())
            .spawn(move || claimer.run(&consumer, &rx, &lease_stop))
            .map_err(|e| BackgroundError::Internal(format!("starting the lease keeper: {e}")))?;
        Ok(Self {
            stop,
            threads: vec![follow, keep],
        })
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Claimer {
    parts: LeaseKeeperParts,
    leases: Arc<Leases>,
    producer: FutureProducer,
    assigned: Arc<RwLock<HashSet<i32>>>,
}

impl Claimer {
    fn run(
        &self,
        consumer: &BaseConsumer<LeaseContext>,
        events: &Receiver<Rebalanced>,
        stop: &AtomicBool,
    ) {
        while !stop.load(Ordering::Relaxed) {
            // Claims are not read back: polling keeps the membership and runs rebalances.
            let _ = consumer.poll(Duration::from_millis(100));
            while let Ok(Rebalanced::Assigned(partitions)) = events.try_recv() {
                for p in partitions {
                    if self.leases.jobs_in(p).next().is_none() {
                        continue;
                    }
                    if let Err(e) = self.claim(p, stop) {
                        tracing::error!(partition = p, error = %e, "claiming a job lease failed; leaving the group to let another replica try");
                        // Rejoining hands the partition out again (maybe back to us).
                        consumer.unsubscribe();
                        self.leases.revoke(p);
                        std::thread::sleep(Duration::from_secs(1));
                        self.rejoin(consumer, stop);
                    }
                }
            }
        }
        consumer.unsubscribe();
    }

    /// Subscribes to the jobs topic again, retrying every second until it works or the
    /// replica stops: a replica outside the lease group would never train again.
    fn rejoin(&self, consumer: &BaseConsumer<LeaseContext>, stop: &AtomicBool) {
        while let Err(e) = consumer.subscribe(&[&self.parts.config.jobs_topic]) {
            KafkaErrorSeen {
                context: "rejoining the job-lease group",
                error: &e,
            }
            .emit();
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Appends a claim, reads the models topic to its end, announces the lease, reads it
    /// to its end again (its own markers included), re-sends the job's models under the
    /// lease, then grants it.
    fn claim(&self, partition: i32, stop: &AtomicBool) -> Result<()> {
        let replica = self.leases.replica.clone();
        let payload = serde_json::json!({
            "owner": replica,
            "claimed_at_ms": dcpilot_info_core::now_ms(),
        })
        .to_string();
        let record = FutureRecord::to(&self.parts.config.jobs_topic)
            .partition(partition)
            .key("claim")
            .payload(&payload);
        let claim_failed = |e| BackgroundError::kafka("sending a lease claim")(e);
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(e, _)| claim_failed(e))?;
        let delivered = futures::executor::block_on(delivery)
            .map_err(|_| claim_failed(rdkafka::error::KafkaError::Canceled))?
            .map_err(|(e, _)| claim_failed(e))?;
        let jobs: Vec<String> = self.leases.jobs_in(partition).cloned().collect();
        let models: Vec<String> = jobs
            .iter()
            .flat_map(|job| [job.clone(), format!("{job}.live")])
            .collect();
        self.catch_up(stop)?;
        // Above every epoch seen, and distinct between two replicas claiming at once (their
        // claims have different offsets): a later owner always fences an earlier one, also
        // after the jobs topic was re-partitioned or recreated.
        let newest = models
            .iter()
            .map(|m| self.parts.models.fence(m))
            .max()
            .unwrap_or(0);
        let lease = Lease {
            owner: replica,
            epoch: newest + 1 + u64::try_from(delivered.offset).unwrap_or(0),
        };
        let info_core = |model: &str| {
            let path = PathBuf::from(model);
            move |source| BackgroundError::InfoCore { path, source }
        };
        for model in &models {
            self.parts
                .models
                .announce_lease(model, &lease)
                .map_err(info_core(model))?;
        }
        self.catch_up(stop)?;
        if let Some(newer) = models
            .iter()
            .map(|m| self.parts.models.fence(m))
            .find(|&f| f > lease.epoch)
        {
            tracing::warn!(
                partition,
                epoch = lease.epoch,
                newer,
                "another replica claimed the job meanwhile; not taking the lease"
            );
            return Ok(());
        }
        if !self.assigned.read().contains(&partition) {
            return Ok(()); // revoked while catching up
        }
        // The newest message of each model in the compacted topic is now the owner's.
        for model in &models {
            self.parts
                .models
                .resync_model(model, Some(lease.clone()))
                .map_err(info_core(model))?;
        }
        for job in &jobs {
            self.leases.grant(job, lease.clone());
        }
        Ok(())
    }

    /// Waits until this replica's store has applied everything now in `dcpilot.models`.
    fn catch_up(&self, stop: &AtomicBool) -> Result<()> {
        let topic = dcpilot_info_core::replication::MODELS_TOPIC;
        let ends = models_end_offsets(&self.parts)?;
        let deadline =
            Instant::now() + Duration::from_secs(self.parts.config.catch_up_timeout_secs);
        while !self.parts.follower.caught_up(&ends) {
            if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                return Err(BackgroundError::Internal(format!(
                    "did not read {topic} to its end within {} s",
                    self.parts.config.catch_up_timeout_secs
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
