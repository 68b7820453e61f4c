//! The process's HTTP endpoint: Prometheus text on `/metrics`, liveness on `/healthz`.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{BackgroundError, Result};
use crate::events::names;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(names::BATCH_LATENCY.to_string()),
                    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding applications): then ours
            // only renders what it sees, which is nothing; say so.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Routes of the metrics endpoint, to merge into other routers.
pub fn metrics_router() -> Router {
    let handle = metrics_handle();
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| std::future::ready("ok\n")))
}

/// Binds `addr` and serves [`metrics_router`] until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(BackgroundError::io(addr.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(BackgroundError::io(addr.to_string()))?;
    tracing::info!(%bound, "serving /metrics and /healthz");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics_router())
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    Ok(bound)
}
