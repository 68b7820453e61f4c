//! The landscape endpoints: `GET /v1/landscape` (hosts with their loads, and instances)
//! and `POST /v1/landscape/events` (apply events all or nothing); and
//! [`LandscapeDocument`], the landscape file also accepted inline by placements.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use dcpilot_schemas::LandscapeEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{answer, body_bytes, ApiError, Shared};
use crate::landscape::{Host, Instance, Landscape};

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
            })
        })
        .collect();
    Json(json!({ "hosts": hosts, "instances": landscape.instances().values().collect::<Vec<_>>() }))
}

/// `POST /v1/landscape/events` body: one event, a JSON array of them, or NDJSON.
fn parse_events(bytes: &[u8]) -> Result<Vec<LandscapeEvent>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::bad("body: not UTF-8"))?;
    dcpilot_info_core::landscape::formats::parse_events(text)
        .map_err(|e| ApiError::bad(format!("body: {e}")))
}

pub(super) async fn post_events(
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
