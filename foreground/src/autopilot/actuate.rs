//! Actuators: how a plan leaves the autopilot. Every plan becomes an [`ActionMessage`]
//! (JSON Schema `schemas/json/action.schema.json`): the intent, the evidence, the predicted
//! effect and the model versions — on `dcpilot.actions` for any orchestrator to apply
//! ([`KafkaActuator`]), and as Kubernetes requests typed with the Kubernetes API types
//! ([`kubernetes_requests`]: the Deployment's `Scale` and a node-affinity patch of its pod
//! template), which [`KubectlActuator`] writes for `kubectl` and can apply with it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, PreferredSchedulingTerm,
};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Action, Decision, ObjectiveState, Reading};
use dcpilot_runtime::kafka::{client_config, QuietContext};
use dcpilot_schemas::TelemetrySample;

/// A plan as it is published: everything an orchestrator (or a person) needs to apply it
/// and to judge it afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionMessage {
    /// Unique per plan: `<target>@<created_ms>`.
    pub plan_id: String,
    /// When it was planned, Unix ms.
    pub created_ms: i64,
    /// The target workload (e.g. `default/nginx`: namespace/Deployment).
    pub target: String,
    /// The objective kept, p99 ms.
    pub objective_p99_ms: f64,
    /// How the objective stood when planned.
    pub state: ObjectiveState,
    /// The evidence: the newest p99 and request rate, with their times.
    pub p99_ms: Option<Reading>,
    /// See `p99_ms`.
    pub rps: Option<Reading>,
    /// Predicted p99 of staying as is, and after the plan, ms.
    pub predicted_p99_ms_before: Option<f64>,
    /// See `predicted_p99_ms_before`.
    pub predicted_p99_ms_after: Option<f64>,
    /// The steps, in order.
    pub actions: Vec<Action>,
    /// Replicas per node after the plan.
    pub placement: BTreeMap<String, u32>,
    /// Models (name → version) the prediction used.
    pub models: BTreeMap<String, u64>,
    /// Planned only: nothing is to be applied.
    pub dry_run: bool,
    /// Why, for people.
    pub reason: String,
}

impl ActionMessage {
    /// The message of `decision`'s plan (`None` without one); `nodes` names the plan's
    /// placement in order.
    pub fn of(decision: &Decision, nodes: &[String], dry_run: bool) -> Option<Self> {
        let plan = decision.plan.as_ref()?;
        let created_ms = decision.now_ms;
        Some(Self {
            plan_id: format!("{}@{created_ms}", decision.target),
            created_ms,
            target: decision.target.clone(),
            objective_p99_ms: decision.objective_p99_ms,
            state: decision.state,
            p99_ms: decision.p99_ms,
            rps: decision.rps,
            predicted_p99_ms_before: decision.predicted_p99_ms,
            predicted_p99_ms_after: plan.predicted_p99_ms,
            actions: plan.actions.clone(),
            placement: nodes
                .iter()
                .cloned()
                .zip(plan.placement.iter().copied())
                .collect(),
            models: decision.provenance.models.clone(),
            dry_run,
            reason: decision.reason.clone(),
        })
    }

    /// Replicas after the plan.
    pub fn replicas(&self) -> u32 {
        self.placement.values().sum()
    }
}

/// Why an actuator could not carry a plan out.
#[derive(Debug, thiserror::Error)]
#[error("actuator {actuator}: {message}")]
pub struct ActuateError {
    /// Which actuator.
    pub actuator: &'static str,
    /// What went wrong.
    pub message: String,
    /// Whether trying again may help (a broker or API server away, not a bad plan).
    pub retryable: bool,
}

/// Carries plans out (or hands them on).
pub trait Actuator: Send {
    /// Its name, in logs and metrics.
    fn name(&self) -> &'static str;
    /// Carries out (or publishes) one plan.
    fn apply(&mut self, message: &ActionMessage) -> Result<(), ActuateError>;
    /// Records what plans did, as telemetry (an actuator that cannot, ignores them).
    fn record_outcome(&mut self, samples: &[TelemetrySample]) -> Result<(), ActuateError> {
        let _ = samples;
        Ok(())
    }
}

/// Publishes every plan on a Kafka topic (`dcpilot.actions`), keyed by target, as JSON,
/// and plans' outcomes as native telemetry on the telemetry topic.
pub struct KafkaActuator {
    producer: ThreadedProducer<QuietContext>,
    topic: String,
    telemetry_topic: String,
}

impl KafkaActuator {
    /// A producer for `topic` (plans) and `telemetry_topic` (outcomes) at `brokers`, with
    /// extra librdkafka `properties`.
    pub fn new(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
        telemetry_topic: &str,
    ) -> Result<Self, ActuateError> {
        let producer = client_config(brokers, properties)
            .set("enable.idempotence", "true")
            .create_with_context(QuietContext::new("actions"))
            .map_err(|e| ActuateError {
                actuator: "kafka",
                message: format!("cannot create the producer for {topic}: {e}"),
                retryable: false,
            })?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
            telemetry_topic: telemetry_topic.to_string(),
        })
    }

    fn send(&self, topic: &str, key: &str, payload: &[u8]) -> Result<(), ActuateError> {
        let error = |message: String| ActuateError {
            actuator: "kafka",
            message,
            retryable: true,
        };
        self.producer
            .send(BaseRecord::to(topic).key(key).payload(payload))
            .map_err(|(e, _)| error(format!("cannot queue a message on {topic}: {e}")))?;
        self.producer
            .flush(Duration::from_secs(10))
            .map_err(|e| error(format!("a message did not reach {topic}: {e}")))
    }
}

impl Actuator for KafkaActuator {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn apply(&mut self, message: &ActionMessage) -> Result<(), ActuateError> {
        let payload = serde_json::to_vec(message).map_err(|e| ActuateError {
            actuator: "kafka",
            message: e.to_string(),
            retryable: false,
        })?;
        self.send(&self.topic, &message.target, &payload)
    }

    fn record_outcome(&mut self, samples: &[TelemetrySample]) -> Result<(), ActuateError> {
        let Some(first) = samples.first() else {
            return Ok(());
        };
        let payload = serde_json::to_vec(samples).map_err(|e| ActuateError {
            actuator: "kafka",
            message: e.to_string(),
            retryable: false,
        })?;
        self.send(&self.telemetry_topic, &first.entity, &payload)
    }
}

/// The Kubernetes requests that carry a plan out on a Deployment `namespace/name`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KubernetesRequests {
    /// `PUT /apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale`: the replicas.
    pub scale: Scale,
    /// The same as a merge patch of the Deployment (for `kubectl patch --type merge`).
    pub replicas_patch: serde_json::Value,
    /// A merge patch of the Deployment's pod template: node affinity preferring the nodes
    /// the plan puts replicas on and avoiding those it empties (preferred, never required,
    /// so no pod is left unschedulable); `None` when the plan moves nothing.
    pub affinity_patch: Option<serde_json::Value>,
    /// `POST /api/v1/namespaces/{namespace}/pods/{name}/eviction`: each co-runner the plan
    /// evicts (the Eviction API honours its PodDisruptionBudget).
    pub evictions: Vec<Eviction>,
}

/// A pod named `namespace/name` (`default` without a namespace) as (namespace, name).
fn namespaced(id: &str) -> (&str, &str) {
    id.split_once('/').unwrap_or(("default", id))
}

/// The node label the affinity terms match.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The Kubernetes requests of `message`; its target names the Deployment as
/// `namespace/name` (`default` without a namespace).
pub fn kubernetes_requests(message: &ActionMessage) -> KubernetesRequests {
    let (namespace, name) = namespaced(&message.target);
    let replicas = i32::try_from(message.replicas()).unwrap_or(i32::MAX);
    let scale = Scale {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(ScaleSpec {
            replicas: Some(replicas),
        }),
        status: None,
    };
    let replicas_patch = serde_json::json!({ "spec": { "replicas": replicas } });
    let moves = message
        .actions
        .iter()
        .any(|a| matches!(a, Action::Move { .. }));
    let affinity_patch = moves.then(|| {
        let (kept, emptied): (Vec<_>, Vec<_>) = message.placement.iter().partition(|(_, &n)| n > 0);
        let term = |operator: &str, nodes: Vec<(&String, &u32)>| PreferredSchedulingTerm {
            weight: 100,
            preference: NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: HOSTNAME_LABEL.to_string(),
                    operator: operator.to_string(),
                    values: Some(nodes.into_iter().map(|(n, _)| n.clone()).collect()),
                }]),
                match_fields: None,
            },
        };
        let mut terms = vec![term("In", kept)];
        if !emptied.is_empty() {
            terms.push(term("NotIn", emptied));
        }
        let affinity = Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(terms),
                required_during_scheduling_ignored_during_execution: None,
            }),
            ..Affinity::default()
        };
        serde_json::json!({ "spec": { "template": { "spec": { "affinity": affinity } } } })
    });
    let evictions = message
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Evict { instance, .. } => Some(namespaced(instance)),
            _ => None,
        })
        .map(|(namespace, name)| Eviction {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            delete_options: None,
        })
        .collect();
    KubernetesRequests {
        scale,
        replicas_patch,
        affinity_patch,
        evictions,
    }
}

/// Writes each plan's Kubernetes requests to `<dir>/<plan>.json` and, when `kubectl` is
/// set, applies them with `kubectl patch` (with `kubeconfig`, if given).
pub struct KubectlActuator {
    /// Where the requests are written.
    pub dir: PathBuf,
    /// The kubectl to apply them with; `None`: write only.
    pub kubectl: Option<PathBuf>,
    /// The kubeconfig for kubectl.
    pub kubeconfig: Option<PathBuf>,
}

impl KubectlActuator {
    /// Runs `kubectl ARGS` (with the kubeconfig and a 10 s request timeout).
    fn run(&self, kubectl: &std::path::Path, args: &[&str]) -> Result<(), ActuateError> {
        let mut command = std::process::Command::new(kubectl);
        if let Some(config) = &self.kubeconfig {
            command.arg("--kubeconfig").arg(config);
        }
        let output = command
            .arg("--request-timeout=10s")
            .args(args)
            .output()
            .map_err(|e| ActuateError {
                actuator: "kubernetes",
                message: format!("cannot run {}: {e}", kubectl.display()),
                retryable: false,
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(ActuateError {
            actuator: "kubernetes",
            message: format!(
                "kubectl {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            retryable: true,
        })
    }
}

impl Actuator for KubectlActuator {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn apply(&mut self, message: &ActionMessage) -> Result<(), ActuateError> {
        let error = |message: String, retryable| ActuateError {
            actuator: "kubernetes",
            message,
            retryable,
        };
        let requests = kubernetes_requests(message);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| error(format!("cannot create {}: {e}", self.dir.display()), false))?;
        let file_name: String = message
            .plan_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{file_name}.json"));
        let body = serde_json::to_vec_pretty(&requests).map_err(|e| error(e.to_string(), false))?;
        std::fs::write(&path, body)
            .map_err(|e| error(format!("cannot write {}: {e}", path.display()), false))?;
        let Some(kubectl) = &self.kubectl else {
            return Ok(());
        };
        if message.dry_run {
            return Ok(());
        }
        let (namespace, name) = (
            requests
                .scale
                .metadata
                .namespace
                .clone()
                .unwrap_or_default(),
            requests.scale.metadata.name.clone().unwrap_or_default(),
        );
        let patches = std::iter::once(&requests.replicas_patch).chain(&requests.affinity_patch);
        for patch in patches {
            let patch = patch.to_string();
            self.run(
                kubectl,
                &[
                    "patch",
                    "deployment",
                    &name,
                    "-n",
                    &namespace,
                    "--type",
                    "merge",
                    "-p",
                    &patch,
                ],
            )?;
        }
        for (k, eviction) in requests.evictions.iter().enumerate() {
            let file = self.dir.join(format!("{file_name}-eviction-{k}.json"));
            let body = serde_json::to_vec(eviction).map_err(|e| error(e.to_string(), false))?;
            std::fs::write(&file, body)
                .map_err(|e| error(format!("cannot write {}: {e}", file.display()), false))?;
            let url = format!(
                "/api/v1/namespaces/{}/pods/{}/eviction",
                eviction.metadata.namespace.as_deref().unwrap_or("default"),
                eviction.metadata.name.as_deref().unwrap_or_default()
            );
            let file = file.to_string_lossy();
            self.run(kubectl, &["create", "--raw", &url, "-f", &file])?;
        }
        Ok(())
    }
}
