//! Admission and priorities: the API's work runs on worker threads of two lanes, not on
//! the threads that read requests, so a request is read — and its clock started — however
//! busy the workers are, and a request that cannot start in time is refused at once.
//!
//! - The **decision** lane (placements, recipe scores, the scheduler extender) has one
//!   worker per core. A request is admitted only if the work queued ahead of it, divided
//!   among the workers, leaves time to answer before it is due; otherwise it gets 503 and
//!   `Retry-After` at once. What waited past its due time anyway (a prediction that was
//!   wrong) is answered at once with what costs nothing — the planner's least-loaded
//!   ranking, marked `budget_exhausted` — never scored late.
//! - The **bulk** lane (rebalancing, landscape events and measurements, telemetry,
//!   intents) has its own workers (one by default) and a bounded queue: a flood of updates
//!   waits there, or is refused, and cannot take the decision lane's workers.
//!
//! Workers run at the process's priority. (Linux's idle scheduling class would let the
//! request threads preempt them at once, but it yields to every other process too: a
//! foreground beside a training background starved.)
//!
//! Queue time is predicted from each endpoint's recent service time (an exponentially
//! weighted mean kept in an atomic), so admission takes no lock; the queues are crossbeam
//! channels.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use crossbeam::channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ENDPOINTS;
use crate::planner::Clock;

/// Which workers run a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Placement decisions: first.
    Decision,
    /// Updates and rebalancing: never on the decision workers.
    Bulk,
}

impl Lane {
    fn label(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::Bulk => "bulk",
        }
    }
}

/// `[admission]`: the API's workers and queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Decision workers; 0: one per core.
    pub decision_workers: usize,
    /// Bulk workers (rebalancing, updates).
    pub bulk_workers: usize,
    /// Bulk requests waiting at most; more are refused with 503.
    pub bulk_queue: usize,
    /// How long an update may wait for a bulk worker before it is refused, ms (the
    /// budget of rebalancing requests counts instead when it is shorter).
    pub bulk_wait_ms: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            decision_workers: 0,
            bulk_workers: 1,
            bulk_queue: 1024,
            bulk_wait_ms: 5_000,
        }
    }
}

impl AdmissionConfig {
    /// Problems, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.decision_workers > 1024 {
            p.push(format!(
                "admission.decision_workers: at most 1024, got {}",
                self.decision_workers
            ));
        }
        if !(1..=1024).contains(&self.bulk_workers) {
            p.push(format!(
                "admission.bulk_workers: must be from 1 to 1024, got {}",
                self.bulk_workers
            ));
        }
        if self.bulk_queue == 0 {
            p.push("admission.bulk_queue: must be at least 1".into());
        }
        if self.bulk_wait_ms == 0 {
            p.push("admission.bulk_wait_ms: must be at least 1".into());
        }
        p
    }
}

/// Work for a worker: given the request's clock as work starts, the answer.
type Work = Box<dyn FnOnce(Clock) -> Response + Send>;

struct Job {
    endpoint: &'static str,
    clock: Clock,
    /// The service time predicted for it when admitted, ns (taken off the queue's total
    /// when a worker takes it).
    predicted_ns: u64,
    work: Work,
    reply: tokio::sync::oneshot::Sender<Response>,
}

/// One lane's queue and what admission reads of it.
struct LaneQueue {
    lane: Lane,
    sender: Sender<Job>,
    workers: usize,
    /// Requests waiting.
    queued: AtomicUsize,
    /// Their predicted service time, ns.
    queued_ns: AtomicU64,
    /// Requests being worked on.
    in_flight: AtomicUsize,
    /// Most requests waiting (bulk), or unbounded (decision: deadlines bound it).
    max_queued: Option<usize>,
}

/// The API's workers.
pub struct Admission {
    decision: Arc<LaneQueue>,
    bulk: Arc<LaneQueue>,
    /// Per endpoint (as in [`ENDPOINTS`]), its recent service time, ns (f64 bits).
    service_ns: Arc<Vec<AtomicU64>>,
    bulk_wait: Duration,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// The queue ahead would make it late (or the bulk queue is full).
    Overloaded {
        /// The wait predicted for it.
        predicted_wait: Duration,
    },
    /// Its due time passed before a worker could start it (updates only).
    Expired {
        /// How long it waited.
        waited: Duration,
    },
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "overloaded",
            Self::Expired { .. } => "expired",
        }
    }

    /// The 503 answer: `Retry-After` in whole seconds (at least 1, HTTP's granularity),
    /// and the reason in the body.
    pub fn response(&self, endpoint: &str) -> Response {
        let (message, wait) = match self {
            Self::Overloaded { predicted_wait } => (
                format!(
                    "overloaded: {endpoint} cannot start before it is due (about {:.1} ms of work queued ahead); retry later",
                    ms(*predicted_wait)
                ),
                *predicted_wait,
            ),
            Self::Expired { waited } => (
                format!(
                    "overloaded: {endpoint} waited {:.1} ms for a worker and is past its due time; retry later",
                    ms(*waited)
                ),
                *waited,
            ),
        };
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": message, "reason": self.reason() })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A first guess of an endpoint's service time, before any was measured.
const FIRST_GUESS_NS: f64 = 1_000_000.0;
/// Weight of the newest service time in the running mean.
const NEWEST_WEIGHT: f64 = 0.05;
/// Work that ended this close to its due time is taken as cut short by it.
const CUT_SHORT_MARGIN: Duration = Duration::from_micros(200);

impl Admission {
    /// Starts the workers: `config.decision_workers` (0: one per core) and
    /// `config.bulk_workers`.
    pub fn start(config: &AdmissionConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decision_workers = match config.decision_workers {
            0 => cores,
            n => n,
        };
        let service_ns = Arc::new(
            ENDPOINTS
                .iter()
                .map(|_| AtomicU64::new(FIRST_GUESS_NS.to_bits()))
                .collect::<Vec<_>>(),
        );
        let decision = LaneQueue::start(Lane::Decision, decision_workers, None, &service_ns);
        let bulk = LaneQueue::start(
            Lane::Bulk,
            config.bulk_workers.max(1),
            Some(config.bulk_queue.max(1)),
            &service_ns,
        );
        Self {
            decision,
            bulk,
            service_ns,
            bulk_wait: Duration::from_millis(config.bulk_wait_ms.max(1)),
        }
    }

    /// How long a bulk request may wait at most.
    pub fn bulk_wait(&self) -> Duration {
        self.bulk_wait
    }

    /// Runs `work` for `endpoint` on `lane` when a worker is free, if it can start before
    /// `clock.due`; its answer, or the refusal's.
    pub async fn run(
        &self,
        lane: Lane,
        endpoint: &'static str,
        clock: Clock,
        work: impl FnOnce(Clock) -> Response + Send + 'static,
    ) -> Response {
        match self.submit(lane, endpoint, clock, Box::new(work)) {
            Ok(answer) => answer.await.unwrap_or_else(|_| {
                // The worker dropped the reply: it panicked (and said so in the log).
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "error": format!("{endpoint}: the request's worker failed") })),
                )
                    .into_response()
            }),
            Err(refusal) => refused(endpoint, clock, refusal),
        }
    }

    fn submit(
        &self,
        lane: Lane,
        endpoint: &'static str,
        clock: Clock,
        work: Work,
    ) -> Result<tokio::sync::oneshot::Receiver<Response>, Refusal> {
        let queue = match lane {
            Lane::Decision => &self.decision,
            Lane::Bulk => &self.bulk,
        };
        let now = Instant::now();
        let service = self.service_ns(endpoint);
        // The work queued ahead, and about half of what is being worked on, shared by the
        // lane's workers.
        let in_flight_ns = queue.in_flight.load(Ordering::Relaxed) as f64 * service / 2.0;
        let ahead_ns = queue.queued_ns.load(Ordering::Relaxed) as f64 + in_flight_ns;
        let predicted_wait = Duration::from_nanos((ahead_ns / queue.workers.max(1) as f64) as u64);
        // Room for the answer to be written and sent: a tenth of the budget.
        let reply = clock.due.saturating_duration_since(clock.arrived) / 10;
        let late = now + predicted_wait + Duration::from_nanos(service as u64) + reply > clock.due;
        let full = queue
            .max_queued
            .is_some_and(|max| queue.queued.load(Ordering::Relaxed) >= max);
        if late || full {
            return Err(Refusal::Overloaded { predicted_wait });
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        queue.queued.fetch_add(1, Ordering::Relaxed);
        queue.queued_ns.fetch_add(service as u64, Ordering::Relaxed);
        queue.gauges();
        let job = Job {
            endpoint,
            clock,
            predicted_ns: service as u64,
            work,
            reply,
        };
        // The workers hold the receivers for as long as this holds the sender.
        if queue.sender.send(job).is_err() {
            queue.queued.fetch_sub(1, Ordering::Relaxed);
            queue.queued_ns.fetch_sub(service as u64, Ordering::Relaxed);
            return Err(Refusal::Overloaded { predicted_wait });
        }
        Ok(answer)
    }

    fn service_ns(&self, endpoint: &str) -> f64 {
        endpoint_index(endpoint).map_or(FIRST_GUESS_NS, |i| {
            f64::from_bits(self.service_ns[i].load(Ordering::Relaxed))
        })
    }
}

fn endpoint_index(endpoint: &str) -> Option<usize> {
    ENDPOINTS.iter().position(|e| *e == endpoint)
}

/// A refusal answered and counted.
fn refused(endpoint: &'static str, clock: Clock, refusal: Refusal) -> Response {
    metrics::counter!("dcpilot_foreground_refused_total", "endpoint" => endpoint, "reason" => refusal.reason())
        .increment(1);
    super::Answered {
        endpoint,
        status: 503,
        seconds: clock.arrived.elapsed().as_secs_f64(),
        budget_exhausted: false,
        degraded: false,
    }
    .emit();
    refusal.response(endpoint)
}

impl LaneQueue {
    fn start(
        lane: Lane,
        workers: usize,
        max_queued: Option<usize>,
        service_ns: &Arc<Vec<AtomicU64>>,
    ) -> Arc<Self> {
        let (sender, receiver) = crossbeam::channel::unbounded();
        let queue = Arc::new(Self {
            lane,
            sender,
            workers,
            queued: AtomicUsize::new(0),
            queued_ns: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_queued,
        });
        for i in 0..workers {
            let (receiver, queue, service_ns): (Receiver<Job>, _, _) = (
                receiver.clone(),
                Arc::downgrade(&queue),
                Arc::clone(service_ns),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("dcpilot-{}-{i}", lane.label()))
                .spawn(move || work(&receiver, &queue, &service_ns));
            if let Err(e) = spawned {
                tracing::error!(error = %e, lane = lane.label(), "cannot start an API worker");
            }
        }
        queue
    }

    fn gauges(&self) {
        let lane = self.lane.label();
        metrics::gauge!("dcpilot_foreground_queued", "lane" => lane)
            .set(self.queued.load(Ordering::Relaxed) as f64);
        metrics::gauge!("dcpilot_foreground_in_flight", "lane" => lane)
            .set(self.in_flight.load(Ordering::Relaxed) as f64);
    }
}

/// A worker: takes jobs until the lane is gone.
fn work(receiver: &Receiver<Job>, queue: &std::sync::Weak<LaneQueue>, service_ns: &[AtomicU64]) {
    while let Ok(job) = receiver.recv() {
        let Some(queue) = queue.upgrade() else { return };
        queue.queued.fetch_sub(1, Ordering::Relaxed);
        queue
            .queued_ns
            .fetch_sub(job.predicted_ns, Ordering::Relaxed);
        let clock = job.clock.starting_now();
        let waited = clock.started.duration_since(clock.arrived);
        metrics::histogram!("dcpilot_foreground_queue_seconds", "endpoint" => job.endpoint)
            .record(waited.as_secs_f64());
        // A decision past its due time is still answered — at once, with what costs
        // nothing (the work sees its budget spent and says so) — rather than refused late;
        // an update past its wait is refused, so its sender knows to send it again.
        if queue.lane == Lane::Bulk && clock.started >= clock.due {
            queue.gauges();
            let _ = job
                .reply
                .send(refused(job.endpoint, clock, Refusal::Expired { waited }));
            continue;
        }
        queue.in_flight.fetch_add(1, Ordering::Relaxed);
        queue.gauges();
        let endpoint = job.endpoint;
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| (job.work)(clock)));
        let ended = Instant::now();
        if let Some(i) = endpoint_index(endpoint) {
            // (Load and store, not one atomic step: two workers finishing at once may lose
            // one sample of the mean, which is harmless.)
            let old = f64::from_bits(service_ns[i].load(Ordering::Relaxed));
            let took = ended.duration_since(clock.started).as_nanos() as f64;
            let mut new = old + NEWEST_WEIGHT * (took - old);
            // Work cut short by its due time says nothing of how long the whole takes: it
            // may raise the estimate, never lower it (else overload would shorten the
            // estimate, admit more, and cut more short).
            if ended + CUT_SHORT_MARGIN >= clock.due {
                new = new.max(old);
            }
            service_ns[i].store(new.to_bits(), Ordering::Relaxed);
        }
        queue.in_flight.fetch_sub(1, Ordering::Relaxed);
        queue.gauges();
        match answer {
            // The client may have gone: nobody to tell.
            Ok(response) => drop(job.reply.send(response)),
            Err(_) => tracing::error!(endpoint, "an API request's work panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn config(decision_workers: usize, bulk_queue: usize) -> AdmissionConfig {
        AdmissionConfig {
            decision_workers,
            bulk_workers: 1,
            bulk_queue,
            bulk_wait_ms: 60_000,
        }
    }

    fn ok(text: &'static str) -> impl FnOnce(Clock) -> Response + Send + 'static {
        move |_| (StatusCode::OK, text).into_response()
    }

    /// Occupies one worker of `lane` until the returned sender is dropped or sent to;
    /// returns once the worker has started it.
    async fn block(
        admission: &Arc<Admission>,
        lane: Lane,
        endpoint: &'static str,
    ) -> (mpsc::Sender<()>, tokio::task::JoinHandle<Response>) {
        let (release, wait) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let admission = Arc::clone(admission);
        let handle = tokio::spawn(async move {
            admission
                .run(lane, endpoint, Clock::now(60_000.0), move |_| {
                    let _ = started.send(());
                    let _ = wait.recv();
                    (StatusCode::OK, "released").into_response()
                })
                .await
        });
        running.await.expect("the blocker started");
        (release, handle)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_cannot_start_in_time_is_refused_without_waiting() {
        let admission = Arc::new(Admission::start(&config(1, 8)));
        let (release, blocker) = block(&admission, Lane::Decision, "placements").await;
        // Each queued placement is predicted to take 1 ms (nothing measured yet): with a
        // 20 ms budget, about twenty fit ahead of the due time; the rest cannot start in
        // time.
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let admission = Arc::clone(&admission);
                let clock = Clock::now(20.0);
                tokio::spawn(async move {
                    admission
                        .run(Lane::Decision, "placements", clock, ok("scored"))
                        .await
                })
            })
            .collect();
        // Refused at once: answered while the only worker is still blocked.
        while admission.decision.queued.load(Ordering::Relaxed)
            + handles.iter().filter(|h| h.is_finished()).count()
            < handles.len()
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut queued = Vec::new();
        let mut refusals = Vec::new();
        for handle in handles {
            if handle.is_finished() {
                refusals.push(handle.await.expect("answer"));
            } else {
                queued.push(handle);
            }
        }
        assert!(!blocker.is_finished(), "the worker was still blocked");
        assert!(
            !refusals.is_empty(),
            "some refused while the worker was busy"
        );
        assert!(!queued.is_empty(), "the first ones were queued");
        for refusal in &refusals {
            assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
            let retry = refusal
                .headers()
                .get(header::RETRY_AFTER)
                .expect("Retry-After");
            assert_eq!(retry, "1");
        }
        release.send(()).expect("release");
        assert_eq!(blocker.await.expect("blocker").status(), StatusCode::OK);
        // Queued decisions past their due time are still answered (their work sees the
        // clock and answers with what costs nothing), never refused late.
        for handle in queued {
            assert_eq!(handle.await.expect("answer").status(), StatusCode::OK);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn decisions_go_on_while_updates_wait_and_updates_beyond_the_queue_are_refused() {
        let admission = Arc::new(Admission::start(&config(1, 2)));
        let (release, blocker) = block(&admission, Lane::Bulk, "landscape_events").await;
        // A decision does not wait for the busy bulk worker.
        let decision = admission
            .run(
                Lane::Decision,
                "placements",
                Clock::now(1_000.0),
                ok("placed"),
            )
            .await;
        assert_eq!(decision.status(), StatusCode::OK);
        assert!(!blocker.is_finished());
        // Two updates fit the bulk queue; the third is refused at once.
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let admission = Arc::clone(&admission);
                tokio::spawn(async move {
                    admission
                        .run(
                            Lane::Bulk,
                            "landscape_events",
                            Clock::now(60_000.0),
                            ok("applied"),
                        )
                        .await
                })
            })
            .collect();
        while admission.bulk.queued.load(Ordering::Relaxed) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = admission
            .run(
                Lane::Bulk,
                "landscape_events",
                Clock::now(60_000.0),
                ok("applied"),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        release.send(()).expect("release");
        blocker.await.expect("blocker");
        for update in waiting {
            assert_eq!(update.await.expect("answer").status(), StatusCode::OK);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_past_its_wait_is_refused_when_a_worker_takes_it() {
        let admission = Arc::new(Admission::start(&config(1, 8)));
        let (release, blocker) = block(&admission, Lane::Bulk, "telemetry").await;
        // Admitted (nothing queued ahead of it predicts a wait), then held past its due time.
        let clock = Clock::now(50.0);
        let admission_ = Arc::clone(&admission);
        let update = tokio::spawn(async move {
            admission_
                .run(Lane::Bulk, "telemetry", clock, ok("kept"))
                .await
        });
        while admission.bulk.queued.load(Ordering::Relaxed) < 1 && !update.is_finished() {
            tokio::task::yield_now().await;
        }
        assert!(!update.is_finished(), "admitted");
        while Instant::now() < clock.due {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        release.send(()).expect("release");
        blocker.await.expect("blocker");
        let answer = update.await.expect("answer");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = AdmissionConfig {
            decision_workers: 5_000,
            bulk_workers: 0,
            bulk_queue: 0,
            bulk_wait_ms: 0,
        };
        let problems = bad.problems().join("\n");
        for key in [
            "admission.decision_workers",
            "admission.bulk_workers",
            "admission.bulk_queue",
            "admission.bulk_wait_ms",
        ] {
            assert!(problems.contains(key), "{problems}");
        }
        assert!(AdmissionConfig::default().problems().is_empty());
    }
}
