//! The time budget at the client, under load: `POST /v1/placements` (5,000 hosts, the
//! default 10 ms budget) to the foreground's API in this process, from 2, 16, 64 and 256
//! concurrent keep-alive connections (closed loop; a refused request is retried when its
//! answer says). Per concurrency: answered requests a second, their p50/p99/max at the
//! client, the share refused and how fast refusals came, and requests never answered.
//! The server runs on a Tokio runtime with as many workers as cores, as `dcpilot
//! foreground` does; the client shares the machine, as wrk would.
//!
//! `DCPILOT_LOAD_SECS` (10) sets each run's length; `DCPILOT_LOAD_CPU` prints the cores
//! each kind of thread used (request threads, decision workers). With `DCPILOT_SOAK_SECS`, a soak
//! follows: open loop at 80 % of the peak answered rate from 64 connections (latency
//! counted from when each request was due), landscape events streaming in
//! (`DCPILOT_SOAK_EVENTS` a second, 5: each moves an instance between two hosts),
//! reported per minute (p99, refusals, resident memory). `DCPILOT_SOAK_RATE` sets the
//! soak's rate and skips the table.
//!
//! `cargo bench -p dcpilot-foreground --bench load`

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{core_with_slowdown, landscape};
use dcpilot_foreground::client::load::{self, LoadReport, LoadSpec};
use dcpilot_foreground::{Foreground, ForegroundConfig};

/// A request the slowdown model scores on every host (≈1.3 ms of CPU), and one ranked by
/// load alone (the model needs `rps` and the quiet p99: ≈0.1 ms).
const BODIES: [(&str, &str); 2] = [
    (
        "model-scored",
        r#"{"workload":"nginx","cores":2,"memory_bytes":1073741824,"rps":2000,"replicas":2,"quiet_p99_ms":5,"p99_objective_ms":20}"#,
    ),
    (
        "load-ranked",
        r#"{"workload":"nginx","cores":2,"memory_bytes":1073741824}"#,
    ),
];
const CONCURRENCY: [usize; 4] = [2, 16, 64, 256];

fn seconds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, MiB (Linux).
fn resident_mib() -> f64 {
    let pages: f64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse().ok()))
        .unwrap_or(f64::NAN);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// CPU seconds used so far by this process's threads, by name (Linux).
fn thread_cpu() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: utime and stime are 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        let name: String = name
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .into();
        *by_name.entry(name).or_insert(0.0) += ticks / 100.0;
    }
    by_name
}

fn row(r: &LoadReport) -> String {
    let t = &r.total;
    format!(
        "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} % | {:.2} | {:.2} | {} | {} |",
        r.connections,
        t.answered_per_sec,
        t.answered_latency.p50_ms,
        t.answered_latency.p99_ms,
        t.answered_latency.max_ms,
        t.refused_share() * 100.0,
        t.refused_latency.p50_ms,
        t.refused_latency.p99_ms,
        t.failed,
        t.unanswered
    )
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = ForegroundConfig::default();
    let budget_ms = config.planner.budget_ms;
    let fg = Foreground::new(
        config,
        Arc::new(core_with_slowdown()),
        landscape(5_000),
        false,
    );
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .event_interval(dcpilot_foreground::service::EVENT_INTERVAL)
        .enable_all()
        .build()
        .expect("server runtime");
    let addr = server.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = fg.router();
        tokio::spawn(async move {
            axum::serve(dcpilot_foreground::server::without_nagle(listener), router).await
        });
        addr
    });
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let run_secs = seconds("DCPILOT_LOAD_SECS", 10);
    let spec = |body: &'static str, connections: usize, secs: u64| {
        LoadSpec::post(
            addr,
            "/v1/placements",
            body,
            connections,
            Duration::from_secs(secs),
        )
    };
    // Warm up (allocator, caches, the scorer's first models).
    client.block_on(load::run(&spec(BODIES[0].1, 16, 2)));
    let soak_rate: Option<f64> = std::env::var("DCPILOT_SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut peak_scored = soak_rate.map_or(0.0, |r| r / 0.8);
    for (name, body) in BODIES.into_iter().filter(|_| soak_rate.is_none()) {
        println!(
            "\nPOST /v1/placements ({name}), 5000 hosts, budget {budget_ms} ms, {cores} cores, {run_secs} s per row\n"
        );
        println!("| connections | answered/s | p50 ms | p99 ms | max ms | refused | refused p50 ms | refused p99 ms | failed | unanswered |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let reports: Vec<LoadReport> = CONCURRENCY
            .iter()
            .map(|&c| {
                let cpu_before = thread_cpu();
                let report = client.block_on(load::run(&spec(body, c, run_secs)));
                let cpu: Vec<String> = thread_cpu()
                    .into_iter()
                    .map(|(name, s)| {
                        (
                            name.clone(),
                            s - cpu_before.get(&name).copied().unwrap_or(0.0),
                        )
                    })
                    .filter(|(_, s)| *s > 0.05)
                    .map(|(name, s)| format!("{name} {:.2}", s / run_secs as f64))
                    .collect();
                println!("{}", row(&report));
                if std::env::var_os("DCPILOT_LOAD_CPU").is_some() {
                    println!("  cores used: {}", cpu.join(", "));
                }
                report
            })
            .collect();
        let peak = reports
            .iter()
            .map(|r| r.total.answered_per_sec)
            .fold(0.0, f64::max);
        if peak_scored == 0.0 {
            peak_scored = peak;
        }
        println!();
        for r in &reports {
            let t = &r.total;
            let checks = [
                (
                    "p99 ≤ budget + 2 ms",
                    t.answered_latency.p99_ms <= budget_ms + 2.0,
                ),
                (
                    "refusals ≤ 1 ms",
                    t.refused == 0 || t.refused_latency.p99_ms <= 1.0,
                ),
                ("≥ 90 % of peak", t.answered_per_sec >= 0.9 * peak),
                ("none unanswered", t.unanswered == 0),
            ];
            let verdict: Vec<String> = checks
                .iter()
                .map(|(what, ok)| format!("{what}: {}", if *ok { "yes" } else { "NO" }))
                .collect();
            println!("{:>3} connections — {}", r.connections, verdict.join(", "));
        }
    }

    let soak_secs = seconds("DCPILOT_SOAK_SECS", 0);
    if soak_secs == 0 {
        return;
    }
    let rate = 0.8 * peak_scored;
    let mut placements = spec(BODIES[0].1, 64, soak_secs);
    placements.rate = Some(rate);
    placements.window = Duration::from_secs(60);
    let event = |kind: &str, host: &str| {
        format!(
            r#"[{{"kind":"{kind}","timestamp_ms":1,"instance":"soak-1","workload":"soak","host":"{host}","cpu_request":1,"memory_request_bytes":1073741824}}]"#
        )
    };
    let mut events = spec(BODIES[0].1, 1, soak_secs);
    events.path = "/v1/landscape/events".into();
    events.bodies = vec![
        event("instance_placed", "node-1").into(),
        event("instance_placed", "node-2").into(),
    ];
    let events_per_sec = seconds("DCPILOT_SOAK_EVENTS", 5) as f64;
    events.rate = Some(events_per_sec);
    events.window = Duration::from_secs(60);
    println!("\nSoak: {soak_secs} s at {rate:.0} model-scored placements/s (80 % of peak) from 64 connections, {events_per_sec} landscape events/s\n");
    println!("| minute | answered/s | p50 ms | p99 ms | refused | unanswered | events answered | resident MiB |");
    println!("|---|---|---|---|---|---|---|---|");
    let before = resident_mib();
    let sampler = std::thread::spawn(move || {
        let mut rss = Vec::new();
        for _ in 0..soak_secs.div_ceil(60) {
            std::thread::sleep(Duration::from_secs(60));
            rss.push(resident_mib());
        }
        rss
    });
    let (p, e) =
        client.block_on(async { tokio::join!(load::run(&placements), load::run(&events)) });
    let rss = sampler.join().expect("sampler");
    for (i, w) in p.windows.iter().enumerate() {
        let events_answered = e.windows.get(i).map_or(0, |w| w.answered);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} % | {} | {} | {:.1} |",
            i + 1,
            w.answered_per_sec,
            w.answered_latency.p50_ms,
            w.answered_latency.p99_ms,
            w.refused_share() * 100.0,
            w.unanswered,
            events_answered,
            rss.get(i).copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "\nresident before the soak {before:.1} MiB; event failures {}",
        e.total.failed + e.total.unanswered
    );
}
