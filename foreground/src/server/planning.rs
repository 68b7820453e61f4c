//! The planning endpoints: `POST /v1/placements` (rank hosts for a new instance),
//! `POST /v1/rebalance` (local search for moves) and `POST /v1/score` (score given recipes).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{answer, body_bytes, now_ms, parse, ApiError, LandscapeDocument, Shared};
use crate::planner::{place, PlacementRequest};
use crate::recipes::{rebalance_state, score, RebalanceRequest, ScoreRequest};

pub(super) async fn placements(State(fg): Shared, body: Result<Bytes, BytesRejection>) -> Response {
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

pub(super) async fn rebalance_handler(
    State(fg): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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

pub(super) async fn score_handler(
    State(fg): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
