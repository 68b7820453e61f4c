//! `dcpilot run`: both loops in one process on the embedded broker — landscape events sent
//! to the broker reach the foreground API; SIGTERM stops both cleanly; a bad
//! `[foreground]` key is named with its file.

mod common;

use std::process::{Command, Stdio};

use common::{assert_config_refused, eventually, http, wait_for_file};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[test]
fn run_serves_the_landscape_its_broker_carries_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dcpilot.toml");
    std::fs::write(
        &config,
        "[http]\nlisten = \"127.0.0.1:0\"\n[embedded]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n\
         [foreground]\nlisten = \"127.0.0.1:0\"\n[foreground.planner]\nbudget_ms = 5.0\n",
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let addr = wait_for_file(&dir.path().join("foreground.addr"));
    let brokers = wait_for_file(&dir.path().join("broker.addr"));
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers.trim())
        .create()
        .expect("producer");
    let event =
        r#"{"kind":"host_up","timestamp_ms":1,"host":"h1","cores":4.0,"memory_bytes":1073741824}"#;
    producer
        .send(BaseRecord::<str, str>::to("dcpilot.landscape").payload(event))
        .expect("send");
    producer
        .flush(std::time::Duration::from_secs(10))
        .expect("flush");
    let answer = eventually(30, "the host in the foreground", || {
        let (status, a) = http(
            &addr,
            "POST",
            "/v1/placements",
            r#"{"workload":"w","cores":1,"memory_bytes":1}"#,
        );
        (status == 200).then_some(a)
    });
    assert_eq!(answer["choices"][0]["host"], "h1");
    assert_eq!(answer["budget_ms"], 5.0, "the [foreground] section applies");

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn a_bad_foreground_section_is_named_with_its_file() {
    assert_config_refused(
        "run",
        "both.toml",
        "[foreground.planner]\ntop = 0\n",
        "foreground.planner.top",
    );
}
