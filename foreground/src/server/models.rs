//! The model endpoints: `GET /v1/models` (the models served and their versions) and
//! `POST /v1/models/{name}/rollback` (point a model back at an earlier version).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, parse, ApiError, Shared};

pub(super) async fn get_models(State(fg): Shared) -> Json<Value> {
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

pub(super) async fn rollback(
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
