//! networkx node-link JSON in Intel Landscaper's shape: `{"directed", "multigraph",
//! "graph", "nodes": [{id, name, layer, category, type, …}], "links": [{source, target,
//! label, from, to}]}`. Links name their ends by index into `nodes` (Landscaper, networkx
//! 1.x) or by id (networkx ≥ 2); `from`/`to` are Unix seconds and a live link's `to` is
//! Landscaper's end of time. Everything else a node or link carries is kept as an
//! attribute and written back as it was.

use std::collections::HashMap;

use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};
use serde_json::{Map, Value};

use super::{edge_up, node_up};
use crate::{GraphError, LandscapeGraph};

/// Landscaper's "still alive" `to`: 2030-12-31T00:00:00Z, in Unix seconds.
pub const END_OF_TIME_S: i64 = 1_924_905_600;

const FORMAT: &str = "networkx";

/// Landscaper's edge labels and the relations they are.
const LABELS: [(&str, Relation); 8] = [
    ("INTERNAL", Relation::Contains),
    ("RUNS_ON", Relation::RunsOn),
    ("DEPLOYED_ON", Relation::DeployedOn),
    ("MEMBER_OF", Relation::MemberOf),
    ("CALLS", Relation::Calls),
    ("COMMUNICATES", Relation::Connects),
    ("ATTACHED", Relation::Attached),
    ("REQUIRES", Relation::Requires),
];

fn relation_of(label: &str) -> Option<Relation> {
    LABELS
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(label))
        .map(|(_, r)| *r)
        .or_else(|| Relation::parse(label))
}

fn label_of(relation: Relation) -> &'static str {
    LABELS
        .iter()
        .find(|(_, r)| *r == relation)
        .map(|(l, _)| *l)
        .expect("every relation has a label")
}

/// Node fields that are not attributes.
const NODE_FIELDS: [&str; 7] = [
    "id", "name", "layer", "category", "type", "aliases", "labels",
];
/// Link fields that are not attributes.
const LINK_FIELDS: [&str; 6] = ["source", "target", "label", "from", "to", "weight"];

fn text<'a>(obj: &'a Map<String, Value>, key: &str, place: &str) -> Result<&'a str, GraphError> {
    obj.get(key).and_then(Value::as_str).ok_or_else(|| {
        GraphError::format(
            FORMAT,
            format!("{place}: `{key}` is missing or not a string"),
        )
    })
}

fn node_spec(i: usize, obj: &Map<String, Value>) -> Result<NodeSpec, GraphError> {
    let place = format!("nodes[{i}]");
    let id = match obj.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(GraphError::format(
                FORMAT,
                format!("{place}: `id` is missing"),
            ))
        }
    };
    let layer_text = text(obj, "layer", &place)?;
    let layer = Layer::parse(layer_text).ok_or_else(|| {
        GraphError::format(
            FORMAT,
            format!("{place}: `layer` {layer_text:?} is not physical, virtual or service"),
        )
    })?;
    let category_text = text(obj, "category", &place)?;
    let category = Category::parse(category_text).ok_or_else(|| {
        GraphError::format(
            FORMAT,
            format!("{place}: `category` {category_text:?} is not compute, network or storage"),
        )
    })?;
    let mut node = NodeSpec::new(id, layer, category, text(obj, "type", &place)?);
    node.name = obj.get("name").and_then(Value::as_str).map(str::to_string);
    if let Some(aliases) = obj.get("aliases") {
        node.aliases = serde_json::from_value(aliases.clone())
            .map_err(|e| GraphError::format(FORMAT, format!("{place}: `aliases`: {e}")))?;
    }
    if let Some(labels) = obj.get("labels") {
        node.labels = serde_json::from_value(labels.clone())
            .map_err(|e| GraphError::format(FORMAT, format!("{place}: `labels`: {e}")))?;
    }
    for (k, v) in obj {
        if !NODE_FIELDS.contains(&k.as_str()) {
            node.attributes.insert(k.clone(), v.clone());
        }
    }
    node.check()
        .map_err(|e| GraphError::format(FORMAT, format!("{place}: {e}")))?;
    Ok(node)
}

fn seconds(obj: &Map<String, Value>, key: &str, place: &str) -> Result<Option<i64>, GraphError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| {
                GraphError::format(FORMAT, format!("{place}: `{key}` is not a time in seconds"))
            }),
    }
}

/// The events that build the document's graph: each node appears when its first link
/// does (or at the earliest time in the file), each link at its `from`, and ends at its
/// `to` unless that is the end of time.
pub fn events(text_in: &str) -> Result<Vec<LandscapeEvent>, GraphError> {
    let doc: Value = serde_json::from_str(text_in)
        .map_err(|e| GraphError::format(FORMAT, format!("not JSON: {e}")))?;
    let nodes = doc
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::format(FORMAT, "`nodes` is missing or not a list"))?;
    let links = match doc.get("links").or_else(|| doc.get("edges")) {
        Some(Value::Array(l)) => l.as_slice(),
        None => &[],
        Some(_) => return Err(GraphError::format(FORMAT, "`links` is not a list")),
    };
    let specs = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            n.as_object()
                .ok_or_else(|| GraphError::format(FORMAT, format!("nodes[{i}] is not an object")))
                .and_then(|obj| node_spec(i, obj))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let index: HashMap<&str, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    if index.len() != specs.len() {
        return Err(GraphError::format(FORMAT, "two nodes share an id"));
    }
    let end = |v: &Value, place: &str, key: &str| -> Result<usize, GraphError> {
        match v {
            Value::Number(n) if n.as_u64().is_some_and(|i| (i as usize) < specs.len()) => {
                Ok(n.as_u64().unwrap_or_default() as usize)
            }
            Value::String(s) => index.get(s.as_str()).copied().ok_or_else(|| {
                GraphError::format(FORMAT, format!("{place}: `{key}` {s:?} is not a node id"))
            }),
            other => Err(GraphError::format(
                FORMAT,
                format!("{place}: `{key}` {other} is not a node index or id"),
            )),
        }
    };
    let mut edges = Vec::with_capacity(links.len());
    let mut first_seen = vec![i64::MAX; specs.len()];
    for (i, link) in links.iter().enumerate() {
        let place = format!("links[{i}]");
        let obj = link
            .as_object()
            .ok_or_else(|| GraphError::format(FORMAT, format!("{place} is not an object")))?;
        let (s, d) = (
            end(obj.get("source").unwrap_or(&Value::Null), &place, "source")?,
            end(obj.get("target").unwrap_or(&Value::Null), &place, "target")?,
        );
        let label = text(obj, "label", &place).unwrap_or("REQUIRES");
        let relation = relation_of(label).ok_or_else(|| {
            let known: Vec<&str> = LABELS.iter().map(|(l, _)| *l).collect();
            GraphError::format(
                FORMAT,
                format!("{place}: label {label:?} is none of {}", known.join(", ")),
            )
        })?;
        let from_s = seconds(obj, "from", &place)?.unwrap_or(0);
        let to_s = seconds(obj, "to", &place)?.filter(|&t| t < END_OF_TIME_S);
        let mut edge = EdgeSpec::new(specs[s].id.clone(), relation, specs[d].id.clone());
        edge.weight = obj.get("weight").and_then(Value::as_f64);
        for (k, v) in obj {
            if !LINK_FIELDS.contains(&k.as_str()) {
                edge.attributes.insert(k.clone(), v.clone());
            }
        }
        first_seen[s] = first_seen[s].min(from_s * 1000);
        first_seen[d] = first_seen[d].min(from_s * 1000);
        edges.push((from_s * 1000, to_s.map(|t| t * 1000), edge));
    }
    let earliest = first_seen.iter().copied().min().unwrap_or(0);
    let earliest = if earliest == i64::MAX { 0 } else { earliest };
    let mut out = Vec::with_capacity(specs.len() + 2 * edges.len());
    for (spec, seen) in specs.into_iter().zip(first_seen) {
        out.push(node_up(
            if seen == i64::MAX { earliest } else { seen },
            spec,
        ));
    }
    for (from, to, edge) in edges {
        let (source, target, relation) = (edge.source.clone(), edge.target.clone(), edge.relation);
        out.push(edge_up(from, edge));
        if let Some(to) = to {
            out.push(LandscapeEvent::EdgeDown {
                timestamp_ms: to,
                source,
                target,
                relation,
            });
        }
    }
    Ok(out)
}

/// How links name their ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkStyle {
    /// By index into `nodes` (Landscaper, networkx 1.x).
    #[default]
    Index,
    /// By node id (networkx ≥ 2).
    Id,
}

/// The graph's whole history as node-link JSON: every node that ever lived, one link per
/// span an edge held (`to` = the end of time while it holds).
pub fn export(graph: &LandscapeGraph, style: LinkStyle) -> Value {
    let mut position = HashMap::new();
    let nodes: Vec<Value> = graph
        .nodes()
        .enumerate()
        .map(|(i, (ix, node))| {
            position.insert(ix, i);
            let v = node.current();
            let mut obj = Map::new();
            obj.insert("id".into(), node.id.clone().into());
            if let Some(name) = &v.name {
                obj.insert("name".into(), name.clone().into());
            }
            obj.insert("layer".into(), node.layer.as_str().into());
            obj.insert("category".into(), node.category.as_str().into());
            obj.insert("type".into(), node.node_type.clone().into());
            if !v.aliases.is_empty() {
                obj.insert("aliases".into(), v.aliases.clone().into());
            }
            if !v.labels.is_empty() {
                obj.insert("labels".into(), serde_json::json!(v.labels));
            }
            for (k, value) in &v.attributes {
                obj.insert(k.clone(), value.clone());
            }
            Value::Object(obj)
        })
        .collect();
    let mut links = Vec::new();
    for (_, s, d, edge) in graph.edges() {
        let end = |ix| match style {
            LinkStyle::Index => Value::from(position[&ix]),
            LinkStyle::Id => Value::from(graph.node(ix).id.clone()),
        };
        for span in edge.lifetime.spans() {
            let v = edge.version_at(span.from_ms);
            let mut obj = Map::new();
            obj.insert("source".into(), end(s));
            obj.insert("target".into(), end(d));
            obj.insert("label".into(), label_of(edge.relation).into());
            obj.insert("from".into(), (span.from_ms / 1000).into());
            obj.insert(
                "to".into(),
                span.to_ms.map_or(END_OF_TIME_S, |t| t / 1000).into(),
            );
            if let Some(w) = v.weight {
                obj.insert("weight".into(), w.into());
            }
            for (k, value) in &v.attributes {
                obj.insert(k.clone(), value.clone());
            }
            links.push(Value::Object(obj));
        }
    }
    serde_json::json!({
        "directed": true,
        "multigraph": false,
        "graph": {},
        "nodes": nodes,
        "links": links,
    })
}
