//! Every start-up failure ends with one clear message naming the key or resource, exit
//! status 2, and no panic.

use std::path::Path;

/// Config lines that keep a test off the shared default ports.
const FREE_PORTS: &str = "[http]\nlisten = \"127.0.0.1:0\"\n[embedded]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n";

fn write_config(dir: &Path, name: &str, toml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, toml).expect("write config");
    path.to_str().expect("utf-8").to_string()
}

/// Runs `dcpilot ARGS` and checks the failure's shape; returns stderr.
fn fails_cleanly(data_dir: &Path, args: &[&str], names: &[&str]) -> String {
    // Not the shared helper: it moves the embedded broker to a free port, and one case
    // here is that port being taken.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DCPILOT__EMBEDDED__LISTEN")
        .output()
        .expect("run dcpilot");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one message expected: {stderr}"
    );
    for name in names {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
    stderr
}

#[test]
fn client_properties_librdkafka_refuses_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The report's case: SASL over TLS, but no credentials for the mechanism.
    let sasl = write_config(
        dir.path(),
        "sasl.toml",
        &format!("{FREE_PORTS}[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"GSSAPI\"\n"),
    );
    let stderr = fails_cleanly(
        dir.path(),
        &["background", "--config", &sasl],
        &["kafka.client", "sasl.mechanism", "SCRAM-SHA-512"],
    );
    assert_eq!(
        stderr.matches("No provider for SASL mechanism").count(),
        1,
        "said once: {stderr}"
    );
    let unknown = write_config(
        dir.path(),
        "unknown.toml",
        &format!("{FREE_PORTS}[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.client]\n\"no.such.property\" = \"1\"\n"),
    );
    fails_cleanly(
        dir.path(),
        &["background", "--config", &unknown],
        &["kafka.client", "no.such.property"],
    );
    let ca = write_config(
        dir.path(),
        "ca.toml",
        &format!("{FREE_PORTS}[kafka.client]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"/nonexistent/ca.pem\"\n"),
    );
    fails_cleanly(
        dir.path(),
        &["background", "--config", &ca],
        &["kafka.client"],
    );
}

#[test]
fn an_unusable_data_directory_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let data_dir = file.join("data");
    let config = write_config(dir.path(), "c.toml", FREE_PORTS);
    fails_cleanly(
        &data_dir,
        &["background", "--config", &config],
        &["data directory", "a-file"],
    );
}

#[test]
fn ports_in_use_are_named_with_their_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let http = write_config(
        dir.path(),
        "http.toml",
        &format!("[http]\nlisten = \"{addr}\"\n[embedded]\nlisten = \"127.0.0.1:0\"\n[jobs]\nenabled = false\n"),
    );
    fails_cleanly(
        dir.path(),
        &["background", "--config", &http],
        &["http.listen", &addr.to_string()],
    );
    let embedded = write_config(
        dir.path(),
        "embedded.toml",
        &format!("[http]\nlisten = \"127.0.0.1:0\"\n[embedded]\nlisten = \"{addr}\"\n[jobs]\nenabled = false\n"),
    );
    fails_cleanly(
        dir.path(),
        &["background", "--config", &embedded],
        &["embedded.listen", &addr.to_string(), "kafka.brokers"],
    );
    fails_cleanly(
        dir.path(),
        &["foreground", "--listen", &addr.to_string()],
        &["listen", &addr.to_string()],
    );
    drop(taken);
}
