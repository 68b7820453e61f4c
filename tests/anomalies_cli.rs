//! `dcpilot anomalies rank/evaluate` as a data scientist runs them, on the bundled real
//! sample; a wrong directory or detector is one clear error with exit status 2.

mod common;

use std::path::Path;

use common::dcpilot;

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/nezha/online-boutique/sample")
        .to_string_lossy()
        .into_owned()
}

/// `dcpilot anomalies rank` on the sample at cartservice's CPU contention (04:36:03 UTC).
fn rank_at_cart_cpu_fault(data_dir: &Path, extra: &[&str]) -> std::process::Output {
    let sample = sample();
    let mut args = vec!["anomalies", "rank", "--data", &sample, "--at", "1661142963"];
    args.extend_from_slice(extra);
    dcpilot(data_dir, &args)
}

#[test]
fn rank_names_the_cause_first_with_its_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = rank_at_cart_cpu_fault(dir.path(), &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ranking = answer["ranking"].as_array().expect("ranking");
    let first = &ranking[0];
    assert_eq!(first["entity"], "cartservice", "{first:#}");
    assert_eq!(first["kind"], "service");
    assert_eq!(first["layer"], "service");
    assert!(first["score"].as_f64().expect("score") > 1.0, "{first:#}");
    let metrics = first["evidence"]["metrics"].as_array().expect("metrics");
    assert!(
        !metrics.is_empty() && metrics[0]["metric"].is_string(),
        "{first:#}"
    );
    assert!(metrics[0]["deviation"].is_f64() && metrics[0]["normal"].is_f64());
    let scores: Vec<f64> = ranking.iter().filter_map(|c| c["score"].as_f64()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    // Nodes are candidates too, named by IP as the data names them.
    assert!(ranking.iter().any(|c| c["kind"] == "host"), "{answer:#}");

    let text = rank_at_cart_cpu_fault(dir.path(), &["--top", "3"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("cartservice")),
        "{text}"
    );
}

#[test]
fn evaluate_reports_accuracy_next_to_the_naive_rankers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dcpilot(
        dir.path(),
        &["anomalies", "evaluate", "--data", &sample(), "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(e["faults"], 4);
    for ranker in ["random", "n-sigma", "robust-z"] {
        assert!(e["baselines"][ranker]["avg5"].is_f64(), "{ranker}: {e:#}");
    }
    assert!(e["method"]["ac1"].as_f64() >= e["baselines"]["random"]["ac1"].as_f64());
    let per_fault = e["per_fault"].as_array().expect("per fault");
    assert_eq!(per_fault.len(), 4);
    assert!(per_fault
        .iter()
        .all(|f| f["top"].as_array().is_some_and(|t| t.len() == 5)));
}

#[test]
fn a_wrong_directory_or_detector_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, expected) in [
        (
            vec!["anomalies", "evaluate", "--data", "/nonexistent/trace"],
            "/nonexistent/trace",
        ),
        (vec!["anomalies", "evaluate"], "--data"),
        (
            vec![
                "anomalies",
                "evaluate",
                "--data",
                &sample(),
                "--detector",
                "magic",
            ],
            "calibrated-robust-z",
        ),
    ] {
        let out = dcpilot(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    // A directory without metric files names what it looked for.
    let out = dcpilot(
        dir.path(),
        &[
            "anomalies",
            "evaluate",
            "--data",
            dir.path().to_str().expect("utf-8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("metric"), "{stderr}");
}

#[test]
fn a_colouring_jobs_parameters_are_the_method() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ranking = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let out = rank_at_cart_cpu_fault(dir.path(), &args);
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        answer["ranking"].clone()
    };
    // By default, the built-in job's method: naming it changes nothing.
    let default = ranking(&[]);
    assert_eq!(ranking(&["--job", "landscape-colouring"]), default);
    // A user's spec with other windows is another method.
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/jobs/landscape-colouring.toml"),
    )
    .expect("spec");
    let mine = builtin.replace("observe_secs = 180", "observe_secs = 60");
    assert_ne!(mine, builtin);
    let file = dir.path().join("mine.toml");
    std::fs::write(&file, mine).expect("write spec");
    let other = ranking(&["--job", file.to_str().expect("utf-8")]);
    assert_ne!(other, default, "a 1-minute observation judges differently");

    for (job, expected) in [
        ("rightsizing", "not a colouring job"),
        ("nosuch", "colouring jobs: landscape-colouring"),
    ] {
        let out = rank_at_cart_cpu_fault(dir.path(), &["--job", job]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{job}: {stderr}");
        assert!(stderr.contains(expected), "{job}: {stderr}");
    }
}
