//! Questions asked of the landscape at a point in time: a node, its subgraph down or up to
//! a depth, neighbours by relation, the shortest paths between two nodes, the blast radius
//! of a node, and what changed between two times.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use dcpilot_schemas::{Category, Layer, Relation};
use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::{EdgeRef, NodeIndexable};
use petgraph::Direction;
use serde::Serialize;

use super::graph::{LandscapeGraph, Node};
use super::GraphError;

/// A node as it was at some time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// Id.
    pub id: String,
    /// Layer.
    pub layer: Layer,
    /// Category.
    pub category: Category,
    /// Type.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Display name.
    pub name: String,
    /// Other names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Attributes.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Since when it has been alive (the start of the span covering the time asked).
    pub since_ms: i64,
    /// When it stopped, if it has (only in diffs and histories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

/// An edge as it was at some time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeView {
    /// Source id.
    pub source: String,
    /// Target id.
    pub target: String,
    /// Relation.
    pub relation: Relation,
    /// Weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Attributes.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Since when it has held.
    pub since_ms: i64,
    /// When it stopped, if it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
}

/// Nodes and the edges among them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Subgraph {
    /// Nodes.
    pub nodes: Vec<NodeView>,
    /// Edges.
    pub edges: Vec<EdgeView>,
}

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Along edges (what a node contains, runs on, calls, requires).
    Down,
    /// Against edges (what contains it, runs on it, calls it).
    Up,
    /// Both ways.
    Both,
}

impl Walk {
    fn directions(self) -> &'static [Direction] {
        match self {
            Self::Down => &[Direction::Outgoing],
            Self::Up => &[Direction::Incoming],
            Self::Both => &[Direction::Outgoing, Direction::Incoming],
        }
    }

    /// Reads `down`, `up` or `both`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "down" => Some(Self::Down),
            "up" => Some(Self::Up),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
}

/// Which nodes a listing keeps.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Only this layer.
    pub layer: Option<Layer>,
    /// Only these types.
    pub types: Vec<String>,
    /// Only nodes with all these labels.
    pub labels: BTreeMap<String, String>,
}

impl NodeFilter {
    fn keeps(&self, node: &Node, t: i64) -> bool {
        if self.layer.is_some_and(|l| l != node.layer) {
            return false;
        }
        if !self.types.is_empty() && !self.types.contains(&node.node_type) {
            return false;
        }
        let labels = &node.version_at(t).labels;
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Who a node is, without its labels and attributes (answers listing many nodes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeBrief {
    /// Id.
    pub id: String,
    /// Layer.
    pub layer: Layer,
    /// Category.
    pub category: Category,
    /// Type.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Display name.
    pub name: String,
}

/// One node reached by a blast, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Affected {
    /// The node (`GET /v1/landscape/node` has the rest).
    pub node: NodeBrief,
    /// Hops from the origin.
    pub depth: usize,
    /// The node it was reached from, and through which relation.
    pub via: String,
    /// The relation that carried the failure.
    pub relation: Relation,
}

/// What changed between two times.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    /// From (exclusive).
    pub from_ms: i64,
    /// To (inclusive).
    pub to_ms: i64,
    /// Nodes alive at `to` but not at `from`.
    pub nodes_added: Vec<NodeView>,
    /// Nodes alive at `from` but not at `to`.
    pub nodes_removed: Vec<NodeView>,
    /// Nodes alive at both whose name, aliases, labels or attributes changed: as at `to`.
    pub nodes_changed: Vec<NodeView>,
    /// Edges that hold at `to` but not at `from`.
    pub edges_added: Vec<EdgeView>,
    /// Edges that held at `from` but not at `to`.
    pub edges_removed: Vec<EdgeView>,
    /// Edges at both whose weight or attributes changed.
    pub edges_changed: Vec<EdgeView>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.nodes_added.is_empty()
            && self.nodes_removed.is_empty()
            && self.nodes_changed.is_empty()
            && self.edges_added.is_empty()
            && self.edges_removed.is_empty()
            && self.edges_changed.is_empty()
    }
}

/// Limits on what a path query enumerates.
pub const MAX_PATHS: usize = 16;

impl LandscapeGraph {
    /// The node `name` names (id or alias), alive at `t`.
    pub fn node_at(&self, name: &str, t: i64) -> Result<NodeIndex, GraphError> {
        let ix = self
            .resolve(name)
            .ok_or_else(|| GraphError::UnknownNode(name.to_string()))?;
        if !self.node(ix).lifetime.alive_at(t) {
            return Err(GraphError::NotAlive {
                id: name.to_string(),
                at_ms: t,
            });
        }
        Ok(ix)
    }

    /// The node at `ix` as it was at `t`.
    pub fn view(&self, ix: NodeIndex, t: i64) -> NodeView {
        let node = self.node(ix);
        let v = node.version_at(t);
        let span = node.lifetime.spans().iter().rev().find(|s| s.from_ms <= t);
        NodeView {
            id: node.id.clone(),
            layer: node.layer,
            category: node.category,
            node_type: node.node_type.clone(),
            name: v.name.clone().unwrap_or_else(|| node.id.clone()),
            aliases: v.aliases.clone(),
            labels: v.labels.clone(),
            attributes: v.attributes.clone(),
            since_ms: span.map_or(node.lifetime.first_ms(), |s| s.from_ms),
            until_ms: span.and_then(|s| s.to_ms),
        }
    }

    /// Who the node at `ix` was at `t`.
    pub fn brief(&self, ix: NodeIndex, t: i64) -> NodeBrief {
        let node = self.node(ix);
        NodeBrief {
            id: node.id.clone(),
            layer: node.layer,
            category: node.category,
            node_type: node.node_type.clone(),
            name: node
                .version_at(t)
                .name
                .clone()
                .unwrap_or_else(|| node.id.clone()),
        }
    }

    /// The edge at `e` as it was at `t`.
    pub fn edge_view(&self, e: EdgeIndex, t: i64) -> EdgeView {
        let g = self.petgraph();
        let (s, d) = g.edge_endpoints(e).expect("edge index from this graph");
        let edge = &g[e];
        let v = edge.version_at(t);
        let span = edge.lifetime.spans().iter().rev().find(|s| s.from_ms <= t);
        EdgeView {
            source: g[s].id.clone(),
            target: g[d].id.clone(),
            relation: edge.relation,
            weight: v.weight,
            attributes: v.attributes.clone(),
            since_ms: span.map_or(edge.lifetime.first_ms(), |s| s.from_ms),
            until_ms: span.and_then(|s| s.to_ms),
        }
    }

    /// Edges of `ix` alive at `t` in `direction`: (edge, other end).
    pub fn edges_at(
        &self,
        ix: NodeIndex,
        direction: Direction,
        t: i64,
    ) -> impl Iterator<Item = (EdgeIndex, NodeIndex)> + '_ {
        self.petgraph()
            .edges_directed(ix, direction)
            .filter(move |e| e.weight().lifetime.alive_at(t))
            .map(move |e| {
                let other = if direction == Direction::Outgoing {
                    e.target()
                } else {
                    e.source()
                };
                (e.id(), other)
            })
    }

    /// Like [`Self::edges_at`], in the order the edges first appeared (petgraph lists the
    /// newest first), so answers are stable.
    fn edges_in_order(
        &self,
        ix: NodeIndex,
        direction: Direction,
        t: i64,
    ) -> Vec<(EdgeIndex, NodeIndex)> {
        let mut edges: Vec<_> = self.edges_at(ix, direction, t).collect();
        edges.sort_unstable_by_key(|(e, _)| *e);
        edges
    }

    /// Every node and edge alive at `t` whose nodes pass `filter` (edges need both ends).
    pub fn at(&self, t: i64, filter: &NodeFilter) -> Subgraph {
        let kept: HashSet<NodeIndex> = self
            .nodes()
            .filter(|(_, n)| n.lifetime.alive_at(t) && filter.keeps(n, t))
            .map(|(ix, _)| ix)
            .collect();
        let nodes = self
            .nodes()
            .filter(|(ix, _)| kept.contains(ix))
            .map(|(ix, _)| self.view(ix, t))
            .collect();
        let edges = self
            .edges()
            .filter(|(_, s, d, e)| e.lifetime.alive_at(t) && kept.contains(s) && kept.contains(d))
            .map(|(e, ..)| self.edge_view(e, t))
            .collect();
        Subgraph { nodes, edges }
    }

    /// The nodes reachable from `name` within `depth` hops walking `walk`, optionally only
    /// through some relations, and the edges walked — as at `t`.
    pub fn subgraph(
        &self,
        name: &str,
        walk: Walk,
        depth: usize,
        relations: &[Relation],
        t: i64,
    ) -> Result<Subgraph, GraphError> {
        let start = self.node_at(name, t)?;
        let mut seen = HashSet::from([start]);
        let mut order = vec![start];
        let mut edges = Vec::new();
        let mut frontier = vec![start];
        for _ in 0..depth {
            let mut next = Vec::new();
            for &at in &frontier {
                for &direction in walk.directions() {
                    for (e, other) in self.edges_in_order(at, direction, t) {
                        if !relations.is_empty()
                            && !relations.contains(&self.petgraph()[e].relation)
                        {
                            continue;
                        }
                        edges.push(e);
                        if seen.insert(other) {
                            order.push(other);
                            next.push(other);
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        edges.sort_unstable();
        edges.dedup();
        Ok(Subgraph {
            nodes: order.into_iter().map(|ix| self.view(ix, t)).collect(),
            edges: edges.into_iter().map(|e| self.edge_view(e, t)).collect(),
        })
    }

    /// The neighbours of `name` through `relation` (any if `None`), walking `walk`, at `t`.
    pub fn neighbours(
        &self,
        name: &str,
        relation: Option<Relation>,
        walk: Walk,
        t: i64,
    ) -> Result<Vec<(EdgeView, NodeView)>, GraphError> {
        let ix = self.node_at(name, t)?;
        let mut out = Vec::new();
        for &direction in walk.directions() {
            for (e, other) in self.edges_in_order(ix, direction, t) {
                if relation.is_none_or(|r| self.petgraph()[e].relation == r) {
                    out.push((self.edge_view(e, t), self.view(other, t)));
                }
            }
        }
        Ok(out)
    }

    /// The shortest paths (up to [`MAX_PATHS`]) between two nodes at `t`, over edges in
    /// either direction — topology, not call direction. Each path is a list of node ids,
    /// `from` first; none when they are not connected.
    pub fn paths(&self, from: &str, to: &str, t: i64) -> Result<Vec<Vec<String>>, GraphError> {
        let (a, b) = (self.node_at(from, t)?, self.node_at(to, t)?);
        // Breadth-first from `a`, keeping every predecessor on a shortest path.
        let mut dist = HashMap::from([(a, 0usize)]);
        let mut preds: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
        let mut queue = VecDeque::from([a]);
        while let Some(at) = queue.pop_front() {
            let d = dist[&at];
            if dist.get(&b).is_some_and(|&db| d >= db) {
                break;
            }
            for &direction in Walk::Both.directions() {
                for (_, other) in self.edges_at(at, direction, t) {
                    match dist.get(&other) {
                        None => {
                            dist.insert(other, d + 1);
                            preds.entry(other).or_default().push(at);
                            queue.push_back(other);
                        }
                        Some(&od) if od == d + 1 => {
                            let p = preds.entry(other).or_default();
                            if !p.contains(&at) {
                                p.push(at);
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if !dist.contains_key(&b) {
            return Ok(Vec::new());
        }
        let mut paths = Vec::new();
        let mut stack = vec![vec![b]];
        while let Some(partial) = stack.pop() {
            let head = *partial.last().expect("paths start non-empty");
            if head == a {
                let ids = partial.iter().rev().map(|&ix| self.node(ix).id.clone());
                paths.push(ids.collect());
                if paths.len() == MAX_PATHS {
                    break;
                }
                continue;
            }
            for &p in preds.get(&head).into_iter().flatten() {
                let mut longer = partial.clone();
                longer.push(p);
                stack.push(longer);
            }
        }
        paths.sort();
        Ok(paths)
    }

    /// What fails when `name` fails, at `t`, across layers: what runs on it, is deployed on
    /// it, calls it, is wired to it or requires it; what it contains; the groups it is a
    /// member of; the VMs a volume is attached to — and so on, transitively (each node once,
    /// at its smallest depth).
    pub fn blast_radius(&self, name: &str, t: i64) -> Result<Vec<Affected>, GraphError> {
        let start = self.node_at(name, t)?;
        let g = self.petgraph();
        // Indexed by node: cheaper than hashing on the large blasts.
        let mut seen = vec![false; g.node_bound()];
        seen[start.index()] = true;
        let mut queue = VecDeque::from([(start, 0usize)]);
        let mut out = Vec::new();
        while let Some((at, depth)) = queue.pop_front() {
            for direction in [Direction::Incoming, Direction::Outgoing] {
                // Incoming edges carry the failure when it flows to the source; test the
                // relation before the (costlier) lifetime.
                let carrying = g.edges_directed(at, direction).filter(|e| {
                    e.weight().relation.failure_flows_to_source()
                        == (direction == Direction::Incoming)
                        && e.weight().lifetime.alive_at(t)
                });
                let mut reached: Vec<_> = carrying
                    .map(|e| {
                        let other = if direction == Direction::Outgoing {
                            e.target()
                        } else {
                            e.source()
                        };
                        (e.id(), other, e.weight().relation)
                    })
                    .collect();
                // In the order the edges first appeared, so answers are stable.
                reached.sort_unstable_by_key(|(e, ..)| *e);
                for (_, other, relation) in reached {
                    if !std::mem::replace(&mut seen[other.index()], true) {
                        out.push(Affected {
                            node: self.brief(other, t),
                            depth: depth + 1,
                            via: self.node(at).id.clone(),
                            relation,
                        });
                        queue.push_back((other, depth + 1));
                    }
                }
            }
        }
        Ok(out)
    }

    /// What changed in `(from, to]`.
    pub fn diff(&self, from: i64, to: i64) -> Diff {
        let mut diff = Diff {
            from_ms: from,
            to_ms: to,
            ..Diff::default()
        };
        for (ix, node) in self.nodes() {
            match (node.lifetime.alive_at(from), node.lifetime.alive_at(to)) {
                (false, true) => diff.nodes_added.push(self.view(ix, to)),
                (true, false) => diff.nodes_removed.push(self.view(ix, from)),
                (true, true) if node.version_at(from) != node.version_at(to) => {
                    diff.nodes_changed.push(self.view(ix, to));
                }
                _ => {}
            }
        }
        for (e, _, _, edge) in self.edges() {
            match (edge.lifetime.alive_at(from), edge.lifetime.alive_at(to)) {
                (false, true) => diff.edges_added.push(self.edge_view(e, to)),
                (true, false) => diff.edges_removed.push(self.edge_view(e, from)),
                (true, true) if edge.version_at(from) != edge.version_at(to) => {
                    diff.edges_changed.push(self.edge_view(e, to));
                }
                _ => {}
            }
        }
        diff
    }

    /// How many nodes of each layer and type are alive at `t`, and edges per relation.
    pub fn summary(&self, t: i64) -> Summary {
        let mut summary = Summary::default();
        for (_, node) in self.nodes().filter(|(_, n)| n.lifetime.alive_at(t)) {
            *summary
                .nodes
                .entry(node.layer)
                .or_default()
                .entry(node.node_type.clone())
                .or_default() += 1;
        }
        for (.., edge) in self.edges().filter(|(.., e)| e.lifetime.alive_at(t)) {
            *summary.edges.entry(edge.relation).or_default() += 1;
        }
        summary
    }
}

/// Counts of what is alive at one time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Nodes per layer and type.
    pub nodes: BTreeMap<Layer, BTreeMap<String, usize>>,
    /// Edges per relation.
    pub edges: BTreeMap<Relation, usize>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for layer in Layer::ALL.iter().rev() {
            let Some(types) = self.nodes.get(layer) else {
                continue;
            };
            let total: usize = types.values().sum();
            let parts: Vec<String> = types.iter().map(|(t, n)| format!("{n} {t}")).collect();
            writeln!(f, "{layer:>9}: {total:>6} nodes ({})", parts.join(", "))?;
        }
        let total: usize = self.edges.values().sum();
        let parts: Vec<String> = self.edges.iter().map(|(r, n)| format!("{n} {r}")).collect();
        writeln!(f, "{:>9}: {total:>6} ({})", "edges", parts.join(", "))
    }
}
