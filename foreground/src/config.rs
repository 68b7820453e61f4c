//! `dcpilot foreground` configuration: embedded defaults, overlaid by a TOML file. Unknown
//! keys are errors; every error names the file and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::planner::PlannerConfig;

/// The foreground process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForegroundConfig {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Bearer token required by mutating endpoints (intents, landscape events, rollback);
    /// unset: they are open (fine on loopback, not elsewhere).
    pub auth_token: Option<String>,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Where models and landscape come from.
    pub sources: SourcesConfig,
    /// Planner settings.
    pub planner: PlannerConfig,
}

/// Kafka sources; without `brokers` the foreground runs standalone on the Information
/// Core in the data directory and the landscape it is sent over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// Bootstrap servers; unset: standalone.
    pub brokers: Option<String>,
    /// Topic of model changes to follow.
    pub models_topic: String,
    /// Topic of landscape events to follow.
    pub landscape_topic: String,
    /// Name of this replica (its own consumer groups).
    pub replica: String,
    /// A landscape to start from: JSON `{"hosts": [...], "instances": [...]}`.
    pub landscape_file: Option<PathBuf>,
    /// Telemetry topic carrying hosts' measured CPU use (any format `dcpilot decode`
    /// reads); empty: no measurements, instances count their requests only.
    pub utilization_topic: String,
    /// The metric giving a host's busy cores; the sample's `host` (else its `entity`)
    /// names the host.
    pub utilization_metric: String,
}

impl Default for ForegroundConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            auth_token: None,
            max_body_bytes: 4 << 20,
            sources: SourcesConfig::default(),
            planner: PlannerConfig::default(),
        }
    }
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            models_topic: "dcpilot.models".into(),
            landscape_topic: "dcpilot.landscape".into(),
            replica: "foreground-0".into(),
            landscape_file: None,
            utilization_topic: "dcpilot.telemetry".into(),
            utilization_metric: "host_cpu_cores_used".into(),
        }
    }
}

/// A configuration problem: the file and one line per problem, each naming its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration in {file}:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    /// The file (or `<defaults>`).
    pub file: String,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl ForegroundConfig {
    /// Defaults overlaid by `file`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let label = path.display().to_string();
        let fail = |problem: String| ConfigError {
            file: label.clone(),
            problems: vec![problem],
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(|problems| ConfigError {
            file: label.clone(),
            problems,
        })
    }

    /// Parses TOML text; problems name their keys.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let de = toml::Deserializer::new(text);
        let config: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| vec![format!("{}: {}", e.path(), e.inner().message())])?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Cross-field checks.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let b = self.planner.budget_ms;
        if !(b.is_finite() && b > 0.0 && b <= 60_000.0) {
            p.push(format!("planner.budget_ms: must be in (0, 60000], got {b}"));
        }
        if self.planner.top == 0 {
            p.push("planner.top: must be at least 1".into());
        }
        let w = &self.planner.weights;
        for (key, v) in [
            ("slo_risk", w.slo_risk),
            ("headroom", w.headroom),
            ("interference", w.interference),
            ("consolidation", w.consolidation),
            ("migration", w.migration),
            ("kill", w.kill),
            ("scale", w.scale),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                p.push(format!(
                    "planner.weights.{key}: must be a number ≥ 0, got {v}"
                ));
            }
        }
        if self.max_body_bytes < 1024 {
            p.push(format!(
                "max_body_bytes: must be at least 1024, got {}",
                self.max_body_bytes
            ));
        }
        if self.auth_token.as_deref().is_some_and(str::is_empty) {
            p.push("auth_token: empty; leave it out to disable authentication".into());
        }
        for (key, topic) in [
            ("sources.models_topic", &self.sources.models_topic),
            ("sources.landscape_topic", &self.sources.landscape_topic),
        ] {
            if topic.is_empty() {
                p.push(format!("{key}: must not be empty"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_equals_the_defaults() {
        let text = include_str!("../../config/foreground.toml");
        assert_eq!(
            ForegroundConfig::parse(text),
            Ok(ForegroundConfig::default())
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = ForegroundConfig::parse("[planner]\nbudget_ms = \"fast\"\n").expect_err("type");
        assert!(err[0].starts_with("planner.budget_ms"), "{err:?}");
        let err = ForegroundConfig::parse("[planner.weights]\nkill = -1.0\n").expect_err("range");
        assert!(err[0].starts_with("planner.weights.kill"), "{err:?}");
        let err = ForegroundConfig::parse("listen_on = 1\n").expect_err("unknown");
        assert!(err[0].contains("listen_on"), "{err:?}");
        let err = ForegroundConfig::load(Some(Path::new("/nonexistent/fg.toml"))).expect_err("io");
        assert_eq!(err.file, "/nonexistent/fg.toml");
    }
}
