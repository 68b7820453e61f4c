//! The live intent loop inside a foreground: telemetry in, a tick, the plan to the
//! actuators, the status and plans over HTTP, the outcome after the settle time; bad
//! input (a target with no replicas, no telemetry, garbage telemetry) reported, never a
//! crash. And the actuators' output against its JSON Schema, the Kubernetes API types
//! and the real kubectl.

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use common::*;
use dcpilot_foreground::autopilot::actuate::{
    kubernetes_requests, ActionMessage, ActuateError, Actuator, KubectlActuator,
};
use dcpilot_foreground::autopilot::live::AutopilotLoop;
use dcpilot_foreground::autopilot::{Action, AutopilotConfig, ObjectiveState};
use dcpilot_foreground::{Foreground, ForegroundConfig, Instance};
use dcpilot_schemas::TelemetrySample;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";

/// Remembers what it was handed.
#[derive(Clone, Default)]
struct Recorder {
    plans: Arc<Mutex<Vec<ActionMessage>>>,
    outcomes: Arc<Mutex<Vec<TelemetrySample>>>,
}

impl Actuator for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn apply(&mut self, message: &ActionMessage) -> Result<(), ActuateError> {
        self.plans.lock().expect("lock").push(message.clone());
        Ok(())
    }
    fn record_outcome(&mut self, samples: &[TelemetrySample]) -> Result<(), ActuateError> {
        self.outcomes
            .lock()
            .expect("lock")
            .extend_from_slice(samples);
        Ok(())
    }
}

/// Always fails, as an API server that is away.
struct Broken;

impl Actuator for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn apply(&mut self, _: &ActionMessage) -> Result<(), ActuateError> {
        Err(ActuateError {
            actuator: "broken",
            message: "the API server is away".into(),
            retryable: true,
        })
    }
}

fn autopilot_config() -> AutopilotConfig {
    AutopilotConfig {
        enabled: true,
        max_replicas: 4,
        settle_secs: 60,
        ..AutopilotConfig::default()
    }
}

/// The two-host landscape (an L3 hog on "noisy") with one nginx replica on "noisy", and
/// an intent: nginx's p99 within 1 ms, 0.3 ms when quiet.
fn foreground() -> (Router, Arc<Foreground>) {
    let config = ForegroundConfig {
        auth_token: Some(TOKEN.into()),
        autopilot: autopilot_config(),
        ..ForegroundConfig::default()
    };
    let mut landscape = landscape();
    landscape
        .upsert(Instance::new("nginx-1", "nginx", "noisy", 1.0, 1 << 20))
        .expect("replica");
    let fg = Foreground::new(config, Arc::new(core_with(Vec::new())), landscape, false);
    let intents = [
        json!({"kind": "WorkloadIntent", "workload": "nginx", "p99_latency_ms": 1.0, "quiet_p99_ms": 0.3}),
        json!({"kind": "WorkloadIntent", "workload": "ghost", "p99_latency_ms": 5.0}),
    ];
    fg.put_intents(&Value::Array(intents.to_vec()).to_string())
        .expect("intents");
    (fg.router(), fg)
}

fn telemetry(at_ms: i64, p99: f64) -> String {
    json!([
        {"timestamp_ms": at_ms, "entity": "nginx-1", "workload": "nginx", "metric": "p99_latency_ms", "value": p99},
        {"timestamp_ms": at_ms, "entity": "nginx-1", "workload": "nginx", "metric": "rps", "value": 1500.0}
    ])
    .to_string()
}

async fn call(app: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_violated_objective_gets_a_plan_its_status_and_its_outcome() {
    let (app, fg) = foreground();
    // Planned 70 s ago, judged 61 s later: every sample is in the past.
    let now = dcpilot_info_core::now_ms() - 70_000;
    // Before any telemetry or tick: no data, and the status says why.
    let (status, body) = call(&app, Method::GET, "/v1/intents/nginx/status", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "no_data", "{body}");

    let (status, body) = call(&app, Method::POST, "/v1/telemetry", &telemetry(now, 2.4)).await;
    assert_eq!(
        (status, body["samples"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );
    let recorder = Recorder::default();
    let mut intent_loop = AutopilotLoop::new(
        autopilot_config(),
        vec![Box::new(recorder.clone()), Box::new(Broken)],
    );
    let decisions = fg.autopilot_tick(&mut intent_loop, now);
    assert_eq!(decisions.len(), 2, "both intents judged");

    // nginx: seen 2.4 ms, 8x its quiet p99 and nothing known explains it: more replicas.
    let nginx = decisions
        .iter()
        .find(|d| d.target == "nginx")
        .expect("nginx");
    assert_eq!(nginx.state, ObjectiveState::Violated);
    let plans = recorder.plans.lock().expect("lock").clone();
    assert_eq!(plans.len(), 1, "{plans:?}");
    let plan = &plans[0];
    assert!(plan.replicas() > 1, "{plan:?}");
    assert!(plan
        .actions
        .iter()
        .all(|a| matches!(a, Action::ScaleOut { .. })));
    assert_eq!(plan.p99_ms.map(|r| r.value), Some(2.4));
    assert!(!plan.dry_run);
    // The ghost's target runs nowhere: said, no plan, no crash.
    let ghost = decisions
        .iter()
        .find(|d| d.target == "ghost")
        .expect("ghost");
    assert!(ghost.plan.is_none());
    assert!(ghost.reason.contains("no replicas"), "{}", ghost.reason);

    let (_, body) = call(&app, Method::GET, "/v1/intents/nginx/status", "").await;
    assert_eq!(body["state"], "violated", "{body}");
    assert_eq!(body["objective_p99_ms"], 1.0);
    assert!(
        body["p99_age_secs"].as_f64().is_some_and(|a| a < 60.0),
        "{body}"
    );
    assert_eq!(
        body["last_plan"]["applied_by"],
        json!(["recorder"]),
        "{body}"
    );
    assert!(body["last_plan"]["failures"][0]
        .as_str()
        .is_some_and(|f| f.contains("API server is away")));
    let (_, body) = call(&app, Method::GET, "/v1/intents/ghost/status", "").await;
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no replicas")),
        "{body}"
    );
    let (status, body) = call(&app, Method::GET, "/v1/intents/nobody/status", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Cooling down: the next tick, still violated but acted on a moment ago, plans no more
    // than it must; a minute later the outcome is judged on the newest p99.
    let later = now + 61_000;
    call(&app, Method::POST, "/v1/telemetry", &telemetry(later, 0.4)).await;
    fg.autopilot_tick(&mut intent_loop, later);
    let (_, body) = call(&app, Method::GET, "/v1/plans", "").await;
    let outcome = &body["plans"]
        .as_array()
        .and_then(|p| p.last())
        .expect("a plan")["outcome"];
    assert_eq!(outcome["p99_ms_before"], 2.4, "{body}");
    assert_eq!(outcome["p99_ms_after"], 0.4, "{body}");
    let (_, status) = call(&app, Method::GET, "/v1/intents/nginx/status", "").await;
    assert_eq!(
        status["last_plan"]["outcome"]["p99_ms_after"], 0.4,
        "{status}"
    );
    let outcomes = recorder.outcomes.lock().expect("lock").clone();
    assert_eq!(
        outcomes
            .iter()
            .map(|s| s.metric.as_str())
            .collect::<Vec<_>>(),
        [
            "autopilot_plan_p99_before_ms",
            "autopilot_plan_p99_after_ms"
        ]
    );
    assert_eq!(outcomes[1].labels["plan"], plan.plan_id);
    let (_, body) = call(&app, Method::GET, "/v1/autopilot", "").await;
    assert_eq!(body["targets"].as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test]
async fn stale_telemetry_is_no_data_and_bad_telemetry_is_refused() {
    let (app, fg) = foreground();
    let now = dcpilot_info_core::now_ms();
    call(
        &app,
        Method::POST,
        "/v1/telemetry",
        &telemetry(now - 3_600_000, 2.4),
    )
    .await;
    let recorder = Recorder::default();
    let mut intent_loop = AutopilotLoop::new(autopilot_config(), vec![Box::new(recorder.clone())]);
    let decisions = fg.autopilot_tick(&mut intent_loop, now);
    let nginx = decisions
        .iter()
        .find(|d| d.target == "nginx")
        .expect("nginx");
    assert_eq!(nginx.state, ObjectiveState::NoData);
    assert!(recorder.plans.lock().expect("lock").is_empty());

    let (status, body) = call(
        &app,
        Method::POST,
        "/v1/telemetry",
        r#"[{"timestamp_ms": 1700000000000, "entity": "x", "metric": "p99_latency_ms"}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("record 0") && e.contains("value")),
        "{body}"
    );
    // A p99 from the far future, or of zero, is not kept: it would pin the objective's
    // state or make every prediction zero.
    let bad = json!([
        {"timestamp_ms": now + 86_400_000, "entity": "nginx-1", "workload": "nginx", "metric": "p99_latency_ms", "value": 0.5},
        {"timestamp_ms": now, "entity": "nginx-1", "workload": "nginx", "metric": "p99_latency_ms", "value": 0.0}
    ]);
    let (status, body) = call(&app, Method::POST, "/v1/telemetry", &bad.to_string()).await;
    assert_eq!(
        (status, body["kept"].as_u64()),
        (StatusCode::OK, Some(0)),
        "{body}"
    );
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/telemetry")
        .body(Body::from(telemetry(now, 1.0)))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_dry_run_plans_and_reports_but_never_acts() {
    let (app, fg) = foreground();
    let now = dcpilot_info_core::now_ms();
    call(&app, Method::POST, "/v1/telemetry", &telemetry(now, 2.4)).await;
    let recorder = Recorder::default();
    let config = AutopilotConfig {
        dry_run: true,
        ..autopilot_config()
    };
    let mut intent_loop = AutopilotLoop::new(config, vec![Box::new(recorder.clone())]);
    fg.autopilot_tick(&mut intent_loop, now);
    fg.autopilot_tick(&mut intent_loop, now + 1000);
    let plans = recorder.plans.lock().expect("lock").clone();
    // Handed on marked dry_run (so orchestrators ignore it); no cool-down started, as
    // nothing was done: the next tick plans again.
    assert_eq!(plans.len(), 2, "{plans:?}");
    assert!(plans.iter().all(|p| p.dry_run));
}

fn message(actions: Vec<Action>, placement: &[(&str, u32)]) -> ActionMessage {
    ActionMessage {
        plan_id: "default/nginx@1700000000000".into(),
        created_ms: 1_700_000_000_000,
        target: "default/nginx".into(),
        objective_p99_ms: 1.0,
        state: ObjectiveState::Violated,
        p99_ms: None,
        rps: None,
        predicted_p99_ms_before: Some(2.0),
        predicted_p99_ms_after: Some(0.5),
        actions,
        placement: placement.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
        models: Default::default(),
        dry_run: false,
        reason: "planned".into(),
    }
}

#[test]
fn action_messages_follow_their_schema() {
    let schema = schemars::schema_for!(ActionMessage);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/json/action.schema.json"
    );
    let generated = serde_json::to_string_pretty(&schema).expect("schema") + "\n";
    if std::env::var_os("DCPILOT_UPDATE_SCHEMAS").is_some() {
        std::fs::write(path, &generated).expect("write the schema");
    }
    let stored = std::fs::read_to_string(path).expect("schemas/json/action.schema.json");
    assert_eq!(
        stored, generated,
        "stale: rerun with DCPILOT_UPDATE_SCHEMAS=1"
    );
    let validator = jsonschema::validator_for(&serde_json::from_str(&stored).expect("json"))
        .expect("a valid schema");
    let m = message(
        vec![Action::Move {
            from: "noisy".into(),
            to: "quiet".into(),
        }],
        &[("noisy", 0), ("quiet", 2)],
    );
    let value = serde_json::to_value(&m).expect("json");
    assert!(validator.is_valid(&value), "{value}");
    let mut bad = value.clone();
    bad["actions"][0]["action"] = json!("teleport");
    assert!(!validator.is_valid(&bad));
}

/// A Deployment as `kubectl get -o json` prints one.
const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "nginx", "namespace": "default"},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
    "template": {"metadata": {"labels": {"app": "nginx"}},
      "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}"#;

#[test]
fn kubernetes_requests_apply_with_the_real_kubectl_and_read_back_as_api_types() {
    use k8s_openapi::api::apps::v1::Deployment;
    let m = message(
        vec![
            Action::Move {
                from: "noisy".into(),
                to: "quiet".into(),
            },
            Action::ScaleOut {
                node: "quiet".into(),
            },
        ],
        &[("noisy", 0), ("quiet", 2)],
    );
    let requests = kubernetes_requests(&m);
    // The Scale is the API type itself, for PUT .../deployments/nginx/scale.
    let scale = serde_json::to_value(&requests.scale).expect("json");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["metadata"]["namespace"], "default");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deployment.json");
    std::fs::write(&file, DEPLOYMENT).expect("write");
    let mut deployment = DEPLOYMENT.to_string();
    for patch in std::iter::once(&requests.replicas_patch).chain(&requests.affinity_patch) {
        std::fs::write(&file, &deployment).expect("write");
        let out = std::process::Command::new("kubectl")
            .args(["patch", "--local", "--type", "merge", "-o", "json", "-f"])
            .arg(&file)
            .arg("-p")
            .arg(patch.to_string())
            .output()
            .expect("kubectl (package kubernetes-client; scripts/setup.sh installs it)");
        assert!(
            out.status.success(),
            "kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        deployment = String::from_utf8(out.stdout).expect("utf-8");
    }
    let patched: Deployment = serde_json::from_str(&deployment).expect("a Deployment");
    let spec = patched.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let affinity = spec
        .template
        .spec
        .expect("pod spec")
        .affinity
        .expect("affinity")
        .node_affinity
        .expect("node affinity");
    let terms = affinity
        .preferred_during_scheduling_ignored_during_execution
        .expect("preferred terms");
    let requirement = |i: usize| {
        terms[i]
            .preference
            .match_expressions
            .as_ref()
            .expect("expressions")[0]
            .clone()
    };
    assert_eq!(
        (requirement(0).operator.as_str(), requirement(0).values),
        ("In", Some(vec!["quiet".to_string()]))
    );
    assert_eq!(
        (requirement(1).operator.as_str(), requirement(1).values),
        ("NotIn", Some(vec!["noisy".to_string()]))
    );
    assert!(affinity
        .required_during_scheduling_ignored_during_execution
        .is_none());

    // The actuator writes the same requests to a file per plan; a dry run is not applied.
    let mut actuator = KubectlActuator {
        dir: dir.path().join("plans"),
        kubectl: None,
        kubeconfig: None,
    };
    actuator.apply(&m).expect("written");
    let written = std::fs::read_dir(dir.path().join("plans"))
        .expect("dir")
        .count();
    assert_eq!(written, 1);
    // An eviction is the Eviction API's own type, for POST .../pods/{name}/eviction.
    let evicting = kubernetes_requests(&message(
        vec![Action::Evict {
            instance: "batch/hog-1".into(),
            node: "noisy".into(),
        }],
        &[("noisy", 1), ("quiet", 1)],
    ));
    let eviction = serde_json::to_value(&evicting.evictions).expect("json");
    assert_eq!(eviction[0]["apiVersion"], "policy/v1", "{eviction}");
    assert_eq!(eviction[0]["kind"], "Eviction");
    assert_eq!(eviction[0]["metadata"]["namespace"], "batch");
    assert_eq!(eviction[0]["metadata"]["name"], "hog-1");
    assert!(evicting.affinity_patch.is_none());
    // Scaling alone needs no affinity patch.
    let scale_only = kubernetes_requests(&message(
        vec![Action::ScaleOut {
            node: "quiet".into(),
        }],
        &[("noisy", 1), ("quiet", 1)],
    ));
    assert!(scale_only.affinity_patch.is_none());
}

#[tokio::test]
async fn when_capacity_is_short_the_higher_priority_takes_it() {
    let config = ForegroundConfig {
        auth_token: Some(TOKEN.into()),
        autopilot: autopilot_config(),
        ..ForegroundConfig::default()
    };
    // "noisy" has 3 cores left, "quiet" 8: room for one more 6-core replica in all.
    let mut landscape = landscape();
    for (id, workload) in [("gold-1", "gold"), ("bronze-1", "bronze")] {
        landscape
            .upsert(Instance::new(id, workload, "noisy", 6.0, 1 << 20))
            .expect("replica");
    }
    let fg = Foreground::new(config, Arc::new(core_with(Vec::new())), landscape, false);
    let intents = [
        json!({"kind": "WorkloadIntent", "workload": "bronze", "p99_latency_ms": 1.0, "quiet_p99_ms": 0.3, "priority": 1.0}),
        json!({"kind": "WorkloadIntent", "workload": "gold", "p99_latency_ms": 1.0, "quiet_p99_ms": 0.3, "priority": 10.0}),
    ];
    fg.put_intents(&Value::Array(intents.to_vec()).to_string())
        .expect("intents");
    let now = dcpilot_info_core::now_ms();
    let mut samples = Vec::new();
    for workload in ["gold", "bronze"] {
        for (metric, value) in [("p99_latency_ms", 2.4), ("rps", 1500.0)] {
            samples.push(
                json!({"timestamp_ms": now, "entity": format!("{workload}-1"),
                "workload": workload, "metric": metric, "value": value}),
            );
        }
    }
    let (status, _) = call(
        &fg.router(),
        Method::POST,
        "/v1/telemetry",
        &Value::Array(samples).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let recorder = Recorder::default();
    let mut intent_loop = AutopilotLoop::new(autopilot_config(), vec![Box::new(recorder.clone())]);
    let decisions = fg.autopilot_tick(&mut intent_loop, now);
    assert_eq!(
        decisions[0].target, "gold",
        "the higher priority is decided first"
    );
    let plans = recorder.plans.lock().expect("lock").clone();
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(plans[0].target, "gold");
    assert_eq!(
        plans[0].actions,
        [Action::ScaleOut {
            node: "quiet".into()
        }]
    );
    let bronze = decisions
        .iter()
        .find(|d| d.target == "bronze")
        .expect("bronze");
    assert_eq!(bronze.state, ObjectiveState::Violated);
    assert!(bronze.plan.is_none(), "no room left: {:?}", bronze.plan);
}
