//! Serde wire types. The JSON Schema files under `schemas/json/` are generated from these
//! types (`cargo test -p dcpilot-schemas` checks that they agree).

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::graph::{EdgeSpec, NodeSpec, Relation};

/// One measurement, long/narrow like a Prometheus sample: the native format of
/// `dcpilot.telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySample {
    /// Sample time in Unix milliseconds.
    pub timestamp_ms: i64,
    /// What was measured: a host or a workload instance (e.g. `vm-17`, `node-3`).
    pub entity: String,
    /// The host the entity runs on (equal to `entity` for host-level metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The workload the entity belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Metric name, e.g. `cpu_usage_mhz`, `p99_latency_ms`.
    pub metric: String,
    /// The value; must be finite.
    pub value: f64,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A borrowed sample: what decoders emit, so that the hot path does not allocate per field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRef<'a> {
    /// See [`TelemetrySample::timestamp_ms`].
    pub timestamp_ms: i64,
    /// See [`TelemetrySample::entity`].
    #[serde(borrow)]
    pub entity: Cow<'a, str>,
    /// See [`TelemetrySample::host`].
    #[serde(default, borrow)]
    pub host: Option<Cow<'a, str>>,
    /// See [`TelemetrySample::workload`].
    #[serde(default, borrow)]
    pub workload: Option<Cow<'a, str>>,
    /// See [`TelemetrySample::metric`].
    #[serde(borrow)]
    pub metric: Cow<'a, str>,
    /// See [`TelemetrySample::value`].
    pub value: f64,
    /// See [`TelemetrySample::labels`]; a JSON object on the wire.
    #[serde(default, borrow, deserialize_with = "labels_from_map")]
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl SampleRef<'_> {
    /// An owned copy.
    pub fn to_owned_sample(&self) -> TelemetrySample {
        TelemetrySample {
            timestamp_ms: self.timestamp_ms,
            entity: self.entity.to_string(),
            host: self.host.as_deref().map(str::to_string),
            workload: self.workload.as_deref().map(str::to_string),
            metric: self.metric.to_string(),
            value: self.value,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl TelemetrySample {
    /// A borrowed view, e.g. to feed a [`crate::SampleSink`].
    pub fn as_ref(&self) -> SampleRef<'_> {
        SampleRef {
            timestamp_ms: self.timestamp_ms,
            entity: Cow::Borrowed(&self.entity),
            host: self.host.as_deref().map(Cow::Borrowed),
            workload: self.workload.as_deref().map(Cow::Borrowed),
            metric: Cow::Borrowed(&self.metric),
            value: self.value,
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
        }
    }
}

/// Platform features of a host that effect models may condition on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformFeatures {
    /// SR-IOV capable NICs present.
    #[serde(default)]
    pub sriov: bool,
    /// Number of NUMA nodes.
    #[serde(default)]
    pub numa_nodes: Option<u32>,
    /// Intel RDT (cache allocation / memory bandwidth allocation) available.
    #[serde(default)]
    pub rdt: bool,
    /// Other features by name (e.g. `avx512`, `qat`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, String>,
}

/// A change of the landscape: hosts coming and going, instances placed and removed. The native
/// format of `dcpilot.landscape` (keyed by host or instance, compacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LandscapeEvent {
    /// A host is up (or changed) with this capacity.
    HostUp {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// Host name.
        host: String,
        /// Allocatable CPU cores.
        cores: f64,
        /// Allocatable memory in bytes.
        memory_bytes: u64,
        /// Platform features.
        #[serde(default)]
        features: PlatformFeatures,
        /// Free-form labels (zone, rack, node pool, ...).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// A host is down or drained.
    HostDown {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// Host name.
        host: String,
    },
    /// An instance of a workload was placed on a host.
    InstancePlaced {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// Instance id (pod, VM, container).
        instance: String,
        /// The workload it belongs to.
        workload: String,
        /// Host it runs on.
        host: String,
        /// Requested CPU cores.
        cpu_request: f64,
        /// Requested memory in bytes.
        memory_request_bytes: u64,
        /// Free-form labels. The `dcpilot.io/` ones describe the instance to the foreground:
        /// `pressure-cpu`, `pressure-l3`, `pressure-membw` (co-runner pressure it exerts),
        /// `latency-critical` (true/false), `rps`, `quiet-p99-ms`, `evictable` (true/false).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// An instance was removed.
    InstanceRemoved {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// Instance id.
        instance: String,
        /// Host it ran on.
        host: String,
    },
    /// Any entity appeared, or changed (a node with this id already in the graph gets a
    /// new version of its name, aliases, labels and attributes; layer, category and type
    /// are fixed).
    NodeUp {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// The node.
        node: NodeSpec,
    },
    /// An entity disappeared, with every edge that touches it.
    NodeDown {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// Its id.
        id: String,
    },
    /// A relation appeared, or changed its weight or attributes.
    EdgeUp {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// The edge.
        edge: EdgeSpec,
    },
    /// A relation disappeared.
    EdgeDown {
        /// Event time in Unix milliseconds.
        timestamp_ms: i64,
        /// The node it started at.
        source: String,
        /// The node it pointed to.
        target: String,
        /// What the relation was.
        relation: Relation,
    },
}

impl LandscapeEvent {
    /// The event's kind as written in the `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HostUp { .. } => "host_up",
            Self::HostDown { .. } => "host_down",
            Self::InstancePlaced { .. } => "instance_placed",
            Self::InstanceRemoved { .. } => "instance_removed",
            Self::NodeUp { .. } => "node_up",
            Self::NodeDown { .. } => "node_down",
            Self::EdgeUp { .. } => "edge_up",
            Self::EdgeDown { .. } => "edge_down",
        }
    }

    /// Event time in Unix milliseconds.
    pub fn timestamp_ms(&self) -> i64 {
        match self {
            Self::HostUp { timestamp_ms, .. }
            | Self::HostDown { timestamp_ms, .. }
            | Self::InstancePlaced { timestamp_ms, .. }
            | Self::InstanceRemoved { timestamp_ms, .. }
            | Self::NodeUp { timestamp_ms, .. }
            | Self::NodeDown { timestamp_ms, .. }
            | Self::EdgeUp { timestamp_ms, .. }
            | Self::EdgeDown { timestamp_ms, .. } => *timestamp_ms,
        }
    }
}

type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Reads a JSON object of labels into a vector, borrowing where the input has no escapes.
fn labels_from_map<'de: 'a, 'a, D>(deserializer: D) -> Result<Labels<'a>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct LabelsVisitor;
    impl<'de> serde::de::Visitor<'de> for LabelsVisitor {
        type Value = Labels<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of string labels")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(
            self,
            mut map: M,
        ) -> Result<Self::Value, M::Error> {
            let mut labels = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry::<CowStr<'de>, CowStr<'de>>()? {
                labels.push((entry.0 .0, entry.1 .0));
            }
            Ok(labels)
        }
    }
    deserializer.deserialize_map(LabelsVisitor)
}

/// A string that borrows from the input when it can.
#[derive(Deserialize)]
#[serde(transparent)]
struct CowStr<'a>(#[serde(borrow)] Cow<'a, str>);
