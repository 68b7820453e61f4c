//! The landscape graph: history and as-of queries, every refused change leaving the graph
//! as it was, and the loaders on real (or real-shaped) input bundled under `tests/data/`.

use std::path::PathBuf;

use dcpilot_landscape::formats::{self, history, networkx, ImportFormat, ImportOptions};
use dcpilot_landscape::{GraphError, LandscapeGraph, NodeFilter, Walk};
use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};

fn data(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn node(t: i64, id: &str, layer: Layer, ty: &str) -> LandscapeEvent {
    LandscapeEvent::NodeUp {
        timestamp_ms: t,
        node: NodeSpec::new(id, layer, Category::Compute, ty),
    }
}

fn edge(t: i64, s: &str, r: Relation, d: &str) -> LandscapeEvent {
    LandscapeEvent::EdgeUp {
        timestamp_ms: t,
        edge: EdgeSpec::new(s, r, d),
    }
}

fn import(format: ImportFormat, text: &str, graph: &mut LandscapeGraph, at_ms: i64) -> usize {
    let options = ImportOptions { at_ms, host: None };
    let events = formats::import_events(format, text, graph, &options).expect("parses");
    graph.apply_all(&events).expect("applies")
}

/// rack ⊃ host; a pod on the host, member of a service another service calls.
fn small() -> LandscapeGraph {
    let mut g = LandscapeGraph::new();
    g.apply_all(&[
        node(10, "rack-1", Layer::Physical, "rack"),
        node(10, "host-1", Layer::Physical, "host"),
        node(10, "host-2", Layer::Physical, "host"),
        edge(10, "rack-1", Relation::Contains, "host-1"),
        edge(10, "rack-1", Relation::Contains, "host-2"),
        node(20, "pod-a", Layer::Virtual, "pod"),
        node(20, "cart", Layer::Service, "service"),
        node(20, "frontend", Layer::Service, "service"),
        edge(20, "pod-a", Relation::RunsOn, "host-1"),
        edge(20, "pod-a", Relation::MemberOf, "cart"),
        edge(20, "frontend", Relation::Calls, "cart"),
    ])
    .expect("a consistent landscape");
    g
}

fn snapshot(g: &LandscapeGraph) -> String {
    history::to_json(g)
}

#[test]
fn history_answers_as_of_any_time_and_diffs() {
    let mut g = small();
    // The pod moves to host-2 at 30 and disappears at 40; a new version of cart at 35.
    g.apply_all(&[
        LandscapeEvent::EdgeDown {
            timestamp_ms: 30,
            source: "pod-a".into(),
            target: "host-1".into(),
            relation: Relation::RunsOn,
        },
        edge(30, "pod-a", Relation::RunsOn, "host-2"),
        LandscapeEvent::NodeUp {
            timestamp_ms: 35,
            node: NodeSpec {
                labels: [("tier".to_string(), "backend".to_string())].into(),
                ..NodeSpec::new("cart", Layer::Service, Category::Compute, "service")
            },
        },
        LandscapeEvent::NodeDown {
            timestamp_ms: 40,
            id: "pod-a".into(),
        },
    ])
    .expect("applies");
    let on = |t| {
        g.neighbours("pod-a", Some(Relation::RunsOn), Walk::Down, t)
            .expect("alive")
            .into_iter()
            .map(|(_, n)| n.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(on(25), ["host-1"]);
    assert_eq!(on(30), ["host-2"]);
    assert!(matches!(
        g.node_at("pod-a", 40),
        Err(GraphError::NotAlive { .. })
    ));
    assert!(matches!(
        g.node_at("pod-a", 5),
        Err(GraphError::NotAlive { .. })
    ));
    // Nothing is deleted: the pod is still there in the past, with its history.
    assert_eq!(g.view(g.resolve("pod-a").expect("kept"), 25).since_ms, 20);
    assert!(g
        .get("cart")
        .expect("cart")
        .version_at(34)
        .labels
        .is_empty());
    assert_eq!(
        g.get("cart").expect("cart").version_at(35).labels["tier"],
        "backend"
    );

    let diff = g.diff(25, 45);
    let ids =
        |v: &[dcpilot_landscape::NodeView]| v.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&diff.nodes_removed), ["pod-a"]);
    assert_eq!(ids(&diff.nodes_changed), ["cart"]);
    assert!(diff.nodes_added.is_empty());
    // Both of the pod's placements are gone by 45; host-2's began after 25 and ended too.
    assert_eq!(diff.edges_removed.len(), 2, "{:?}", diff.edges_removed);
    assert!(g.diff(41, 45).is_empty());

    // The whole history survives the history file.
    let back = history::from_json(&snapshot(&g)).expect("reads back");
    assert_eq!(snapshot(&back), snapshot(&g));
    assert_eq!(back.diff(25, 45), diff);
}

#[test]
fn every_refused_change_names_the_problem_and_leaves_the_graph_unchanged() {
    let cases: Vec<(LandscapeEvent, &str)> = vec![
        (
            edge(50, "pod-a", Relation::RunsOn, "host-9"),
            "unknown node \"host-9\"",
        ),
        (
            edge(50, "host-1", Relation::Contains, "rack-1"),
            "containment cannot loop",
        ),
        (
            node(50, "vm-1", Layer::Service, "vm"),
            "belongs to the virtual layer",
        ),
        (
            node(50, "host-1", Layer::Physical, "switch"),
            "cannot become a physical compute `switch`",
        ),
        // host-1's last change was at 10: an event at 5 is older than it.
        (
            LandscapeEvent::NodeUp {
                timestamp_ms: 5,
                node: NodeSpec {
                    name: Some("renamed".into()),
                    ..NodeSpec::new("host-1", Layer::Physical, Category::Compute, "host")
                },
            },
            "is older than its last change at 10 ms",
        ),
        (
            edge(50, "host-1", Relation::RunsOn, "pod-a"),
            "a physical host cannot runs_on a virtual pod",
        ),
        (
            edge(50, "pod-a", Relation::MemberOf, "host-1"),
            "cannot member_of",
        ),
        (
            edge(50, "cart", Relation::Calls, "cart"),
            "cannot relate to itself",
        ),
        (
            LandscapeEvent::EdgeDown {
                timestamp_ms: 50,
                source: "cart".into(),
                target: "frontend".into(),
                relation: Relation::Calls,
            },
            "unknown edge cart -calls-> frontend",
        ),
    ];
    for (event, expected) in cases {
        let mut g = small();
        let before = snapshot(&g);
        // In a batch after a good event: the good one must not stay either.
        let batch = [node(50, "host-3", Layer::Physical, "host"), event.clone()];
        let err = g.apply_all(&batch).expect_err("refused").to_string();
        assert!(err.contains(expected), "{event:?}: {err}");
        assert!(err.starts_with("events[1]"), "{err}");
        assert_eq!(snapshot(&g), before, "{event:?} changed the graph");
        // One at a time, too.
        let err = g.apply_event(&event).expect_err("refused").to_string();
        assert!(err.contains(expected), "{event:?}: {err}");
        assert_eq!(snapshot(&g), before, "{event:?} changed the graph");
    }
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let mut g = small();
    let before = snapshot(&g);
    let applied = g
        .apply_event(&edge(20, "pod-a", Relation::RunsOn, "host-1"))
        .expect("same edge again");
    assert_eq!(applied, dcpilot_landscape::Applied::Unchanged);
    assert_eq!(snapshot(&g), before);
}

#[test]
fn host_and_instance_events_map_onto_the_graph() {
    let mut g = LandscapeGraph::new();
    let host = |t, name: &str| LandscapeEvent::HostUp {
        timestamp_ms: t,
        host: name.into(),
        cores: 16.0,
        memory_bytes: 64 << 30,
        features: Default::default(),
        labels: [("zone".to_string(), "a".to_string())].into(),
    };
    let placed = |t, host: &str| LandscapeEvent::InstancePlaced {
        timestamp_ms: t,
        instance: "vm-1".into(),
        workload: "web".into(),
        host: host.into(),
        cpu_request: 2.0,
        memory_request_bytes: 1 << 30,
        labels: Default::default(),
    };
    g.apply_all(&[host(1, "node-1"), host(1, "node-2"), placed(2, "node-1")])
        .expect("applies");
    // The pod node says the same, but it moved: that is a change; delivered again, not.
    let moved = g.apply_event(&placed(3, "node-2")).expect("moves");
    assert_eq!(moved, dcpilot_landscape::Applied::Changed);
    let again = g.apply_event(&placed(3, "node-2")).expect("again");
    assert_eq!(again, dcpilot_landscape::Applied::Unchanged);
    let at = |t| {
        g.subgraph("web", Walk::Up, 1, &[], t)
            .expect("service")
            .nodes
            .len()
    };
    assert_eq!(at(2), 2, "web and its one instance");
    let hosts = |t| {
        g.neighbours("vm-1", Some(Relation::RunsOn), Walk::Down, t)
            .expect("alive")
            .into_iter()
            .map(|(_, n)| n.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(hosts(2), ["node-1"]);
    assert_eq!(hosts(3), ["node-2"], "the old placement ended");
    let node = g.view(g.resolve("node-1").expect("host"), 3);
    assert_eq!(node.attributes["cores"], 16.0);
    assert_eq!(node.labels["zone"], "a");
    // An instance on an unknown host, or of a "workload" that is no service, is refused
    // and leaves nothing behind.
    let before = snapshot(&g);
    assert!(g.apply_event(&placed(4, "node-9")).is_err());
    assert_eq!(snapshot(&g), before);
    let mut not_a_service = placed(4, "node-1");
    if let LandscapeEvent::InstancePlaced {
        workload, instance, ..
    } = &mut not_a_service
    {
        *workload = "node-2".into();
        *instance = "vm-2".into();
    }
    let err = g
        .apply_event(&not_a_service)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("not a service"), "{err}");
    assert_eq!(snapshot(&g), before);
}

#[test]
fn queries_walk_the_right_way() {
    let g = small();
    let t = 25;
    let down: Vec<String> = g
        .subgraph("rack-1", Walk::Down, 3, &[], t)
        .expect("rack")
        .nodes
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(
        down,
        ["rack-1", "host-1", "host-2"],
        "down follows edges only"
    );
    let up = g.subgraph("host-1", Walk::Up, 3, &[], t).expect("host");
    let up_ids: Vec<&str> = up.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(up_ids, ["host-1", "rack-1", "pod-a"]);
    // Depth bounds it.
    assert_eq!(
        g.subgraph("frontend", Walk::Both, 1, &[], t)
            .expect("fe")
            .nodes
            .len(),
        2
    );
    // Blast radius of host-1: the pod on it, the service it is a member of, the caller.
    let blast: Vec<(String, usize)> = g
        .blast_radius("host-1", t)
        .expect("host")
        .into_iter()
        .map(|a| (a.node.id, a.depth))
        .collect();
    assert_eq!(
        blast,
        [
            ("pod-a".into(), 1),
            ("cart".into(), 2),
            ("frontend".into(), 3)
        ]
    );
    // The rack takes both hosts and what depends on them.
    assert_eq!(g.blast_radius("rack-1", t).expect("rack").len(), 5);
    // A failing caller takes nobody down.
    assert!(g.blast_radius("frontend", t).expect("fe").is_empty());
    // Paths ignore direction: frontend → cart ← pod → host.
    assert_eq!(
        g.paths("frontend", "host-1", t).expect("both alive"),
        [vec!["frontend", "cart", "pod-a", "host-1"]]
    );
    assert_eq!(
        g.paths("host-1", "host-2", t).expect("alive"),
        [vec!["host-1", "rack-1", "host-2"]]
    );
    // Before the pod existed, host-1 and frontend were not connected.
    assert_eq!(
        g.paths("frontend", "rack-1", 15).map(|p| p.len()),
        Err(GraphError::NotAlive {
            id: "frontend".into(),
            at_ms: 15
        })
    );
    let filtered = g.at(
        t,
        &NodeFilter {
            layer: Some(Layer::Service),
            ..NodeFilter::default()
        },
    );
    assert_eq!(filtered.nodes.len(), 2);
    assert_eq!(filtered.edges.len(), 1, "only edges with both ends kept");
}

#[test]
fn landscaper_graph_imports_losslessly_and_exports_back() {
    let text = data("landscaper/test_landscape.json");
    let events = networkx::events(&text).expect("parses");
    let mut g = LandscapeGraph::new();
    g.apply_all(&events).expect("a consistent landscape");
    assert_eq!((g.node_count(), g.edge_count()), (242, 262));
    let summary = g.summary(i64::MAX);
    assert_eq!(summary.edges[&Relation::Contains], 210);
    assert_eq!(summary.nodes[&Layer::Service]["stack"], 2);

    let original: serde_json::Value = serde_json::from_str(&text).expect("json");
    let exported = networkx::export(&g, networkx::LinkStyle::Index);
    let by_id = |doc: &serde_json::Value| {
        let mut nodes: Vec<String> = doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n.to_string())
            .collect();
        nodes.sort();
        nodes
    };
    assert_eq!(
        by_id(&exported),
        by_id(&original),
        "nodes with every attribute"
    );
    let links = |doc: &serde_json::Value| {
        let ids: Vec<&str> = doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().expect("id"))
            .collect();
        let mut links: Vec<String> = doc["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| {
                let mut l = l.clone();
                for end in ["source", "target"] {
                    let i = l[end].as_u64().expect("index") as usize;
                    l[end] = ids[i].into();
                }
                l.to_string()
            })
            .collect();
        links.sort();
        links
    };
    assert_eq!(
        links(&exported),
        links(&original),
        "links with label, from, to"
    );
    for key in ["directed", "multigraph", "graph"] {
        assert_eq!(exported[key], original[key], "{key}");
    }
    // networkx ≥ 2 names link ends by id; that reads back to the same graph.
    let by_ids = networkx::export(&g, networkx::LinkStyle::Id).to_string();
    let mut again = LandscapeGraph::new();
    again
        .apply_all(&networkx::events(&by_ids).expect("parses"))
        .expect("applies");
    assert_eq!(snapshot(&again), snapshot(&g));
}

#[test]
fn hwloc_one_and_two_describe_the_inside_of_a_host() {
    let mut g = LandscapeGraph::new();
    // hwloc 1.11 (Landscaper's machine-A): the same objects Landscaper's graph has for it.
    import(
        ImportFormat::Hwloc,
        &data("landscaper/machine-A_hwloc.xml"),
        &mut g,
        1,
    );
    let inside = g
        .subgraph("machine-A", Walk::Down, 20, &[Relation::Contains], 1)
        .expect("host");
    let count = |ty: &str| inside.nodes.iter().filter(|n| n.node_type == ty).count();
    let landscaper: serde_json::Value =
        serde_json::from_str(&data("landscaper/test_landscape.json")).expect("json");
    let theirs = |ty: &str| {
        landscaper["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["allocation"] == "machine-A" && n["type"] == ty)
            .count()
    };
    for (ours, their) in [
        ("pu", "pu"),
        ("core", "core"),
        ("cache", "cache"),
        ("package", "package"),
        ("bridge", "bridge"),
    ] {
        assert_eq!(count(ours), theirs(their), "{ours}");
    }
    assert_eq!(count("pu"), 8);
    // Every object has one path up to the host: containment is a tree here.
    let pu = inside
        .nodes
        .iter()
        .find(|n| n.node_type == "pu")
        .expect("a PU");
    let up = g
        .subgraph(&pu.id, Walk::Up, 20, &[Relation::Contains], 1)
        .expect("pu");
    assert!(up.nodes.iter().any(|n| n.id == "machine-A"));

    // hwloc 2.x of a 2-core VM, for a host named on the command line.
    let options = ImportOptions {
        at_ms: 1,
        host: Some("vm-1".into()),
    };
    let events = formats::import_events(
        ImportFormat::Hwloc,
        &data("hwloc/vm-2core-hwloc2.xml"),
        &g,
        &options,
    )
    .expect("parses");
    g.apply_all(&events).expect("applies");
    let vm = g.subgraph("vm-1", Walk::Down, 20, &[], 1).expect("host");
    let types: Vec<&str> = vm.nodes.iter().map(|n| n.node_type.as_str()).collect();
    for ty in ["package", "numa_node", "cache", "core", "pu", "nic", "disk"] {
        assert!(types.contains(&ty), "{ty} missing from {types:?}");
    }
    assert_eq!(types.iter().filter(|t| **t == "pu").count(), 2);
    let nic = vm.nodes.iter().find(|n| n.node_type == "nic").expect("nic");
    assert_eq!(nic.name, "eth0");
    assert_eq!(nic.category, Category::Network);
    let l3 = vm
        .nodes
        .iter()
        .find(|n| n.attributes.get("level") == Some(&"L3".into()));
    assert_eq!(l3.expect("an L3").attributes["cache_size"], "33554432");
}

#[test]
fn kubernetes_listing_builds_and_reconciles_the_virtual_and_service_layers() {
    let text = data("kubernetes/cluster.json");
    let mut g = LandscapeGraph::new();
    import(ImportFormat::Kubernetes, &text, &mut g, 1_000);
    let summary = g.summary(1_000);
    assert_eq!(summary.nodes[&Layer::Physical]["host"], 3);
    assert_eq!(summary.nodes[&Layer::Virtual]["pod"], 7);
    assert_eq!(summary.nodes[&Layer::Service]["deployment"], 2);
    assert_eq!(summary.nodes[&Layer::Service]["service"], 3);
    // 6 scheduled pods run on nodes; the pending one does not.
    assert_eq!(summary.edges[&Relation::RunsOn], 6);
    // A node's addresses resolve to it.
    assert_eq!(g.get("10.0.0.11").expect("alias").id, "worker-1");
    let worker1 = g.view(g.resolve("worker-1").expect("node"), 1_000);
    assert_eq!(worker1.attributes["cores"], 8.0);
    assert_eq!(worker1.attributes["memory_bytes"], 32863176u64 * 1024);
    // pod → replica set → deployment, and the service that selects it.
    let pod = "shop/frontend-7d9c5b8f4-a0q0";
    let groups: Vec<String> = g
        .subgraph(pod, Walk::Down, 3, &[Relation::MemberOf], 1_000)
        .expect("pod")
        .nodes
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(
        groups,
        [
            pod,
            "shop/replicaset/frontend-7d9c5b8f4",
            "shop/service/frontend",
            "shop/deployment/frontend"
        ]
    );
    let requests = g.view(g.resolve(pod).expect("pod"), 1_000).attributes;
    assert!((requests["cpu_request"].as_f64().expect("cpu") - 0.3).abs() < 1e-9);
    // A later listing without a pod, and with another pod moved: it is gone, it moved.
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let items = doc["items"].as_array_mut().expect("items");
    items.retain(|i| i["metadata"]["name"] != "debug");
    for item in items.iter_mut() {
        if item["metadata"]["name"] == "frontend-7d9c5b8f4-a0q0" {
            item["spec"]["nodeName"] = "worker-3".into();
        }
    }
    import(ImportFormat::Kubernetes, &doc.to_string(), &mut g, 2_000);
    assert!(g.node_at("default/debug", 2_000).is_err());
    assert!(
        g.node_at("default/debug", 1_500).is_ok(),
        "still in the past"
    );
    let host_of = |t| {
        g.neighbours(pod, Some(Relation::RunsOn), Walk::Down, t)
            .expect("pod")
            .into_iter()
            .map(|(_, n)| n.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(host_of(1_500), ["worker-1"]);
    assert_eq!(host_of(2_000), ["worker-3"]);
    // Importing the same listing again changes nothing.
    let before = snapshot(&g);
    import(ImportFormat::Kubernetes, &doc.to_string(), &mut g, 2_000);
    assert_eq!(snapshot(&g), before);
}

#[test]
fn nezha_call_graphs_become_weighted_calls_and_placements() {
    let mut g = LandscapeGraph::new();
    import(
        ImportFormat::Calls,
        &data("nezha/online-boutique/dependency.csv"),
        &mut g,
        1,
    );
    let summary = g.summary(1);
    // 26 rows: service → service calls, and service → node IP placements.
    let calls = summary.edges[&Relation::Calls];
    let placed = summary.edges[&Relation::RunsOn];
    assert_eq!(calls + placed, 26);
    assert!(
        calls >= 14 && placed >= 10,
        "{calls} calls, {placed} placements"
    );
    let callees: Vec<String> = g
        .neighbours("frontend", Some(Relation::Calls), Walk::Down, 1)
        .expect("frontend")
        .into_iter()
        .map(|(_, n)| n.id)
        .collect();
    assert!(
        callees.contains(&"checkoutservice".to_string()),
        "{callees:?}"
    );
    // Train Ticket's span counts are weights.
    let mut tt = LandscapeGraph::new();
    import(
        ImportFormat::Calls,
        &data("nezha/train-ticket/call_graph.csv"),
        &mut tt,
        1,
    );
    let (edge, _) = tt
        .neighbours("ts-basic-service", Some(Relation::Calls), Walk::Down, 1)
        .expect("service")
        .into_iter()
        .find(|(_, n)| n.id == "ts-station-service")
        .expect("the call");
    assert_eq!(edge.weight, Some(4228.0));
    // Bad rows are named.
    let err = formats::import_events(
        ImportFormat::Calls,
        "Source,Target,Weight\na,b,lots\n",
        &tt,
        &ImportOptions::default(),
    )
    .expect_err("bad weight")
    .to_string();
    assert!(err.contains("line 2") && err.contains("Weight"), "{err}");
}

#[test]
fn bad_files_are_named_precisely() {
    let g = LandscapeGraph::new();
    let options = ImportOptions::default();
    for (format, text, expected) in [
        (
            ImportFormat::Networkx,
            "{\"nodes\": 3}",
            "`nodes` is missing or not a list",
        ),
        (
            ImportFormat::Networkx,
            r#"{"nodes":[{"id":"a","layer":"cloud","category":"compute","type":"x"}]}"#,
            "nodes[0]: `layer` \"cloud\"",
        ),
        (
            ImportFormat::Networkx,
            r#"{"nodes":[{"id":"a","layer":"physical","category":"compute","type":"host"}],"links":[{"source":0,"target":7,"label":"INTERNAL"}]}"#,
            "links[0]: `target` 7",
        ),
        (
            ImportFormat::Networkx,
            r#"{"nodes":[{"id":"a","layer":"physical","category":"compute","type":"host"},{"id":"b","layer":"physical","category":"compute","type":"host"}],"links":[{"source":0,"target":1,"label":"LIKES"}]}"#,
            "label \"LIKES\"",
        ),
        (
            ImportFormat::Hwloc,
            "<topology><object type=\"Machine\"/>",
            "not XML",
        ),
        (
            ImportFormat::Hwloc,
            "<topology><object type=\"Machine\"/></topology>",
            "--host",
        ),
        (
            ImportFormat::Kubernetes,
            r#"{"items":[{"kind":"Pod","metadata":{}}]}"#,
            "items[0] (Pod): `metadata.name` is missing",
        ),
        (
            ImportFormat::Events,
            "{\"kind\":\"node_up\",\"timestamp_ms\":1}\n",
            "line 1: missing field `node`",
        ),
    ] {
        let err = formats::import_events(format, text, &g, &options)
            .expect_err(text)
            .to_string();
        assert!(err.contains(expected), "{text}: {err}");
    }
}
