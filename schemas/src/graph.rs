//! Wire types of the landscape graph: what a node and an edge are, as producers write them
//! in the generic `node_up` / `edge_up` landscape events and as the import formats map to.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The layer an entity lives in: what is bolted down, what is allocated on it, and what is
/// offered on top.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Racks, hosts, sockets, NUMA nodes, cores, NICs, switches, disks.
    Physical,
    /// VMs, containers and pods, volumes, networks, vNICs.
    Virtual,
    /// Services, deployments, stacks.
    Service,
}

impl Layer {
    /// Every layer, bottom up.
    pub const ALL: [Layer; 3] = [Layer::Physical, Layer::Virtual, Layer::Service];

    /// The name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Physical => "physical",
            Self::Virtual => "virtual",
            Self::Service => "service",
        }
    }

    /// Reads a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What kind of resource an entity is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Computes: hosts, cores, VMs, pods, services.
    Compute,
    /// Moves bytes: NICs, switches, networks.
    Network,
    /// Keeps bytes: disks, volumes.
    Storage,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 3] = [Category::Compute, Category::Network, Category::Storage];

    /// The name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Network => "network",
            Self::Storage => "storage",
        }
    }

    /// Reads a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// A typed, directed relation. The direction is the one people say: a pod `runs_on` a host,
/// a host `contains` a socket, a frontend `calls` a cart service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Containment (a tree): rack → host, host → socket → core → PU, host → NIC.
    Contains,
    /// Allocation: pod or VM → the host (or VM) it runs on; a stack → what it runs on.
    RunsOn,
    /// Deployment: a VM deployed on a machine (Landscaper's `DEPLOYED_ON`).
    DeployedOn,
    /// Membership: pod → replica set → deployment; pod → service.
    MemberOf,
    /// Calls: service → service, with a weight (requests or spans).
    Calls,
    /// Wiring: NIC → switch.
    Connects,
    /// Attachment: volume → VM.
    Attached,
    /// Any other dependency: vNIC → network, subnet → network, VM → volume.
    Requires,
}

impl Relation {
    /// Every relation.
    pub const ALL: [Relation; 8] = [
        Relation::Contains,
        Relation::RunsOn,
        Relation::DeployedOn,
        Relation::MemberOf,
        Relation::Calls,
        Relation::Connects,
        Relation::Attached,
        Relation::Requires,
    ];

    /// The name as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::RunsOn => "runs_on",
            Self::DeployedOn => "deployed_on",
            Self::MemberOf => "member_of",
            Self::Calls => "calls",
            Self::Connects => "connects",
            Self::Attached => "attached",
            Self::Requires => "requires",
        }
    }

    /// Reads a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether a failure of the edge's target reaches its source (`true`: a host failing
    /// takes down what runs on it), or the other way round (`false`: a failing socket does
    /// not take the host down, but a host failing takes down what it contains — so for
    /// containment the failure flows from source to target).
    pub fn failure_flows_to_source(self) -> bool {
        match self {
            // What runs on, calls, is wired to or requires something fails with it.
            Self::RunsOn | Self::DeployedOn | Self::Calls | Self::Connects | Self::Requires => true,
            // A container takes its contents down; a member takes its group down (a
            // degraded deployment); an attached volume takes its VM down.
            Self::Contains | Self::MemberOf | Self::Attached => false,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A node as a producer describes it (`node_up`), and as importers build it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Stable id, unique in the landscape (a host's or pod's name, `host/core:3`, …).
    pub id: String,
    /// Its layer.
    pub layer: Layer,
    /// Its category.
    pub category: Category,
    /// Its type: `host`, `machine`, `package`, `numa_node`, `core`, `pu`, `cache`, `nic`,
    /// `switch`, `disk`, `vm`, `pod`, `container`, `volume`, `network`, `vnic`, `service`,
    /// `deployment`, `replicaset`, `stack`, … (a known type must be in its layer).
    #[serde(rename = "type")]
    pub node_type: String,
    /// Display name (defaults to the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other names telemetry may use for it (an IP address, a hostname).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Labels (selectable).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Anything else the source knew, kept as it was (strings, numbers, lists).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl NodeSpec {
    /// A node with no name, aliases, labels or attributes.
    pub fn new(id: impl Into<String>, layer: Layer, category: Category, node_type: &str) -> Self {
        Self {
            id: id.into(),
            layer,
            category,
            node_type: node_type.into(),
            name: None,
            aliases: Vec::new(),
            labels: BTreeMap::new(),
            attributes: serde_json::Map::new(),
        }
    }

    /// The layer a known type must be in (`None`: any layer).
    pub fn expected_layer(node_type: &str) -> Option<Layer> {
        Some(match node_type {
            "rack" | "host" | "machine" | "package" | "socket" | "numa_node" | "core" | "pu"
            | "cache" | "nic" | "switch" | "disk" | "bridge" | "pcidev" | "gpu" => Layer::Physical,
            "vm" | "pod" | "container" | "volume" | "network" | "subnet" | "vnic" => Layer::Virtual,
            "service" | "deployment" | "replicaset" | "statefulset" | "daemonset" | "stack" => {
                Layer::Service
            }
            _ => return None,
        })
    }

    /// Checks what a producer can get wrong by itself (the graph checks the rest).
    pub fn check(&self) -> Result<(), crate::Invalid> {
        if self.id.trim().is_empty() {
            return Err("`id` is empty".into());
        }
        if self.node_type.trim().is_empty() {
            return Err(crate::Invalid(format!(
                "node {:?}: `type` is empty",
                self.id
            )));
        }
        if let Some(expected) = Self::expected_layer(&self.node_type) {
            if expected != self.layer {
                return Err(crate::Invalid(format!(
                    "node {:?}: type `{}` belongs to the {expected} layer, not {}",
                    self.id, self.node_type, self.layer
                )));
            }
        }
        if let Some(alias) = self.aliases.iter().find(|a| a.trim().is_empty()) {
            return Err(crate::Invalid(format!(
                "node {:?}: alias {alias:?} is empty",
                self.id
            )));
        }
        Ok(())
    }
}

/// An edge as a producer describes it (`edge_up`), and as importers build it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// The node it starts at.
    pub source: String,
    /// The node it points to.
    pub target: String,
    /// What the relation is.
    pub relation: Relation,
    /// A strength (calls per second, span count); `calls` edges usually have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Anything else the source knew.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl EdgeSpec {
    /// An edge with no weight or attributes.
    pub fn new(source: impl Into<String>, relation: Relation, target: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
            relation,
            weight: None,
            attributes: serde_json::Map::new(),
        }
    }

    /// Checks what a producer can get wrong by itself.
    pub fn check(&self) -> Result<(), crate::Invalid> {
        if self.source.trim().is_empty() || self.target.trim().is_empty() {
            return Err("edge: `source` and `target` must not be empty".into());
        }
        if self.source == self.target {
            return Err(crate::Invalid(format!(
                "edge {} -{}-> itself: a node cannot relate to itself",
                self.source, self.relation
            )));
        }
        if let Some(w) = self.weight {
            if !w.is_finite() || w < 0.0 {
                return Err(crate::Invalid(format!(
                    "edge {} -{}-> {}: `weight` must be a number ≥ 0, got {w}",
                    self.source, self.relation, self.target
                )));
            }
        }
        Ok(())
    }
}
