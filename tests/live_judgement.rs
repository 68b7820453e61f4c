//! Live judgement end to end: a model that wins on its holdout is demoted when drifted
//! data makes it worse than its best baseline live, the foreground then answers with that
//! baseline and says so, and the model is re-promoted once it wins again.
//!
//! The trace is synthetic on purpose (Bitbrains' file format, a daily sine per VM): the
//! test is about the mechanism, so the model must first clearly win, then clearly lose.
//! How the real cpu-demand model does live on the bundled sample is in the README.

mod common;

use std::path::Path;

use common::{dcpilot, eventually, http, wait_for_file, KillOnDrop};
use serde_json::Value;

const HEADER: &str = "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]";

/// Four VMs, 5-minute samples for `days` days: CPU 25 ± 20 % on a daily sine (phase per
/// VM, ±1 noise), or 80 ± 10 % — a level never seen in training — on `drifted` days.
fn write_trace(dir: &Path, days: usize, drifted: &[usize]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for vm in 0..4u64 {
        let mut seed = vm + 1;
        let mut text = String::from(HEADER);
        for i in 0..days * 288 {
            seed = (seed * 1_103_515_245 + 12_345) % (1 << 31);
            let noise = (seed as f64 / (1u64 << 31) as f64 - 0.5) * 2.0;
            let wave = (std::f64::consts::TAU * (i as f64 / 288.0 + vm as f64 / 4.0)).sin();
            let pct = if drifted.contains(&(i / 288)) {
                80.0 + 10.0 * wave + noise
            } else {
                25.0 + 20.0 * wave + noise
            };
            let t = 1_375_308_000 + i as u64 * 300;
            text.push_str(&format!(
                "\n{t};\t2;\t5000.0;\t{};\t{pct};\t8388608.0;\t1000000.0;\t0.0;\t0.0;\t0.0;\t0.0",
                pct * 50.0
            ));
        }
        std::fs::write(dir.join(format!("{}.csv", vm + 1)), text + "\n").expect("write");
    }
}

fn run(data_dir: &Path, args: &[&str]) -> String {
    let out = dcpilot(data_dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A standalone foreground serving the models in `data_dir`, and its address.
fn serve(data_dir: &Path) -> (KillOnDrop, String) {
    let child = KillOnDrop(
        common::dcpilot_command(data_dir, &["foreground", "--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the foreground"),
    );
    (child, wait_for_file(&data_dir.join("foreground.addr")))
}

/// `dcpilot jobs [--json] SUBCOMMAND cpu-demand --data TRACE`, its output.
fn cpu_demand(data_dir: &Path, subcommand: &str, trace: &Path) -> String {
    let trace = trace.to_str().expect("utf-8");
    let json = (subcommand == "judge").then_some("--json");
    let args: Vec<&str> = ["jobs"]
        .into_iter()
        .chain(json)
        .chain([subcommand, "cpu-demand", "--data", trace])
        .collect();
    run(data_dir, &args)
}

fn judge(data_dir: &Path, trace: &Path) -> Value {
    serde_json::from_str(&cpu_demand(data_dir, "judge", trace)).expect("json report")
}

/// cpu-demand's features, in a row whose last value (`cpu_now`) is 31.5.
const ROW: &str = r#"{"rows":[{"cpu_now":31.5,"cpu_mean_1h":30.0,"cpu_max_1h":33.0,"cpu_delta":1.0,"hour_of_day":10.0}]}"#;

fn predict(addr: &str) -> Value {
    let (status, answer) = http(addr, "POST", "/v1/models/cpu-demand/predict", ROW);
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn drift_demotes_the_model_and_the_foreground_answers_with_the_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, traces) = (dir.path().join("data"), dir.path().join("traces"));
    let (train, drifted, recovered) = (
        traces.join("train"),
        traces.join("drifted"),
        traces.join("recovered"),
    );
    write_trace(&train, 4, &[]);
    write_trace(&drifted, 5, &[4]);
    write_trace(&recovered, 6, &[4]);

    let trained = cpu_demand(&data, "run-once", &train);
    assert!(trained.contains("published        version 1"), "{trained}");

    let (foreground, addr) = serve(&data);
    let served = predict(&addr);
    assert_eq!(served["answered_by"], "model", "{served}");
    assert_eq!(served["degraded"], false, "{served}");

    // Nothing after the training window yet: no verdict, nothing published.
    let early = judge(&data, &train);
    assert!(early["verdict"].is_null(), "{early}");
    assert!(
        early["pending"]
            .as_str()
            .unwrap_or_default()
            .contains("min_rows"),
        "{early}"
    );

    // A day at a level training never saw: the model loses to the last value live.
    let demoted = judge(&data, &drifted);
    let verdict = &demoted["verdict"];
    assert_eq!(demoted["change"], "demoted", "{demoted}");
    assert_eq!(verdict["demoted"], true);
    assert_eq!(verdict["baselines"][0]["name"], "last_value", "{verdict}");
    let (model_error, baseline_error) = (
        verdict["model_error"].as_f64().expect("model error"),
        verdict["baselines"][0]["error"]
            .as_f64()
            .expect("baseline error"),
    );
    assert!(model_error > baseline_error, "{verdict}");
    assert!(verdict["rows"].as_u64().expect("rows") >= 1000, "{verdict}");
    let answer = eventually(10, "the demotion served", || {
        let answer = predict(&addr);
        (answer["answered_by"] == "baseline:last_value").then_some(answer)
    });
    assert_eq!(answer["predictions"][0], 31.5, "the last value: {answer}");
    assert_eq!(answer["degraded"], true);
    let reasons = answer["degraded_reasons"].to_string();
    assert!(
        reasons.contains("cpu-demand v1 is demoted") && reasons.contains("last_value"),
        "{reasons}"
    );
    assert!(reasons.contains(&format!("{model_error:.4}")), "{reasons}");
    let status = run(&data, &["models", "status"]);
    assert!(status.contains("demoted / baseline:last_value"), "{status}");
    let (_, models) = http(&addr, "GET", "/v1/models", "");
    let listed = models["models"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "cpu-demand"))
        .cloned()
        .expect("cpu-demand listed");
    assert_eq!(listed["live"]["demoted"], true, "{listed}");

    // The same verdict again is no news: nothing is published.
    let again = judge(&data, &drifted);
    assert!(
        again["change"].is_null() && again["published_version"].is_null(),
        "{again}"
    );

    // The level returns: the model wins again over the newest day and is re-promoted.
    let repromoted = judge(&data, &recovered);
    assert_eq!(repromoted["change"], "repromoted", "{repromoted}");
    assert_eq!(repromoted["verdict"]["demoted"], false);
    let answer = eventually(10, "the re-promotion served", || {
        let answer = predict(&addr);
        (answer["answered_by"] == "model").then_some(answer)
    });
    assert_eq!(answer["degraded"], false, "{answer}");
    drop(foreground);
}

#[test]
fn predict_refuses_bad_rows_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, train) = (dir.path().join("data"), dir.path().join("train"));
    write_trace(&train, 3, &[]);
    cpu_demand(&data, "run-once", &train);
    let (_foreground, addr) = serve(&data);
    let path = "/v1/models/cpu-demand/predict";
    for (body, status, says) in [
        (r#"{"rows":[{"cpu_now":1}]}"#, 400, "rows[0].cpu_mean_1h"),
        (
            r#"{"rows":[{"cpu_now":1,"cpu_mean_1h":1,"cpu_max_1h":1,"cpu_delta":"x","hour_of_day":1}]}"#,
            400,
            "rows[0].cpu_delta",
        ),
        (
            r#"{"rows":[{"cpu_now":1,"cpu_mean_1h":1,"cpu_max_1h":1,"cpu_delta":0,"hour_of_day":1,"cpu":2}]}"#,
            400,
            "rows[0].cpu: not a feature",
        ),
        (r#"{"row":[]}"#, 400, "rows"),
        ("not json", 400, ""),
    ] {
        let (got, answer) = http(&addr, "POST", path, body);
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{body}: {answer}"
        );
    }
    let (missing, answer) = http(&addr, "POST", "/v1/models/nope/predict", ROW);
    assert_eq!(missing, 404, "{answer}");
    let (ok, answer) = http(&addr, "POST", path, r#"{"rows":[]}"#);
    assert_eq!(
        (ok, answer["predictions"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{answer}"
    );
}
