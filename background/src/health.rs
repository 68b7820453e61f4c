//! Readiness: whether this process can do its work now — the broker answers and the
//! consumer group gave it partitions. `/healthz` says the process is alive; `/readyz`
//! answers 200 only when ready, else 503, both with the reasons as JSON.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::ingest::IngestStats;

/// The live state of ingestion, shared between the ingestor (which learns it), `/readyz`
/// and whoever assembled the process (`demo` waits on its progress).
#[derive(Debug, Default)]
pub struct Readiness {
    /// 0: not known yet, 1: reachable, 2: unreachable.
    broker: AtomicU8,
    assigned: AtomicUsize,
    messages: AtomicU64,
    rows: AtomicU64,
    duplicates: AtomicU64,
    dead_letters: AtomicU64,
    batches: AtomicU64,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReadinessReport {
    /// Broker reachable and partitions assigned.
    pub ready: bool,
    /// Whether a broker answered lately (`null` before the first word from the client).
    pub broker_reachable: Option<bool>,
    /// Partitions of the consumer group this instance holds.
    pub assigned_partitions: usize,
}

impl Readiness {
    /// Records whether a broker is reachable.
    pub fn set_broker_reachable(&self, reachable: bool) {
        self.broker
            .store(if reachable { 1 } else { 2 }, Ordering::Relaxed);
    }

    /// Records the partitions assigned now.
    pub fn set_assigned_partitions(&self, count: usize) {
        self.assigned.store(count, Ordering::Relaxed);
    }

    /// Adds what one committed batch did.
    pub fn add_progress(&self, delta: &IngestStats) {
        self.messages.fetch_add(delta.messages, Ordering::Relaxed);
        self.rows.fetch_add(delta.rows, Ordering::Relaxed);
        self.duplicates
            .fetch_add(delta.duplicates, Ordering::Relaxed);
        self.dead_letters
            .fetch_add(delta.dead_letters, Ordering::Relaxed);
        self.batches.fetch_add(delta.batches, Ordering::Relaxed);
    }

    /// Totals of every committed batch since the process started.
    pub fn progress(&self) -> IngestStats {
        IngestStats {
            messages: self.messages.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
        }
    }

    /// The current state.
    pub fn report(&self) -> ReadinessReport {
        let broker_reachable = match self.broker.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        };
        let assigned_partitions = self.assigned.load(Ordering::Relaxed);
        ReadinessReport {
            ready: broker_reachable == Some(true) && assigned_partitions > 0,
            broker_reachable,
            assigned_partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_a_broker_and_partitions() {
        let r = Readiness::default();
        assert!(!r.report().ready);
        assert_eq!(r.report().broker_reachable, None);
        r.set_broker_reachable(true);
        assert!(!r.report().ready, "no partitions yet");
        r.set_assigned_partitions(4);
        assert!(r.report().ready);
        r.set_broker_reachable(false);
        assert_eq!(
            r.report(),
            ReadinessReport {
                ready: false,
                broker_reachable: Some(false),
                assigned_partitions: 4
            }
        );
    }
}
