//! The landscape graph's questions over HTTP, each answered from one immutable snapshot
//! of the graph (no lock), as of `at` (Unix ms; default now):
//!
//! - `GET /v1/landscape/graph?at=&layer=&type=&label=k=v`: nodes and edges (filtered);
//! - `GET /v1/landscape/summary?at=`: counts by layer and type, edges by relation;
//! - `GET /v1/landscape/node?id=&at=`: one node (id or alias) with its edges;
//! - `GET /v1/landscape/subgraph?id=&depth=3&walk=down|up|both&relation=&at=`;
//! - `GET /v1/landscape/neighbours?id=&relation=&walk=both&at=`;
//! - `GET /v1/landscape/path?from=&to=&at=`: the shortest paths;
//! - `GET /v1/landscape/blast?id=&at=`: what fails with the node;
//! - `GET /v1/landscape/diff?from=&to=`: what changed in between;
//! - `GET /v1/landscape/export?format=networkx|dot&at=`;
//! - `GET /landscape?at=`: a page drawing it by layer (physical at the bottom, services on
//!   top), hosts and what runs on them coloured by utilisation, a node's details on click.
//!
//! Ids go in the query (they hold `/`). A missing or bad parameter is a 400 naming it; an
//! unknown node, or one not alive at `at`, a 404.

use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dcpilot_landscape::formats::{networkx, ExportFormat};
use dcpilot_landscape::{GraphError, NodeFilter, Walk};
use dcpilot_schemas::{Layer, Relation};
use serde_json::{json, Value};

use super::{answer, now_ms, ApiError, Shared};

const ENDPOINT: &str = "landscape_query";

/// The query string's parameters, in order (a name may repeat).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Self {
        let raw = raw.unwrap_or_default();
        Self(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A whole number within `range` (default `default`); otherwise a 400 saying it is not
    /// `what`.
    fn count(
        &self,
        name: &str,
        default: usize,
        range: std::ops::RangeInclusive<usize>,
        what: &str,
    ) -> Result<usize, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| ApiError::bad(format!("query: `{name}` {v:?} is not {what}"))),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad(format!("query: `{name}` is required")))
    }

    fn time(&self, name: &str) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(now_ms()),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad(format!("query: `{name}` {v:?} is not a time in Unix ms"))
            }),
        }
    }

    fn walk(&self, default: Walk) -> Result<Walk, ApiError> {
        match self.get("walk") {
            None => Ok(default),
            Some(v) => Walk::parse(v).ok_or_else(|| {
                ApiError::bad(format!("query: `walk` {v:?} is not down, up or both"))
            }),
        }
    }

    fn relations(&self) -> Result<Vec<Relation>, ApiError> {
        self.all("relation")
            .map(|v| {
                Relation::parse(v).ok_or_else(|| {
                    let known: Vec<&str> = Relation::ALL.iter().map(|r| r.as_str()).collect();
                    ApiError::bad(format!(
                        "query: `relation` {v:?} is not one of {}",
                        known.join(", ")
                    ))
                })
            })
            .collect()
    }
}

fn not_found(e: GraphError) -> ApiError {
    match e {
        GraphError::UnknownNode(_) | GraphError::NotAlive { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string())
        }
        other => ApiError::bad(other.to_string()),
    }
}

fn respond(raw: Option<String>, ask: impl FnOnce(&Params) -> Result<Value, ApiError>) -> Response {
    let started = Instant::now();
    let result = ask(&Params::parse(raw));
    answer(ENDPOINT, started, result, |_| (false, false))
}

pub(super) async fn whole(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let layer = match q.get("layer") {
            None => None,
            Some(l) => Some(Layer::parse(l).ok_or_else(|| {
                ApiError::bad(format!(
                    "query: `layer` {l:?} is not physical, virtual or service"
                ))
            })?),
        };
        let mut filter = NodeFilter {
            layer,
            types: q.all("type").map(str::to_string).collect(),
            ..NodeFilter::default()
        };
        for label in q.all("label") {
            let (k, v) = label.split_once('=').ok_or_else(|| {
                ApiError::bad(format!("query: `label` {label:?} is not key=value"))
            })?;
            filter.labels.insert(k.into(), v.into());
        }
        Ok(json!(fg.graph().at(q.time("at")?, &filter)))
    })
}

pub(super) async fn summary(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| Ok(json!(fg.graph().summary(q.time("at")?))))
}

/// `GET /v1/landscape/anomalies`: the served landscape colouring — every entity's score,
/// the ranked root causes with their evidence (`top`, default 20), the hosts placement
/// avoids — and its version and age.
pub(super) async fn anomalies(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let top = q.count("top", 20, 1..=10_000, "a count from 1 to 10000")?;
        let name = fg.planner().colouring_model.as_str();
        let snapshot = fg.models.snapshot();
        let served = snapshot.get(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no landscape colouring is served yet (model {name:?}): the background's colouring job publishes one when it runs"
                ),
            )
        })?;
        let prepared = served.prepared.colouring().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "planner.colouring_model names {name:?}, a {}, not a colouring",
                    served.record.kind
                ),
            )
        })?;
        let stale = served.age_secs(now_ms()) > fg.planner().max_colouring_age_secs;
        Ok(anomalies_document(name, served, prepared, top, stale))
    })
}

/// The body of `GET /v1/landscape/anomalies` (also what `dcpilot demo` embeds in its page).
pub fn anomalies_document(
    name: &str,
    served: &dcpilot_info_core::ServedModel,
    colouring: &dcpilot_info_core::PreparedColouring,
    top: usize,
    stale: bool,
) -> Value {
    let c = &colouring.colouring;
    json!({
        "model": name,
        "version": served.version(),
        "created_at_ms": served.record.created_at_ms,
        "stale": stale,
        "at": c.at,
        "detector": c.detector,
        "window": c.window,
        "ranking": &c.ranking[..c.ranking.len().min(top)],
        "candidates": c.ranking.len(),
        "hosts": c.hosts,
        "entities": c.entities,
        "problems": c.problems,
    })
}

pub(super) async fn node(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let (id, t) = (q.required("id")?, q.time("at")?);
        let graph = fg.graph();
        let ix = graph.node_at(id, t).map_err(not_found)?;
        let edges = |walk| {
            graph
                .neighbours(id, None, walk, t)
                .map(|n| n.into_iter().map(|(e, _)| e).collect::<Vec<_>>())
        };
        Ok(json!({
            "node": graph.view(ix, t),
            "out": edges(Walk::Down).map_err(not_found)?,
            "in": edges(Walk::Up).map_err(not_found)?,
        }))
    })
}

pub(super) async fn subgraph(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let depth = q.count("depth", 3, 0..=64, "a number of hops ≤ 64")?;
        let view = fg
            .graph()
            .subgraph(
                q.required("id")?,
                q.walk(Walk::Down)?,
                depth,
                &q.relations()?,
                q.time("at")?,
            )
            .map_err(not_found)?;
        Ok(json!(view))
    })
}

pub(super) async fn neighbours(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let relations = q.relations()?;
        let (id, walk, t) = (q.required("id")?, q.walk(Walk::Both)?, q.time("at")?);
        let found = fg
            .graph()
            .neighbours(id, None, walk, t)
            .map_err(not_found)?;
        let list: Vec<Value> = found
            .into_iter()
            .filter(|(e, _)| relations.is_empty() || relations.contains(&e.relation))
            .map(|(edge, node)| json!({ "edge": edge, "node": node }))
            .collect();
        Ok(json!({ "id": id, "neighbours": list }))
    })
}

pub(super) async fn path(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let (from, to) = (q.required("from")?, q.required("to")?);
        let paths = fg
            .graph()
            .paths(from, to, q.time("at")?)
            .map_err(not_found)?;
        Ok(json!({ "from": from, "to": to, "paths": paths }))
    })
}

pub(super) async fn blast(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let id = q.required("id")?;
        let affected = fg
            .graph()
            .blast_radius(id, q.time("at")?)
            .map_err(not_found)?;
        Ok(json!({ "id": id, "affected": affected }))
    })
}

pub(super) async fn diff(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    respond(raw, |q| {
        let from = q.time("from")?;
        if q.get("from").is_none() {
            return Err(ApiError::bad("query: `from` is required"));
        }
        let to = q.time("to")?;
        if to < from {
            return Err(ApiError::bad(format!(
                "query: `to` ({to}) is before `from` ({from})"
            )));
        }
        Ok(json!(fg.graph().diff(from, to)))
    })
}

pub(super) async fn export(State(fg): Shared, RawQuery(raw): RawQuery) -> Response {
    let q = Params::parse(raw);
    let started = Instant::now();
    let graph = fg.graph();
    let format = match ExportFormat::parse(q.get("format").unwrap_or("networkx")) {
        Ok(f) => f,
        Err(e) => return ApiError::bad(format!("query: `format`: {e}")).into_response(),
    };
    match format {
        ExportFormat::Networkx => {
            let doc = networkx::export(&graph, networkx::LinkStyle::Index);
            answer(ENDPOINT, started, Ok(doc), |_| (false, false))
        }
        ExportFormat::Dot | ExportFormat::History => {
            let at = match format {
                ExportFormat::Dot => q.time("at"),
                _ => Ok(0),
            };
            match at {
                Ok(t) => {
                    let text = format.export(&graph, t, networkx::LinkStyle::Index);
                    ([(header::CONTENT_TYPE, format.content_type())], text).into_response()
                }
                Err(e) => e.into_response(),
            }
        }
    }
}

/// `GET /landscape`: the landscape drawn by layer (a page that reads the endpoints above).
const VIEW: &str = include_str!("view.html");

pub(super) async fn view() -> axum::response::Html<&'static str> {
    axum::response::Html(VIEW)
}

/// The landscape page with its data inside (`graph` as `GET /v1/landscape/graph` answers,
/// `placement` as `GET /v1/landscape`, `anomalies` as `GET /v1/landscape/anomalies` or
/// none): one file a browser opens without a server.
pub fn standalone_view(
    graph: &serde_json::Value,
    placement: &serde_json::Value,
    anomalies: Option<&serde_json::Value>,
) -> String {
    let data = json!({ "graph": graph, "placement": placement, "anomalies": anomalies })
        .to_string()
        // JSON inside a <script>: no element may end early.
        .replace("</", "<\\/");
    let preamble = format!("<script>window.DCPILOT_EMBEDDED = {data};</script>\n<script>");
    VIEW.replacen("<script>", &preamble, 1)
}
