//! The `dcpilot` command line as a user runs it: decode, bad configuration, bad arguments.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn dcpilot(args: &[&str], stdin: &[u8]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dcpilot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

#[test]
fn decode_prints_samples_and_exits_zero_on_clean_input() {
    let out = dcpilot(
        &["decode", "--format", "influx"],
        b"cpu,host=node1,cpu=cpu0 usage_user=12.5,procs=3i 1700000000000000000\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = lines(&out.stdout);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0]["entity"], "node1");
    assert_eq!(samples[0]["metric"], "cpu_usage_user");
    assert_eq!(samples[0]["value"], 12.5);
    assert_eq!(samples[0]["timestamp_ms"], 1_700_000_000_000i64);
    assert_eq!(samples[0]["labels"]["cpu"], "cpu0");
    assert_eq!(samples[1]["metric"], "cpu_procs");
}

#[test]
fn decode_reports_each_bad_record_and_exits_nonzero() {
    let input =
        b"{\"timestamp_ms\":1700000000000,\"entity\":\"vm-1\",\"metric\":\"cpu\",\"value\":1.5}\n\
                  {\"timestamp_ms\":1700000000000,\"entity\":\"vm-1\"}\n\
                  {\"timestamp_ms\": oops}\n";
    let out = dcpilot(&["decode", "--format", "auto"], input);
    assert!(!out.status.success());
    let lines = lines(&out.stdout);
    let (errors, samples): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l.get("error").is_some());
    assert_eq!(samples.len(), 1, "the good record is still printed");
    assert_eq!(samples[0]["metric"], "cpu");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["error"]["record"], 1);
    assert_eq!(errors[0]["error"]["kind"], "schema_mismatch");
    assert!(
        errors[0]["error"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("metric")),
        "{errors:?}"
    );
    assert_eq!(errors[1]["error"]["record"], 2);
    assert_eq!(errors[1]["error"]["kind"], "malformed_json");
}

#[test]
fn bad_config_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[ingest]\nmax_batch_samples = 0\n[kafka]\ngroup = \"x\"\n",
    )
    .expect("write");
    let out = dcpilot(
        &[
            "background",
            "--config",
            config.to_str().expect("utf-8 path"),
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("group"), "{stderr}");

    std::fs::write(&config, "[ingest]\nmax_batch_samples = 0\n").expect("write");
    let out = dcpilot(
        &[
            "background",
            "--config",
            config.to_str().expect("utf-8 path"),
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingest.max_batch_samples"), "{stderr}");
}

#[test]
fn replay_without_a_broker_says_how_to_get_one() {
    let out = dcpilot(
        &[
            "replay",
            "--source",
            "/nonexistent",
            "--format",
            "bitbrains",
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dcpilot background"), "{stderr}");
}

#[test]
fn query_reports_sql_errors() {
    let out = dcpilot(&["query", "SELECT nope FROM telemetry"], b"");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope"), "{stderr}");
}
