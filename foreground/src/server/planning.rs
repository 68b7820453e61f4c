//! The planning endpoints: `POST /v1/placements` (rank hosts for a new instance),
//! `POST /v1/rebalance` (local search for moves) and `POST /v1/score` (score given recipes).
//! Bodies are read where the request is; the work runs on a worker (placements and
//! scores on the decision lane, rebalancing on the bulk lane), its budget counted from
//! the request's arrival.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;

use super::admission::Lane;
use super::{body_bytes, now_ms, on_lane, parse, ApiError, Arrival, LandscapeDocument, Shared};
use crate::planner::{budget_of, place_on, PlacementRequest, Provenance};
use crate::recipes::{rebalance_state, score_on, RebalanceRequest, ScoreRequest};

/// What the answer metrics count of a planning answer.
fn flags(provenance: &Provenance) -> (bool, bool) {
    (provenance.budget_exhausted, provenance.degraded)
}

pub(super) async fn placements(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let read = parse::<PlacementRequest>(body).and_then(|request| {
        if request.hosts.is_empty() && !request.instances.is_empty() {
            return Err(ApiError::bad("body: instances: only with inline hosts"));
        }
        let budget_ms = budget_of(request.budget_ms, &fg.config.planner)?;
        Ok((request, budget_ms))
    });
    let work = |fg: &Arc<super::Foreground>, request: PlacementRequest, clock| {
        let landscape = if request.hosts.is_empty() {
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
        let (snapshot, intents) = (fg.models.snapshot(), fg.intents());
        let config = &fg.config.planner;
        Ok(place_on(
            &request,
            &landscape,
            &snapshot,
            &intents,
            config,
            now_ms(),
            clock,
        )?)
    };
    on_lane(
        &fg,
        Lane::Decision,
        "placements",
        arrival,
        read,
        work,
        |a| flags(&a.provenance),
    )
    .await
}

pub(super) async fn rebalance_handler(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let read = body_bytes(body).and_then(|bytes| {
        // An empty body asks with the defaults.
        let request: RebalanceRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
            RebalanceRequest::default()
        } else {
            parse(Ok(bytes))?
        };
        let budget_ms = budget_of(request.budget_ms, &fg.config.planner)?;
        Ok((request, budget_ms))
    });
    let work = |fg: &Arc<super::Foreground>, request: RebalanceRequest, clock| {
        let snapshot = fg.models.snapshot();
        let config = &fg.config.planner;
        Ok(rebalance_state(
            &request,
            fg.prepared_state(),
            clock,
            &snapshot,
            config,
            now_ms(),
        )?)
    };
    // Local search over many instances: on the bulk lane, so it cannot hold up placements.
    on_lane(&fg, Lane::Bulk, "rebalance", arrival, read, work, |p| {
        flags(&p.provenance)
    })
    .await
}

pub(super) async fn score_handler(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let read = parse::<ScoreRequest>(body).and_then(|request| {
        let budget_ms = budget_of(request.budget_ms, &fg.config.planner)?;
        Ok((request, budget_ms))
    });
    let work = |fg: &Arc<super::Foreground>, request: ScoreRequest, clock| {
        let (landscape, snapshot, intents) = (fg.landscape(), fg.models.snapshot(), fg.intents());
        let config = &fg.config.planner;
        Ok(score_on(
            &request,
            &landscape,
            &snapshot,
            &intents,
            config,
            now_ms(),
            clock,
        )?)
    };
    on_lane(&fg, Lane::Decision, "score", arrival, read, work, |a| {
        flags(&a.provenance)
    })
    .await
}
