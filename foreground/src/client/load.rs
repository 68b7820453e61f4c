//! A load generator for the API: many keep-alive connections at once, each sending the
//! same request (or a cycle of bodies) for a while, with what came back measured at the
//! client — answered requests' latency apart from refusals', requests never answered
//! counted, and the run cut into windows so a long soak shows drift.
//!
//! Closed loop by default (a connection sends its next request when the last is
//! answered, as a scheduler does); with `rate`, open loop at that many requests a second
//! in all, latency counted from when each request was due, so a slow answer cannot hide
//! the requests it delayed. After a refusal (503) a closed-loop connection waits what
//! `Retry-After` says, times a random factor from 1 to 2, as a well-behaved client does
//! (without the jitter, connections refused together come back together); an open-loop one
//! drops the refused request and keeps its schedule.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hyper::body::Bytes;
use parking_lot::Mutex;

use super::{Answer, Client};

/// What to send, how hard, for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The API's address.
    pub addr: SocketAddr,
    /// `POST`, `GET`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Extra headers of every request.
    pub headers: Vec<(String, String)>,
    /// Bodies, sent in turn (at least one).
    pub bodies: Vec<Bytes>,
    /// Concurrent connections.
    pub connections: usize,
    /// How long to send.
    pub duration: Duration,
    /// Requests a second across all connections (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// A request not answered within this is counted unanswered (and its connection
    /// replaced).
    pub timeout: Duration,
    /// Length of the report's windows (the whole run in one window when longer).
    pub window: Duration,
    /// After a 503, wait what its `Retry-After` says (with jitter) before the next request
    /// (closed loop only: an open-loop run keeps its schedule and drops the refused one).
    pub honour_retry_after: bool,
}

impl LoadSpec {
    /// A closed-loop run of `connections` sending `POST path` with `body` for `duration`.
    pub fn post(
        addr: SocketAddr,
        path: &str,
        body: impl Into<Bytes>,
        connections: usize,
        duration: Duration,
    ) -> Self {
        Self {
            addr,
            method: "POST".into(),
            path: path.into(),
            headers: Vec::new(),
            bodies: vec![body.into()],
            connections,
            duration,
            rate: None,
            timeout: Duration::from_secs(5),
            window: duration,
            honour_retry_after: true,
        }
    }
}

/// Latency quantiles, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// What one window (or the whole run) saw.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadWindow {
    /// Its start, seconds into the run.
    pub from_secs: f64,
    /// Its length, s.
    pub seconds: f64,
    /// Answers with a 2xx status.
    pub answered: u64,
    /// 503 answers.
    pub refused: u64,
    /// Other statuses (4xx, other 5xx).
    pub failed: u64,
    /// Requests without an answer in time (timeouts, broken connections).
    pub unanswered: u64,
    /// Answered requests a second.
    pub answered_per_sec: f64,
    /// Answered requests' latency at the client.
    pub answered_latency: Quantiles,
    /// Refusals' latency at the client.
    pub refused_latency: Quantiles,
}

impl LoadWindow {
    /// Refusals as a share of all answers.
    pub fn refused_share(&self) -> f64 {
        let all = self.answered + self.refused + self.failed;
        if all == 0 {
            0.0
        } else {
            self.refused as f64 / all as f64
        }
    }
}

/// A run: the whole of it and its windows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoadReport {
    /// Concurrent connections.
    pub connections: usize,
    /// The whole run.
    pub total: LoadWindow,
    /// Its windows, in order.
    pub windows: Vec<LoadWindow>,
}

/// Counts and latency histograms (µs) of one connection or window.
struct Tally {
    answered: Histogram<u64>,
    refused: Histogram<u64>,
    failed: u64,
    unanswered: u64,
}

impl Tally {
    fn new() -> Self {
        // 1 µs to 10 min at 3 significant figures; bounds that are valid by construction.
        let histogram = || Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        Self {
            answered: histogram(),
            refused: histogram(),
            failed: 0,
            unanswered: 0,
        }
    }

    fn add(&mut self, other: &Tally) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.answered.add(&other.answered);
        let _ = self.refused.add(&other.refused);
        self.failed += other.failed;
        self.unanswered += other.unanswered;
    }

    fn reset(&mut self) {
        self.answered.reset();
        self.refused.reset();
        self.failed = 0;
        self.unanswered = 0;
    }

    fn window(&self, from_secs: f64, seconds: f64) -> LoadWindow {
        let quantiles = |h: &Histogram<u64>| {
            if h.is_empty() {
                return Quantiles::default();
            }
            Quantiles {
                p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
                p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
                max_ms: h.max() as f64 / 1000.0,
            }
        };
        LoadWindow {
            from_secs,
            seconds,
            answered: self.answered.len(),
            refused: self.refused.len(),
            failed: self.failed,
            unanswered: self.unanswered,
            answered_per_sec: self.answered.len() as f64 / seconds.max(1e-9),
            answered_latency: quantiles(&self.answered),
            refused_latency: quantiles(&self.refused),
        }
    }
}

/// Runs `spec` on the current Tokio runtime and reports what the client saw.
pub async fn run(spec: &LoadSpec) -> LoadReport {
    let connections = spec.connections.max(1);
    let started = Instant::now();
    let until = started + spec.duration;
    let tallies: Vec<Arc<Mutex<Tally>>> = (0..connections)
        .map(|_| Arc::new(Mutex::new(Tally::new())))
        .collect();
    let mut tasks: Vec<_> = tallies
        .iter()
        .enumerate()
        .map(|(i, tally)| {
            let (spec, tally) = (spec.clone(), Arc::clone(tally));
            tokio::spawn(async move { connection(&spec, i, started, until, &tally).await })
        })
        .collect();
    let mut total = Tally::new();
    let mut windows = Vec::new();
    let mut window_start = started;
    let step = spec.window.max(Duration::from_millis(100));
    loop {
        let end = (window_start + step).min(until);
        tokio::time::sleep_until(end.into()).await;
        let done = end >= until;
        if done {
            // Requests still in flight at the end are answered or time out.
            for task in &mut tasks {
                let _ = task.await;
            }
        }
        let mut window = Tally::new();
        for tally in &tallies {
            let mut tally = tally.lock();
            window.add(&tally);
            tally.reset();
        }
        total.add(&window);
        let from = window_start.duration_since(started).as_secs_f64();
        windows.push(window.window(from, end.duration_since(window_start).as_secs_f64()));
        window_start = end;
        if done {
            break;
        }
    }
    LoadReport {
        connections,
        total: total.window(0.0, spec.duration.as_secs_f64()),
        windows,
    }
}

/// One connection's requests until `until`.
async fn connection(
    spec: &LoadSpec,
    index: usize,
    started: Instant,
    until: Instant,
    tally: &Mutex<Tally>,
) {
    let connections = spec.connections.max(1);
    // Open loop: this connection's share of the rate, its first request staggered.
    let interval = spec
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(connections as f64 / r));
    let mut due =
        started + interval.map_or(Duration::ZERO, |i| i * index as u32 / connections as u32);
    let mut client: Option<Client> = None;
    let mut sent = index;
    while due < until {
        if interval.is_some() {
            tokio::time::sleep_until(due.into()).await;
        }
        let now = Instant::now();
        if now >= until {
            break;
        }
        // Latency runs from when the request was due (open loop) or sent (closed loop).
        let from = if interval.is_some() { due } else { now };
        if client.is_none() {
            match Client::connect(spec.addr).await {
                Ok(c) => client = Some(c),
                Err(_) => {
                    tally.lock().unanswered += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    due = next_due(due, interval, Instant::now());
                    continue;
                }
            }
        }
        let body = spec.bodies[sent % spec.bodies.len()].clone();
        sent += 1;
        let Some(c) = client.as_mut() else { continue };
        let answer = tokio::time::timeout(
            spec.timeout,
            c.send(&spec.method, &spec.path, &spec.headers, body),
        )
        .await;
        let micros = from.elapsed().as_micros().max(1) as u64;
        let mut wait = Duration::ZERO;
        match answer {
            Ok(Ok(answer)) => {
                let mut t = tally.lock();
                match answer.status {
                    200..=299 => t.answered.saturating_record(micros),
                    503 => {
                        t.refused.saturating_record(micros);
                        // Open loop keeps its schedule: the refused request is dropped.
                        if spec.honour_retry_after && interval.is_none() {
                            let jitter = 1.0 + rand::random::<f64>();
                            wait = retry_after(&answer).mul_f64(jitter);
                        }
                    }
                    _ => t.failed += 1,
                }
            }
            // Timed out or broken: a new connection for the next request.
            Ok(Err(_)) | Err(_) => {
                tally.lock().unanswered += 1;
                client = None;
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(until.saturating_duration_since(Instant::now()))).await;
        }
        due = next_due(due, interval, Instant::now());
    }
}

fn next_due(due: Instant, interval: Option<Duration>, now: Instant) -> Instant {
    match interval {
        Some(i) => due + i,
        None => now,
    }
}

/// How long a refused request asks its client to wait: its `Retry-After` seconds.
fn retry_after(answer: &Answer) -> Duration {
    Duration::from_secs(answer.retry_after_secs.unwrap_or(1))
}
