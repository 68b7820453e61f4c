//! End to end through the binary: `dcpilot background` ingests a replayed real trace, its
//! job runner fires a user's job (from `[jobs] spec_dir`) on its `after_rows` trigger, the
//! model (trained once, on the whole trace) lands in the Information Core with its lineage
//! and on the `dcpilot.models` topic.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{dcpilot, eventually, http_text, replay, start_background, start_nisshi_with_topics};
use dcpilot_info_core::replication::MODELS_TOPIC;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

const JOB: &str = "e2e-rightsizing";

/// Keys of every message on the models topic.
fn model_topic_keys(brokers: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "e2e-models-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[MODELS_TOPIC]).expect("subscribe");
    let mut keys = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => keys.push(String::from_utf8_lossy(m.key().unwrap_or_default()).into()),
            Some(Err(e)) => panic!("consume: {e}"),
            None if !keys.is_empty() => break,
            None => {}
        }
    }
    keys
}

#[test]
fn background_trains_a_users_job_on_its_trigger_and_publishes_it() {
    // A standalone broker: it keeps everything replayed until the background reads it
    // (the embedded mock broker holds ≈ 4.5 MB per partition and drops older messages).
    let (_broker, brokers) = start_nisshi_with_topics();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("mkdir");

    // The trace goes on the topic first, so the test knows how many samples the job's
    // trigger waits for: it fires once, on all of them (a run on a partial table may lose
    // to its baseline and publish nothing, which is correct but not what this test is
    // about).
    let trace = root.join("tests/data/bitbrains_rnd/2013-8");
    let samples = replay(&data_dir, &trace, "bitbrains", &brokers);

    // The user's job: the built-in rightsizing spec under another name, fired by rows.
    let specs = dir.path().join("jobs");
    std::fs::create_dir(&specs).expect("mkdir");
    let builtin = std::fs::read_to_string(root.join("pipelines/jobs/rightsizing.toml"))
        .expect("rightsizing spec");
    let spec = builtin
        .replace("name = \"rightsizing\"", &format!("name = \"{JOB}\""))
        .replace(
            "[trigger]\nevery_secs = 3600\nafter_rows = 100000",
            &format!("[trigger]\nafter_rows = {samples}"),
        );
    assert_ne!(spec, builtin);
    std::fs::write(specs.join("mine.toml"), spec).expect("write spec");
    let mut background = start_background(
        &data_dir,
        &format!(
            "[kafka]\nbrokers = \"{brokers}\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [jobs]\nspec_dir = \"{}\"\nonly = [\"{JOB}\"]\npoll_ms = 100\n",
            specs.display()
        ),
    );
    let lines = std::sync::Arc::clone(&background.lines);
    let log = move || lines.lock().expect("lock").join("\n");

    let deadline = Instant::now() + Duration::from_secs(180);
    let served = loop {
        let out = dcpilot(&data_dir, &["models", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(model) = list
            .as_array()
            .and_then(|models| models.iter().find(|m| m["name"] == JOB))
        {
            break model.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {JOB} model published; models list said {}; the background logged:\n{}",
            String::from_utf8_lossy(&out.stdout),
            log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(served["kind"], "quantile_table");

    let shown = dcpilot(&data_dir, &["models", "show", JOB, "--json"]);
    let record: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("show --json");
    assert_eq!(record["job"], JOB, "{record}");
    assert_eq!(
        record["spec_hash"].as_str().map(str::len),
        Some(8),
        "{record}"
    );
    assert!(record["rows"].as_u64().expect("rows") > 0, "{record}");

    assert!(
        model_topic_keys(&brokers).iter().any(|k| k == JOB),
        "the published model is on {MODELS_TOPIC}"
    );

    let (_, metrics) = http_text(&background.metrics, "/metrics");
    let published = format!("dcpilot_job_runs_total{{job=\"{JOB}\",outcome=\"published\"}}");
    assert!(
        metrics.lines().any(|l| l.starts_with(&published)),
        "{published} missing from /metrics:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!("dcpilot_job_model_error{{job=\"{JOB}\"}}")),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &background.child.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = background.child.0.wait().expect("reap");
    assert!(exit.success(), "{}", log());
    let report = format!("job {JOB}: ");
    eventually(10, "the runner's report on exit", || {
        log().contains(&report).then_some(())
    });
}
