//! Helpers shared by the binary's end-to-end tests.
#![allow(dead_code)] // Each test file uses its own part.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One HTTP/1.1 request over a fresh connection; the status and the body as JSON (or
/// `Null` when it is not JSON).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text[9..12].parse().expect("status");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// Waits (up to 30 s) for a file a child process writes, and returns its content.
pub fn wait_for_file(path: &Path) -> String {
    let started = Instant::now();
    while !path.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(path).expect("file written")
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `secs` seconds.
pub fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `dcpilot SUBCOMMAND --config FILE` on a file named `name` holding `toml`, and
/// asserts it fails naming the file and `key`.
pub fn assert_config_refused(subcommand: &str, name: &str, toml: &str, key: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join(name);
    std::fs::write(&config, toml).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcpilot"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([subcommand, "--config"])
        .arg(&config)
        .output()
        .expect("run dcpilot");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{subcommand} accepted {toml:?}");
    assert!(stderr.contains(name) && stderr.contains(key), "{stderr}");
}

/// Stops a child process however the test ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `dcpilot --data-dir DIR ARGS…`, ready to run or spawn.
pub fn dcpilot_command(data_dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dcpilot"));
    c.arg("--data-dir").arg(data_dir).args(args);
    c
}

/// Runs `dcpilot --data-dir DIR ARGS…` to completion.
pub fn dcpilot(data_dir: &Path, args: &[&str]) -> std::process::Output {
    dcpilot_command(data_dir, args)
        .output()
        .expect("run dcpilot")
}

/// A loopback address no one listens on (bound, then released).
pub fn free_loopback_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}
