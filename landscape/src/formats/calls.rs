//! Call edges from `Source,Target,Weight` files (Nezha's `dependency.csv` and
//! `call_graph.csv`): each row a service calling a service, weighted (requests or spans);
//! a target that is an IP address is the node a service runs on, not a callee.
//!
//! A name already in the landscape (by id or alias — a Kubernetes service is aliased
//! `name.namespace`, a node by its addresses), or the one live service of that name, is
//! that node; other services become service-layer `service` nodes, other IPs physical
//! `host` nodes.

use std::collections::HashSet;
use std::net::IpAddr;

use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};

use super::{edge_up, node_up};
use crate::{GraphError, LandscapeGraph};

const FORMAT: &str = "calls";

/// The events of the file's rows at `at_ms`.
pub fn events(
    text: &str,
    graph: &LandscapeGraph,
    at_ms: i64,
) -> Result<Vec<LandscapeEvent>, GraphError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| GraphError::format(FORMAT, format!("header: {e}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                GraphError::format(
                    FORMAT,
                    format!("no `{name}` column (want Source,Target,Weight)"),
                )
            })
    };
    let (source_col, target_col) = (column("source")?, column("target")?);
    let weight_col = column("weight").ok();
    let mut made = HashSet::new();
    let mut out = Vec::new();
    let mut resolve = |name: &str, out: &mut Vec<LandscapeEvent>| -> String {
        if let Some(id) = known(graph, name) {
            return id;
        }
        if made.insert(name.to_string()) {
            let node = match name.parse::<IpAddr>() {
                Ok(_) => NodeSpec::new(name, Layer::Physical, Category::Compute, "host"),
                Err(_) => NodeSpec::new(name, Layer::Service, Category::Compute, "service"),
            };
            out.push(node_up(at_ms, node));
        }
        name.to_string()
    };
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| GraphError::format(FORMAT, format!("line {line}: {e}")))?;
        let field = |c: usize| row.get(c).unwrap_or_default();
        let (source, target) = (field(source_col), field(target_col));
        if source.is_empty() || target.is_empty() {
            return Err(GraphError::format(
                FORMAT,
                format!("line {line}: empty Source or Target"),
            ));
        }
        let weight = match weight_col.map(field).filter(|w| !w.is_empty()) {
            None => None,
            Some(w) => Some(
                w.parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .ok_or_else(|| {
                        GraphError::format(
                            FORMAT,
                            format!("line {line}: Weight {w:?} is not a number ≥ 0"),
                        )
                    })?,
            ),
        };
        let relation = if target.parse::<IpAddr>().is_ok() {
            Relation::RunsOn
        } else {
            Relation::Calls
        };
        let (s, d) = (resolve(source, &mut out), resolve(target, &mut out));
        let mut edge = EdgeSpec::new(s, relation, d);
        edge.weight = weight;
        out.push(edge_up(at_ms, edge));
    }
    Ok(out)
}

/// The live node `name` means: one with that id or alias, or the one live service of that
/// display name (a bare `frontend` where Kubernetes ids are namespaced:
/// `shop/service/frontend`); `None` when there is no such node or more than one.
pub fn known(graph: &LandscapeGraph, name: &str) -> Option<String> {
    if let Some(node) = graph.get(name).filter(|n| n.lifetime.alive()) {
        return Some(node.id.clone());
    }
    let mut named = graph.nodes().filter(|(_, n)| {
        n.node_type == "service" && n.lifetime.alive() && n.current().name.as_deref() == Some(name)
    });
    match (named.next(), named.next()) {
        (Some((_, only)), None) => Some(only.id.clone()),
        _ => None,
    }
}
