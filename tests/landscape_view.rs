//! The landscape page in a real browser: Debian's Chromium, headless, screenshots the page
//! a foreground serves, and the test reads the picture — a busy host (and its pod) drawn
//! red, an idle host green, services in their blue, in the bands the page puts them in.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{http, wait_for_file, KillOnDrop};

fn chromium() -> PathBuf {
    common::required_tool(
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        "chromium",
    )
}

/// A foreground serving `landscape` (written into `dir`) with the environment `env`; its
/// address.
fn serve(dir: &Path, landscape: &serde_json::Value, env: &[(&str, &str)]) -> (KillOnDrop, String) {
    let file = dir.join("landscape.json");
    std::fs::write(&file, landscape.to_string()).expect("write");
    let server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_dcpilot"))
            .arg("--data-dir")
            .arg(dir)
            .args(["foreground", "--listen", "127.0.0.1:0", "--landscape"])
            .arg(&file)
            .envs(env.iter().copied())
            .stderr(Stdio::null())
            .spawn()
            .expect("start"),
    );
    (server, wait_for_file(&dir.join("foreground.addr")))
}

/// RGB pixels of a PNG.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("screenshot"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

#[test]
fn the_page_draws_the_layers_with_utilisation_as_colour() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tmp");
    // "busy" has 15 of 16 cores requested, "idle" none.
    let landscape = serde_json::json!({
        "hosts": [
            {"name": "busy", "cores": 16.0, "memory_bytes": 1u64 << 36},
            {"name": "idle", "cores": 16.0, "memory_bytes": 1u64 << 36}
        ],
        "instances": [
            {"id": "hog-1", "workload": "batch", "host": "busy", "cores": 15.0, "memory_bytes": 1u64 << 30}
        ]
    });
    let (_server, addr) = serve(dir.path(), &landscape, &[]);
    let (status, page) = common::http_text(&addr, "/landscape");
    assert_eq!(status, 200);
    assert!(page.contains("<svg"), "{page}");
    let (status, _) = http(&addr, "GET", "/v1/landscape/graph", "");
    assert_eq!(status, 200);

    assert_drawn(
        &browser,
        dir.path(),
        "served",
        &format!("http://{addr}/landscape"),
    );

    // The same view as one self-contained file (what `dcpilot demo` writes), opened from
    // disk with no server: the same picture.
    let (_, graph) = http(&addr, "GET", "/v1/landscape/graph", "");
    let (_, placement) = http(&addr, "GET", "/v1/landscape", "");
    let file = dir.path().join("landscape.html");
    std::fs::write(
        &file,
        dcpilot_foreground::server::standalone_view(&graph, &placement, None),
    )
    .expect("write page");
    assert_drawn(
        &browser,
        dir.path(),
        "file",
        &format!("file://{}", file.display()),
    );

    // With a colouring, nodes take their anomaly colour instead: the idle host anomalous
    // (red), the busy one normal (green), the service normal (green, not blue), the pod
    // unjudged (grey, not red).
    let score = |n: &serde_json::Value| {
        let id = n["id"].as_str().unwrap_or_default();
        match n["layer"].as_str() {
            Some("service") => Some(0.0),
            Some("physical") if id.contains("idle") => Some(4.0),
            Some("physical") if id.contains("busy") => Some(-0.5),
            _ => None,
        }
    };
    let entities: Vec<serde_json::Value> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| {
            let s = score(n)?;
            Some(serde_json::json!({"entity": n["id"], "node": n["id"], "score": s, "anomalous": s >= 1.0}))
        })
        .collect();
    let top = entities
        .iter()
        .find(|e| e["anomalous"] == true)
        .expect("the idle host")["entity"]
        .clone();
    let anomalies = serde_json::json!({
        "version": 1, "entities": entities, "hosts": [],
        "ranking": [{"entity": top, "score": 4.0}],
    });
    let file = dir.path().join("anomalies.html");
    std::fs::write(
        &file,
        dcpilot_foreground::server::standalone_view(&graph, &placement, Some(&anomalies)),
    )
    .expect("write page");
    let shot = Shot::take(
        &browser,
        dir.path(),
        "anomalies",
        &format!("file://{}", file.display()),
    );
    let (top, middle, bottom) = ((60, 200), (250, 420), (480, 680));
    assert!(
        shot.count(bottom, &red) > 60,
        "the anomalous host is not red"
    );
    assert!(
        shot.count(bottom, &green) > 60,
        "the normal host is not green"
    );
    assert!(
        shot.count(top, &green) > 40,
        "the normal service is not green"
    );
    assert_eq!(
        shot.count(top, &blue),
        0,
        "the service kept its utilisation colour"
    );
    assert_eq!(
        shot.count(middle, &red),
        0,
        "an unjudged pod is drawn anomalous"
    );
}

fn red([r, g, b]: [u8; 3]) -> bool {
    r > 150 && g < 90 && b < 90
}

fn green([r, g, b]: [u8; 3]) -> bool {
    g > 130 && r < 120 && b < 120
}

fn blue([r, g, b]: [u8; 3]) -> bool {
    b > 170 && r < 110 && g > 80 && g < 150
}

/// A headless Chromium screenshot of a page.
struct Shot {
    width: u32,
    height: u32,
    px: Vec<[u8; 3]>,
}

impl Shot {
    fn take(browser: &Path, dir: &Path, name: &str, url: &str) -> Self {
        let shot = dir.join(format!("{name}.png"));
        let profile = dir.join(format!("profile-{name}"));
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1440,720",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(url)
            .output()
            .expect("chromium runs");
        assert!(
            shot.exists(),
            "no screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (width, height, px) = pixels(&shot);
        assert!(width >= 1000 && height >= 600, "{width}x{height}");
        Self { width, height, px }
    }

    /// Pixels of a colour in a vertical band (the page draws services near the top,
    /// virtual nodes in the middle, physical at the bottom).
    fn count(&self, (y0, y1): (u32, u32), want: &dyn Fn([u8; 3]) -> bool) -> usize {
        (y0..y1.min(self.height))
            .flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .filter(|&(x, y)| want(self.px[(y * self.width + x) as usize]))
            .count()
    }
}

/// Screenshots `url` in headless Chromium and checks what it drew: the service on top,
/// the busy host's pod red in the middle, the busy host red and the idle one green below.
fn assert_drawn(browser: &Path, dir: &Path, name: &str, url: &str) {
    let shot = Shot::take(browser, dir, name, url);
    let count = |y0: u32, y1: u32, want: &dyn Fn([u8; 3]) -> bool| shot.count((y0, y1), want);
    let (top, middle, bottom) = ((60, 200), (250, 420), (480, 680));
    // The service `batch` (a blue circle) on top; hog-1 on the busy host in red in the
    // middle; the busy host red and the idle host green at the bottom.
    assert!(count(top.0, top.1, &blue) > 40, "no service drawn");
    assert!(
        count(middle.0, middle.1, &red) > 60,
        "the busy host's pod is not red"
    );
    assert!(
        count(bottom.0, bottom.1, &red) > 60,
        "the busy host is not red"
    );
    assert!(
        count(bottom.0, bottom.1, &green) > 60,
        "the idle host is not green"
    );
    assert_eq!(
        count(bottom.0, bottom.1, &blue),
        0,
        "a service in the physical band"
    );
}

fn magenta([r, g, b]: [u8; 3]) -> bool {
    r > 180 && b > 180 && g < 80
}

#[test]
fn replicas_are_outlined_by_their_objectives_state() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tmp");
    let landscape = serde_json::json!({
        "hosts": [{"name": "node-a", "cores": 16.0, "memory_bytes": 1u64 << 36}],
        "instances": [
            {"id": "nginx-1", "workload": "nginx", "host": "node-a", "cores": 1.0, "memory_bytes": 1u64 << 28}
        ]
    });
    let autopilot = [
        ("DCPILOT__FOREGROUND__AUTOPILOT__ENABLED", "true"),
        ("DCPILOT__FOREGROUND__AUTOPILOT__TICK_SECS", "1"),
    ];
    let (_server, addr) = serve(dir.path(), &landscape, &autopilot);
    let url = format!("http://{addr}/landscape");
    // No objective yet: nothing outlined.
    let before = Shot::take(&browser, dir.path(), "no-objective", &url);
    assert_eq!(before.count((250, 420), &magenta), 0);

    let intent = r#"{"kind": "WorkloadIntent", "workload": "nginx", "p99_latency_ms": 1.0, "quiet_p99_ms": 0.3}"#;
    assert_eq!(http(&addr, "PUT", "/v1/intents", intent).0, 200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let telemetry = serde_json::json!([
        {"timestamp_ms": now, "entity": "nginx-1", "workload": "nginx", "metric": "p99_latency_ms", "value": 2.4},
        {"timestamp_ms": now, "entity": "nginx-1", "workload": "nginx", "metric": "rps", "value": 900.0}
    ]);
    assert_eq!(
        http(&addr, "POST", "/v1/telemetry", &telemetry.to_string()).0,
        200
    );
    common::eventually(30, "the objective judged violated", || {
        let (_, status) = http(&addr, "GET", "/v1/intents/nginx/status", "");
        (status["state"] == "violated").then_some(())
    });
    // The replica of the violated workload is outlined magenta among the virtual nodes.
    let after = Shot::take(&browser, dir.path(), "violated", &url);
    assert!(
        after.count((250, 420), &magenta) > 20,
        "the violated workload's replica is not outlined"
    );
}
