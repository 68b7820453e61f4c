//! [`SharedLandscape`]: the landscape as readers see it — an immutable `Arc<LandscapeGraph>`
//! swapped atomically — kept by one writer without copying the graph per change.
//!
//! The writer keeps two copies (the left-right scheme): readers load the live one; a change
//! is applied to the spare copy, which is then swapped in, and the copy swapped out becomes
//! the spare, one change behind. Before the next change the writer brings the spare up to
//! date by applying the same events again, once no reader holds it any more. A change
//! therefore costs its events twice and a pointer swap, not a copy of the graph; the price
//! is a second copy's memory. Readers hold their `Arc` for a request, so the writer rarely
//! waits; when a reader keeps a snapshot for long, the writer stops waiting after
//! [`SPARE_WAIT`] and copies the live graph instead (counted in
//! `dcpilot_landscape_snapshot_copies_total`), so a slow reader never blocks a change.
//!
//! (`left-right` the crate hands readers guards tied to per-thread handles; the loops
//! need plain `Arc` snapshots they can hold across an `.await` and pass between threads,
//! like the models' snapshots, so the scheme is kept here on `arc-swap`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dcpilot_schemas::LandscapeEvent;
use parking_lot::Mutex;

use super::{Applied, GraphError, LandscapeGraph};

/// How long a change waits for readers to let go of the spare copy before copying the live
/// graph instead (short: writers run on async workers; readers hold a snapshot for one
/// request).
pub const SPARE_WAIT: Duration = Duration::from_millis(5);

/// Counts the times a change had to copy the whole graph (a reader held the spare copy too
/// long, or a refused batch spoiled it).
pub const SNAPSHOT_COPIES_METRIC: &str = "dcpilot_landscape_snapshot_copies_total";

/// What [`SharedLandscape::apply_each`] did.
#[derive(Debug, Default)]
pub struct EachOutcome {
    /// The refused events (by position) and why; they changed nothing.
    pub refused: Vec<(usize, GraphError)>,
    /// Whether the accepted ones changed the graph (a new snapshot was published).
    pub changed: bool,
}

struct Writer {
    /// The copy that was live before the last change; `None` after a refused batch.
    spare: Option<Arc<LandscapeGraph>>,
    /// The events the live copy has and the spare has not, in order.
    behind: Vec<LandscapeEvent>,
}

/// The landscape graph behind atomically swapped immutable snapshots, changed by one
/// writer at a time (writers serialise; readers never wait).
pub struct SharedLandscape {
    live: ArcSwap<LandscapeGraph>,
    writer: Mutex<Writer>,
}

impl Default for SharedLandscape {
    fn default() -> Self {
        Self::new(LandscapeGraph::new())
    }
}

impl SharedLandscape {
    /// Starts from `graph`.
    pub fn new(graph: LandscapeGraph) -> Self {
        metrics::describe_counter!(
            SNAPSHOT_COPIES_METRIC,
            "Landscape changes that copied the whole graph instead of updating the spare copy."
        );
        Self {
            live: ArcSwap::from_pointee(graph),
            writer: Mutex::new(Writer {
                spare: None,
                behind: Vec::new(),
            }),
        }
    }

    /// The graph now: an immutable snapshot that later changes do not touch.
    pub fn load(&self) -> Arc<LandscapeGraph> {
        self.live.load_full()
    }

    /// Reads the graph now without taking a reference count (for short reads).
    pub fn read<T>(&self, f: impl FnOnce(&LandscapeGraph) -> T) -> T {
        f(&self.live.load())
    }

    /// Applies each event that the graph accepts and publishes the result at once (a new
    /// snapshot only if something changed). Refused events change nothing.
    pub fn apply_each(&self, events: &[LandscapeEvent]) -> EachOutcome {
        let mut outcome = EachOutcome::default();
        if events.is_empty() {
            return outcome;
        }
        outcome.changed = self
            .change(|graph, changed| {
                for (i, event) in events.iter().enumerate() {
                    match graph.apply_event(event) {
                        Ok(Applied::Unchanged) => {}
                        Ok(_) => changed.push(event.clone()),
                        Err(e) => outcome.refused.push((i, e)),
                    }
                }
                Ok::<_, GraphError>(!changed.is_empty())
            })
            .unwrap_or_default();
        outcome
    }

    /// Applies events all or nothing: on the first refusal nothing is published and the
    /// error names the event.
    pub fn apply_all(&self, events: &[LandscapeEvent]) -> Result<usize, GraphError> {
        self.apply_all_if(events, |_| Ok(())).map(|()| events.len())
    }

    /// Applies events all or nothing, then lets `accept` judge the resulting graph before
    /// it is published (a view built from it must hold what the events describe, say):
    /// its refusal publishes nothing, like a refused event. Returns what `accept` made.
    pub fn apply_all_if<T>(
        &self,
        events: &[LandscapeEvent],
        accept: impl FnOnce(&LandscapeGraph) -> Result<T, dcpilot_schemas::Invalid>,
    ) -> Result<T, GraphError> {
        if events.is_empty() {
            return accept(&self.live.load()).map_err(|e| GraphError::Invalid(e.0));
        }
        self.change(|graph, changed| {
            for (i, event) in events.iter().enumerate() {
                match graph.apply_event(event) {
                    Ok(Applied::Unchanged) => {}
                    Ok(_) => changed.push(event.clone()),
                    Err(e) => {
                        return Err(GraphError::InEvent {
                            index: i,
                            kind: event.kind(),
                            source: Box::new(e),
                        })
                    }
                }
            }
            accept(graph).map_err(|e| GraphError::Invalid(e.0))
        })
    }

    /// Replaces the whole graph.
    pub fn replace(&self, graph: LandscapeGraph) {
        let mut writer = self.writer.lock();
        self.live.store(Arc::new(graph));
        writer.spare = None;
        writer.behind.clear();
    }

    /// Runs `edit` on an up-to-date private copy (recording the events that changed it:
    /// the graph answers `Unchanged` only when it changed nothing, so those need no
    /// replay) and publishes the copy if `edit` succeeds and changed anything.
    fn change<T, E>(
        &self,
        edit: impl FnOnce(&mut LandscapeGraph, &mut Vec<LandscapeEvent>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut writer = self.writer.lock();
        let mut next = self.up_to_date_spare(&mut writer);
        // Private to the writer, so this never copies.
        let graph = Arc::make_mut(&mut next);
        let mut applied = Vec::new();
        match edit(graph, &mut applied) {
            Err(e) => {
                // The spare may hold part of a refused batch: the next change starts from
                // a copy of the live graph.
                writer.spare = None;
                writer.behind.clear();
                Err(e)
            }
            Ok(out) => {
                if applied.is_empty() {
                    // Nothing changed: the private copy is as current as the live one.
                    writer.spare = Some(next);
                    writer.behind.clear();
                } else {
                    writer.spare = Some(self.live.swap(next));
                    writer.behind = applied;
                }
                Ok(out)
            }
        }
    }

    /// A private copy equal to the live graph: the spare brought up to date when no
    /// reader holds it (waiting at most [`SPARE_WAIT`]), else a copy of the live graph.
    fn up_to_date_spare(&self, writer: &mut Writer) -> Arc<LandscapeGraph> {
        if let Some(mut spare) = writer.spare.take() {
            let deadline = Instant::now() + SPARE_WAIT;
            let mut spins = 0u32;
            loop {
                if let Some(graph) = Arc::get_mut(&mut spare) {
                    let replayed = writer.behind.iter().all(|e| graph.apply_event(e).is_ok());
                    writer.behind.clear();
                    if replayed {
                        return spare;
                    }
                    // Cannot happen (the same events applied to the same graph); if it
                    // did, a copy is still correct.
                    tracing::error!("the landscape's spare copy diverged; copying the graph");
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                spins += 1;
                if spins < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
        writer.behind.clear();
        metrics::counter!(SNAPSHOT_COPIES_METRIC).increment(1);
        Arc::new(LandscapeGraph::clone(&self.live.load()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcpilot_schemas::{Category, EdgeSpec, Layer, NodeSpec, Relation};

    fn node_up(t: i64, id: &str, node_type: &str) -> LandscapeEvent {
        LandscapeEvent::NodeUp {
            timestamp_ms: t,
            node: NodeSpec::new(id, Layer::Physical, Category::Compute, node_type),
        }
    }

    fn contains(t: i64, outer: &str, inner: &str) -> LandscapeEvent {
        LandscapeEvent::EdgeUp {
            timestamp_ms: t,
            edge: EdgeSpec::new(outer, Relation::Contains, inner),
        }
    }

    fn export(graph: &LandscapeGraph) -> String {
        serde_json::to_string(&graph.to_stored()).expect("serialises")
    }

    #[test]
    fn every_change_is_seen_whole_and_old_snapshots_stay_as_they_were() {
        let shared = SharedLandscape::default();
        let before = shared.load();
        assert!(shared
            .apply_each(&[node_up(1, "rack", "rack")])
            .refused
            .is_empty());
        let one = shared.load();
        assert_eq!((before.node_count(), one.node_count()), (0, 1));
        // A snapshot held across changes keeps its content; the writer copies instead of
        // waiting for it.
        for i in 0..5 {
            let host = format!("h{i}");
            let refused = shared.apply_each(&[node_up(2 + i, &host, "host")]).refused;
            assert!(refused.is_empty());
            assert!(shared
                .apply_each(&[contains(2 + i, "rack", &host)])
                .refused
                .is_empty());
        }
        assert_eq!(one.node_count(), 1);
        let now = shared.load();
        assert_eq!((now.node_count(), now.edge_count()), (6, 5));
    }

    #[test]
    fn the_spare_copy_catches_up_to_the_same_graph_as_applying_once() {
        let shared = SharedLandscape::default();
        let mut reference = LandscapeGraph::new();
        let mut events = vec![node_up(1, "rack", "rack")];
        for i in 0..20 {
            events.push(node_up(2 + i, &format!("h{i}"), "host"));
            events.push(contains(2 + i, "rack", &format!("h{i}")));
        }
        for chunk in events.chunks(3) {
            assert!(shared.apply_each(chunk).refused.is_empty());
            for e in chunk {
                reference.apply_event(e).expect("applies");
            }
            // Both copies take turns being live: each must equal the reference.
            assert_eq!(export(&shared.load()), export(&reference));
        }
    }

    #[test]
    fn a_refused_batch_publishes_nothing_and_later_changes_still_apply() {
        let shared = SharedLandscape::default();
        shared
            .apply_all(&[node_up(1, "rack", "rack"), node_up(1, "h1", "host")])
            .expect("applies");
        let err = shared
            .apply_all(&[
                node_up(2, "h2", "host"),
                contains(2, "rack", "ghost"), // unknown node
            ])
            .expect_err("refused");
        assert!(matches!(err, GraphError::InEvent { index: 1, .. }), "{err}");
        assert!(shared.load().get("h2").is_none(), "nothing of the batch");
        shared
            .apply_all(&[contains(3, "rack", "h1")])
            .expect("applies");
        let g = shared.load();
        assert!(g.get("h2").is_none());
        assert_eq!(g.edge_count(), 1);
        // And the spare, rebuilt after the refusal, is right too.
        shared
            .apply_all(&[node_up(4, "h3", "host")])
            .expect("applies");
        assert_eq!(shared.load().node_count(), 3);
        assert!(shared.load().get("h2").is_none());
    }

    #[test]
    fn refused_events_of_a_lenient_change_are_reported_and_skipped() {
        let shared = SharedLandscape::default();
        let batch = [
            node_up(1, "rack", "rack"),
            contains(1, "rack", "ghost"),
            node_up(1, "h1", "host"),
        ];
        let outcome = shared.apply_each(&batch);
        assert!(outcome.changed);
        let refused = outcome.refused;
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, 1);
        assert_eq!(shared.load().node_count(), 2);
        // Delivered again: nothing changes, and no new snapshot is published.
        let before = shared.load();
        let again = shared.apply_each(&batch);
        assert!(!again.changed);
        assert_eq!(again.refused.len(), 1);
        assert!(Arc::ptr_eq(&before, &shared.load()));
        drop(before);
        // The spare replays only what applied.
        assert!(shared
            .apply_each(&[contains(2, "rack", "h1")])
            .refused
            .is_empty());
        assert!(shared
            .apply_each(&[node_up(3, "h2", "host")])
            .refused
            .is_empty());
        assert_eq!(shared.load().edge_count(), 1);
        assert_eq!(shared.load().node_count(), 3);
    }
}
