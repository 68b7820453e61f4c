//! Intents: what each workload is promised. Accepted as they are written for Intel's
//! Intent-Driven Orchestration (IDO) planner — `kind: Intent` and `kind: KPIProfile`
//! (`apiVersion: ido.intel.com/v1alpha1`), YAML or JSON — or as dcpilot's own
//! `kind: WorkloadIntent`. Documents are kept verbatim (read back unchanged); what the
//! scorer needs is derived from them: per workload, a p99 latency objective and a priority.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What went wrong reading an intents body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntentError {
    /// Neither YAML nor JSON.
    #[error("the body is not YAML or JSON: {0}")]
    Syntax(String),
    /// A document is not one of the known kinds or misses a field.
    #[error("document {index}: {problem}")]
    Document {
        /// 1-based position in the body.
        index: usize,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// An empty body.
    #[error("the body holds no intent documents")]
    Empty,
}

/// The scorer's view of one workload's intents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct WorkloadObjectives {
    /// p99 latency objective, ms.
    pub p99_latency_ms: Option<f64>,
    /// Relative priority (IDO `spec.priority`; higher matters more), default 1.
    pub priority: f64,
    /// p99 latency without co-runners, ms (a WorkloadIntent may state it).
    pub quiet_p99_ms: Option<f64>,
    /// Requests per second the workload serves (a WorkloadIntent may state it).
    pub rps: Option<f64>,
}

/// IDO `spec` of an Intent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdoIntentSpec {
    target_ref: IdoTargetRef,
    #[serde(default)]
    priority: Option<f64>,
    objectives: Vec<IdoObjective>,
}

#[derive(Debug, Deserialize)]
struct IdoTargetRef {
    #[allow(dead_code)] // Read to insist it is there; any kind (Deployment, …) is accepted.
    kind: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdoObjective {
    name: String,
    value: f64,
    measured_by: String,
    #[serde(default)]
    #[allow(dead_code)] // IDO's planner uses it for hysteresis; dcpilot scores against value.
    tolerance: Option<f64>,
}

/// IDO `spec` of a KPIProfile.
#[derive(Debug, Deserialize)]
struct IdoKpiSpec {
    #[serde(rename = "type")]
    kind: KpiType,
}

/// The KPI types of IDO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KpiType {
    Latency,
    Throughput,
    Availability,
    Power,
}

/// dcpilot's own intent document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeIntent {
    #[allow(dead_code)]
    kind: String,
    workload: String,
    #[serde(default)]
    p99_latency_ms: Option<f64>,
    #[serde(default)]
    priority: Option<f64>,
    #[serde(default)]
    quiet_p99_ms: Option<f64>,
    #[serde(default)]
    rps: Option<f64>,
}

/// The documents and what they mean for scoring. Cloned and swapped on change; read
/// lock-free on the hot path.
#[derive(Debug, Clone, Default)]
pub struct Intents {
    /// Documents by (kind, key), verbatim.
    documents: BTreeMap<(String, String), Value>,
    /// Derived per workload.
    objectives: HashMap<String, WorkloadObjectives>,
    /// Objectives whose KPI profile is unknown or not a p99 latency (kept, not scored).
    unscored: Vec<String>,
}

/// IDO's built-in KPI profiles (`default/p99latency`, …), used when a body names one that
/// was not sent.
fn builtin_profile(key: &str) -> Option<KpiType> {
    match key {
        "default/p50latency" | "default/p95latency" | "default/p99latency" => {
            Some(KpiType::Latency)
        }
        "default/throughput" => Some(KpiType::Throughput),
        "default/availability" => Some(KpiType::Availability),
        "default/power" => Some(KpiType::Power),
        _ => None,
    }
}

fn doc_key(doc: &Value) -> Option<String> {
    let meta = doc.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(format!("{namespace}/{name}"))
}

fn typed<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("{what}: {path}: {}", e.inner())
    })
}

/// Splits a body into documents: a JSON object, a JSON array of objects, or one or more
/// YAML documents separated by `---`.
pub fn parse_documents(body: &str) -> Result<Vec<Value>, IntentError> {
    let trimmed = body.trim_start();
    let docs: Vec<Value> = if trimmed.starts_with('[') || trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Array(items)) => items,
            Ok(other) => vec![other],
            Err(e) => return Err(IntentError::Syntax(format!("JSON: {e}"))),
        }
    } else {
        let mut docs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(body) {
            let value = Value::deserialize(doc).map_err(|e| IntentError::Syntax(e.to_string()))?;
            if !value.is_null() {
                docs.push(value);
            }
        }
        docs
    };
    if docs.is_empty() {
        return Err(IntentError::Empty);
    }
    Ok(docs)
}

impl Intents {
    /// Adds or replaces the documents of `body` (all or nothing: one bad document rejects
    /// the body) and returns the new state and the keys written.
    pub fn with_body(&self, body: &str) -> Result<(Self, Vec<String>), IntentError> {
        let docs = parse_documents(body)?;
        let mut next = self.clone();
        let mut written = Vec::new();
        for (i, doc) in docs.into_iter().enumerate() {
            let problem = |problem: String| IntentError::Document {
                index: i + 1,
                problem,
            };
            let kind = doc
                .get("kind")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    problem("kind: missing (Intent, KPIProfile or WorkloadIntent)".into())
                })?
                .to_string();
            let key = match kind.as_str() {
                "Intent" | "KPIProfile" => {
                    let key =
                        doc_key(&doc).ok_or_else(|| problem("metadata.name: missing".into()))?;
                    let spec = doc
                        .get("spec")
                        .ok_or_else(|| problem("spec: missing".into()))?;
                    if kind == "Intent" {
                        typed::<IdoIntentSpec>(spec, "spec").map_err(problem)?;
                    } else {
                        typed::<IdoKpiSpec>(spec, "spec").map_err(problem)?;
                    }
                    key
                }
                "WorkloadIntent" => {
                    typed::<NativeIntent>(&doc, "WorkloadIntent")
                        .map_err(problem)?
                        .workload
                }
                other => {
                    return Err(problem(format!(
                        "kind: {other:?} is not Intent, KPIProfile or WorkloadIntent"
                    )))
                }
            };
            written.push(format!("{kind} {key}"));
            next.documents.insert((kind, key), doc);
        }
        next.derive();
        Ok((next, written))
    }

    /// The documents, in (kind, key) order, as they were sent.
    pub fn documents(&self) -> Vec<&Value> {
        self.documents.values().collect()
    }

    /// A workload's objectives.
    pub fn objectives(&self, workload: &str) -> Option<&WorkloadObjectives> {
        self.objectives.get(workload)
    }

    /// All workloads with objectives.
    pub fn all_objectives(&self) -> &HashMap<String, WorkloadObjectives> {
        &self.objectives
    }

    /// Objectives kept but not scored, and why.
    pub fn unscored(&self) -> &[String] {
        &self.unscored
    }

    fn derive(&mut self) {
        let mut profiles: HashMap<String, KpiType> = HashMap::new();
        for ((kind, key), doc) in &self.documents {
            if kind == "KPIProfile" {
                if let Some(spec) = doc
                    .get("spec")
                    .and_then(|s| typed::<IdoKpiSpec>(s, "").ok())
                {
                    profiles.insert(key.clone(), spec.kind);
                }
            }
        }
        let mut objectives: HashMap<String, WorkloadObjectives> = HashMap::new();
        let mut unscored = Vec::new();
        for ((kind, key), doc) in &self.documents {
            match kind.as_str() {
                "Intent" => {
                    let Some(spec) = doc
                        .get("spec")
                        .and_then(|s| typed::<IdoIntentSpec>(s, "").ok())
                    else {
                        continue;
                    };
                    let entry = objectives
                        .entry(spec.target_ref.name.clone())
                        .or_insert_with(|| WorkloadObjectives {
                            priority: 1.0,
                            ..WorkloadObjectives::default()
                        });
                    if let Some(p) = spec.priority {
                        entry.priority = p;
                    }
                    for o in spec.objectives {
                        let profile = profiles
                            .get(&o.measured_by)
                            .copied()
                            .or_else(|| builtin_profile(&o.measured_by));
                        let p99 = o.measured_by.contains("p99") || o.name.contains("p99");
                        match profile {
                            Some(KpiType::Latency) if p99 => entry.p99_latency_ms = Some(o.value),
                            Some(_) => unscored.push(format!(
                                "Intent {key}: objective {} ({}) is not a p99 latency; kept, not scored",
                                o.name, o.measured_by
                            )),
                            None => unscored.push(format!(
                                "Intent {key}: objective {} names unknown KPIProfile {}; kept, not scored",
                                o.name, o.measured_by
                            )),
                        }
                    }
                }
                "WorkloadIntent" => {
                    let Ok(native) = typed::<NativeIntent>(doc, "") else {
                        continue;
                    };
                    let entry =
                        objectives
                            .entry(native.workload)
                            .or_insert_with(|| WorkloadObjectives {
                                priority: 1.0,
                                ..WorkloadObjectives::default()
                            });
                    entry.p99_latency_ms = native.p99_latency_ms.or(entry.p99_latency_ms);
                    entry.priority = native.priority.unwrap_or(entry.priority);
                    entry.quiet_p99_ms = native.quiet_p99_ms.or(entry.quiet_p99_ms);
                    entry.rps = native.rps.or(entry.rps);
                }
                _ => {}
            }
        }
        self.objectives = objectives;
        self.unscored = unscored;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDO: &str = r#"apiVersion: "ido.intel.com/v1alpha1"
kind: Intent
metadata:
  name: my-function-intent
spec:
  targetRef:
    kind: "Deployment"
    name: "default/function-deployment"
  objectives:
    - name: my-function-p99compliance
      value: 20
      measuredBy: default/p99latency
"#;

    #[test]
    fn ido_intent_yields_a_p99_objective_and_reads_back_unchanged() {
        let (intents, written) = Intents::default().with_body(IDO).expect("accepted");
        assert_eq!(written, vec!["Intent default/my-function-intent"]);
        let o = intents
            .objectives("default/function-deployment")
            .expect("objectives");
        assert_eq!(o.p99_latency_ms, Some(20.0));
        let sent: Value = serde_yaml_ng::from_str(IDO).expect("yaml");
        assert_eq!(intents.documents(), vec![&sent]);
    }

    #[test]
    fn kpi_profiles_decide_what_is_scored() {
        let body = r#"
apiVersion: ido.intel.com/v1alpha1
kind: KPIProfile
metadata: {name: rps, namespace: shop}
spec: {query: "sum(rate(x[1m]))", minimize: false, type: throughput}
---
apiVersion: ido.intel.com/v1alpha1
kind: Intent
metadata: {name: cart}
spec:
  targetRef: {kind: Deployment, name: shop/cart}
  priority: 2.5
  objectives:
    - {name: tput, value: 100, measuredBy: shop/rps}
    - {name: lat, value: 5, measuredBy: default/p99latency}
    - {name: odd, value: 1, measuredBy: shop/unknown}
"#;
        let (intents, _) = Intents::default().with_body(body).expect("accepted");
        let o = intents.objectives("shop/cart").expect("objectives");
        assert_eq!(o.p99_latency_ms, Some(5.0));
        assert_eq!(o.priority, 2.5);
        assert_eq!(intents.unscored().len(), 2, "{:?}", intents.unscored());
    }

    #[test]
    fn bad_documents_name_their_position_and_field_and_change_nothing() {
        let (base, _) = Intents::default().with_body(IDO).expect("accepted");
        let bad = r#"[{"kind":"WorkloadIntent","workload":"a","p99_latency_ms":5},
                      {"kind":"Intent","metadata":{"name":"x"},"spec":{"targetRef":{"kind":"Deployment","name":"d"},"objectives":[{"name":"o","measuredBy":"default/p99latency"}]}}]"#;
        let err = base.with_body(bad).expect_err("missing value");
        let text = err.to_string();
        assert!(
            text.starts_with("document 2: spec: objectives[0]"),
            "{text}"
        );
        assert!(text.contains("value"), "{text}");
        assert!(base.objectives("a").is_none());
        for (body, expected) in [
            ("", "no intent documents"),
            ("{", "not YAML or JSON"),
            ("kind: Pod\nmetadata: {name: p}", "is not Intent"),
            ("kind: Intent\nspec: {}", "metadata.name"),
        ] {
            let err = base.with_body(body).expect_err(body).to_string();
            assert!(err.contains(expected), "{body:?}: {err}");
        }
    }

    #[test]
    fn native_intents_carry_the_workload_profile() {
        let body = r#"{"kind":"WorkloadIntent","workload":"nginx","p99_latency_ms":2.0,"quiet_p99_ms":0.15,"rps":1500}"#;
        let (intents, written) = Intents::default().with_body(body).expect("accepted");
        assert_eq!(written, vec!["WorkloadIntent nginx"]);
        let o = intents.objectives("nginx").expect("objectives");
        assert_eq!((o.quiet_p99_ms, o.rps), (Some(0.15), Some(1500.0)));
    }
}
