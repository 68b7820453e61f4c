//! One table over every replica's copy of it in a shared directory: this process's own
//! table (in memory, current to the last batch) plus, read-only, each other replica's
//! durable segments and Parquet archive under `<shared_dir>/<replica>/tables/<table>`.
//!
//! Another replica's table is re-read only when its directory listing changed (segments
//! and archive files are immutable once written). Rows are not deduplicated across
//! replicas: a partition that moved after a crash may hold, in both replicas, the rows
//! stored but not yet committed at the crash (at most one batch per partition).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use dcpilot_info_core::LineageInput;
use parking_lot::{Mutex, RwLock};

use crate::error::{BackgroundError, Result};
use crate::store::{TableSettings, TableStore};

struct Peer {
    listing: Vec<String>,
    table: Arc<TableStore>,
}

/// See the module docs.
pub struct SharedTable {
    own: Option<(String, Arc<TableStore>)>,
    shared_dir: PathBuf,
    template: Arc<TableStore>,
    peers: Mutex<BTreeMap<String, Peer>>,
    last_inputs: RwLock<Vec<LineageInput>>,
}

impl SharedTable {
    /// The table `like` (its name, schema and settings) across every replica under
    /// `shared_dir`; `own` is this replica's name and live table, if it has one.
    pub fn new(shared_dir: &Path, like: Arc<TableStore>, own: Option<String>) -> Self {
        Self {
            own: own.map(|name| (name, like.clone())),
            shared_dir: shared_dir.to_path_buf(),
            template: like,
            peers: Mutex::new(BTreeMap::new()),
            last_inputs: RwLock::new(Vec::new()),
        }
    }

    /// The replicas (and their stored offsets) the last scan read.
    pub fn last_inputs(&self) -> Vec<LineageInput> {
        self.last_inputs.read().clone()
    }

    /// Re-reads the other replicas whose files changed; returns every table to scan, with
    /// the inputs they make.
    fn refresh(&self) -> Result<(Vec<Arc<TableStore>>, Vec<LineageInput>)> {
        let name = self.template.name();
        let own = self.own.as_ref().map(|(n, _)| n.as_str());
        let mut replicas: Vec<String> = match std::fs::read_dir(&self.shared_dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    dcpilot_schemas::names::data_dir::tables(&e.path())
                        .join(name)
                        .is_dir()
                })
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| Some(n.as_str()) != own)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(BackgroundError::io(&self.shared_dir)(e)),
        };
        replicas.sort();
        let mut tables = Vec::new();
        let mut inputs = Vec::new();
        if let Some((replica, table)) = &self.own {
            tables.push(table.clone());
            inputs.push(LineageInput {
                replica: replica.clone(),
                offsets: table.stored_offsets(),
            });
        }
        let mut peers = self.peers.lock();
        peers.retain(|r, _| replicas.contains(r));
        for replica in replicas {
            let dir = dcpilot_schemas::names::data_dir::tables(&self.shared_dir.join(&replica))
                .join(name);
            let listing = list_files(&dir);
            let stale = peers.get(&replica).is_none_or(|p| p.listing != listing);
            if stale {
                let settings = TableSettings {
                    dir: Some(dir.clone()),
                    read_only: true,
                    ..self.template.settings().clone()
                };
                match TableStore::open(self.template.spec().clone(), settings) {
                    Ok(table) => {
                        peers.insert(
                            replica.clone(),
                            Peer {
                                listing,
                                table: Arc::new(table),
                            },
                        );
                    }
                    // A spill moving files under us: the previous view serves this scan.
                    Err(e) => {
                        tracing::warn!(replica, error = %e, "re-reading another replica's table")
                    }
                }
            }
            if let Some(peer) = peers.get(&replica) {
                tables.push(peer.table.clone());
                inputs.push(LineageInput {
                    replica,
                    offsets: peer.table.stored_offsets(),
                });
            }
        }
        Ok((tables, inputs))
    }
}

/// Names of the files under `dir` (two levels: `live/<bucket>/<segment>`, `archive/<file>`),
/// sorted: unchanged names mean unchanged content.
fn list_files(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut walk = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = walk.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            if path.is_dir() && depth < 2 {
                walk.push((path, depth + 1));
            } else if path.extension().is_some_and(|x| x != "tmp" && x != "json") {
                names.push(path.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    names
}

impl std::fmt::Debug for SharedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTable")
            .field("table", &self.template.name())
            .field("shared_dir", &self.shared_dir)
            .finish()
    }
}

#[async_trait]
impl TableProvider for SharedTable {
    fn schema(&self) -> SchemaRef {
        self.template.spec().schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let (tables, inputs) = self
            .refresh()
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        *self.last_inputs.write() = inputs;
        let mut plans = Vec::with_capacity(tables.len().max(1));
        for table in &tables {
            plans.push(table.scan(state, projection, filters, limit).await?);
        }
        if plans.is_empty() {
            // No replica has written yet: the template's (empty) table.
            plans.push(
                self.template
                    .scan(state, projection, filters, limit)
                    .await?,
            );
        }
        UnionExec::try_new(plans)
    }
}
