//! The operational endpoints: `/healthz`, `/metrics` (Prometheus text) and
//! `/openapi.json` (the API's OpenAPI document).

use std::future::Ready;

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use super::Shared;

/// `GET /healthz`.
pub(super) fn healthz() -> Ready<&'static str> {
    std::future::ready("ok\n")
}

pub(super) async fn metrics_handler(State(fg): Shared) -> String {
    fg.metrics
        .as_ref()
        .map_or_else(String::new, |render| render())
}

/// `GET /openapi.json`.
pub(super) fn openapi() -> Ready<Json<Value>> {
    std::future::ready(Json(crate::openapi::document()))
}
