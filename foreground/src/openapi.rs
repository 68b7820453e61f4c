//! The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json`. Body schemas are
//! generated from the Rust types (schemars), so they cannot drift from what is parsed.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::autopilot::live::{PlanRecord, TargetStatus};
use crate::extender::{ExtenderArgs, ExtenderFilterResult, HostPriority};
use crate::planner::{PlacementAnswer, PlacementRequest};
use crate::recipes::{RebalancePlan, RebalanceRequest, ScoreAnswer, ScoreRequest};
use crate::server::LandscapeDocument;

struct Builder {
    generator: schemars::SchemaGenerator,
}

impl Builder {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }
}

fn operation(summary: &str, request: Option<Value>, response: Value, mutating: bool) -> Value {
    let mut op = json!({
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
            "4XX": {"description": "The request is wrong; `error` says how",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "503": {"description": "Overloaded: the request could not start before it was due (`reason`: overloaded, or expired for an update that waited too long); nothing changed. Retry after `Retry-After` seconds",
                    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "parameters": [{
            "name": "Request-Timeout", "in": "header", "required": false,
            "description": "How long the client waits, in gRPC's timeout form (up to 8 digits and a unit: H, M, S, m, u, n; `25m` is 25 ms); the answer is due then if that is sooner than the budget. `grpc-timeout` is read too",
            "schema": {"type": "string", "pattern": "^[0-9]{1,8}[HMSmun]$"}
        }]
    });
    if let Some(schema) = request {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    if mutating {
        op["security"] = json!([{"bearer": []}]);
    }
    op
}

const AT: (&str, bool, &str) = ("at", false, "as of this time, Unix ms (default: now)");
const ID: (&str, bool, &str) = ("id", true, "node id or alias");

/// The landscape graph's questions: path, summary, query parameters.
type Query = (
    &'static str,
    &'static str,
    &'static [(&'static str, bool, &'static str)],
);
const GRAPH_QUERIES: &[Query] = &[
    (
        "/v1/landscape/graph",
        "Nodes and edges alive at a time, filtered",
        &[
            AT,
            ("layer", false, "physical, virtual or service"),
            ("type", false, "node type (repeatable)"),
            ("label", false, "key=value (repeatable)"),
        ],
    ),
    (
        "/v1/landscape/summary",
        "Nodes by layer and type, edges by relation",
        &[AT],
    ),
    (
        "/v1/landscape/anomalies",
        "The served landscape colouring: entity scores, ranked root causes with evidence, anomalous hosts",
        &[("top", false, "root-cause candidates returned (default 20, at most 10000)")],
    ),
    ("/v1/landscape/node", "One node with its edges", &[ID, AT]),
    (
        "/v1/landscape/subgraph",
        "What lies below (or above) a node, to a depth",
        &[
            ID,
            AT,
            ("depth", false, "hops (default 3, at most 64)"),
            ("walk", false, "down (default), up or both"),
            ("relation", false, "only these relations (repeatable)"),
        ],
    ),
    (
        "/v1/landscape/neighbours",
        "A node's neighbours by relation",
        &[
            ID,
            AT,
            ("walk", false, "down, up or both (default)"),
            ("relation", false, "only these relations (repeatable)"),
        ],
    ),
    (
        "/v1/landscape/path",
        "Shortest paths between two nodes (edges either way)",
        &[
            ("from", true, "node id or alias"),
            ("to", true, "node id or alias"),
            AT,
        ],
    ),
    (
        "/v1/landscape/blast",
        "What fails when a node fails, across layers",
        &[ID, AT],
    ),
    (
        "/v1/landscape/diff",
        "Nodes and edges added, removed and changed between two times",
        &[
            ("from", true, "Unix ms (exclusive)"),
            ("to", false, "Unix ms (inclusive; default now)"),
        ],
    ),
    (
        "/v1/landscape/export",
        "The landscape as networkx node-link JSON or Graphviz DOT",
        &[
            (
                "format",
                false,
                "networkx (default, whole history) or dot (as of `at`)",
            ),
            AT,
        ],
    ),
];

/// The document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "#/components/schemas/".into();
    });
    let mut b = Builder {
        generator: settings.into_generator(),
    };
    let any = json!({});
    let text_or_json = json!({"type": "string", "description": "IDO Intent / KPIProfile or WorkloadIntent documents, YAML (--- separated) or JSON"});
    let mut paths = json!({
        "/v1/placements": {"post": operation(
            "Rank hosts for a workload within its budget",
            Some(b.schema::<PlacementRequest>()), b.schema::<PlacementAnswer>(), false)},
        "/v1/rebalance": {"post": operation(
            "Plan migrate/kill/scale moves within the budget",
            Some(b.schema::<RebalanceRequest>()), b.schema::<RebalancePlan>(), false)},
        "/v1/score": {"post": operation(
            "Score given recipes (place, migrate, kill, scale, tune)",
            Some(b.schema::<ScoreRequest>()), b.schema::<ScoreAnswer>(), false)},
        "/v1/intents": {
            "get": operation("Intent documents as sent, and the objectives derived", None, any.clone(), false),
            "put": {
                "summary": "Add or replace intent documents (YAML or JSON)",
                "requestBody": {"required": true, "content": {
                    "application/yaml": {"schema": text_or_json.clone()},
                    "application/json": {"schema": text_or_json}}},
                "responses": {"200": {"description": "Written"}, "4XX": {"description": "Refused; nothing changed"}},
                "security": [{"bearer": []}]
            }
        },
        "/v1/intents/{target}/status": {"get": operation(
            "How a target's p99 objective stands: desired, current with its age, state (met, at_risk, violated, no_data), prediction, placement, last plan",
            None, b.schema::<TargetStatus>(), false)},
        "/v1/plans": {"get": operation(
            "The intent loop's recent plans (applied or dry run), who carried them out, and their outcome",
            None, json!({"type": "object", "properties": {"plans": {"type": "array", "items": b.schema::<PlanRecord>()}}}), false)},
        "/v1/autopilot": {"get": operation("Whether the intent loop runs, and every target's status", None, any.clone(), false)},
        "/v1/telemetry": {"post": operation(
            "Native telemetry (workloads' p99 and request rates) for a foreground that follows no telemetry topic; all or nothing",
            Some(b.schema::<Vec<dcpilot_schemas::TelemetrySample>>()), any.clone(), true)},
        "/v1/landscape": {"get": operation("Hosts with their loads, and instances", None, any.clone(), false)},
        "/v1/landscape/events": {"post": operation(
            "Apply dcpilot.landscape events (one, a JSON array, or NDJSON), all or nothing",
            Some(any.clone()), any.clone(), true)},
        "/v1/landscape/measurements": {"post": operation(
            "Hosts' busy cores and hardware counters (pcm_*), for a foreground that follows no telemetry topic; all or nothing",
            Some(json!({"oneOf": [
                {"type": "object", "required": ["host", "metric", "value"],
                 "properties": {"host": {"type": "string"}, "metric": {"type": "string"}, "value": {"type": "number"}}},
                {"type": "array", "items": {"type": "object", "required": ["host", "metric", "value"]}}]})),
            any.clone(), true)},
        "/v1/models": {"get": operation("Models served, with versions, holdout and live errors", None, any.clone(), false)},
        "/v1/models/{name}/versions": {"get": operation("Every version of a model held here, with its lineage (job lease, training inputs per replica and partition)", None, any.clone(), false)},
        "/v1/models/{name}/predict": {"post": operation(
            "The model's predictions for feature rows (its best baseline's while a live verdict demotes it; the answer says so)",
            Some(json!({"type": "object", "required": ["rows"],
                "properties": {"rows": {"type": "array", "maxItems": 10000,
                    "items": {"type": "object", "additionalProperties": {"type": "number"}}}}})),
            json!({"type": "object", "required": ["model", "version", "answered_by", "predictions", "degraded"],
                "properties": {"model": {"type": "string"}, "version": {"type": "integer"},
                    "answered_by": {"type": "string"},
                    "predictions": {"type": "array", "items": {"type": "number"}},
                    "degraded": {"type": "boolean"},
                    "degraded_reasons": {"type": "array", "items": {"type": "string"}}}}),
            false)},
        "/v1/models/{name}/rollback": {"post": operation(
            "Serve an earlier version (standalone replicas only)",
            Some(json!({"type": "object", "required": ["version", "reason"],
                "properties": {"version": {"type": "integer"}, "reason": {"type": "string"}}})),
            any.clone(), true)},
        "/scheduler/filter": {"post": operation(
            "kube-scheduler extender filter",
            Some(b.schema::<ExtenderArgs>()), b.schema::<ExtenderFilterResult>(), false)},
        "/scheduler/prioritize": {"post": operation(
            "kube-scheduler extender prioritize (HostPriorityList, 0-10)",
            Some(b.schema::<ExtenderArgs>()), b.schema::<Vec<HostPriority>>(), false)},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
    });
    for (path, summary, params) in GRAPH_QUERIES {
        let mut op = operation(summary, None, json!({}), false);
        op["parameters"] = params
            .iter()
            .map(|(name, required, what)| {
                json!({"name": name, "in": "query", "required": required,
                       "description": what, "schema": {"type": "string"}})
            })
            .collect();
        paths[*path] = json!({ "get": op });
    }
    let _ = b.schema::<LandscapeDocument>();
    let mut schemas: Map<String, Value> = b.generator.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "dcpilot foreground", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Deadline-bounded placement, rebalancing and recipe scoring; Kubernetes scheduler extender."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}
