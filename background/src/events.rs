//! Typed internal events: each `emit` logs and counts, so metric names and labels live here
//! and nowhere else. Label values are bounded (topics, partitions, error kinds, formats).

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

use crate::config::BackgroundConfig;

/// Metric names, for docs and tests.
pub mod names {
    /// Samples written to a table (after dedupe).
    pub const SAMPLES_INGESTED: &str = "dcpilot_ingest_samples_total";
    /// Payload bytes consumed.
    pub const BYTES_INGESTED: &str = "dcpilot_ingest_bytes_total";
    /// Messages consumed.
    pub const MESSAGES: &str = "dcpilot_ingest_messages_total";
    /// Bad records, by kind.
    pub const DECODE_ERRORS: &str = "dcpilot_ingest_decode_errors_total";
    /// Messages sent to the dead-letter topic.
    pub const DEAD_LETTERS: &str = "dcpilot_ingest_dead_letters_total";
    /// Landscape changes derived from telemetry and sent to the landscape topic.
    pub const LANDSCAPE_DERIVED: &str = "dcpilot_ingest_landscape_derived_total";
    /// Rows dropped as duplicates.
    pub const DUPLICATES: &str = "dcpilot_ingest_duplicates_total";
    /// Seconds from a batch's first message to its commit.
    pub const BATCH_LATENCY: &str = "dcpilot_ingest_batch_latency_seconds";
    /// Messages behind the high watermark, per partition.
    pub const CONSUMER_LAG: &str = "dcpilot_ingest_consumer_lag_messages";
    /// Partitions moved from memory to Parquet, by reason (retention, memory_ceiling).
    pub const SPILLS: &str = "dcpilot_store_spilled_partitions_total";
    /// Bytes a table holds in memory (Arrow buffers of its live partitions and their keys).
    pub const LIVE_BYTES: &str = "dcpilot_store_live_bytes";
    /// 1 while this replica holds a job's lease (scaled-out background).
    pub const LEASE_HELD: &str = "dcpilot_job_lease_held";
    /// Job leases this replica acquired.
    pub const LEASES_ACQUIRED: &str = "dcpilot_job_lease_acquired_total";
    /// Partitions this instance consumes now.
    pub const ASSIGNED_PARTITIONS: &str = "dcpilot_ingest_assigned_partitions";
    /// Kafka client errors.
    pub const KAFKA_ERRORS: &str = "dcpilot_kafka_errors_total";
    /// Messages skipped because the broker dropped them before they were consumed.
    pub const OFFSETS_SKIPPED: &str = "dcpilot_ingest_offsets_skipped_total";
    /// Background job runs, by job and outcome (published, rejected, error, panic, timeout).
    pub const JOB_RUNS: &str = "dcpilot_job_runs_total";
    /// Seconds a job run took, by job.
    pub const JOB_DURATION: &str = "dcpilot_job_run_seconds";
    /// The last completed run's holdout error of the new model, by job.
    pub const JOB_MODEL_ERROR: &str = "dcpilot_job_model_error";
    /// The last completed run's holdout error of the best baseline, by job.
    pub const JOB_BASELINE_ERROR: &str = "dcpilot_job_baseline_error";
    /// Query rows the last completed run of a job left out (a value it reads was null or
    /// not a number), by job: every run reads its whole window again, so this is a level,
    /// not a count of new bad rows.
    pub const JOB_ROWS_SKIPPED: &str = "dcpilot_job_rows_skipped";
    /// Entities the last colouring judged anomalous, by job.
    pub const COLOURING_ANOMALOUS: &str = "dcpilot_colouring_anomalous_entities";
    /// Entities the last colouring scored, by job.
    pub const COLOURING_ENTITIES: &str = "dcpilot_colouring_entities";
    /// Hosts the last colouring judged anomalous (by themselves or their network), by job.
    pub const COLOURING_ANOMALOUS_HOSTS: &str = "dcpilot_colouring_anomalous_hosts";
    /// The last colouring's top root-cause score (0 when nothing is anomalous), by job.
    pub const COLOURING_TOP_SCORE: &str = "dcpilot_colouring_top_cause_score";
    /// The served version's error on the newest rows it never saw, by model and version.
    pub const MODEL_LIVE_ERROR: &str = "dcpilot_model_live_error";
    /// Each baseline's error on the same rows, by model, version and baseline.
    pub const MODEL_LIVE_BASELINE_ERROR: &str = "dcpilot_model_live_baseline_error";
    /// Rows the last live judgement read, by model and version.
    pub const MODEL_LIVE_ROWS: &str = "dcpilot_model_live_rows";
    /// 1 while the served version is demoted (worse than its best baseline), by model.
    pub const MODEL_DEMOTED: &str = "dcpilot_model_demoted";
    /// Demotions and re-promotions, by model and change.
    pub const MODEL_DEMOTIONS: &str = "dcpilot_model_demotions_total";
    /// Live judgements that failed, by model.
    pub const MODEL_LIVE_FAILURES: &str = "dcpilot_model_live_failures_total";
}

/// Every metric of the background, described once (Prometheus `# HELP` and `# TYPE`).
pub fn describe_metrics() {
    // The recorder must exist before descriptions reach it.
    let _ = crate::http::metrics_handle();
    use names::*;
    describe_counter!(
        MESSAGES,
        Unit::Count,
        "Kafka messages consumed, by source topic."
    );
    describe_counter!(
        BYTES_INGESTED,
        Unit::Bytes,
        "Payload bytes consumed, by source topic."
    );
    describe_counter!(
        SAMPLES_INGESTED,
        Unit::Count,
        "Rows stored in a table after dedupe (telemetry samples, landscape events)."
    );
    describe_counter!(
        DUPLICATES,
        Unit::Count,
        "Rows dropped as duplicates of stored rows (redeliveries, replays)."
    );
    describe_counter!(
        DECODE_ERRORS,
        Unit::Count,
        "Undecodable records, by source topic and error kind."
    );
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Messages written to the dead-letter topic."
    );
    describe_counter!(
        LANDSCAPE_DERIVED,
        Unit::Count,
        "Landscape messages derived from telemetry (service-graph call edges) and sent to the landscape topic, by source."
    );
    describe_histogram!(
        BATCH_LATENCY,
        Unit::Seconds,
        "Time from a micro-batch's first message to its offsets being committed."
    );
    describe_gauge!(
        CONSUMER_LAG,
        Unit::Count,
        "Messages behind the high watermark, per partition (librdkafka statistics)."
    );
    describe_counter!(
        SPILLS,
        Unit::Count,
        "Time partitions moved from memory to Parquet (reason: retention, or the memory ceiling)."
    );
    describe_gauge!(
        LEASE_HELD,
        Unit::Count,
        "1 while this replica holds the job's lease and trains it (cluster.enabled)."
    );
    describe_counter!(
        LEASES_ACQUIRED,
        Unit::Count,
        "Job leases this replica acquired (cluster.enabled)."
    );
    describe_gauge!(
        LIVE_BYTES,
        Unit::Bytes,
        "Bytes a table holds in memory: its live partitions' Arrow buffers and their row keys."
    );
    describe_gauge!(
        ASSIGNED_PARTITIONS,
        Unit::Count,
        "Partitions the consumer group assigned to this instance."
    );
    describe_counter!(
        KAFKA_ERRORS,
        Unit::Count,
        "Kafka client errors, by what the client was doing."
    );
    describe_counter!(
        OFFSETS_SKIPPED,
        Unit::Count,
        "Messages lost: the broker dropped them (retention) before they were consumed."
    );
    describe_counter!(
        JOB_RUNS,
        Unit::Count,
        "Background job runs, by job and outcome (published, rejected, error, panic, timeout)."
    );
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Duration of a background job run."
    );
    describe_gauge!(
        JOB_MODEL_ERROR,
        "Holdout error of the last completed run's model, in the job's error metric."
    );
    describe_gauge!(
        JOB_BASELINE_ERROR,
        "Holdout error of the last completed run's best naive baseline."
    );
    describe_gauge!(
        JOB_ROWS_SKIPPED,
        Unit::Count,
        "Query rows the last completed run left out because a value it reads was null or not a number."
    );
    describe_gauge!(
        COLOURING_ENTITIES,
        Unit::Count,
        "Entities the last landscape colouring scored."
    );
    describe_gauge!(
        COLOURING_ANOMALOUS,
        Unit::Count,
        "Entities the last landscape colouring judged anomalous."
    );
    describe_gauge!(
        COLOURING_ANOMALOUS_HOSTS,
        Unit::Count,
        "Hosts the last landscape colouring judged anomalous, by themselves or their network."
    );
    describe_gauge!(
        MODEL_LIVE_ERROR,
        "The served version's error on the newest rows it never saw (truth arrived after its training window), in its job's metric."
    );
    describe_gauge!(
        MODEL_LIVE_BASELINE_ERROR,
        "Each baseline's error on the rows of the last live judgement."
    );
    describe_gauge!(
        MODEL_LIVE_ROWS,
        Unit::Count,
        "Rows the last live judgement of a model read."
    );
    describe_gauge!(
        MODEL_DEMOTED,
        "1 while the served version is worse than its best baseline live (the foreground answers with the baseline)."
    );
    describe_counter!(
        MODEL_DEMOTIONS,
        Unit::Count,
        "Demotions and re-promotions of served models, by change (demoted, repromoted)."
    );
    describe_counter!(
        MODEL_LIVE_FAILURES,
        Unit::Count,
        "Live judgements that failed."
    );
    describe_gauge!(
        COLOURING_TOP_SCORE,
        "Score of the last landscape colouring's likeliest root cause (0: nothing anomalous)."
    );
}

/// Contexts of [`KafkaErrorSeen`], each exported at 0 from the start.
pub const KAFKA_ERROR_CONTEXTS: &[&str] = &[
    "client",
    "consume",
    "commit",
    "rebalance",
    "dead-letter enqueue",
    "landscape publish",
];

/// Registers every counter whose labels are known at start at 0, so `rate()` and
/// `increase()` work from the first scrape instead of from the first event.
pub fn zero_counters(config: &BackgroundConfig, jobs: Option<&dcpilot_pipelines::Registry>) {
    use names::*;
    let k = &config.kafka;
    for topic in [&k.telemetry_topic, &k.landscape_topic] {
        counter!(MESSAGES, "topic" => topic.clone()).absolute(0);
        counter!(BYTES_INGESTED, "topic" => topic.clone()).absolute(0);
        for kind in dcpilot_schemas::DecodeErrorKind::ALL {
            counter!(DECODE_ERRORS, "topic" => topic.clone(), "kind" => kind.as_str()).absolute(0);
        }
    }
    counter!(DEAD_LETTERS, "topic" => k.dlq_topic.clone()).absolute(0);
    counter!(LANDSCAPE_DERIVED, "source" => "service_graph").absolute(0);
    for table in ["telemetry", "landscape"] {
        counter!(SAMPLES_INGESTED, "table" => table).absolute(0);
        counter!(DUPLICATES, "table" => table).absolute(0);
        for reason in ["retention", "memory_ceiling"] {
            counter!(SPILLS, "table" => table, "reason" => reason).absolute(0);
        }
    }
    for context in KAFKA_ERROR_CONTEXTS {
        counter!(KAFKA_ERRORS, "context" => *context).absolute(0);
    }
    gauge!(ASSIGNED_PARTITIONS).set(0.0);
    if let Some(jobs) = jobs {
        for job in jobs.jobs() {
            for outcome in JobRunOutcome::ALL {
                counter!(JOB_RUNS, "job" => job.name().to_string(), "outcome" => outcome.as_str())
                    .absolute(0);
            }
            gauge!(JOB_ROWS_SKIPPED, "job" => job.name().to_string()).set(0.0);
        }
    }
}

/// Partitions of the telemetry topic were assigned: their loss counters start at 0.
pub struct TelemetryPartitionsAssigned<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partitions.
    pub partitions: &'a [i32],
}

impl TelemetryPartitionsAssigned<'_> {
    /// Registers the per-partition counters.
    pub fn emit(&self) {
        for p in self.partitions {
            counter!(names::OFFSETS_SKIPPED, "topic" => self.topic.to_string(), "partition" => p.to_string())
                .increment(0);
        }
    }
}

/// A message was consumed.
pub struct MessageConsumed<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Payload size.
    pub bytes: usize,
}

impl MessageConsumed<'_> {
    /// Counts it.
    pub fn emit(&self) {
        counter!(names::MESSAGES, "topic" => self.topic.to_string()).increment(1);
        counter!(names::BYTES_INGESTED, "topic" => self.topic.to_string())
            .increment(self.bytes as u64);
    }
}

/// Records of a message could not be decoded.
pub struct DecodeFailed<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Error kind (`DecodeErrorKind::as_str`).
    pub kind: &'a str,
    /// Bad records.
    pub records: usize,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The first error.
    pub reason: &'a str,
}

impl DecodeFailed<'_> {
    /// Logs and counts it.
    pub fn emit(&self) {
        tracing::warn!(
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            kind = self.kind,
            records = self.records,
            reason = self.reason,
            "undecodable records; message goes to the dead-letter topic"
        );
        counter!(names::DECODE_ERRORS, "topic" => self.topic.to_string(), "kind" => self.kind.to_string())
            .increment(self.records as u64);
    }
}

/// A message was written to the dead-letter topic.
pub struct DeadLettered<'a> {
    /// Dead-letter topic.
    pub topic: &'a str,
}

impl DeadLettered<'_> {
    /// Counts it.
    pub fn emit(&self) {
        counter!(names::DEAD_LETTERS, "topic" => self.topic.to_string()).increment(1);
    }
}

/// A landscape change derived from telemetry was sent to the landscape topic.
pub struct LandscapeDerived {
    /// What it was derived from (`service_graph`).
    pub source: &'static str,
}

impl LandscapeDerived {
    /// Counts it.
    pub fn emit(&self) {
        counter!(names::LANDSCAPE_DERIVED, "source" => self.source).increment(1);
    }
}

/// A batch landed in a table and its offsets were committed.
pub struct BatchCommitted<'a> {
    /// Table name.
    pub table: &'a str,
    /// Rows stored.
    pub inserted: usize,
    /// Rows dropped as duplicates.
    pub duplicates: usize,
    /// First message to commit.
    pub latency: Duration,
}

impl BatchCommitted<'_> {
    /// Logs and counts it.
    pub fn emit(&self) {
        tracing::debug!(
            table = self.table,
            inserted = self.inserted,
            duplicates = self.duplicates,
            latency_ms = self.latency.as_millis() as u64,
            "batch committed"
        );
        counter!(names::SAMPLES_INGESTED, "table" => self.table.to_string())
            .increment(self.inserted as u64);
        counter!(names::DUPLICATES, "table" => self.table.to_string())
            .increment(self.duplicates as u64);
        histogram!(names::BATCH_LATENCY).record(self.latency.as_secs_f64());
    }
}

/// Consumer lag from librdkafka's statistics.
pub struct ConsumerLag<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Messages behind.
    pub lag: i64,
}

impl ConsumerLag<'_> {
    /// Sets the gauge.
    pub fn emit(&self) {
        gauge!(names::CONSUMER_LAG, "topic" => self.topic.to_string(), "partition" => self.partition.to_string())
            .set(self.lag as f64);
    }
}

/// A live partition was moved to Parquet.
pub struct PartitionSpilled<'a> {
    /// Table name.
    pub table: &'a str,
    /// Rows moved.
    pub rows: usize,
    /// The Parquet file.
    pub path: &'a std::path::Path,
    /// `retention` (it left the window) or `memory_ceiling` (the table was over its
    /// `store.memory_ceiling_mb`).
    pub reason: &'static str,
}

impl PartitionSpilled<'_> {
    /// Logs and counts it.
    pub fn emit(&self) {
        tracing::info!(table = self.table, rows = self.rows, path = %self.path.display(), reason = self.reason, "partition spilled to parquet");
        counter!(names::SPILLS, "table" => self.table.to_string(), "reason" => self.reason)
            .increment(1);
    }
}

/// The Kafka client reported an error.
pub struct KafkaErrorSeen<'a> {
    /// What we were doing.
    pub context: &'a str,
    /// The error.
    pub error: &'a dyn std::fmt::Display,
}

impl KafkaErrorSeen<'_> {
    /// Counts it and logs it, rate-limited per context (a broker outage repeats the same
    /// error several times a second).
    pub fn emit(&self) {
        dcpilot_runtime::kafka::log_client_error(self.context, self.error, "");
        counter!(names::KAFKA_ERRORS, "context" => self.context.to_string()).increment(1);
    }
}

/// Offsets were skipped: the broker no longer had them (retention, or the embedded
/// broker's 5 MB per partition) when this consumer got there. Those messages are lost.
pub struct OffsetsSkipped<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// The offset expected next.
    pub expected: i64,
    /// The offset received.
    pub received: i64,
}

impl OffsetsSkipped<'_> {
    /// Logs it and counts the lost messages.
    pub fn emit(&self) {
        let lost = self.received - self.expected;
        tracing::error!(
            topic = self.topic,
            partition = self.partition,
            expected = self.expected,
            received = self.received,
            lost,
            "messages lost: the broker dropped them before they were consumed (retention); consume faster or keep more"
        );
        counter!(names::OFFSETS_SKIPPED, "topic" => self.topic.to_string(), "partition" => self.partition.to_string())
            .increment(lost.max(0) as u64);
    }
}

/// The consumer group gave this instance its partitions (or took them away).
pub struct PartitionsAssigned {
    /// Partitions now assigned.
    pub count: usize,
}

impl PartitionsAssigned {
    /// Logs it and sets the gauge.
    pub fn emit(&self) {
        tracing::info!(partitions = self.count, "consumer group assignment");
        gauge!(names::ASSIGNED_PARTITIONS).set(self.count as f64);
    }
}

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRunOutcome {
    /// Trained, judged, published.
    Published,
    /// Trained and judged; lost to the champion or a baseline.
    Rejected,
    /// Failed with an error.
    Error,
    /// The job's code panicked (caught).
    Panic,
    /// Exceeded its time budget; cancelled.
    Timeout,
}

impl JobRunOutcome {
    /// Every outcome.
    pub const ALL: [Self; 5] = [
        Self::Published,
        Self::Rejected,
        Self::Error,
        Self::Panic,
        Self::Timeout,
    ];

    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Rejected => "rejected",
            Self::Error => "error",
            Self::Panic => "panic",
            Self::Timeout => "timeout",
        }
    }
}

/// A background job run ended.
pub struct JobRunFinished<'a> {
    /// Job name (bounded: the registered jobs).
    pub job: &'a str,
    /// How it ended.
    pub outcome: JobRunOutcome,
    /// How long it took.
    pub duration: Duration,
    /// Its report, when it completed.
    pub report: Option<&'a dcpilot_pipelines::RunReport>,
    /// Its error, when it failed.
    pub error: Option<&'a dcpilot_pipelines::PipelineError>,
}

impl JobRunFinished<'_> {
    /// Logs it with the job's name and counts it.
    pub fn emit(&self) {
        let job = self.job.to_string();
        counter!(names::JOB_RUNS, "job" => job.clone(), "outcome" => self.outcome.as_str())
            .increment(1);
        histogram!(names::JOB_DURATION, "job" => job.clone()).record(self.duration.as_secs_f64());
        let secs = self.duration.as_secs_f64();
        if let Some(r) = self.report {
            gauge!(names::JOB_MODEL_ERROR, "job" => job.clone()).set(r.model_error);
            gauge!(names::JOB_BASELINE_ERROR, "job" => job.clone()).set(r.baseline_error);
            gauge!(names::JOB_ROWS_SKIPPED, "job" => job.clone()).set(r.skipped_rows as f64);
            if r.skipped_rows > 0 {
                tracing::warn!(
                    job = self.job,
                    rows = r.skipped_rows,
                    examples = ?r.skipped_examples,
                    "job left out unreadable rows"
                );
            }
            if let Some(c) = &r.colouring {
                gauge!(names::COLOURING_ENTITIES, "job" => job.clone()).set(c.entities as f64);
                gauge!(names::COLOURING_ANOMALOUS, "job" => job.clone()).set(c.anomalous as f64);
                gauge!(names::COLOURING_ANOMALOUS_HOSTS, "job" => job.clone())
                    .set(c.anomalous_hosts as f64);
                gauge!(names::COLOURING_TOP_SCORE, "job" => job).set(c.top_score());
                tracing::info!(
                    job = self.job,
                    at = c.at,
                    entities = c.entities,
                    anomalous = c.anomalous,
                    anomalous_hosts = c.anomalous_hosts,
                    top_cause = ?c.top_cause,
                    problems = c.problems.len(),
                    "landscape coloured"
                );
            }
            tracing::info!(
                job = self.job,
                outcome = self.outcome.as_str(),
                secs,
                metric = %r.metric,
                model_error = r.model_error,
                baseline = %r.baseline,
                baseline_error = r.baseline_error,
                version = ?r.published_version,
                rejected = ?r.rejected,
                "job run finished"
            );
        }
        if let Some(e) = self.error {
            tracing::error!(
                job = self.job,
                outcome = self.outcome.as_str(),
                secs,
                kind = e.kind(),
                retryable = e.is_retryable(),
                error = %e,
                "job run failed"
            );
        }
    }
}

/// A live judgement of a served model ended.
pub struct LiveJudged<'a> {
    /// Job (= model) name.
    pub job: &'a str,
    /// What it found, or why it failed.
    pub outcome: std::result::Result<
        &'a dcpilot_pipelines::LiveReport,
        &'a dcpilot_pipelines::PipelineError,
    >,
}

impl LiveJudged<'_> {
    /// Sets the live gauges, counts demotions, and logs a change as a warning.
    pub fn emit(&self) {
        let job = self.job.to_string();
        let report = match self.outcome {
            Ok(report) => report,
            Err(e) => {
                counter!(names::MODEL_LIVE_FAILURES, "model" => job).increment(1);
                tracing::warn!(job = self.job, kind = e.kind(), error = %e, "live judgement failed");
                return;
            }
        };
        let Some(v) = &report.verdict else {
            tracing::debug!(job = self.job, pending = ?report.pending, "no live verdict yet");
            return;
        };
        let version = v.version.to_string();
        gauge!(names::MODEL_LIVE_ERROR, "model" => job.clone(), "version" => version.clone())
            .set(v.model_error);
        gauge!(names::MODEL_LIVE_ROWS, "model" => job.clone(), "version" => version.clone())
            .set(v.rows as f64);
        // By model only: a superseded version's series must not stay at 1.
        gauge!(names::MODEL_DEMOTED, "model" => job.clone()).set(if v.demoted { 1.0 } else { 0.0 });
        for b in &v.baselines {
            gauge!(names::MODEL_LIVE_BASELINE_ERROR, "model" => job.clone(), "version" => version.clone(), "baseline" => b.name.clone())
                .set(b.error);
        }
        match report.change {
            Some(change) => {
                let name = match change {
                    dcpilot_pipelines::LiveChange::Demoted => "demoted",
                    dcpilot_pipelines::LiveChange::Repromoted => "repromoted",
                };
                counter!(names::MODEL_DEMOTIONS, "model" => job, "change" => name).increment(1);
                tracing::warn!(
                    job = self.job,
                    version = v.version,
                    change = name,
                    verdict = %v.summary(),
                    published = ?report.published_version,
                    "model {name}"
                );
            }
            None => tracing::info!(
                job = self.job,
                version = v.version,
                demoted = v.demoted,
                verdict = %v.summary(),
                "model judged live"
            ),
        }
    }
}
