//! The colouring job: telemetry rows and the landscape graph in, a [`Colouring`] out,
//! published as a new version every run (nothing to beat: a colouring is a judgement of
//! the moment, not a model that could be worse than a baseline).

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::prelude::SessionContext;
use dcpilot_landscape::LandscapeGraph;
use dcpilot_schemas::{Category, EdgeSpec, Layer, NodeSpec, Relation};
use serde::Serialize;

use super::{detect, Colouring, Telemetry};
use crate::error::{PipelineError, Result};
use crate::job::{floats, strings, times_ms};
use crate::spec::{JobSpec, ModelSpec};

/// The live landscape, as the colouring reads it.
const NODES_SQL: &str =
    "SELECT id, layer, category, type, name, aliases FROM landscape_nodes WHERE valid_to IS NULL";
/// The live edges.
const EDGES_SQL: &str =
    "SELECT source, target, relation, weight FROM landscape_edges WHERE valid_to IS NULL";

/// What one colouring found, in brief (the whole colouring is the published version).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColouringSummary {
    /// The moment judged (Unix s).
    pub at: i64,
    /// Entities coloured.
    pub entities: usize,
    /// Of which anomalous.
    pub anomalous: usize,
    /// Hosts coloured anomalous (by themselves or their network).
    pub anomalous_hosts: usize,
    /// The likeliest cause and its score, if any entity is anomalous.
    pub top_cause: Option<(String, f64)>,
    /// What could not be judged.
    pub problems: Vec<String>,
}

impl ColouringSummary {
    /// The summary of `colouring`.
    pub fn of(colouring: &Colouring) -> Self {
        let anomalous = colouring.entities.iter().filter(|e| e.anomalous).count();
        Self {
            at: colouring.at,
            entities: colouring.entities.len(),
            anomalous,
            anomalous_hosts: colouring.hosts.iter().filter(|h| h.anomalous).count(),
            top_cause: (anomalous > 0)
                .then(|| colouring.ranking.first())
                .flatten()
                .map(|c| (c.entity.clone(), c.score)),
            problems: colouring.problems.clone(),
        }
    }
}

impl ColouringSummary {
    /// The top cause's score (0 when nothing is anomalous).
    pub fn top_score(&self) -> f64 {
        self.top_cause.as_ref().map_or(0.0, |(_, score)| *score)
    }
}

/// Whether `next` tells the story `served` told: the same anomalous entities and hosts,
/// the same hosts coloured, the same top five causes in the same order.
pub(crate) fn same_story(served: &Colouring, next: &Colouring) -> bool {
    let anomalous = |c: &Colouring| -> Vec<String> {
        let mut names: Vec<String> = c
            .entities
            .iter()
            .filter(|e| e.anomalous)
            .map(|e| e.entity.clone())
            .chain(
                c.hosts
                    .iter()
                    .filter(|h| h.anomalous)
                    .map(|h| h.host.clone()),
            )
            .collect();
        names.sort();
        names
    };
    let top = |c: &Colouring| -> Vec<String> {
        c.ranking.iter().take(5).map(|r| r.entity.clone()).collect()
    };
    let hosts = |c: &Colouring| -> Vec<String> {
        let mut names: Vec<String> = c.hosts.iter().map(|h| h.host.clone()).collect();
        names.sort();
        names
    };
    hosts(served) == hosts(next) && anomalous(served) == anomalous(next) && top(served) == top(next)
}

/// Rows read and the event-time span they cover (Unix ms).
pub(crate) struct Read {
    pub rows: u64,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Runs a colouring spec's query and the landscape queries on `ctx`.
pub(crate) async fn query(
    spec: &JobSpec,
    ctx: &SessionContext,
) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>, Vec<RecordBatch>)> {
    let telemetry = crate::job::query(spec, ctx).await?;
    let nodes = landscape(spec, ctx, NODES_SQL).await?;
    let edges = landscape(spec, ctx, EDGES_SQL).await?;
    Ok((telemetry, nodes, edges))
}

async fn landscape(spec: &JobSpec, ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let failed = |e: datafusion::error::DataFusionError| {
        PipelineError::Data(format!("{}: reading the landscape: {e}", spec.name))
    };
    ctx.sql(sql)
        .await
        .map_err(failed)?
        .collect()
        .await
        .map_err(failed)
}

/// What a colouring run found to do.
pub(crate) enum Coloured {
    /// A colouring of the newest moment, and what it read.
    Done(Box<Colouring>, Read),
    /// Nothing to colour, and why (no telemetry yet).
    Nothing(String),
}

/// Colours the newest moment of `telemetry` with a full observation window behind it
/// (the newest sample in it).
pub(crate) fn colour(
    spec: &JobSpec,
    telemetry: &[RecordBatch],
    nodes: &[RecordBatch],
    edges: &[RecordBatch],
) -> Result<Coloured> {
    let ModelSpec::Colouring {
        detector,
        window,
        rank,
        ..
    } = &spec.model
    else {
        return Err(PipelineError::Spec(format!(
            "{} is not a colouring job",
            spec.name
        )));
    };
    let detector = detect::by_name(detector).map_err(|e| PipelineError::Spec(e.to_string()))?;
    let Some((telemetry, read)) = telemetry_of(spec, telemetry)? else {
        return Ok(Coloured::Nothing(
            "no finite telemetry to colour yet".into(),
        ));
    };
    let (graph, mut problems) = graph_of(nodes, edges)?;
    // The observed window [at, at + observe) ends with the newest second.
    let at = read.end_ms.div_euclid(1000) - window.observe_secs + 1;
    let mut colouring = super::colour(&telemetry, &graph, at, detector.as_ref(), window, rank);
    let replaced = colouring.make_storable();
    if replaced > 0 {
        problems.push(format!(
            "{replaced} non-finite numbers stored as the nearest finite value (NaN as 0)"
        ));
    }
    colouring.problems.extend(problems);
    Ok(Coloured::Done(Box::new(colouring), read))
}

/// The query's `(time, entity, metric, value)` rows as per-entity series within the spec's
/// window behind the newest row (whole seconds, as the detectors see them); non-finite
/// values and null names are skipped. `None` without one finite row.
fn telemetry_of(spec: &JobSpec, batches: &[RecordBatch]) -> Result<Option<(Telemetry, Read)>> {
    let mut rows: Vec<(i64, String, String, f64)> = Vec::new();
    for batch in batches {
        let times = times_ms(batch, &spec.time_column)?;
        let (entities, metrics) = (strings(batch, "entity")?, strings(batch, "metric")?);
        let values = floats(batch, "value")?;
        // The names move into the rows (no second copy of each string).
        let named = entities.into_iter().zip(metrics).zip(values).enumerate();
        for (i, ((entity, metric), value)) in named {
            if let (Some(entity), Some(metric)) = (entity, metric) {
                if times.is_valid(i) && value.is_finite() {
                    rows.push((times.value(i), entity, metric, value));
                }
            }
        }
    }
    let Some(end_ms) = rows.iter().map(|r| r.0).max() else {
        return Ok(None);
    };
    let window_secs = i64::try_from(spec.window_secs).unwrap_or(i64::MAX);
    let from_ms = (end_ms.div_euclid(1000).saturating_sub(window_secs)).saturating_mul(1000);
    let mut telemetry = Telemetry::default();
    let mut read = Read {
        rows: 0,
        start_ms: end_ms,
        end_ms,
    };
    for (t, entity, metric, value) in rows.iter().filter(|r| r.0 >= from_ms) {
        telemetry.push(entity, metric, t.div_euclid(1000), *value);
        read.rows += 1;
        read.start_ms = read.start_ms.min(*t);
    }
    telemetry.sort();
    Ok(Some((telemetry, read)))
}

/// The live landscape from the `landscape_nodes` / `landscape_edges` rows, with the
/// edges' weights; what cannot be read is reported, never fatal.
fn graph_of(nodes: &[RecordBatch], edges: &[RecordBatch]) -> Result<(LandscapeGraph, Vec<String>)> {
    let mut graph = LandscapeGraph::new();
    let mut problems = Vec::new();
    for batch in nodes {
        let [id, layer, category, node_type, name, aliases] =
            ["id", "layer", "category", "type", "name", "aliases"].map(|c| strings(batch, c));
        let (id, layer, category, node_type, name, aliases) =
            (id?, layer?, category?, node_type?, name?, aliases?);
        for i in 0..batch.num_rows() {
            let (Some(id), Some(node_type)) = (&id[i], &node_type[i]) else {
                continue;
            };
            let (layer, category) = (layer[i].as_deref(), category[i].as_deref());
            let Some((layer, category)) = layer
                .and_then(Layer::parse)
                .zip(category.and_then(Category::parse))
            else {
                problems.push(format!(
                    "landscape node {id}: unknown layer {layer:?} or category {category:?}"
                ));
                continue;
            };
            let mut spec = NodeSpec::new(id.clone(), layer, category, node_type);
            spec.name = name[i].clone().filter(|n| n != id);
            spec.aliases = aliases[i]
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_default();
            if let Err(e) = graph.upsert_node(0, &spec) {
                problems.push(format!("landscape node {id}: {e}"));
            }
        }
    }
    for batch in edges {
        let (source, target, relation) = (
            strings(batch, "source")?,
            strings(batch, "target")?,
            strings(batch, "relation")?,
        );
        let weight = floats(batch, "weight")?;
        for i in 0..batch.num_rows() {
            let (Some(source), Some(target)) = (&source[i], &target[i]) else {
                continue;
            };
            let Some(relation) = relation[i].as_deref().and_then(Relation::parse) else {
                problems.push(format!(
                    "landscape edge {source} → {target}: unknown relation {:?}",
                    relation[i]
                ));
                continue;
            };
            let mut spec = EdgeSpec::new(source, relation, target);
            spec.weight = Some(weight[i]).filter(|w| w.is_finite());
            if let Err(e) = graph.upsert_edge(0, &spec) {
                problems.push(format!("landscape edge {source} → {target}: {e}"));
            }
        }
    }
    Ok((graph, problems))
}
