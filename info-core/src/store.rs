//! The Information Core: versioned models over a [`Storage`], served through snapshots.
//!
//! Files per model: `<name>/v<version>.model` (one immutable record per version) and
//! `<name>/p<seq>.pointer` (rollbacks). The current version follows the newest step of
//! the history (see [`crate::core`]). Writers serialize on a mutex; readers only load the
//! snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::core::{self, RollbackRefusal, Step};
use crate::error::{InfoCoreError, Result};
use crate::model::PreparedModel;
use crate::now_ms;
use crate::record::Lease;
use crate::record::{self, ModelDraft, ModelRecord, Pointer};
use crate::replication::{ChangeSink, ModelChange, PublishGuard, ReplicatedFile};
use crate::snapshot::{ServedModel, Snapshot, SnapshotCell};
use crate::storage::{FileStorage, Storage};

/// Versions kept per model by default (older ones are removed, never the current one).
pub const DEFAULT_KEEP_VERSIONS: usize = 20;

#[derive(Default)]
struct ModelState {
    records: BTreeMap<u64, Arc<ModelRecord>>,
    pointers: Vec<Pointer>,
    /// Every version ever seen (also removed or quarantined ones), so none is reused.
    seen: Vec<Step>,
}

impl ModelState {
    fn steps(&self) -> Vec<Step> {
        let mut steps = self.seen.clone();
        steps.extend(self.pointers.iter().map(|p| Step::RolledBack {
            seq: p.seq,
            version: p.version,
        }));
        steps
    }

    fn available(&self) -> BTreeSet<u64> {
        self.records.keys().copied().collect()
    }

    fn current(&self) -> Option<u64> {
        core::current(&self.steps(), &self.available())
    }
}

/// One line of a model's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Position.
    pub seq: u64,
    /// `published` or `rolled_back`.
    pub action: &'static str,
    /// The version published or rolled back to.
    pub version: u64,
    /// When, ms since the epoch.
    pub created_at_ms: i64,
    /// Whether the version is still stored (retention removes old ones).
    pub stored: bool,
    /// The rollback's reason, or the producing job.
    pub note: String,
}

/// The Information Core.
pub struct InfoCore {
    storage: Arc<dyn Storage>,
    models: Mutex<BTreeMap<String, ModelState>>,
    snapshot: SnapshotCell,
    keep_versions: usize,
    problems: Mutex<Vec<String>>,
    sink: Mutex<Option<Arc<dyn ChangeSink>>>,
    guard: Mutex<Option<Arc<dyn PublishGuard>>>,
    /// Per model, the newest lease epoch seen: changes under older leases are refused.
    fences: Mutex<BTreeMap<String, u64>>,
}

/// Files of one change: (storage key, bytes).
type ChangeFiles = Vec<(String, Vec<u8>)>;

fn model_key(name: &str, version: u64) -> String {
    format!("{name}/v{version:010}.model")
}

fn pointer_key(name: &str, seq: u64) -> String {
    format!("{name}/p{seq:010}.pointer")
}

fn prepare(record: &Arc<ModelRecord>) -> Result<Arc<ServedModel>> {
    let model = record.decode_model()?;
    let prepared = PreparedModel::prepare(model, record.features.len())?;
    Ok(Arc::new(ServedModel {
        record: record.clone(),
        prepared,
    }))
}

impl InfoCore {
    /// The file-backed store under `dir` (the embedded default).
    pub fn open_dir(dir: &Path) -> Result<Self> {
        Self::open(Arc::new(FileStorage::open(dir)?), DEFAULT_KEEP_VERSIONS)
    }

    /// Loads every model from `storage`. Corrupt files are quarantined and reported (see
    /// [`problems`](Self::problems)); the previous good version is served instead.
    pub fn open(storage: Arc<dyn Storage>, keep_versions: usize) -> Result<Self> {
        let core = Self {
            storage,
            models: Mutex::new(BTreeMap::new()),
            snapshot: SnapshotCell::default(),
            keep_versions: keep_versions.max(1),
            problems: Mutex::new(Vec::new()),
            sink: Mutex::new(None),
            guard: Mutex::new(None),
            fences: Mutex::new(BTreeMap::new()),
        };
        core.reload()?;
        Ok(core)
    }

    /// Re-reads the storage (e.g. after another process published) and swaps in a new
    /// snapshot.
    pub fn reload(&self) -> Result<()> {
        let (models, mut prepared) = self.load_keys(&self.storage.list()?, None)?;
        let mut snapshot = Snapshot::default();
        snapshot.generation = self.snapshot.load().generation;
        for (name, state) in &models {
            if let Some(served) = state
                .current()
                .and_then(|v| prepared.remove(&(name.clone(), v)))
            {
                snapshot = snapshot.with(name, Some(served));
            }
        }
        *self.models.lock() = models;
        self.snapshot.store(snapshot);
        Ok(())
    }

    /// Re-reads one model's files only and swaps it alone in the snapshot: what a
    /// replicated change of that model costs (the other models are neither read nor
    /// prepared again).
    pub fn reload_model(&self, name: &str) -> Result<()> {
        let (mut loaded, mut prepared) =
            self.load_keys(&self.storage.list_model(name)?, Some(name))?;
        let mut state = loaded.remove(name);
        // The leader's retention, here too: a model that changes often (a colouring)
        // keeps a bounded history, so each change costs O(kept versions).
        if let Some(state) = state.as_mut() {
            self.apply_retention(name, state)?;
        }
        let served = state
            .as_ref()
            .and_then(|s| s.current())
            .and_then(|v| prepared.remove(&(name.to_string(), v)));
        let mut models = self.models.lock();
        match state {
            Some(state) => models.insert(name.to_string(), state),
            None => models.remove(name),
        };
        let next = self.snapshot.load().with(name, served);
        self.snapshot.store(next);
        Ok(())
    }

    /// Loads `keys` (those of model `only`, if given) into model states; every version is
    /// prepared once (to find the unusable ones), and comes back prepared.
    #[allow(clippy::type_complexity)]
    fn load_keys(
        &self,
        keys: &[String],
        only: Option<&str>,
    ) -> Result<(
        BTreeMap<String, ModelState>,
        BTreeMap<(String, u64), Arc<ServedModel>>,
    )> {
        let mut models: BTreeMap<String, ModelState> = BTreeMap::new();
        // Every version is prepared once while loading (to find the unusable ones); the
        // current ones are served from these, not prepared again.
        let mut prepared: BTreeMap<(String, u64), Arc<ServedModel>> = BTreeMap::new();
        for key in keys {
            let Some((name, file)) = key.split_once('/') else {
                continue;
            };
            if !core::valid_name(name) || only.is_some_and(|only| only != name) {
                continue;
            }
            let state = models.entry(name.to_string()).or_default();
            match self.load_file(key, file, state) {
                Ok(Some(served)) => {
                    prepared.insert((name.to_string(), served.version()), served);
                }
                Ok(None) => {}
                Err(e) => {
                    let reason = e.to_string();
                    tracing::error!(key = %key, error = %reason, "Information Core file unusable");
                    if matches!(
                        e,
                        InfoCoreError::Corrupt { .. } | InfoCoreError::InvalidModel { .. }
                    ) {
                        self.storage.quarantine(key, &reason)?;
                    }
                    self.problems.lock().push(reason);
                }
            }
        }
        // A quarantined version's number stays taken.
        for key in self.storage.quarantined_keys()? {
            let Some((name, file)) = key.split_once('/') else {
                continue;
            };
            let version = file
                .strip_prefix('v')
                .and_then(|f| f.strip_suffix(".model"))
                .and_then(|v| v.parse().ok());
            if let (Some(state), Some(version)) = (models.get_mut(name), version) {
                state.seen.push(Step::Published { seq: 0, version });
            }
        }
        models.retain(|_, s| !s.records.is_empty() || !s.pointers.is_empty());
        Ok((models, prepared))
    }

    /// Loads one file into `state`; a model file comes back prepared.
    fn load_file(
        &self,
        key: &str,
        file: &str,
        state: &mut ModelState,
    ) -> Result<Option<Arc<ServedModel>>> {
        let path = self.storage.describe(key);
        if file.ends_with(".model") {
            let bytes = self.storage.read(key)?;
            let record: ModelRecord = record::decode(&bytes, &path)?;
            record::verify_record(&record, &path)?;
            if key != model_key(&record.name, record.version) {
                return Err(InfoCoreError::Corrupt {
                    path,
                    reason: format!("holds {} v{}", record.name, record.version),
                });
            }
            let record = Arc::new(record);
            // Prepared here so a record that cannot serve is found at load, not later.
            let served = prepare(&record)?;
            state.seen.push(Step::Published {
                seq: record.seq,
                version: record.version,
            });
            state.records.insert(record.version, record);
            return Ok(Some(served));
        }
        if file.ends_with(".pointer") {
            let bytes = self.storage.read(key)?;
            let pointer: Pointer = record::decode(&bytes, &path)?;
            state.pointers.push(pointer);
        }
        Ok(None)
    }

    /// What went wrong while loading (corrupt files quarantined, unknown formats skipped).
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().clone()
    }

    /// The snapshot cell: `load()` for readers, `subscribe()` for swap notifications.
    pub fn snapshots(&self) -> &SnapshotCell {
        &self.snapshot
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load()
    }

    /// Publishes a new version; returns its record. The model is prepared first, so a
    /// model that could not serve is refused rather than stored.
    pub fn publish(&self, mut draft: ModelDraft) -> Result<Arc<ModelRecord>> {
        if !core::valid_name(&draft.name) {
            return Err(InfoCoreError::Rejected(format!(
                "invalid model name {:?}: use letters, digits, '-', '_' and '.'",
                draft.name
            )));
        }
        let mut models = self.models.lock();
        // Asked under the models lock, so no lease marker is applied in between.
        let guard = self.guard.lock().clone();
        if let Some(guard) = guard {
            let authorised =
                guard
                    .authorise(&draft.name)
                    .map_err(|reason| InfoCoreError::Fenced {
                        model: draft.name.clone(),
                        reason,
                    })?;
            self.check_fence(&draft.name, &authorised.lease)?;
            draft.lineage.lease = Some(authorised.lease);
            draft.lineage.inputs = authorised.inputs;
        }
        let lease = draft.lineage.lease.clone();
        let state = models.entry(draft.name.clone()).or_default();
        let steps = state.steps();
        let version = core::next_version(&steps, &state.available());
        let seq = core::next_seq(&steps);
        let record = Arc::new(ModelRecord::from_draft(draft, version, seq, now_ms())?);
        let served = prepare(&record)?;
        let bytes = record::encode(record.as_ref())?;
        if !self
            .storage
            .create(&model_key(&record.name, version), &bytes)?
        {
            return Err(InfoCoreError::Rejected(format!(
                "{} v{version} was published concurrently by another writer; reload and retry",
                record.name
            )));
        }
        state.seen.push(Step::Published { seq, version });
        state.records.insert(version, record.clone());
        let current = self.snapshot.load();
        self.snapshot
            .store(current.with(&record.name, Some(served)));
        let key = model_key(&record.name, version);
        if let Err(e) = self.replicate(&record.name, vec![(key.clone(), bytes)], lease) {
            // A leased version exists only once the topic has it: take it back.
            state.seen.pop();
            state.records.remove(&version);
            self.snapshot.store((*current).clone());
            if let Err(removal) = self.storage.remove(&key) {
                // The refused version's file stays on disk: say so.
                tracing::error!(model = %record.name, version, error = %removal, "removing a version the topic refused failed");
            }
            return Err(e);
        }
        self.apply_retention(&record.name, state)?;
        Ok(record)
    }

    fn apply_retention(&self, name: &str, state: &mut ModelState) -> Result<()> {
        for version in core::expired(&state.steps(), &state.available(), self.keep_versions) {
            self.storage.remove(&model_key(name, version))?;
            state.records.remove(&version);
        }
        Ok(())
    }

    /// Rolls `name` back to `version`, recorded as a new pointer.
    pub fn rollback(&self, name: &str, version: u64, reason: &str) -> Result<Pointer> {
        let mut models = self.models.lock();
        let state = models
            .get_mut(name)
            .ok_or_else(|| InfoCoreError::NotFound {
                name: name.to_string(),
                version: None,
            })?;
        let step = core::plan_rollback(&state.steps(), &state.available(), version).map_err(
            |refusal| match refusal {
                RollbackRefusal::UnknownVersion => InfoCoreError::NotFound {
                    name: name.to_string(),
                    version: Some(version),
                },
                RollbackRefusal::AlreadyCurrent => {
                    InfoCoreError::Rejected(format!("{name} v{version} is already current"))
                }
            },
        )?;
        let record =
            state
                .records
                .get(&version)
                .cloned()
                .ok_or_else(|| InfoCoreError::NotFound {
                    name: name.to_string(),
                    version: Some(version),
                })?;
        let served = prepare(&record)?;
        let pointer = Pointer {
            name: name.to_string(),
            seq: step.seq(),
            version,
            reason: reason.to_string(),
            created_at_ms: now_ms(),
        };
        let pointer_bytes = record::encode(&pointer)?;
        if !self
            .storage
            .create(&pointer_key(name, pointer.seq), &pointer_bytes)?
        {
            return Err(InfoCoreError::Rejected(format!(
                "{name} changed concurrently by another writer; reload and retry"
            )));
        }
        state.pointers.push(pointer.clone());
        let current = self.snapshot.load();
        self.snapshot.store(current.with(name, Some(served)));
        // The pointed-to version travels along, so the message is self-contained.
        self.replicate(
            name,
            vec![
                (model_key(name, version), record::encode(record.as_ref())?),
                (pointer_key(name, pointer.seq), pointer_bytes),
            ],
            None,
        )?;
        Ok(pointer)
    }

    /// Sends every later change to `sink` (e.g. [`crate::replication::KafkaSink`]).
    pub fn set_change_sink(&self, sink: Arc<dyn ChangeSink>) {
        *self.sink.lock() = Some(sink);
    }

    /// Sets who decides whether this process may publish (a scaled-out background's job
    /// leases). Without one, every publish is allowed and carries no lease.
    pub fn set_publish_guard(&self, guard: Arc<dyn PublishGuard>) {
        *self.guard.lock() = Some(guard);
    }

    /// Refuses `lease` if a newer lease of `name` was seen.
    fn check_fence(&self, name: &str, lease: &Lease) -> Result<()> {
        match self.fences.lock().get(name) {
            Some(&newest) if newest > lease.epoch => Err(InfoCoreError::Fenced {
                model: name.to_string(),
                reason: format!(
                    "{}'s lease epoch {} is older than epoch {newest}",
                    lease.owner, lease.epoch
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Raises `name`'s fence to `lease` (or refuses it as older).
    fn raise_fence(&self, name: &str, lease: &Lease) -> Result<()> {
        self.check_fence(name, lease)?;
        let mut fences = self.fences.lock();
        let newest = fences.entry(name.to_string()).or_default();
        *newest = (*newest).max(lease.epoch);
        Ok(())
    }

    /// Announces a new lease of `name` to every replica: a change without files. Once it
    /// is in the topic, changes under older leases are refused by everyone applying it —
    /// this store too, when its follower reaches it (not before: changes ahead of it in the
    /// topic are still valid). Fails when it could not be sent (the lease must not be used).
    pub fn announce_lease(&self, name: &str, lease: &Lease) -> Result<()> {
        let Some(sink) = self.sink.lock().clone() else {
            return Ok(());
        };
        sink.changed(&ModelChange {
            name: name.to_string(),
            files: Vec::new(),
            lease: Some(lease.clone()),
        })
    }

    /// Sends a change to the sink. A change made under a lease must reach the topic (its
    /// failure is the publish's); others are durable locally, and a failure is reported:
    /// the next change (or `resync`) carries the model's current state again.
    fn replicate(&self, name: &str, files: ChangeFiles, lease: Option<Lease>) -> Result<()> {
        let Some(sink) = self.sink.lock().clone() else {
            return Ok(());
        };
        let leased = lease.is_some();
        let change = ModelChange {
            name: name.to_string(),
            files: files
                .into_iter()
                .map(|(key, bytes)| ReplicatedFile {
                    key,
                    content: String::from_utf8_lossy(&bytes).into_owned(),
                })
                .collect(),
            lease,
        };
        if let Err(e) = sink.changed(&change) {
            tracing::error!(model = name, error = %e, "replicating a model change failed");
            self.problems.lock().push(e.to_string());
            if leased {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends every model's current state to the change sink (a leader's start-up, or after
    /// replication failures).
    pub fn resync(&self) -> Result<()> {
        for name in self.names() {
            self.resync_model(&name, None)?;
        }
        Ok(())
    }

    /// Sends `name`'s current state (its current version and newest pointer) to the change
    /// sink, under `lease` if given: a new lease owner makes the newest message of the
    /// model in the compacted topic one of its own. Nothing when the model has no version.
    pub fn resync_model(&self, name: &str, lease: Option<Lease>) -> Result<()> {
        let files: ChangeFiles = {
            let models = self.models.lock();
            let Some(state) = models.get(name) else {
                return Ok(());
            };
            let Some(record) = state.current().and_then(|v| state.records.get(&v)) else {
                return Ok(());
            };
            let mut files = vec![(
                model_key(name, record.version),
                record::encode(record.as_ref())?,
            )];
            if let Some(p) = state.pointers.iter().max_by_key(|p| p.seq) {
                files.push((pointer_key(name, p.seq), record::encode(p)?));
            }
            files
        };
        self.replicate(name, files, lease)
    }

    /// The newest lease epoch this store has seen for `name` (0: none).
    pub fn fence(&self, name: &str) -> u64 {
        self.fences.lock().get(name).copied().unwrap_or(0)
    }

    /// Applies a replicated change: each file is checked (header, checksum, key) and
    /// created if absent; then that model alone is reloaded and swapped in the snapshot.
    pub fn apply_change(&self, change: &ModelChange) -> Result<()> {
        if let Some(lease) = &change.lease {
            self.raise_fence(&change.name, lease)?;
        }
        if change.files.is_empty() {
            return Ok(());
        }
        for file in &change.files {
            let key_ok = file
                .key
                .split_once('/')
                .is_some_and(|(name, rest)| name == change.name && !rest.contains('/'));
            if !key_ok || !core::valid_name(&change.name) {
                return Err(InfoCoreError::Rejected(format!(
                    "replicated file {:?} does not belong to model {:?}",
                    file.key, change.name
                )));
            }
            let bytes = file.content.as_bytes();
            if file.key.ends_with(".model") {
                let record: ModelRecord = record::decode(bytes, &file.key)?;
                record::verify_record(&record, &file.key)?;
            } else if file.key.ends_with(".pointer") {
                let _: Pointer = record::decode(bytes, &file.key)?;
            } else {
                return Err(InfoCoreError::Rejected(format!(
                    "replicated file {:?} is neither a model nor a pointer",
                    file.key
                )));
            }
            if !self.storage.create(&file.key, bytes)? && self.storage.read(&file.key)? != bytes {
                if change.lease.is_none() {
                    return Err(InfoCoreError::Rejected(format!(
                        "replicated file {:?} differs from the one stored under that key",
                        file.key
                    )));
                }
                // The topic's order decides under leases: this store published the file
                // itself while fenced (the others refused it); the owner's replaces it.
                tracing::warn!(key = %file.key, "replacing a version the topic refused with the lease owner's");
                self.storage.remove(&file.key)?;
                self.storage.create(&file.key, bytes)?;
            }
        }
        self.reload_model(&change.name)
    }

    /// Names of every model.
    pub fn names(&self) -> Vec<String> {
        self.models.lock().keys().cloned().collect()
    }

    /// The current version's record.
    pub fn latest(&self, name: &str) -> Result<Arc<ModelRecord>> {
        let models = self.models.lock();
        models
            .get(name)
            .and_then(|s| s.current().and_then(|v| s.records.get(&v).cloned()))
            .ok_or_else(|| InfoCoreError::NotFound {
                name: name.to_string(),
                version: None,
            })
    }

    /// A stored version's record.
    pub fn get(&self, name: &str, version: u64) -> Result<Arc<ModelRecord>> {
        let models = self.models.lock();
        models
            .get(name)
            .and_then(|s| s.records.get(&version).cloned())
            .ok_or_else(|| InfoCoreError::NotFound {
                name: name.to_string(),
                version: Some(version),
            })
    }

    /// Stored versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Vec<Arc<ModelRecord>> {
        let models = self.models.lock();
        models
            .get(name)
            .map(|s| s.records.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Publishes and rollbacks of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let models = self.models.lock();
        let state = models.get(name).ok_or_else(|| InfoCoreError::NotFound {
            name: name.to_string(),
            version: None,
        })?;
        let mut entries: Vec<HistoryEntry> = state
            .seen
            .iter()
            .map(|step| {
                let record = state.records.get(&step.version());
                HistoryEntry {
                    seq: step.seq(),
                    action: if step.seq() == 0 {
                        "quarantined"
                    } else {
                        "published"
                    },
                    version: step.version(),
                    created_at_ms: record.map_or(0, |r| r.created_at_ms),
                    stored: record.is_some(),
                    note: record.map(|r| r.lineage.job.clone()).unwrap_or_default(),
                }
            })
            .chain(state.pointers.iter().map(|p| HistoryEntry {
                seq: p.seq,
                action: "rolled_back",
                version: p.version,
                created_at_ms: p.created_at_ms,
                stored: state.records.contains_key(&p.version),
                note: p.reason.clone(),
            }))
            .collect();
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    /// A version (default: the current one) as a self-checking file, for `import` elsewhere.
    pub fn export(&self, name: &str, version: Option<u64>) -> Result<Vec<u8>> {
        let record = match version {
            Some(v) => self.get(name, v)?,
            None => self.latest(name)?,
        };
        record::encode(record.as_ref())
    }

    /// Publishes an exported record as the next version of its model here (its metadata and
    /// model kept; version and sequence assigned by this store).
    pub fn import(&self, bytes: &[u8], source: &str) -> Result<Arc<ModelRecord>> {
        let record: ModelRecord = record::decode(bytes, source)?;
        record::verify_record(&record, source)?;
        let model = record.decode_model()?;
        self.publish(ModelDraft {
            name: record.name,
            features: record.features,
            target: record.target,
            window: record.window,
            rows: record.rows,
            metrics: record.metrics,
            lineage: record.lineage,
            model,
        })
    }
}
