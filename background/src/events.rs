//! Typed internal events: each `emit` logs and counts, so metric names and labels live here
//! and nowhere else. Label values are bounded (topics, partitions, error kinds, formats).

use std::time::Duration;

use metrics::{counter, gauge, histogram};

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
    /// Rows dropped as duplicates.
    pub const DUPLICATES: &str = "dcpilot_ingest_duplicates_total";
    /// Seconds from a batch's first message to its commit.
    pub const BATCH_LATENCY: &str = "dcpilot_ingest_batch_latency_seconds";
    /// Messages behind the high watermark, per partition.
    pub const CONSUMER_LAG: &str = "dcpilot_ingest_consumer_lag_messages";
    /// Partitions moved from memory to Parquet.
    pub const SPILLS: &str = "dcpilot_store_spilled_partitions_total";
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
}

impl PartitionSpilled<'_> {
    /// Logs and counts it.
    pub fn emit(&self) {
        tracing::info!(table = self.table, rows = self.rows, path = %self.path.display(), "partition spilled to parquet");
        counter!(names::SPILLS, "table" => self.table.to_string()).increment(1);
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
    /// Logs and counts it.
    pub fn emit(&self) {
        tracing::warn!(context = self.context, error = %self.error, "kafka error");
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
            gauge!(names::JOB_BASELINE_ERROR, "job" => job).set(r.baseline_error);
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
