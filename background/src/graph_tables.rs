//! The landscape graph as SQL tables beside `telemetry`: `landscape_nodes` (one row per
//! span a node was alive) and `landscape_edges` (one row per span an edge held), with
//! `valid_from` / `valid_to` (null while alive) as timestamps, so a job can join telemetry
//! with what each entity was connected to at the sample's time:
//!
//! ```sql
//! SELECT t.entity, e.target AS host, avg(t.value)
//! FROM telemetry t JOIN landscape_edges e
//!   ON e.source = t.entity AND e.relation = 'runs_on'
//!  AND t.ts >= e.valid_from AND (e.valid_to IS NULL OR t.ts < e.valid_to)
//! GROUP BY t.entity, e.target
//! ```
//!
//! Each scan reads the graph as it is then (one consistent copy of the rows).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use dcpilot_landscape::{GraphStore, LandscapeGraph};
use dcpilot_schemas::arrow_schema::timestamp_type as ts;

static NODES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("layer", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("aliases", DataType::Utf8, false),
        Field::new("labels", DataType::Utf8, false),
        Field::new("attributes", DataType::Utf8, false),
        Field::new("valid_from", ts(), false),
        Field::new("valid_to", ts(), true),
    ]))
});

static EDGES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("relation", DataType::Utf8, false),
        Field::new("weight", DataType::Float64, true),
        Field::new("valid_from", ts(), false),
        Field::new("valid_to", ts(), true),
    ]))
});

/// A builder for a `valid_from` / `valid_to` column (the zone must match the schema's).
fn validity() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

fn node_rows(graph: &LandscapeGraph) -> datafusion::error::Result<RecordBatch> {
    let mut text: Vec<StringBuilder> = (0..8).map(|_| StringBuilder::new()).collect();
    let (mut from, mut to) = (validity(), validity());
    for (_, node) in graph.nodes() {
        for span in node.lifetime.spans() {
            // The description in force when the span began.
            let v = node.version_at(span.from_ms);
            let aliases = serde_json::to_string(&v.aliases).unwrap_or_default();
            let labels = serde_json::to_string(&v.labels).unwrap_or_default();
            let attributes = serde_json::Value::Object(v.attributes.clone()).to_string();
            let name = v.name.as_deref().unwrap_or(&node.id);
            for (b, value) in text.iter_mut().zip([
                node.id.as_str(),
                node.layer.as_str(),
                node.category.as_str(),
                node.node_type.as_str(),
                name,
                aliases.as_str(),
                labels.as_str(),
                attributes.as_str(),
            ]) {
                b.append_value(value);
            }
            from.append_value(span.from_ms);
            to.append_option(span.to_ms);
        }
    }
    let mut columns: Vec<ArrayRef> = text
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    columns.push(Arc::new(from.finish()));
    columns.push(Arc::new(to.finish()));
    Ok(RecordBatch::try_new(NODES.clone(), columns)?)
}

fn edge_rows(graph: &LandscapeGraph) -> datafusion::error::Result<RecordBatch> {
    let (mut source, mut target, mut relation) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut weight = Float64Builder::new();
    let (mut from, mut to) = (validity(), validity());
    for (_, s, d, edge) in graph.edges() {
        for span in edge.lifetime.spans() {
            source.append_value(&graph.node(s).id);
            target.append_value(&graph.node(d).id);
            relation.append_value(edge.relation.as_str());
            weight.append_option(edge.version_at(span.from_ms).weight);
            from.append_value(span.from_ms);
            to.append_option(span.to_ms);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(target.finish()),
        Arc::new(relation.finish()),
        Arc::new(weight.finish()),
        Arc::new(from.finish()),
        Arc::new(to.finish()),
    ];
    Ok(RecordBatch::try_new(EDGES.clone(), columns)?)
}

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphTableKind {
    /// `landscape_nodes`.
    Nodes,
    /// `landscape_edges`.
    Edges,
}

/// One of the landscape graph's tables over a [`GraphStore`].
pub struct GraphTable {
    kind: GraphTableKind,
    graph: Arc<GraphStore>,
}

impl GraphTable {
    /// The table of `kind` over `graph`.
    pub fn new(kind: GraphTableKind, graph: Arc<GraphStore>) -> Self {
        Self { kind, graph }
    }

    /// Its SQL name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            GraphTableKind::Nodes => "landscape_nodes",
            GraphTableKind::Edges => "landscape_edges",
        }
    }
}

impl std::fmt::Debug for GraphTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[async_trait]
impl TableProvider for GraphTable {
    fn schema(&self) -> SchemaRef {
        match self.kind {
            GraphTableKind::Nodes => NODES.clone(),
            GraphTableKind::Edges => EDGES.clone(),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let batch = self.graph.read(|g| match self.kind {
            GraphTableKind::Nodes => node_rows(g),
            GraphTableKind::Edges => edge_rows(g),
        })?;
        let exec =
            MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema(), projection.cloned())?;
        Ok(exec)
    }
}
