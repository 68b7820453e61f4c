//! What is stored: model records and rollback pointers, and their checksummed file format.
//!
//! A stored file is one header line, `dcpilot-info-core <format_version> <crc32 of the
//! body, hex>`, then the JSON body. The header is checked before the body is parsed, so a
//! torn or bit-flipped file is detected, and a file of an unknown format version is named
//! as such instead of being misread.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{InfoCoreError, Result};
use crate::model::Model;

/// Version of the stored format (envelope, record fields, and smartcore's serde layout of
/// the estimators, which `PreparedModel` reads). Bump it when any of them changes.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &str = "dcpilot-info-core";

/// The event-time range a model was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// First sample, ms since the epoch.
    pub start_ms: i64,
    /// Last sample, ms since the epoch.
    pub end_ms: i64,
}

/// An error that may be undefined (NaN) or infinite: JSON has no such numbers, so they
/// are stored as `null` and read back as NaN.
pub(crate) mod maybe_number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Holdout error of the model next to the naive baseline's (lower is better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutMetrics {
    /// `mae`, `mape`, `rmse` or `r2` (for `r2`, errors are stored as 1 - R²).
    pub metric: String,
    /// The model's error on the holdout (NaN when undefined).
    #[serde(with = "maybe_number")]
    pub model_error: f64,
    /// The better naive baseline's error on the same holdout (NaN when undefined).
    #[serde(with = "maybe_number")]
    pub baseline_error: f64,
    /// Which baseline that was (e.g. `last_value`).
    pub baseline: String,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The producing job.
    pub job: String,
    /// Hash of the job's spec.
    pub spec_hash: String,
    /// The job lease it was published under (scaled-out background only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The ingest replicas whose tables it was trained on, each with the Kafka offsets it
    /// had stored (scaled-out background only): shows that every partition contributed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<LineageInput>,
}

impl Lineage {
    /// The lineage of a model `job` produced from a spec hashing to `spec_hash`.
    pub fn of_job(job: impl Into<String>, spec_hash: impl Into<String>) -> Self {
        Self {
            job: job.into(),
            spec_hash: spec_hash.into(),
            lease: None,
            inputs: Vec::new(),
        }
    }
}

/// A job lease: who may publish a job's models, and its fencing epoch (the offset of the
/// owner's claim in the jobs topic, so a later owner always has a larger one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owning replica.
    pub owner: String,
    /// The fencing epoch.
    pub epoch: u64,
}

/// One ingest replica's share of a training input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageInput {
    /// The replica.
    pub replica: String,
    /// Per `topic/partition`, the next offset after what the replica had stored.
    pub offsets: BTreeMap<String, i64>,
}

/// What a job hands to the store; the store assigns version, sequence and checksum.
#[derive(Debug)]
pub struct ModelDraft {
    /// Model name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Ordered feature names: a row to predict has one value per feature, in this order.
    pub features: Vec<String>,
    /// What the model predicts.
    pub target: String,
    /// Training data range.
    pub window: TrainingWindow,
    /// Training rows.
    pub rows: u64,
    /// Holdout metrics.
    pub metrics: HoldoutMetrics,
    /// Producing job.
    pub lineage: Lineage,
    /// The model.
    pub model: Model,
}

/// One immutable version of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Model name.
    pub name: String,
    /// Version, from 1, increasing by one per publish.
    pub version: u64,
    /// Position in the model's history of publishes and rollbacks.
    pub seq: u64,
    /// Kind of estimator (`random_forest`, `quantile_table`, ...).
    pub kind: String,
    /// Ordered feature names.
    pub features: Vec<String>,
    /// What it predicts.
    pub target: String,
    /// Training data range.
    pub window: TrainingWindow,
    /// Training rows.
    pub rows: u64,
    /// Holdout metrics.
    pub metrics: HoldoutMetrics,
    /// Producing job.
    pub lineage: Lineage,
    /// Publication time, ms since the epoch.
    pub created_at_ms: i64,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// CRC-32 of `model`'s JSON text.
    pub checksum: u32,
    /// The serialized [`Model`].
    pub model: Box<RawValue>,
}

impl ModelRecord {
    /// Builds the record for version `version` at position `seq`.
    pub fn from_draft(
        draft: ModelDraft,
        version: u64,
        seq: u64,
        created_at_ms: i64,
    ) -> Result<Self> {
        let kind = draft.model.kind().to_string();
        let text =
            serde_json::to_string(&draft.model).map_err(|e| InfoCoreError::InvalidModel {
                reason: format!("serializing: {e}"),
            })?;
        let model = RawValue::from_string(text).map_err(|e| InfoCoreError::InvalidModel {
            reason: e.to_string(),
        })?;
        Ok(Self {
            name: draft.name,
            version,
            seq,
            kind,
            features: draft.features,
            target: draft.target,
            window: draft.window,
            rows: draft.rows,
            metrics: draft.metrics,
            lineage: draft.lineage,
            created_at_ms,
            format_version: FORMAT_VERSION,
            checksum: crc32fast::hash(model.get().as_bytes()),
            model,
        })
    }

    /// Deserializes the model (not on any request path: snapshots do it once).
    pub fn decode_model(&self) -> Result<Model> {
        serde_json::from_str(self.model.get()).map_err(|e| InfoCoreError::InvalidModel {
            reason: format!("{} v{}: {e}", self.name, self.version),
        })
    }
}

/// A rollback: from `seq` on, the model's current version is `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// Model name.
    pub name: String,
    /// Position in the model's history.
    pub seq: u64,
    /// The version served from here on.
    pub version: u64,
    /// Why (free text from the operator).
    pub reason: String,
    /// When, ms since the epoch.
    pub created_at_ms: i64,
}

/// Frames `body` (JSON) with the header.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| InfoCoreError::InvalidModel {
        reason: format!("serializing: {e}"),
    })?;
    let mut out = format!("{MAGIC} {FORMAT_VERSION} {:08x}\n", crc32fast::hash(&body)).into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks the header and checksum of a stored file and parses its body. `path` names the
/// file in errors.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], path: &str) -> Result<T> {
    let corrupt = |reason: String| InfoCoreError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header line (truncated?)".into()))?;
    let header =
        std::str::from_utf8(&bytes[..newline]).map_err(|_| corrupt("header is not text".into()))?;
    let mut parts = header.split(' ');
    if parts.next() != Some(MAGIC) {
        return Err(corrupt("not an Information Core file".into()));
    }
    let version: u32 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("header without a format version".into()))?;
    if version != FORMAT_VERSION {
        return Err(InfoCoreError::UnsupportedFormat {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let expected = parts
        .next()
        .and_then(|c| u32::from_str_radix(c, 16).ok())
        .ok_or_else(|| corrupt("header without a checksum".into()))?;
    let body = &bytes[newline + 1..];
    let actual = crc32fast::hash(body);
    if actual != expected {
        return Err(corrupt(format!(
            "checksum {actual:08x} != {expected:08x} ({} body bytes; torn write or bit rot)",
            body.len()
        )));
    }
    serde_json::from_slice(body).map_err(|e| corrupt(format!("body: {e}")))
}

/// Verifies a decoded record's own model checksum.
pub fn verify_record(record: &ModelRecord, path: &str) -> Result<()> {
    let actual = crc32fast::hash(record.model.get().as_bytes());
    if actual != record.checksum {
        return Err(InfoCoreError::Corrupt {
            path: path.to_string(),
            reason: format!("model checksum {actual:08x} != {:08x}", record.checksum),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_holdout_errors_are_stored_and_read_back() {
        let metrics = HoldoutMetrics {
            metric: "r2".into(),
            model_error: f64::NAN,
            baseline_error: f64::INFINITY,
            baseline: "none".into(),
        };
        let text = serde_json::to_string(&metrics).expect("json");
        assert!(text.contains("\"model_error\":null"), "{text}");
        let back: HoldoutMetrics = serde_json::from_str(&text).expect("read back");
        assert!(back.model_error.is_nan() && back.baseline_error.is_nan());
        let finite = r#"{"metric":"mae","model_error":1.5,"baseline_error":2.0,"baseline":"b"}"#;
        let back: HoldoutMetrics = serde_json::from_str(finite).expect("older files");
        assert_eq!((back.model_error, back.baseline_error), (1.5, 2.0));
    }
}
