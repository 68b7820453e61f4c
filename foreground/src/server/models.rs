//! The model endpoints: `GET /v1/models` (the models served, their versions and live
//! verdicts), `GET /v1/models/{name}/versions` (every version held, with its lineage),
//! `POST /v1/models/{name}/predict` (the model's answers for feature rows — its
//! best baseline's while it is demoted) and `POST /v1/models/{name}/rollback` (point a
//! model back at an earlier version).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{answer, now_ms, parse, ApiError, Shared};
use crate::planner::{ModelUse, Provenance};

pub(super) async fn get_models(State(fg): Shared) -> Json<Value> {
    let snapshot = fg.models.snapshot();
    let models: Vec<Value> = snapshot
        .models()
        .map(|(name, m)| {
            let live = snapshot.answerer(name, now_ms()).and_then(|a| {
                let verdict = snapshot.served_verdict(name)?;
                Some(json!({
                    "demoted": verdict.demoted,
                    "answered_by": a.answered_by(),
                    "model_error": verdict.model_error,
                    "baseline": verdict.best().map(|b| &b.name),
                    "baseline_error": verdict.best().map(|b| b.error),
                    "rows": verdict.rows,
                    "from_ms": verdict.from_ms,
                    "to_ms": verdict.to_ms,
                    "judged_at_ms": verdict.judged_at_ms,
                }))
            });
            json!({
                "name": name, "version": m.version(), "kind": m.record.kind,
                "features": m.record.features,
                "created_at_ms": m.record.created_at_ms,
                "model_error": m.record.metrics.model_error,
                "baseline_error": m.record.metrics.baseline_error,
                "baseline": m.record.metrics.baseline,
                "metric": m.record.metrics.metric,
                "lineage": m.record.lineage,
                "live": live,
            })
        })
        .collect();
    Json(json!({ "generation": snapshot.generation, "models": models }))
}

/// Rows one predict request may carry.
pub const MAX_PREDICT_ROWS: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    /// Feature name → value, one object per row.
    rows: Vec<serde_json::Map<String, Value>>,
}

#[derive(Serialize)]
struct Predictions {
    model: String,
    version: u64,
    /// `model`, or `baseline:<name>` while the model is demoted.
    answered_by: String,
    predictions: Vec<f64>,
    #[serde(flatten)]
    provenance: Provenance,
}

pub(super) async fn predict(
    State(fg): Shared,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = (|| {
        let body: PredictBody = parse(body)?;
        if body.rows.len() > MAX_PREDICT_ROWS {
            return Err(ApiError::bad(format!(
                "body: rows: {} rows, at most {MAX_PREDICT_ROWS} per request",
                body.rows.len()
            )));
        }
        let snapshot = fg.models.snapshot();
        let config = &fg.config.planner;
        let mut used = ModelUse::new(&snapshot, config, now_ms());
        let answerer = used.answerer(&name).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("unknown model {name:?}"))
        })?;
        let served = answerer.served;
        if served.prepared.table().is_some()
            || served.prepared.colouring().is_some()
            || served.prepared.verdict().is_some()
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{name} is a {}: it is looked up (GET /v1/models, /v1/landscape/anomalies), not predicted",
                    served.record.kind
                ),
            ));
        }
        let features = &served.record.features;
        let mut values = Vec::with_capacity(body.rows.len() * features.len());
        for (i, row) in body.rows.iter().enumerate() {
            if let Some(unknown) = row.keys().find(|k| !features.contains(k)) {
                return Err(ApiError::bad(format!(
                    "body: rows[{i}].{unknown}: not a feature of {name} (it reads {features:?})"
                )));
            }
            for feature in features {
                let value = row.get(feature).and_then(Value::as_f64);
                match value {
                    Some(v) if v.is_finite() => values.push(v),
                    _ => {
                        return Err(ApiError::bad(format!(
                            "body: rows[{i}].{feature}: missing or not a finite number"
                        )))
                    }
                }
            }
        }
        let mut predictions = Vec::with_capacity(body.rows.len());
        answerer
            .predict_many(&values, features.len(), &mut predictions)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let used_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(Predictions {
            model: name.clone(),
            version: served.version(),
            answered_by: answerer.answered_by(),
            predictions,
            provenance: used.finish(config.budget_ms, used_ms, false),
        })
    })();
    answer("predict", started, result, |p| {
        (false, p.provenance.degraded)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: u64,
    reason: String,
}

/// Every version of `name` this replica holds, oldest first, with lineage and metrics.
pub(super) async fn versions(State(fg): Shared, Path(name): Path<String>) -> Response {
    let records = fg.models.versions(&name);
    if records.is_empty() {
        return ApiError::new(StatusCode::NOT_FOUND, format!("unknown model {name:?}"))
            .into_response();
    }
    let versions: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "version": r.version, "seq": r.seq, "kind": r.kind,
                "created_at_ms": r.created_at_ms, "rows": r.rows, "window": r.window,
                "metrics": r.metrics, "lineage": r.lineage, "checksum": r.checksum,
            })
        })
        .collect();
    Json(json!({ "name": name, "versions": versions })).into_response()
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
