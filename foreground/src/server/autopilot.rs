//! The intent loop's endpoints: `GET /v1/intents/{target}/status` (each objective:
//! desired, current, freshness, state, last plan), `GET /v1/plans` (recent plans and
//! their outcome), `GET /v1/autopilot` (every target) and `POST /v1/telemetry` (native
//! telemetry for a foreground without brokers: workloads' p99 and request rates).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use axum::Json;
use dcpilot_schemas::decode::{DecodeContext, Decoder, Format};
use dcpilot_schemas::TelemetrySample;
use serde_json::{json, Value};

use super::{answer, mutation, ApiError, Arrival, Shared};

pub(super) async fn target_status(State(fg): Shared, Path(path): Path<String>) -> Response {
    let started = Instant::now();
    let result = (|| {
        let target = path.strip_suffix("/status").ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint: GET /v1/intents/{target}/status (target e.g. default/nginx)",
            )
        })?;
        let status = fg.autopilot().status.target(target);
        match status {
            Some(status) => Ok(json!(status)),
            None if fg.intents().objectives(target).is_some() => Ok(json!({
                "target": target,
                "state": "no_data",
                "reason": if fg
                    .intents()
                    .objectives(target)
                    .is_some_and(|o| o.p99_latency_ms.is_none())
                {
                    "not kept by the loop: it keeps p99 latency objectives only"
                } else if fg.autopilot().config.enabled {
                    "not judged yet: the first tick has not run"
                } else {
                    "the autopilot is off ([autopilot] enabled = false)"
                },
            })),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no intent has target {target:?}; PUT /v1/intents first"),
            )),
        }
    })();
    answer("intent_status", started, result, |_| (false, false))
}

pub(super) async fn plans(State(fg): Shared) -> Json<Value> {
    Json(json!({ "plans": fg.autopilot().status.plans() }))
}

pub(super) async fn overview(State(fg): Shared) -> Json<Value> {
    let shared = fg.autopilot();
    Json(json!({
        "enabled": shared.config.enabled,
        "dry_run": shared.config.dry_run,
        "targets": shared.status.targets(),
        // Objectives the loop cannot keep (not a p99 latency, or an unknown KPI profile).
        "not_kept": fg.intents().unscored(),
    }))
}

pub(super) async fn post_telemetry(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    mutation(&fg, "telemetry", arrival, &headers, body, |fg, bytes| {
        let mut samples: Vec<TelemetrySample> = Vec::new();
        let ctx = DecodeContext {
            default_timestamp_ms: dcpilot_info_core::now_ms(),
        };
        let (_, outcome) = Decoder::new(Format::Native).decode(&bytes, &ctx, &mut samples);
        if let Some(e) = outcome.errors.first() {
            return Err(ApiError::bad(format!(
                "record {}: {} ({} bad record(s); nothing kept)",
                e.record, e.message, outcome.error_count
            )));
        }
        let kept = fg.observe_telemetry(&samples);
        Ok(json!({ "samples": samples.len(), "kept": kept }))
    })
    .await
}
