//! The HTTP API (axum). Planning runs synchronously in the handler over what it loads at
//! the start — the landscape, the intents and a model snapshot, each an `Arc` swapped
//! atomically by writers — so a request never waits for a lock and always sees one
//! consistent state.
//!
//! Every error is JSON `{"error": "..."}` with a 4xx status naming the problem; bodies
//! larger than `max_body_bytes` get 413.
//!
//! A request's clock starts when it is read (`Arrival`, stamped before its body is); the
//! work runs on the workers of [`admission`] — decisions before updates — and a request
//! that cannot start before it is due gets 503 with `Retry-After` at once. A client may
//! bring its due time closer with `Request-Timeout` (gRPC's `grpc-timeout` form: up to
//! eight digits and a unit, `H` `M` `S` `m` `u` `n`; `grpc-timeout` itself is read too).
//!
//! This module owns the shared state ([`Foreground`]), the router and the helpers every
//! handler uses (body parsing, [`ApiError`], answer metrics); the handlers live in one
//! module per API area:
//!
//! - `planning`: `POST /v1/placements`, `/v1/rebalance`, `/v1/score`;
//! - `intents`: `GET`/`PUT /v1/intents`;
//! - `landscape`: `GET /v1/landscape`, `POST /v1/landscape/events` and [`LandscapeDocument`];
//! - `graph`: the landscape graph's questions, `GET /v1/landscape/{graph,summary,node,
//!   subgraph,neighbours,path,blast,diff,export}`;
//! - `models`: `GET /v1/models`, `POST /v1/models/{name}/rollback`;
//! - `scheduler`: the Kubernetes scheduler-extender `POST /scheduler/filter` and `/prioritize`;
//! - `meta`: `/healthz`, `/metrics`, `/openapi.json`.

pub mod admission;
mod autopilot;
mod graph;
mod intents;
mod landscape;
mod meta;
mod models;
mod planning;
mod scheduler;

use dcpilot_schemas::Invalid;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dcpilot_info_core::now_ms;
use dcpilot_info_core::InfoCore;
use dcpilot_landscape::{GraphError, LandscapeGraph, SharedLandscape};
use dcpilot_schemas::{LandscapeEvent, TelemetrySample};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::autopilot::live::{AutopilotLoop, AutopilotShared};
use crate::autopilot::Decision;
use crate::config::ForegroundConfig;
use crate::intents::Intents;
use crate::landscape::{HostMeasure, Landscape, Measured};
use crate::objective::State as IndexedLandscape;
use crate::planner::{Clock, PlanError, PlannerConfig};
use admission::{Admission, Lane};

pub use graph::{anomalies_document, standalone_view};
pub use landscape::LandscapeDocument;

/// Renders the process's metrics (Prometheus text).
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// The foreground's shared state.
pub struct Foreground {
    /// The placement view: built from `graph` after each change, published with it.
    landscape: ArcSwap<Landscape>,
    /// The landscape graph (structure and history), what the placement view is a view of;
    /// changed without copying it (see [`SharedLandscape`]).
    graph: SharedLandscape,
    intents: ArcSwap<Intents>,
    models: Arc<InfoCore>,
    /// Whether models come from a followed topic (then rollback belongs to the leader).
    following: bool,
    config: ForegroundConfig,
    /// Serialises writers (readers never take it), and holds hosts' measured busy cores
    /// beyond their instances' requests, which the placement view adds to the graph's.
    writer: parking_lot::Mutex<Measured>,
    /// The landscape in the rebalancer's index form, for the landscape and intents it was
    /// built from (kept alive here, so pointer equality is identity).
    prepared: ArcSwapOption<Prepared>,
    /// A background preparation is running / was asked for again meanwhile.
    preparing: std::sync::atomic::AtomicBool,
    prepare_again: std::sync::atomic::AtomicBool,
    metrics: Option<MetricsRenderer>,
    /// The intent loop's telemetry window, status and plans.
    autopilot: AutopilotShared,
    /// The API's workers and queues.
    admission: Admission,
}

struct Prepared {
    landscape: Arc<Landscape>,
    intents: Arc<Intents>,
    state: Arc<IndexedLandscape>,
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

/// Endpoint labels of the foreground's metrics.
pub const ENDPOINTS: &[&str] = &[
    "placements",
    "rebalance",
    "score",
    "intents",
    "landscape_events",
    "landscape_query",
    "rollback",
    "scheduler_filter",
    "scheduler_prioritize",
    "intent_status",
    "telemetry",
];

/// Describes every foreground metric once (Prometheus `# HELP`) and registers the
/// counters whose labels are known at 0, so `rate()` works from the first scrape.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram, Unit};
    crate::autopilot::events::describe_metrics();
    describe_counter!(
        "dcpilot_foreground_requests_total",
        Unit::Count,
        "API requests answered, by endpoint and HTTP status."
    );
    describe_histogram!(
        "dcpilot_foreground_request_seconds",
        Unit::Seconds,
        "Time to answer an API request, by endpoint."
    );
    describe_counter!(
        "dcpilot_foreground_budget_exhausted_total",
        Unit::Count,
        "Answers whose time budget ran out before every candidate was scored."
    );
    describe_counter!(
        "dcpilot_foreground_degraded_total",
        Unit::Count,
        "Answers that fell back to rules of thumb (a model missing, stale or unusable)."
    );
    describe_counter!(
        "dcpilot_foreground_landscape_events_total",
        Unit::Count,
        "Landscape events applied from the landscape topic."
    );
    for endpoint in ENDPOINTS {
        metrics::counter!("dcpilot_foreground_requests_total", "endpoint" => *endpoint, "status" => "200")
            .absolute(0);
        metrics::counter!("dcpilot_foreground_budget_exhausted_total", "endpoint" => *endpoint)
            .absolute(0);
        metrics::counter!("dcpilot_foreground_degraded_total", "endpoint" => *endpoint).absolute(0);
    }
    metrics::counter!("dcpilot_foreground_landscape_events_total").absolute(0);
    describe_counter!(
        "dcpilot_foreground_refused_total",
        Unit::Count,
        "Requests answered 503 at once, by endpoint and reason: overloaded (work queued ahead would make it late, or the bulk queue is full) or expired (due before a worker could start it)."
    );
    describe_histogram!(
        "dcpilot_foreground_queue_seconds",
        Unit::Seconds,
        "Time from reading a request to a worker starting it, by endpoint."
    );
    metrics::describe_gauge!(
        "dcpilot_foreground_queued",
        Unit::Count,
        "Requests waiting for a worker, by lane (decision, bulk)."
    );
    metrics::describe_gauge!(
        "dcpilot_foreground_in_flight",
        Unit::Count,
        "Requests being worked on, by lane (decision, bulk)."
    );
    for endpoint in ENDPOINTS {
        for reason in ["overloaded", "expired"] {
            metrics::counter!("dcpilot_foreground_refused_total", "endpoint" => *endpoint, "reason" => reason)
                .absolute(0);
        }
    }
    for lane in ["decision", "bulk"] {
        metrics::gauge!("dcpilot_foreground_queued", "lane" => lane).set(0.0);
        metrics::gauge!("dcpilot_foreground_in_flight", "lane" => lane).set(0.0);
    }
    describe_counter!(
        "dcpilot_foreground_follow_errors_total",
        Unit::Count,
        "Records of the followed topics that could not be read or applied, by topic (landscape or telemetry) and reason."
    );
    for (topic, reason) in [
        ("landscape", "decode"),
        ("landscape", "apply"),
        ("telemetry", "decode"),
    ] {
        metrics::counter!("dcpilot_foreground_follow_errors_total", "topic" => topic, "reason" => reason)
            .absolute(0);
    }
}

/// Records of a followed topic that could not be decoded or applied (one log line per
/// message or batch that had any, each record counted): waiting cannot fix them, so they
/// are skipped.
pub struct FollowSkipped<'a> {
    /// `landscape` or `telemetry`.
    pub topic: &'static str,
    /// `decode` or `apply`.
    pub reason: &'static str,
    /// How many.
    pub count: usize,
    /// The first one's reason.
    pub example: &'a str,
}

impl FollowSkipped<'_> {
    /// Logs and counts.
    pub fn emit(&self) {
        if self.count == 0 {
            return;
        }
        tracing::warn!(
            topic = self.topic,
            reason = self.reason,
            count = self.count,
            example = self.example,
            "skipping records of a followed topic"
        );
        metrics::counter!("dcpilot_foreground_follow_errors_total", "topic" => self.topic, "reason" => self.reason)
            .increment(self.count as u64);
    }
}

/// What the foreground reports about each answer (logged and counted).
pub(crate) struct Answered {
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

/// A body as text; 400 if it is not UTF-8.
fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|_| ApiError::bad("body: not UTF-8"))
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

/// A request read (`read`: it and its budget in ms, or why not) run on `lane` by `work`
/// within that budget from arrival, answered and counted as `endpoint` (`flags`: budget
/// exhausted, degraded).
async fn on_lane<R, T>(
    fg: &Arc<Foreground>,
    lane: Lane,
    endpoint: &'static str,
    arrival: Arrival,
    read: Result<(R, f64), ApiError>,
    work: impl FnOnce(&Arc<Foreground>, R, Clock) -> Result<T, ApiError> + Send + 'static,
    flags: impl Fn(&T) -> (bool, bool) + Send + 'static,
) -> Response
where
    R: Send + 'static,
    T: Serialize,
{
    let (request, budget_ms) = match read {
        Ok(read) => read,
        Err(e) => return answer::<()>(endpoint, arrival.at, Err(e), |_| (false, false)),
    };
    let worker_fg = Arc::clone(fg);
    fg.admission
        .run(lane, endpoint, arrival.clock(budget_ms), move |clock| {
            let result = work(&worker_fg, request, clock);
            answer(endpoint, clock.arrived, result, flags)
        })
        .await
}

/// A mutating endpoint's answer: the caller authorised, then on a bulk worker the body
/// `handle`d, answered and counted as `endpoint`. Updates may wait `admission.bulk_wait_ms`
/// (or the client's `Request-Timeout`) for a worker.
async fn mutation<T: Serialize>(
    fg: &Arc<Foreground>,
    endpoint: &'static str,
    arrival: Arrival,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    handle: impl FnOnce(&Arc<Foreground>, Bytes) -> Result<T, ApiError> + Send + 'static,
) -> Response {
    let wait_ms = fg.admission.bulk_wait().as_secs_f64() * 1000.0;
    let read = fg
        .authorize(headers)
        .and_then(|()| body_bytes(body))
        .map(|bytes| (bytes, wait_ms));
    let work = move |fg: &Arc<Foreground>, bytes, _clock| handle(fg, bytes);
    on_lane(fg, Lane::Bulk, endpoint, arrival, read, work, |_| {
        (false, false)
    })
    .await
}

/// When a request was read (its budget runs from then), and the due time its client sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    at: Instant,
    client_deadline: Option<Instant>,
}

impl Arrival {
    /// The request's clock for a budget of `budget_ms`.
    fn clock(&self, budget_ms: f64) -> Clock {
        Clock::arrived(self.at, budget_ms, self.client_deadline)
    }
}

/// Headers a client states how long it will wait in (gRPC's timeout form).
const TIMEOUT_HEADERS: [&str; 2] = ["request-timeout", "grpc-timeout"];

/// Stamps every request with its [`Arrival`] before its body is read; a malformed
/// timeout header is a 400 naming it.
async fn stamp_arrival(mut request: Request, next: Next) -> Response {
    let at = Instant::now();
    let mut client_deadline = None;
    for name in TIMEOUT_HEADERS {
        if let Some(value) = request.headers().get(name) {
            match value.to_str().map_err(|_| "not ASCII".to_string()).and_then(parse_timeout) {
                Ok(timeout) => client_deadline = Some(at + timeout),
                Err(e) => {
                    return ApiError::bad(format!(
                        "header {name}: {e} (expected up to 8 digits and a unit: H, M, S, m, u or n, as 25m for 25 ms)"
                    ))
                    .into_response()
                }
            }
        }
    }
    request.extensions_mut().insert(Arrival {
        at,
        client_deadline,
    });
    next.run(request).await
}

/// A gRPC-style timeout: `25m` is 25 ms.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let text = text.trim();
    let Some(unit) = text.chars().last() else {
        return Err("empty".into());
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a timeout"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a timeout"))?;
    Ok(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        other => return Err(format!("{text:?}: unknown unit {other:?}")),
    })
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
        let (graph, landscape) = graph_and_view(&landscape);
        let config_autopilot = config.autopilot.clone();
        let admission = Admission::start(&config.admission);
        Arc::new(Self {
            landscape: ArcSwap::from_pointee(landscape),
            graph: SharedLandscape::new(graph),
            intents: ArcSwap::from_pointee(Intents::default()),
            models,
            following,
            config,
            writer: parking_lot::Mutex::new(Measured::default()),
            prepared: ArcSwapOption::empty(),
            preparing: std::sync::atomic::AtomicBool::new(false),
            prepare_again: std::sync::atomic::AtomicBool::new(false),
            autopilot: AutopilotShared {
                config: config_autopilot,
                ..AutopilotShared::default()
            },
            admission,
            metrics,
        })
    }

    /// The intent loop's shared parts (telemetry window, status, plans).
    pub fn autopilot(&self) -> &AutopilotShared {
        &self.autopilot
    }

    /// Keeps what the intent loop reads of `samples` (workloads' p99 and request rates);
    /// returns how many it kept.
    pub fn observe_telemetry(&self, samples: &[TelemetrySample]) -> usize {
        let now = now_ms();
        samples
            .iter()
            .filter(|s| {
                self.autopilot
                    .window
                    .observe(&self.autopilot.config, s, now)
            })
            .count()
    }

    /// One tick of `intent_loop` over the landscape, intents and models as they are now.
    pub fn autopilot_tick(&self, intent_loop: &mut AutopilotLoop, now_ms: i64) -> Vec<Decision> {
        let (landscape, intents, snapshot) =
            (self.landscape(), self.intents(), self.models.snapshot());
        intent_loop.tick(&self.autopilot, &landscape, &intents, &snapshot, now_ms)
    }

    /// The landscape now.
    pub fn landscape(&self) -> Arc<Landscape> {
        self.landscape.load_full()
    }

    /// The landscape graph now.
    pub fn graph(&self) -> Arc<LandscapeGraph> {
        self.graph.load()
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

    /// Applies landscape events all or nothing; an error names the event. The placement
    /// view is rebuilt from the changed graph, and must hold every host and instance the
    /// events describe, or nothing is published.
    pub fn apply_events(&self, events: &[LandscapeEvent]) -> Result<usize, Invalid> {
        let measured = self.writer.lock();
        let view = self
            .graph
            .apply_all_if(events, |graph| {
                let (view, left_out) = Landscape::from_graph(graph, &measured);
                let refused = left_out_of(events, &left_out)
                    .next()
                    .map(|(i, kind, problem)| Invalid(format!("events[{i}] ({kind}): {problem}")));
                refused.map_or(Ok(view), Err)
            })
            .map_err(|e| match e {
                // Already names the event.
                GraphError::Invalid(message) => Invalid(message),
                other => Invalid(other.to_string()),
            })?;
        self.landscape.store(Arc::new(view));
        Ok(events.len())
    }

    /// Applies landscape events and hosts' measurements (busy cores, counters) one by one,
    /// skipping (and returning) the ones that fail — for followed topics, where a bad
    /// record must not stop the ones after it. Measurements of unknown hosts are skipped
    /// silently (hosts report before they are registered).
    pub fn apply_events_lenient(
        &self,
        events: &[LandscapeEvent],
        measured: &[(String, HostMeasure, f64)],
    ) -> Vec<String> {
        let mut kept = self.writer.lock();
        let outcome = self.graph.apply_each(events);
        let mut errors: Vec<String> = outcome
            .refused
            .into_iter()
            .map(|(i, e)| format!("{}: {e}", events[i].kind()))
            .collect();
        let mut view = if outcome.changed {
            let (view, left_out) = Landscape::from_graph(&self.graph.load(), &kept);
            // A host that went away takes its measurements with it.
            kept.retain_hosts_of(&view);
            // What the graph holds but the placement view cannot use (a pod with a bad
            // `dcpilot.io/` label, a host without capacity), for the events at hand.
            errors.extend(
                left_out_of(events, &left_out)
                    .map(|(_, kind, problem)| format!("{kind} (placement view): {problem}")),
            );
            view
        } else {
            // Measurements only, or nothing new: the view's structure is as it was.
            Landscape::clone(&self.landscape.load())
        };
        for (host, measure, value) in measured {
            match view.set_measured(host, *measure, *value) {
                Ok(()) => {
                    if let Some(i) = view.host_index(host) {
                        let load = &view.loads()[i];
                        kept.unrequested
                            .insert(host.clone(), load.unrequested_cores);
                        kept.counters.insert(host.clone(), load.counters);
                    }
                }
                Err(crate::LandscapeError::UnknownHost(_)) => {}
                Err(e) => errors.push(format!("measurement of {host}: {e}")),
            }
        }
        self.landscape.store(Arc::new(view));
        errors
    }

    /// Replaces the landscape with a document's hosts and instances (the graph starts
    /// anew from them).
    pub fn set_landscape(&self, landscape: Landscape) {
        let mut kept = self.writer.lock();
        kept.clear();
        let (graph, view) = graph_and_view(&landscape);
        self.graph.replace(graph);
        self.landscape.store(Arc::new(view));
    }

    /// Adds or replaces intent documents (YAML or JSON).
    pub fn put_intents(&self, body: &str) -> Result<Vec<String>, crate::IntentError> {
        let _guard = self.writer.lock();
        let (next, written) = self.intents.load().with_body(body)?;
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
            .route("/v1/placements", post(planning::placements))
            .route("/v1/rebalance", post(planning::rebalance_handler))
            .route("/v1/score", post(planning::score_handler))
            .route(
                "/v1/intents",
                get(intents::get_intents).put(intents::put_intents),
            )
            .route("/v1/intents/{*path}", get(autopilot::target_status))
            .route("/v1/plans", get(autopilot::plans))
            .route("/v1/autopilot", get(autopilot::overview))
            .route("/v1/telemetry", post(autopilot::post_telemetry))
            .route("/v1/landscape", get(landscape::get_landscape))
            .route("/v1/landscape/events", post(landscape::post_events))
            .route(
                "/v1/landscape/measurements",
                post(landscape::post_measurements),
            )
            .route("/v1/landscape/graph", get(graph::whole))
            .route("/v1/landscape/summary", get(graph::summary))
            .route("/v1/landscape/anomalies", get(graph::anomalies))
            .route("/v1/landscape/node", get(graph::node))
            .route("/v1/landscape/subgraph", get(graph::subgraph))
            .route("/v1/landscape/neighbours", get(graph::neighbours))
            .route("/v1/landscape/path", get(graph::path))
            .route("/v1/landscape/blast", get(graph::blast))
            .route("/v1/landscape/diff", get(graph::diff))
            .route("/v1/landscape/export", get(graph::export))
            .route("/landscape", get(graph::view))
            .route("/v1/models", get(models::get_models))
            .route("/v1/models/{name}/predict", post(models::predict))
            .route("/v1/models/{name}/versions", get(models::versions))
            .route("/v1/models/{name}/rollback", post(models::rollback))
            .route("/scheduler/filter", post(scheduler::filter))
            .route("/scheduler/prioritize", post(scheduler::prioritize))
            .route("/healthz", get(meta::healthz))
            .route("/metrics", get(meta::metrics_handler))
            .route("/openapi.json", get(meta::openapi))
            .fallback(|| async {
                ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json")
            })
            .layer(DefaultBodyLimit::max(self.config.max_body_bytes))
            .layer(axum::middleware::from_fn(stamp_arrival))
            .with_state(Arc::clone(self))
    }
}

/// `listener` with `TCP_NODELAY` on every connection it accepts: answers are small, and
/// with Nagle's algorithm a reply written in two pieces waits for the client's delayed
/// acknowledgement (up to 40 ms on Linux) — far beyond any budget.
pub fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    })
}

/// The graph of a landscape given whole (a landscape file or document) — its hosts and
/// instances as host and instance events at time 0, each instance's profile in its pod's
/// `dcpilot.io/` labels — and the placement view built back from that graph.
fn graph_and_view(landscape: &Landscape) -> (LandscapeGraph, Landscape) {
    let hosts = landscape.hosts().iter().map(|h| LandscapeEvent::HostUp {
        timestamp_ms: 0,
        host: h.name.clone(),
        cores: h.cores,
        memory_bytes: h.memory_bytes,
        features: h.features.clone(),
        labels: h.labels.clone(),
    });
    let instances = landscape
        .instances()
        .values()
        .map(|i| LandscapeEvent::InstancePlaced {
            timestamp_ms: 0,
            instance: i.id.clone(),
            workload: i.workload.clone(),
            host: i.host.clone(),
            cpu_request: i.cores,
            memory_request_bytes: i.memory_bytes,
            labels: i.profile_labels(),
        });
    let events: Vec<LandscapeEvent> = hosts.chain(instances).collect();
    let mut graph = LandscapeGraph::new();
    // The document was checked as a placement view already; what the graph still refuses
    // (a workload named like a host) is left out, and said.
    for event in &events {
        if let Err(e) = graph.apply_event(event) {
            tracing::warn!(error = %e, event = event.kind(), "leaving a landscape entry out");
        }
    }
    let (view, left_out) = Landscape::from_graph(&graph, &Measured::default());
    for (id, problem) in left_out {
        tracing::warn!(%id, %problem, "the placement view leaves an entry out");
    }
    (graph, view)
}

/// The hosts and instances `events` describe that the placement view left out: (event
/// position, event kind, why).
fn left_out_of<'a>(
    events: &'a [LandscapeEvent],
    left_out: &'a [(String, String)],
) -> impl Iterator<Item = (usize, &'static str, &'a str)> + 'a {
    events.iter().enumerate().filter_map(move |(i, event)| {
        let id = match event {
            LandscapeEvent::HostUp { host, .. } => host,
            LandscapeEvent::InstancePlaced { instance, .. } => instance,
            _ => return None,
        };
        left_out
            .iter()
            .find(|(left, _)| left == id)
            .map(|(_, problem)| (i, event.kind(), problem.as_str()))
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type Shared = State<Arc<Foreground>>;
