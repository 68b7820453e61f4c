//! With the broker unreachable the background stays alive, says it is not ready, and does
//! not flood the log; with a broker it becomes ready.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, free_loopback_port, http, start_background};

#[test]
fn an_unreachable_broker_is_not_ready_and_is_logged_sparingly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nobody = free_loopback_port();
    let background = start_background(
        dir.path(),
        &format!("[kafka]\nbrokers = \"{nobody}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n"),
    );
    let addr = background.metrics.clone();
    let started = Instant::now();
    let report = eventually(20, "readiness to say the broker is unreachable", || {
        let (status, body) = http(&addr, "GET", "/readyz", "");
        (status == 503 && body["broker_reachable"] == false).then_some(body)
    });
    assert_eq!(report["ready"], false);
    assert_eq!(report["assigned_partitions"], 0);
    // Stay a while: librdkafka retries the connection several times a second.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
    let (status, _) = http(&addr, "GET", "/healthz", "");
    assert_eq!(status, 200, "alive while the broker is down");
    let lines = background.lines.lock().expect("lock").clone();
    let kafka_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("kafka") || l.contains("Connect") || l.contains("broker"))
        .collect();
    // Before the rate limit: 112 lines in 8 s. Now: the first of each kind.
    assert!(
        !kafka_lines.is_empty() && kafka_lines.len() <= 12,
        "{} lines about the broker in 8 s:\n{}",
        kafka_lines.len(),
        kafka_lines
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(background);
}

#[test]
fn the_embedded_broker_makes_the_background_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let background = start_background(
        dir.path(),
        "[http]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n[kafka]\nstatistics_interval_ms = 500\n",
    );
    let report = eventually(60, "readiness", || {
        let (status, body) = http(&background.metrics, "GET", "/readyz", "");
        (status == 200).then_some(body)
    });
    assert_eq!(report["ready"], true);
    assert_eq!(report["broker_reachable"], true);
    assert!(report["assigned_partitions"].as_u64().unwrap_or(0) > 0);
}
