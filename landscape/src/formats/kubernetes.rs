//! Kubernetes objects as `kubectl get nodes,pods,replicasets,deployments,services -A -o
//! json` prints them (a `List`; a single object is read too). Nodes are physical `host`s
//! (aliased by their addresses), pods virtual `pod`s that `runs_on` their node and are a
//! `member_of` their controller, replica sets `member_of` their deployment, and pods a
//! `member_of` every service whose selector matches their labels.
//!
//! Ids: a node by its name; a pod `<namespace>/<name>`; anything else
//! `<namespace>/<kind>/<name>` (kind in lower case). Every node made here carries the
//! attribute `source: "kubernetes"`, so a later listing can tell what disappeared.

use std::collections::{BTreeMap, HashSet};

use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};
use serde_json::Value;

use super::{edge_up, node_up};
use crate::{GraphError, LandscapeGraph};

const FORMAT: &str = "kubernetes";
/// The attribute marking nodes this loader owns.
pub const SOURCE: &str = "kubernetes";

fn meta<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A Kubernetes quantity (`3800m`, `4`, `16Gi`, `1.5e3`) as a plain number.
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| text.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((text, 1.0));
    number
        .parse::<f64>()
        .ok()
        .map(|n| n * factor)
        .filter(|v| v.is_finite())
}

struct Item<'a> {
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
    value: &'a Value,
}

fn object_id(kind: &str, namespace: &str, name: &str) -> String {
    match kind {
        "Node" => name.to_string(),
        "Pod" => format!("{namespace}/{name}"),
        other => format!("{namespace}/{}/{name}", other.to_ascii_lowercase()),
    }
}

fn node_type(kind: &str) -> Option<(Layer, &'static str)> {
    Some(match kind {
        "Node" => (Layer::Physical, "host"),
        "Pod" => (Layer::Virtual, "pod"),
        "ReplicaSet" => (Layer::Service, "replicaset"),
        "Deployment" => (Layer::Service, "deployment"),
        "StatefulSet" => (Layer::Service, "statefulset"),
        "DaemonSet" => (Layer::Service, "daemonset"),
        "Service" => (Layer::Service, "service"),
        _ => return None,
    })
}

fn spec_of(item: &Item<'_>) -> Option<NodeSpec> {
    let (layer, ty) = node_type(item.kind)?;
    let id = object_id(item.kind, item.namespace, item.name);
    let mut node = NodeSpec::new(id, layer, Category::Compute, ty);
    node.name = Some(item.name.to_string());
    node.labels = string_map(item.value.pointer("/metadata/labels"));
    let attrs = &mut node.attributes;
    attrs.insert("source".into(), SOURCE.into());
    if !item.namespace.is_empty() {
        attrs.insert("namespace".into(), item.namespace.into());
    }
    if let Some(created) = meta(item.value, "creationTimestamp") {
        attrs.insert("created".into(), created.into());
    }
    match item.kind {
        "Node" => {
            let status = item.value.get("status");
            for (key, field) in [("allocatable", "cores"), ("capacity", "capacity_cores")] {
                if let Some(cpu) = status
                    .and_then(|s| s.pointer(&format!("/{key}/cpu")))
                    .and_then(Value::as_str)
                    .and_then(quantity)
                {
                    attrs.insert(field.into(), cpu.into());
                }
            }
            if let Some(mem) = status
                .and_then(|s| s.pointer("/allocatable/memory"))
                .and_then(Value::as_str)
                .and_then(quantity)
            {
                attrs.insert("memory_bytes".into(), (mem as u64).into());
            }
            let addresses = status
                .and_then(|s| s.get("addresses"))
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut aliases: Vec<String> = addresses
                .iter()
                .filter_map(|a| a.get("address").and_then(Value::as_str))
                .filter(|a| *a != item.name)
                .map(str::to_string)
                .collect();
            aliases.sort();
            aliases.dedup();
            node.aliases = aliases;
        }
        "Pod" => {
            let containers = item
                .value
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let sum = |resource: &str| -> f64 {
                containers
                    .iter()
                    .filter_map(|c| c.pointer(&format!("/resources/requests/{resource}")))
                    .filter_map(Value::as_str)
                    .filter_map(quantity)
                    .sum()
            };
            attrs.insert("cpu_request".into(), sum("cpu").into());
            attrs.insert("memory_request_bytes".into(), (sum("memory") as u64).into());
            if let Some(phase) = item.value.pointer("/status/phase").and_then(Value::as_str) {
                attrs.insert("phase".into(), phase.into());
            }
            if let Some(ip) = item.value.pointer("/status/podIP").and_then(Value::as_str) {
                attrs.insert("pod_ip".into(), ip.into());
            }
        }
        "Service" => {
            if let Some(ip) = item
                .value
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
            {
                attrs.insert("cluster_ip".into(), ip.into());
            }
            // Callers and traces name a service `name.namespace`.
            node.aliases = vec![format!("{}.{}", item.name, item.namespace)];
        }
        _ => {}
    }
    Some(node)
}

/// The events describing the listed objects at `at_ms`, and the `node_down`s of objects
/// this loader made earlier that the listing no longer has (a listing is the whole truth
/// for the kinds it lists).
pub fn events(
    text: &str,
    graph: &LandscapeGraph,
    at_ms: i64,
) -> Result<Vec<LandscapeEvent>, GraphError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| GraphError::format(FORMAT, format!("not JSON: {e}")))?;
    let items: Vec<&Value> = match doc.get("items") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err(GraphError::format(FORMAT, "`items` is not a list")),
        None if doc.get("kind").is_some() => vec![&doc],
        None => {
            return Err(GraphError::format(
                FORMAT,
                "neither a List nor an object: no `items` or `kind`",
            ))
        }
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (i, value) in items.into_iter().enumerate() {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::format(FORMAT, format!("items[{i}]: `kind` is missing")))?;
        let name = meta(value, "name").ok_or_else(|| {
            GraphError::format(
                FORMAT,
                format!("items[{i}] ({kind}): `metadata.name` is missing"),
            )
        })?;
        parsed.push(Item {
            kind,
            name,
            // kubectl leaves the namespace out of objects of the default one.
            namespace: match kind {
                "Node" => "",
                _ => meta(value, "namespace").unwrap_or("default"),
            },
            value,
        });
    }
    let mut out = Vec::new();
    let mut listed_kinds = HashSet::new();
    let mut listed = HashSet::new();
    for item in &parsed {
        if let Some(spec) = spec_of(item) {
            listed_kinds.insert(spec.node_type.clone());
            listed.insert(spec.id.clone());
            out.push(node_up(at_ms, spec));
        }
    }
    let known = |id: &str| listed.contains(id) || graph.get(id).is_some_and(|n| n.lifetime.alive());
    for item in &parsed {
        let id = object_id(item.kind, item.namespace, item.name);
        if !listed.contains(&id) {
            continue;
        }
        let mut edge = |relation, target: String| {
            if known(&target) {
                out.push(edge_up(at_ms, EdgeSpec::new(id.clone(), relation, target)));
            }
        };
        if item.kind == "Pod" {
            if let Some(host) = item.value.pointer("/spec/nodeName").and_then(Value::as_str) {
                edge(Relation::RunsOn, host.to_string());
            }
        }
        let owners = item
            .value
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for owner in owners {
            if let (Some(kind), Some(name)) = (
                owner.get("kind").and_then(Value::as_str),
                owner.get("name").and_then(Value::as_str),
            ) {
                edge(Relation::MemberOf, object_id(kind, item.namespace, name));
            }
        }
    }
    // Services select pods of their namespace by label.
    for service in parsed.iter().filter(|i| i.kind == "Service") {
        let selector = string_map(service.value.pointer("/spec/selector"));
        if selector.is_empty() {
            continue;
        }
        let service_id = object_id("Service", service.namespace, service.name);
        for pod in parsed
            .iter()
            .filter(|i| i.kind == "Pod" && i.namespace == service.namespace)
        {
            let labels = string_map(pod.value.pointer("/metadata/labels"));
            if selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                let pod_id = object_id("Pod", pod.namespace, pod.name);
                out.push(edge_up(
                    at_ms,
                    EdgeSpec::new(pod_id, Relation::MemberOf, service_id.clone()),
                ));
            }
        }
    }
    // What an earlier listing of these kinds had and this one has not, is gone.
    for (_, node) in graph.nodes() {
        let ours = node.current().attributes.get("source") == Some(&Value::from(SOURCE));
        if ours
            && node.lifetime.alive()
            && listed_kinds.contains(&node.node_type)
            && !listed.contains(&node.id)
        {
            out.push(LandscapeEvent::NodeDown {
                timestamp_ms: at_ms,
                id: node.id.clone(),
            });
        }
    }
    // Edges a pod no longer has (moved, owner changed) end.
    let wanted: HashSet<(String, Relation, String)> = out
        .iter()
        .filter_map(|e| match e {
            LandscapeEvent::EdgeUp { edge, .. } => {
                Some((edge.source.clone(), edge.relation, edge.target.clone()))
            }
            _ => None,
        })
        .collect();
    for (_, s, d, edge) in graph.edges() {
        let (source, target) = (graph.node(s), graph.node(d));
        if edge.lifetime.alive()
            && listed.contains(&source.id)
            && matches!(edge.relation, Relation::RunsOn | Relation::MemberOf)
            && !wanted.contains(&(source.id.clone(), edge.relation, target.id.clone()))
            && target.current().attributes.get("source") == Some(&Value::from(SOURCE))
        {
            out.push(LandscapeEvent::EdgeDown {
                timestamp_ms: at_ms,
                source: source.id.clone(),
                target: target.id.clone(),
                relation: edge.relation,
            });
        }
    }
    Ok(out)
}
