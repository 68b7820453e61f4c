//! The HTTP API (axum). Planning runs synchronously in the handler over what it loads at
//! the start — the landscape, the intents and a model snapshot, each an `Arc` swapped
//! atomically by writers — so a request never waits for a lock and always sees one
//! consistent state.
//!
//! Every error is JSON `{"error": "..."}` with a 4xx status naming the problem; bodies
//! larger than `max_body_bytes` get 413.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dcpilot_info_core::InfoCore;
use dcpilot_schemas::LandscapeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::ForegroundConfig;
use crate::extender::{self, ExtenderArgs, ExtenderFilterResult};
use crate::intents::Intents;
use crate::landscape::{Host, Instance, Landscape};
use crate::objective::State as IndexedLandscape;
use crate::planner::{place, PlacementRequest, PlanError, PlannerConfig};
use crate::recipes::{rebalance_state, score, RebalanceRequest, ScoreRequest};

/// Renders the process's metrics (Prometheus text).
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// The foreground's shared state.
pub struct Foreground {
    landscape: ArcSwap<Landscape>,
    intents: ArcSwap<Intents>,
    models: Arc<InfoCore>,
    /// Whether models come from a followed topic (then rollback belongs to the leader).
    following: bool,
    config: ForegroundConfig,
    /// Serialises writers (readers never take it).
    writer: parking_lot::Mutex<()>,
    /// The landscape in the rebalancer's index form, for the landscape and intents it was
    /// built from (kept alive here, so pointer equality is identity).
    prepared: ArcSwapOption<Prepared>,
    /// A background preparation is running / was asked for again meanwhile.
    preparing: std::sync::atomic::AtomicBool,
    prepare_again: std::sync::atomic::AtomicBool,
    metrics: Option<MetricsRenderer>,
}

struct Prepared {
    landscape: Arc<Landscape>,
    intents: Arc<Intents>,
    state: Arc<IndexedLandscape>,
}

/// A landscape file: hosts and the instances on them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LandscapeDocument {
    /// Hosts.
    pub hosts: Vec<Host>,
    /// Instances.
    #[serde(default)]
    pub instances: Vec<Instance>,
}

impl LandscapeDocument {
    /// Builds the landscape, naming the first bad host or instance.
    pub fn build(&self) -> Result<Landscape, String> {
        let mut landscape =
            Landscape::new(self.hosts.clone()).map_err(|e| format!("hosts: {e}"))?;
        for (i, inst) in self.instances.iter().enumerate() {
            landscape
                .upsert(inst.clone())
                .map_err(|e| format!("instances[{i}]: {e}"))?;
        }
        Ok(landscape)
    }
}

/// A 4xx (or 5xx) answer with a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::BadRequest(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            e @ PlanError::NoFeasibleHost { .. } => Self::new(StatusCode::CONFLICT, e.to_string()),
        }
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| ApiError::new(r.status(), format!("body: {}", r.body_text())))
}

/// Parses a JSON body; errors name the field (`recipes[0].to: missing field`).
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body_bytes(body)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad(format!("body: {inner}"))
        } else {
            ApiError::bad(format!("body: {path}: {inner}"))
        }
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the foreground reports about each answer (logged and counted).
struct Answered {
    endpoint: &'static str,
    status: u16,
    seconds: f64,
    budget_exhausted: bool,
    degraded: bool,
}

impl Answered {
    fn emit(&self) {
        let status = self.status.to_string();
        metrics::counter!("dcpilot_foreground_requests_total", "endpoint" => self.endpoint, "status" => status)
            .increment(1);
        metrics::histogram!("dcpilot_foreground_request_seconds", "endpoint" => self.endpoint)
            .record(self.seconds);
        if self.budget_exhausted {
            metrics::counter!("dcpilot_foreground_budget_exhausted_total", "endpoint" => self.endpoint)
                .increment(1);
        }
        if self.degraded {
            metrics::counter!("dcpilot_foreground_degraded_total", "endpoint" => self.endpoint)
                .increment(1);
        }
        if self.status >= 400 {
            tracing::debug!(
                endpoint = self.endpoint,
                status = self.status,
                "request refused"
            );
        }
    }
}

fn answer<T: Serialize>(
    endpoint: &'static str,
    started: Instant,
    result: Result<T, ApiError>,
    flags: impl Fn(&T) -> (bool, bool),
) -> Response {
    let (status, exhausted, degraded, response) = match result {
        Ok(value) => {
            let (exhausted, degraded) = flags(&value);
            (200, exhausted, degraded, Json(value).into_response())
        }
        Err(e) => (e.status.as_u16(), false, false, e.into_response()),
    };
    Answered {
        endpoint,
        status,
        seconds: started.elapsed().as_secs_f64(),
        budget_exhausted: exhausted,
        degraded,
    }
    .emit();
    response
}

impl Foreground {
    /// A foreground over `models` and an initial `landscape`.
    pub fn new(
        config: ForegroundConfig,
        models: Arc<InfoCore>,
        landscape: Landscape,
        following: bool,
    ) -> Arc<Self> {
        Self::build(config, models, landscape, following, None)
    }

    /// The same, rendering `/metrics` with `metrics`.
    pub fn with_metrics(
        config: ForegroundConfig,
        models: Arc<InfoCore>,
        landscape: Landscape,
        following: bool,
        metrics: MetricsRenderer,
    ) -> Arc<Self> {
        Self::build(config, models, landscape, following, Some(metrics))
    }

    fn build(
        config: ForegroundConfig,
        models: Arc<InfoCore>,
        landscape: Landscape,
        following: bool,
        metrics: Option<MetricsRenderer>,
    ) -> Arc<Self> {
        Arc::new(Self {
            landscape: ArcSwap::from_pointee(landscape),
            intents: ArcSwap::from_pointee(Intents::default()),
            models,
            following,
            config,
            writer: parking_lot::Mutex::new(()),
            prepared: ArcSwapOption::empty(),
            preparing: std::sync::atomic::AtomicBool::new(false),
            prepare_again: std::sync::atomic::AtomicBool::new(false),
            metrics,
        })
    }

    /// The landscape now.
    pub fn landscape(&self) -> Arc<Landscape> {
        self.landscape.load_full()
    }

    /// The intents now.
    pub fn intents(&self) -> Arc<Intents> {
        self.intents.load_full()
    }

    /// The planner settings.
    pub fn planner(&self) -> &PlannerConfig {
        &self.config.planner
    }

    /// The landscape and intents now in the rebalancer's index form: built once per change
    /// (here, or on the first rebalance after it), copied per request.
    pub fn prepared_state(&self) -> IndexedLandscape {
        let (landscape, intents) = (self.landscape(), self.intents());
        if let Some(p) = self.prepared.load().as_ref() {
            if Arc::ptr_eq(&p.landscape, &landscape) && Arc::ptr_eq(&p.intents, &intents) {
                return IndexedLandscape::clone(&p.state);
            }
        }
        let state = Arc::new(IndexedLandscape::new(&landscape, &intents));
        self.prepared.store(Some(Arc::new(Prepared {
            landscape,
            intents,
            state: Arc::clone(&state),
        })));
        IndexedLandscape::clone(&state)
    }

    /// Rebuilds the index form off the request path after a change, so the next rebalance
    /// spends its budget searching. Changes arriving meanwhile are picked up by one more
    /// round, not by more threads.
    pub fn prepare_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        self.prepare_again.store(true, Ordering::SeqCst);
        if self.preparing.swap(true, Ordering::SeqCst) {
            return;
        }
        let fg = Arc::clone(self);
        std::thread::spawn(move || loop {
            while fg.prepare_again.swap(false, Ordering::SeqCst) {
                drop(fg.prepared_state());
            }
            fg.preparing.store(false, Ordering::SeqCst);
            // A change that came between the last round and the flag going down.
            if !fg.prepare_again.load(Ordering::SeqCst) || fg.preparing.swap(true, Ordering::SeqCst)
            {
                break;
            }
        });
    }

    /// Applies landscape events all or nothing; an error names the event.
    pub fn apply_events(&self, events: &[LandscapeEvent]) -> Result<usize, String> {
        self.change_landscape(|next| {
            for (i, event) in events.iter().enumerate() {
                next.apply(event)
                    .map_err(|e| format!("events[{i}] ({}): {e}", event.kind()))?;
            }
            Ok(events.len())
        })
    }

    /// Applies landscape events and hosts' measured busy cores one by one, skipping (and
    /// returning) the ones that fail — for followed topics, where a bad record must not
    /// stop the ones after it. Measurements of unknown hosts are skipped silently (hosts
    /// report before they are registered).
    pub fn apply_events_lenient(
        &self,
        events: &[LandscapeEvent],
        measured: &[(String, f64)],
    ) -> Vec<String> {
        let changed: Result<Vec<String>, ()> = self.change_landscape(|next| {
            let mut errors = Vec::new();
            for event in events {
                if let Err(e) = next.apply(event) {
                    errors.push(format!("{}: {e}", event.kind()));
                }
            }
            for (host, cores) in measured {
                match next.set_measured_cores(host, *cores) {
                    Ok(()) | Err(crate::LandscapeError::UnknownHost(_)) => {}
                    Err(e) => errors.push(format!("utilization of {host}: {e}")),
                }
            }
            Ok(errors)
        });
        changed.unwrap_or_default()
    }

    /// Edits a copy of the landscape under the writer lock and publishes it if `edit`
    /// succeeds; readers see the old landscape or the new one, never a half-edited one.
    fn change_landscape<T, E>(
        &self,
        edit: impl FnOnce(&mut Landscape) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = self.writer.lock();
        let mut next = Landscape::clone(&self.landscape.load());
        let out = edit(&mut next)?;
        self.landscape.store(Arc::new(next));
        Ok(out)
    }

    /// Replaces the landscape.
    pub fn set_landscape(&self, landscape: Landscape) {
        let _guard = self.writer.lock();
        self.landscape.store(Arc::new(landscape));
    }

    /// Adds or replaces intent documents (YAML or JSON).
    pub fn put_intents(&self, body: &str) -> Result<Vec<String>, String> {
        let _guard = self.writer.lock();
        let (next, written) = self
            .intents
            .load()
            .with_body(body)
            .map_err(|e| e.to_string())?;
        self.intents.store(Arc::new(next));
        Ok(written)
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.config.auth_token else {
            return Ok(());
        };
        let sent = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match sent {
            Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the bearer token is wrong",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this endpoint changes state: send Authorization: Bearer <token>",
            )),
        }
    }

    /// The API's routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/placements", post(placements))
            .route("/v1/rebalance", post(rebalance_handler))
            .route("/v1/score", post(score_handler))
            .route("/v1/intents", get(get_intents).put(put_intents))
            .route("/v1/landscape", get(get_landscape))
            .route("/v1/landscape/events", post(post_events))
            .route("/v1/models", get(get_models))
            .route("/v1/models/{name}/rollback", post(rollback))
            .route("/scheduler/filter", post(filter))
            .route("/scheduler/prioritize", post(prioritize))
            .route("/healthz", get(|| std::future::ready("ok\n")))
            .route("/metrics", get(metrics_handler))
            .route(
                "/openapi.json",
                get(|| std::future::ready(Json(crate::openapi::document()))),
            )
            .fallback(|| async {
                ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json")
            })
            .layer(DefaultBodyLimit::max(self.config.max_body_bytes))
            .with_state(Arc::clone(self))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type Shared = State<Arc<Foreground>>;

async fn placements(State(fg): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = (|| {
        let request: PlacementRequest = parse(body)?;
        let landscape = if request.hosts.is_empty() {
            if !request.instances.is_empty() {
                return Err(ApiError::bad("body: instances: only with inline hosts"));
            }
            fg.landscape()
        } else {
            Arc::new(
                LandscapeDocument {
                    hosts: request.hosts.clone(),
                    instances: request.instances.clone(),
                }
                .build()
                .map_err(|e| ApiError::bad(format!("body: {e}")))?,
            )
        };
        let snapshot = fg.models.snapshot();
        Ok(place(
            &request,
            &landscape,
            &snapshot,
            &fg.intents(),
            &fg.config.planner,
            now_ms(),
        )?)
    })();
    answer("placements", started, result, |a| {
        (a.provenance.budget_exhausted, a.provenance.degraded)
    })
}

async fn rebalance_handler(State(fg): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let bytes = match body_bytes(body) {
        Ok(b) => b,
        Err(e) => return answer::<()>("rebalance", started, Err(e), |_| (false, false)),
    };
    // An empty body asks with the defaults.
    let request: Result<RebalanceRequest, ApiError> = if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(RebalanceRequest::default())
    } else {
        parse(Ok(bytes))
    };
    let result = match request {
        Err(e) => Err(e),
        Ok(request) => {
            // Local search over many instances is CPU work: keep it off the I/O threads.
            let fg2 = Arc::clone(&fg);
            tokio::task::spawn_blocking(move || {
                rebalance_state(
                    &request,
                    fg2.prepared_state(),
                    started,
                    &fg2.models.snapshot(),
                    &fg2.config.planner,
                    now_ms(),
                )
                .map_err(ApiError::from)
            })
            .await
            .unwrap_or_else(|e| {
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rebalancing failed: {e}"),
                ))
            })
        }
    };
    answer("rebalance", started, result, |p| {
        (p.provenance.budget_exhausted, p.provenance.degraded)
    })
}

async fn score_handler(State(fg): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = parse::<ScoreRequest>(body).and_then(|request| {
        Ok(score(
            &request,
            &fg.landscape(),
            &fg.models.snapshot(),
            &fg.intents(),
            &fg.config.planner,
            now_ms(),
        )?)
    });
    answer("score", started, result, |a| {
        (a.provenance.budget_exhausted, a.provenance.degraded)
    })
}

async fn get_intents(State(fg): Shared) -> Json<Value> {
    let intents = fg.intents();
    Json(json!({
        "documents": intents.documents(),
        "objectives": intents.all_objectives(),
        "unscored": intents.unscored(),
    }))
}

async fn put_intents(
    State(fg): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        fg.authorize(&headers)?;
        let bytes = body_bytes(body)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::bad("body: not UTF-8"))?;
        let written = fg.put_intents(text).map_err(ApiError::bad)?;
        fg.prepare_in_background();
        Ok(json!({ "written": written }))
    })();
    answer("intents", started, result, |_| (false, false))
}

async fn get_landscape(State(fg): Shared) -> Json<Value> {
    let landscape = fg.landscape();
    let hosts: Vec<Value> = landscape
        .hosts()
        .iter()
        .zip(landscape.loads())
        .map(|(h, l)| {
            json!({
                "name": h.name, "cores": h.cores, "memory_bytes": h.memory_bytes,
                "labels": h.labels, "used_cores": l.cores, "used_memory_bytes": l.memory_bytes,
                "instances": l.instances, "latency_critical": l.latency_critical,
                "pressure": l.pressure,
            })
        })
        .collect();
    Json(json!({ "hosts": hosts, "instances": landscape.instances().values().collect::<Vec<_>>() }))
}

/// `POST /v1/landscape/events` body: one event, a JSON array of them, or NDJSON.
fn parse_events(bytes: &[u8]) -> Result<Vec<LandscapeEvent>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::bad("body: not UTF-8"))?;
    let trimmed = text.trim_start();
    let named = |what: String| {
        move |e: serde_path_to_error::Error<serde_json::Error>| {
            ApiError::bad(format!("{what}: {}: {}", e.path(), e.inner()))
        }
    };
    let one = |s: &str, what: String| -> Result<LandscapeEvent, ApiError> {
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(s))
            .map_err(named(what))
    };
    if trimmed.starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(trimmed).map_err(|e| ApiError::bad(format!("body: {e}")))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_path_to_error::deserialize(v).map_err(named(format!("events[{i}]")))
            })
            .collect()
    } else {
        let events: Vec<LandscapeEvent> = trimmed
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| one(l, format!("line {}", i + 1)))
            .collect::<Result<_, _>>()?;
        if events.is_empty() {
            return Err(ApiError::bad("body: no events"));
        }
        Ok(events)
    }
}

async fn post_events(
    State(fg): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        fg.authorize(&headers)?;
        let events = parse_events(&body_bytes(body)?)?;
        let applied = fg
            .apply_events(&events)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
        fg.prepare_in_background();
        Ok(json!({ "applied": applied }))
    })();
    answer("landscape_events", started, result, |_| (false, false))
}

async fn get_models(State(fg): Shared) -> Json<Value> {
    let snapshot = fg.models.snapshot();
    let models: Vec<Value> = snapshot
        .models()
        .map(|(name, m)| {
            json!({
                "name": name, "version": m.version(), "features": m.record.features,
                "created_at_ms": m.record.created_at_ms,
                "model_error": m.record.metrics.model_error,
                "baseline_error": m.record.metrics.baseline_error,
                "metric": m.record.metrics.metric,
            })
        })
        .collect();
    Json(json!({ "generation": snapshot.generation, "models": models }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: u64,
    reason: String,
}

async fn rollback(
    State(fg): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        fg.authorize(&headers)?;
        let body: RollbackBody = parse(body)?;
        if fg.following {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this replica follows the models topic; roll back on the leader (dcpilot models rollback)",
            ));
        }
        if !fg.models.names().contains(&name) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown model {name:?}"),
            ));
        }
        let pointer = fg
            .models
            .rollback(&name, body.version, &body.reason)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        Ok(json!({ "name": name, "current": pointer }))
    })();
    answer("rollback", started, result, |_| (false, false))
}

async fn metrics_handler(State(fg): Shared) -> String {
    fg.metrics
        .as_ref()
        .map_or_else(String::new, |render| render())
}

/// An extender call read: its args, the pod's request, the landscape of its candidates,
/// their names, and the names known nowhere.
struct ExtenderCall {
    args: ExtenderArgs,
    request: PlacementRequest,
    landscape: Landscape,
    names: Vec<String>,
    unknown: Vec<String>,
}

fn extender_call(
    fg: &Foreground,
    body: Result<Bytes, BytesRejection>,
) -> Result<ExtenderCall, ApiError> {
    let args: ExtenderArgs = parse(body)?;
    let bad = |e: String| ApiError::bad(format!("body: {e}"));
    let request = extender::request_from_pod(&args.pod).map_err(bad)?;
    let candidates = extender::candidates(&args).map_err(bad)?;
    let mut extra = Vec::new();
    let served = fg.landscape();
    for c in &candidates {
        if served.host_index(&c.name).is_none() {
            if let Some(node) = &c.node {
                extra.push(extender::host_from_node(node).map_err(bad)?);
            }
        }
    }
    let names: Vec<String> = candidates.into_iter().map(|c| c.name).collect();
    let (landscape, unknown) = served.subset(&names, &extra);
    Ok(ExtenderCall {
        args,
        request,
        landscape,
        names,
        unknown,
    })
}

async fn filter(State(fg): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = (|| {
        let ExtenderCall {
            args,
            request,
            landscape: sub,
            unknown,
            ..
        } = extender_call(&fg, body)?;
        let mut out = ExtenderFilterResult::default();
        for name in &unknown {
            out.failed_and_unresolvable_nodes.insert(
                name.clone(),
                "unknown to dcpilot and not in the request's NodeList".into(),
            );
        }
        let mut passing = Vec::new();
        for (host, load) in sub.hosts().iter().zip(sub.loads()) {
            let free_cores = host.cores - load.busy_cores();
            let free_memory = host.memory_bytes.saturating_sub(load.memory_bytes);
            if free_cores + 1e-9 >= request.cores && free_memory >= request.memory_bytes {
                passing.push(host.name.clone());
            } else {
                out.failed_nodes.insert(
                    host.name.clone(),
                    format!(
                        "{} needs {:.2} cores and {} bytes; {:.2} cores and {} bytes free",
                        request.workload,
                        request.cores,
                        request.memory_bytes,
                        free_cores,
                        free_memory
                    ),
                );
            }
        }
        if let Some(list) = &args.nodes {
            let mut list = list.clone();
            if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
                items.retain(|n| {
                    n.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .is_some_and(|name| passing.iter().any(|p| p == name))
                });
            }
            out.nodes = Some(list);
        } else {
            out.node_names = Some(passing);
        }
        Ok(out)
    })();
    answer("scheduler_filter", started, result, |_| (false, false))
}

async fn prioritize(State(fg): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = (|| {
        let ExtenderCall {
            request,
            landscape: sub,
            names,
            ..
        } = extender_call(&fg, body)?;
        let mut config = fg.config.planner.clone();
        config.top = names.len().max(1);
        let scored: Vec<(String, f64)> = match place(
            &request,
            &sub,
            &fg.models.snapshot(),
            &fg.intents(),
            &config,
            now_ms(),
        ) {
            Ok(a) => a.choices.into_iter().map(|c| (c.host, c.score)).collect(),
            // Nothing fits: every node gets 0 (filter has said why).
            Err(PlanError::NoFeasibleHost { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(extender::priorities(&scored, &names))
    })();
    answer("scheduler_prioritize", started, result, |_| (false, false))
}
