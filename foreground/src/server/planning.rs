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
use super::{answer, body_bytes, now_ms, parse, ApiError, Arrival, LandscapeDocument, Shared};
use crate::planner::{budget_of, place_on, PlacementRequest};
use crate::recipes::{rebalance_state, score_on, RebalanceRequest, ScoreRequest};

pub(super) async fn placements(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const ENDPOINT: &str = "placements";
    let read = parse::<PlacementRequest>(body).and_then(|request| {
        if request.hosts.is_empty() && !request.instances.is_empty() {
            return Err(ApiError::bad("body: instances: only with inline hosts"));
        }
        let budget_ms = budget_of(request.budget_ms, &fg.config.planner)?;
        Ok((request, budget_ms))
    });
    let (request, budget_ms) = match read {
        Ok(read) => read,
        Err(e) => return answer::<()>(ENDPOINT, arrival.at, Err(e), |_| (false, false)),
    };
    let worker_fg = Arc::clone(&fg);
    fg.admission
        .run(
            Lane::Decision,
            ENDPOINT,
            arrival.clock(budget_ms),
            move |clock| {
                let fg = worker_fg;
                let result = (|| {
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
                    Ok(place_on(
                        &request,
                        &landscape,
                        &fg.models.snapshot(),
                        &fg.intents(),
                        &fg.config.planner,
                        now_ms(),
                        clock,
                    )?)
                })();
                answer(ENDPOINT, clock.arrived, result, |a| {
                    (a.provenance.budget_exhausted, a.provenance.degraded)
                })
            },
        )
        .await
}

pub(super) async fn rebalance_handler(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const ENDPOINT: &str = "rebalance";
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
    let (request, budget_ms) = match read {
        Ok(read) => read,
        Err(e) => return answer::<()>(ENDPOINT, arrival.at, Err(e), |_| (false, false)),
    };
    let worker_fg = Arc::clone(&fg);
    // Local search over many instances: on the bulk lane, so it cannot hold up placements.
    fg.admission
        .run(
            Lane::Bulk,
            ENDPOINT,
            arrival.clock(budget_ms),
            move |clock| {
                let fg = worker_fg;
                let result = rebalance_state(
                    &request,
                    fg.prepared_state(),
                    clock,
                    &fg.models.snapshot(),
                    &fg.config.planner,
                    now_ms(),
                )
                .map_err(ApiError::from);
                answer(ENDPOINT, clock.arrived, result, |p| {
                    (p.provenance.budget_exhausted, p.provenance.degraded)
                })
            },
        )
        .await
}

pub(super) async fn score_handler(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const ENDPOINT: &str = "score";
    let read = parse::<ScoreRequest>(body).and_then(|request| {
        let budget_ms = budget_of(request.budget_ms, &fg.config.planner)?;
        Ok((request, budget_ms))
    });
    let (request, budget_ms) = match read {
        Ok(read) => read,
        Err(e) => return answer::<()>(ENDPOINT, arrival.at, Err(e), |_| (false, false)),
    };
    let worker_fg = Arc::clone(&fg);
    fg.admission
        .run(
            Lane::Decision,
            ENDPOINT,
            arrival.clock(budget_ms),
            move |clock| {
                let fg = worker_fg;
                let result = score_on(
                    &request,
                    &fg.landscape(),
                    &fg.models.snapshot(),
                    &fg.intents(),
                    &fg.config.planner,
                    now_ms(),
                    clock,
                )
                .map_err(ApiError::from);
                answer(ENDPOINT, clock.arrived, result, |a| {
                    (a.provenance.budget_exhausted, a.provenance.degraded)
                })
            },
        )
        .await
}
