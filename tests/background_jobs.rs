//! End to end through the binary: `dcpilot background` ingests a replayed real trace, its
//! job runner fires a user's job (from `[jobs] spec_dir`) on its `after_rows` trigger, the
//! model lands in the Information Core with its lineage and on the `dcpilot.models` topic.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dcpilot, free_loopback_port};
use dcpilot_background::EmbeddedBroker;
use dcpilot_info_core::replication::MODELS_TOPIC;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};

const JOB: &str = "e2e-rightsizing";

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response");
    body
}

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
    let broker = EmbeddedBroker::start(
        &[
            "dcpilot.telemetry",
            "dcpilot.landscape",
            "dcpilot.telemetry.dlq",
            MODELS_TOPIC,
        ],
        4,
        None,
    )
    .expect("broker");
    let brokers = broker.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The user's job: the built-in rightsizing spec under another name, fired by rows.
    let specs = dir.path().join("jobs");
    std::fs::create_dir(&specs).expect("mkdir");
    let builtin = std::fs::read_to_string(root.join("pipelines/jobs/rightsizing.toml"))
        .expect("rightsizing spec");
    let spec = builtin
        .replace("name = \"rightsizing\"", &format!("name = \"{JOB}\""))
        .replace(
            "[trigger]\nevery_secs = 3600\nafter_rows = 100000",
            "[trigger]\nafter_rows = 60000",
        );
    assert_ne!(spec, builtin);
    std::fs::write(specs.join("mine.toml"), spec).expect("write spec");
    let metrics_addr = free_loopback_port();
    let config = dir.path().join("background.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\n\
             [http]\nlisten = \"{metrics_addr}\"\n\
             [jobs]\nspec_dir = \"{}\"\nonly = [\"{JOB}\"]\npoll_ms = 100\n",
            specs.display()
        ),
    )
    .expect("write config");
    let data_dir = dir.path().join("data");
    let background = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["background", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dcpilot background");

    let trace = root.join("tests/data/bitbrains_rnd/2013-8");
    let replay = dcpilot(
        &data_dir,
        &[
            "replay",
            "--source",
            trace.to_str().expect("utf-8"),
            "--format",
            "bitbrains",
            "--brokers",
            &brokers,
            "--key",
            "none",
        ],
    );
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );

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
            "no {JOB} model published; models list said {}",
            String::from_utf8_lossy(&out.stdout)
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

    let metrics = http_get(metrics_addr, "/metrics");
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
        .args(["-TERM", &background.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let out = background.wait_with_output().expect("reap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("job {JOB}: ")),
        "the runner reports its runs on exit:\n{stderr}"
    );
}
