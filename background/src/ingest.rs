//! The Kafka source: a consumer-group member that decodes telemetry and landscape messages
//! into micro-batches, stores each batch, and only then commits its offsets. Undecodable
//! messages go to the dead-letter topic (and are acknowledged there) before the commit too,
//! so nothing is lost whatever fails.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcpilot_landscape::formats::topic;
use dcpilot_landscape::service_graph::{self, ServiceGraphDeriver};
use dcpilot_landscape::{GraphStore, LandscapeGraph};
use dcpilot_schemas::decode::Decoder;
use dcpilot_schemas::{
    DecodeContext, DecodeErrorKind, DecodeOutcome, DecoderOptions, Format, LandscapeBatchBuilder,
    LandscapeEvent, RecordError, SampleRef, SampleSink, TelemetryBatchBuilder,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::{BackgroundConfig, KafkaConfig};
use crate::error::{BackgroundError, Result};
use crate::events::{
    BatchCommitted, ConsumerLag, DeadLettered, DecodeFailed, KafkaErrorSeen, LandscapeDerived,
    MessageConsumed,
};
use crate::events::{OffsetsSkipped, PartitionsAssigned, TelemetryPartitionsAssigned};
use crate::health::Readiness;
use crate::store::{InsertOutcome, TableStore};
use dcpilot_info_core::now_ms;
use dcpilot_runtime::kafka::QuietContext;

/// Dead-letter headers: why a message could not be decoded and where it came from.
pub mod dlq_headers {
    /// Error kind of the first bad record (`DecodeErrorKind::as_str`).
    pub const ERROR_KIND: &str = "dcpilot.error.kind";
    /// The first bad record's error, for a human.
    pub const ERROR_REASON: &str = "dcpilot.error.reason";
    /// How many records of the message were bad.
    pub const ERROR_COUNT: &str = "dcpilot.error.count";
    /// Topic the message came from.
    pub const SOURCE_TOPIC: &str = "dcpilot.source.topic";
    /// Partition the message came from.
    pub const SOURCE_PARTITION: &str = "dcpilot.source.partition";
    /// Offset of the message.
    pub const SOURCE_OFFSET: &str = "dcpilot.source.offset";
    /// Format the message was decoded as.
    pub const SOURCE_FORMAT: &str = "dcpilot.source.format";
}

/// Client context: reports consumer lag from librdkafka's statistics, counts assignments
/// (so positions learned under an old assignment are forgotten), keeps [`Readiness`]
/// current, and rate-limits librdkafka's log lines.
#[derive(Default)]
pub struct IngestContext {
    assignments: std::sync::atomic::AtomicU64,
    /// Revocations so far: a batch begun before one must not be stored (see
    /// [`IngestState::discard_if_revoked`]).
    revocations: std::sync::atomic::AtomicU64,
    readiness: Arc<Readiness>,
}

impl ClientContext for IngestContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        dcpilot_runtime::kafka::log_client_line(level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        // Brokers with a node id (not the bootstrap entries) in state UP.
        let reachable = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.readiness.set_broker_reachable(reachable);
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal UA partition; lag < 0 means unknown.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    ConsumerLag {
                        topic,
                        partition: *partition,
                        lag: p.consumer_lag,
                    }
                    .emit();
                }
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(
                rdkafka::types::RDKafkaErrorCode::AllBrokersDown
                    | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure
            )
        ) {
            self.readiness.set_broker_reachable(false);
        }
        KafkaErrorSeen {
            context: "client",
            error: &format_args!("{error}: {reason}"),
        }
        .emit();
    }
}

impl ConsumerContext for IngestContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for e in partitions.elements() {
                    by_topic
                        .entry(e.topic().to_string())
                        .or_default()
                        .push(e.partition());
                }
                for (topic, partitions) in &by_topic {
                    TelemetryPartitionsAssigned { topic, partitions }.emit();
                }
                self.assignments
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.readiness.set_broker_reachable(true);
                self.readiness.set_assigned_partitions(partitions.count());
                PartitionsAssigned {
                    count: partitions.count(),
                }
                .emit()
            }
            Rebalance::Revoke(_) => {
                self.revocations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.readiness.set_assigned_partitions(0);
                PartitionsAssigned { count: 0 }.emit()
            }
            Rebalance::Error(e) => KafkaErrorSeen {
                context: "rebalance",
                error: e,
            }
            .emit(),
        }
    }
}

/// librdkafka properties shared by all of dcpilot's clients.
pub fn client_config(kafka: &KafkaConfig, brokers: &str) -> ClientConfig {
    dcpilot_runtime::kafka::client_config(brokers, &kafka.client)
}

/// Counters of one ingest run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    /// Messages consumed.
    pub messages: u64,
    /// Rows stored (telemetry samples and landscape events).
    pub rows: u64,
    /// Rows dropped as duplicates.
    pub duplicates: u64,
    /// Messages sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Batches committed.
    pub batches: u64,
}

/// Decodes messages of both topics into the pending micro-batch and stores it. The part of
/// ingestion between a Kafka message and a table, shared by the [`Ingestor`] and the
/// benchmarks.
pub struct Assembler {
    decoder: Decoder,
    telemetry: TelemetryBatchBuilder,
    landscape: LandscapeBatchBuilder,
    landscape_topic: String,
    /// The landscape graph events also go to (refused ones are dead letters instead).
    graph: Option<Arc<GraphStore>>,
    /// Call edges from service-graph request counters (only with a graph).
    service_graph: ServiceGraphDeriver,
    /// Landscape events derived from telemetry, to be published on the landscape topic.
    derived: Vec<LandscapeEvent>,
}

impl Assembler {
    /// An assembler decoding telemetry as `format`; messages of `landscape_topic` are
    /// landscape events.
    pub fn new(
        format: Format,
        options: &DecoderOptions,
        landscape_topic: &str,
        batch_capacity: usize,
    ) -> Self {
        Self {
            decoder: Decoder::with_options(format, options),
            telemetry: TelemetryBatchBuilder::with_capacity(batch_capacity),
            landscape: LandscapeBatchBuilder::default(),
            landscape_topic: landscape_topic.to_string(),
            graph: None,
            service_graph: ServiceGraphDeriver::default(),
            derived: Vec::new(),
        }
    }

    /// Also applies landscape events to `graph`; an event it refuses is not stored but
    /// dead-lettered with the reason.
    pub fn with_graph(mut self, graph: Arc<GraphStore>) -> Self {
        self.graph = Some(graph);
        self
    }

    /// Saves the graph when it changed and `min_interval` passed since the last save.
    pub fn save_graph(&self, min_interval: Duration) -> Result<()> {
        match &self.graph {
            Some(graph) => save_graph(graph, min_interval),
            None => Ok(()),
        }
    }

    /// The graph landscape events go to, if any.
    pub fn graph(&self) -> Option<&Arc<GraphStore>> {
        self.graph.as_ref()
    }

    /// Decodes one message into the pending batch. Returns the telemetry format it was read
    /// as (`None` for landscape) and what went wrong with its records, if anything.
    pub fn add(
        &mut self,
        topic: &str,
        payload: Option<&[u8]>,
        timestamp_ms: Option<i64>,
    ) -> (Option<Format>, DecodeOutcome) {
        if topic == self.landscape_topic {
            let Some(payload) = payload else {
                // A tombstone from compaction: nothing to record.
                return (None, DecodeOutcome::default());
            };
            let mut events = Vec::new();
            // Native events, or a Kubernetes listing read against the graph it changes.
            let at = timestamp_ms.unwrap_or_else(now_ms);
            let push = |event| events.push(event);
            let mut outcome = match &self.graph {
                Some(graph) => graph.read(|g| topic::decode_message(payload, g, at, push)),
                None => topic::decode_message(payload, &LandscapeGraph::new(), at, push),
            };
            let mut refused = match &self.graph {
                Some(graph) => graph.apply_each(&events),
                None => Vec::new(),
            }
            .into_iter()
            .peekable();
            for (i, event) in events.iter().enumerate() {
                match refused.next_if(|(at, _)| *at == i) {
                    None => self.landscape.push(event),
                    Some((_, e)) => outcome.reject(RecordError {
                        record: i,
                        kind: DecodeErrorKind::InvalidValue,
                        message: format!("{}: the landscape refused it: {e}", event.kind()),
                    }),
                }
            }
            return (None, outcome);
        }
        let ctx = DecodeContext {
            default_timestamp_ms: timestamp_ms.unwrap_or_else(now_ms),
        };
        let payload = payload.unwrap_or_default();
        let (format, outcome) = match &self.graph {
            None => self.decoder.decode(payload, &ctx, &mut self.telemetry),
            Some(graph) => {
                let mut sink = DerivingSink {
                    builder: &mut self.telemetry,
                    deriver: &mut self.service_graph,
                    graph,
                    derived: &mut self.derived,
                };
                self.decoder.decode(payload, &ctx, &mut sink)
            }
        };
        (Some(format), outcome)
    }

    /// Takes the landscape events derived from telemetry since the last call (service
    /// nodes and `calls` edges from service-graph counters, each edge after the nodes it
    /// needs).
    pub fn take_derived(&mut self) -> Vec<LandscapeEvent> {
        std::mem::take(&mut self.derived)
    }

    /// Drops the pending rows (their messages will be read again).
    pub fn discard(&mut self) {
        drop(self.telemetry.finish());
        drop(self.landscape.finish());
        self.derived.clear();
    }

    /// Rows pending in both tables.
    pub fn pending_rows(&self) -> usize {
        self.telemetry.len() + self.landscape.len()
    }

    /// Stores the pending rows; returns what each table did with them.
    pub fn store(
        &mut self,
        telemetry: &TableStore,
        landscape: &TableStore,
    ) -> Result<Vec<(&'static str, InsertOutcome)>> {
        let mut outcomes = Vec::with_capacity(2);
        if !self.telemetry.is_empty() {
            outcomes.push((
                telemetry.name(),
                telemetry.insert(&self.telemetry.finish())?,
            ));
        }
        if !self.landscape.is_empty() {
            outcomes.push((
                landscape.name(),
                landscape.insert(&self.landscape.finish())?,
            ));
        }
        Ok(outcomes)
    }
}

fn save_graph(graph: &GraphStore, min_interval: Duration) -> Result<()> {
    graph
        .save_if_due(min_interval)
        .map(drop)
        .map_err(|source| BackgroundError::Landscape {
            path: graph.file().map(PathBuf::from).unwrap_or_default(),
            source,
        })
}

/// How far the landscape graph file may lag the graph while ingesting.
const GRAPH_SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// Stores every sample and lets the service-graph deriver see the request counters (one
/// string comparison per sample for the rest).
struct DerivingSink<'a> {
    builder: &'a mut TelemetryBatchBuilder,
    deriver: &'a mut ServiceGraphDeriver,
    graph: &'a GraphStore,
    derived: &'a mut Vec<LandscapeEvent>,
}

impl SampleSink for DerivingSink<'_> {
    fn push(&mut self, sample: &SampleRef<'_>) {
        SampleSink::push(self.builder, sample);
        if service_graph::is_request_total(&sample.metric) {
            self.graph
                .read(|g| self.deriver.observe(sample, g, self.derived));
        }
    }
}

/// Everything of an [`Ingestor`] but its consumer, so a borrowed message and the state can
/// be used at once.
struct IngestState {
    assembler: Assembler,
    /// Writes dead letters, and landscape events derived from telemetry.
    dlq: FutureProducer<QuietContext>,
    dlq_topic: String,
    landscape_topic: String,
    telemetry: Arc<TableStore>,
    landscape: Arc<TableStore>,
    next_offsets: BTreeMap<(String, i32), i64>,
    /// Dead letters and derived landscape messages the batch waits for before committing.
    deliveries: Vec<DeliveryFuture>,
    /// The graph file being saved, off the ingest task.
    saving: Option<tokio::task::JoinHandle<Result<()>>>,
    started: Option<Instant>,
    /// Revocations seen when the pending batch began.
    batch_of: u64,
    stats: IngestStats,
    /// A dead letter could not even be enqueued: the current batch must not commit.
    poisoned: bool,
    /// Telemetry topic: offsets there are contiguous (not compacted), so a jump is loss.
    telemetry_topic: String,
    /// Next offset expected per telemetry partition, under assignment `positions_of`.
    positions: HashMap<i32, i64>,
    positions_of: u64,
    /// Where committed progress is published, and what of `stats` was published already.
    status: Arc<Readiness>,
    published: IngestStats,
}

/// Consumes the telemetry and landscape topics into their tables until `shutdown` flips.
pub struct Ingestor {
    consumer: StreamConsumer<IngestContext>,
    state: IngestState,
    max_batch_samples: usize,
    max_batch_delay: Duration,
}

impl Ingestor {
    /// Creates the consumer (subscribed) and the dead-letter producer.
    pub fn new(
        config: &BackgroundConfig,
        brokers: &str,
        telemetry: Arc<TableStore>,
        landscape: Arc<TableStore>,
        graph: Arc<GraphStore>,
        readiness: Arc<Readiness>,
    ) -> Result<Self> {
        let k = &config.kafka;
        let mut cc = client_config(k, brokers);
        cc.set("group.id", &k.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", k.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (k.session_timeout_ms / 4).max(250).to_string(),
            )
            .set(
                "statistics.interval.ms",
                k.statistics_interval_ms.to_string(),
            );
        let consumer: StreamConsumer<IngestContext> = cc
            .create_with_context(IngestContext {
                assignments: Default::default(),
                revocations: Default::default(),
                readiness: readiness.clone(),
            })
            .map_err(BackgroundError::kafka("creating the consumer"))?;
        consumer
            .subscribe(&[&k.telemetry_topic, &k.landscape_topic])
            .map_err(BackgroundError::kafka("subscribing"))?;
        let dlq: FutureProducer<QuietContext> = client_config(k, brokers)
            .set("enable.idempotence", "true")
            .create_with_context(QuietContext::new("dead-letter producer"))
            .map_err(BackgroundError::kafka("creating the dead-letter producer"))?;
        let max_batch_samples = config.ingest.max_batch_samples;
        Ok(Self {
            consumer,
            state: IngestState {
                assembler: Assembler::new(
                    k.telemetry_format,
                    &config.ingest.decoder_options(),
                    &k.landscape_topic,
                    max_batch_samples.min(1 << 16),
                )
                .with_graph(graph),
                dlq,
                dlq_topic: k.dlq_topic.clone(),
                landscape_topic: k.landscape_topic.clone(),
                telemetry,
                landscape,
                next_offsets: BTreeMap::new(),
                deliveries: Vec::new(),
                saving: None,
                started: None,
                batch_of: 0,
                stats: IngestStats::default(),
                poisoned: false,
                telemetry_topic: k.telemetry_topic.clone(),
                positions: HashMap::new(),
                positions_of: 0,
                status: readiness,
                published: IngestStats::default(),
            },
            max_batch_samples,
            max_batch_delay: Duration::from_millis(config.ingest.max_batch_delay_ms),
        })
    }

    /// Runs until `shutdown` becomes true, then stores and commits what it holds.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<IngestStats> {
        let max_delay = self.max_batch_delay;
        loop {
            let wait = self
                .state
                .started
                .map_or(max_delay, |s| max_delay.saturating_sub(s.elapsed()));
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Err(_elapsed) => {}
                    Ok(Err(e)) => {
                        KafkaErrorSeen { context: "consume", error: &e }.emit();
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok(Ok(message)) => {
                        self.state.discard_if_revoked(&self.consumer);
                        self.state.check_contiguous(&message, &self.consumer);
                        self.state.handle(&message, &self.consumer);
                    }
                }
            }
            self.state.discard_if_revoked(&self.consumer);
            let full = self.state.assembler.pending_rows() >= self.max_batch_samples;
            let due = self.state.started.is_some_and(|s| s.elapsed() >= max_delay);
            if full || due {
                self.state.flush(&self.consumer).await?;
            }
        }
        self.state.flush(&self.consumer).await?;
        self.state.save_graph_now().await?;
        Ok(self.state.stats)
    }
}

impl IngestState {
    /// Detects messages the broker dropped before this consumer reached them: the offset
    /// received is beyond the one expected (the previous message's, or the committed
    /// offset for the first message of an assignment).
    fn check_contiguous(
        &mut self,
        message: &BorrowedMessage<'_>,
        consumer: &StreamConsumer<IngestContext>,
    ) {
        if message.topic() != self.telemetry_topic {
            return;
        }
        let generation = consumer
            .context()
            .assignments
            .load(std::sync::atomic::Ordering::Relaxed);
        if generation != self.positions_of {
            self.positions.clear();
            self.positions_of = generation;
        }
        let partition = message.partition();
        let expected = match self.positions.get(&partition) {
            Some(&next) => Some(next),
            None => committed_offset(consumer, message.topic(), partition),
        };
        if let Some(expected) = expected.filter(|&e| message.offset() > e) {
            OffsetsSkipped {
                topic: message.topic(),
                partition,
                expected,
                received: message.offset(),
            }
            .emit();
        }
        self.positions.insert(partition, message.offset() + 1);
    }

    /// Drops the pending batch if partitions were revoked since it began: its messages'
    /// offsets were not committed, so whoever is assigned them now (maybe this consumer)
    /// reads them again. Stored here, they would be stored twice — in two replicas' tables
    /// when the partition moved.
    fn discard_if_revoked(&mut self, consumer: &StreamConsumer<IngestContext>) {
        let revocations = consumer
            .context()
            .revocations
            .load(std::sync::atomic::Ordering::Relaxed);
        if self.started.is_some() && revocations != self.batch_of {
            tracing::warn!(
                rows = self.assembler.pending_rows(),
                "partitions were revoked: the pending batch is dropped; its messages are read again from the committed offsets"
            );
            self.assembler.discard();
            self.next_offsets.clear();
            self.deliveries.clear();
            self.poisoned = false;
            self.started = None;
        }
    }

    /// Decodes one message into the batch and dead-letters it if it had bad records.
    fn handle(&mut self, message: &BorrowedMessage<'_>, consumer: &StreamConsumer<IngestContext>) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
            self.batch_of = consumer
                .context()
                .revocations
                .load(std::sync::atomic::Ordering::Relaxed);
        }
        self.stats.messages += 1;
        self.status.set_broker_reachable(true);
        let topic = message.topic();
        MessageConsumed {
            topic,
            bytes: message.payload_len(),
        }
        .emit();
        let (format, outcome) =
            self.assembler
                .add(topic, message.payload(), message.timestamp().to_millis());
        if !outcome.is_clean() {
            self.dead_letter(message, format, &outcome);
        }
        let derived = self.assembler.take_derived();
        if !derived.is_empty() {
            self.publish_landscape(derived);
        }
        self.next_offsets.insert(
            (topic.to_string(), message.partition()),
            message.offset() + 1,
        );
    }

    /// Sends landscape events derived from telemetry to the landscape topic, one message
    /// per edge with the nodes it needs (keyed by the edge, so compaction keeps its latest
    /// weight); every consumer of the topic, this one included, applies them from there.
    /// Delivery is awaited before the batch commits, like dead letters.
    fn publish_landscape(&mut self, derived: Vec<LandscapeEvent>) {
        let mut pending = Vec::new();
        for event in derived {
            let key = match &event {
                LandscapeEvent::EdgeUp { edge, .. } => Some(format!(
                    "{} -{}-> {}",
                    edge.source, edge.relation, edge.target
                )),
                _ => None,
            };
            pending.push(event);
            let Some(key) = key else { continue };
            let payload = match serde_json::to_vec(&std::mem::take(&mut pending)) {
                Ok(p) => p,
                Err(_) => continue, // plain data: serialising it cannot fail
            };
            let topic = self.landscape_topic.clone();
            let record = FutureRecord::<[u8], [u8]>::to(&topic)
                .key(key.as_bytes())
                .payload(payload.as_slice());
            if self.enqueue(record, "landscape publish") {
                LandscapeDerived {
                    source: "service_graph",
                }
                .emit();
            }
        }
    }

    fn dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
        format: Option<Format>,
        outcome: &DecodeOutcome,
    ) {
        let kind = outcome.first_error_kind().map_or("unknown", |k| k.as_str());
        let reason = outcome
            .errors
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        DecodeFailed {
            topic: message.topic(),
            kind,
            records: outcome.error_count,
            partition: message.partition(),
            offset: message.offset(),
            reason: &reason,
        }
        .emit();
        let (partition, offset, count) = (
            message.partition().to_string(),
            message.offset().to_string(),
            outcome.error_count.to_string(),
        );
        let format = format.map_or("landscape", Format::as_str);
        let mut headers = OwnedHeaders::new();
        for (key, value) in [
            (dlq_headers::ERROR_KIND, kind),
            (dlq_headers::ERROR_REASON, reason.as_str()),
            (dlq_headers::ERROR_COUNT, count.as_str()),
            (dlq_headers::SOURCE_TOPIC, message.topic()),
            (dlq_headers::SOURCE_PARTITION, partition.as_str()),
            (dlq_headers::SOURCE_OFFSET, offset.as_str()),
            (dlq_headers::SOURCE_FORMAT, format),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        if let Some(original) = message.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let topic = self.dlq_topic.clone();
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if self.enqueue(record, "dead-letter enqueue") {
            self.stats.dead_letters += 1;
            DeadLettered {
                topic: &self.dlq_topic,
            }
            .emit();
        }
    }

    /// Queues a record whose delivery the batch awaits before it commits. One that cannot
    /// even be queued (the queue is full, the producer broken) fails the batch, so nothing
    /// is committed past this message and it will be consumed again.
    fn enqueue(&mut self, record: FutureRecord<'_, [u8], [u8]>, context: &'static str) -> bool {
        match self.dlq.send_result(record) {
            Ok(delivery) => {
                self.deliveries.push(delivery);
                true
            }
            Err((e, _)) => {
                KafkaErrorSeen { context, error: &e }.emit();
                self.poisoned = true;
                false
            }
        }
    }

    /// Saves the graph file on a blocking thread when it is due (it lags the tables by at
    /// most [`GRAPH_SAVE_INTERVAL`] plus one save, and is written on shutdown), so writing a
    /// large history never stalls ingestion; a save that failed fails the next flush.
    async fn save_graph_aside(&mut self) -> Result<()> {
        if self.saving.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.finish_saving().await?;
        if let Some(graph) = self.assembler.graph() {
            if graph.save_due(GRAPH_SAVE_INTERVAL) {
                let graph = Arc::clone(graph);
                self.saving = Some(tokio::task::spawn_blocking(move || {
                    save_graph(&graph, GRAPH_SAVE_INTERVAL)
                }));
            }
        }
        Ok(())
    }

    /// Waits for a save under way, then saves whatever changed since.
    async fn save_graph_now(&mut self) -> Result<()> {
        self.finish_saving().await?;
        self.assembler.save_graph(Duration::ZERO)
    }

    /// Waits for the save under way, if any, and passes on its error.
    async fn finish_saving(&mut self) -> Result<()> {
        match self.saving.take() {
            Some(done) => done
                .await
                .map_err(|e| BackgroundError::Internal(format!("saving the landscape: {e}")))?,
            None => Ok(()),
        }
    }

    /// Stores the batch, waits for its dead letters, then commits its offsets.
    async fn flush(&mut self, consumer: &StreamConsumer<IngestContext>) -> Result<()> {
        let Some(started) = self.started.take() else {
            return Ok(());
        };
        for (table, outcome) in self.assembler.store(&self.telemetry, &self.landscape)? {
            self.stats.rows += outcome.inserted as u64;
            self.stats.duplicates += outcome.duplicates as u64;
            BatchCommitted {
                table,
                inserted: outcome.inserted,
                duplicates: outcome.duplicates,
                latency: started.elapsed(),
            }
            .emit();
        }
        let dlq_failed =
            |e| BackgroundError::kafka("writing to the dead-letter or landscape topic")(e);
        for delivery in self.deliveries.drain(..) {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(dlq_failed(e)),
                Err(_) => return Err(dlq_failed(rdkafka::error::KafkaError::Canceled)),
            }
        }
        if std::mem::take(&mut self.poisoned) {
            return Err(dlq_failed(rdkafka::error::KafkaError::Canceled));
        }
        let next_offsets = std::mem::take(&mut self.next_offsets);
        // Lineage: which partitions' rows the tables hold, up to where.
        self.telemetry.record_offsets(
            next_offsets
                .iter()
                .map(|((topic, partition), next)| (topic.as_str(), *partition, *next)),
        )?;
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in next_offsets {
            offsets
                .add_partition_offset(&topic, partition, Offset::Offset(next))
                .map_err(BackgroundError::kafka("building the commit"))?;
        }
        if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
            // After a rebalance the partitions may belong to another member; the data is
            // stored and duplicates are dropped on redelivery, so this is not fatal.
            KafkaErrorSeen {
                context: "commit",
                error: &e,
            }
            .emit();
        }
        self.stats.batches += 1;
        let s = &self.stats;
        let p = &self.published;
        self.status.add_progress(&IngestStats {
            messages: s.messages - p.messages,
            rows: s.rows - p.rows,
            duplicates: s.duplicates - p.duplicates,
            dead_letters: s.dead_letters - p.dead_letters,
            batches: s.batches - p.batches,
        });
        self.published = self.stats;
        // After the commit: a failed save (reported by a later flush) never holds up a
        // batch that is already stored.
        self.save_graph_aside().await
    }
}

/// The group's committed offset of one partition (a broker round trip; once per partition
/// and assignment).
fn committed_offset(
    consumer: &StreamConsumer<IngestContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .ok()?;
    let offset = committed.find_partition(topic, partition)?.offset();
    match offset {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}
