//! Helpers shared by the binary's end-to-end tests.
#![allow(dead_code)] // Each test file uses its own part.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One HTTP/1.1 request over a fresh connection; the status and the body as text.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
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
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// [`request`] with the body as JSON (`Null` when it is not JSON).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = request(addr, method, path, body);
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// `GET path`; the status and the body as text.
pub fn http_text(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, "")
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

/// `dcpilot --data-dir DIR ARGS…`, ready to run or spawn. An embedded broker takes any
/// free port instead of the stable default (tests run in parallel).
pub fn dcpilot_command(data_dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dcpilot"));
    c.env("DCPILOT__EMBEDDED__LISTEN", "127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args);
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

/// The standalone broker of the end-to-end tests (installed by deploy/install-broker.sh,
/// which scripts/setup.sh runs).
pub fn nisshi() -> std::path::PathBuf {
    let root = std::env::var_os("NISSHI_ROOT")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/nisshi")))
        .expect("HOME or NISSHI_ROOT");
    let bin = root.join("bin/nisshi");
    assert!(
        bin.is_file(),
        "{} is missing: run deploy/install-broker.sh (scripts/setup.sh does)",
        bin.display()
    );
    bin
}

/// Starts nisshi in memory on a free loopback port; returns it and its address.
pub fn start_nisshi() -> (KillOnDrop, String) {
    start_nisshi_advertising(None)
}

/// [`start_nisshi`] with dcpilot's topics: telemetry in 4 partitions (consumers share
/// them); landscape (ordered), dead letters and models in 1 each.
pub fn start_nisshi_with_topics() -> (KillOnDrop, String) {
    let (broker, brokers) = start_nisshi();
    create_topics(
        &brokers,
        &Default::default(),
        &[
            ("dcpilot.telemetry", 4),
            ("dcpilot.landscape", 1),
            ("dcpilot.telemetry.dlq", 1),
            ("dcpilot.models", 1),
        ],
    );
    (broker, brokers)
}

/// [`start_nisshi`], telling clients to come back through `advertised` (a proxy in front of
/// it) instead of its own address.
pub fn start_nisshi_advertising(advertised: Option<&str>) -> (KillOnDrop, String) {
    let brokers = free_loopback_port().to_string();
    let url = format!("tcp://{brokers}");
    let advertised_url = format!("tcp://{}", advertised.unwrap_or(&brokers));
    let broker = KillOnDrop(
        std::process::Command::new(nisshi())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised_url,
            ])
            .args([
                "--storage-engine",
                "memory://nisshi/",
                "--group-initial-rebalance-delay",
                "0s",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nisshi"),
    );
    eventually(30, "the broker listening", || {
        TcpStream::connect(&brokers).ok()
    });
    (broker, brokers)
}

/// A `dcpilot background` started on a config file holding `toml`, with the address of its
/// metrics endpoint (read from its log) and the stderr lines so far (a thread keeps
/// reading them).
pub struct Background {
    /// The process.
    pub child: KillOnDrop,
    /// `host:port` of `/metrics`, `/healthz`, `/readyz`.
    pub metrics: String,
    /// Its stderr, line by line.
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `dcpilot background --config FILE` in `dir` (see [`Background`]).
pub fn start_background(dir: &Path, toml: &str) -> Background {
    use std::io::BufRead;
    let config = dir.join("background.toml");
    std::fs::write(&config, toml).expect("write config");
    let mut child = dcpilot_command(
        dir,
        &["background", "--config", config.to_str().expect("utf-8")],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start the background");
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().expect("lock").push(line);
        }
    });
    let child = KillOnDrop(child);
    let metrics = eventually(30, "the metrics address in the log", || {
        lines.lock().expect("lock").iter().find_map(|l| {
            l.strip_prefix("metrics at http://")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_string)
        })
    });
    Background {
        child,
        metrics,
        lines,
    }
}

/// Publishes a rightsizing table (p90 cores of workload `shop`) into `data_dir`'s
/// Information Core, as `dcpilot background` or `jobs run-once` would; returns the version.
pub fn publish_rightsizing(data_dir: &Path, p90_cores: f64) -> u64 {
    use dcpilot_info_core::{
        HoldoutMetrics, InfoCore, Lineage, Model, ModelDraft, QuantileTable, TrainingWindow,
    };
    use std::collections::BTreeMap;
    let store = InfoCore::open_dir(&data_dir.join("models")).expect("open");
    let rows = BTreeMap::from([(
        "shop".to_string(),
        BTreeMap::from([("cores".to_string(), vec![1.0, p90_cores])]),
    )]);
    store
        .publish(ModelDraft {
            name: "rightsizing".into(),
            features: vec![],
            target: "cores".into(),
            window: TrainingWindow {
                start_ms: 0,
                end_ms: 1,
            },
            rows: 10,
            metrics: HoldoutMetrics {
                metric: "mae".into(),
                model_error: 0.25,
                baseline_error: 1.0,
                baseline: "p90_of_window".into(),
            },
            lineage: Lineage::of_job("rightsizing", "h"),
            model: Model::QuantileTable(QuantileTable {
                quantiles: vec![0.5, 0.9],
                rows,
            }),
        })
        .expect("publish")
        .version
}

/// Creates `topics` (name, partitions) through the admin API at `brokers` with the client
/// `properties`; a topic that exists already is fine.
pub fn create_topics(
    brokers: &str,
    properties: &std::collections::BTreeMap<String, String>,
    topics: &[(&str, i32)],
) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        dcpilot_runtime::kafka::client_config(brokers, properties)
            .create()
            .expect("admin client");
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = futures::executor::block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create topics");
    for r in results {
        if let Err((topic, code)) = r {
            assert_eq!(
                code,
                rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "creating {topic}"
            );
        }
    }
}

/// `dcpilot replay --source SOURCE --format FORMAT --brokers BROKERS --key none` from
/// `data_dir`; returns how many telemetry samples it sent (from its "sent N samples in M
/// messages" line).
pub fn replay(data_dir: &Path, source: &Path, format: &str, brokers: &str) -> u64 {
    let out = dcpilot(
        data_dir,
        &[
            "replay",
            "--source",
            source.to_str().expect("utf-8"),
            "--format",
            format,
            "--brokers",
            brokers,
            "--key",
            "none",
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    log.lines()
        .filter(|l| l.contains(" samples in "))
        .find_map(|l| l.strip_prefix("sent ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample count in the replay's log:\n{log}"))
}

/// Copies Bitbrains VM files `vms` of the bundled sample into a directory under `dir` and
/// replays it to `brokers` (see [`replay`]); returns the samples sent.
pub fn replay_vms(dir: &Path, brokers: &str, vms: &[&str]) -> u64 {
    let source = dir.join(format!("vms-{}", vms.join("-")));
    std::fs::create_dir_all(&source).expect("mkdir");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bitbrains_rnd/2013-8");
    for vm in vms {
        std::fs::copy(
            sample.join(format!("{vm}.csv")),
            source.join(format!("{vm}.csv")),
        )
        .expect("copy");
    }
    replay(dir, &source, "bitbrains", brokers)
}

/// Starts `dcpilot foreground` in `dir` following `brokers` (stderr discarded); returns
/// the process and its `host:port`.
pub fn start_following_foreground(dir: &Path, brokers: &str) -> (KillOnDrop, String) {
    let child = KillOnDrop(
        dcpilot_command(
            dir,
            &[
                "foreground",
                "--listen",
                "127.0.0.1:0",
                "--brokers",
                brokers,
            ],
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the foreground"),
    );
    let addr = wait_for_file(&dir.join("foreground.addr"));
    (child, addr)
}

/// Sends each JSON value as one message to `topic` and waits until all are delivered.
pub fn send_json(brokers: &str, topic: &str, payloads: &[serde_json::Value]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for p in payloads {
        let payload = p.to_string();
        producer
            .send(BaseRecord::<str, str>::to(topic).payload(&payload))
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// A tool `scripts/setup.sh` installs from Debian's `package`, found under one of `paths`;
/// a test that needs it fails without it, naming the script, rather than passing silently.
#[allow(dead_code)]
pub fn required_tool(paths: &[&str], package: &str) -> std::path::PathBuf {
    paths
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} not installed: run scripts/setup.sh (it installs Debian's {package})",
                paths.first().copied().unwrap_or("the tool")
            )
        })
}
