//! `dcpilot landscape` as an operator runs it: imports from every loader into one data
//! directory (including this machine's own `lstopo --of xml` and objects Debian's
//! `kubectl` prints), the questions, exports, and bad input refused with exit status 2,
//! a message naming the place, and the stored landscape untouched.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::dcpilot;

fn data(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
        .display()
        .to_string()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = dcpilot(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["landscape", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &all)).expect("JSON output")
}

/// A tool from Debian's packages, which `scripts/setup.sh` installs.
fn tool(name: &str, package: &str) -> PathBuf {
    let paths = [format!("/usr/bin/{name}"), format!("/usr/local/bin/{name}")];
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    common::required_tool(&paths, package)
}

#[test]
fn one_landscape_from_every_loader_answers_questions_and_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let file = d.join("landscape/graph.json");
    let import = |format: &str, path: &str, at: &str, extra: &[&str]| {
        let mut args = vec!["landscape", "import", "--format", format, path, "--at", at];
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    let out = import("kubernetes", &data("kubernetes/cluster.json"), "1000", &[]);
    assert!(out.contains("17 new nodes"), "{out}");
    import(
        "hwloc",
        &data("hwloc/vm-2core-hwloc2.xml"),
        "2000",
        &["--host", "worker-1"],
    );
    import(
        "calls",
        &data("nezha/online-boutique/dependency.csv"),
        "3000",
        &[],
    );
    // The Nezha names resolve to the Kubernetes services of the same name.
    let calls = json(
        d,
        &[
            "subgraph",
            "shop/service/frontend",
            "--relation",
            "calls",
            "--depth",
            "1",
            "--at",
            "3000",
        ],
    );
    let callees: Vec<&str> = calls["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["target"].as_str().expect("target"))
        .collect();
    assert!(callees.contains(&"shop/service/cartservice"), "{callees:?}");

    // What fails with worker-1: its cores, the pods on it, their groups, their callers.
    let blast = json(d, &["blast", "10.0.0.11", "--at", "3000"]);
    let affected: Vec<&str> = blast["affected"]
        .as_array()
        .expect("affected")
        .iter()
        .map(|a| a["node"]["id"].as_str().expect("id"))
        .collect();
    for id in [
        "worker-1/core:0",
        "shop/frontend-7d9c5b8f4-a0q0",
        "shop/service/frontend",
        "shop/deployment/cartservice",
    ] {
        assert!(affected.contains(&id), "{id} not in {affected:?}");
    }
    assert!(!affected.contains(&"worker-2"));

    let paths = json(d, &["path", "worker-1/pu:0", "worker-2", "--at", "3000"]);
    let first: Vec<&str> = paths["paths"][0]
        .as_array()
        .expect("a path")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(first.first(), Some(&"worker-1/pu:0"));
    assert_eq!(first.last(), Some(&"worker-2"));

    // History: before the hwloc import, worker-1 had nothing inside it.
    let before = json(d, &["subgraph", "worker-1", "--at", "1500"]);
    assert_eq!(before["nodes"].as_array().map(Vec::len), Some(1));
    let diff = json(d, &["diff", "1500", "2500"]);
    assert_eq!(diff["nodes_added"].as_array().map(Vec::len), Some(18));

    // Bad input: refused, named, nothing stored.
    let stored = std::fs::read(&file).expect("stored");
    let bad = d.join("bad.ndjson");
    std::fs::write(
        &bad,
        concat!(
            r#"{"kind":"node_up","timestamp_ms":4000,"node":{"id":"rack-9","layer":"physical","category":"compute","type":"rack"}}"#,
            "\n",
            r#"{"kind":"edge_up","timestamp_ms":4000,"edge":{"source":"rack-9","target":"ghost","relation":"contains"}}"#,
            "\n"
        ),
    )
    .expect("write");
    for (args, expected) in [
        (
            vec![
                "landscape",
                "import",
                "--format",
                "events",
                bad.to_str().expect("path"),
            ],
            "events[1] (edge_up): unknown node \"ghost\"; nothing was imported",
        ),
        (
            vec!["landscape", "import", "--format", "yaml", "x"],
            "--format \"yaml\": not one of networkx, kubernetes, hwloc, calls, events",
        ),
        (
            vec!["landscape", "subgraph", "nowhere"],
            "unknown node \"nowhere\"",
        ),
        (
            vec!["landscape", "show", "--at", "yesterday"],
            "--at \"yesterday\"",
        ),
    ] {
        let out = dcpilot(d, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(std::fs::read(&file).expect("stored"), stored, "unchanged");

    // Exports: DOT for Graphviz, node-link JSON that reads back to the same landscape.
    let dot = ok(
        d,
        &["landscape", "export", "--format", "dot", "--at", "3000"],
    );
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert!(dot.contains("label = \"runs_on\""));
    let nx = d.join("export.json");
    ok(
        d,
        &[
            "landscape",
            "export",
            "--format",
            "networkx",
            "-o",
            nx.to_str().expect("path"),
        ],
    );
    let summary = |args: &[&str]| json(d, args);
    let from_file = summary(&["--file", nx.to_str().expect("path"), "show", "--at", "3000"]);
    assert_eq!(from_file, summary(&["show", "--at", "3000"]));
}

#[test]
fn this_machines_lstopo_output_imports() {
    let lstopo = tool("lstopo", "hwloc");
    let dir = tempfile::tempdir().expect("tmp");
    let xml = dir.path().join("here.xml");
    let status = Command::new(lstopo)
        .args(["--of", "xml", xml.to_str().expect("path")])
        .status()
        .expect("lstopo runs");
    assert!(status.success());
    let out = ok(
        dir.path(),
        &[
            "landscape",
            "import",
            "--format",
            "hwloc",
            xml.to_str().expect("path"),
            "--host",
            "here",
        ],
    );
    assert!(out.contains("new nodes"), "{out}");
    let view = json(dir.path(), &["subgraph", "here", "--depth", "20"]);
    let pus = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["type"] == "pu")
        .count();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(pus >= cpus, "{pus} PUs for {cpus} CPUs");
}

#[test]
fn objects_as_kubectl_prints_them_import() {
    let kubectl = tool("kubectl", "kubernetes-client");
    let dir = tempfile::tempdir().expect("tmp");
    // `--dry-run=client` prints the objects without a cluster.
    let print = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(&kubectl)
            .args(args)
            .args(["--dry-run=client", "-o", "json"])
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("kubectl prints JSON")
    };
    let deployment = print(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    let service = print(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    // A pod of the deployment as its replica set makes it: kubectl's pod template, named,
    // with the node the scheduler bound it to.
    let template = &deployment["spec"]["template"];
    let mut pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": template["metadata"], "spec": template["spec"],
    });
    pod["metadata"]["name"] = "web-1".into();
    pod["spec"]["nodeName"] = "node-a".into();
    let node = serde_json::json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}}
    });
    let list = serde_json::json!({
        "apiVersion": "v1", "kind": "List",
        "items": [node, deployment, service, pod],
    });
    let file = dir.path().join("list.json");
    std::fs::write(&file, list.to_string()).expect("write");
    ok(
        dir.path(),
        &[
            "landscape",
            "import",
            "--format",
            "kubernetes",
            file.to_str().expect("path"),
        ],
    );
    let members = json(
        dir.path(),
        &[
            "subgraph",
            "default/service/web",
            "--walk",
            "up",
            "--depth",
            "1",
        ],
    );
    let ids: Vec<&str> = members["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        ["default/service/web", "default/web-1"],
        "selector app=web"
    );
    let host = json(dir.path(), &["show", "node-a"]);
    assert_eq!(host["attributes"]["memory_bytes"], 8u64 << 30);
}

#[test]
fn a_node_shows_its_telemetry_by_any_of_its_names() {
    use dcpilot_background::{BackgroundConfig, OpenMode, TelemetryStore};
    use dcpilot_schemas::decode::SampleSink;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(
        d,
        &[
            "landscape",
            "import",
            "--format",
            "kubernetes",
            &data("kubernetes/cluster.json"),
        ],
    );
    // Samples that name worker-1 by its IP (entity), by its name (host), and one of another
    // node; stored in the data directory's tables as the background stores them.
    let now = 1_764_000_000_000i64;
    let sample = |t: i64, entity: &str, host: Option<&str>, metric: &str, value: f64| {
        dcpilot_schemas::TelemetrySample {
            timestamp_ms: t,
            entity: entity.into(),
            host: host.map(str::to_string),
            workload: None,
            metric: metric.into(),
            value,
            labels: Default::default(),
        }
    };
    let samples = [
        sample(now - 120_000, "10.0.0.11", None, "cpu_util", 0.40),
        sample(now - 60_000, "10.0.0.11", None, "cpu_util", 0.60),
        sample(now, "10.0.0.11", None, "cpu_util", 0.80),
        sample(
            now,
            "shop/frontend-7d9c5b8f4-a0q0",
            Some("worker-1"),
            "p99_ms",
            12.0,
        ),
        sample(now, "worker-2", None, "cpu_util", 0.99),
    ];
    {
        let config = BackgroundConfig::default();
        let store =
            TelemetryStore::open(Some(d), &config.store, OpenMode::ReadWrite).expect("tables");
        let mut batch = dcpilot_schemas::TelemetryBatchBuilder::with_capacity(8);
        for s in &samples {
            batch.push(&s.as_ref());
        }
        store.telemetry.insert(&batch.finish()).expect("insert");
    }
    let shown = json(d, &["show", "worker-1", "--telemetry", "--window", "90"]);
    assert_eq!(shown["node"]["id"], "worker-1");
    let metrics = shown["telemetry"].as_array().expect("telemetry");
    assert_eq!(metrics.len(), 2, "{metrics:?}");
    let cpu = metrics
        .iter()
        .find(|m| m["metric"] == "cpu_util")
        .expect("cpu");
    assert_eq!(cpu["entity"], "10.0.0.11");
    assert_eq!(cpu["latest"], 0.8);
    assert_eq!(cpu["samples"], 2, "the 90 s window holds two of the three");
    assert!((cpu["mean"].as_f64().expect("mean") - 0.7).abs() < 1e-9);
    assert!(metrics.iter().any(|m| m["metric"] == "p99_ms"));
    // An alias finds the same node and the same telemetry.
    let by_ip = json(d, &["show", "10.0.0.11", "--telemetry", "--window", "90"]);
    assert_eq!(by_ip["telemetry"], shown["telemetry"]);
}
