//! `dcpilot foreground` as a user runs it: standalone, a landscape file, a free port; a
//! placement over real HTTP; models published and rolled back in its data directory by
//! another process reach it without a restart; a bad config named with its file and key.

mod common;

use std::process::{Command, Stdio};

use common::{
    assert_config_refused, dcpilot, eventually, http, publish_rightsizing, wait_for_file,
    KillOnDrop,
};

#[test]
fn foreground_serves_placements_from_a_landscape_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let landscape = dir.path().join("landscape.json");
    std::fs::write(
        &landscape,
        r#"{"hosts":[{"name":"a","cores":8,"memory_bytes":1073741824},{"name":"b","cores":8,"memory_bytes":1073741824}],
            "instances":[{"id":"x","workload":"w","host":"a","cores":6,"memory_bytes":1}]}"#,
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["foreground", "--listen", "127.0.0.1:0", "--landscape"])
        .arg(&landscape)
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let addr = wait_for_file(&dir.path().join("foreground.addr"));
    let (status, answer) = http(
        &addr,
        "POST",
        "/v1/placements",
        r#"{"workload":"w2","cores":1,"memory_bytes":1}"#,
    );
    let (bad, error) = http(&addr, "POST", "/v1/placements", r#"{"workload":"w2"}"#);
    let (health, _) = http(&addr, "GET", "/healthz", "");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["choices"][0]["host"], "b", "{answer}");
    assert_eq!(answer["candidates_total"], 2);
    assert_eq!(bad, 400);
    assert!(
        error["error"].as_str().is_some_and(|e| e.contains("cores")),
        "{error}"
    );
    assert_eq!(health, 200);
}

#[test]
fn a_bad_foreground_config_names_file_and_key() {
    assert_config_refused(
        "foreground",
        "fg.toml",
        "[planner]\nbudget_ms = -1.0\n",
        "planner.budget_ms",
    );
}

#[test]
fn a_standalone_foreground_follows_its_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["foreground", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let _child = KillOnDrop(child);
    let addr = wait_for_file(&dir.path().join("foreground.addr"));
    let served = |addr: &str| {
        let (_, models) = http(addr, "GET", "/v1/models", "");
        models.to_string()
    };
    assert!(!served(&addr).contains("rightsizing"));
    assert_eq!(publish_rightsizing(dir.path(), 2.0), 1);
    eventually(10, "v1 served", || {
        served(&addr).contains("\"version\":1").then_some(())
    });
    assert_eq!(publish_rightsizing(dir.path(), 3.0), 2);
    eventually(10, "v2 served", || {
        served(&addr).contains("\"version\":2").then_some(())
    });
    let (status, versions) = http(&addr, "GET", "/v1/models/rightsizing/versions", "");
    assert_eq!(status, 200, "{versions}");
    let numbers: Vec<u64> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(versions["versions"][0]["lineage"]["job"], "rightsizing");
    let (status, missing) = http(&addr, "GET", "/v1/models/nope/versions", "");
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"]
        .as_str()
        .is_some_and(|e| e.contains("nope")));
    let out = dcpilot(
        dir.path(),
        &[
            "models",
            "rollback",
            "rightsizing",
            "1",
            "--reason",
            "v2 regressed",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(10, "the rollback served", || {
        let now = served(&addr);
        (now.contains("\"version\":1") && !now.contains("\"version\":2")).then_some(())
    });
}
