//! A full tick of the intent loop across processes: the landscape and the workload's
//! telemetry arrive on their topics, a following foreground with the autopilot on judges
//! the intent violated, and its plan arrives on `dcpilot.actions` as the JSON its schema
//! describes; the intent's status says what it saw and did.

mod common;

use std::time::Duration;

use common::{dcpilot_command, eventually, http, send_json, wait_for_file, KillOnDrop};
use dcpilot_background::EmbeddedBroker;
use dcpilot_foreground::autopilot::actuate::ActionMessage;
use dcpilot_foreground::autopilot::{Action, ObjectiveState};
use dcpilot_info_core::replication::MODELS_TOPIC;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::json;

const LANDSCAPE: &str = "dcpilot.landscape";
const TELEMETRY: &str = "dcpilot.telemetry";
const ACTIONS: &str = "dcpilot.actions";

#[test]
fn telemetry_on_the_topic_becomes_a_plan_on_the_actions_topic() {
    let broker = EmbeddedBroker::start(&[LANDSCAPE, MODELS_TOPIC, TELEMETRY, ACTIONS], 1, None)
        .expect("broker");
    let brokers = broker.bootstrap_servers();
    send_json(
        &brokers,
        LANDSCAPE,
        &[
            json!({"kind": "host_up", "timestamp_ms": 1, "host": "a", "cores": 8.0, "memory_bytes": 1u64 << 34}),
            json!({"kind": "host_up", "timestamp_ms": 1, "host": "b", "cores": 8.0, "memory_bytes": 1u64 << 34}),
            json!({"kind": "instance_placed", "timestamp_ms": 2, "instance": "nginx-1", "workload": "nginx",
                   "host": "a", "cpu_request": 1.0, "memory_request_bytes": 1u64 << 28}),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let _foreground = KillOnDrop(
        dcpilot_command(
            dir.path(),
            &[
                "foreground",
                "--listen",
                "127.0.0.1:0",
                "--brokers",
                &brokers,
            ],
        )
        .env("DCPILOT__FOREGROUND__AUTOPILOT__ENABLED", "true")
        .env("DCPILOT__FOREGROUND__AUTOPILOT__TICK_SECS", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the foreground"),
    );
    let addr = wait_for_file(&dir.path().join("foreground.addr"));
    let intent = r#"{"kind": "WorkloadIntent", "workload": "nginx", "p99_latency_ms": 1.0, "quiet_p99_ms": 0.3}"#;
    let (status, body) = http(&addr, "PUT", "/v1/intents", intent);
    assert_eq!(status, 200, "{body}");
    // Its telemetry says 2.5 ms at 1,500 requests/s, now.
    let now = dcpilot_info_core::now_ms();
    send_json(
        &brokers,
        TELEMETRY,
        &[json!([
            {"timestamp_ms": now, "entity": "nginx-1", "workload": "nginx", "metric": "p99_latency_ms", "value": 2.5},
            {"timestamp_ms": now, "entity": "nginx-1", "workload": "nginx", "metric": "rps", "value": 1500.0}
        ])],
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "autopilot-e2e")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[ACTIONS]).expect("subscribe");
    let plan: ActionMessage = eventually(60, "a plan on dcpilot.actions", || {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                assert_eq!(m.key(), Some(&b"nginx"[..]), "keyed by target");
                Some(
                    serde_json::from_slice(m.payload().unwrap_or_default())
                        .expect("an ActionMessage"),
                )
            }
            _ => None,
        }
    });
    assert_eq!(plan.target, "nginx");
    assert_eq!(plan.state, ObjectiveState::Violated);
    assert_eq!(plan.p99_ms.map(|r| r.value), Some(2.5));
    assert!(plan.replicas() > 1, "{plan:?}");
    assert!(
        plan.actions
            .iter()
            .all(|a| matches!(a, Action::ScaleOut { .. })),
        "{plan:?}"
    );
    let (_, status) = http(&addr, "GET", "/v1/intents/nginx/status", "");
    assert_eq!(status["state"], "violated", "{status}");
    assert_eq!(
        status["last_plan"]["message"]["plan_id"], plan.plan_id,
        "{status}"
    );
    assert_eq!(
        status["last_plan"]["applied_by"],
        json!(["kafka"]),
        "{status}"
    );
    let (_, metrics) = common::http_text(&addr, "/metrics");
    assert!(
        metrics.contains("dcpilot_autopilot_plans_total{mode=\"applied\"} "),
        "{metrics}"
    );
    assert!(
        metrics.contains("dcpilot_autopilot_objectives{state=\"violated\"} 1"),
        "{metrics}"
    );
}
