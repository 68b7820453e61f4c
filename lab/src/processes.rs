//! The services run as a process until SIGINT or SIGTERM: the background, the foreground,
//! or both in one process (`dcpilot run`), wired through handles.

use std::path::Path;

use dcpilot_background::{BackgroundConfig, BackgroundOutcome, BackgroundService};
use dcpilot_foreground::{ForegroundConfig, ForegroundService};
use tokio::sync::watch;

use crate::error::{LabError, Result};

/// The foreground alone, until a signal.
pub async fn foreground(data_dir: &Path, config: ForegroundConfig) -> Result<()> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(stop_on_signal(stop));
    serve(data_dir, config, stopped).await
}

/// `dcpilot run`: the background and the foreground in one process. The foreground follows
/// the background's brokers (the embedded one when none is configured), so it serves the
/// models the jobs publish and the landscape the topic carries.
pub async fn both(data_dir: &Path, file: Option<&Path>) -> Result<()> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (label, mut table) = match file {
        Some(path) => (
            path.display().to_string(),
            BackgroundConfig::read_table(path)?,
        ),
        None => ("<defaults>".to_string(), toml::Table::new()),
    };
    let fg_section = table.remove("foreground");
    let mut fg = dcpilot_foreground::ForegroundConfig::from_section(&label, fg_section, &env)?;
    let config = BackgroundConfig::from_table(&label, table, &env)?;
    let client = config.kafka.client.clone();
    let (stop, stopped) = watch::channel(false);
    let service = BackgroundService::start(Some(data_dir), config, stopped.clone()).await?;
    announce(data_dir, &service);
    fg.sources.brokers = Some(service.brokers().to_string());
    if fg.sources.client.is_empty() {
        fg.sources.client = client;
    }
    tokio::spawn(stop_on_signal(stop));
    let foreground = serve(data_dir, fg, stopped);
    let background = async { Ok::<_, LabError>(service.run().await?) };
    let (outcome, ()) = tokio::try_join!(background, foreground)?;
    report_stopped(&outcome);
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Flips `stop` on SIGINT/SIGTERM.
async fn stop_on_signal(stop: watch::Sender<bool>) {
    termination().await;
    tracing::info!("shutting down: storing and committing the current batch");
    let _ = stop.send(true);
}

fn announce(data_dir: &Path, service: &BackgroundService) {
    if service.embedded() {
        eprintln!(
            "embedded broker at {} (also in {})",
            service.brokers(),
            data_dir
                .join(dcpilot_background::broker::BROKER_ADDRESS_FILE)
                .display()
        );
    }
    if let Some(addr) = service.metrics_addr() {
        eprintln!("metrics at http://{addr}/metrics, readiness at http://{addr}/readyz");
    }
}

fn report_stopped(outcome: &BackgroundOutcome) {
    if let Some(jobs) = &outcome.jobs {
        for (job, r) in &jobs.runs {
            eprintln!(
                "job {job}: {} runs completed, {} failed",
                r.succeeded, r.failed
            );
        }
    }
    let stats = &outcome.ingest;
    eprintln!(
        "stopped: {} messages, {} rows stored, {} duplicates dropped, {} dead letters",
        stats.messages, stats.rows, stats.duplicates, stats.dead_letters
    );
}

/// The background alone, until a signal.
pub async fn background(data_dir: &Path, config: BackgroundConfig) -> Result<()> {
    let (stop, stopped) = watch::channel(false);
    let service = BackgroundService::start(Some(data_dir), config, stopped).await?;
    announce(data_dir, &service);
    tokio::spawn(stop_on_signal(stop));
    let outcome = service.run().await?;
    report_stopped(&outcome);
    Ok(())
}

/// Serves `config` until `stopped` flips (also the foreground half of `dcpilot run`).
async fn serve(
    data_dir: &Path,
    config: ForegroundConfig,
    mut stopped: watch::Receiver<bool>,
) -> Result<()> {
    let service = ForegroundService::start(data_dir, config).await?;
    eprintln!(
        "dcpilot foreground listening on http://{} ({}; {} models, {} hosts)",
        service.local_addr(),
        if service.following() {
            "following the brokers"
        } else {
            "standalone"
        },
        service.models().snapshot().len(),
        service.foreground().landscape().hosts().len()
    );
    service
        .run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}
