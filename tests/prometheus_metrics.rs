//! `/metrics` as Prometheus tooling reads it: every metric described (HELP and TYPE), the
//! documented counters present at 0 from the start, and the real `promtool check metrics`
//! satisfied (Debian's `prometheus` package, installed by scripts/setup.sh).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{dcpilot_command, eventually, http_text, start_background, wait_for_file, KillOnDrop};

/// Checks the exposition with promtool (Debian's prometheus package; scripts/setup.sh
/// installs it).
fn promtool_accepts(body: &str) {
    let tool = common::required_tool(
        &["/usr/bin/promtool", "/usr/local/bin/promtool"],
        "prometheus",
    );
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\n---\n{body}");
    assert!(report.trim().is_empty(), "promtool complained: {report}");
}

/// Every `# TYPE` line has a `# HELP` line for the same metric.
fn every_metric_described(body: &str) {
    let typed: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(!typed.is_empty(), "{body}");
    for name in typed {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "{name} has no help text:\n{body}"
        );
    }
}

#[test]
fn background_metrics_are_described_zeroed_and_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let background = start_background(dir.path(), "[http]\nlisten = \"127.0.0.1:0\"\n");
    let addr = background.metrics.clone();
    let body = eventually(30, "metrics", || {
        let (status, text) = http_text(&addr, "/metrics");
        (status == 200).then_some(text)
    });
    for zeroed in [
        "dcpilot_ingest_messages_total{topic=\"dcpilot.telemetry\"} 0",
        "dcpilot_ingest_bytes_total{topic=\"dcpilot.telemetry\"} 0",
        "dcpilot_ingest_samples_total{table=\"telemetry\"} 0",
        "dcpilot_ingest_duplicates_total{table=\"telemetry\"} 0",
        "dcpilot_ingest_decode_errors_total{topic=\"dcpilot.telemetry\",kind=\"malformed_json\"} 0",
        "dcpilot_ingest_dead_letters_total{topic=\"dcpilot.telemetry.dlq\"} 0",
        "dcpilot_store_spilled_partitions_total{table=\"telemetry\",reason=\"memory_ceiling\"} 0",
        "dcpilot_store_live_bytes{table=\"telemetry\"} 0",
        "dcpilot_kafka_errors_total{context=\"consume\"} 0",
        "dcpilot_job_runs_total{job=\"cpu-demand\",outcome=\"published\"} 0",
    ] {
        assert!(body.contains(zeroed), "{zeroed} missing:\n{body}");
    }
    every_metric_described(&body);
    promtool_accepts(&body);
}

#[test]
fn foreground_metrics_are_described_zeroed_and_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = dcpilot_command(dir.path(), &["foreground", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let _child = KillOnDrop(child);
    let addr = wait_for_file(&dir.path().join("foreground.addr"));
    // One answered request, so the histogram has a sample too.
    let (status, _) = http_text(&addr, "/healthz");
    assert_eq!(status, 200);
    let (_, body) = http_text(&addr, "/metrics");
    for zeroed in [
        "dcpilot_foreground_requests_total{endpoint=\"placements\",status=\"200\"} 0",
        "dcpilot_foreground_budget_exhausted_total{endpoint=\"placements\"} 0",
        "dcpilot_foreground_degraded_total{endpoint=\"rebalance\"} 0",
        "dcpilot_foreground_landscape_events_total 0",
    ] {
        assert!(body.contains(zeroed), "{zeroed} missing:\n{body}");
    }
    every_metric_described(&body);
    promtool_accepts(&body);
}
