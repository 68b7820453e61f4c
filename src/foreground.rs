//! `dcpilot foreground`: the placement API, standalone or following the brokers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dcpilot_foreground::follow::LandscapeFollower;
use dcpilot_foreground::{Foreground, ForegroundConfig, Landscape, LandscapeDocument};
use dcpilot_info_core::replication::Follower;
use dcpilot_info_core::{InfoCore, MemoryStorage};

/// Arguments of `dcpilot foreground`.
#[derive(clap::Args)]
pub struct ForegroundArgs {
    /// TOML configuration (see config/foreground.toml); defaults are embedded.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the HTTP API (overrides `listen`); port 0 picks a free one, written to
    /// DATA_DIR/foreground.addr.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Bootstrap servers to follow dcpilot.models and dcpilot.landscape (overrides
    /// `sources.brokers`); without: standalone on the Information Core in --data-dir.
    #[arg(long)]
    brokers: Option<String>,
    /// A landscape to start from: JSON {"hosts": [...], "instances": [...]}.
    #[arg(long)]
    landscape: Option<PathBuf>,
    /// Bearer token for mutating endpoints (overrides `auth_token`).
    #[arg(long, env = "DCPILOT_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
}

fn read_landscape(path: &Path) -> Result<Landscape> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the landscape {}", path.display()))?;
    let doc: LandscapeDocument = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a landscape document", path.display()))?;
    doc.build()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs the API until SIGINT/SIGTERM.
pub async fn run(data_dir: &Path, args: ForegroundArgs) -> Result<ExitCode> {
    let mut config = ForegroundConfig::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(brokers) = args.brokers {
        config.sources.brokers = Some(brokers);
    }
    if let Some(path) = args.landscape {
        config.sources.landscape_file = Some(path);
    }
    if let Some(token) = args.auth_token {
        config.auth_token = Some(token);
    }
    serve(data_dir, config).await
}

/// Serves `config` until SIGINT/SIGTERM (also the foreground half of `dcpilot run`).
pub async fn serve(data_dir: &Path, config: ForegroundConfig) -> Result<ExitCode> {
    let problems = config.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid configuration:\n{}", problems.join("\n"));
    }
    let landscape = match &config.sources.landscape_file {
        Some(path) => read_landscape(path)?,
        None => Landscape::default(),
    };
    let following = config.sources.brokers.is_some();
    // A following replica rebuilds its models from the compacted topic on every start; a
    // standalone one serves the data directory's store (written by `dcpilot background`
    // or `jobs run-once`) and re-reads it now and then.
    let models = Arc::new(if following {
        InfoCore::open(Arc::new(MemoryStorage::default()), 5)?
    } else {
        let dir = crate::models::store_dir(data_dir);
        InfoCore::open_dir(&dir)
            .with_context(|| format!("opening the Information Core in {}", dir.display()))?
    });
    let handle = dcpilot_background::http::metrics_handle();
    let fg = Foreground::with_metrics(
        config.clone(),
        Arc::clone(&models),
        landscape,
        following,
        Arc::new(move || handle.render()),
    );

    fg.prepare_in_background();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    if let Some(brokers) = &config.sources.brokers {
        let s = &config.sources;
        let follower = Follower::new(brokers, &s.models_topic, &s.replica, Arc::clone(&models))?;
        let flag = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            if let Err(e) = follower.run(|| flag.load(Ordering::Relaxed)) {
                tracing::error!(error = %e, "model follower stopped");
            }
        }));
        let mut landscape = LandscapeFollower::new(brokers, s, Arc::clone(&fg))
            .context("following the landscape topic")?;
        let flag = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            landscape.run(|| flag.load(Ordering::Relaxed));
        }));
    } else {
        let models = Arc::clone(&models);
        let flag = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                if let Err(e) = models.reload() {
                    tracing::warn!(error = %e, "re-reading the Information Core failed");
                }
            }
        }));
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr()?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(data_dir.join("foreground.addr"), bound.to_string())
        .with_context(|| format!("writing {}", data_dir.join("foreground.addr").display()))?;
    eprintln!(
        "dcpilot foreground listening on http://{bound} ({}; {} models, {} hosts)",
        if following {
            "following the brokers"
        } else {
            "standalone"
        },
        models.snapshot().len(),
        fg.landscape().hosts().len()
    );
    axum::serve(listener, fg.router())
        .with_graceful_shutdown(crate::termination())
        .await
        .context("serving the API")?;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(ExitCode::SUCCESS)
}
