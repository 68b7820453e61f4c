//! The `telemetry` and `landscape` tables: time-partitioned Arrow batches in memory, made
//! durable as Arrow IPC segments before their offsets are committed, deduplicated on a
//! per-table key, and moved to Parquet once they fall out of the retention window. Both the
//! live partitions and the Parquet archive are one DataFusion table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::{Mutex, RwLock};
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{BackgroundError, Result};
use crate::events::PartitionSpilled;

/// What a table is keyed and partitioned on.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Table name in SQL.
    pub name: &'static str,
    /// Arrow schema of its batches.
    pub schema: SchemaRef,
    /// Columns whose values identify a row; a second row with the same values is a duplicate.
    pub key_columns: Vec<usize>,
    /// The event-time column (`Timestamp(Millisecond)`), used for partitioning and retention.
    pub time_column: usize,
}

impl TableSpec {
    /// `telemetry`: a sample is identified by entity, metric, labels and time.
    pub fn telemetry() -> Self {
        let schema = dcpilot_schemas::telemetry_schema();
        Self::new("telemetry", schema, &["entity", "metric", "labels", "ts"])
    }

    /// `landscape`: an event is identified by kind, host, instance and time.
    pub fn landscape() -> Self {
        let schema = dcpilot_schemas::landscape_schema();
        Self::new("landscape", schema, &["kind", "host", "instance", "ts"])
    }

    fn new(name: &'static str, schema: SchemaRef, keys: &[&str]) -> Self {
        let index = |c: &str| {
            schema
                .index_of(c)
                .unwrap_or_else(|_| unreachable!("{name} has column {c}"))
        };
        Self {
            name,
            key_columns: keys.iter().map(|c| index(c)).collect(),
            time_column: index("ts"),
            schema,
        }
    }
}

/// Retention and durability of one table.
#[derive(Debug, Clone)]
pub struct TableSettings {
    /// Event time kept live behind the newest row, in milliseconds.
    pub retention_ms: i64,
    /// Width of a partition in milliseconds.
    pub partition_ms: i64,
    /// Where segments and the Parquet archive live; `None`: memory only.
    pub dir: Option<PathBuf>,
    /// Move expired partitions to Parquet (needs `dir`); otherwise drop them.
    pub spill: bool,
    /// Open for queries only: recover nothing on disk, never write.
    pub read_only: bool,
    /// Bytes the live partitions may hold in memory; past it the oldest partitions move
    /// to Parquet early (dropped when `spill` is off). `None`: no ceiling.
    pub memory_ceiling_bytes: Option<usize>,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Rows now in the table.
    pub inserted: usize,
    /// Rows dropped because the table already had them.
    pub duplicates: usize,
    /// Rows older than the retention window, written straight to the archive (or dropped
    /// when spilling is off).
    pub late: usize,
}

type RowKey = u128;

/// What a batch made durable: live parts by bucket, and archive files written.
type Persisted = (Vec<(i64, RecordBatch)>, Vec<PathBuf>);

/// Row keys are already xxh3-128 hashes: a cheap non-cryptographic hasher suffices.
type KeySet = HashSet<RowKey, foldhash::fast::FixedState>;

struct Writer {
    live_keys: HashMap<i64, KeySet>,
    /// Keys of archived partitions that late rows touched recently.
    archived_keys: HashMap<i64, KeySet>,
    watermark_ms: i64,
    next_seq: u64,
    /// Buckets below this were moved out of memory early (the memory ceiling): their rows
    /// take the late path (archive, deduplicated against it).
    floor: i64,
    /// Arrow bytes of the live partitions.
    live_bytes: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            live_keys: HashMap::new(),
            archived_keys: HashMap::new(),
            watermark_ms: 0,
            next_seq: 0,
            floor: i64::MIN,
            live_bytes: 0,
        }
    }
}

#[derive(Default, Clone)]
struct View {
    live: BTreeMap<i64, Vec<RecordBatch>>,
    archive: Vec<PathBuf>,
}

/// One table: see the module docs.
pub struct TableStore {
    spec: TableSpec,
    settings: TableSettings,
    writer: Mutex<Writer>,
    view: RwLock<View>,
    /// Rows inserted since the process started (drives jobs' `after_rows` triggers).
    inserted: std::sync::atomic::AtomicU64,
    /// Per `topic/partition`, the next Kafka offset after what this table has stored.
    offsets: Mutex<BTreeMap<String, i64>>,
}

/// The file beside a table's segments that holds [`TableStore::stored_offsets`].
const OFFSETS_FILE: &str = "offsets.json";

impl std::fmt::Debug for TableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStore")
            .field("table", &self.spec.name)
            .finish()
    }
}

const ARCHIVE_CACHE_BUCKETS: usize = 8;

impl TableStore {
    /// Opens a table, recovering durable segments and the archive from `settings.dir`.
    pub fn open(spec: TableSpec, settings: TableSettings) -> Result<Self> {
        let store = Self {
            spec,
            settings,
            writer: Mutex::new(Writer::default()),
            view: RwLock::new(View::default()),
            inserted: std::sync::atomic::AtomicU64::new(0),
            offsets: Mutex::new(BTreeMap::new()),
        };
        // Offsets before segments: what a reader beside a running writer reports never
        // runs ahead of the rows it read.
        *store.offsets.lock() = store.read_offsets()?;
        store.recover()?;
        Ok(store)
    }

    /// Per `topic/partition`, the next Kafka offset after what this table has stored (as
    /// recorded with [`record_offsets`](Self::record_offsets), also by earlier runs).
    pub fn stored_offsets(&self) -> BTreeMap<String, i64> {
        self.offsets.lock().clone()
    }

    /// Records that everything before `offsets` (topic, partition, next offset) is stored,
    /// durably when the table has a directory: lineage names what a model was trained on.
    pub fn record_offsets<'a>(
        &self,
        offsets: impl IntoIterator<Item = (&'a str, i32, i64)>,
    ) -> Result<()> {
        let mut known = self.offsets.lock();
        for (topic, partition, next) in offsets {
            let entry = known.entry(format!("{topic}/{partition}")).or_default();
            *entry = (*entry).max(next);
        }
        let Some(dir) = self
            .settings
            .dir
            .as_ref()
            .filter(|_| !self.settings.read_only)
        else {
            return Ok(());
        };
        let text = serde_json::to_vec(&*known)
            .map_err(|e| BackgroundError::Internal(format!("encoding offsets: {e}")))?;
        write_atomically(&dir.join(OFFSETS_FILE), |f| {
            f.write_all(&text).map_err(BackgroundError::io(dir))
        })
    }

    fn read_offsets(&self) -> Result<BTreeMap<String, i64>> {
        let Some(path) = self.settings.dir.as_ref().map(|d| d.join(OFFSETS_FILE)) else {
            return Ok(BTreeMap::new());
        };
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                BackgroundError::Internal(format!("{}: not an offsets file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(BackgroundError::io(&path)(e)),
        }
    }

    /// The directory of segments and archive, when durable.
    pub fn dir(&self) -> Option<&Path> {
        self.settings.dir.as_deref()
    }

    /// The table's key, partitioning and schema.
    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The table's retention and durability.
    pub fn settings(&self) -> &TableSettings {
        &self.settings
    }

    /// The table's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Rows held in memory.
    pub fn live_rows(&self) -> usize {
        self.view
            .read()
            .live
            .values()
            .flatten()
            .map(RecordBatch::num_rows)
            .sum()
    }

    /// Rows inserted by this process so far (after dedupe); never decreases.
    pub fn inserted_rows(&self) -> u64 {
        self.inserted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Parquet files of the archive.
    pub fn archive_files(&self) -> Vec<PathBuf> {
        self.view.read().archive.clone()
    }

    fn live_dir(&self) -> Option<PathBuf> {
        self.settings.dir.as_ref().map(|d| d.join("live"))
    }

    fn archive_dir(&self) -> Option<PathBuf> {
        self.settings.dir.as_ref().map(|d| d.join("archive"))
    }

    fn bucket_of(&self, ts: i64) -> i64 {
        ts.div_euclid(self.settings.partition_ms)
    }

    /// The oldest partition still live for a watermark.
    fn first_live_bucket(&self, watermark_ms: i64) -> i64 {
        self.bucket_of(watermark_ms.saturating_sub(self.settings.retention_ms))
    }

    /// Adds a batch: drops rows the table already has, makes the rest durable, then
    /// publishes them to queries and spills partitions that left the retention window.
    pub fn insert(&self, batch: &RecordBatch) -> Result<InsertOutcome> {
        if self.settings.read_only {
            return Err(BackgroundError::ReadOnly {
                table: self.spec.name,
            });
        }
        if batch.num_rows() == 0 {
            return Ok(InsertOutcome::default());
        }
        if batch.schema().fields() != self.spec.schema.fields() {
            return Err(BackgroundError::Arrow(
                datafusion::arrow::error::ArrowError::SchemaError(format!(
                    "batch does not match the {} schema",
                    self.spec.name
                )),
            ));
        }
        let times = batch
            .column(self.spec.time_column)
            .as_primitive::<TimestampMillisecondType>();
        let keys = row_keys(batch, &self.spec.key_columns);
        let mut writer = self.writer.lock();
        let first_live = if writer.watermark_ms == 0 {
            i64::MIN
        } else {
            self.first_live_bucket(writer.watermark_ms)
        }
        .max(writer.floor);

        let mut outcome = InsertOutcome::default();
        // Live rows' keys go straight into the table's key sets (one hash operation a
        // row) and are taken out again if the batch cannot be made durable.
        let mut live_parts: Vec<(i64, Vec<u32>)> = Vec::new();
        let mut late_parts: Vec<(i64, Vec<u32>)> = Vec::new();
        let mut late_keys: HashMap<i64, KeySet> = HashMap::new();
        for (bucket, rows) in rows_by_bucket(times, |ts| self.bucket_of(ts)) {
            let late = bucket < first_live;
            // Without an archive (spilling off, or memory only) late rows are dropped.
            if late && !(self.settings.spill && self.settings.dir.is_some()) {
                outcome.late += rows.len();
                continue;
            }
            let mut kept = Vec::with_capacity(rows.len());
            if late {
                self.load_archived_keys(&mut writer, bucket)?;
                let known = writer.archived_keys.get(&bucket);
                let fresh = late_keys.entry(bucket).or_default();
                for row in rows {
                    let key = keys[row as usize];
                    if known.is_some_and(|k| k.contains(&key)) || !fresh.insert(key) {
                        outcome.duplicates += 1;
                    } else {
                        kept.push(row);
                    }
                }
                if !kept.is_empty() {
                    late_parts.push((bucket, kept));
                }
            } else {
                let known = writer.live_keys.entry(bucket).or_default();
                known.reserve(rows.len());
                for row in rows {
                    if known.insert(keys[row as usize]) {
                        kept.push(row);
                    } else {
                        outcome.duplicates += 1;
                    }
                }
                if !kept.is_empty() {
                    live_parts.push((bucket, kept));
                }
            }
        }

        // Durable first: nothing becomes visible (or committed) before it is on disk.
        let (ready, archived) =
            match self.persist(&mut writer, batch, &live_parts, &late_parts, &mut outcome) {
                Ok(done) => done,
                Err(e) => {
                    for (bucket, rows) in &live_parts {
                        if let Some(known) = writer.live_keys.get_mut(bucket) {
                            for row in rows {
                                known.remove(&keys[*row as usize]);
                            }
                        }
                    }
                    let live = self.view.read();
                    writer
                        .live_keys
                        .retain(|b, k| !k.is_empty() || live.live.contains_key(b));
                    return Err(e);
                }
            };
        for (bucket, keys) in late_keys {
            // Only into a set still cached: one evicted meanwhile (the cache holds a few
            // buckets) is read again from its files, this batch's included; a set made of
            // this batch's keys alone would let the bucket's older rows in twice.
            if let Some(known) = writer.archived_keys.get_mut(&bucket) {
                known.extend(keys);
            }
        }
        let max_ts = (0..batch.num_rows())
            .map(|r| times.value(r))
            .max()
            .unwrap_or(i64::MIN);
        writer.watermark_ms = writer.watermark_ms.max(max_ts);
        {
            let mut view = self.view.write();
            for (bucket, part) in ready {
                writer.live_bytes += batch_bytes(&part);
                view.live.entry(bucket).or_default().push(part);
            }
            view.archive.extend(archived);
        }
        self.expire(&mut writer, "retention")?;
        self.enforce_ceiling(&mut writer)?;
        self.inserted.fetch_add(
            outcome.inserted as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(outcome)
    }

    /// Writes the kept rows: live ones as segments, late ones to the archive; returns the
    /// live parts to publish and the archive files written.
    fn persist(
        &self,
        writer: &mut Writer,
        batch: &RecordBatch,
        live_parts: &[(i64, Vec<u32>)],
        late_parts: &[(i64, Vec<u32>)],
        outcome: &mut InsertOutcome,
    ) -> Result<Persisted> {
        // A batch wholly in one bucket and new (the usual case) is kept as it came.
        let part_of = |rows: &[u32]| match rows.len() == batch.num_rows() {
            true => Ok(batch.clone()),
            false => take_rows(batch, rows),
        };
        let mut ready = Vec::with_capacity(live_parts.len());
        let mut archived = Vec::new();
        let mut written = Vec::new();
        let mut write_all = || -> Result<()> {
            for (bucket, rows) in live_parts {
                let part = part_of(rows)?;
                if let Some(live) = self.live_dir() {
                    let seq = writer.next_seq;
                    writer.next_seq += 1;
                    written.push(write_segment(&live.join(bucket.to_string()), seq, &part)?);
                }
                ready.push((*bucket, part));
            }
            if let Some(archive) = self.archive_dir() {
                for (bucket, rows) in late_parts {
                    let part = part_of(rows)?;
                    let seq = writer.next_seq;
                    writer.next_seq += 1;
                    let path = archive.join(format!("{bucket}-late-{seq}.parquet"));
                    write_parquet(&path, &self.spec.schema, std::slice::from_ref(&part))?;
                    written.push(path.clone());
                    outcome.late += part.num_rows();
                    archived.push((path, part.num_rows()));
                }
            }
            Ok(())
        };
        if let Err(e) = write_all() {
            // All or nothing: files of this batch already written would come back at
            // recovery beside the batch's redelivery.
            for path in &written {
                if let Err(removal) = fs::remove_file(path) {
                    tracing::error!(path = %path.display(), error = %removal, "removing a segment of a failed batch failed; recovery will read it beside the redelivery");
                }
            }
            return Err(e);
        }
        outcome.inserted += ready.iter().map(|(_, p)| p.num_rows()).sum::<usize>()
            + archived.iter().map(|(_, n)| n).sum::<usize>();
        Ok((ready, archived.into_iter().map(|(p, _)| p).collect()))
    }

    /// Bytes held in memory: the live partitions' Arrow buffers and their row keys (16
    /// bytes a key plus the hash table's control byte, at its capacity).
    pub fn live_bytes(&self) -> usize {
        let writer = self.writer.lock();
        Self::bytes_held(&writer)
    }

    fn bytes_held(writer: &Writer) -> usize {
        let keys: usize = writer.live_keys.values().map(|k| k.capacity()).sum();
        writer.live_bytes + keys * (std::mem::size_of::<RowKey>() + 1)
    }

    /// Moves the oldest live partitions out of memory while the table is over its memory
    /// ceiling (always keeping the newest).
    fn enforce_ceiling(&self, writer: &mut Writer) -> Result<()> {
        if let Some(ceiling) = self.settings.memory_ceiling_bytes {
            loop {
                let (oldest, partitions) = {
                    let view = self.view.read();
                    (view.live.keys().next().copied(), view.live.len())
                };
                match oldest {
                    Some(oldest) if partitions > 1 && Self::bytes_held(writer) > ceiling => {
                        writer.floor = oldest + 1;
                        self.expire(writer, "memory_ceiling")?;
                    }
                    _ => break,
                }
            }
        }
        Self::report_bytes(self.spec.name, writer);
        Ok(())
    }

    /// Sets `dcpilot_store_live_bytes` (again: the store opens before metrics are set up).
    pub fn report_memory(&self) {
        Self::report_bytes(self.spec.name, &self.writer.lock());
    }

    fn report_bytes(table: &'static str, writer: &Writer) {
        metrics::gauge!(crate::events::names::LIVE_BYTES, "table" => table)
            .set(Self::bytes_held(writer) as f64);
    }

    /// Moves (or drops) live partitions older than the retention window or the floor.
    fn expire(&self, writer: &mut Writer, reason: &'static str) -> Result<()> {
        let first_live = self
            .first_live_bucket(writer.watermark_ms)
            .max(writer.floor);
        let expired: Vec<(i64, Vec<RecordBatch>)> = {
            let view = self.view.read();
            view.live
                .range(..first_live)
                .map(|(b, v)| (*b, v.clone()))
                .collect()
        };
        for (bucket, batches) in expired {
            let mut spilled = None;
            if let (true, Some(archive)) = (self.settings.spill, self.archive_dir()) {
                let path = archive.join(format!("{bucket}-spill.parquet"));
                let rows = write_parquet(&path, &self.spec.schema, &batches)?;
                PartitionSpilled {
                    table: self.spec.name,
                    rows,
                    path: &path,
                    reason,
                }
                .emit();
                spilled = Some(path);
            }
            {
                let mut view = self.view.write();
                if let Some(batches) = view.live.remove(&bucket) {
                    let freed: usize = batches.iter().map(batch_bytes).sum();
                    writer.live_bytes = writer.live_bytes.saturating_sub(freed);
                }
                view.archive.extend(spilled);
            }
            writer.live_keys.remove(&bucket);
            if let Some(live) = self.live_dir() {
                let dir = live.join(bucket.to_string());
                fs::remove_dir_all(&dir).map_err(BackgroundError::io(&dir))?;
            }
        }
        Ok(())
    }

    fn load_archived_keys(&self, writer: &mut Writer, bucket: i64) -> Result<()> {
        if writer.archived_keys.contains_key(&bucket) {
            return Ok(());
        }
        if writer.archived_keys.len() >= ARCHIVE_CACHE_BUCKETS {
            writer.archived_keys.clear();
        }
        let mut keys = KeySet::default();
        let prefix = format!("{bucket}-");
        for path in self.view.read().archive.iter() {
            let matches = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix));
            if matches {
                for batch in read_parquet(path)? {
                    keys.extend(row_keys(&batch, &self.spec.key_columns));
                }
            }
        }
        writer.archived_keys.insert(bucket, keys);
        Ok(())
    }

    fn recover(&self) -> Result<()> {
        let (Some(live_dir), Some(archive_dir)) = (self.live_dir(), self.archive_dir()) else {
            return Ok(());
        };
        let read_only = self.settings.read_only;
        if !read_only {
            for dir in [&live_dir, &archive_dir] {
                fs::create_dir_all(dir).map_err(BackgroundError::io(dir))?;
            }
        }
        let mut writer = self.writer.lock();
        let mut view = self.view.write();
        let mut spilled_buckets = HashSet::new();
        for path in sorted_entries(&archive_dir)? {
            let name = file_name(&path);
            if name.ends_with(".tmp") {
                if !read_only {
                    remove_file(&path)?;
                }
                continue;
            }
            let Some((bucket, rest)) = name.split_once('-') else {
                continue;
            };
            let Ok(bucket) = bucket.parse::<i64>() else {
                continue;
            };
            if rest == "spill.parquet" {
                spilled_buckets.insert(bucket);
                // Spilled early or not, rows of it that come again go to the archive.
                writer.floor = writer.floor.max(bucket + 1);
            }
            if let Some(seq) = rest
                .strip_prefix("late-")
                .and_then(|s| s.strip_suffix(".parquet"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                writer.next_seq = writer.next_seq.max(seq + 1);
            }
            writer.watermark_ms = writer
                .watermark_ms
                .max((bucket + 1) * self.settings.partition_ms - 1);
            view.archive.push(path);
        }
        for bucket_dir in sorted_entries(&live_dir)? {
            let Ok(bucket) = file_name(&bucket_dir).parse::<i64>() else {
                continue;
            };
            if spilled_buckets.contains(&bucket) {
                // A spill finished but its segments were not yet removed.
                if read_only {
                    continue;
                }
                fs::remove_dir_all(&bucket_dir).map_err(BackgroundError::io(&bucket_dir))?;
                continue;
            }
            for segment in sorted_entries(&bucket_dir)? {
                let name = file_name(&segment);
                if name.ends_with(".tmp") || name.ends_with(".corrupt") {
                    if !read_only && name.ends_with(".tmp") {
                        remove_file(&segment)?;
                    }
                    continue;
                }
                if let Some(seq) = name
                    .strip_suffix(".arrow")
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    writer.next_seq = writer.next_seq.max(seq + 1);
                }
                let batches = match read_segment(&segment) {
                    Ok(batches) => batches,
                    Err(e) if read_only => {
                        tracing::warn!(error = %e, "skipping unreadable segment");
                        continue;
                    }
                    Err(e) => {
                        // Its offsets were never committed: Kafka will deliver it again.
                        tracing::error!(error = %e, "quarantining unreadable segment");
                        let quarantined = segment.with_extension("corrupt");
                        fs::rename(&segment, &quarantined)
                            .map_err(BackgroundError::io(&segment))?;
                        continue;
                    }
                };
                for batch in batches {
                    let times = batch
                        .column(self.spec.time_column)
                        .as_primitive::<TimestampMillisecondType>();
                    if let Some(max) = times.iter().flatten().max() {
                        writer.watermark_ms = writer.watermark_ms.max(max);
                    }
                    writer
                        .live_keys
                        .entry(bucket)
                        .or_default()
                        .extend(row_keys(&batch, &self.spec.key_columns));
                    writer.live_bytes += batch_bytes(&batch);
                    view.live.entry(bucket).or_default().push(batch);
                }
            }
        }
        drop(view);
        if read_only {
            return Ok(());
        }
        self.expire(&mut writer, "retention")?;
        self.enforce_ceiling(&mut writer)
    }

    fn snapshot(&self) -> View {
        self.view.read().clone()
    }
}

#[async_trait]
impl TableProvider for TableStore {
    fn schema(&self) -> SchemaRef {
        self.spec.schema.clone()
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
        // One consistent view: a spill between reading live and archive cannot double rows.
        let view = self.snapshot();
        let live: Vec<Vec<RecordBatch>> = vec![view.live.into_values().flatten().collect()];
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = vec![MemorySourceConfig::try_new_exec(
            &live,
            self.spec.schema.clone(),
            projection.cloned(),
        )?];
        if !view.archive.is_empty() {
            let urls = view
                .archive
                .iter()
                .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(self.spec.schema.clone());
            let archive = ListingTable::try_new(config)?;
            inputs.push(archive.scan(state, projection, filters, limit).await?);
        }
        UnionExec::try_new(inputs)
    }
}

/// Bytes of the allocations a batch holds, each counted once: arrays read from one IPC
/// segment share one buffer, which `get_array_memory_size` would count once per array.
fn batch_bytes(batch: &RecordBatch) -> usize {
    fn walk(
        data: &datafusion::arrow::array::ArrayData,
        seen: &mut HashSet<usize>,
        total: &mut usize,
    ) {
        let nulls = data.nulls().map(|n| n.buffer());
        for buffer in data.buffers().iter().chain(nulls) {
            if seen.insert(buffer.data_ptr().as_ptr() as usize) {
                *total += buffer.capacity();
            }
        }
        for child in data.child_data() {
            walk(child, seen, total);
        }
    }
    let (mut seen, mut total) = (HashSet::new(), 0);
    for column in batch.columns() {
        walk(&column.to_data(), &mut seen, &mut total);
    }
    total
}

/// Row indices by time bucket, in row order within each (one map operation per run of
/// rows in the same bucket, not per row).
fn rows_by_bucket(
    times: &datafusion::arrow::array::TimestampMillisecondArray,
    bucket_of: impl Fn(i64) -> i64,
) -> BTreeMap<i64, Vec<u32>> {
    let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    let n = times.len();
    let mut start = 0;
    while start < n {
        let bucket = bucket_of(times.value(start));
        let mut end = start + 1;
        while end < n && bucket_of(times.value(end)) == bucket {
            end += 1;
        }
        groups
            .entry(bucket)
            .or_default()
            .extend(start as u32..end as u32);
        start = end;
    }
    groups
}

/// A key column, downcast once per batch rather than once per row.
enum KeyColumn<'a> {
    Text(&'a datafusion::arrow::array::StringArray),
    Time(&'a datafusion::arrow::array::TimestampMillisecondArray),
    Map {
        map: &'a datafusion::arrow::array::MapArray,
        keys: &'a datafusion::arrow::array::StringArray,
        values: &'a datafusion::arrow::array::StringArray,
    },
}

/// A 128-bit hash of each row's key columns (strings length-prefixed, maps order-free).
fn row_keys(batch: &RecordBatch, key_columns: &[usize]) -> Vec<RowKey> {
    let columns: Vec<(KeyColumn<'_>, &ArrayRef)> = key_columns
        .iter()
        .map(|&c| {
            let column = batch.column(c);
            let typed = match column.data_type() {
                DataType::Utf8 => KeyColumn::Text(column.as_string::<i32>()),
                DataType::Timestamp(..) => {
                    KeyColumn::Time(column.as_primitive::<TimestampMillisecondType>())
                }
                DataType::Map(..) => {
                    let map = column.as_map();
                    KeyColumn::Map {
                        map,
                        keys: map.keys().as_string::<i32>(),
                        values: map.values().as_string::<i32>(),
                    }
                }
                other => unreachable!("key column of type {other} is not supported"),
            };
            (typed, column)
        })
        .collect();
    let mut buf = Vec::with_capacity(128);
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    (0..batch.num_rows())
        .map(|row| {
            buf.clear();
            for (column, array) in &columns {
                if array.is_null(row) {
                    buf.push(0xff);
                    continue;
                }
                buf.push(0);
                match column {
                    KeyColumn::Text(text) => push_str(&mut buf, text.value(row)),
                    KeyColumn::Time(times) => {
                        buf.extend_from_slice(&times.value(row).to_le_bytes())
                    }
                    KeyColumn::Map { map, keys, values } => {
                        let offsets = map.value_offsets();
                        let range = offsets[row] as usize..offsets[row + 1] as usize;
                        pairs.clear();
                        pairs.extend(range.map(|i| {
                            (
                                keys.value(i),
                                if values.is_null(i) {
                                    ""
                                } else {
                                    values.value(i)
                                },
                            )
                        }));
                        pairs.sort_unstable();
                        buf.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
                        for (k, v) in &pairs {
                            push_str(&mut buf, k);
                            push_str(&mut buf, v);
                        }
                    }
                }
            }
            xxh3_128(&buf)
        })
        .collect()
}

fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    if rows.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    Ok(take_record_batch(batch, &UInt32Array::from(rows.to_vec()))?)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut entries = fs::read_dir(dir)
        .map_err(BackgroundError::io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(BackgroundError::io(dir))?;
    entries.sort();
    Ok(entries)
}

fn remove_file(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(BackgroundError::io(path))
}

/// Writes `tmp`, fsyncs it, renames it into place and fsyncs the directory.
fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(BackgroundError::io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(BackgroundError::io(&tmp))?;
    write(&mut file)?;
    file.flush().map_err(BackgroundError::io(&tmp))?;
    file.sync_all().map_err(BackgroundError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(BackgroundError::io(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BackgroundError::io(dir))
}

fn write_segment(dir: &Path, seq: u64, batch: &RecordBatch) -> Result<PathBuf> {
    let path = dir.join(format!("{seq:012}.arrow"));
    write_atomically(&path, |file| {
        let mut w = FileWriter::try_new(file, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
        Ok(())
    })?;
    Ok(path)
}

fn read_segment(path: &Path) -> Result<Vec<RecordBatch>> {
    let corrupt = |reason: String| BackgroundError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(BackgroundError::io(path))?;
    let reader = FileReader::try_new(file, None).map_err(|e| corrupt(e.to_string()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(e.to_string()))
}

fn write_parquet(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<usize> {
    let mut rows = 0;
    write_atomically(path, |file| {
        let combined = concat_batches(schema, batches)?;
        rows = combined.num_rows();
        let mut w = ArrowWriter::try_new(file, schema.clone(), None).map_err(|e| {
            BackgroundError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        w.write(&combined)
            .and_then(|_| w.close().map(|_| ()))
            .map_err(|e| BackgroundError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    })?;
    Ok(rows)
}

fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    let corrupt = |reason: String| BackgroundError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(BackgroundError::io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| corrupt(e.to_string()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(e.to_string()))
}
