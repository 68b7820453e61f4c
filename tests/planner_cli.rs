//! `dcpilot planner replay` as a user runs it: on the bundled NTUA runs, the autopilot
//! (its model trained on the runs the plant does not use) next to the HPA-style and fixed
//! baselines and the oracle bound on the same day; bad arguments are refused by name.

mod common;

use common::dcpilot;

#[test]
fn the_replay_reports_every_controller_on_the_same_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dcpilot(
        dir.path(),
        &[
            "planner",
            "replay",
            "--traces",
            "1",
            "--minutes",
            "720",
            "--seed",
            "7",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let totals = report["totals"].as_array().expect("totals");
    let of = |name: &str| {
        totals
            .iter()
            .find(|t| t["controller"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"))
            .clone()
    };
    let (pilot, hpa, fixed, oracle) = (of("autopilot"), of("hpa"), of("fixed"), of("oracle"));
    let minutes = |t: &serde_json::Value, key: &str| t[key].as_u64().expect(key);
    // The model was trained and published from the runs outside the plant.
    assert!(
        report["model"]
            .as_str()
            .is_some_and(|m| m.starts_with("interference-slowdown v1")),
        "{report}"
    );
    // Every controller ran the whole day; nothing beats the oracle, and the autopilot
    // holds no more replicas than the HPA and breaks the objective no more often.
    for t in [&pilot, &hpa, &fixed, &oracle] {
        assert!(minutes(t, "replica_minutes") >= 720, "{t}");
        assert_eq!(minutes(t, "unknown_minutes"), 0, "{t}");
        assert!(minutes(&oracle, "violation_minutes") <= minutes(t, "violation_minutes"));
    }
    assert!(
        minutes(&pilot, "violation_minutes") <= minutes(&hpa, "violation_minutes"),
        "{report}"
    );
    assert!(minutes(&pilot, "replica_minutes") <= minutes(&hpa, "replica_minutes"));
    assert_eq!(minutes(&fixed, "replica_minutes"), 2 * 720);
    // Overruns of the tick budget depend on how busy the machine is (the tick's speed is
    // a benchmark's to measure); the report must count them.
    assert!(report["autopilot_overruns"].as_u64().is_some(), "{report}");
    assert!(
        report["autopilot_longest_tick_ms"].as_f64().is_some(),
        "{report}"
    );
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, expected) in [
        (&["planner", "replay", "--slo-ms", "0"][..], "--slo-ms"),
        (
            &["planner", "replay", "--plant-runs", "NoSuchRun"][..],
            "NoSuchRun",
        ),
        (
            &["planner", "replay", "--data", "/nonexistent/ntua"][..],
            "/nonexistent/ntua",
        ),
    ] {
        let out = dcpilot(dir.path(), args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
