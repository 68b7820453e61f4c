//! Golden tests of the built-in jobs: the bundled real-trace sample → the metrics in
//! `tests/golden/<job>.json`, within a tolerance. `DCPILOT_UPDATE_GOLDEN=1` rewrites them
//! (review the diff: a change in model error is a change in behaviour).

use std::path::Path;
use std::process::Command;

const TOLERANCE: f64 = 1e-6;

fn run_once(job: &str, data: &Path) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["jobs", "run-once", job, "--json", "--data"])
        .arg(data)
        .output()
        .expect("run dcpilot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

#[test]
fn cpu_demand_on_the_bundled_bitbrains_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = run_once("cpu-demand", &root.join("tests/data/bitbrains_rnd/2013-8"));
    let keys = [
        "model_error",
        "baseline_error",
        "train_rows",
        "holdout_rows",
        "baseline",
    ];
    let actual: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), report[*k].clone()))
        .collect();
    let golden = root.join("tests/golden/cpu-demand.json");
    if std::env::var_os("DCPILOT_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&actual).expect("json");
        std::fs::write(&golden, text + "\n").expect("write golden");
        return;
    }
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).expect("golden file")).expect("json");
    for key in keys {
        match (expected[key].as_f64(), actual[key].as_f64()) {
            (Some(want), Some(got)) => assert!(
                (want - got).abs() <= TOLERANCE * want.abs().max(1.0),
                "{key}: {got} != golden {want}"
            ),
            _ => assert_eq!(expected[key], actual[key], "{key}"),
        }
    }
}
