//! Immutable snapshots of every model's current version, swapped atomically.
//!
//! Readers call [`SnapshotCell::load`] (a lock-free `arc-swap` load) and keep the `Arc` for
//! the whole request: one consistent set of models, prepared for prediction, no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::live::{verdict_name, Answerer, LiveVerdict};
use crate::model::PreparedModel;
use crate::record::ModelRecord;

/// A model as served: its record's metadata and its prepared form.
#[derive(Debug)]
pub struct ServedModel {
    /// The record (its `model` text is kept for export; predictions use `prepared`).
    pub record: Arc<ModelRecord>,
    /// Prediction-ready form.
    pub prepared: PreparedModel,
}

impl ServedModel {
    /// Version served.
    pub fn version(&self) -> u64 {
        self.record.version
    }

    /// Seconds since it was published, as of `now_ms` (0 if published "later").
    pub fn age_secs(&self, now_ms: i64) -> u64 {
        u64::try_from(now_ms.saturating_sub(self.record.created_at_ms)).unwrap_or(0) / 1000
    }
}

/// The current version of every model, at one instant (cloning shares the models).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Increases by one per swap.
    pub generation: u64,
    models: BTreeMap<String, Arc<ServedModel>>,
}

impl Snapshot {
    /// The model called `name`, if any version of it is served.
    pub fn get(&self, name: &str) -> Option<&ServedModel> {
        self.models.get(name).map(Arc::as_ref)
    }

    /// What answers for `name` as of `now_ms`: its served version, demoted while the newest
    /// live verdict on that very version, not yet expired, says it is worse than its best
    /// baseline.
    pub fn answerer(&self, name: &str, now_ms: i64) -> Option<Answerer<'_>> {
        let served = self.get(name)?;
        Some(Answerer::new(served, self.served_verdict(name), now_ms))
    }

    /// The newest live verdict on `name` (on whichever version).
    pub fn verdict(&self, name: &str) -> Option<&LiveVerdict> {
        self.get(&verdict_name(name))?.prepared.verdict()
    }

    /// The newest live verdict on the version of `name` served now (none if the newest
    /// judged an earlier version).
    pub fn served_verdict(&self, name: &str) -> Option<&LiveVerdict> {
        let version = self.get(name)?.version();
        self.verdict(name).filter(|v| v.version == version)
    }

    /// Every served model, by name.
    pub fn models(&self) -> impl Iterator<Item = (&str, &ServedModel)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// Number of served models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether no model is served.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// This snapshot with `name` served as `model` (or removed, with `None`); the other
    /// models are shared, not copied or re-prepared.
    pub fn with(&self, name: &str, model: Option<Arc<ServedModel>>) -> Self {
        let mut models = self.models.clone();
        match model {
            Some(m) => models.insert(name.to_string(), m),
            None => models.remove(name),
        };
        Self {
            generation: self.generation + 1,
            models,
        }
    }
}

/// The current snapshot, swapped atomically; subscribers learn of each swap.
pub struct SnapshotCell {
    current: ArcSwap<Snapshot>,
    notify: watch::Sender<u64>,
}

impl Default for SnapshotCell {
    fn default() -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::default()),
            notify: watch::Sender::new(0),
        }
    }
}

impl SnapshotCell {
    /// The current snapshot (lock-free).
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes `next` and notifies subscribers of its generation.
    pub fn store(&self, next: Snapshot) {
        let generation = next.generation;
        self.current.store(Arc::new(next));
        self.notify.send_replace(generation);
    }

    /// A receiver that sees the generation of every swap from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }
}
