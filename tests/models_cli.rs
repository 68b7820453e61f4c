//! `dcpilot models …` over a data directory a job published into.

mod common;

use std::path::Path;
use std::process::Output;

use common::dcpilot;
use dcpilot_info_core::{HoldoutMetrics, InfoCore, Lineage, ModelDraft, TrainingWindow};

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn publish(data_dir: &Path, p90_cores: f64) {
    common::publish_rightsizing(data_dir, p90_cores);
}

#[test]
fn list_show_history_rollback_export_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    publish(dir.path(), 2.0);
    publish(dir.path(), 3.0);

    let list = json(&dcpilot(dir.path(), &["models", "list", "--json"]));
    assert_eq!(list[0]["name"], "rightsizing");
    assert_eq!(list[0]["version"], 2);
    assert_eq!(list[0]["model_error"], 0.25);
    let text = dcpilot(dir.path(), &["models", "list"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("rightsizing"));

    let show = json(&dcpilot(
        dir.path(),
        &["models", "show", "rightsizing", "--version", "1", "--json"],
    ));
    assert_eq!(show["version"], 1);
    assert_eq!(show["kind"], "quantile_table");

    let rollback = json(&dcpilot(
        dir.path(),
        &[
            "models",
            "rollback",
            "rightsizing",
            "1",
            "--reason",
            "p90 too high",
            "--json",
        ],
    ));
    assert_eq!(rollback["version"], 1);
    let history = json(&dcpilot(
        dir.path(),
        &["models", "history", "rightsizing", "--json"],
    ));
    let steps: Vec<_> = history
        .as_array()
        .expect("array")
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap_or_default().to_string(),
                h["version"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("published".to_string(), Some(1)),
            ("published".to_string(), Some(2)),
            ("rolled_back".to_string(), Some(1))
        ]
    );
    assert_eq!(
        json(&dcpilot(
            dir.path(),
            &["models", "show", "rightsizing", "--json"]
        ))["version"],
        1
    );

    let file = dir.path().join("rightsizing.model");
    let export = dcpilot(
        dir.path(),
        &[
            "models",
            "export",
            "rightsizing",
            file.to_str().expect("utf-8"),
            "--version",
            "2",
        ],
    );
    assert!(export.status.success());
    let other = tempfile::tempdir().expect("tempdir");
    let imported = json(&dcpilot(
        other.path(),
        &["models", "import", file.to_str().expect("utf-8"), "--json"],
    ));
    assert_eq!(imported["version"], 1);
    assert_eq!(imported["name"], "rightsizing");
}

#[test]
fn errors_are_clear_and_nonzero() {
    let dir = tempfile::tempdir().expect("tempdir");
    publish(dir.path(), 2.0);
    for (args, needle) in [
        (vec!["models", "show", "nope"], "nope"),
        (
            vec!["models", "show", "rightsizing", "--version", "9"],
            "version 9",
        ),
        (
            vec!["models", "rollback", "rightsizing", "1"],
            "already current",
        ),
        (
            vec!["models", "import", "/nonexistent.model"],
            "/nonexistent.model",
        ),
    ] {
        let out = dcpilot(dir.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let garbage = dir.path().join("garbage.model");
    std::fs::write(&garbage, b"not a model").expect("write");
    let out = dcpilot(
        dir.path(),
        &["models", "import", garbage.to_str().expect("utf-8")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
}

#[test]
fn a_corrupt_version_is_reported_and_the_previous_one_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    publish(dir.path(), 2.0);
    publish(dir.path(), 3.0);
    let v2 = dir.path().join("models/rightsizing/v0000000002.model");
    let mut bytes = std::fs::read(&v2).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&v2, bytes).expect("write");
    let out = dcpilot(dir.path(), &["models", "show", "rightsizing", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    assert_eq!(json(&out)["version"], 1);
}

#[test]
fn jobs_validate_reports_every_problem_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("bad-job.toml");
    std::fs::write(
        &spec,
        "name = \"x\"\n[source]\nsql = \"SELECT 1\"\n[model]\nkind = \"svm\"\nfeatures = []\ntarget = \"y\"\n[training]\nmetric = \"auc\"\n",
    )
    .expect("write");
    let out = dcpilot(
        dir.path(),
        &["jobs", "validate", spec.to_str().expect("utf-8")],
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "model.kind",
        "model.features",
        "trigger",
        "training.metric",
        "promotion.baseline_columns",
    ] {
        assert!(
            text.contains(&format!("bad-job.toml: {key}")),
            "{key} missing:\n{text}"
        );
    }
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/jobs/cpu-demand.toml");
    let out = dcpilot(
        dir.path(),
        &["jobs", "validate", good.to_str().expect("utf-8")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn jobs_run_once_publishes_only_a_model_that_beats_its_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bitbrains_rnd/2013-8");
    let report = json(&dcpilot(
        dir.path(),
        &[
            "jobs",
            "run-once",
            "cpu-demand",
            "--data",
            data.to_str().expect("utf-8"),
            "--json",
        ],
    ));
    let model_error = report["model_error"].as_f64().expect("model_error");
    let baseline_error = report["baseline_error"].as_f64().expect("baseline_error");
    assert!(model_error.is_finite() && baseline_error.is_finite());
    assert!(report["holdout_rows"].as_u64().expect("rows") > 1000);
    let published = report["published_version"].as_u64();
    assert_eq!(
        published.is_some(),
        model_error < baseline_error,
        "{report}"
    );
    let list = json(&dcpilot(dir.path(), &["models", "list", "--json"]));
    assert_eq!(
        list.as_array().expect("array").len(),
        usize::from(published.is_some())
    );

    let out = dcpilot(dir.path(), &["jobs", "run-once", "no-such-job"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cpu-demand"),
        "lists the registered jobs"
    );
}

#[test]
fn jobs_evaluate_judges_the_served_version_without_training() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bitbrains_rnd/2013-8");
    let data = data.to_str().expect("utf-8");
    let out = dcpilot(
        dir.path(),
        &["jobs", "evaluate", "cpu-demand", "--data", data],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run-once"));

    // Serve a model that predicts "the last value" exactly: y = cpu_now.
    let spec = dcpilot_pipelines::Registry::builtin()
        .expect("registry")
        .get("cpu-demand")
        .expect("job")
        .spec()
        .clone();
    let x: Vec<Vec<f64>> = (0..50)
        .map(|i: u64| {
            (0..spec.features.len() as u64)
                // Pseudo-random, so the columns are independent and y = x0 is the one fit.
                .map(|f| ((i * 2_654_435_761 + f * 40_503 + i * f * 97) % 1_009) as f64)
                .collect()
        })
        .collect();
    let y: Vec<f64> = x.iter().map(|r| r[0]).collect();
    let model = dcpilot_pipelines::fit(&dcpilot_pipelines::ModelSpec::LinearRegression, &x, &y)
        .expect("fit");
    let store = InfoCore::open_dir(&dir.path().join("models")).expect("open");
    store
        .publish(ModelDraft {
            name: spec.name.clone(),
            features: spec.features.clone(),
            target: spec.target.clone(),
            window: TrainingWindow {
                start_ms: 0,
                end_ms: 1,
            },
            rows: 50,
            metrics: HoldoutMetrics {
                metric: "rmse".into(),
                model_error: 0.0,
                baseline_error: 1.0,
                baseline: "last_value".into(),
            },
            lineage: Lineage::of_job("test", "0"),
            model,
        })
        .expect("publish");
    drop(store);

    let report = json(&dcpilot(
        dir.path(),
        &["jobs", "evaluate", "cpu-demand", "--data", data, "--json"],
    ));
    assert_eq!(report["version"], 1);
    assert!(report["rows"].as_u64().expect("rows") > 10_000);
    let (model, baseline) = (
        report["model_error"].as_f64().expect("model_error"),
        report["baseline_error"].as_f64().expect("baseline_error"),
    );
    // The served model is the last-value predictor, so it scores as the last-value baseline.
    assert_eq!(report["baseline"], "last_value");
    assert!(
        (model - baseline).abs() < 1e-6 * baseline.max(1.0),
        "{model} vs {baseline}"
    );
    // Evaluating trains nothing.
    let list = json(&dcpilot(dir.path(), &["models", "list", "--json"]));
    assert_eq!(list[0]["version"], 1);
}

#[test]
fn jobs_from_a_spec_dir_or_a_spec_file_and_their_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = root.join("pipelines/examples");
    let examples = examples.to_str().expect("utf-8");
    let out = dcpilot(dir.path(), &["jobs", "--spec-dir", examples, "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    for job in [
        "cpu-demand",
        "interference-slowdown",
        "rightsizing",
        "memory-demand",
    ] {
        assert!(listed.contains(job), "{job} missing:\n{listed}");
    }

    // A spec file runs without being registered; the report has every baseline.
    let spec = root.join("pipelines/examples/memory-demand.toml");
    let data = root.join("tests/data/bitbrains_rnd/2013-8");
    let report = json(&dcpilot(
        dir.path(),
        &[
            "jobs",
            "run-once",
            spec.to_str().expect("utf-8"),
            "--data",
            data.to_str().expect("utf-8"),
            "--json",
        ],
    ));
    assert_eq!(report["job"], "memory-demand");
    let baselines = report["baselines"].as_object().expect("baselines");
    assert_eq!(
        baselines.keys().collect::<Vec<_>>(),
        vec!["last_value", "max_1h"]
    );
    let best = baselines
        .values()
        .filter_map(serde_json::Value::as_f64)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(report["baseline_error"].as_f64(), Some(best));

    // A broken spec in the directory: the file and key, nothing run.
    let specs = tempfile::tempdir().expect("specs");
    std::fs::write(
        specs.path().join("typo.toml"),
        "name = \"typo\"\n[source]\nsql = \"SELECT 1\"\n[modle]\n",
    )
    .expect("write");
    let out = dcpilot(
        dir.path(),
        &[
            "jobs",
            "--spec-dir",
            specs.path().to_str().expect("utf-8"),
            "list",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("typo.toml: modle: unknown key"), "{stderr}");

    // A missing spec file and a broken one given as NAME.
    let out = dcpilot(dir.path(), &["jobs", "run-once", "/nonexistent/job.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/job.toml"));
}

#[test]
fn the_jobs_config_section_is_checked_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bg.toml");
    std::fs::write(&config, "[jobs]\ntimeout_secs = 0\nonly = [\"nope\"]\n").expect("write");
    let out = dcpilot(
        dir.path(),
        &["background", "--config", config.to_str().expect("utf-8")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bg.toml"), "{stderr}");
    assert!(
        stderr.contains("jobs.timeout_secs: must be positive"),
        "{stderr}"
    );

    std::fs::write(&config, "[jobs]\ntimeout = 5\n").expect("write");
    let out = dcpilot(
        dir.path(),
        &["background", "--config", config.to_str().expect("utf-8")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("jobs"), "{stderr}");
    assert!(stderr.contains("timeout"), "{stderr}");
}
