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

/// Runs `job` on a bundled sample and compares its metrics with `tests/golden/<job>.json`.
fn check_golden(job: &str, sample: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = run_once(job, &root.join("tests/data").join(sample));
    let keys = [
        "model_error",
        "baseline_error",
        "baselines",
        "train_rows",
        "holdout_rows",
        "baseline",
    ];
    let actual: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), report[*k].clone()))
        .collect();
    let golden = root.join(format!("tests/golden/{job}.json"));
    if std::env::var_os("DCPILOT_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&actual).expect("json");
        std::fs::write(&golden, text + "\n").expect("write golden");
        return;
    }
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).expect("golden file")).expect("json");
    for key in keys {
        assert_close(key, &expected[key], &actual[key]);
    }
}

/// Numbers within the relative tolerance, anything else equal; objects key by key.
fn assert_close(key: &str, want: &serde_json::Value, got: &serde_json::Value) {
    match (want, got) {
        (serde_json::Value::Object(w), serde_json::Value::Object(g)) => {
            assert_eq!(
                w.keys().collect::<Vec<_>>(),
                g.keys().collect::<Vec<_>>(),
                "{key}"
            );
            for (k, v) in w {
                assert_close(&format!("{key}.{k}"), v, &g[k]);
            }
        }
        _ => match (want.as_f64(), got.as_f64()) {
            (Some(w), Some(g)) => assert!(
                (w - g).abs() <= TOLERANCE * w.abs().max(1.0),
                "{key}: {g} != golden {w}"
            ),
            _ => assert_eq!(want, got, "{key}"),
        },
    }
}

#[test]
fn cpu_demand_on_the_bundled_bitbrains_sample() {
    check_golden("cpu-demand", "bitbrains_rnd/2013-8");
}

#[test]
fn interference_slowdown_on_the_bundled_ntua_sample() {
    check_golden("interference-slowdown", "ntua_interference");
}

#[test]
fn interference_slowdown_pods_on_the_bundled_ntua_sample() {
    check_golden("interference-slowdown-pods", "ntua_interference");
}

#[test]
fn rightsizing_on_the_bundled_bitbrains_sample() {
    check_golden("rightsizing", "bitbrains_rnd/2013-8");
}
