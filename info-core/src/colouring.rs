//! The landscape's colouring as the Information Core stores, replicates and serves it:
//! every entity's abnormality around one moment with its evidence, the ranked root-cause
//! candidates, and each host's colour as placement reads it. The algorithms that produce
//! it (detectors, scoring, ranking) live with the jobs that run them
//! (`dcpilot_pipelines::colouring`).

use dcpilot_schemas::{Layer, Relation};
use serde::{Deserialize, Serialize};

/// The score from which an entity is coloured anomalous unless a colouring job says
/// otherwise.
pub const DEFAULT_ANOMALOUS_FROM: f64 = 1.0;

/// A colouring setting out of range (a window's or the ranking's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {reason}")]
pub struct InvalidSetting {
    /// The key (`baseline_secs`, …).
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// The windows around the moment `at` a detector compares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Window {
    /// Normal behaviour: `[at − baseline_secs, at)`.
    pub baseline_secs: i64,
    /// Observed behaviour: `[at, at + observe_secs)`.
    pub observe_secs: i64,
    /// How far back a calibrating detector looks for the metric's usual deviations.
    pub history_secs: i64,
    /// The sampling step (calibration compares the moment with every step of history).
    pub step_secs: i64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            baseline_secs: 300,
            observe_secs: 180,
            history_secs: 3600,
            step_secs: 60,
        }
    }
}

impl Window {
    /// A problem with the window's numbers, if any (for a config check): the key and
    /// what is wrong with it.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        for (key, v) in [
            ("baseline_secs", self.baseline_secs),
            ("observe_secs", self.observe_secs),
            ("step_secs", self.step_secs),
        ] {
            if v <= 0 {
                return Err(InvalidSetting {
                    key,
                    reason: format!("must be > 0, got {v}"),
                });
            }
        }
        if self.history_secs < 0 {
            return Err(InvalidSetting {
                key: "history_secs",
                reason: format!("must be ≥ 0, got {}", self.history_secs),
            });
        }
        Ok(())
    }
}

/// How abnormal a metric is, with what the judgement rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricScore {
    /// Higher is more abnormal (≤ 0 is normal). Comparable across metrics and entities for
    /// one detector.
    pub score: f64,
    /// The largest deviation in the observed window, in robust standard deviations
    /// (signed: negative is a drop).
    pub deviation: f64,
    /// The normal level (median of the baseline window).
    pub normal: f64,
    /// The observed value furthest from normal.
    pub observed: f64,
}

/// One metric's judgement, named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricEvidence {
    /// The metric.
    pub metric: String,
    /// Its score and what it rests on.
    #[serde(flatten)]
    pub score: MetricScore,
}

/// One step of a path through the landscape: `from -relation-> to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Where the edge starts.
    pub from: String,
    /// The relation.
    pub relation: Relation,
    /// Where it ends.
    pub to: String,
    /// The abnormality of the other end (the one that is not the candidate).
    pub score: f64,
}

/// How abnormal one entity is (its colour).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityColour {
    /// As the telemetry names it.
    pub entity: String,
    /// The landscape node it is (`None`: not in the landscape).
    pub node: Option<String>,
    /// The node's type (`service`, `host`, …; `unknown` outside the landscape).
    pub kind: String,
    /// The node's layer.
    pub layer: Option<Layer>,
    /// The largest metric score (≤ 0 is normal).
    pub score: f64,
    /// Whether `score` reaches the colouring's `anomalous_from`.
    pub anomalous: bool,
    /// The most abnormal metrics, worst first.
    pub evidence: Vec<MetricEvidence>,
}

/// Why a candidate ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateEvidence {
    /// Its most abnormal metrics.
    pub metrics: Vec<MetricEvidence>,
    /// Its own abnormality after explained symptoms were discounted.
    pub own: f64,
    /// What it depends on that explains its symptoms, if anything does.
    pub explained_by: Option<Link>,
    /// Its anomalous dependents (callers, pods on it, …): the symptoms it explains.
    pub explains: Vec<Link>,
    /// The slow-call latency its callers passed down to it (before the ranking's
    /// `downstream_weight`).
    #[serde(default)]
    pub downstream: f64,
    /// The callers whose calls are abnormally slow, with their call latency's score.
    #[serde(default)]
    pub blamed_by: Vec<Link>,
}

/// A root-cause candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// As the telemetry names it.
    pub entity: String,
    /// The node's type (`unknown` outside the landscape).
    pub kind: String,
    /// The node's layer.
    pub layer: Option<Layer>,
    /// The ranking score (higher: likelier the cause).
    pub score: f64,
    /// What the score rests on.
    pub evidence: CandidateEvidence,
}

/// A colouring of the landscape at one moment, with its ranked causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Colouring {
    /// The moment judged (Unix s): behaviour from it on against behaviour before it.
    pub at: i64,
    /// The detector used.
    pub detector: String,
    /// Its windows.
    pub window: Window,
    /// Every entity with telemetry, most abnormal first.
    pub entities: Vec<EntityColour>,
    /// Root-cause candidates, likeliest first.
    pub ranking: Vec<Candidate>,
    /// Every host with a colour of its own or of its network (NIC, switch), most
    /// abnormal first: what placement avoids.
    #[serde(default)]
    pub hosts: Vec<HostColour>,
    /// What could not be judged, and why (entities without finite data around the
    /// moment, names outside the landscape).
    pub problems: Vec<String>,
}

impl Colouring {
    /// Replaces numbers JSON cannot hold (±∞ from a zero spread, NaN) with the nearest
    /// finite value (NaN with 0), so the colouring can be stored and replicated; returns
    /// how many were replaced.
    pub fn make_storable(&mut self) -> usize {
        let mut replaced = 0;
        let mut fix = |x: &mut f64| {
            if !x.is_finite() {
                *x = if x.is_nan() {
                    0.0
                } else {
                    x.clamp(f64::MIN, f64::MAX)
                };
                replaced += 1;
            }
        };
        let fix_metrics = |metrics: &mut Vec<MetricEvidence>, fix: &mut dyn FnMut(&mut f64)| {
            for m in metrics {
                for x in [
                    &mut m.score.score,
                    &mut m.score.deviation,
                    &mut m.score.normal,
                    &mut m.score.observed,
                ] {
                    fix(x);
                }
            }
        };
        for e in &mut self.entities {
            fix(&mut e.score);
            fix_metrics(&mut e.evidence, &mut fix);
        }
        for c in &mut self.ranking {
            fix(&mut c.score);
            fix(&mut c.evidence.own);
            fix_metrics(&mut c.evidence.metrics, &mut fix);
            fix(&mut c.evidence.downstream);
            for link in c
                .evidence
                .explained_by
                .iter_mut()
                .chain(&mut c.evidence.explains)
                .chain(&mut c.evidence.blamed_by)
            {
                fix(&mut link.score);
            }
        }
        for h in &mut self.hosts {
            fix(&mut h.score);
        }
        replaced
    }

    /// The colour of the host `name` (node id or display name), if it has one.
    pub fn host(&self, name: &str) -> Option<&HostColour> {
        self.hosts.iter().find(|h| h.host == name || h.name == name)
    }
}

/// How abnormal a host is as a place to run work: its own colour, or the colour of the
/// network it hangs off (its NICs and the switches they connect to), whichever is worse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostColour {
    /// The host's landscape node.
    pub host: String,
    /// Its display name (a Kubernetes node name, usually).
    pub name: String,
    /// The worse of its own score and its network's.
    pub score: f64,
    /// Whether `score` reaches the colouring's `anomalous_from`.
    pub anomalous: bool,
    /// The entity the score comes from: the host itself, or a NIC or switch.
    pub via: String,
}
