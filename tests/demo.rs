//! `dcpilot demo` end to end, as the README's first command runs it: both loops on the
//! bundled sample, the JSON report's contract, and the HTML report.

use std::process::Command;

#[test]
fn demo_runs_both_loops_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--json", "--html"])
        .arg(&html)
        .output()
        .expect("run the demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    // Background: every replayed sample stored; each model with its version and errors.
    assert_eq!(report["ingested_samples"], report["replayed_samples"]);
    assert!(report["ingested_samples"]
        .as_u64()
        .is_some_and(|n| n > 100_000));
    let models = report["models"].as_array().expect("models");
    assert_eq!(models.len(), 4);
    for m in models {
        assert!(m["name"].is_string(), "{m}");
        assert!(m["model_error"].as_f64().is_some(), "{m}");
        assert!(m["baseline_error"].as_f64().is_some(), "{m}");
        assert!(m.get("version").is_some(), "{m}");
    }
    let served = |name: &str| {
        models
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["version"].as_u64())
    };
    for name in ["interference-slowdown", "interference-slowdown-pods"] {
        assert_eq!(
            served(name),
            Some(1),
            "{name} beats its baseline on the sample"
        );
    }

    // Foreground: placements answered in budget, interference-aware.
    let p = &report["placements"];
    assert_eq!(p["count"], 200);
    let (p50, p99) = (
        p["p50_ms"].as_f64().expect("p50"),
        p["p99_ms"].as_f64().expect("p99"),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{p}");
    assert_eq!(p["budget_overruns"], 0, "{p}");
    let nginx = &report["decisions"][0];
    assert_eq!(nginx["workload"], "default/nginx");
    let chosen = nginx["chosen"].as_str().expect("a host");
    // Judged by what the hosts measure: next to the L3 hog (node-01) nginx's p99 is
    // predicted far over its objective; next to four memory-bandwidth pods (node-02) the
    // NTUA runs measured ~1.8x at this load, within the objective's 2x of the quiet p99.
    assert_ne!(chosen, "node-01", "nginx went next to the L3 hog: {nginx}");
    assert!(
        nginx["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("measured counters")),
        "judged by the counter model: {nginx}"
    );
    assert!(report["rebalance"]["actions"].as_u64().is_some());
    // The extender ranks the L3-hog node last for nginx.
    assert_eq!(
        report["extender"]["prioritize_bottom"][0]["host"], "node-01",
        "{}",
        report["extender"]
    );
    assert_eq!(report["extender"]["filter_passed"], 12);
    // The landscape graph: the placement view plus racks, and what nginx's rack takes down.
    let landscape = &report["landscape"];
    assert_eq!(landscape["summary"]["nodes"]["physical"]["host"], 12);
    assert_eq!(landscape["summary"]["nodes"]["physical"]["rack"], 3);
    let affected: Vec<&str> = landscape["affected"]
        .as_array()
        .expect("affected")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for id in ["node-12", "nginx-0", "default/nginx", "frontend"] {
        assert!(affected.contains(&id), "{id} not in {affected:?}");
    }
    assert!(!affected.contains(&"node-01"), "{affected:?}");
    // The landscape view, written as one self-contained page (drawn in a browser by
    // tests/landscape_view.rs).
    let view = std::fs::read_to_string(landscape["page"].as_str().expect("page path"))
        .expect("landscape page written");
    assert!(
        view.contains("window.DCPILOT_EMBEDDED"),
        "no data in the page"
    );
    assert!(view.contains("\"node-12\"") && view.contains("\"rack-2\""));

    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(
        page.matches("<svg").count() >= 2,
        "a prediction plot and the latency histogram"
    );
    assert!(page.contains("interference-slowdown: predicted vs actual"));
}
