//! The Kubernetes scheduler-extender protocol (`k8s.io/kube-scheduler/extender/v1`):
//! `ExtenderArgs` in, `ExtenderFilterResult` / `HostPriorityList` out, as kube-scheduler
//! sends and expects them. Pods and nodes stay JSON values (passing nodes go back
//! unchanged); only the fields dcpilot reads are typed.
//!
//! A pod's workload is its `dcpilot.io/workload` annotation, else `namespace/owner` (a
//! ReplicaSet's hash suffix dropped, so it names the Deployment), else `namespace/name`.
//! Its profile may come from annotations: `dcpilot.io/rps`, `dcpilot.io/quiet-p99-ms`,
//! `dcpilot.io/p99-objective-ms`, `dcpilot.io/pressure-cpu|l3|membw`.

use dcpilot_schemas::Invalid;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::landscape::{Host, Pressure};
use crate::planner::PlacementRequest;

/// Highest extender priority (kube-scheduler's `MaxExtenderPriority`).
pub const MAX_PRIORITY: i64 = 10;

/// What kube-scheduler sends to `filter` and `prioritize`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ExtenderArgs {
    /// The pod being scheduled (a `v1.Pod`).
    pub pod: Value,
    /// Candidate nodes (a `v1.NodeList`), when the extender is not `nodeCacheCapable`.
    #[serde(default)]
    pub nodes: Option<Value>,
    /// Candidate node names, when it is.
    #[serde(default)]
    pub nodenames: Option<Vec<String>>,
}

/// The answer to `filter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ExtenderFilterResult {
    /// Passing nodes, when nodes were sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Value>,
    /// Passing node names, when names were sent.
    #[serde(rename = "nodenames", skip_serializing_if = "Option::is_none")]
    pub node_names: Option<Vec<String>>,
    /// Node → why it does not fit.
    #[serde(rename = "failedNodes", skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_nodes: BTreeMap<String, String>,
    /// Node → why it can never fit this pod.
    #[serde(
        rename = "failedAndUnresolvableNodes",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub failed_and_unresolvable_nodes: BTreeMap<String, String>,
    /// Set when the extender failed as a whole.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// One entry of a `HostPriorityList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostPriority {
    /// Node name.
    pub host: String,
    /// 0 (worst) to 10 (best).
    pub score: i64,
}

/// A candidate node: its name and, when the NodeList had it, the node itself.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Node name.
    pub name: String,
    /// The node as sent (NodeList item).
    pub node: Option<Value>,
}

/// Reads the candidates of `args`: the NodeList's items, else the names.
pub fn candidates(args: &ExtenderArgs) -> Result<Vec<Candidate>, Invalid> {
    if let Some(list) = &args.nodes {
        let items = list
            .get("items")
            .and_then(Value::as_array)
            .ok_or("nodes: a NodeList needs an items array")?;
        return items
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let name = node
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("nodes.items[{i}].metadata.name: missing"))?;
                Ok(Candidate {
                    name: name.to_string(),
                    node: Some(node.clone()),
                })
            })
            .collect();
    }
    match &args.nodenames {
        Some(names) => Ok(names
            .iter()
            .map(|n| Candidate {
                name: n.clone(),
                node: None,
            })
            .collect()),
        None => Err("send nodes (a NodeList) or nodenames".into()),
    }
}

/// A Kubernetes resource quantity (`500m`, `2`, `1.5`, `16Gi`, `1e9`, `128M`) as a number.
pub fn parse_quantity(text: &str) -> Result<f64, Invalid> {
    let t = text.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        other => {
            return Err(Invalid(format!(
                "quantity {text:?}: unknown suffix {other:?}"
            )))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| Invalid(format!("quantity {text:?} is not a number")))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value * scale)
    } else {
        Err(Invalid(format!(
            "quantity {text:?} must be a non-negative number"
        )))
    }
}

fn quantity_at(value: &Value, pointer: &str) -> Result<Option<f64>, String> {
    match value.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_quantity(s).map(Some).map_err(|e| e.0),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(format!("{pointer}: {other} is not a quantity")),
    }
}

/// A host from a NodeList item: allocatable (else capacity) cpu and memory, and labels.
pub fn host_from_node(node: &Value) -> Result<Host, Invalid> {
    let name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or("metadata.name: missing")?;
    let read = |key: &str| -> Result<f64, String> {
        quantity_at(node, &format!("/status/allocatable/{key}"))
            .transpose()
            .or_else(|| quantity_at(node, &format!("/status/capacity/{key}")).transpose())
            .unwrap_or_else(|| {
                Err(format!(
                    "node {name}: status has no allocatable or capacity {key}"
                ))
            })
            .map_err(|e| format!("node {name}: {e}"))
    };
    let cores = read("cpu")?;
    let memory = read("memory")?;
    let labels = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(Host {
        name: name.to_string(),
        cores,
        memory_bytes: memory as u64,
        features: Default::default(),
        labels,
    })
}

/// kube-scheduler's defaults for a container that requests nothing (used for scoring).
const DEFAULT_CPU: f64 = 0.1;
const DEFAULT_MEMORY: f64 = 200.0 * 1024.0 * 1024.0;

/// The pod's workload name.
pub fn workload_of(pod: &Value) -> String {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if let Some(w) = pod
        .pointer("/metadata/annotations/dcpilot.io~1workload")
        .and_then(Value::as_str)
    {
        return w.to_string();
    }
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|owners| owners.first());
    if let Some(owner) = owner {
        let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
        if let Some(name) = owner.get("name").and_then(Value::as_str) {
            let name = match (kind, name.rsplit_once('-')) {
                ("ReplicaSet", Some((deployment, _hash))) => deployment,
                _ => name,
            };
            return format!("{namespace}/{name}");
        }
    }
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("unnamed");
    format!("{namespace}/{name}")
}

fn annotation(pod: &Value, key: &str) -> Result<Option<f64>, String> {
    let annotations = pod.pointer("/metadata/annotations");
    crate::landscape::profile_number(
        |k| {
            annotations
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        },
        key,
    )
    .map_err(|e| format!("annotation {e}"))
}

/// The placement request a pod makes: summed container requests (kube-scheduler's
/// defaults when none), its workload and the profile its annotations give.
pub fn request_from_pod(pod: &Value) -> Result<PlacementRequest, Invalid> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .ok_or("pod.spec.containers: missing")?;
    let (mut cores, mut memory) = (0.0, 0.0);
    for (i, c) in containers.iter().enumerate() {
        let cpu = quantity_at(c, "/resources/requests/cpu")
            .map_err(|e| format!("pod.spec.containers[{i}]: {e}"))?;
        let mem = quantity_at(c, "/resources/requests/memory")
            .map_err(|e| format!("pod.spec.containers[{i}]: {e}"))?;
        cores += cpu.filter(|v| *v > 0.0).unwrap_or(DEFAULT_CPU);
        memory += mem.filter(|v| *v > 0.0).unwrap_or(DEFAULT_MEMORY);
    }
    let mut request = PlacementRequest::new(&workload_of(pod), cores, memory as u64);
    request.rps = annotation(pod, "rps")?;
    request.quiet_p99_ms = annotation(pod, "quiet-p99-ms")?;
    request.p99_objective_ms = annotation(pod, "p99-objective-ms")?;
    request.pressure = Pressure {
        cpu: annotation(pod, "pressure-cpu")?.unwrap_or(0.0),
        l3: annotation(pod, "pressure-l3")?.unwrap_or(0.0),
        membw: annotation(pod, "pressure-membw")?.unwrap_or(0.0),
    };
    Ok(request)
}

/// Scores (objective, lower is better) → extender priorities 0..=10: by rank, so one host
/// far worse than the rest cannot squeeze the others together (as a min–max scale would,
/// all to 10). A scored host gets 1 + 9 × the share of the other scored hosts it is at
/// least as good as (best 10, worst 1; equal scores share a priority); one not scored 0.
pub fn priorities(scored: &[(String, f64)], all: &[String]) -> Vec<HostPriority> {
    let mut sorted: Vec<f64> = scored.iter().map(|(_, s)| *s).collect();
    sorted.sort_by(f64::total_cmp);
    let by_name: BTreeMap<&str, f64> = scored.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let others = sorted.len().saturating_sub(1);
    all.iter()
        .map(|name| {
            let score = match by_name.get(name.as_str()) {
                None => 0,
                Some(_) if others == 0 => MAX_PRIORITY,
                Some(s) => {
                    // Other hosts it is at least as good as (objective as high or higher).
                    let matched =
                        sorted.len() - sorted.partition_point(|x| x.total_cmp(s).is_lt()) - 1;
                    1 + (matched as f64 / others as f64 * (MAX_PRIORITY - 1) as f64).round() as i64
                }
            };
            HostPriority {
                host: name.clone(),
                score,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_like_kubernetes() {
        for (text, value) in [
            ("500m", 0.5),
            ("2", 2.0),
            ("1.5", 1.5),
            ("16Gi", 16.0 * 1024.0 * 1024.0 * 1024.0),
            ("128M", 128e6),
            ("1e3", 1000.0),
            ("64Ki", 65536.0),
        ] {
            assert_eq!(parse_quantity(text), Ok(value), "{text}");
        }
        for bad in ["", "abc", "5Xi", "-1", "1.2.3"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pods_name_their_deployment_and_sum_requests() {
        let pod = json!({
            "metadata": {"name": "function-deployment-7c9f-abcde", "namespace": "default",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "function-deployment-7c9f"}],
                "annotations": {"dcpilot.io/rps": "1500"}},
            "spec": {"containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "b"}
            ]}
        });
        let r = request_from_pod(&pod).expect("request");
        assert_eq!(r.workload, "default/function-deployment");
        assert!((r.cores - 0.6).abs() < 1e-9);
        assert_eq!(r.memory_bytes, (1 << 30) + 200 * 1024 * 1024);
        assert_eq!(r.rps, Some(1500.0));
        let bad = json!({"metadata": {"annotations": {"dcpilot.io/rps": "fast"}},
            "spec": {"containers": []}});
        assert!(request_from_pod(&bad)
            .expect_err("bad")
            .0
            .contains("dcpilot.io/rps"));
        assert!(request_from_pod(&json!({})).is_err());
    }

    #[test]
    fn nodes_become_hosts_from_allocatable_else_capacity() {
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a"}},
            "status": {"capacity": {"cpu": "8", "memory": "32Gi"}, "allocatable": {"cpu": "7500m"}}});
        let h = host_from_node(&node).expect("host");
        assert_eq!((h.cores, h.memory_bytes), (7.5, 32 << 30));
        assert_eq!(h.labels.get("zone").map(String::as_str), Some("a"));
        let err =
            host_from_node(&json!({"metadata": {"name": "n2"}, "status": {}})).expect_err("no cpu");
        assert!(err.0.contains("n2") && err.0.contains("cpu"), "{err}");
    }

    #[test]
    fn priorities_span_one_to_ten_and_unscored_get_zero() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let p = priorities(
            &[("a".into(), 1.0), ("b".into(), 3.0), ("c".into(), 2.0)],
            &all,
        );
        let scores: Vec<i64> = p.iter().map(|h| h.score).collect();
        assert_eq!(scores, vec![10, 1, 6, 0]);
    }

    /// Twelve nodes, one far worse: min–max scaling gave the other eleven all 10; by rank
    /// they keep their order, the outlier gets 1, and equal scores share a priority.
    #[test]
    fn one_outlier_does_not_flatten_the_good_hosts() {
        let mut scored: Vec<(String, f64)> = (0..11)
            .map(|i| (format!("n{i:02}"), 1.0 + 0.01 * f64::from(i)))
            .collect();
        scored.push(("outlier".into(), 1_000.0));
        scored.push(("twin".into(), 1.0));
        let all: Vec<String> = scored.iter().map(|(n, _)| n.clone()).collect();
        let p = priorities(&scored, &all);
        let of = |name: &str| p.iter().find(|h| h.host == name).expect("scored").score;
        assert_eq!(of("outlier"), 1);
        assert_eq!(of("n00"), 10);
        assert_eq!(of("twin"), of("n00"), "equal scores, equal priority");
        let good: Vec<i64> = (0..11).map(|i| of(&format!("n{i:02}"))).collect();
        assert!(good.windows(2).all(|w| w[0] >= w[1]), "{good:?}");
        let distinct: std::collections::BTreeSet<i64> = good.iter().copied().collect();
        assert!(
            distinct.len() >= 8,
            "the good hosts stay told apart: {good:?}"
        );
        assert!(
            good[10] > 1,
            "the worst good host beats the outlier: {good:?}"
        );
    }
}
