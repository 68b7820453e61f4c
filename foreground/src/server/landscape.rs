//! The landscape endpoints: `GET /v1/landscape` (hosts with their loads, and instances),
//! `POST /v1/landscape/events` (apply events all or nothing) and
//! `POST /v1/landscape/measurements` (hosts' busy cores and hardware counters); and
//! [`LandscapeDocument`], the landscape file also accepted inline by placements.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use axum::Json;
use dcpilot_schemas::Invalid;
use dcpilot_schemas::LandscapeEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{mutation, utf8, ApiError, Arrival, Shared};
use crate::landscape::{Host, HostCounters, HostMeasure, Instance, Landscape};
use dcpilot_schemas::names::PCM_SYSTEM_METRICS;

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
    pub fn build(&self) -> Result<Landscape, Invalid> {
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

pub(super) async fn get_landscape(State(fg): Shared) -> Json<Value> {
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
                "counters": counters_json(&l.counters),
            })
        })
        .collect();
    Json(json!({ "hosts": hosts, "instances": landscape.instances().values().collect::<Vec<_>>() }))
}

/// A host's reported counters by metric name (unreported ones left out).
fn counters_json(counters: &HostCounters) -> Value {
    PCM_SYSTEM_METRICS
        .iter()
        .enumerate()
        .filter_map(|(i, (_, name))| Some(((*name).to_string(), json!(counters.get(i)?))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// One host measurement, as `POST /v1/landscape/measurements` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostMeasurement {
    host: String,
    metric: String,
    value: f64,
}

/// `POST /v1/landscape/measurements`: what hosts report about themselves — busy cores
/// (`sources.utilization_metric`) and hardware counters (`pcm_*`) — for a foreground
/// without a telemetry topic to follow. Body: one `{host, metric, value}`, a JSON array
/// of them, or NDJSON; all or nothing.
pub(super) async fn post_measurements(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    mutation(&fg, "landscape_measurements", arrival, &headers, body, |fg, bytes| {
        let text = utf8(&bytes)?;
        let items: Vec<HostMeasurement> =
            dcpilot_landscape::formats::parse_json_items(text, "measurements")
                .map_err(|e| ApiError::bad(format!("body: {e}")))?;
        let landscape = fg.landscape();
        let busy = &fg.config.sources.utilization_metric;
        let mut measured = Vec::with_capacity(items.len());
        for (i, m) in items.into_iter().enumerate() {
            let measure = HostMeasure::of(&m.metric, busy).ok_or_else(|| {
                let counters: Vec<&str> = PCM_SYSTEM_METRICS.iter().map(|(_, n)| *n).collect();
                ApiError::bad(format!(
                    "measurements[{i}].metric: {:?} is not a host measurement (expected {busy} or one of {})",
                    m.metric,
                    counters.join(", ")
                ))
            })?;
            if landscape.host_index(&m.host).is_none() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("measurements[{i}].host: unknown host {:?}", m.host),
                ));
            }
            if !(m.value.is_finite() && m.value >= 0.0) {
                return Err(ApiError::bad(format!(
                    "measurements[{i}].value: must be a number ≥ 0, got {}",
                    m.value
                )));
            }
            measured.push((m.host, measure, m.value));
        }
        let errors = fg.apply_events_lenient(&[], &measured);
        if let Some(e) = errors.first() {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.clone()));
        }
        fg.prepare_in_background();
        Ok(json!({ "applied": measured.len() }))
    })
    .await
}

/// `POST /v1/landscape/events` body: one event, a JSON array of them, or NDJSON.
fn parse_events(bytes: &[u8]) -> Result<Vec<LandscapeEvent>, ApiError> {
    dcpilot_landscape::formats::parse_events(utf8(bytes)?)
        .map_err(|e| ApiError::bad(format!("body: {e}")))
}

pub(super) async fn post_events(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    mutation(
        &fg,
        "landscape_events",
        arrival,
        &headers,
        body,
        |fg, bytes| {
            let events = parse_events(&bytes)?;
            let applied = fg
                .apply_events(&events)
                .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.0))?;
            fg.prepare_in_background();
            Ok(json!({ "applied": applied }))
        },
    )
    .await
}
