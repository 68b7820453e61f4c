//! The Kubernetes scheduler-extender endpoints: `POST /scheduler/filter` (nodes the pod
//! fits on) and `POST /scheduler/prioritize` (node scores from the planner), both on the
//! decision lane within the planner's budget from arrival.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use serde_json::Value;

use super::admission::Lane;
use super::{now_ms, on_lane, parse, ApiError, Arrival, Foreground, Shared};
use crate::extender::{self, ExtenderArgs, ExtenderFilterResult};
use crate::landscape::Landscape;
use crate::planner::{place_on, Clock, PlacementRequest, PlanError};

/// An extender call read: its args, the pod's request, the landscape of its candidates,
/// their names, and the names known nowhere.
struct ExtenderCall {
    args: ExtenderArgs,
    request: PlacementRequest,
    landscape: Landscape,
    names: Vec<String>,
    unknown: Vec<String>,
}

fn extender_call(fg: &Foreground, args: ExtenderArgs) -> Result<ExtenderCall, ApiError> {
    let bad = |e: String| ApiError::bad(format!("body: {e}"));
    let request = extender::request_from_pod(&args.pod).map_err(|e| bad(e.0))?;
    let candidates = extender::candidates(&args).map_err(|e| bad(e.0))?;
    let mut extra = Vec::new();
    let served = fg.landscape();
    for c in &candidates {
        if served.host_index(&c.name).is_none() {
            if let Some(node) = &c.node {
                extra.push(extender::host_from_node(node).map_err(|e| bad(e.0))?);
            }
        }
    }
    let names: Vec<String> = candidates.into_iter().map(|c| c.name).collect();
    let (landscape, unknown) = served.subset(&names, &extra);
    Ok(ExtenderCall {
        args,
        request,
        landscape,
        names,
        unknown,
    })
}

pub(super) async fn filter(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    on_decision_lane(fg, arrival, body, "scheduler_filter", |fg, args, _clock| {
        let ExtenderCall {
            args,
            request,
            landscape: sub,
            unknown,
            ..
        } = extender_call(fg, args)?;
        let mut out = ExtenderFilterResult::default();
        for name in &unknown {
            out.failed_and_unresolvable_nodes.insert(
                name.clone(),
                "unknown to dcpilot and not in the request's NodeList".into(),
            );
        }
        let mut passing = Vec::new();
        for (host, load) in sub.hosts().iter().zip(sub.loads()) {
            let free_cores = host.cores - load.busy_cores();
            let free_memory = host.memory_bytes.saturating_sub(load.memory_bytes);
            if free_cores + 1e-9 >= request.cores && free_memory >= request.memory_bytes {
                passing.push(host.name.clone());
            } else {
                out.failed_nodes.insert(
                    host.name.clone(),
                    format!(
                        "{} needs {:.2} cores and {} bytes; {:.2} cores and {} bytes free",
                        request.workload,
                        request.cores,
                        request.memory_bytes,
                        free_cores,
                        free_memory
                    ),
                );
            }
        }
        if let Some(list) = &args.nodes {
            let mut list = list.clone();
            if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
                items.retain(|n| {
                    n.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .is_some_and(|name| passing.iter().any(|p| p == name))
                });
            }
            out.nodes = Some(list);
        } else {
            out.node_names = Some(passing);
        }
        Ok(out)
    })
    .await
}

pub(super) async fn prioritize(
    State(fg): Shared,
    Extension(arrival): Extension<Arrival>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    on_decision_lane(
        fg,
        arrival,
        body,
        "scheduler_prioritize",
        |fg, args, clock| {
            let ExtenderCall {
                request,
                landscape: sub,
                names,
                ..
            } = extender_call(fg, args)?;
            let mut config = fg.config.planner.clone();
            config.top = names.len().max(1);
            let scored: Vec<(String, f64)> = match place_on(
                &request,
                &sub,
                &fg.models.snapshot(),
                &fg.intents(),
                &config,
                now_ms(),
                clock,
            ) {
                Ok(a) => a.choices.into_iter().map(|c| (c.host, c.score)).collect(),
                // Nothing fits: every node gets 0 (filter has said why).
                Err(PlanError::NoFeasibleHost { .. }) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            Ok(extender::priorities(&scored, &names))
        },
    )
    .await
}

/// An extender call: its args read here, `handle`d on the decision lane within the
/// planner's budget from arrival, answered and counted as `endpoint`.
async fn on_decision_lane<T: serde::Serialize>(
    fg: Arc<Foreground>,
    arrival: Arrival,
    body: Result<Bytes, BytesRejection>,
    endpoint: &'static str,
    handle: impl FnOnce(&Foreground, ExtenderArgs, Clock) -> Result<T, ApiError> + Send + 'static,
) -> Response {
    let read = parse::<ExtenderArgs>(body).map(|args| (args, fg.config.planner.budget_ms));
    let work = move |fg: &Arc<Foreground>, args, clock| handle(fg, args, clock);
    on_lane(&fg, Lane::Decision, endpoint, arrival, read, work, |_| {
        (false, false)
    })
    .await
}
