//! The intents endpoints: `GET /v1/intents` (documents, objectives, unscored workloads)
//! and `PUT /v1/intents` (add or replace intent documents).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use axum::Json;
use serde_json::{json, Value};

use super::{mutation, utf8, ApiError, Arrival, Shared};

pub(super) async fn get_intents(State(fg): Shared) -> Json<Value> {
    let intents = fg.intents();
    Json(json!({
        "documents": intents.documents(),
        "objectives": intents.all_objectives(),
        "unscored": intents.unscored(),
    }))
}

pub(super) async fn put_intents(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    mutation(&fg, "intents", arrival, &headers, body, |fg, bytes| {
        let written = fg
            .put_intents(utf8(&bytes)?)
            .map_err(|e| ApiError::bad(e.to_string()))?;
        fg.prepare_in_background();
        Ok(json!({ "written": written }))
    })
    .await
}
