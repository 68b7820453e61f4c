//! What a message on the landscape topic may hold: landscape events (the native format: one
//! event, a JSON array or NDJSON), or Kubernetes objects exactly as `kubectl get nodes,pods,
//! replicasets,deployments,services -A -o json` prints them (a `List`, or one object). A
//! listing is turned into events against the graph it is about to be applied to, at the
//! message's time — so every consumer of the topic (background replicas, foreground
//! replicas) derives the same events from it, as they hold the same graph.

use dcpilot_schemas::decode::{DecodeErrorKind, DecodeOutcome, RecordError};
use dcpilot_schemas::{LandscapeDecoder, LandscapeEvent};
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::kubernetes;
use crate::LandscapeGraph;

/// Whether `payload` is a Kubernetes object or object list (it has an `apiVersion`, which
/// no landscape event has).
pub fn is_kubernetes(payload: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "apiVersion")]
        api_version: Option<IgnoredAny>,
    }
    // Cheap first: the word must be there at all.
    memchr::memmem::find(payload, b"\"apiVersion\"").is_some()
        && serde_json::from_slice::<Probe>(payload).is_ok_and(|p| p.api_version.is_some())
}

fn error(kind: DecodeErrorKind, message: String) -> RecordError {
    RecordError {
        record: 0,
        kind,
        message,
    }
}

/// Decodes one message of the landscape topic, passing each event to `on_event`; a
/// Kubernetes listing becomes the events that bring `graph` in line with it at
/// `timestamp_ms`. What cannot be read is in the outcome's errors (for the dead-letter
/// topic), never a panic.
pub fn decode_message(
    payload: &[u8],
    graph: &LandscapeGraph,
    timestamp_ms: i64,
    mut on_event: impl FnMut(LandscapeEvent),
) -> DecodeOutcome {
    if !is_kubernetes(payload) {
        return LandscapeDecoder.decode(payload, on_event);
    }
    let mut outcome = DecodeOutcome::default();
    let derived = std::str::from_utf8(payload)
        .map_err(|e| {
            error(
                DecodeErrorKind::InvalidUtf8,
                format!("a Kubernetes listing must be UTF-8: {e}"),
            )
        })
        .and_then(|text| {
            kubernetes::events(text, graph, timestamp_ms)
                .map_err(|e| error(DecodeErrorKind::SchemaMismatch, e.to_string()))
        });
    match derived {
        Ok(events) => {
            outcome.samples = events.len();
            events.into_iter().for_each(&mut on_event);
        }
        Err(e) => outcome.reject(e),
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"Node","metadata":{"name":"worker-1"},
         "status":{"capacity":{"cpu":"4","memory":"8Gi"},
                   "addresses":[{"type":"InternalIP","address":"10.0.0.11"}]}},
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop"},
         "spec":{"nodeName":"worker-1","containers":[{"name":"c",
                 "resources":{"requests":{"cpu":"500m"}}}]},
         "status":{"phase":"Running"}}]}"#;

    #[test]
    fn a_kubernetes_listing_becomes_events_against_the_graph() {
        assert!(is_kubernetes(LISTING.as_bytes()));
        let mut graph = LandscapeGraph::new();
        let mut events = Vec::new();
        let outcome = decode_message(LISTING.as_bytes(), &graph, 1_000, |e| events.push(e));
        assert!(outcome.is_clean(), "{:?}", outcome.errors);
        assert!(
            events.len() >= 3,
            "two nodes and the pod's placement: {events:?}"
        );
        assert!(events.iter().all(|e| e.timestamp_ms() == 1_000));
        graph.apply_all(&events).expect("applies");
        assert!(graph.get("10.0.0.11").is_some(), "the node by its address");
        // The next listing has another pod instead: the first one ends.
        let later = LISTING.replace("web-1", "web-2");
        let mut gone = Vec::new();
        let outcome = decode_message(later.as_bytes(), &graph, 2_000, |e| gone.push(e));
        assert!(outcome.is_clean(), "{:?} in {later}", outcome.errors);
        assert!(
            gone.iter()
                .any(|e| matches!(e, LandscapeEvent::NodeDown { id, .. } if id == "shop/web-1")),
            "{gone:?}"
        );
    }

    #[test]
    fn native_events_still_decode_and_a_broken_listing_is_an_error() {
        let native =
            br#"{"kind":"host_up","timestamp_ms":1,"host":"h1","cores":4,"memory_bytes":1}"#;
        assert!(!is_kubernetes(native));
        let mut events = Vec::new();
        let outcome = decode_message(native, &LandscapeGraph::new(), 5, |e| events.push(e));
        assert!(outcome.is_clean(), "{:?}", outcome.errors);
        assert_eq!(events.len(), 1);

        let broken = br#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{}}]}"#;
        let mut none = Vec::new();
        let outcome = decode_message(broken, &LandscapeGraph::new(), 5, |e| none.push(e));
        assert!(none.is_empty());
        assert_eq!(outcome.error_count, 1);
        assert!(
            outcome.errors[0].message.contains("metadata.name"),
            "{}",
            outcome.errors[0]
        );
    }
}
