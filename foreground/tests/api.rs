//! The HTTP API in process (the axum router, no sockets): intents as IDO sends them steer
//! placements; recipes and rebalancing; the scheduler-extender shapes; every bad request
//! gets a 4xx naming the problem; mutating endpoints need the token.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use common::*;
use dcpilot_foreground::planner::SLOWDOWN_MODEL;
use dcpilot_foreground::{Foreground, ForegroundConfig, Instance};
use dcpilot_info_core::InfoCore;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";

const IDO_INTENT: &str = r#"apiVersion: "ido.intel.com/v1alpha1"
kind: Intent
metadata:
  name: my-function-intent
spec:
  targetRef:
    kind: "Deployment"
    name: "default/function-deployment"
  objectives:
    - name: my-function-p99compliance
      value: 20
      measuredBy: default/p99latency
"#;

fn app_with(core: InfoCore) -> (Router, Arc<Foreground>) {
    let config = ForegroundConfig {
        auth_token: Some(TOKEN.into()),
        max_body_bytes: 64 * 1024,
        ..ForegroundConfig::default()
    };
    let fg = Foreground::new(config, Arc::new(core), landscape(), false);
    (fg.router(), fg)
}

fn app() -> (Router, Arc<Foreground>) {
    app_with(core_with(vec![draft(
        SLOWDOWN_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]))
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let (status, _, value) = send(
        app,
        request.body(Body::from(body.to_string())).expect("request"),
    )
    .await;
    (status, value)
}

/// Sends `request`; the status, the `Retry-After` header and the body (as JSON, else as
/// a string).
async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, retry, value)
}

/// Posts landscape events with the token.
async fn post_events(app: &Router, body: &str) -> (StatusCode, Value) {
    call(app, Method::POST, "/v1/landscape/events", body, Some(TOKEN)).await
}

fn function_request() -> String {
    json!({"workload": "default/function-deployment", "cores": 2.0, "memory_bytes": 1u64 << 30,
           "rps": 2000.0, "replicas": 2.0, "quiet_p99_ms": 5.0})
    .to_string()
}

#[tokio::test]
async fn the_ido_intent_is_read_back_unchanged_and_steers_placement() {
    let (app, _) = app();
    // Without an intent the workload has no latency objective: least loaded ("noisy") wins.
    let (status, before) = call(
        &app,
        Method::POST,
        "/v1/placements",
        &function_request(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["choices"][0]["host"], "noisy", "{before:#}");

    let (status, put) = call(&app, Method::PUT, "/v1/intents", IDO_INTENT, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["written"], json!(["Intent default/my-function-intent"]));
    let (status, got) = call(&app, Method::GET, "/v1/intents", "", None).await;
    assert_eq!(status, StatusCode::OK);
    let sent: Value = serde_yaml_ng::from_str(IDO_INTENT).expect("yaml");
    assert_eq!(got["documents"], json!([sent]), "read back unchanged");
    assert_eq!(
        got["objectives"]["default/function-deployment"]["p99_latency_ms"],
        20.0
    );

    // With it: 5 ms × 9 = 45 ms next to the hog breaks 20 ms, so "quiet" wins.
    let (_, after) = call(
        &app,
        Method::POST,
        "/v1/placements",
        &function_request(),
        None,
    )
    .await;
    assert_eq!(after["choices"][0]["host"], "quiet", "{after:#}");
    let noisy = after["choices"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["host"] == "noisy"))
        .expect("noisy ranked");
    assert!(noisy["explanation"]
        .as_str()
        .is_some_and(|e| e.contains("objective 20 ms")));
    assert_eq!(after["models"][SLOWDOWN_MODEL], 1);

    // The same intent as JSON replaces it (same key), a KPIProfile can join it.
    let json_intent = serde_json::to_string(&sent).expect("json");
    let (status, _) = call(&app, Method::PUT, "/v1/intents", &json_intent, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = call(&app, Method::GET, "/v1/intents", "", None).await;
    assert_eq!(got["documents"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn mutating_endpoints_need_the_token() {
    let (app, _) = app();
    for token in [None, Some("wrong")] {
        let (status, body) = call(&app, Method::PUT, "/v1/intents", IDO_INTENT, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["error"]
            .as_str()
            .is_some_and(|e| e.contains("token") || e.contains("Bearer")));
        let (status, _) = call(&app, Method::POST, "/v1/landscape/events", "[]", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (_, got) = call(&app, Method::GET, "/v1/intents", "", None).await;
    assert_eq!(
        got["documents"],
        json!([]),
        "nothing written without the token"
    );
}

#[tokio::test]
async fn bad_requests_get_a_4xx_naming_the_problem() {
    let (app, fg) = app();
    let big = format!("{{\"workload\":\"{}\"}}", "x".repeat(70 * 1024));
    let cases: Vec<(Method, &str, String, StatusCode, &str)> = vec![
        (Method::POST, "/v1/placements", "{".into(), StatusCode::BAD_REQUEST, "EOF"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":\"two\",\"memory_bytes\":1}".into(), StatusCode::BAD_REQUEST, "cores"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":1,\"memory_bytes\":1,\"colour\":1}".into(), StatusCode::BAD_REQUEST, "colour"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":-1,\"memory_bytes\":1}".into(), StatusCode::UNPROCESSABLE_ENTITY, "cores must be positive"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":1,\"memory_bytes\":1,\"budget_ms\":-3}".into(), StatusCode::UNPROCESSABLE_ENTITY, "budget_ms"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":100,\"memory_bytes\":1}".into(), StatusCode::CONFLICT, "no host has"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":1,\"memory_bytes\":1,\"instances\":[{\"id\":\"a\",\"workload\":\"w\",\"host\":\"h\",\"cores\":1,\"memory_bytes\":1}]}".into(), StatusCode::BAD_REQUEST, "inline hosts"),
        (Method::POST, "/v1/placements", "{\"workload\":\"w\",\"cores\":1,\"memory_bytes\":1,\"hosts\":[{\"name\":\"h\",\"cores\":0,\"memory_bytes\":1}]}".into(), StatusCode::BAD_REQUEST, "cores and memory must be positive"),
        (Method::POST, "/v1/placements", big, StatusCode::PAYLOAD_TOO_LARGE, "length limit"),
        (Method::POST, "/v1/score", "{\"recipes\":[]}".into(), StatusCode::UNPROCESSABLE_ENTITY, "at least one recipe"),
        (Method::POST, "/v1/score", "{\"recipes\":[{\"recipe\":\"migrate\",\"instance\":\"ghost\",\"to\":\"quiet\"}]}".into(), StatusCode::UNPROCESSABLE_ENTITY, "recipes[0]: unknown instance \"ghost\""),
        (Method::POST, "/v1/score", "{\"recipes\":[{\"recipe\":\"migrate\",\"instance\":\"hog\",\"to\":\"nowhere\"}]}".into(), StatusCode::UNPROCESSABLE_ENTITY, "unknown host \"nowhere\""),
        (Method::POST, "/v1/score", "{\"recipes\":[{\"recipe\":\"scale\",\"workload\":\"nobody\",\"add_on\":[\"quiet\"]}]}".into(), StatusCode::UNPROCESSABLE_ENTITY, "unknown workload \"nobody\""),
        (Method::POST, "/v1/score", "{\"recipes\":[{\"recipe\":\"teleport\"}]}".into(), StatusCode::BAD_REQUEST, "teleport"),
        (Method::POST, "/v1/rebalance", "{\"moves\":[]}".into(), StatusCode::UNPROCESSABLE_ENTITY, "moves"),
        (Method::POST, "/v1/rebalance", "{\"moves\":[\"shuffle\"]}".into(), StatusCode::BAD_REQUEST, "shuffle"),
        (Method::PUT, "/v1/intents", "kind: Pod\nmetadata: {name: p}".into(), StatusCode::BAD_REQUEST, "document 1: kind"),
        (Method::PUT, "/v1/intents", "{\"kind\":\"Intent\",\"metadata\":{\"name\":\"i\"},\"spec\":{\"targetRef\":{\"kind\":\"Deployment\",\"name\":\"d\"},\"objectives\":[{\"name\":\"o\",\"value\":\"low\",\"measuredBy\":\"default/p99latency\"}]}}".into(), StatusCode::BAD_REQUEST, "spec: objectives[0].value"),
        (Method::POST, "/v1/landscape/events", "{\"kind\":\"instance_placed\",\"timestamp_ms\":0,\"instance\":\"i\",\"workload\":\"w\",\"host\":\"atlantis\",\"cpu_request\":1,\"memory_request_bytes\":1}".into(), StatusCode::UNPROCESSABLE_ENTITY, "events[0] (instance_placed): unknown node \"atlantis\""),
        (Method::POST, "/v1/landscape/events", "{\"kind\":\"host_exploded\"}".into(), StatusCode::BAD_REQUEST, "line 1"),
        (Method::POST, "/v1/models/nope/rollback", "{\"version\":1,\"reason\":\"r\"}".into(), StatusCode::NOT_FOUND, "unknown model"),
        (Method::POST, "/v1/models/interference-slowdown/rollback", "{\"version\":9,\"reason\":\"r\"}".into(), StatusCode::UNPROCESSABLE_ENTITY, "9"),
        (Method::POST, "/scheduler/filter", "{\"pod\":{\"spec\":{\"containers\":[]}}}".into(), StatusCode::BAD_REQUEST, "nodenames"),
        (Method::POST, "/scheduler/prioritize", "{\"pod\":{\"spec\":{\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"lots\"}}}]}},\"nodenames\":[\"quiet\"]}".into(), StatusCode::BAD_REQUEST, "lots"),
        (Method::GET, "/v1/nothing", String::new(), StatusCode::NOT_FOUND, "no such endpoint"),
    ];
    for (method, uri, body, status, expected) in cases {
        let (got, answer) = call(&app, method.clone(), uri, &body, Some(TOKEN)).await;
        let message = answer["error"].as_str().unwrap_or_default();
        assert_eq!(
            got,
            status,
            "{method} {uri} {}: {answer}",
            &body[..body.len().min(120)]
        );
        assert!(
            message.contains(expected),
            "{method} {uri}: {message:?} lacks {expected:?}"
        );
    }
    // Nothing above changed the landscape.
    assert_eq!(fg.landscape().instances().len(), 2);
}

#[tokio::test]
async fn recipes_are_scored_and_rebalancing_moves_the_victim_away_from_the_hog() {
    let (app, fg) = app();
    // A latency-critical instance next to the hog, with an objective it misses there.
    let mut landscape = landscape();
    landscape
        .upsert(Instance {
            latency_critical: true,
            rps: Some(2000.0),
            quiet_p99_ms: Some(5.0),
            ..Instance::new("web-1", "web", "noisy", 1.0, 1 << 30)
        })
        .expect("web");
    fg.set_landscape(landscape);
    let intent = r#"{"kind":"WorkloadIntent","workload":"web","p99_latency_ms":20}"#;
    assert_eq!(
        call(&app, Method::PUT, "/v1/intents", intent, Some(TOKEN))
            .await
            .0,
        StatusCode::OK
    );

    let recipes = json!({"recipes": [
        {"recipe": "migrate", "instance": "web-1", "to": "quiet"},
        {"recipe": "kill", "instance": "batch"},
        {"recipe": "tune", "instance": "batch", "cores": 64.0},
        {"recipe": "scale", "workload": "web", "add_on": ["quiet"]},
        {"recipe": "place", "workload": "other", "host": "quiet", "cores": 1.0, "memory_bytes": 1}
    ]});
    let (status, scored) = call(&app, Method::POST, "/v1/score", &recipes.to_string(), None).await;
    assert_eq!(status, StatusCode::OK, "{scored}");
    let results = scored["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    assert_eq!(scored["candidates_scored"], 5);
    // Moving web away from the hog removes its SLO risk: the best recipe.
    assert_eq!(results[0]["index"], 0, "{scored:#}");
    assert!(results[0]["objective_delta"]
        .as_f64()
        .is_some_and(|d| d < -1.0));
    // Tuning batch to 64 cores does not fit a 16-core host.
    let tune = results.iter().find(|r| r["index"] == 2).expect("tune");
    assert_eq!(tune["feasible"], false);

    let (status, plan) = call(&app, Method::POST, "/v1/rebalance", "", None).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    // The prepared index form is reused while nothing changes: the same plan again.
    let (_, again) = call(&app, Method::POST, "/v1/rebalance", "", None).await;
    assert_eq!(again["actions"], plan["actions"]);
    let before = plan["objective_before"].as_f64().expect("before");
    let after = plan["objective_after"].as_f64().expect("after");
    assert!(after < before - 1.0, "{plan:#}");
    let first = &plan["actions"][0];
    // Either web leaves the hog or the hog leaves web.
    let moved = first["instance"].as_str().unwrap_or_default();
    assert_eq!(first["recipe"], "migrate", "{plan:#}");
    assert!(moved == "web-1" || moved == "hog", "{plan:#}");
    assert!(first["explanation"]
        .as_str()
        .is_some_and(|e| e.contains("objective")));
    let sum: f64 = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["objective_delta"].as_f64())
        .sum();
    // Each step's delta includes its move penalty; the plan's objective does not.
    assert!(after <= before + sum + 1e-9, "{plan:#}");
    // The served landscape is untouched: a plan is advice.
    assert_eq!(
        fg.landscape()
            .host_index("noisy")
            .map(|i| fg.landscape().loads()[i].instances),
        Some(2)
    );
}

#[tokio::test]
async fn the_scheduler_extender_speaks_kube_schedulers_shapes() {
    let (app, _) = app();
    let pod = json!({
        "metadata": {"name": "function-deployment-5d8c-x1", "namespace": "default",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "function-deployment-5d8c"}],
            "annotations": {"dcpilot.io/rps": "2000", "dcpilot.io/quiet-p99-ms": "5",
                            "dcpilot.io/p99-objective-ms": "20"}},
        "spec": {"containers": [{"name": "f", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}
    });
    let node = |name: &str, cpu: &str| {
        json!({"metadata": {"name": name, "labels": {"zone": "z"}},
        "status": {"allocatable": {"cpu": cpu, "memory": "8Gi"}}})
    };
    // NodeList: known hosts plus one only the NodeList knows; passing nodes come back whole.
    let args = json!({"pod": pod, "nodes": {"kind": "NodeList", "apiVersion": "v1",
        "items": [node("noisy", "16"), node("quiet", "16"), node("tiny", "1"), node("fresh", "32")]}});
    let (status, filtered) = call(
        &app,
        Method::POST,
        "/scheduler/filter",
        &args.to_string(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{filtered}");
    let names: Vec<&str> = filtered["nodes"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["noisy", "quiet", "fresh"]);
    assert_eq!(
        filtered["nodes"]["items"][2],
        node("fresh", "32"),
        "returned unchanged"
    );
    assert!(filtered["failedNodes"]["tiny"]
        .as_str()
        .is_some_and(|r| r.contains("needs 2.00 cores")));
    assert_eq!(filtered["nodes"]["kind"], "NodeList");

    // nodenames (nodeCacheCapable): unknown names are unresolvable.
    let args = json!({"pod": pod, "nodenames": ["noisy", "quiet", "ghost"]});
    let (status, filtered) = call(
        &app,
        Method::POST,
        "/scheduler/filter",
        &args.to_string(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(filtered["nodenames"], json!(["noisy", "quiet"]));
    assert!(filtered["failedAndUnresolvableNodes"]["ghost"].is_string());
    assert!(filtered.get("nodes").is_none());

    let (status, priorities) = call(
        &app,
        Method::POST,
        "/scheduler/prioritize",
        &args.to_string(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{priorities}");
    let list = priorities.as_array().expect("HostPriorityList");
    assert_eq!(list.len(), 3);
    let score = |h: &str| {
        list.iter()
            .find(|p| p["host"] == h)
            .and_then(|p| p["score"].as_i64())
    };
    // The annotations give an objective: the hog's host is the worst choice.
    assert_eq!(score("quiet"), Some(10));
    assert!(score("noisy").is_some_and(|s| (0..10).contains(&s)));
    assert_eq!(score("ghost"), Some(0));
    for p in list {
        assert!(p["score"].as_i64().is_some_and(|s| (0..=10).contains(&s)));
    }
}

#[tokio::test]
async fn landscape_events_apply_and_openapi_lists_every_endpoint() {
    let (app, fg) = app();
    let events = [
        json!({"kind": "host_up", "timestamp_ms": 1, "host": "h3", "cores": 8.0, "memory_bytes": 1u64 << 34}),
        json!({"kind": "instance_placed", "timestamp_ms": 2, "instance": "p1", "workload": "w",
               "host": "h3", "cpu_request": 2.0, "memory_request_bytes": 1u64 << 30}),
    ];
    let ndjson = events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let (status, body) = post_events(&app, &ndjson).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], 2);
    let l = fg.landscape();
    let h3 = l.host_index("h3").expect("h3");
    assert_eq!(l.loads()[h3].cores, 2.0);
    let (_, land) = call(&app, Method::GET, "/v1/landscape", "", None).await;
    assert_eq!(land["hosts"].as_array().map(Vec::len), Some(3));

    // The placement view is a view of the graph: a host and a pod described with the
    // generic graph events (as a Kubernetes listing becomes) are placed into like any.
    let generic = [
        json!({"kind": "node_up", "timestamp_ms": 3, "node": {"id": "k1", "layer": "physical",
               "category": "compute", "type": "host", "attributes": {"cores": 16.0, "memory_bytes": 1u64 << 35}}}),
        json!({"kind": "node_up", "timestamp_ms": 3, "node": {"id": "shop/web-0", "layer": "virtual",
               "category": "compute", "type": "pod", "labels": {"dcpilot.io/pressure-membw": "2"},
               "attributes": {"cpu_request": 3.0, "memory_request_bytes": 1024}}}),
        json!({"kind": "edge_up", "timestamp_ms": 3, "edge": {"source": "shop/web-0", "target": "k1", "relation": "runs_on"}}),
    ];
    let body = Value::Array(generic.to_vec()).to_string();
    let (status, answer) = post_events(&app, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let l = fg.landscape();
    let k1 = l
        .host_index("k1")
        .expect("k1 is a host of the placement view");
    assert_eq!(
        (l.loads()[k1].cores, l.loads()[k1].pressure.membw),
        (3.0, 2.0)
    );
    assert_eq!(l.instances()["shop/web-0"].host, "k1");
    // A host the view cannot place on refuses the batch whole, naming the event.
    let empty = json!({"kind": "host_up", "timestamp_ms": 4, "host": "h4", "cores": 8.0, "memory_bytes": 0});
    let (status, answer) = post_events(&app, &empty.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("events[0] (host_up)")),
        "{answer}"
    );
    assert!(fg.landscape().host_index("h4").is_none());
    assert!(
        fg.graph().get("h4").is_none(),
        "nothing of it in the graph either"
    );

    let (status, doc) = call(&app, Method::GET, "/openapi.json", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/placements",
        "/v1/rebalance",
        "/v1/score",
        "/v1/intents",
        "/v1/landscape/events",
        "/v1/landscape/measurements",
        "/v1/models/{name}/predict",
        "/v1/models/{name}/rollback",
        "/scheduler/filter",
        "/scheduler/prioritize",
        "/healthz",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    // Body schemas come from the types: the recipe variants are all there.
    let text = doc.to_string();
    for recipe in ["place", "migrate", "kill", "scale", "tune"] {
        assert!(text.contains(&format!("\"{recipe}\"")), "{recipe}");
    }
    assert_eq!(
        call(&app, Method::GET, "/healthz", "", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_landscape_graph_answers_over_http_and_refuses_bad_changes_whole() {
    let (app, fg) = app();
    // The placement view given at start is in the graph: hog runs on noisy.
    let (status, node) = call(
        &app,
        Method::GET,
        "/v1/landscape/node?id=hog&at=1",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{node}");
    assert_eq!(node["out"][0]["target"], "noisy");
    // Structure from generic events: a rack holding both hosts, a service calling another.
    let events = [
        json!({"kind": "node_up", "timestamp_ms": 100, "node": {"id": "rack-1", "layer": "physical", "category": "compute", "type": "rack"}}),
        json!({"kind": "edge_up", "timestamp_ms": 100, "edge": {"source": "rack-1", "target": "noisy", "relation": "contains"}}),
        json!({"kind": "edge_up", "timestamp_ms": 100, "edge": {"source": "rack-1", "target": "quiet", "relation": "contains"}}),
        json!({"kind": "node_up", "timestamp_ms": 100, "node": {"id": "gateway", "layer": "service", "category": "compute", "type": "service"}}),
        json!({"kind": "edge_up", "timestamp_ms": 100, "edge": {"source": "gateway", "target": "stress-ng-l3", "relation": "calls", "weight": 12.5}}),
    ];
    let body = serde_json::to_string(&events).expect("json");
    let (status, applied) = post_events(&app, &body).await;
    assert_eq!(status, StatusCode::OK, "{applied}");

    let get = |uri: String| {
        let app = app.clone();
        async move { call(&app, Method::GET, &uri, "", None).await }
    };
    let (_, sub) = get("/v1/landscape/subgraph?id=rack-1&depth=2&walk=down&at=200".into()).await;
    let ids: Vec<&str> = sub["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["rack-1", "noisy", "quiet"]);
    let (_, blast) = get("/v1/landscape/blast?id=rack-1&at=200".into()).await;
    let hit: Vec<&str> = blast["affected"]
        .as_array()
        .expect("affected")
        .iter()
        .map(|a| a["node"]["id"].as_str().expect("id"))
        .collect();
    for id in ["noisy", "quiet", "hog", "batch", "stress-ng-l3", "gateway"] {
        assert!(hit.contains(&id), "{id} not in {hit:?}");
    }
    let (_, path) = get("/v1/landscape/path?from=gateway&to=quiet&at=200".into()).await;
    assert_eq!(
        path["paths"][0],
        json!(["gateway", "stress-ng-l3", "hog", "noisy", "rack-1", "quiet"])
    );
    let (_, near) =
        get("/v1/landscape/neighbours?id=stress-ng-l3&relation=calls&at=200".into()).await;
    assert_eq!(near["neighbours"][0]["edge"]["weight"], 12.5);
    let (_, layer) = get("/v1/landscape/graph?layer=service&at=200".into()).await;
    // stress-ng-l3 (hog's workload) and gateway; `batch` runs alone under its own name.
    assert_eq!(layer["nodes"].as_array().map(Vec::len), Some(2), "{layer}");
    // As of before the events: no rack yet; the diff names what came.
    let (status, _) = get("/v1/landscape/node?id=rack-1&at=50".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, diff) = get("/v1/landscape/diff?from=50&to=200".into()).await;
    assert_eq!(diff["nodes_added"].as_array().map(Vec::len), Some(2));
    assert_eq!(diff["edges_added"].as_array().map(Vec::len), Some(3));
    let (_, summary) = get("/v1/landscape/summary?at=200".into()).await;
    assert_eq!(summary["edges"]["contains"], 2);

    // A batch with a containment loop is refused whole: neither view changes.
    let before = (fg.graph().edge_count(), fg.landscape().instances().len());
    let bad = serde_json::to_string(&[
        json!({"kind": "instance_placed", "timestamp_ms": 300, "instance": "new", "workload": "w", "host": "quiet", "cpu_request": 1.0, "memory_request_bytes": 1}),
        json!({"kind": "edge_up", "timestamp_ms": 300, "edge": {"source": "noisy", "target": "rack-1", "relation": "contains"}}),
    ])
    .expect("json");
    let (status, err) = post_events(&app, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["error"]
            .as_str()
            .expect("error")
            .contains("events[1] (edge_up): containment cannot loop"),
        "{err}"
    );
    assert_eq!(
        (fg.graph().edge_count(), fg.landscape().instances().len()),
        before
    );

    // Bad questions name the parameter.
    for (uri, status, expected) in [
        (
            "/v1/landscape/subgraph",
            StatusCode::BAD_REQUEST,
            "`id` is required",
        ),
        (
            "/v1/landscape/subgraph?id=rack-1&walk=sideways",
            StatusCode::BAD_REQUEST,
            "`walk`",
        ),
        (
            "/v1/landscape/subgraph?id=rack-1&depth=-1",
            StatusCode::BAD_REQUEST,
            "`depth`",
        ),
        (
            "/v1/landscape/neighbours?id=rack-1&relation=loves",
            StatusCode::BAD_REQUEST,
            "`relation` \"loves\"",
        ),
        (
            "/v1/landscape/node?id=rack-1&at=noon",
            StatusCode::BAD_REQUEST,
            "`at` \"noon\"",
        ),
        (
            "/v1/landscape/blast?id=atlantis",
            StatusCode::NOT_FOUND,
            "unknown node \"atlantis\"",
        ),
        (
            "/v1/landscape/diff?from=10&to=5",
            StatusCode::BAD_REQUEST,
            "before `from`",
        ),
        (
            "/v1/landscape/graph?layer=cloud",
            StatusCode::BAD_REQUEST,
            "`layer`",
        ),
        (
            "/v1/landscape/export?format=png",
            StatusCode::BAD_REQUEST,
            "`format`",
        ),
    ] {
        let (got, body) = get(uri.into()).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(
            body["error"].as_str().expect("error").contains(expected),
            "{uri}: {body}"
        );
    }
    // Export: DOT, and node-link JSON.
    let (status, dot) = get("/v1/landscape/export?format=dot&at=200".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(dot.as_str().expect("text").starts_with("digraph {"));
    let (_, nx) = get("/v1/landscape/export".into()).await;
    assert!(nx["links"].as_array().is_some_and(|l| l.len() >= 5));
    // The OpenAPI document lists the questions with their parameters.
    let (_, doc) = get("/openapi.json".into()).await;
    assert_eq!(
        doc["paths"]["/v1/landscape/subgraph"]["get"]["parameters"][0]["name"],
        "id"
    );
}

#[tokio::test]
async fn hosts_report_counters_over_http_and_bad_measurements_are_refused_whole() {
    let (app, _) = app();
    let post = |body: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                Method::POST,
                "/v1/landscape/measurements",
                &body,
                Some(TOKEN),
            )
            .await
        }
    };
    let (status, answer) = post(
        "{\"host\":\"quiet\",\"metric\":\"pcm_mem_read_gbps\",\"value\":12.5}\n\
         {\"host\":\"quiet\",\"metric\":\"host_cpu_cores_used\",\"value\":9}"
            .into(),
    )
    .await;
    assert_eq!(
        (status, &answer["applied"]),
        (StatusCode::OK, &json!(2)),
        "{answer}"
    );
    let (_, landscape) = call(&app, Method::GET, "/v1/landscape", "", None).await;
    let quiet = landscape["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == "quiet"))
        .cloned()
        .expect("quiet listed");
    assert_eq!(
        quiet["counters"],
        json!({"pcm_mem_read_gbps": 12.5}),
        "{quiet}"
    );

    for (body, want, says) in [
        (
            json!([{"host": "quiet", "metric": "pcm_ipc", "value": 1.0},
                   {"host": "quiet", "metric": "cpu_usage_pct", "value": 3.0}]),
            StatusCode::BAD_REQUEST,
            "measurements[1].metric: \"cpu_usage_pct\" is not a host measurement",
        ),
        (
            json!([{"host": "nowhere", "metric": "pcm_ipc", "value": 1.0}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "measurements[0].host: unknown host \"nowhere\"",
        ),
        (
            json!([{"host": "quiet", "metric": "pcm_ipc", "value": -1.0}]),
            StatusCode::BAD_REQUEST,
            "measurements[0].value",
        ),
        (
            json!([{"host": "quiet", "metric": "pcm_ipc"}]),
            StatusCode::BAD_REQUEST,
            "value",
        ),
    ] {
        let (status, answer) = post(body.to_string()).await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{answer}"
        );
    }
    // Nothing of a refused body was applied.
    let (_, landscape) = call(&app, Method::GET, "/v1/landscape", "", None).await;
    assert!(!landscape.to_string().contains("pcm_ipc"), "{landscape}");
    let (status, _) = call(&app, Method::POST, "/v1/landscape/measurements", "[]", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a mutating endpoint");
}

/// `POST /v1/placements` with one extra header; status, `Retry-After`, body.
async fn place_with_header(
    app: &Router,
    name: &str,
    value: &str,
) -> (StatusCode, Option<String>, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/placements")
        .header(name, value)
        .body(Body::from(function_request()))
        .expect("request");
    send(app, request).await
}

#[tokio::test]
async fn the_budget_runs_from_arrival_and_the_clients_deadline_is_kept() {
    let (app, _fg) = app();
    // The answer states its budget, and the time it waited and scored within it.
    let (status, answer) = call(
        &app,
        Method::POST,
        "/v1/placements",
        &function_request(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["budget_ms"], 10.0, "{answer}");
    let (used, waited, scoring) = (
        answer["used_ms"].as_f64().expect("used_ms"),
        answer["waited_ms"].as_f64().expect("waited_ms"),
        answer["scoring_ms"].as_f64().expect("scoring_ms"),
    );
    assert!(waited >= 0.0 && scoring >= 0.0, "{answer}");
    assert!(used + 1e-9 >= waited + scoring - 1e-3, "{answer}");

    // A client that waits 5 ms gets a 5 ms budget (gRPC's timeout form; both names).
    for name in ["Request-Timeout", "grpc-timeout"] {
        let (status, _, answer) = place_with_header(&app, name, "5m").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let budget = answer["budget_ms"].as_f64().expect("budget_ms");
        assert!(budget <= 5.0 && budget > 4.0, "{name}: {answer}");
    }

    // One that cannot wait at all is refused at once, told when to come back.
    let (status, retry, answer) = place_with_header(&app, "Request-Timeout", "0m").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(answer["reason"], "overloaded", "{answer}");

    // A timeout that is not one is a 400 naming the header.
    for bad in ["soon", "5", "5x", "123456789m", ""] {
        let (status, _, answer) = place_with_header(&app, "Request-Timeout", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {answer}");
        let error = answer["error"].as_str().expect("error");
        assert!(error.contains("header request-timeout"), "{error}");
    }
}
