//! A landscape node annotated with its telemetry: the samples whose `entity`, `host` or
//! `workload` is one of the node's names (its id, display name and aliases — so a host's IP
//! and its name resolve to the same node), per entity and metric: the latest value and a
//! summary over a window ending at the newest such sample (or at a given time).

use serde::{Deserialize, Serialize};

use crate::error::{BackgroundError, Result};
use crate::TelemetryStore;

/// One entity's metric, summarised over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The entity measured (the node itself, or something on it or of it).
    pub entity: String,
    /// The metric.
    pub metric: String,
    /// The newest value.
    pub latest: f64,
    /// When it was measured (Unix ms).
    pub latest_ms: i64,
    /// Mean over the window.
    pub mean: f64,
    /// Smallest value in the window.
    pub min: f64,
    /// Largest value in the window.
    pub max: f64,
    /// Samples in the window.
    pub samples: i64,
}

fn quoted(names: &[String]) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    list.join(", ")
}

fn timestamp(ms: i64) -> String {
    format!("arrow_cast({ms}, 'Timestamp(Millisecond, Some(\"UTC\"))')")
}

/// The telemetry of a node known by `names`, over `window_ms` ending at `at_ms` (default:
/// its newest sample); empty when nothing names it.
pub async fn node_telemetry(
    store: &TelemetryStore,
    names: &[String],
    window_ms: i64,
    at_ms: Option<i64>,
) -> Result<Vec<MetricSummary>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let list = quoted(names);
    let matches = format!("(entity IN ({list}) OR host IN ({list}) OR workload IN ({list}))");
    let end = match at_ms {
        Some(t) => t,
        None => {
            let rows = rows::<Newest>(
                store,
                &format!("SELECT CAST(max(ts) AS BIGINT) AS newest FROM telemetry WHERE {matches}"),
            )
            .await?;
            match rows.first().and_then(|r| r.newest) {
                Some(t) => t,
                None => return Ok(Vec::new()),
            }
        }
    };
    let sql = format!(
        "SELECT entity, metric, last_value(value ORDER BY ts) AS latest, \
         CAST(max(ts) AS BIGINT) AS latest_ms, avg(value) AS mean, min(value) AS min, \
         max(value) AS max, count(*) AS samples FROM telemetry \
         WHERE {matches} AND ts > {} AND ts <= {} GROUP BY entity, metric ORDER BY entity, metric",
        timestamp(end.saturating_sub(window_ms)),
        timestamp(end)
    );
    rows::<MetricSummary>(store, &sql).await
}

#[derive(Deserialize)]
struct Newest {
    newest: Option<i64>,
}

async fn rows<T: serde::de::DeserializeOwned>(store: &TelemetryStore, sql: &str) -> Result<Vec<T>> {
    let batches = store.sql(sql).await?;
    let text = crate::json_lines(&batches)?;
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| BackgroundError::Internal(format!("telemetry summary row {l}: {e}")))
        })
        .collect()
}
