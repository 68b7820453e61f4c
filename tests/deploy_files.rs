//! The deployment files parse and agree with the code: every Kubernetes manifest is YAML
//! with apiVersion/kind, the ConfigMap's configuration is valid for both processes, the
//! units and collectors point at commands and topics that exist.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read manifest");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

#[test]
fn manifests_parse_and_the_configmap_configures_both_processes() {
    let dir = root().join("deploy/kubernetes");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        for doc in documents(&path) {
            assert!(doc["apiVersion"].is_string(), "{}: {doc}", path.display());
            kinds.push(doc["kind"].as_str().expect("kind").to_string());
        }
    }
    kinds.sort();
    for kind in [
        "ConfigMap",
        "Deployment",
        "KafkaTopic",
        "KubeSchedulerConfiguration",
        "Service",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
    }
    let config = &documents(&dir.join("configmap.yaml"))[0]["data"];
    let background: toml::Table = config["background.toml"]
        .as_str()
        .expect("background.toml")
        .parse()
        .expect("TOML");
    dcpilot_background::BackgroundConfig::from_table("configmap", background, &[])
        .expect("a valid background configuration");
    dcpilot_foreground::ForegroundConfig::parse(
        config["foreground.toml"].as_str().expect("foreground.toml"),
    )
    .expect("a valid foreground configuration");
    // The topics the manifests create are the ones the code uses.
    let topics: Vec<String> = documents(&dir.join("topics.yaml"))
        .iter()
        .map(|d| d["metadata"]["name"].as_str().expect("name").to_string())
        .collect();
    let defaults = dcpilot_background::BackgroundConfig::default().kafka;
    for topic in [
        defaults.telemetry_topic,
        defaults.landscape_topic,
        defaults.dlq_topic,
        dcpilot_info_core::replication::MODELS_TOPIC.to_string(),
        dcpilot_background::BackgroundConfig::default()
            .cluster
            .jobs_topic,
    ] {
        assert!(topics.contains(&topic), "{topic} not in topics.yaml");
    }
}

#[test]
fn units_and_collectors_use_real_commands_and_topics() {
    for unit in ["dcpilot-background.service", "dcpilot-foreground.service"] {
        let text = std::fs::read_to_string(root().join("deploy/systemd").join(unit)).expect("unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
        let sub = args
            .iter()
            .position(|a| *a == "background" || *a == "foreground")
            .expect("subcommand");
        let out = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
            .args(&args[..=sub])
            .arg("--help")
            .output()
            .expect("run");
        assert!(out.status.success(), "{unit}: {exec}");
    }
    for file in ["collectd-write_kafka.conf", "telegraf.conf"] {
        let text =
            std::fs::read_to_string(root().join("deploy/collectors").join(file)).expect("config");
        assert!(text.contains("dcpilot.telemetry"), "{file}");
    }
}
