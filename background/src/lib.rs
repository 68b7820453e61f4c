//! The background flow: Kafka source, micro-batching, and the `telemetry` / `landscape`
//! tables that background jobs query with DataFusion SQL.
//!
//! ```text
//! dcpilot.telemetry ─┐                      ┌─► telemetry table ─┐
//!                    ├─► Ingestor: decode ──┤                    ├─► SQL (DataFusion)
//! dcpilot.landscape ─┘          │           └─► landscape table ─┘
//!                               └─► dcpilot.telemetry.dlq (bad input + reason)
//! ```

pub mod annotate;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod error;
pub mod events;
pub mod graph_tables;
pub mod health;
pub mod http;
pub mod ingest;
pub mod replay;
pub mod runner;
pub mod service;
pub mod shared;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use tokio::sync::watch;

pub use broker::EmbeddedBroker;
pub use config::BackgroundConfig;
pub use error::{BackgroundError, Cause, Result};
pub use graph_tables::{GraphTable, GraphTableKind};
pub use health::{Readiness, ReadinessReport};
pub use ingest::{IngestStats, Ingestor};
pub use runner::{JobRunner, JobRunnerStats, JobsConfig, TriggerOverride};
pub use service::{BackgroundOutcome, BackgroundService};
pub use store::{InsertOutcome, TableSettings, TableSpec, TableStore};

/// The queryable window of telemetry and landscape: both tables, registered in one
/// DataFusion session.
pub struct TelemetryStore {
    /// The `telemetry` table.
    pub telemetry: Arc<TableStore>,
    /// The `landscape` table (the events as they came).
    pub landscape: Arc<TableStore>,
    /// The landscape graph the events build, in `data_dir/landscape/graph.json`.
    pub graph: Arc<dcpilot_landscape::GraphStore>,
    ctx: SessionContext,
}

/// The landscape graph's file under a data directory's `landscape/`.
pub const GRAPH_FILE: &str = dcpilot_landscape::formats::history::FILE_NAME;

/// How a [`TelemetryStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The ingesting process: recovers, writes, spills.
    ReadWrite,
    /// A query tool beside a running ingester: reads what is on disk, writes nothing.
    ReadOnly,
}

impl TelemetryStore {
    /// Opens both tables under `data_dir/tables/` (memory only when `data_dir` is `None` or
    /// `store.durable` is off).
    pub fn open(
        data_dir: Option<&Path>,
        config: &config::StoreConfig,
        mode: OpenMode,
    ) -> Result<Self> {
        let tables = data_dir.map(dcpilot_schemas::names::data_dir::tables);
        Self::open_with_tables(data_dir, tables.as_deref(), config, mode)
    }

    /// [`open`](Self::open) with the tables under `tables_dir` instead of
    /// `data_dir/tables/` (a scaled-out replica keeps them on the shared mount).
    pub fn open_with_tables(
        data_dir: Option<&Path>,
        tables_dir: Option<&Path>,
        config: &config::StoreConfig,
        mode: OpenMode,
    ) -> Result<Self> {
        let table_dir = |name: &str| -> Option<PathBuf> {
            tables_dir
                .filter(|_| config.durable || mode == OpenMode::ReadOnly)
                .map(|d| d.join(name))
        };
        let settings = |name: &str| TableSettings {
            retention_ms: (config.retention_secs as i64).saturating_mul(1000),
            partition_ms: (config.partition_secs as i64).saturating_mul(1000),
            dir: table_dir(name),
            spill: config.spill,
            read_only: mode == OpenMode::ReadOnly,
            memory_ceiling_bytes: (config.memory_ceiling_mb > 0)
                .then(|| usize::try_from(config.memory_ceiling_mb << 20).unwrap_or(usize::MAX)),
        };
        let telemetry = Arc::new(TableStore::open(
            TableSpec::telemetry(),
            settings("telemetry"),
        )?);
        let landscape = Arc::new(TableStore::open(
            TableSpec::landscape(),
            settings("landscape"),
        )?);
        let graph_file = data_dir.map(dcpilot_schemas::names::data_dir::landscape_graph);
        let graph = dcpilot_landscape::GraphStore::open(graph_file.clone()).map_err(|source| {
            BackgroundError::Landscape {
                path: graph_file.unwrap_or_default(),
                source,
            }
        })?;
        let ctx = SessionContext::new();
        ctx.register_table("telemetry", telemetry.clone())?;
        ctx.register_table("landscape", landscape.clone())?;
        let graph = Arc::new(graph);
        for kind in [GraphTableKind::Nodes, GraphTableKind::Edges] {
            let table = GraphTable::new(kind, graph.clone());
            ctx.register_table(table.name(), Arc::new(table))?;
        }
        Ok(Self {
            telemetry,
            landscape,
            graph,
            ctx,
        })
    }

    /// Memory-only tables holding `samples`, with a window as long as any trace and no
    /// spill: for backtests (`jobs run-once --data`), `query --data` and tests.
    pub fn from_samples(samples: &[dcpilot_schemas::TelemetrySample]) -> Result<Self> {
        let config = config::StoreConfig {
            durable: false,
            spill: false,
            retention_secs: 100 * 365 * 86_400,
            partition_secs: 30 * 86_400,
            memory_ceiling_mb: 0,
        };
        let store = Self::open(None, &config, OpenMode::ReadWrite)?;
        let mut builder = dcpilot_schemas::TelemetryBatchBuilder::with_capacity(65_536);
        for chunk in samples.chunks(65_536) {
            for s in chunk {
                dcpilot_schemas::decode::SampleSink::push(&mut builder, &s.as_ref());
            }
            store.telemetry.insert(&builder.finish())?;
        }
        Ok(store)
    }

    /// Makes `telemetry` and `landscape` in SQL read every replica's tables under
    /// `shared_dir` (this one's, named `replica`, from memory); returns the telemetry
    /// table, which says what its last scan read.
    pub fn share(
        &self,
        shared_dir: &Path,
        replica: Option<&str>,
    ) -> Result<Arc<shared::SharedTable>> {
        let mut telemetry = None;
        for table in [&self.telemetry, &self.landscape] {
            let shared = Arc::new(shared::SharedTable::new(
                shared_dir,
                table.clone(),
                replica.map(str::to_string),
            ));
            self.ctx.deregister_table(table.name())?;
            self.ctx.register_table(table.name(), shared.clone())?;
            if table.name() == "telemetry" {
                telemetry = Some(shared);
            }
        }
        telemetry.ok_or_else(|| BackgroundError::Internal("no telemetry table".into()))
    }

    /// The DataFusion session with both tables registered.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one SQL query and collects its result.
    pub async fn sql(&self, query: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(query).await?.collect().await?)
    }
}

/// Runs ingestion until `shutdown` flips. A failed ingestor (Kafka or disk trouble) is
/// rebuilt after a backoff and resumes from the last committed offsets; errors no retry can
/// fix end the run.
pub async fn run_ingest(
    config: &BackgroundConfig,
    brokers: &str,
    store: &TelemetryStore,
    readiness: Arc<health::Readiness>,
    shutdown: watch::Receiver<bool>,
) -> Result<IngestStats> {
    let mut backoff = Duration::from_millis(500);
    let mut total = IngestStats::default();
    loop {
        let ingestor = Ingestor::new(
            config,
            brokers,
            store.telemetry.clone(),
            store.landscape.clone(),
            store.graph.clone(),
            readiness.clone(),
        )?;
        match ingestor.run(shutdown.clone()).await {
            Ok(stats) => {
                total.messages += stats.messages;
                total.rows += stats.rows;
                total.duplicates += stats.duplicates;
                total.dead_letters += stats.dead_letters;
                total.batches += stats.batches;
                return Ok(total);
            }
            Err(e) if e.is_retryable() && !*shutdown.borrow() => {
                tracing::error!(error = %e, backoff_ms = backoff.as_millis() as u64, "ingestion failed; restarting from committed offsets");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

pub use datafusion::arrow::record_batch::RecordBatch;

/// Formats query results as a text table.
pub fn pretty(batches: &[RecordBatch]) -> Result<String> {
    Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string())
}

/// Formats query results as newline-delimited JSON objects.
pub fn json_lines(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner())
}

pub use datafusion::arrow::array::Int64Array;
pub use datafusion::arrow::error::ArrowError;
pub use datafusion::arrow::json::ArrayWriter as JsonArrayWriter;
