//! The process's HTTP endpoint: Prometheus text on `/metrics`, liveness on `/healthz`,
//! readiness on `/readyz` (200 when the broker answers and partitions are assigned, else
//! 503; JSON with the reasons either way).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::error::{BackgroundError, Result};
use crate::events::names;
use crate::health::{Readiness, ReadinessReport};

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    dcpilot_runtime::prometheus::metrics_handle(&[(
        names::BATCH_LATENCY,
        &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
    )])
}

/// Routes of the metrics endpoint (and `/readyz` when `status` is given), to merge into
/// other routers.
pub fn metrics_router(status: Option<Arc<Readiness>>) -> Router {
    let handle = metrics_handle();
    let router = Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| std::future::ready("ok\n")));
    match status {
        Some(status) => router.route(
            "/readyz",
            get(move || std::future::ready(readiness(status.report()))),
        ),
        None => router,
    }
}

fn readiness(report: ReadinessReport) -> (StatusCode, Json<ReadinessReport>) {
    let code = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}

/// Binds `addr` (the `http.listen` key) and serves [`metrics_router`] until `shutdown`
/// resolves.
pub async fn serve(
    addr: SocketAddr,
    status: Option<Arc<Readiness>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(BackgroundError::listen(
            "http.listen",
            addr,
            " (another dcpilot running? pick another http.listen, or remove it for no endpoint)",
        ))?;
    let bound = listener
        .local_addr()
        .map_err(BackgroundError::io(addr.to_string()))?;
    tracing::info!(%bound, "serving /metrics and /healthz");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics_router(status))
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    });
    Ok(bound)
}
