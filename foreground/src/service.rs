//! The foreground as one library service: the Information Core (followed from
//! `dcpilot.models`, or the data directory's store watched for changes), the landscape
//! (followed from `dcpilot.landscape`, or a file), and the HTTP API. The binary starts it;
//! `dcpilot run` points it at the background service's brokers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dcpilot_info_core::replication::Follower;
use dcpilot_info_core::{InfoCore, MemoryStorage};

use crate::autopilot::actuate::{Actuator, KafkaActuator, KubectlActuator};
use crate::autopilot::live::AutopilotLoop;
use crate::error::ForegroundError;
use crate::follow::LandscapeFollower;
use crate::server::{Foreground, LandscapeDocument};
use crate::{ForegroundConfig, Landscape};

/// How many tasks a runtime thread runs between looks at the sockets (Tokio's default is
/// 61). The API's workers wake a task for every answer, so the run queue is rarely empty
/// and with the default a new request could sit unread — its budget not yet started, its
/// refusal not yet sent — for dozens of answers.
pub const EVENT_INTERVAL: u32 = 2;

/// File in the data directory holding the API's bound address.
pub const ADDRESS_FILE: &str = dcpilot_schemas::names::data_dir::FOREGROUND_ADDRESS_FILE;

/// A started foreground: listening, following or watching its sources.
pub struct ForegroundService {
    foreground: Arc<Foreground>,
    models: Arc<InfoCore>,
    listener: tokio::net::TcpListener,
    bound: SocketAddr,
    following: bool,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Kept alive while serving: dropping it stops the notifications.
    _watcher: Option<notify::RecommendedWatcher>,
}

fn read_landscape(path: &Path) -> Result<Landscape, ForegroundError> {
    let fail = |reason: String| ForegroundError::LandscapeFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let doc: LandscapeDocument =
        serde_json::from_str(&text).map_err(|e| fail(format!("not a landscape document: {e}")))?;
    doc.build().map_err(|e| fail(e.to_string()))
}

impl ForegroundService {
    /// Checks `config`, opens or follows the models and the landscape, and binds the API.
    /// Needs a Tokio runtime.
    pub async fn start(data_dir: &Path, config: ForegroundConfig) -> Result<Self, ForegroundError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(crate::config::ConfigError {
                file: "<configuration>".into(),
                problems,
            }
            .into());
        }
        let landscape = match &config.sources.landscape_file {
            Some(path) => read_landscape(path)?,
            None => Landscape::default(),
        };
        let following = config.sources.brokers.is_some();
        // A following replica rebuilds its models from the compacted topic on every start;
        // a standalone one serves the data directory's store (written by `dcpilot
        // background` or `jobs run-once`), re-read when a file there changes.
        let models_dir = dcpilot_schemas::names::data_dir::models(data_dir);
        let models = Arc::new(if following {
            InfoCore::open(Arc::new(MemoryStorage::default()), 5)?
        } else {
            InfoCore::open_dir(&models_dir)?
        });
        let handle = dcpilot_runtime::prometheus::metrics_handle(&[]);
        crate::server::describe_metrics();
        let foreground = Foreground::with_metrics(
            config.clone(),
            Arc::clone(&models),
            landscape,
            following,
            Arc::new(move || handle.render()),
        );
        foreground.prepare_in_background();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut watcher = None;
        if let Some(brokers) = &config.sources.brokers {
            let s = &config.sources;
            let follower = Follower::with_properties(
                brokers,
                &s.client,
                &s.models_topic,
                &s.replica,
                Arc::clone(&models),
            )?;
            let flag = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                if let Err(e) = follower.run(|| flag.load(Ordering::Relaxed)) {
                    tracing::error!(error = %e, "model follower stopped");
                }
            }));
            let mut landscape = LandscapeFollower::new(brokers, s, Arc::clone(&foreground))
                .map_err(|source| ForegroundError::Kafka {
                    role: "landscape consumer",
                    source,
                })?;
            let flag = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                landscape.run(|| flag.load(Ordering::Relaxed));
            }));
        } else {
            let (w, thread) = watch_models(&models_dir, Arc::clone(&models), Arc::clone(&stop))?;
            watcher = Some(w);
            threads.push(thread);
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ForegroundError::Listen {
                addr: config.listen,
                hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                    " (another foreground running? pick another with --listen; port 0 takes any free one)"
                } else {
                    ""
                },
                source,
            })?;
        let bound = listener.local_addr().map_err(ForegroundError::Serve)?;
        if config.autopilot.enabled {
            let actuators = actuators(&config)?;
            if actuators.is_empty() {
                tracing::warn!(
                    "the autopilot has no actuator (no brokers for actions_topic, no kubernetes_dir): plans are only reported"
                );
            }
            let intent_loop = AutopilotLoop::new(config.autopilot.clone(), actuators);
            threads.push(spawn_intent_loop(
                intent_loop,
                Arc::clone(&foreground),
                Duration::from_secs(config.autopilot.tick_secs),
                Arc::clone(&stop),
            ));
        }
        let dir_error = |source| ForegroundError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(dir_error)?;
        // Written whole or not at all: a script waiting for the file never reads it half-written.
        let tmp = data_dir.join(format!("{ADDRESS_FILE}.tmp"));
        std::fs::write(&tmp, bound.to_string()).map_err(dir_error)?;
        std::fs::rename(&tmp, data_dir.join(ADDRESS_FILE)).map_err(dir_error)?;
        Ok(Self {
            foreground,
            models,
            listener,
            bound,
            following,
            stop,
            threads,
            _watcher: watcher,
        })
    }

    /// Where the API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    /// Whether models and landscape come from the brokers.
    pub fn following(&self) -> bool {
        self.following
    }

    /// The served state (landscape, intents, models).
    pub fn foreground(&self) -> &Arc<Foreground> {
        &self.foreground
    }

    /// Models served now.
    pub fn models(&self) -> &Arc<InfoCore> {
        &self.models
    }

    /// Serves the API until `shutdown` resolves, then stops following.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ForegroundError> {
        let served = axum::serve(
            crate::server::without_nagle(self.listener),
            self.foreground.router(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        served.map_err(ForegroundError::Serve)
    }
}

/// Re-reads the Information Core when a file under `dir` changes (another process
/// published or rolled back), a short while after the last change so a publish's temp
/// file and link come as one reload.
fn watch_models(
    dir: &Path,
    models: Arc<InfoCore>,
    stop: Arc<AtomicBool>,
) -> Result<(notify::RecommendedWatcher, std::thread::JoinHandle<()>), ForegroundError> {
    use notify::Watcher as _;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| watch_error(dir, e))?;
    watcher
        .watch(dir, notify::RecursiveMode::Recursive)
        .map_err(|e| watch_error(dir, e))?;
    let thread = std::thread::spawn(move || {
        const SETTLE: Duration = Duration::from_millis(50);
        while !stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(()) => {
                    // Let the burst finish, then reload once.
                    while rx.recv_timeout(SETTLE).is_ok() {}
                    if let Err(e) = models.reload() {
                        tracing::warn!(error = %e, "re-reading the Information Core failed");
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    Ok((watcher, thread))
}

fn watch_error(dir: &Path, e: notify::Error) -> ForegroundError {
    ForegroundError::DataDir {
        path: PathBuf::from(dir),
        source: std::io::Error::other(format!("watching for model changes: {e}")),
    }
}

/// The actuators `config` asks for: plans on the actions topic (with brokers), Kubernetes
/// requests in a directory (and applied with kubectl, if set).
fn actuators(config: &ForegroundConfig) -> Result<Vec<Box<dyn Actuator>>, ForegroundError> {
    let a = &config.autopilot;
    let mut actuators: Vec<Box<dyn Actuator>> = Vec::new();
    if let (Some(brokers), false) = (&config.sources.brokers, a.actions_topic.is_empty()) {
        let kafka = KafkaActuator::new(
            brokers,
            &config.sources.client,
            &a.actions_topic,
            &config.sources.utilization_topic,
        )
        .map_err(|e| ForegroundError::Actuator(e.to_string()))?;
        actuators.push(Box::new(kafka));
    }
    if let Some(dir) = &a.kubernetes_dir {
        actuators.push(Box::new(KubectlActuator {
            dir: dir.clone(),
            kubectl: a.kubectl.clone(),
            kubeconfig: a.kubeconfig.clone(),
        }));
    }
    Ok(actuators)
}

/// Ticks `intent_loop` every `every` until `stop` (checked five times a second).
fn spawn_intent_loop(
    mut intent_loop: AutopilotLoop,
    foreground: Arc<Foreground>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = std::time::Instant::now();
            if now >= next {
                // A tick that panics is logged and the loop goes on (its status says when
                // each target was last judged).
                let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    foreground.autopilot_tick(&mut intent_loop, dcpilot_info_core::now_ms());
                }));
                if tick.is_err() {
                    tracing::error!("an autopilot tick panicked; the loop goes on");
                }
                // After a slow tick, the next one is a whole period on, not a burst.
                next = (next + every).max(std::time::Instant::now());
            }
            std::thread::sleep(Duration::from_millis(200).min(every));
        }
    })
}
