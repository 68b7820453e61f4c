//! With the broker unreachable the background stays alive, says it is not ready, and does
//! not flood the log; with a broker it becomes ready.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{dcpilot_command, eventually, free_loopback_port, http, KillOnDrop};

/// Starts `dcpilot background` on `toml`; returns the child, the metrics address and the
/// stderr lines collected so far (a thread keeps reading).
fn start(dir: &std::path::Path, toml: &str) -> (KillOnDrop, String, Arc<Mutex<Vec<String>>>) {
    let config = dir.join("c.toml");
    std::fs::write(&config, toml).expect("write config");
    let mut child = dcpilot_command(
        dir,
        &["background", "--config", config.to_str().expect("utf-8")],
    )
    .stderr(Stdio::piped())
    .spawn()
    .expect("start");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    let child = KillOnDrop(child);
    let addr = eventually(30, "the metrics address", || {
        lines.lock().expect("lock").iter().find_map(|l| {
            l.strip_prefix("metrics at http://")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_string)
        })
    });
    (child, addr, lines)
}

#[test]
fn an_unreachable_broker_is_not_ready_and_is_logged_sparingly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nobody = free_loopback_port();
    let (child, addr, lines) = start(
        dir.path(),
        &format!("[kafka]\nbrokers = \"{nobody}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n"),
    );
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
    let lines = lines.lock().expect("lock").clone();
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
    drop(child);
}

#[test]
fn the_embedded_broker_makes_the_background_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_child, addr, _lines) = start(
        dir.path(),
        "[http]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n[kafka]\nstatistics_interval_ms = 500\n",
    );
    let report = eventually(60, "readiness", || {
        let (status, body) = http(&addr, "GET", "/readyz", "");
        (status == 200).then_some(body)
    });
    assert_eq!(report["ready"], true);
    assert_eq!(report["broker_reachable"], true);
    assert!(report["assigned_partitions"].as_u64().unwrap_or(0) > 0);
}
