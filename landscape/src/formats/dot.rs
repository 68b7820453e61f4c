//! Graphviz DOT of the landscape as of a time, through petgraph's writer: nodes labelled
//! with their name and type and ranked by layer, edges by relation (and weight).

use dcpilot_schemas::Layer;
use petgraph::dot::{Config, Dot};
use petgraph::graph::DiGraph;

use crate::query::{EdgeView, NodeView, Subgraph};

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The subgraph as DOT.
pub fn export(view: &Subgraph) -> String {
    let mut graph: DiGraph<&NodeView, &EdgeView> = DiGraph::new();
    let mut index = std::collections::HashMap::new();
    for node in &view.nodes {
        index.insert(node.id.as_str(), graph.add_node(node));
    }
    for edge in &view.edges {
        if let (Some(&s), Some(&d)) = (
            index.get(edge.source.as_str()),
            index.get(edge.target.as_str()),
        ) {
            graph.add_edge(s, d, edge);
        }
    }
    let dot = Dot::with_attr_getters(
        &graph,
        &[Config::NodeNoLabel, Config::EdgeNoLabel],
        &|_, e| {
            let edge: &EdgeView = e.weight();
            let label = match edge.weight {
                Some(w) => format!("{} ({w})", edge.relation),
                None => edge.relation.to_string(),
            };
            format!("label = {}", quote(&label))
        },
        &|_, (_, node)| {
            let node: &NodeView = node;
            let shape = match node.layer {
                Layer::Physical => "box",
                Layer::Virtual => "ellipse",
                Layer::Service => "hexagon",
            };
            format!(
                "label = {} shape = {shape} layer = {} id = {}",
                quote(&format!("{}\\n{}", node.name, node.node_type)),
                quote(node.layer.as_str()),
                quote(&node.id),
            )
        },
    );
    format!("{dot:?}")
}
