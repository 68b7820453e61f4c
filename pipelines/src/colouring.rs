//! The colouring job: telemetry rows and the landscape graph in, a [`Colouring`] out,
//! published as a new version every run (nothing to beat: a colouring is a judgement of
//! the moment, not a model that could be worse than a baseline).

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::prelude::SessionContext;
use dcpilot_info_core::anomaly::{self, detect, Colouring, Telemetry};
use dcpilot_info_core::landscape::LandscapeGraph;
use dcpilot_schemas::{Category, EdgeSpec, Layer, NodeSpec, Relation};
use serde::Serialize;

use crate::error::{PipelineError, Result};
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

/// Colours the newest moment of `telemetry` that has a full observation window behind it.
pub(crate) fn colour(
    spec: &JobSpec,
    telemetry: &[RecordBatch],
    nodes: &[RecordBatch],
    edges: &[RecordBatch],
) -> Result<(Colouring, Read)> {
    let ModelSpec::Colouring {
        detector,
        window,
        rank,
    } = &spec.model
    else {
        return Err(PipelineError::Spec(format!(
            "{} is not a colouring job",
            spec.name
        )));
    };
    let detector = detect::by_name(detector).map_err(PipelineError::Spec)?;
    let (telemetry, read) = telemetry_of(spec, telemetry)?;
    let (graph, mut problems) = graph_of(nodes, edges)?;
    // The newest moment whose observation window the data covers.
    let at = read.end_ms.div_euclid(1000) - window.observe_secs;
    let mut colouring = anomaly::colour(&telemetry, &graph, at, detector.as_ref(), window, rank);
    let replaced = colouring.make_storable();
    if replaced > 0 {
        problems.push(format!(
            "{replaced} numbers beyond f64 (a zero spread) stored as the nearest finite value"
        ));
    }
    colouring.problems.extend(problems);
    Ok((colouring, read))
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    batch
        .column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| PipelineError::Data(format!("the query has no column {name:?}")))
}

fn as_type(batch: &RecordBatch, name: &str, to: &DataType) -> Result<std::sync::Arc<dyn Array>> {
    cast(column(batch, name)?, to).map_err(|e| PipelineError::Data(format!("column {name:?}: {e}")))
}

/// The query's `(time, entity, metric, value)` rows as per-entity series within the spec's
/// window behind the newest row; non-finite values and null names are skipped.
fn telemetry_of(spec: &JobSpec, batches: &[RecordBatch]) -> Result<(Telemetry, Read)> {
    let mut rows: Vec<(i64, String, String, f64)> = Vec::new();
    for batch in batches {
        let times = as_type(
            batch,
            &spec.time_column,
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )
        .and_then(|a| cast(&a, &DataType::Int64).map_err(|e| PipelineError::Data(e.to_string())))?;
        let times = times.as_primitive::<Int64Type>();
        let entities = as_type(batch, "entity", &DataType::Utf8)?;
        let entities = entities.as_string::<i32>();
        let metrics = as_type(batch, "metric", &DataType::Utf8)?;
        let metrics = metrics.as_string::<i32>();
        let values = as_type(batch, "value", &DataType::Float64)?;
        let values = values.as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            if times.is_null(i) || entities.is_null(i) || metrics.is_null(i) || values.is_null(i) {
                continue;
            }
            let value = values.value(i);
            if value.is_finite() {
                rows.push((
                    times.value(i),
                    entities.value(i).to_string(),
                    metrics.value(i).to_string(),
                    value,
                ));
            }
        }
    }
    let Some(end_ms) = rows.iter().map(|r| r.0).max() else {
        return Err(PipelineError::Data(format!(
            "{}: the query yields no finite (ts, entity, metric, value) rows",
            spec.name
        )));
    };
    let window_ms = i64::try_from(spec.window_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let from_ms = end_ms.saturating_sub(window_ms);
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
    Ok((telemetry, read))
}

/// The live landscape from the `landscape_nodes` / `landscape_edges` rows; what cannot be
/// read is reported, never fatal.
fn graph_of(nodes: &[RecordBatch], edges: &[RecordBatch]) -> Result<(LandscapeGraph, Vec<String>)> {
    let mut graph = LandscapeGraph::new();
    let mut problems = Vec::new();
    let text = |batch: &RecordBatch, name: &str| -> Result<Vec<Option<String>>> {
        let array = as_type(batch, name, &DataType::Utf8)?;
        let array = array.as_string::<i32>();
        Ok((0..array.len())
            .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
            .collect())
    };
    for batch in nodes {
        let columns =
            ["id", "layer", "category", "type", "name", "aliases"].map(|name| text(batch, name));
        let [id, layer, category, node_type, name, aliases] = columns;
        let (id, layer, category, node_type, name, aliases) =
            (id?, layer?, category?, node_type?, name?, aliases?);
        for i in 0..batch.num_rows() {
            let (Some(id), Some(node_type)) = (&id[i], &node_type[i]) else {
                continue;
            };
            let parsed = layer[i]
                .as_deref()
                .and_then(Layer::parse)
                .zip(category[i].as_deref().and_then(Category::parse));
            let Some((layer, category)) = parsed else {
                problems.push(format!("landscape node {id}: unknown layer or category"));
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
            text(batch, "source")?,
            text(batch, "target")?,
            text(batch, "relation")?,
        );
        for i in 0..batch.num_rows() {
            let (Some(source), Some(target)) = (&source[i], &target[i]) else {
                continue;
            };
            let Some(relation) = relation[i].as_deref().and_then(Relation::parse) else {
                problems.push(format!(
                    "landscape edge {source} → {target}: unknown relation"
                ));
                continue;
            };
            if let Err(e) = graph.upsert_edge(0, &EdgeSpec::new(source, relation, target)) {
                problems.push(format!("landscape edge {source} → {target}: {e}"));
            }
        }
    }
    Ok((graph, problems))
}
