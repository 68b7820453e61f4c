//! Arrow schemas of the `telemetry` and `landscape` tables and builders that fill them.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Builder, MapBuilder, StringBuilder,
    TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::decode::SampleSink;
use crate::wire::{LandscapeEvent, SampleRef};

const UTC: &str = "UTC";

/// The type of every timestamp column (`telemetry.ts`, the landscape tables' validity):
/// Unix milliseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

fn labels_builder(capacity: usize) -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::with_capacity(None, StringBuilder::new(), StringBuilder::new(), capacity)
}

fn labels_type() -> DataType {
    // Taken from the builder so the schema always matches what it produces.
    labels_builder(0).finish().data_type().clone()
}

static TELEMETRY_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("ts", timestamp_type(), false),
        Field::new("entity", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, true),
        Field::new("workload", DataType::Utf8, true),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("labels", labels_type(), false),
    ]))
});

static LANDSCAPE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("ts", timestamp_type(), false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, false),
        Field::new("instance", DataType::Utf8, true),
        Field::new("workload", DataType::Utf8, true),
        Field::new("cores", DataType::Float64, true),
        Field::new("memory_bytes", DataType::UInt64, true),
        Field::new("sriov", DataType::Boolean, true),
        Field::new("numa_nodes", DataType::UInt32, true),
        Field::new("rdt", DataType::Boolean, true),
        Field::new("cpu_request", DataType::Float64, true),
        Field::new("memory_request_bytes", DataType::UInt64, true),
        Field::new("labels", labels_type(), false),
    ]))
});

/// Schema of the `telemetry` table: one row per sample.
pub fn telemetry_schema() -> SchemaRef {
    TELEMETRY_SCHEMA.clone()
}

/// Schema of the `landscape` table: one row per landscape event. Platform features beyond
/// SR-IOV, NUMA and RDT appear in `labels` as `feature.<name>`.
pub fn landscape_schema() -> SchemaRef {
    LANDSCAPE_SCHEMA.clone()
}

/// Accumulates samples into a `telemetry` [`RecordBatch`].
pub struct TelemetryBatchBuilder {
    ts: TimestampMillisecondBuilder,
    entity: StringBuilder,
    host: StringBuilder,
    workload: StringBuilder,
    metric: StringBuilder,
    value: Float64Builder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    len: usize,
}

impl Default for TelemetryBatchBuilder {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl TelemetryBatchBuilder {
    /// A builder with room for `rows` samples.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            ts: TimestampMillisecondBuilder::with_capacity(rows).with_timezone(UTC),
            entity: StringBuilder::with_capacity(rows, rows * 8),
            host: StringBuilder::with_capacity(rows, rows * 8),
            workload: StringBuilder::with_capacity(rows, rows * 8),
            metric: StringBuilder::with_capacity(rows, rows * 16),
            value: Float64Builder::with_capacity(rows),
            labels: labels_builder(rows),
            len: 0,
        }
    }

    /// Rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no rows are pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the pending rows as a batch and leaves the builder empty.
    pub fn finish(&mut self) -> RecordBatch {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.entity.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.workload.finish()),
            Arc::new(self.metric.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.labels.finish()),
        ];
        batch(telemetry_schema(), columns)
    }
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    // The builders and the schema are defined together above; a mismatch is a bug here.
    #[allow(clippy::expect_used)]
    RecordBatch::try_new(schema, columns).expect("builder columns match their schema")
}

impl SampleSink for TelemetryBatchBuilder {
    fn push(&mut self, s: &SampleRef<'_>) {
        self.ts.append_value(s.timestamp_ms);
        self.entity.append_value(&s.entity);
        self.host.append_option(s.host.as_deref());
        self.workload.append_option(s.workload.as_deref());
        self.metric.append_value(&s.metric);
        self.value.append_value(s.value);
        for (k, v) in &s.labels {
            self.labels.keys().append_value(k);
            self.labels.values().append_value(v);
        }
        // Appending a map entry only fails when the key and value counts differ.
        let _ = self.labels.append(true);
        self.len += 1;
    }
}

/// Accumulates landscape events into a `landscape` [`RecordBatch`].
pub struct LandscapeBatchBuilder {
    ts: TimestampMillisecondBuilder,
    kind: StringBuilder,
    host: StringBuilder,
    instance: StringBuilder,
    workload: StringBuilder,
    cores: Float64Builder,
    memory_bytes: UInt64Builder,
    sriov: BooleanBuilder,
    numa_nodes: UInt32Builder,
    rdt: BooleanBuilder,
    cpu_request: Float64Builder,
    memory_request_bytes: UInt64Builder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    len: usize,
}

impl Default for LandscapeBatchBuilder {
    fn default() -> Self {
        Self {
            ts: TimestampMillisecondBuilder::new().with_timezone(UTC),
            kind: StringBuilder::new(),
            host: StringBuilder::new(),
            instance: StringBuilder::new(),
            workload: StringBuilder::new(),
            cores: Float64Builder::new(),
            memory_bytes: UInt64Builder::new(),
            sriov: BooleanBuilder::new(),
            numa_nodes: UInt32Builder::new(),
            rdt: BooleanBuilder::new(),
            cpu_request: Float64Builder::new(),
            memory_request_bytes: UInt64Builder::new(),
            labels: labels_builder(0),
            len: 0,
        }
    }
}

impl LandscapeBatchBuilder {
    /// Rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no rows are pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one event as a row.
    pub fn push(&mut self, event: &LandscapeEvent) {
        self.ts.append_value(event.timestamp_ms());
        self.kind.append_value(event.kind());
        let (mut host_cap, mut placement, mut features) = (None, None, None);
        let (host, instance, workload) = match event {
            LandscapeEvent::HostUp {
                host,
                cores,
                memory_bytes,
                features: f,
                labels,
                ..
            } => {
                host_cap = Some((*cores, *memory_bytes));
                features = Some(f);
                for (k, v) in labels {
                    self.labels.keys().append_value(k);
                    self.labels.values().append_value(v);
                }
                for (k, v) in &f.other {
                    self.labels.keys().append_value(format!("feature.{k}"));
                    self.labels.values().append_value(v);
                }
                (host.as_str(), None, None)
            }
            LandscapeEvent::HostDown { host, .. } => (host.as_str(), None, None),
            LandscapeEvent::InstancePlaced {
                instance,
                workload,
                host,
                cpu_request,
                memory_request_bytes,
                labels,
                ..
            } => {
                placement = Some((*cpu_request, *memory_request_bytes));
                for (k, v) in labels {
                    self.labels.keys().append_value(k);
                    self.labels.values().append_value(v);
                }
                (
                    host.as_str(),
                    Some(instance.as_str()),
                    Some(workload.as_str()),
                )
            }
            LandscapeEvent::InstanceRemoved { instance, host, .. } => {
                (host.as_str(), Some(instance.as_str()), None)
            }
            // Generic graph events: `host` holds the subject (the node, or the edge's
            // source), `instance` the edge's target, `workload` the node type or relation.
            LandscapeEvent::NodeUp { node, .. } => {
                for (k, v) in &node.labels {
                    self.labels.keys().append_value(k);
                    self.labels.values().append_value(v);
                }
                (node.id.as_str(), None, Some(node.node_type.as_str()))
            }
            LandscapeEvent::NodeDown { id, .. } => (id.as_str(), None, None),
            LandscapeEvent::EdgeUp { edge, .. } => (
                edge.source.as_str(),
                Some(edge.target.as_str()),
                Some(edge.relation.as_str()),
            ),
            LandscapeEvent::EdgeDown {
                source,
                target,
                relation,
                ..
            } => (
                source.as_str(),
                Some(target.as_str()),
                Some(relation.as_str()),
            ),
        };
        self.host.append_value(host);
        self.instance.append_option(instance);
        self.workload.append_option(workload);
        self.cores.append_option(host_cap.map(|c| c.0));
        self.memory_bytes.append_option(host_cap.map(|c| c.1));
        self.sriov.append_option(features.map(|f| f.sriov));
        self.numa_nodes
            .append_option(features.and_then(|f| f.numa_nodes));
        self.rdt.append_option(features.map(|f| f.rdt));
        self.cpu_request.append_option(placement.map(|p| p.0));
        self.memory_request_bytes
            .append_option(placement.map(|p| p.1));
        let _ = self.labels.append(true);
        self.len += 1;
    }

    /// Takes the pending rows as a batch and leaves the builder empty.
    pub fn finish(&mut self) -> RecordBatch {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.instance.finish()),
            Arc::new(self.workload.finish()),
            Arc::new(self.cores.finish()),
            Arc::new(self.memory_bytes.finish()),
            Arc::new(self.sriov.finish()),
            Arc::new(self.numa_nodes.finish()),
            Arc::new(self.rdt.finish()),
            Arc::new(self.cpu_request.finish()),
            Arc::new(self.memory_request_bytes.finish()),
            Arc::new(self.labels.finish()),
        ];
        batch(landscape_schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PlatformFeatures, TelemetrySample};
    use std::collections::BTreeMap;

    #[test]
    fn telemetry_batch_matches_schema() {
        let mut b = TelemetryBatchBuilder::default();
        let mut sample = TelemetrySample {
            timestamp_ms: 1_690_000_000_000,
            entity: "vm-1".into(),
            host: None,
            workload: Some("web".into()),
            metric: "cpu".into(),
            value: 2.0,
            labels: BTreeMap::from([("a".into(), "b".into())]),
        };
        b.push(&sample.as_ref());
        sample.labels.clear();
        b.push(&sample.as_ref());
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), telemetry_schema());
        assert!(b.is_empty());
    }

    #[test]
    fn landscape_batch_matches_schema() {
        let mut b = LandscapeBatchBuilder::default();
        b.push(&LandscapeEvent::HostUp {
            timestamp_ms: 1,
            host: "h".into(),
            cores: 4.0,
            memory_bytes: 8,
            features: PlatformFeatures {
                other: BTreeMap::from([("avx512".into(), "true".into())]),
                ..Default::default()
            },
            labels: BTreeMap::new(),
        });
        b.push(&LandscapeEvent::HostDown {
            timestamp_ms: 2,
            host: "h".into(),
        });
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), landscape_schema());
    }
}
