//! `dcpilot simulate`: the synthetic landscape and telemetry arrive on the broker as
//! promised (counts, rate-paced samples, profile labels), and bad arguments are refused.

use std::process::Command;
use std::time::{Duration, Instant};

use dcpilot_background::EmbeddedBroker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

fn consume_all(brokers: &str, topic: &str, expect: usize, count: impl Fn(&[u8]) -> usize) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("sim-check-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut n = 0;
    while n < expect && started.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            n += m.payload().map_or(0, &count);
        }
    }
    n
}

#[test]
fn simulate_sends_the_landscape_and_the_telemetry_it_promises() {
    let broker = EmbeddedBroker::start(&["dcpilot.telemetry", "dcpilot.landscape"], 2, None)
        .expect("broker");
    let brokers = broker.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "simulate",
            "--hosts",
            "20",
            "--workloads",
            "10",
            "--replicas",
            "2",
            "--rate",
            "4000",
            "--duration-secs",
            "0.5",
            "--json",
            "--brokers",
            &brokers,
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["landscape_events"], 40);
    assert_eq!(summary["instances"], 20);
    assert_eq!(summary["samples"], 2000);
    // Paced by event time: half a second of samples takes about that long to send.
    assert!(
        summary["seconds"].as_f64().is_some_and(|s| s >= 0.4),
        "{summary}"
    );

    let landscape = consume_all(&brokers, "dcpilot.landscape", 40, |p| {
        let v: serde_json::Value = serde_json::from_slice(p).expect("event");
        assert!(
            v["kind"] == "host_up" || v["kind"] == "instance_placed",
            "{v}"
        );
        1
    });
    assert_eq!(landscape, 40);
    let samples = consume_all(&brokers, "dcpilot.telemetry", 2000, |p| {
        let v: serde_json::Value = serde_json::from_slice(p).expect("samples");
        v.as_array().map_or(1, Vec::len)
    });
    assert_eq!(samples, 2000);
}

#[test]
fn simulate_refuses_bad_arguments() {
    for (arg, named) in [
        ("--rate=0", "--rate"),
        ("--hosts=0", "--hosts"),
        ("--duration-secs=-1", "--duration-secs"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
            .args(["simulate", "--brokers", "127.0.0.1:1", arg])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{arg}");
        assert!(stderr.contains(named), "{arg}: {stderr}");
    }
}
