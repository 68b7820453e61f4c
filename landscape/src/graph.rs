//! The temporal graph: petgraph's `StableDiGraph` holding every node and edge that ever
//! existed, each with the spans of time it was alive and the versions of what it said.
//! Changes are checked before anything is touched, so a rejected change leaves the graph
//! as it was.

use std::collections::{BTreeMap, HashMap};

use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;
use serde::{Deserialize, Serialize};

use super::GraphError;

/// One stretch of time an entity was alive: `[from_ms, to_ms)`; `to_ms` is `None` while
/// it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// When it appeared (Unix ms).
    pub from_ms: i64,
    /// When it disappeared (Unix ms), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
}

impl Span {
    /// Whether the span covers `t`.
    pub fn covers(&self, t: i64) -> bool {
        self.from_ms <= t && self.to_ms.is_none_or(|end| t < end)
    }
}

/// Every span an entity was alive, oldest first, never overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lifetime(Vec<Span>);

impl Lifetime {
    fn born(t: i64) -> Self {
        Self(vec![Span {
            from_ms: t,
            to_ms: None,
        }])
    }

    /// Whether it was alive at `t`.
    pub fn alive_at(&self, t: i64) -> bool {
        // Few spans per entity (it rarely comes back): a scan from the newest is fastest.
        self.0.iter().rev().any(|s| s.covers(t))
    }

    /// Whether it is alive now (its last span is open).
    pub fn alive(&self) -> bool {
        self.0.last().is_some_and(|s| s.to_ms.is_none())
    }

    /// The spans.
    pub fn spans(&self) -> &[Span] {
        &self.0
    }

    /// When it first appeared.
    pub fn first_ms(&self) -> i64 {
        self.0.first().map_or(0, |s| s.from_ms)
    }

    /// The latest time it appeared or disappeared.
    pub fn last_change_ms(&self) -> i64 {
        self.0
            .last()
            .map_or(i64::MIN, |s| s.to_ms.unwrap_or(s.from_ms))
    }

    fn revive(&mut self, t: i64) {
        self.0.push(Span {
            from_ms: t,
            to_ms: None,
        });
    }

    fn end(&mut self, t: i64) {
        if let Some(last) = self.0.last_mut() {
            last.to_ms = Some(t);
        }
    }
}

/// What a node said about itself from `from_ms` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeVersion {
    /// Since when (Unix ms).
    pub from_ms: i64,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other names telemetry uses for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Everything else.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// An entity: its fixed identity, when it lived, and what it said when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Stable id.
    pub id: String,
    /// Layer.
    pub layer: Layer,
    /// Category.
    pub category: Category,
    /// Type.
    #[serde(rename = "type")]
    pub node_type: String,
    /// When it was alive.
    pub lifetime: Lifetime,
    /// What it said, oldest first (at least one).
    pub versions: Vec<NodeVersion>,
}

impl Node {
    /// The version in force at `t` (the first one if `t` is before it).
    pub fn version_at(&self, t: i64) -> &NodeVersion {
        let i = self.versions.partition_point(|v| v.from_ms <= t);
        &self.versions[i.saturating_sub(1)]
    }

    /// The newest version.
    pub fn current(&self) -> &NodeVersion {
        self.version_at(i64::MAX)
    }

    /// The latest time anything about it changed.
    pub fn last_change_ms(&self) -> i64 {
        let version = self.versions.last().map_or(i64::MIN, |v| v.from_ms);
        version.max(self.lifetime.last_change_ms())
    }

    /// Whether it is a host (a machine the placement view places on).
    pub fn is_host(&self) -> bool {
        matches!(self.node_type.as_str(), "host" | "machine")
    }

    /// The node as a spec, as it was at `t`.
    pub fn spec_at(&self, t: i64) -> NodeSpec {
        let v = self.version_at(t);
        NodeSpec {
            id: self.id.clone(),
            layer: self.layer,
            category: self.category,
            node_type: self.node_type.clone(),
            name: v.name.clone(),
            aliases: v.aliases.clone(),
            labels: v.labels.clone(),
            attributes: v.attributes.clone(),
        }
    }
}

/// What an edge said from `from_ms` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeVersion {
    /// Since when (Unix ms).
    pub from_ms: i64,
    /// Weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Everything else.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A relation between two nodes, with when it held and what it said when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// The relation.
    pub relation: Relation,
    /// When it held.
    pub lifetime: Lifetime,
    /// What it said, oldest first (at least one).
    pub versions: Vec<EdgeVersion>,
}

impl Edge {
    /// The version in force at `t`.
    pub fn version_at(&self, t: i64) -> &EdgeVersion {
        let i = self.versions.partition_point(|v| v.from_ms <= t);
        &self.versions[i.saturating_sub(1)]
    }

    /// The latest time anything about it changed.
    pub fn last_change_ms(&self) -> i64 {
        let version = self.versions.last().map_or(i64::MIN, |v| v.from_ms);
        version.max(self.lifetime.last_change_ms())
    }
}

/// The landscape: every entity and relation that ever was, queryable at any time.
#[derive(Debug, Clone, Default)]
pub struct LandscapeGraph {
    pub(super) graph: StableDiGraph<Node, Edge>,
    ids: HashMap<String, NodeIndex>,
    aliases: HashMap<String, NodeIndex>,
}

/// How a node or edge change was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It is new.
    Added,
    /// It existed and now says something else (or came back).
    Changed,
    /// It said this already: nothing changed.
    Unchanged,
    /// It is gone from now on.
    Removed,
}

impl LandscapeGraph {
    /// An empty landscape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Nodes that ever existed.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Edges that ever existed.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The node with this id or alias.
    pub fn resolve(&self, name: &str) -> Option<NodeIndex> {
        self.ids
            .get(name)
            .or_else(|| self.aliases.get(name))
            .copied()
    }

    /// The node at `ix`.
    pub fn node(&self, ix: NodeIndex) -> &Node {
        &self.graph[ix]
    }

    /// The node with this id or alias.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.resolve(name).map(|ix| &self.graph[ix])
    }

    /// The edge `source -relation-> target` (by ids or aliases), alive or not.
    pub fn edge(&self, source: &str, relation: Relation, target: &str) -> Option<&Edge> {
        let (s, d) = (self.resolve(source)?, self.resolve(target)?);
        self.find_edge(s, relation, d).map(|e| &self.graph[e])
    }

    /// Every node ever, in the order they first appeared.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeIndex, &Node)> {
        self.graph.node_indices().map(|ix| (ix, &self.graph[ix]))
    }

    /// Every edge ever: (index, source, target, edge), in the order they first appeared.
    pub fn edges(&self) -> impl Iterator<Item = (EdgeIndex, NodeIndex, NodeIndex, &Edge)> {
        self.graph
            .edge_references()
            .map(|e| (e.id(), e.source(), e.target(), e.weight()))
    }

    /// The underlying petgraph graph (read only).
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge> {
        &self.graph
    }

    /// One more than the largest node index ever used: the length of a vector indexed by
    /// [`NodeIndex::index`].
    pub fn node_bound(&self) -> usize {
        petgraph::visit::NodeIndexable::node_bound(&self.graph)
    }

    /// The latest time anything changed.
    pub fn last_change_ms(&self) -> i64 {
        let nodes = self.graph.node_weights().map(Node::last_change_ms);
        let edges = self.graph.edge_weights().map(Edge::last_change_ms);
        nodes.chain(edges).max().unwrap_or(0)
    }

    /// Applies one landscape event. Host and instance events map onto the graph: a host is
    /// a physical `host` node (capacity and features as attributes), an instance a virtual
    /// `pod` node that `runs_on` its host and is a `member_of` its workload (a `service`
    /// node, unless the instance has the workload's own name).
    pub fn apply_event(&mut self, event: &LandscapeEvent) -> Result<Applied, GraphError> {
        let t = event.timestamp_ms();
        match event {
            LandscapeEvent::NodeUp { node, .. } => self.upsert_node(t, node),
            LandscapeEvent::NodeDown { id, .. } => self.remove_node(t, id),
            LandscapeEvent::EdgeUp { edge, .. } => self.upsert_edge(t, edge),
            LandscapeEvent::EdgeDown {
                source,
                target,
                relation,
                ..
            } => self.remove_edge(t, source, *relation, target),
            LandscapeEvent::HostUp {
                host,
                cores,
                memory_bytes,
                features,
                labels,
                ..
            } => {
                let mut node = NodeSpec::new(host, Layer::Physical, Category::Compute, "host");
                node.labels.clone_from(labels);
                node.attributes.insert("cores".into(), (*cores).into());
                node.attributes
                    .insert("memory_bytes".into(), (*memory_bytes).into());
                if let Ok(serde_json::Value::Object(f)) = serde_json::to_value(features) {
                    node.attributes.insert("features".into(), f.into());
                }
                self.upsert_node(t, &node)
            }
            LandscapeEvent::HostDown { host, .. } => self.remove_node(t, host),
            LandscapeEvent::InstancePlaced {
                instance,
                workload,
                host,
                cpu_request,
                memory_request_bytes,
                labels,
                ..
            } => {
                let mut pod = NodeSpec::new(instance, Layer::Virtual, Category::Compute, "pod");
                pod.labels.clone_from(labels);
                // A placement keeps the profile (`dcpilot.io/` labels) the instance had
                // unless it says otherwise: a move does not make it a different workload.
                let existing = self.ids.get(instance.as_str()).map(|&ix| &self.graph[ix]);
                if let Some(existing) = existing.filter(|n| n.lifetime.alive()) {
                    for (key, value) in &existing.current().labels {
                        if key.starts_with("dcpilot.io/") && !labels.contains_key(key) {
                            pod.labels.insert(key.clone(), value.clone());
                        }
                    }
                }
                pod.attributes
                    .insert("cpu_request".into(), (*cpu_request).into());
                pod.attributes.insert(
                    "memory_request_bytes".into(),
                    (*memory_request_bytes).into(),
                );
                let service = NodeSpec::new(workload, Layer::Service, Category::Compute, "service");
                // An instance named like its workload (a lone VM) has no group of its own.
                let grouped = workload != instance;
                // Check all before changing anything: a rejected event leaves no trace.
                self.check_node(t, &pod)?;
                if grouped && self.resolve(workload).is_none() {
                    self.check_node(t, &service)?;
                }
                self.check_placement(t, instance, host, grouped.then_some(workload.as_str()))?;
                let runs_on = EdgeSpec::new(instance, Relation::RunsOn, host);
                let member_of = EdgeSpec::new(instance, Relation::MemberOf, workload);
                // What the pod node says decides Added/Changed; a pod that only moved (or
                // joined its group) is Changed too, so Unchanged means nothing changed.
                let mut applied = self.upsert_node(t, &pod)?;
                let mut also = |step: Applied| {
                    if applied == Applied::Unchanged && step != Applied::Unchanged {
                        applied = Applied::Changed;
                    }
                };
                let missing = self
                    .resolve(workload)
                    .is_none_or(|ix| !self.graph[ix].lifetime.alive());
                if grouped && missing {
                    also(self.upsert_node(t, &service)?);
                }
                // A moved instance: its old placement ends.
                let pod_ix = self.ids[instance.as_str()];
                let old: Vec<EdgeIndex> = self
                    .live_edges(pod_ix, Direction::Outgoing, Some(Relation::RunsOn))
                    .filter(|&(_, other)| self.graph[other].id != *host)
                    .map(|(e, _)| e)
                    .collect();
                if !old.is_empty() {
                    also(Applied::Changed);
                }
                for e in old {
                    self.graph[e].lifetime.end(t);
                }
                also(self.upsert_edge(t, &runs_on)?);
                if grouped {
                    also(self.upsert_edge(t, &member_of)?);
                }
                Ok(applied)
            }
            LandscapeEvent::InstanceRemoved { instance, .. } => self.remove_node(t, instance),
        }
    }

    /// What an `instance_placed` would check only halfway through: the host can take a pod,
    /// the workload (if it exists) is a service, and neither edge changed after `t`.
    fn check_placement(
        &self,
        t: i64,
        instance: &str,
        host: &str,
        workload: Option<&str>,
    ) -> Result<(), GraphError> {
        let h = self.check_alive(host, t)?;
        if self.graph[h].layer > Layer::Virtual {
            return Err(GraphError::Invalid(format!(
                "{instance} -runs_on-> {host}: a {} node cannot host a pod",
                self.graph[h].layer
            )));
        }
        let w = workload.and_then(|w| self.resolve(w).map(|ix| (w, ix)));
        if let Some((name, ix)) = w {
            let node = &self.graph[ix];
            if node.layer != Layer::Service {
                return Err(GraphError::Invalid(format!(
                    "{instance} -member_of-> {name}: {name} is a {} {}, not a service",
                    node.layer, node.node_type
                )));
            }
            if !node.lifetime.alive() {
                self.check_not_stale(format!("node {name:?}"), node.last_change_ms(), t)?;
            }
        }
        if let Some(&pod) = self.ids.get(instance) {
            let targets = [Some(h), w.map(|(_, ix)| ix)];
            for e in self.graph.edges_directed(pod, Direction::Outgoing) {
                if targets.contains(&Some(e.target())) {
                    let what = format!(
                        "{instance} -{}-> {}",
                        e.weight().relation,
                        self.graph[e.target()].id
                    );
                    self.check_not_stale(what, e.weight().last_change_ms(), t)?;
                }
            }
        }
        Ok(())
    }

    fn check_alive(&self, name: &str, t: i64) -> Result<NodeIndex, GraphError> {
        let ix = self
            .resolve(name)
            .ok_or_else(|| GraphError::UnknownNode(name.to_string()))?;
        if !self.graph[ix].lifetime.alive_at(t) {
            return Err(GraphError::NotAlive {
                id: name.to_string(),
                at_ms: t,
            });
        }
        Ok(ix)
    }

    fn check_not_stale(&self, what: String, last: i64, t: i64) -> Result<(), GraphError> {
        if t < last {
            return Err(GraphError::Stale {
                what,
                event_ms: t,
                last_change_ms: last,
            });
        }
        Ok(())
    }

    fn check_node(&self, t: i64, spec: &NodeSpec) -> Result<Option<NodeIndex>, GraphError> {
        spec.check().map_err(|e| GraphError::Invalid(e.0))?;
        for alias in &spec.aliases {
            let owner = self.ids.get(alias).or_else(|| self.aliases.get(alias));
            if let Some(&owner) = owner {
                if self.graph[owner].id != spec.id && self.graph[owner].lifetime.alive() {
                    return Err(GraphError::Invalid(format!(
                        "node {:?}: alias {alias:?} already names node {:?}",
                        spec.id, self.graph[owner].id
                    )));
                }
            }
        }
        let Some(&ix) = self.ids.get(&spec.id) else {
            return Ok(None);
        };
        let node = &self.graph[ix];
        if (node.layer, node.category, node.node_type.as_str())
            != (spec.layer, spec.category, spec.node_type.as_str())
        {
            return Err(GraphError::Invalid(format!(
                "node {:?} is a {} {} `{}`; it cannot become a {} {} `{}`",
                spec.id,
                node.layer,
                node.category.as_str(),
                node.node_type,
                spec.layer,
                spec.category.as_str(),
                spec.node_type
            )));
        }
        self.check_not_stale(format!("node {:?}", spec.id), node.last_change_ms(), t)?;
        Ok(Some(ix))
    }

    /// Adds a node, or records a new version of it (or brings it back).
    pub fn upsert_node(&mut self, t: i64, spec: &NodeSpec) -> Result<Applied, GraphError> {
        let existing = self.check_node(t, spec)?;
        let version = NodeVersion {
            from_ms: t,
            name: spec.name.clone(),
            aliases: spec.aliases.clone(),
            labels: spec.labels.clone(),
            attributes: spec.attributes.clone(),
        };
        let (ix, applied) = match existing {
            None => {
                let ix = self.graph.add_node(Node {
                    id: spec.id.clone(),
                    layer: spec.layer,
                    category: spec.category,
                    node_type: spec.node_type.clone(),
                    lifetime: Lifetime::born(t),
                    versions: vec![version],
                });
                self.ids.insert(spec.id.clone(), ix);
                (ix, Applied::Added)
            }
            Some(ix) => {
                let node = &mut self.graph[ix];
                let revived = !node.lifetime.alive();
                if revived {
                    node.lifetime.revive(t);
                }
                let same = {
                    let c = node.current();
                    (&c.name, &c.aliases, &c.labels, &c.attributes)
                        == (
                            &version.name,
                            &version.aliases,
                            &version.labels,
                            &version.attributes,
                        )
                };
                if same && !revived {
                    return Ok(Applied::Unchanged);
                }
                for old in &node.current().aliases {
                    self.aliases.remove(old);
                }
                if !same {
                    let node = &mut self.graph[ix];
                    match node.versions.last_mut() {
                        // Two versions at one instant: the later one wins.
                        Some(last) if last.from_ms == t => *last = version,
                        _ => node.versions.push(version),
                    }
                }
                (ix, Applied::Changed)
            }
        };
        for alias in &spec.aliases {
            self.aliases.insert(alias.clone(), ix);
        }
        Ok(applied)
    }

    /// Ends a node's life, and that of every live edge touching it.
    pub fn remove_node(&mut self, t: i64, id: &str) -> Result<Applied, GraphError> {
        let ix = *self
            .ids
            .get(id)
            .ok_or_else(|| GraphError::UnknownNode(id.to_string()))?;
        let node = &self.graph[ix];
        if !node.lifetime.alive() {
            return Ok(Applied::Unchanged);
        }
        self.check_not_stale(format!("node {id:?}"), node.last_change_ms(), t)?;
        let touching: Vec<EdgeIndex> = [Direction::Outgoing, Direction::Incoming]
            .into_iter()
            .flat_map(|d| self.graph.edges_directed(ix, d))
            .filter(|e| e.weight().lifetime.alive())
            .map(|e| e.id())
            .collect();
        for e in touching {
            self.graph[e].lifetime.end(t);
        }
        for alias in &self.graph[ix].current().aliases {
            self.aliases.remove(alias);
        }
        self.graph[ix].lifetime.end(t);
        Ok(Applied::Removed)
    }

    /// The live edges of `ix` in `direction`, optionally of one relation: (edge, other end).
    pub fn live_edges(
        &self,
        ix: NodeIndex,
        direction: Direction,
        relation: Option<Relation>,
    ) -> impl Iterator<Item = (EdgeIndex, NodeIndex)> + '_ {
        // Alive now is alive at the end of time: only the last span can be open.
        self.edges_at(ix, direction, i64::MAX)
            .filter(move |(e, _)| relation.is_none_or(|r| self.graph[*e].relation == r))
    }

    fn find_edge(&self, s: NodeIndex, relation: Relation, d: NodeIndex) -> Option<EdgeIndex> {
        self.graph
            .edges_connecting(s, d)
            .find(|e| e.weight().relation == relation)
            .map(|e| e.id())
    }

    fn check_edge(&self, t: i64, spec: &EdgeSpec) -> Result<(NodeIndex, NodeIndex), GraphError> {
        spec.check().map_err(|e| GraphError::Invalid(e.0))?;
        let s = self.check_alive(&spec.source, t)?;
        let d = self.check_alive(&spec.target, t)?;
        let (source, target) = (&self.graph[s], &self.graph[d]);
        let name = || format!("{} -{}-> {}", source.id, spec.relation, target.id);
        let layers_ok = match spec.relation {
            Relation::Contains => source.layer == target.layer,
            // Placed on something at or below its own layer.
            Relation::RunsOn | Relation::DeployedOn => target.layer <= source.layer,
            Relation::MemberOf => target.layer == Layer::Service,
            _ => true,
        };
        if !layers_ok {
            return Err(GraphError::Invalid(format!(
                "{}: a {} {} cannot {} a {} {}",
                name(),
                source.layer,
                source.node_type,
                spec.relation,
                target.layer,
                target.node_type
            )));
        }
        if let Some(e) = self.find_edge(s, spec.relation, d) {
            self.check_not_stale(name(), self.graph[e].last_change_ms(), t)?;
        }
        if spec.relation == Relation::Contains && self.contains_transitively(d, s) {
            // Containment has no loops. (It is not strictly a tree: hwloc puts a core below
            // both its L1d and L1i caches, and Landscaper records both.)
            return Err(GraphError::ContainmentCycle(format!(
                "{}: {} already contains {}",
                name(),
                target.id,
                source.id
            )));
        }
        Ok((s, d))
    }

    /// Whether `outer` contains `inner` through live containment (or is it).
    fn contains_transitively(&self, outer: NodeIndex, inner: NodeIndex) -> bool {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![inner];
        while let Some(at) = stack.pop() {
            if at == outer {
                return true;
            }
            if seen.insert(at) {
                stack.extend(
                    self.live_edges(at, Direction::Incoming, Some(Relation::Contains))
                        .map(|(_, parent)| parent),
                );
            }
        }
        false
    }

    /// Adds an edge, or records its new weight/attributes (or brings it back).
    pub fn upsert_edge(&mut self, t: i64, spec: &EdgeSpec) -> Result<Applied, GraphError> {
        let (s, d) = self.check_edge(t, spec)?;
        let version = EdgeVersion {
            from_ms: t,
            weight: spec.weight,
            attributes: spec.attributes.clone(),
        };
        match self.find_edge(s, spec.relation, d) {
            None => {
                self.graph.add_edge(
                    s,
                    d,
                    Edge {
                        relation: spec.relation,
                        lifetime: Lifetime::born(t),
                        versions: vec![version],
                    },
                );
                Ok(Applied::Added)
            }
            Some(e) => {
                let edge = &mut self.graph[e];
                let revived = !edge.lifetime.alive();
                if revived {
                    edge.lifetime.revive(t);
                }
                let current = edge.version_at(i64::MAX);
                let same =
                    (current.weight, &current.attributes) == (version.weight, &version.attributes);
                if same && !revived {
                    return Ok(Applied::Unchanged);
                }
                if !same {
                    match edge.versions.last_mut() {
                        Some(last) if last.from_ms == t => *last = version,
                        _ => edge.versions.push(version),
                    }
                }
                Ok(Applied::Changed)
            }
        }
    }

    /// Ends an edge's life.
    pub fn remove_edge(
        &mut self,
        t: i64,
        source: &str,
        relation: Relation,
        target: &str,
    ) -> Result<Applied, GraphError> {
        let missing = || GraphError::UnknownEdge(format!("{source} -{relation}-> {target}"));
        let s = self.resolve(source).ok_or_else(missing)?;
        let d = self.resolve(target).ok_or_else(missing)?;
        let e = self.find_edge(s, relation, d).ok_or_else(missing)?;
        let edge = &self.graph[e];
        if !edge.lifetime.alive() {
            return Ok(Applied::Unchanged);
        }
        self.check_not_stale(
            format!("{source} -{relation}-> {target}"),
            edge.last_change_ms(),
            t,
        )?;
        self.graph[e].lifetime.end(t);
        Ok(Applied::Removed)
    }

    /// Applies events all or nothing: on the first error the graph is as it was before the
    /// call, and the error names the event.
    pub fn apply_all(&mut self, events: &[LandscapeEvent]) -> Result<usize, GraphError> {
        let mut next = self.clone();
        for (i, event) in events.iter().enumerate() {
            next.apply_event(event).map_err(|e| GraphError::InEvent {
                index: i,
                kind: event.kind(),
                source: Box::new(e),
            })?;
        }
        *self = next;
        Ok(events.len())
    }
}

/// The graph's history as it is stored: every node, and every edge by its ends' ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredGraph {
    /// Nodes, in the order they first appeared.
    pub nodes: Vec<Node>,
    /// Edges, in the order they first appeared.
    pub edges: Vec<StoredEdge>,
}

/// An edge as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEdge {
    /// Source id.
    pub source: String,
    /// Target id.
    pub target: String,
    /// The edge.
    #[serde(flatten)]
    pub edge: Edge,
}

impl LandscapeGraph {
    /// The whole history, for storing.
    pub fn to_stored(&self) -> StoredGraph {
        StoredGraph {
            nodes: self.graph.node_weights().cloned().collect(),
            edges: self
                .edges()
                .map(|(_, s, d, e)| StoredEdge {
                    source: self.graph[s].id.clone(),
                    target: self.graph[d].id.clone(),
                    edge: e.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a graph from its stored history; names the first inconsistency.
    pub fn from_stored(stored: StoredGraph) -> Result<Self, GraphError> {
        let mut g = Self::new();
        for node in stored.nodes {
            if node.versions.is_empty() || node.lifetime.spans().is_empty() {
                return Err(GraphError::Invalid(format!(
                    "node {:?} has no version or no lifetime",
                    node.id
                )));
            }
            if g.ids.contains_key(&node.id) {
                return Err(GraphError::Invalid(format!(
                    "node {:?} is stored twice",
                    node.id
                )));
            }
            let alive = node.lifetime.alive();
            let aliases = node.current().aliases.clone();
            let id = node.id.clone();
            let ix = g.graph.add_node(node);
            g.ids.insert(id, ix);
            if alive {
                for alias in aliases {
                    g.aliases.insert(alias, ix);
                }
            }
        }
        for stored in stored.edges {
            let end = |id: &str| {
                g.ids
                    .get(id)
                    .copied()
                    .ok_or_else(|| GraphError::UnknownNode(id.to_string()))
            };
            let (s, d) = (end(&stored.source)?, end(&stored.target)?);
            if stored.edge.versions.is_empty() || stored.edge.lifetime.spans().is_empty() {
                return Err(GraphError::Invalid(format!(
                    "edge {} -{}-> {} has no version or no lifetime",
                    stored.source, stored.edge.relation, stored.target
                )));
            }
            g.graph.add_edge(s, d, stored.edge);
        }
        Ok(g)
    }
}
