//! The job runner: runs each registered background job on its trigger (every N seconds
//! and/or after N new telemetry rows), isolated from ingestion and from each other.
//!
//! - Jobs execute on their own runtime (`jobs.worker_threads` threads plus its blocking
//!   pool for training), so a busy or stuck job cannot take the ingest workers.
//! - Each run has a time budget (`jobs.timeout_secs`). A run past it is counted as a
//!   timeout and cancelled: it publishes nothing, even if its training finishes later. The
//!   job does not start again until that run has really ended.
//! - A failed, panicking or timed-out run backs the job off exponentially
//!   (`jobs.backoff_initial_secs` doubling up to `jobs.backoff_max_secs`); errors no retry
//!   can fix (a bad spec, a panic) back off to the maximum at once. A success resets it.
//! - Each job whose spec has `[live]` (every estimator, by default) has its served version
//!   judged every `live.every_secs` on the rows it never saw; a verdict that is news is
//!   published as `<job>.live`, demotions and re-promotions are logged and counted.
//! - Every outcome is logged with the job's name and counted in
//!   `dcpilot_job_runs_total{job, outcome}`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use dcpilot_info_core::InfoCore;
use dcpilot_pipelines::spec::Trigger;
use dcpilot_pipelines::{
    judge_live, run_once_cancellable, Job, JobSpec, PipelineError, Registry, RunReport,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::error::{BackgroundError, Result};
use crate::events::{JobRunFinished, JobRunOutcome, LiveJudged};
use crate::store::TableStore;

/// The `[jobs]` section of the background config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Run background jobs in this process.
    pub enabled: bool,
    /// Also load every `*.toml` job spec in this directory (unset: built-in jobs only).
    pub spec_dir: Option<PathBuf>,
    /// Run only these jobs (empty: every registered job).
    pub only: Vec<String>,
    /// Time budget of one run.
    pub timeout_secs: u64,
    /// First pause after a failed run; doubles per consecutive failure.
    pub backoff_initial_secs: u64,
    /// Longest pause after failures.
    pub backoff_max_secs: u64,
    /// How often triggers are checked.
    pub poll_ms: u64,
    /// Async worker threads of the jobs' own runtime (training runs on its blocking pool).
    pub worker_threads: usize,
    /// Per job, triggers that replace its spec's (operators tune how often a job runs
    /// without editing the spec): `[jobs.triggers] rightsizing = { after_rows = 30000 }`.
    pub triggers: BTreeMap<String, TriggerOverride>,
}

/// A job's trigger set by configuration; the keys given replace the spec's trigger.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggerOverride {
    /// Every this many seconds.
    pub every_secs: Option<u64>,
    /// After this many new rows.
    pub after_rows: Option<u64>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            spec_dir: None,
            only: Vec::new(),
            timeout_secs: 900,
            backoff_initial_secs: 30,
            backoff_max_secs: 3600,
            poll_ms: 1000,
            worker_threads: 1,
            triggers: BTreeMap::new(),
        }
    }
}

impl JobsConfig {
    /// Cross-field checks, one line per problem naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.timeout_secs == 0 {
            p.push("jobs.timeout_secs: must be positive".into());
        }
        if self.backoff_initial_secs == 0 {
            p.push("jobs.backoff_initial_secs: must be positive".into());
        }
        if self.backoff_max_secs < self.backoff_initial_secs {
            p.push("jobs.backoff_max_secs: must be at least jobs.backoff_initial_secs".into());
        }
        if self.poll_ms == 0 {
            p.push("jobs.poll_ms: must be positive".into());
        }
        if self.worker_threads == 0 {
            p.push("jobs.worker_threads: must be positive".into());
        }
        for (job, t) in &self.triggers {
            if t.every_secs.is_none() && t.after_rows.is_none() {
                p.push(format!(
                    "jobs.triggers.{job}: give every_secs, after_rows or both"
                ));
            }
            if t.every_secs == Some(0) || t.after_rows == Some(0) {
                p.push(format!("jobs.triggers.{job}: values must be positive"));
            }
        }
        p
    }

    /// The jobs this config asks for: the built-ins, plus the specs in `spec_dir`, narrowed
    /// to `only`. Every bad spec file is reported, with its file and key.
    pub fn registry(&self) -> Result<Registry> {
        let mut registry = Registry::builtin().map_err(config_error("<built-in jobs>"))?;
        if let Some(dir) = &self.spec_dir {
            let label = dir.display().to_string();
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(BackgroundError::io(dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            let mut problems = Vec::new();
            for file in files {
                match JobSpec::load(&file) {
                    Ok(spec) => {
                        if let Err(e) =
                            registry.register(Arc::new(dcpilot_pipelines::SpecJob(spec)))
                        {
                            problems.push(format!("{}: {e}", file.display()));
                        }
                    }
                    Err(e) => problems.extend(e.problems),
                }
            }
            if !problems.is_empty() {
                return Err(BackgroundError::Config {
                    file: label,
                    problems,
                });
            }
        }
        let unknown: Vec<String> = self
            .triggers
            .keys()
            .filter(|n| registry.get(n).is_none())
            .map(|n| format!("jobs.triggers: no job named {n:?}"))
            .collect();
        if !unknown.is_empty() {
            return Err(BackgroundError::Config {
                file: "[jobs] config".into(),
                problems: unknown,
            });
        }
        if !self.only.is_empty() {
            let unknown: Vec<String> = self
                .only
                .iter()
                .filter(|n| registry.get(n).is_none())
                .map(|n| format!("jobs.only: no job named {n:?}"))
                .collect();
            if !unknown.is_empty() {
                return Err(BackgroundError::Config {
                    file: "[jobs] config".into(),
                    problems: unknown,
                });
            }
            registry.retain(|name| self.only.iter().any(|n| n == name));
        }
        Ok(registry)
    }
}

fn config_error(file: &str) -> impl Fn(PipelineError) -> BackgroundError + '_ {
    move |e| BackgroundError::Config {
        file: file.to_string(),
        problems: vec![e.to_string()],
    }
}

/// Where a job stands between runs.
struct JobState {
    job: Arc<dyn Job>,
    /// The spec's trigger, or the configured override.
    trigger: Trigger,
    last_start: Instant,
    rows_at_last_start: u64,
    running: bool,
    /// Set to cancel the run in flight (time budget, shutdown).
    cancel: Arc<AtomicBool>,
    failures: u32,
    not_before: Instant,
    /// A live judgement is in flight.
    judging: bool,
    last_judged: Instant,
}

impl JobState {
    fn due(&self, now: Instant, rows: u64) -> bool {
        if self.running || now < self.not_before {
            return false;
        }
        let trigger = &self.trigger;
        let by_time = trigger
            .every_secs
            .is_some_and(|s| now.duration_since(self.last_start) >= Duration::from_secs(s));
        let by_rows = trigger
            .after_rows
            .is_some_and(|n| rows.saturating_sub(self.rows_at_last_start) >= n);
        by_time || by_rows
    }
}

impl JobState {
    /// A live judgement is due: the job is judged live, no run or judgement is in flight
    /// (a run may be about to publish a new version), and `live.every_secs` have passed.
    fn judgement_due(&self, now: Instant) -> bool {
        let Some(live) = &self.job.spec().live else {
            return false;
        };
        !self.running
            && !self.judging
            && now.duration_since(self.last_judged) >= Duration::from_secs(live.every_secs)
    }
}

/// What a finished live judgement reports back to the scheduling loop.
struct Judged {
    job: String,
    outcome: std::result::Result<dcpilot_pipelines::LiveReport, PipelineError>,
}

/// What a finished run reports back to the scheduling loop.
struct Finished {
    job: String,
    outcome: std::result::Result<RunReport, PipelineError>,
    timed_out: bool,
    duration: Duration,
}

/// Runs the registered jobs on their triggers; see the module docs.
pub struct JobRunner {
    config: JobsConfig,
    registry: Registry,
    ctx: SessionContext,
    telemetry: Arc<TableStore>,
    models: Arc<InfoCore>,
    leases: Option<Arc<crate::cluster::Leases>>,
    progress: watch::Sender<JobRunnerStats>,
}

impl JobRunner {
    /// A runner over `ctx` (the `telemetry` and `landscape` tables), counting new rows of
    /// `telemetry` for `after_rows` triggers, publishing into `models`.
    pub fn new(
        config: JobsConfig,
        registry: Registry,
        ctx: SessionContext,
        telemetry: Arc<TableStore>,
        models: Arc<InfoCore>,
    ) -> Self {
        Self {
            config,
            registry,
            ctx,
            telemetry,
            models,
            leases: None,
            progress: watch::Sender::new(JobRunnerStats::default()),
        }
    }

    /// The counts so far, updated whenever a run finishes (what [`JobRunner::run`] returns
    /// at the end), for a status page or a test that waits for runs.
    pub fn progress(&self) -> watch::Receiver<JobRunnerStats> {
        self.progress.subscribe()
    }

    /// Runs only the jobs whose lease `leases` holds (a scaled-out replica); a run whose
    /// lease is lost is cancelled.
    pub fn with_leases(mut self, leases: Arc<crate::cluster::Leases>) -> Self {
        self.leases = Some(leases);
        self
    }

    fn may_run(&self, job: &str) -> bool {
        self.leases.as_ref().is_none_or(|l| l.holds(job))
    }

    /// Runs until `shutdown` flips; returns each job's (successful runs, failed runs).
    /// Runs in flight at shutdown are cancelled (they publish nothing).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<JobRunnerStats> {
        let runtime = OwnRuntime::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.config.worker_threads)
                .thread_name("dcpilot-jobs")
                .enable_all()
                .build()
                .map_err(|e| BackgroundError::Io {
                    path: PathBuf::from("<jobs runtime>"),
                    source: e,
                })?,
        );
        let start = Instant::now();
        let rows = self.telemetry.inserted_rows();
        let (judged_tx, mut judged_rx) = mpsc::unbounded_channel::<Judged>();
        let mut states: BTreeMap<String, JobState> = self
            .registry
            .jobs()
            .map(|job| {
                (
                    job.name().to_string(),
                    JobState {
                        trigger: match self.config.triggers.get(job.name()) {
                            Some(o) => Trigger {
                                every_secs: o.every_secs,
                                after_rows: o.after_rows,
                            },
                            None => job.spec().trigger.clone(),
                        },
                        job: job.clone(),
                        last_start: start,
                        rows_at_last_start: rows,
                        running: false,
                        cancel: Arc::new(AtomicBool::new(false)),
                        failures: 0,
                        not_before: start,
                        judging: false,
                        last_judged: start,
                    },
                )
            })
            .collect();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        let mut stats = JobRunnerStats::default();
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(jobs = ?states.keys().collect::<Vec<_>>(), "job runner started");
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                Some(finished) = done_rx.recv() => {
                    self.settle(&mut states, &mut stats, finished);
                    self.progress.send_replace(stats.clone());
                }
                Some(judged) = judged_rx.recv() => {
                    LiveJudged { job: &judged.job, outcome: judged.outcome.as_ref() }.emit();
                    if let Some(state) = states.get_mut(&judged.job) {
                        state.judging = false;
                        state.last_judged = Instant::now();
                    }
                    let entry = stats.runs.entry(judged.job).or_default();
                    if let Ok(report) = judged.outcome {
                        entry.last_live = Some(report);
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let rows = self.telemetry.inserted_rows();
                    for (name, state) in states.iter_mut().filter(|(n, s)| s.running && !self.may_run(n)) {
                        tracing::warn!(job = %name, "lease lost mid-run: the run is cancelled");
                        state.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    for (name, state) in states.iter_mut().filter(|(n, s)| self.may_run(n) && s.due(now, rows)) {
                        state.running = true;
                        state.last_start = now;
                        state.rows_at_last_start = rows;
                        state.cancel = Arc::new(AtomicBool::new(false));
                        self.launch(runtime.handle(), name, state.job.clone(), done_tx.clone(), state.cancel.clone());
                    }
                    for (name, state) in states.iter_mut().filter(|(n, s)| self.may_run(n) && s.judgement_due(now)) {
                        state.judging = true;
                        self.judge(runtime.handle(), name, state.job.clone(), judged_tx.clone());
                    }
                }
            }
        }
        for state in states.values().filter(|s| s.running) {
            state
                .cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        drop(runtime);
        Ok(stats)
    }

    fn launch(
        &self,
        runtime: &tokio::runtime::Handle,
        name: &str,
        job: Arc<dyn Job>,
        done: mpsc::UnboundedSender<Finished>,
        cancelled: Arc<AtomicBool>,
    ) {
        tracing::info!(job = name, "job run started");
        let (ctx, models) = (self.ctx.clone(), self.models.clone());
        let flag = cancelled.clone();
        let mut handle =
            runtime.spawn(async move { run_once_cancellable(job, &ctx, &models, &flag).await });
        let timeout = Duration::from_secs(self.config.timeout_secs);
        let name = name.to_string();
        let started = Instant::now();
        tokio::spawn(async move {
            let (outcome, timed_out) = match tokio::time::timeout(timeout, &mut handle).await {
                Ok(joined) => (flatten(joined), false),
                Err(_) => {
                    cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(job = %name, timeout_secs = timeout.as_secs(), "job run exceeded its time budget; cancelled, it will publish nothing");
                    // The slot stays taken until the run really ends.
                    let _ = (&mut handle).await;
                    (Err(PipelineError::Cancelled), true)
                }
            };
            let _ = done.send(Finished {
                job: name,
                outcome,
                timed_out,
                duration: started.elapsed(),
            });
        });
    }

    /// Judges the served version of `job` live, off the scheduling loop.
    fn judge(
        &self,
        runtime: &tokio::runtime::Handle,
        name: &str,
        job: Arc<dyn Job>,
        done: mpsc::UnboundedSender<Judged>,
    ) {
        let (ctx, models) = (self.ctx.clone(), self.models.clone());
        let timeout = Duration::from_secs(self.config.timeout_secs);
        let name = name.to_string();
        let handle = runtime.spawn(async move {
            tokio::time::timeout(
                timeout,
                judge_live(job.as_ref(), &ctx, &models, dcpilot_info_core::now_ms()),
            )
            .await
            .unwrap_or(Err(PipelineError::Cancelled))
        });
        // Awaited apart from the work, so a panic in it still reports back (and the job's
        // judgement is not stuck "in flight" for ever).
        tokio::spawn(async move {
            let _ = done.send(Judged {
                job: name,
                outcome: flatten(handle.await),
            });
        });
    }

    fn settle(
        &self,
        states: &mut BTreeMap<String, JobState>,
        stats: &mut JobRunnerStats,
        finished: Finished,
    ) {
        let Some(state) = states.get_mut(&finished.job) else {
            return;
        };
        state.running = false;
        let job = finished.job.as_str();
        let outcome = match (&finished.outcome, finished.timed_out) {
            (_, true) => JobRunOutcome::Timeout,
            (Ok(r), _) if r.published_version.is_some() => JobRunOutcome::Published,
            (Ok(_), _) => JobRunOutcome::Rejected,
            (Err(PipelineError::Panicked(_)), _) => JobRunOutcome::Panic,
            (Err(_), _) => JobRunOutcome::Error,
        };
        JobRunFinished {
            job,
            outcome,
            duration: finished.duration,
            report: finished.outcome.as_ref().ok(),
            error: finished.outcome.as_ref().err(),
        }
        .emit();
        let entry = stats.runs.entry(finished.job.clone()).or_default();
        match &finished.outcome {
            Ok(report) => {
                entry.succeeded += 1;
                entry.last_report = Some(report.clone());
                state.failures = 0;
                state.not_before = Instant::now();
            }
            Err(e) => {
                entry.failed += 1;
                state.failures += 1;
                let max = Duration::from_secs(self.config.backoff_max_secs);
                // Fenced at publish, or cancelled because the lease was lost.
                let fenced = matches!(
                    e,
                    PipelineError::InfoCore(dcpilot_info_core::InfoCoreError::Fenced { .. })
                ) || (matches!(e, PipelineError::Cancelled) && !finished.timed_out);
                let pause = if fenced {
                    // Not the job's fault: whoever holds the lease now runs it.
                    Duration::ZERO
                } else if e.is_retryable() && !finished.timed_out {
                    let initial = Duration::from_secs(self.config.backoff_initial_secs);
                    initial
                        .saturating_mul(1u32 << (state.failures - 1).min(20))
                        .min(max)
                } else {
                    max
                };
                state.not_before = Instant::now() + pause;
                tracing::warn!(
                    job,
                    failures = state.failures,
                    backoff_secs = pause.as_secs(),
                    "job backs off"
                );
            }
        }
    }
}

fn flatten<T>(
    joined: std::result::Result<std::result::Result<T, PipelineError>, tokio::task::JoinError>,
) -> std::result::Result<T, PipelineError> {
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => Err(PipelineError::Panicked(e.to_string())),
        Err(e) => Err(PipelineError::Panicked(format!("the run was lost: {e}"))),
    }
}

/// Per job, what the runner did.
#[derive(Debug, Default, Clone)]
pub struct JobRunnerStats {
    /// By job name.
    pub runs: BTreeMap<String, JobRunCounts>,
}

/// One job's runs.
#[derive(Debug, Default, Clone)]
pub struct JobRunCounts {
    /// Runs that completed (published or rejected by the promotion rule).
    pub succeeded: u64,
    /// Runs that failed, panicked or timed out.
    pub failed: u64,
    /// The last completed run's report.
    pub last_report: Option<RunReport>,
    /// The last live judgement's report.
    pub last_live: Option<dcpilot_pipelines::LiveReport>,
}

/// The jobs' runtime, shut down without waiting whenever the runner ends — also when its
/// future is dropped inside another runtime (a start-up failure elsewhere), where dropping
/// a `Runtime` the ordinary way panics ("Cannot drop a runtime in a context where blocking
/// is not allowed"). Jobs stuck in their own code cannot be stopped; nobody waits for them.
struct OwnRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl OwnRuntime {
    fn new(runtime: tokio::runtime::Runtime) -> Self {
        Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        }
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
