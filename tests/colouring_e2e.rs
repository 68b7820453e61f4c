//! The colouring's online path, end to end over a real Kafka-protocol broker: a Nezha
//! trace directory (the bundled Online Boutique sample) replayed onto the landscape and
//! telemetry topics, the built-in `landscape-colouring` job colouring it in `dcpilot
//! background`, the colouring replicated over `dcpilot.models` to `dcpilot foreground`,
//! which serves it at `GET /v1/landscape/anomalies` — the same ranking `dcpilot anomalies
//! rank` computes offline for that moment.

mod common;

use std::path::Path;

use common::{
    dcpilot, eventually, http, http_text, replay, start_background, start_following_foreground,
    start_nisshi_with_topics,
};

const JOB: &str = "landscape-colouring";

#[test]
fn a_replayed_trace_is_coloured_in_the_background_and_served_by_the_foreground() {
    let (_broker, brokers) = start_nisshi_with_topics();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("tests/data/nezha/online-boutique/sample");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("mkdir");

    let samples = replay(&data_dir, &sample, "nezha", &brokers);
    // The colouring judges the newest moment: its observed window ends with the newest
    // second of the trace.
    let trace = dcpilot_lab::datasets::nezha::load(&sample).expect("the sample");
    let newest = trace
        .telemetry
        .entities
        .values()
        .flat_map(|m| m.values())
        .filter_map(|p| p.iter().rev().find(|(_, v)| v.is_finite()))
        .map(|(t, _)| *t)
        .max()
        .expect("samples");
    let observe = dcpilot_info_core::colouring::Window::default().observe_secs;

    // Colour once every sample is in, and every 2 s after (the landscape topic is read
    // alongside; a colouring made before the graph arrived is replaced by the next).
    let background = start_background(
        &data_dir,
        &format!(
            "[kafka]\nbrokers = \"{brokers}\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [jobs]\nonly = [\"{JOB}\"]\npoll_ms = 100\n\
             [jobs.triggers]\n{JOB} = {{ after_rows = {samples}, every_secs = 2 }}\n"
        ),
    );

    let (_foreground, addr) = start_following_foreground(&dir.path().join("foreground"), &brokers);

    // What the offline path says for a moment, best first: (entity, score).
    let offline = |at: i64| -> Vec<(String, f64)> {
        let out = dcpilot(
            &data_dir,
            &[
                "anomalies",
                "rank",
                "--data",
                sample.to_str().expect("utf-8"),
                "--at",
                &at.to_string(),
                "--json",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rank --json");
        ranking(&v["ranking"])
    };
    let served = eventually(180, "the foreground serving the offline ranking", || {
        let (status, body) = http(&addr, "GET", "/v1/landscape/anomalies?top=10000", "");
        if status != 200 {
            return None;
        }
        let online = ranking(&body["ranking"]);
        let at = body["at"].as_i64()?;
        let same = {
            let expected = offline(at);
            expected.len() == online.len()
                && expected
                    .iter()
                    .zip(&online)
                    .all(|(a, b)| a.0 == b.0 && (a.1 - b.1).abs() <= 1e-9 * a.1.abs().max(1.0))
        };
        same.then_some(body)
    });
    assert_eq!(served["model"], JOB);
    assert_eq!(
        served["at"].as_i64(),
        Some(newest - observe + 1),
        "{served}"
    );
    assert!(served["version"].as_u64().expect("version") >= 1);
    assert!(!served["entities"].as_array().expect("entities").is_empty());
    assert!(
        served["ranking"][0]["evidence"]["metrics"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "the top cause carries its evidence: {}",
        served["ranking"][0]
    );
    // Hosts (the nodes pods run on) are coloured for placement.
    assert!(
        !served["hosts"].as_array().expect("hosts").is_empty(),
        "{served}"
    );

    // Bad input to the endpoint is a 400 naming the parameter.
    let (status, body) = http(&addr, "GET", "/v1/landscape/anomalies?top=zero", "");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("`top`"),
        "{body}"
    );

    // The run's gauges are set once the run has returned, which can be a moment after the
    // foreground already serves what it published.
    let names = [
        "dcpilot_colouring_entities",
        "dcpilot_colouring_anomalous_entities",
        "dcpilot_colouring_top_cause_score",
    ];
    let present = |metrics: &str| {
        names
            .iter()
            .all(|name| metrics.contains(&format!("{name}{{job=\"{JOB}\"}}")))
    };
    eventually(
        30,
        "the colouring gauges on the background's /metrics",
        || {
            let (_, metrics) = http_text(&background.metrics, "/metrics");
            present(&metrics).then_some(())
        },
    );
}

/// (entity, score) of each candidate; a candidate without either is a failure, not skipped.
fn ranking(v: &serde_json::Value) -> Vec<(String, f64)> {
    v.as_array()
        .expect("a ranking")
        .iter()
        .map(|c| {
            let entity = c["entity"]
                .as_str()
                .unwrap_or_else(|| panic!("no entity: {c}"));
            let score = c["score"]
                .as_f64()
                .unwrap_or_else(|| panic!("no score: {c}"));
            (entity.to_string(), score)
        })
        .collect()
}
