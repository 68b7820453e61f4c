//! A foreground replica following the brokers: landscape events and model versions
//! published to `dcpilot.landscape` and `dcpilot.models` reach its answers, and a new
//! version replaces the old one without a restart.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{eventually, http, send_json, start_following_foreground};
use dcpilot_background::EmbeddedBroker;
use dcpilot_info_core::replication::{KafkaSink, MODELS_TOPIC};
use dcpilot_info_core::{
    HoldoutMetrics, InfoCore, Lineage, MemoryStorage, Model, ModelDraft, QuantileTable,
    TrainingWindow,
};

const LANDSCAPE: &str = "dcpilot.landscape";
const TELEMETRY: &str = "dcpilot.telemetry";

/// A rightsizing table saying `web` needs `cores` at p90.
fn rightsizing(cores: f64) -> ModelDraft {
    ModelDraft {
        name: "rightsizing".into(),
        features: vec!["cores".into()],
        target: "cores".into(),
        window: TrainingWindow {
            start_ms: 0,
            end_ms: 1,
        },
        rows: 10,
        metrics: HoldoutMetrics {
            metric: "mape".into(),
            model_error: 0.1,
            baseline_error: 0.5,
            baseline: "last".into(),
        },
        lineage: Lineage::of_job("rightsizing", "00000000"),
        model: Model::QuantileTable(QuantileTable {
            quantiles: vec![0.9],
            rows: BTreeMap::from([(
                "web".to_string(),
                BTreeMap::from([("cores".to_string(), vec![cores])]),
            )]),
        }),
    }
}

#[test]
fn a_following_replica_serves_published_landscape_and_models() {
    let broker =
        EmbeddedBroker::start(&[LANDSCAPE, MODELS_TOPIC, TELEMETRY], 1, None).expect("broker");
    let brokers = broker.bootstrap_servers();
    // The leader: an Information Core that publishes every change to the models topic.
    let leader = InfoCore::open(Arc::new(MemoryStorage::default()), 5).expect("leader");
    leader.set_change_sink(Arc::new(
        KafkaSink::new(&brokers, MODELS_TOPIC).expect("sink"),
    ));
    leader.publish(rightsizing(3.0)).expect("v1");
    send_json(
        &brokers,
        LANDSCAPE,
        &[
            serde_json::json!({"kind": "host_up", "timestamp_ms": 1, "host": "a", "cores": 8.0, "memory_bytes": 1u64 << 34}),
            serde_json::json!({"kind": "host_up", "timestamp_ms": 1, "host": "b", "cores": 8.0, "memory_bytes": 1u64 << 34}),
            serde_json::json!({"kind": "instance_placed", "timestamp_ms": 2, "instance": "x", "workload": "batch",
                               "host": "a", "cpu_request": 6.0, "memory_request_bytes": 1u64 << 30}),
            serde_json::json!({"kind": "not_an_event"}),
        ],
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (_child, addr) = start_following_foreground(dir.path(), &brokers);
    let request = r#"{"workload":"web","cores":1,"memory_bytes":1}"#;
    {
        let answer = eventually(30, "landscape and model v1", || {
            let (status, a) = http(&addr, "POST", "/v1/placements", request);
            (status == 200 && a["models"]["rightsizing"] == 1).then_some(a)
        });
        // Sized by the table (3 cores), placed on the host the events left free.
        assert_eq!(answer["choices"][0]["host"], "b", "{answer}");
        assert!(answer["choices"][0]["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("placing 3.00") && e.contains("rightsizing")));
        assert_eq!(answer["candidates_total"], 2);

        // A new version reaches the replica without a restart.
        leader.publish(rightsizing(7.0)).expect("v2");
        let answer = eventually(30, "model v2", || {
            let (_, a) = http(&addr, "POST", "/v1/placements", request);
            (a["models"]["rightsizing"] == 2).then_some(a)
        });
        assert!(answer["choices"][0]["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("placing 7.00")));
        // A follower does not roll back locally: that is the leader's job.
        let (status, body) = http(
            &addr,
            "POST",
            "/v1/models/rightsizing/rollback",
            r#"{"version":1,"reason":"test"}"#,
        );
        assert_eq!(status, 409, "{body}");

        // Host telemetry: "b" measures 7.5 busy cores though nothing there requested any,
        // so a 1-core workload now goes to "a" (2 cores free by requests).
        let other = r#"{"workload":"other","cores":1,"memory_bytes":1}"#;
        let (_, a) = http(&addr, "POST", "/v1/placements", other);
        assert_eq!(a["choices"][0]["host"], "b", "{a}");
        let now = 1_750_000_000_000i64;
        send_json(
            &brokers,
            TELEMETRY,
            &[serde_json::json!([
                {"timestamp_ms": now, "entity": "b", "metric": "host_cpu_cores_used", "value": 7.5},
                {"timestamp_ms": now, "entity": "a", "metric": "something_else", "value": 99.0},
                {"timestamp_ms": now, "entity": "a", "metric": "pcm_mem_read_gbps", "value": 12.5}
            ])],
        );
        let answer = eventually(30, "measured utilization", || {
            let (_, a) = http(&addr, "POST", "/v1/placements", other);
            (a["choices"][0]["host"] == "a").then_some(a)
        });
        assert_eq!(answer["candidates_feasible"], 1, "{answer}");
        // A hardware counter from the same stream is the host's, shown with it.
        let (_, landscape) = http(&addr, "GET", "/v1/landscape", "");
        let a = landscape["hosts"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["name"] == "a"))
            .cloned()
            .expect("host a");
        assert_eq!(
            a["counters"],
            serde_json::json!({"pcm_mem_read_gbps": 12.5}),
            "{a}"
        );
    }
}

#[test]
fn late_replicas_build_the_same_landscape_graph_from_the_topic() {
    let broker =
        EmbeddedBroker::start(&[LANDSCAPE, MODELS_TOPIC, TELEMETRY], 1, None).expect("broker");
    let brokers = broker.bootstrap_servers();
    send_json(
        &brokers,
        LANDSCAPE,
        &[
            serde_json::json!({"kind": "host_up", "timestamp_ms": 1, "host": "a", "cores": 8.0, "memory_bytes": 1u64 << 34}),
            serde_json::json!({"kind": "node_up", "timestamp_ms": 1, "node": {"id": "rack-1", "layer": "physical", "category": "compute", "type": "rack"}}),
            serde_json::json!({"kind": "edge_up", "timestamp_ms": 1, "edge": {"source": "rack-1", "target": "a", "relation": "contains"}}),
            // A loop: refused by every replica, and the ones after it still apply.
            serde_json::json!({"kind": "edge_up", "timestamp_ms": 2, "edge": {"source": "a", "target": "rack-1", "relation": "contains"}}),
            serde_json::json!({"kind": "instance_placed", "timestamp_ms": 3, "instance": "x", "workload": "batch",
                               "host": "a", "cpu_request": 1.0, "memory_request_bytes": 1}),
        ],
    );
    let first_dir = tempfile::tempdir().expect("tempdir");
    let (_first, first) = start_following_foreground(first_dir.path(), &brokers);
    let blast = eventually(30, "the graph on the first replica", || {
        let (status, b) = http(&first, "GET", "/v1/landscape/blast?id=rack-1&at=10", "");
        (status == 200 && b["affected"].as_array().is_some_and(|a| a.len() == 3)).then_some(b)
    });
    assert_eq!(blast["affected"][0]["node"]["id"], "a", "{blast}");
    // Later: the instance goes away. History keeps it.
    send_json(
        &brokers,
        LANDSCAPE,
        &[
            serde_json::json!({"kind": "instance_removed", "timestamp_ms": 20, "instance": "x", "host": "a"}),
        ],
    );
    eventually(30, "the removal", || {
        let (status, _) = http(&first, "GET", "/v1/landscape/node?id=x&at=25", "");
        (status == 404).then_some(())
    });
    let (status, _) = http(&first, "GET", "/v1/landscape/node?id=x&at=10", "");
    assert_eq!(status, 200, "x was there at 10");
    // A Kubernetes listing, sent on the topic as kubectl prints it: read against the graph
    // it changes, by every replica alike.
    let listing: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/kubernetes/cluster.json"
        ))
        .expect("fixture"),
    )
    .expect("JSON");
    send_json(&brokers, LANDSCAPE, &[listing]);
    let pod = eventually(30, "the listing's pods", || {
        let (status, b) = http(
            &first,
            "GET",
            "/v1/landscape/node?id=shop/frontend-7d9c5b8f4-a0q0",
            "",
        );
        (status == 200).then_some(b)
    });
    assert_eq!(pod["node"]["type"], "pod", "{pod}");

    // A replica that starts now reads the whole topic and builds the same graph.
    let late_dir = tempfile::tempdir().expect("tempdir");
    let (_late, late) = start_following_foreground(late_dir.path(), &brokers);
    let (_, expected) = http(&first, "GET", "/v1/landscape/export", "");
    eventually(30, "the late replica to catch up", || {
        let (_, got) = http(&late, "GET", "/v1/landscape/export", "");
        (got == expected).then_some(())
    });
    let (_, diff) = http(&late, "GET", "/v1/landscape/diff?from=10&to=25", "");
    assert_eq!(diff["nodes_removed"][0]["id"], "x", "{diff}");
}
