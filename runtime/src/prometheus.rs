//! The process-wide Prometheus recorder every dcpilot service renders `/metrics` from: one
//! per process, installed by whichever service starts first.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once; `buckets` apply only to that first call: histogram names
/// and their bucket bounds, else summaries) and returns its handle.
pub fn metrics_handle(buckets: &[(&str, &[f64])]) -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            for (name, bounds) in buckets.iter().filter(|(_, b)| !b.is_empty()) {
                // Only empty bounds are refused, and those are filtered out.
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).to_string()), bounds)
                    .unwrap_or_else(|_| PrometheusBuilder::new());
            }
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
