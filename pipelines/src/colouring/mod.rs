//! Colouring the landscape: every entity scored by how abnormal its telemetry is around a
//! moment, and root-cause candidates ranked with the graph, so the cause is told from its
//! victims.
//!
//! - [`detect`]: a [`Detector`] scores one metric of one entity against that entity's own
//!   past (the default, [`detect::Calibrated`], also against how much that metric usually
//!   moves); an explicit registry names them.
//! - [`colour`]: scores every entity with telemetry, then ranks. A metric's [`Role`]
//!   comes from its name: an entity's *symptoms* are the latency of what it serves
//!   (latency travels up the call graph to every caller); the latency of the calls it
//!   makes is *downstream* — its callees' symptom, passed down to them, shared by call
//!   weight ([`RankParams::downstream_weight`]); the traffic it is sent (bytes received
//!   and sent, syscalls, request counts) is *context* that counts for
//!   [`RankParams::explained_weight`]; the rest (CPU, memory, errors) is its *own*
//!   evidence. A symptom is *explained* when
//!   something the entity depends on (a callee, the host it runs on, the switch its NIC
//!   connects to) is at least as abnormal: then it counts for
//!   [`RankParams::explained_weight`] of itself. A candidate also gains
//!   [`RankParams::support_weight`] × the mean abnormality of what depends on it (its
//!   callers, the pods on it): an abnormal node with abnormal dependents explains them.
//! - [`job`]: the `colouring` job kind, reading telemetry and the landscape with SQL and
//!   publishing a [`Colouring`] (the stored type, `dcpilot_info_core::colouring`).
//!
//! The defaults (windows of 5 min before and 3 min after, an hour of calibration history,
//! weights 0.3 and 0.3) are one configuration for every system; how they were chosen is in
//! docs/landscape.md.

pub mod detect;
pub mod job;

use std::collections::BTreeMap;

use dcpilot_landscape::{Direction, LandscapeGraph, NodeIndex};
use dcpilot_schemas::{Layer, Relation};
use serde::{Deserialize, Serialize};

pub use dcpilot_info_core::colouring::{
    Candidate, CandidateEvidence, Colouring, EntityColour, HostColour, InvalidSetting, Link,
    MetricEvidence, MetricScore, Window, DEFAULT_ANOMALOUS_FROM,
};
pub use detect::Detector;
pub use job::ColouringSummary;

/// Telemetry of many entities: entity → metric → `(unix s, value)` in time order.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// By entity name (as the landscape or the data names it).
    pub entities: BTreeMap<String, BTreeMap<String, Vec<(i64, f64)>>>,
}

impl Telemetry {
    /// Adds a sample (kept in time order on [`Telemetry::sort`]).
    pub fn push(&mut self, entity: &str, metric: &str, t: i64, value: f64) {
        // Names are copied only the first time they are seen (pushes repeat them).
        if !self.entities.contains_key(entity) {
            self.entities.insert(entity.to_string(), BTreeMap::new());
        }
        let Some(metrics) = self.entities.get_mut(entity) else {
            return;
        };
        if !metrics.contains_key(metric) {
            metrics.insert(metric.to_string(), Vec::new());
        }
        if let Some(points) = metrics.get_mut(metric) {
            points.push((t, value));
        }
    }

    /// Sorts every series by time.
    pub fn sort(&mut self) {
        for series in self.entities.values_mut().flat_map(|m| m.values_mut()) {
            series.sort_by_key(|(t, _)| *t);
        }
    }
}

/// How the ranking weighs the graph; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankParams {
    /// What an explained symptom still counts for (0..=1).
    pub explained_weight: f64,
    /// Weight of the mean abnormality of a candidate's dependents.
    pub support_weight: f64,
    /// Weight of the latency its callers see in their calls to it (their downstream
    /// latency, shared among what each calls by call weight).
    pub downstream_weight: f64,
    /// A score from which an entity is coloured anomalous (and named in paths).
    pub anomalous_from: f64,
    /// Metric evidence kept per entity.
    pub evidence_metrics: usize,
    /// Candidates kept in a ranking (the likeliest).
    pub max_candidates: usize,
}

impl Default for RankParams {
    fn default() -> Self {
        Self {
            explained_weight: 0.3,
            support_weight: 0.3,
            downstream_weight: 0.3,
            anomalous_from: DEFAULT_ANOMALOUS_FROM,
            evidence_metrics: 3,
            max_candidates: 1000,
        }
    }
}

impl RankParams {
    /// A problem with the numbers, if any.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        let invalid = |key: &'static str, reason: String| Err(InvalidSetting { key, reason });
        if !(0.0..=1.0).contains(&self.explained_weight) {
            return invalid(
                "explained_weight",
                format!("must be within 0..=1, got {}", self.explained_weight),
            );
        }
        for (key, weight) in [
            ("support_weight", self.support_weight),
            ("downstream_weight", self.downstream_weight),
        ] {
            if !(weight >= 0.0 && weight.is_finite()) {
                return invalid(key, format!("must be ≥ 0, got {weight}"));
            }
        }
        if self.max_candidates == 0 {
            return invalid("max_candidates", "must be ≥ 1".into());
        }
        if !self.anomalous_from.is_finite() {
            return invalid("anomalous_from", "must be a number".into());
        }
        Ok(())
    }
}

/// Node types a host's traffic goes through (two hops at most: host → NIC → switch).
const NETWORK_TYPES: [&str; 4] = ["nic", "switch", "router", "network"];

/// Colours every host of `graph` from `entities`: its own score or its network's.
fn host_colours(
    graph: &LandscapeGraph,
    entities: &[EntityColour],
    params: &RankParams,
) -> Vec<HostColour> {
    let by_node: std::collections::HashMap<&str, f64> = entities
        .iter()
        .filter_map(|e| Some((e.node.as_deref()?, e.score)))
        .collect();
    let score_of = |ix: NodeIndex| by_node.get(graph.node(ix).id.as_str()).copied();
    let is_network = |ix: NodeIndex| {
        let n = graph.node(ix);
        n.layer == Layer::Physical && NETWORK_TYPES.contains(&n.node_type.as_str())
    };
    let mut hosts = Vec::new();
    for (ix, node) in graph.nodes() {
        if !node.is_host() || !node.lifetime.alive() {
            continue;
        }
        let mut best: Option<(f64, NodeIndex)> = score_of(ix).map(|s| (s, ix));
        let mut consider = |other: NodeIndex| {
            if let Some(s) = score_of(other) {
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, other));
                }
            }
        };
        let mut frontier = vec![ix];
        let mut seen = vec![ix];
        for _hop in 0..2 {
            let mut next = Vec::new();
            for &at in &frontier {
                // Outgoing only: a host contains its NICs and connects to its switch; walking
                // back from a switch would reach other hosts' NICs.
                for (_, other) in graph.live_edges(at, Direction::Outgoing, None) {
                    if !seen.contains(&other) && is_network(other) {
                        seen.push(other);
                        next.push(other);
                        consider(other);
                    }
                }
            }
            frontier = next;
        }
        if let Some((score, via)) = best {
            let version = node.current();
            hosts.push(HostColour {
                host: node.id.clone(),
                name: version.name.clone().unwrap_or_else(|| node.id.clone()),
                score,
                anomalous: score >= params.anomalous_from,
                via: graph.node(via).id.clone(),
            });
        }
    }
    hosts.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.host.cmp(&b.host)));
    hosts
}

/// What a metric says about its entity (by name, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Latency of what the entity serves: a symptom that travels to its dependents.
    Symptom,
    /// Its own state (CPU, memory, errors, …).
    Own,
    /// The traffic it is sent (see [`CONTEXT`]): counts for
    /// [`RankParams::explained_weight`] of itself.
    Context,
    /// The latency of the calls it makes (`PodClientLatencyP99`, `client_latency_ms`): its
    /// callees' symptom, passed down to them (see [`RankParams::downstream_weight`]).
    Downstream,
}

impl Role {
    /// The role of `metric`.
    pub fn of(metric: &str) -> Self {
        let metric = metric.to_ascii_lowercase();
        if metric.contains("clientlatency") || metric.contains("client_latency") {
            Self::Downstream
        } else if metric.contains("latency") {
            Self::Symptom
        } else if FAULTS.iter().any(|f| metric.contains(f)) {
            // Errors and drops are the entity's own trouble, whatever traffic they count.
            Self::Own
        } else if CONTEXT.iter().any(|c| metric.contains(c)) {
            Self::Context
        } else {
            Self::Own
        }
    }
}

/// Name fragments of metrics that count failures (`transmit_errs`, `receive_drop_total`):
/// own evidence even when they also name traffic.
const FAULTS: [&str; 5] = ["err", "drop", "discard", "fail", "timeout"];

/// What an abnormal score counts for at `weight`; a normal (negative) one is not lifted.
fn discount(score: f64, weight: f64) -> f64 {
    if score > 0.0 {
        score * weight
    } else {
        score
    }
}

/// Name fragments of metrics that describe the traffic an entity is sent (its callers'
/// doing) rather than the entity itself. Such *context* counts for
/// [`RankParams::explained_weight`] of itself: it is explained by others by nature.
const CONTEXT: [&str; 7] = [
    "receive",
    "transmit",
    "syscall",
    "workload",
    "throughput",
    "rps",
    "qps",
];

/// The relations along which one entity depends on another (`from` depends on `to`).
const DEPENDS: [Relation; 5] = [
    Relation::Calls,
    Relation::RunsOn,
    Relation::DeployedOn,
    Relation::Connects,
    Relation::Requires,
];

struct Scored {
    colour: EntityColour,
    symptom: f64,
    own: f64,
    /// The worst latency of the calls it makes (passed down to its callees).
    downstream: f64,
    ix: Option<NodeIndex>,
}

/// Every entity's colour at one moment, before ranking (see [`score`], [`rank`]).
pub struct Scores {
    entities: Vec<Scored>,
    problems: Vec<String>,
}

impl Scores {
    /// Entities scored.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no entity could be scored.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }
}

/// Colours every entity of `telemetry` at `at` and ranks the causes over `graph`.
pub fn colour(
    telemetry: &Telemetry,
    graph: &LandscapeGraph,
    at: i64,
    detector: &dyn Detector,
    window: &Window,
    params: &RankParams,
) -> Colouring {
    let scores = score(telemetry, graph, at, detector, window, params);
    let ranking = rank(graph, &scores, params);
    let mut entities: Vec<EntityColour> = scores.entities.into_iter().map(|s| s.colour).collect();
    entities.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.entity.cmp(&b.entity)));
    let hosts = host_colours(graph, &entities, params);
    Colouring {
        at,
        detector: detector.name().to_string(),
        window: *window,
        entities,
        ranking,
        hosts,
        problems: scores.problems,
    }
}

/// Scores every entity of `telemetry` at `at` and finds it in `graph` (the first half of
/// [`colour`]).
pub fn score(
    telemetry: &Telemetry,
    graph: &LandscapeGraph,
    at: i64,
    detector: &dyn Detector,
    window: &Window,
    params: &RankParams,
) -> Scores {
    let mut problems = Vec::new();
    let mut no_data = Vec::new();
    let mut outside = Vec::new();
    let mut scored: Vec<Scored> = Vec::new();
    for (entity, metrics) in &telemetry.entities {
        // Metrics in order of their cheap upper bound, if the detector has one: a metric
        // whose bound can change neither the kept evidence nor its group's maximum is
        // not scored in full (the result is the same as scoring every metric).
        let mut order: Vec<(f64, &String, &detect::Points)> = metrics
            .iter()
            .map(|(metric, points)| {
                let bound = detector.bound(points, at, window).unwrap_or(f64::INFINITY);
                (bound, metric, points.as_slice())
            })
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        let keep = params.evidence_metrics;
        let mut evidence: Vec<MetricEvidence> = Vec::with_capacity(keep.min(metrics.len()) + 1);
        // The worst score of the entity's symptoms, own evidence and downstream latency.
        let mut groups = [f64::NEG_INFINITY; 3];
        for (bound, metric, points) in order {
            let role = Role::of(metric);
            let g = match role {
                Role::Symptom => 0,
                Role::Own | Role::Context => 1,
                Role::Downstream => 2,
            };
            // What a score counts for in its group: context is discounted (only when
            // abnormal: a discount must not lift a normal, negative score).
            let weight = if role == Role::Context {
                params.explained_weight
            } else {
                1.0
            };
            let counted = |s: f64| discount(s, weight);
            // The score a metric must beat to enter the kept evidence.
            let kept_floor = if keep == 0 {
                f64::INFINITY
            } else {
                evidence
                    .get(keep - 1)
                    .map_or(f64::NEG_INFINITY, |last| last.score.score)
            };
            // (A bound equal to the floor may still tie and win on the metric's name.)
            if bound < kept_floor && counted(bound) <= groups[g] {
                continue;
            }
            let Some(score) = detector
                .score(points, at, window)
                .filter(|s| s.score.is_finite())
            else {
                continue;
            };
            groups[g] = groups[g].max(counted(score.score));
            // Worst first after the better ones; ties by name, whatever the scoring order.
            let at_rank = evidence.partition_point(|e| {
                e.score.score > score.score
                    || (e.score.score == score.score && e.metric.as_str() < metric.as_str())
            });
            if at_rank < keep {
                evidence.insert(
                    at_rank,
                    MetricEvidence {
                        metric: metric.clone(),
                        score,
                    },
                );
                evidence.truncate(keep);
            }
        }
        let [symptom, own, downstream] = groups;
        if groups.iter().all(|g| *g == f64::NEG_INFINITY) {
            no_data.push(entity.clone());
            continue;
        }
        let ix = graph.resolve(entity).or_else(|| {
            dcpilot_landscape::formats::calls::known(graph, entity)
                .and_then(|id| graph.resolve(&id))
        });
        if ix.is_none() {
            outside.push(entity.clone());
        }
        let node = ix.map(|ix| graph.node(ix));
        // A caller's slow calls colour it a little (it suffers), as context does.
        let suffering = discount(downstream, params.explained_weight);
        let score = symptom.max(own).max(suffering);
        scored.push(Scored {
            colour: EntityColour {
                entity: entity.clone(),
                node: node.map(|n| n.id.clone()),
                kind: node.map_or_else(|| "unknown".into(), |n| n.node_type.clone()),
                layer: node.map(|n| n.layer),
                score,
                anomalous: score >= params.anomalous_from,
                evidence,
            },
            symptom,
            own,
            downstream,
            ix,
        });
    }
    report(
        &mut problems,
        "no finite telemetry around the moment",
        &no_data,
    );
    report(
        &mut problems,
        "not in the landscape (ranked without the graph)",
        &outside,
    );
    Scores {
        entities: scored,
        problems,
    }
}

fn report(problems: &mut Vec<String>, what: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    problems.push(format!(
        "{} entities with {what}: {}{more}",
        names.len(),
        shown.join(", ")
    ));
}

/// Per scored entity, the downstream latency its callers pass to it: each caller's worst
/// abnormal call latency, shared among everything it calls in proportion to the calls'
/// weights (equally without weights).
fn downstream_blame(graph: &LandscapeGraph, scored: &[Scored], by_node: &[usize]) -> Vec<f64> {
    let mut blame = vec![0.0; scored.len()];
    for caller in scored.iter().filter(|s| s.downstream > 0.0) {
        let Some(ix) = caller.ix else {
            continue;
        };
        let callees: Vec<(usize, f64)> = graph
            .live_edges(ix, Direction::Outgoing, Some(Relation::Calls))
            .map(|(e, callee)| {
                let edge = &graph.petgraph()[e];
                let weight = edge
                    .version_at(i64::MAX)
                    .weight
                    .filter(|w| w.is_finite() && *w > 0.0)
                    .unwrap_or(1.0);
                (by_node[callee.index()], weight)
            })
            .collect();
        let total: f64 = callees.iter().map(|c| c.1).sum();
        for (j, weight) in callees {
            if j != usize::MAX && total > 0.0 {
                blame[j] += caller.downstream * weight / total;
            }
        }
    }
    blame
}

/// Ranks root-cause candidates over `graph` (the second half of [`colour`]).
pub fn rank(graph: &LandscapeGraph, scores: &Scores, params: &RankParams) -> Vec<Candidate> {
    let scored = &scores.entities;
    let mut by_node = vec![usize::MAX; graph.node_bound()];
    for (i, s) in scored.iter().enumerate() {
        if let Some(ix) = s.ix {
            by_node[ix.index()] = i;
        }
    }
    // The scored entities next to `i` along dependency edges (into a reused buffer).
    let neighbours = |i: usize, direction: Direction, out: &mut Vec<(Relation, usize)>| {
        out.clear();
        let Some(ix) = scored[i].ix else {
            return;
        };
        for (e, other) in graph.live_edges(ix, direction, None) {
            let relation = graph.petgraph()[e].relation;
            let j = by_node[other.index()];
            if j != usize::MAX && j != i && DEPENDS.contains(&relation) {
                out.push((relation, j));
            }
        }
    };
    let mut near = Vec::new();
    // Own abnormality, symptoms discounted where a dependency explains them.
    let effective: Vec<(f64, Option<(Relation, usize)>)> = (0..scored.len())
        .map(|i| {
            let s = &scored[i];
            neighbours(i, Direction::Outgoing, &mut near);
            let explainer = near.iter().max_by(|a, b| {
                scored[a.1]
                    .colour
                    .score
                    .total_cmp(&scored[b.1].colour.score)
            });
            // An entity known only by its slow calls is not itself suspect (its callees
            // are): it ranks from 0, not from nothing.
            let floor = if s.own.max(s.symptom) == f64::NEG_INFINITY {
                s.downstream.min(0.0)
            } else {
                f64::NEG_INFINITY
            };
            match explainer {
                // Latency travels up: any anomalous dependency explains it.
                Some(&(r, j))
                    if s.symptom > 0.0
                        && scored[j].colour.score >= s.symptom.min(params.anomalous_from) =>
                {
                    let own = s.own.max(s.symptom * params.explained_weight);
                    (own.max(floor), Some((r, j)))
                }
                _ => (s.own.max(s.symptom).max(floor), None),
            }
        })
        .collect();
    // Only an abnormal node explains its dependents; a normal one under them gains
    // nothing from their trouble.
    let explains_others = |own: f64| own >= params.anomalous_from;
    let blame = downstream_blame(graph, scored, &by_node);
    let totals: Vec<f64> = (0..scored.len())
        .map(|i| {
            let own = effective[i].0 + params.downstream_weight * blame[i];
            neighbours(i, Direction::Incoming, &mut near);
            if near.is_empty() {
                return own;
            }
            let abnormal = (own / params.anomalous_from.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0);
            // Abnormality only: a quiet dependent (a negative score) takes nothing away.
            let mean = near
                .iter()
                .map(|(_, j)| effective[*j].0.max(0.0))
                .sum::<f64>()
                / near.len() as f64;
            own + params.support_weight * abnormal * mean
        })
        .collect();
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|a, b| {
        totals[*b]
            .total_cmp(&totals[*a])
            .then_with(|| scored[*a].colour.entity.cmp(&scored[*b].colour.entity))
    });
    order.truncate(params.max_candidates);
    let link = |from: usize, relation: Relation, to: usize, score: f64| Link {
        from: scored[from].colour.entity.clone(),
        relation,
        to: scored[to].colour.entity.clone(),
        score,
    };
    order
        .into_iter()
        .map(|i| {
            let s = &scored[i];
            let (own, explainer) = effective[i];
            let mut explains = Vec::new();
            if explains_others(own) {
                neighbours(i, Direction::Incoming, &mut near);
                explains = near
                    .iter()
                    .filter(|(_, j)| scored[*j].colour.score >= params.anomalous_from)
                    .map(|(r, j)| link(*j, *r, i, scored[*j].colour.score))
                    .collect();
                explains.sort_by(|a, b| b.score.total_cmp(&a.score));
            }
            let mut blamed_by = Vec::new();
            if blame[i] > 0.0 {
                neighbours(i, Direction::Incoming, &mut near);
                blamed_by = near
                    .iter()
                    .filter(|(r, j)| {
                        *r == Relation::Calls && scored[*j].downstream >= params.anomalous_from
                    })
                    .map(|(r, j)| link(*j, *r, i, scored[*j].downstream))
                    .collect();
                blamed_by.sort_by(|a, b| b.score.total_cmp(&a.score));
            }
            Candidate {
                entity: s.colour.entity.clone(),
                kind: s.colour.kind.clone(),
                layer: s.colour.layer,
                score: totals[i],
                evidence: CandidateEvidence {
                    metrics: s.colour.evidence.clone(),
                    own,
                    explained_by: explainer.map(|(r, j)| link(i, r, j, scored[j].colour.score)),
                    explains,
                    downstream: blame[i],
                    blamed_by,
                },
            }
        })
        .collect()
}
