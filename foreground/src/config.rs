//! `dcpilot foreground` configuration: embedded defaults, overlaid by a TOML file, overlaid
//! by `DCPILOT__FOREGROUND__SECTION__KEY` environment variables. Unknown keys are errors;
//! every error names the file and the key.

use dcpilot_schemas::names::topics;
use std::collections::BTreeMap;
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
    /// The intent loop that acts on its own.
    pub autopilot: crate::autopilot::AutopilotConfig,
    /// The API's workers and queues.
    pub admission: crate::server::admission::AdmissionConfig,
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
    /// Name of this replica, in its logs and the names of its consumer groups (each
    /// process gets groups of its own, so replicas may share a name).
    pub replica: String,
    /// A landscape to start from: JSON `{"hosts": [...], "instances": [...]}`.
    pub landscape_file: Option<PathBuf>,
    /// Telemetry topic carrying hosts' measured CPU use (any format `dcpilot decode`
    /// reads); empty: no measurements, instances count their requests only.
    pub utilization_topic: String,
    /// The metric giving a host's busy cores; the sample's `host` (else its `entity`)
    /// names the host.
    pub utilization_metric: String,
    /// Extra librdkafka properties of every client (security, e.g. `security.protocol`,
    /// `sasl.*`, `ssl.*`); in `dcpilot run`, the background's `kafka.client` when empty.
    pub client: BTreeMap<String, String>,
}

impl Default for ForegroundConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            auth_token: None,
            max_body_bytes: 4 << 20,
            sources: SourcesConfig::default(),
            planner: PlannerConfig::default(),
            autopilot: crate::autopilot::AutopilotConfig::default(),
            admission: crate::server::admission::AdmissionConfig::default(),
        }
    }
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            models_topic: topics::MODELS.into(),
            landscape_topic: topics::LANDSCAPE.into(),
            replica: "foreground-0".into(),
            landscape_file: None,
            utilization_topic: topics::TELEMETRY.into(),
            utilization_metric: "host_cpu_cores_used".into(),
            client: BTreeMap::new(),
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
    /// Defaults overlaid by `file`, overlaid by the process's environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &env)
    }

    /// [`load`](Self::load) with an explicit environment (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let Some(path) = file else {
            return Self::build("<defaults>", toml::Table::new(), env, "");
        };
        let label = path.display().to_string();
        let fail = |problem: String| ConfigError {
            file: label.clone(),
            problems: vec![problem],
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| fail(e.to_string()))?;
        Self::build(&label, table, env, "")
    }

    /// The `[foreground]` section of a `dcpilot run` file (absent: defaults), overlaid by
    /// `DCPILOT__FOREGROUND__...` variables of `env`; problems name `foreground.KEY`.
    pub fn from_section(
        label: &str,
        section: Option<toml::Value>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let table = match section {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(ConfigError {
                    file: label.to_string(),
                    problems: vec!["foreground: must be a table".into()],
                })
            }
        };
        Self::build(label, table, env, "foreground.")
    }

    fn build(
        label: &str,
        mut table: toml::Table,
        env: &[(String, String)],
        key_prefix: &str,
    ) -> Result<Self, ConfigError> {
        use dcpilot_schemas::config_env::{describe_source, overlay_env, FOREGROUND_SECTION};
        let applied = overlay_env(&mut table, env, Some(FOREGROUND_SECTION), &[]);
        let file = describe_source(label, &applied);
        let config: Self = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| ConfigError {
                file: file.clone(),
                problems: vec![format!("{key_prefix}{}: {}", e.path(), e.inner().message())],
            },
        )?;
        let problems: Vec<String> = config
            .problems()
            .into_iter()
            .map(|p| format!("{key_prefix}{p}"))
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { file, problems })
        }
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
        if self.planner.colouring_model.trim().is_empty() {
            p.push("planner.colouring_model: must name a model".into());
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
            ("anomalous_host", w.anomalous_host),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                p.push(format!(
                    "planner.weights.{key}: must be a number ≥ 0, got {v}"
                ));
            }
        }
        p.extend(
            self.autopilot
                .problems()
                .into_iter()
                .map(|problem| format!("autopilot.{problem}")),
        );
        p.extend(self.admission.problems());
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

    #[test]
    fn environment_overrides_the_file() {
        let env = vec![
            (
                "DCPILOT__FOREGROUND__SOURCES__BROKERS".to_string(),
                "k1:9092".to_string(),
            ),
            (
                "DCPILOT__FOREGROUND__PLANNER__TOP".to_string(),
                "0".to_string(),
            ),
        ];
        let section = toml::Value::Table("[planner]\ntop = 3\n".parse().expect("toml"));
        let err = ForegroundConfig::from_section("run.toml", Some(section.clone()), &env)
            .expect_err("top = 0");
        assert!(
            err.file.contains("DCPILOT__FOREGROUND__PLANNER__TOP"),
            "{err}"
        );
        assert!(
            err.problems[0].starts_with("foreground.planner.top"),
            "{err}"
        );
        let c =
            ForegroundConfig::from_section("run.toml", Some(section), &env[..1]).expect("valid");
        assert_eq!(c.sources.brokers.as_deref(), Some("k1:9092"));
        assert_eq!(c.planner.top, 3);
    }
}
