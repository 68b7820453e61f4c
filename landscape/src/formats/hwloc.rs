//! The inside of a host from hwloc's XML (`lstopo --of xml`): hwloc 1.x (`<topology>`,
//! caches as `type="Cache"` with a depth) and 2.x (`<topology version="2.0">`,
//! `L1Cache`…`L3Cache`, NUMA nodes as memory children). Each object becomes a physical node
//! the host `contains` (transitively: host → package → cache → core → PU; host → bridge →
//! PCI device → NIC or disk).
//!
//! Ids: the host by its name; every object inside `<host>/<type>:<n>`, `n` its `os_index`
//! where hwloc gives one that is unique for the type, else its position among objects of
//! that type in the document — stable for the same host's XML.

use std::collections::HashMap;

use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};

use super::{edge_up, node_up};
use crate::{GraphError, LandscapeGraph};

const FORMAT: &str = "hwloc";

/// hwloc's object type → (node type, category), given the object.
fn classify(node: roxmltree::Node<'_, '_>) -> (String, Category) {
    let ty = node.attribute("type").unwrap_or("Misc");
    let simple = |t: &str| (t.to_string(), Category::Compute);
    match ty {
        "Machine" => simple("host"),
        "Package" | "Socket" => simple("package"),
        "NUMANode" => simple("numa_node"),
        "Core" => simple("core"),
        "PU" => simple("pu"),
        "Bridge" => simple("bridge"),
        "PCIDev" => simple("pcidev"),
        t if t == "Cache" || t.ends_with("Cache") => simple("cache"),
        "OSDev" => match node.attribute("osdev_type") {
            // hwloc_obj_osdev_type_e: 0 block, 1 GPU, 2 network, 3 OpenFabrics, 4 DMA,
            // 5 co-processor.
            Some("0") => ("disk".into(), Category::Storage),
            Some("2") | Some("3") => ("nic".into(), Category::Network),
            Some("1") => simple("gpu"),
            _ => simple("osdev"),
        },
        other => (other.to_ascii_lowercase(), Category::Compute),
    }
}

fn level(node: roxmltree::Node<'_, '_>) -> Option<String> {
    let ty = node.attribute("type")?;
    if ty == "Cache" {
        // hwloc 1.x: depth 1..3, cache_type 2 = instruction.
        let depth = node.attribute("depth")?;
        let i = if node.attribute("cache_type") == Some("2") {
            "i"
        } else {
            ""
        };
        return Some(format!("L{depth}{i}"));
    }
    ty.strip_suffix("Cache").map(str::to_string)
}

fn host_name(root: roxmltree::Node<'_, '_>) -> Option<String> {
    root.children()
        .filter(|c| c.has_tag_name("info"))
        .find(|c| c.attribute("name") == Some("HostName"))
        .and_then(|c| c.attribute("value"))
        .map(str::to_string)
}

/// The events describing the topology at `at_ms`. `host` names the host (else the XML's
/// `HostName`). A host already in `graph` keeps its own description (from Kubernetes,
/// say): only what is inside it is added.
pub fn events(
    text: &str,
    host: Option<&str>,
    graph: &LandscapeGraph,
    at_ms: i64,
) -> Result<Vec<LandscapeEvent>, GraphError> {
    // lstopo writes a DOCTYPE naming hwloc's DTD (never fetched).
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| GraphError::format(FORMAT, format!("not XML: {e}")))?;
    let topology = doc.root_element();
    if !topology.has_tag_name("topology") {
        return Err(GraphError::format(
            FORMAT,
            format!(
                "root element is <{}>, not <topology>",
                topology.tag_name().name()
            ),
        ));
    }
    let machine = topology
        .children()
        .find(|c| c.has_tag_name("object") && c.attribute("type") == Some("Machine"))
        .ok_or_else(|| GraphError::format(FORMAT, "no Machine object under <topology>"))?;
    let host = host
        .map(str::to_string)
        .or_else(|| host_name(machine))
        .ok_or_else(|| {
            GraphError::format(
                FORMAT,
                "the XML names no HostName: say which host it is (--host)",
            )
        })?;
    // Which os_index values repeat for a type (hwloc leaves some objects without one).
    let mut os_seen: HashMap<(String, String), usize> = HashMap::new();
    for obj in machine.descendants().filter(|n| n.has_tag_name("object")) {
        if let Some(os) = obj.attribute("os_index") {
            let key = (classify_key(obj), os.to_string());
            *os_seen.entry(key).or_default() += 1;
        }
    }
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut ids: HashMap<roxmltree::NodeId, String> = HashMap::new();
    let mut stack = vec![machine];
    while let Some(obj) = stack.pop() {
        let (ty, category) = classify(obj);
        let key = classify_key(obj);
        let n = counters.entry(key.clone()).or_default();
        let position = *n;
        *n += 1;
        let id = if obj == machine {
            host.clone()
        } else {
            let unique_os = obj
                .attribute("os_index")
                .filter(|os| os_seen.get(&(key.clone(), os.to_string())) == Some(&1));
            match unique_os {
                Some(os) => format!("{host}/{key}:{os}"),
                None => format!("{host}/{key}:{position}"),
            }
        };
        let mut spec = NodeSpec::new(id.clone(), Layer::Physical, category, &ty);
        for attr in obj.attributes().filter(|a| a.name() != "type") {
            spec.attributes
                .insert(attr.name().to_string(), attr.value().into());
        }
        for info in obj.children().filter(|c| c.has_tag_name("info")) {
            if let (Some(k), Some(v)) = (info.attribute("name"), info.attribute("value")) {
                spec.attributes.insert(k.to_string(), v.into());
            }
        }
        if let Some(level) = level(obj) {
            spec.attributes.insert("level".into(), level.into());
        }
        spec.attributes.insert("source".into(), FORMAT.into());
        spec.name = if obj == machine {
            Some(host.clone())
        } else {
            obj.attribute("name").map(str::to_string)
        };
        let host_known = obj == machine && graph.get(&host).is_some_and(|n| n.lifetime.alive());
        if !host_known {
            out.push(node_up(at_ms, spec));
        }
        if let Some(parent) = obj.parent().and_then(|p| ids.get(&p.id())) {
            out.push(edge_up(
                at_ms,
                EdgeSpec::new(parent.clone(), Relation::Contains, id.clone()),
            ));
        }
        ids.insert(obj.id(), id);
        // Children in document order (the stack pops the last pushed first).
        let children: Vec<_> = obj
            .children()
            .filter(|c| c.has_tag_name("object"))
            .collect();
        stack.extend(children.into_iter().rev());
    }
    Ok(out)
}

/// The id part naming an object's kind: its node type, caches by level (`l2`, `l1i`).
fn classify_key(obj: roxmltree::Node<'_, '_>) -> String {
    match level(obj) {
        Some(level) => level.to_ascii_lowercase(),
        None => classify(obj).0,
    }
}
