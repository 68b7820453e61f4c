//! A plant built only from measurements instead of a live cluster: nginx's latency for a
//! request rate, a replica count, how the replicas are split over two nodes and what
//! co-runs on one of them, and what each node's counters read — looked up in NTUA-format
//! profiling runs (provenance in `tests/data/README.md`) laid out by a [`Layout`].
//!
//! What the runs measured, and how the plant reads it:
//! - A run whose layout puts the co-runners on nginx's node measured every replica on the
//!   *noisy* node; one that puts them on the other node measured every replica on the
//!   *quiet* node, next to the noisy one. Each test's per-node counters come from its own
//!   per-core file: the node that held nginx, and the other one.
//! - Replica counts: each count is its own measurement; a count between two measured ones
//!   is interpolated linearly between them, one outside the measured range takes the
//!   nearest (the report states the range).
//! - Rates between measured ones are interpolated linearly (clamped to the measured
//!   range); repeated measurements of one point are averaged (in log space).
//! - A split (some replicas on each node) is the mixture of the two sides' latency
//!   distributions (requests spread evenly over replicas); each side's distribution is
//!   interpolated linearly between its measured p50, p90, p95, p99 and maximum.
//!   [`Plant::validate_splits`] checks this against measured splits.
//! - Measurement noise: the spread of repeated tests of one point (same side, scenario,
//!   replicas and rate), as log residuals from their mean; a replay draws one per minute.
//!
//! Nothing in a controller reads this table: the autopilot and the baselines see only the
//! telemetry the plant emits (its p99 and rate, each node's counters) and their own models.

use std::collections::{BTreeMap, BTreeSet};

use dcpilot_schemas::names::PCM_SYSTEM_METRICS;
use dcpilot_schemas::TelemetrySample;

use dcpilot_foreground::landscape::HostCounters;

use crate::datasets::layout::{CO_RUNNER_NODE, NGINX_NODE, NODE};

/// The latency percentiles a test measured, in ms: p50, p90, p95, p99, max.
pub type Percentiles = [f64; 5];
const LEVELS: [f64; 5] = [0.50, 0.90, 0.95, 0.99, 1.0];

/// One measured point: a rate, its latency percentiles and both nodes' mean counters.
#[derive(Debug, Clone)]
struct Point {
    rps: f64,
    latency: Percentiles,
    /// The node that held nginx.
    nginx_node: HostCounters,
    /// The other node.
    other_node: HostCounters,
}

/// Where the co-runners ran relative to nginx in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// On nginx's node.
    Same,
    /// On the other node.
    Other,
}

/// The quiet scenario's name in the plant (the runs call it `Baseline0`..`Baseline2`).
pub const QUIET: &str = "none";

/// The measurements, by (side, co-runners, replicas), each a curve over the rate.
#[derive(Debug, Clone, Default)]
pub struct Plant {
    curves: BTreeMap<(Side, String, u32), Vec<Point>>,
    /// Log residuals of repeated measurements of one point (the plant's noise).
    noise: Vec<f64>,
}

/// Why a plant cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no plant: {0}")]
pub struct PlantError(pub String);

/// One test as the samples give it.
#[derive(Default)]
struct Test {
    run: String,
    rps: Option<f64>,
    latency: [Option<f64>; 5],
    /// Per node: each counter's (sum, count).
    counters: BTreeMap<String, [(f64, u32); PCM_SYSTEM_METRICS.len()]>,
    nginx: Option<String>,
    co_runners: Option<String>,
    interference: String,
    replicas: Option<u32>,
    /// The `replicas` label as written (a split's `weighted_<a>_<b>`).
    split_label: Option<String>,
}

impl Plant {
    /// The plant of NTUA-format `tests` (read with a layout, so tests carry where nginx
    /// and the co-runners ran): quiet (baseline) tests of every run, interference
    /// tests only of the runs `noisy_from` accepts. Runs with nginx split over nodes are
    /// left out (they are the splits [`Plant::validate_splits`] judges against).
    pub fn from_tests(
        tests: &Tests,
        noisy_from: impl Fn(&str) -> bool,
    ) -> Result<Self, PlantError> {
        let mut points: BTreeMap<(Side, String, u32), Vec<Point>> = BTreeMap::new();
        let mut repeats: BTreeMap<(Side, String, u32, u64), Vec<f64>> = BTreeMap::new();
        for t in tests.0.values() {
            let (Some(nginx), Some(co_runners), Some(replicas), Some(rps)) =
                (&t.nginx, &t.co_runners, t.replicas, t.rps)
            else {
                continue;
            };
            if t.interference != QUIET && !noisy_from(&t.run) {
                continue;
            }
            let Some(latency) = t.percentiles() else {
                continue;
            };
            let side = if nginx == co_runners {
                Side::Same
            } else {
                Side::Other
            };
            let nginx_node = t.mean_counters(Some(nginx));
            // The other node of the test: the co-runners' when they were not on nginx's.
            let other = match side {
                Side::Other => Some(co_runners),
                Side::Same => t.counters.keys().find(|n| *n != nginx),
            };
            let other_node = t.mean_counters(other);
            repeats
                .entry((side, t.interference.clone(), replicas, rps.to_bits()))
                .or_default()
                .push(latency[3]);
            points
                .entry((side, t.interference.clone(), replicas))
                .or_default()
                .push(Point {
                    rps,
                    latency,
                    nginx_node,
                    other_node,
                });
        }
        let curves: BTreeMap<_, _> = points
            .into_iter()
            .map(|(key, mut points)| (key, average_by_rate(&mut points)))
            .collect();
        for side in [Side::Same, Side::Other] {
            if !curves
                .keys()
                .any(|(s, name, _)| *s == side && name == QUIET)
            {
                return Err(PlantError(format!(
                    "no quiet (baseline) tests with the co-runners {} nginx's node",
                    match side {
                        Side::Same => "on",
                        Side::Other => "beside",
                    }
                )));
            }
        }
        let mut noise = Vec::new();
        for p99s in repeats.values().filter(|v| v.len() > 1) {
            let mean = p99s.iter().map(|p| p.ln()).sum::<f64>() / p99s.len() as f64;
            noise.extend(p99s.iter().map(|p| p.ln() - mean));
        }
        Ok(Self { curves, noise })
    }

    /// Co-runner scenarios measured on both sides (the quiet one included), by name.
    pub fn scenarios(&self) -> Vec<String> {
        let on = |side: Side| {
            self.curves
                .keys()
                .filter(move |(s, _, _)| *s == side)
                .map(|(_, name, _)| name.clone())
                .collect::<BTreeSet<_>>()
        };
        on(Side::Same)
            .intersection(&on(Side::Other))
            .cloned()
            .collect()
    }

    /// The replica counts measured for `scenario` on `side`.
    pub fn replica_counts(&self, side: Side, scenario: &str) -> Vec<u32> {
        self.curves
            .keys()
            .filter(|(s, name, _)| *s == side && name == scenario)
            .map(|(_, _, r)| *r)
            .collect()
    }

    /// The log residuals of repeated measurements the plant's noise is drawn from.
    pub fn noise(&self) -> &[f64] {
        &self.noise
    }

    /// nginx's p99 (ms) at `rps` with `placement[0]` replicas on the node running
    /// `scenario` (the noisy node) and `placement[1]` on the other node; `None` without
    /// replicas or when the scenario was not measured on a side that has replicas.
    pub fn p99(&self, rps: f64, placement: [u32; 2], scenario: &str) -> Option<f64> {
        let replicas = placement[0] + placement[1];
        if replicas == 0 {
            return None;
        }
        let on = |side: Side| self.latency(side, scenario, replicas, rps);
        match placement {
            [_, 0] => on(Side::Same).map(|l| l[3]),
            [0, _] => on(Side::Other).map(|l| l[3]),
            [noisy, _] => {
                let share = f64::from(noisy) / f64::from(replicas);
                Some(mixture_quantile(
                    &on(Side::Same)?,
                    &on(Side::Other)?,
                    share,
                    0.99,
                ))
            }
        }
    }

    /// What each node's counters read at `rps` with `placement` (replicas on the noisy
    /// node, on the other): a node holding replicas reads as the node that held nginx in
    /// the test of its side (the noisy node: co-runners on nginx's node; the other:
    /// co-runners beside it), a node without replicas as the node that did not; every
    /// test of the scenario at the nearest rate and replica count.
    pub fn counters(&self, rps: f64, placement: [u32; 2], scenario: &str) -> [HostCounters; 2] {
        let replicas = (placement[0] + placement[1]).max(1);
        let read = |side: Side, holds: bool| {
            self.nearest(side, scenario, replicas, rps)
                .map(|p| if holds { p.nginx_node } else { p.other_node })
                .unwrap_or_default()
        };
        [
            // The noisy node: with replicas, as nginx's node with co-runners on it;
            // without, as the co-runners' node beside nginx.
            if placement[0] > 0 {
                read(Side::Same, true)
            } else {
                read(Side::Other, false)
            },
            if placement[1] > 0 {
                read(Side::Other, true)
            } else {
                read(Side::Same, false)
            },
        ]
    }

    /// The measured point of a scenario nearest this rate, at the measured replica count at
    /// or below `replicas` (the lowest above when none is).
    fn nearest(&self, side: Side, scenario: &str, replicas: u32, rps: f64) -> Option<&Point> {
        let (_, curve) = self.around(side, scenario, replicas)?.0;
        curve
            .iter()
            .min_by(|a, b| (a.rps - rps).abs().total_cmp(&(b.rps - rps).abs()))
    }

    /// The measured curves around `replicas`: the nearest count at or below and at or
    /// above (the same when it was measured or lies outside the measured range).
    #[allow(clippy::type_complexity)]
    fn around<'a>(
        &'a self,
        side: Side,
        scenario: &str,
        replicas: u32,
    ) -> Option<((u32, &'a [Point]), (u32, &'a [Point]))> {
        let key = |r: u32| (side, scenario.to_string(), r);
        let entry =
            |((_, _, r), points): (&(Side, String, u32), &'a Vec<Point>)| (*r, points.as_slice());
        let below = self
            .curves
            .range(key(0)..=key(replicas))
            .next_back()
            .map(entry);
        let above = self
            .curves
            .range(key(replicas)..=key(u32::MAX))
            .next()
            .map(entry);
        match (below, above) {
            (Some(b), Some(a)) => Some((b, a)),
            (Some(only), None) | (None, Some(only)) => Some((only, only)),
            (None, None) => None,
        }
    }

    /// Latency percentiles at `rps` and `replicas`, interpolated linearly between
    /// measured rates and between measured replica counts.
    fn latency(&self, side: Side, scenario: &str, replicas: u32, rps: f64) -> Option<Percentiles> {
        let ((r0, below), (r1, above)) = self.around(side, scenario, replicas)?;
        let low = at_rate(below, rps)?;
        if r0 == r1 {
            return Some(low);
        }
        let high = at_rate(above, rps)?;
        let t = f64::from(replicas - r0) / f64::from(r1 - r0);
        let mut out = [0.0; 5];
        for (i, v) in out.iter_mut().enumerate() {
            *v = low[i] + t * (high[i] - low[i]);
        }
        Some(out)
    }

    /// The plant's split model against measured splits: for every test of `tests` that
    /// split nginx over two nodes (a run whose layout names no single nginx node; its
    /// replicas `weighted_<a>_<b>` or `balanced_<n>`, node `a` first in the layout's
    /// order: `nodes`, the layout's node names sorted), the measured p99 next to the
    /// plant's, by scenario.
    pub fn validate_splits(&self, tests: &Tests, nodes: &[String]) -> Vec<SplitCheck> {
        let mut by_scenario: BTreeMap<String, SplitCheck> = BTreeMap::new();
        for t in tests.0.values() {
            let (None, Some(co_runners), Some(rps)) = (&t.nginx, &t.co_runners, t.rps) else {
                continue;
            };
            let (Some(split), Some(measured)) = (split_of(t), t.latency[3]) else {
                continue;
            };
            // The layout's first two nodes, in order; the co-runners on one of them.
            let Some(noisy) = nodes.iter().take(2).position(|n| n == co_runners) else {
                continue;
            };
            let placement = [split[noisy], split[1 - noisy]];
            let Some(predicted) = self.p99(rps, placement, &t.interference) else {
                continue;
            };
            let check = by_scenario
                .entry(t.interference.clone())
                .or_insert_with(|| SplitCheck {
                    scenario: t.interference.clone(),
                    ..SplitCheck::default()
                });
            check.splits += 1;
            check.measured_mean_ms += measured;
            check.predicted_mean_ms += predicted;
            check.mean_abs_error_ms += (predicted - measured).abs();
            check.mean_abs_pct_error += (predicted - measured).abs() / measured.max(f64::EPSILON);
        }
        by_scenario
            .into_values()
            .map(|mut c| {
                let n = f64::from(c.splits);
                c.measured_mean_ms /= n;
                c.predicted_mean_ms /= n;
                c.mean_abs_error_ms /= n;
                c.mean_abs_pct_error /= n;
                c
            })
            .collect()
    }
}

/// The split model's error on one scenario's measured splits.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SplitCheck {
    /// The co-runner scenario (`none`: quiet).
    pub scenario: String,
    /// Splits measured.
    pub splits: u32,
    /// Mean measured p99, ms.
    pub measured_mean_ms: f64,
    /// Mean p99 the plant gives for the same splits, ms.
    pub predicted_mean_ms: f64,
    /// Mean absolute error, ms.
    pub mean_abs_error_ms: f64,
    /// Mean absolute error relative to the measured p99.
    pub mean_abs_pct_error: f64,
}

/// One test with nginx on a single node, as a rule or calibration reads it.
#[derive(Debug, Clone)]
pub struct MeasuredTest {
    /// The run.
    pub run: String,
    /// The co-runner scenario (`none`: quiet).
    pub scenario: String,
    /// nginx's replicas.
    pub replicas: u32,
    /// Requests per second.
    pub rps: f64,
    /// The measured p99, ms.
    pub p99_ms: f64,
    /// The mean counters of the node nginx ran on.
    pub nginx_node: HostCounters,
    /// Whether the co-runners ran on that node too.
    pub co_runners_on_its_node: bool,
}

/// Replicas per node of a split test, in the layout's node order: `weighted_<a>_<b>`
/// (a on the first node, b on the second) or `balanced_<n>` (n on each).
fn split_of(t: &Test) -> Option<[u32; 2]> {
    let label = t.split_label.as_deref()?;
    if let Some(n) = label.strip_prefix("balanced_") {
        let n = n.parse().ok()?;
        return Some([n, n]);
    }
    let (a, b) = label.strip_prefix("weighted_")?.split_once('_')?;
    Some([a.parse().ok()?, b.parse().ok()?])
}

/// Every test of NTUA-format samples, by (run, test): read once, for the plant, the
/// split check and what the rule and the HPA are fitted on.
#[derive(Default)]
pub struct Tests(BTreeMap<(String, String), Test>);

impl Tests {
    /// The tests of `samples`.
    pub fn of(samples: &[TelemetrySample]) -> Self {
        let mut tests: BTreeMap<(String, String), Test> = BTreeMap::new();
        for s in samples {
            let (Some(run), Some(test)) = (s.labels.get("run"), s.labels.get("test")) else {
                continue;
            };
            let t = tests.entry((run.clone(), test.clone())).or_default();
            t.run.clone_from(run);
            if let Some(node) = s.labels.get(NODE) {
                if let Some(i) = PCM_SYSTEM_METRICS.iter().position(|(_, m)| *m == s.metric) {
                    let c = t.counters.entry(node.clone()).or_default();
                    c[i].0 += s.value;
                    c[i].1 += 1;
                }
                continue;
            }
            if s.workload.as_deref() != Some("nginx") {
                continue;
            }
            if let Some(name) = s.labels.get("interference") {
                t.interference = scenario_name(name);
            }
            if let Some(r) = s.labels.get("replicas") {
                t.replicas = r.parse().ok();
                t.split_label = Some(r.clone());
            }
            t.nginx = s.labels.get(NGINX_NODE).cloned();
            t.co_runners = s.labels.get(CO_RUNNER_NODE).cloned();
            let level = match s.metric.as_str() {
                "given_rps" => {
                    t.rps = Some(s.value);
                    continue;
                }
                "p50_latency_ms" => 0,
                "p90_latency_ms" => 1,
                "p95_latency_ms" => 2,
                "p99_latency_ms" => 3,
                "max_latency_ms" => 4,
                _ => continue,
            };
            t.latency[level] = Some(s.value);
        }
        Self(tests)
    }

    /// The tests of runs `keep` accepts with nginx on one node and a p99.
    pub fn measured(&self, keep: impl Fn(&str) -> bool) -> Vec<MeasuredTest> {
        self.0
            .values()
            .filter(|t| keep(&t.run))
            .filter_map(|t| {
                Some(MeasuredTest {
                    nginx_node: t.mean_counters(Some(t.nginx.as_ref()?)),
                    co_runners_on_its_node: t.nginx == t.co_runners,
                    replicas: t.replicas?,
                    rps: t.rps?,
                    p99_ms: t.latency[3].filter(|p| *p > 0.0)?,
                    scenario: t.interference.clone(),
                    run: t.run.clone(),
                })
            })
            .collect()
    }
}

impl Test {
    /// The measured percentiles, if all are there, positive and ordered.
    fn percentiles(&self) -> Option<Percentiles> {
        let l: Vec<f64> = self.latency.iter().copied().collect::<Option<_>>()?;
        (l.windows(2).all(|w| w[0] <= w[1]) && l[0] > 0.0).then(|| [l[0], l[1], l[2], l[3], l[4]])
    }

    /// A node's mean counters over the test (unreported: NaN).
    fn mean_counters(&self, node: Option<&String>) -> HostCounters {
        let mut out = HostCounters::default();
        if let Some(sums) = node.and_then(|n| self.counters.get(n)) {
            for (i, (sum, n)) in sums.iter().enumerate() {
                if *n > 0 {
                    out.0[i] = sum / f64::from(*n);
                }
            }
        }
        out
    }
}

/// Latency percentiles of a curve at `rps`, linear between measured rates, clamped.
fn at_rate(curve: &[Point], rps: f64) -> Option<Percentiles> {
    let upper = curve.partition_point(|p| p.rps < rps);
    let (a, b) = match (upper.checked_sub(1), curve.get(upper)) {
        (None, Some(first)) => (first, first),
        (Some(below), None) => (&curve[below], &curve[below]),
        (Some(below), Some(above)) => (&curve[below], above),
        (None, None) => return None,
    };
    let t = if b.rps > a.rps {
        (rps - a.rps) / (b.rps - a.rps)
    } else {
        0.0
    };
    let mut out = [0.0; 5];
    for (i, v) in out.iter_mut().enumerate() {
        *v = a.latency[i] + t * (b.latency[i] - a.latency[i]);
    }
    Some(out)
}

/// The runs' scenario names as the plant keys them: every baseline is the quiet one.
fn scenario_name(name: &str) -> String {
    if name.starts_with("Baseline") {
        QUIET.to_string()
    } else {
        name.to_string()
    }
}

/// Points sorted by rate, repeated measurements of one rate averaged (latency in log
/// space: the noise is multiplicative).
fn average_by_rate(points: &mut [Point]) -> Vec<Point> {
    points.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mut out: Vec<Point> = Vec::new();
    for group in points.chunk_by(|a, b| a.rps == b.rps) {
        let n = group.len() as f64;
        let mut latency = [0.0; 5];
        for (i, v) in latency.iter_mut().enumerate() {
            *v = (group.iter().map(|p| p.latency[i].ln()).sum::<f64>() / n).exp();
        }
        let mean_of = |pick: fn(&Point) -> &HostCounters| {
            let mut counters = HostCounters::default();
            for (i, c) in counters.0.iter_mut().enumerate() {
                let known: Vec<f64> = group
                    .iter()
                    .map(|p| pick(p).0[i])
                    .filter(|v| v.is_finite())
                    .collect();
                if !known.is_empty() {
                    *c = known.iter().sum::<f64>() / known.len() as f64;
                }
            }
            counters
        };
        out.push(Point {
            rps: group[0].rps,
            latency,
            nginx_node: mean_of(|p| &p.nginx_node),
            other_node: mean_of(|p| &p.other_node),
        });
    }
    out
}

/// The fraction of requests faster than `x` ms for a latency distribution known by its
/// percentiles (linear between them; nothing is faster than 0, everything within max).
fn below(latency: &Percentiles, x: f64) -> f64 {
    if x >= latency[4] {
        return 1.0;
    }
    let mut previous = (0.0, 0.0);
    for (value, level) in latency.iter().zip(LEVELS) {
        if x < *value {
            let (v0, l0) = previous;
            return l0 + (level - l0) * (x - v0) / (value - v0);
        }
        previous = (*value, level);
    }
    1.0
}

/// The `q` quantile of a mixture: a share `share_a` of requests served as `a`, the rest as
/// `b` (bisection on the latency; both curves are monotone).
pub fn mixture_quantile(a: &Percentiles, b: &Percentiles, share_a: f64, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, a[4].max(b[4]));
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        let fraction = share_a * below(a, mid) + (1.0 - share_a) * below(b, mid);
        if fraction < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test's samples: nginx's (labelled with where it and the co-runners ran) and
    /// each node's IPC (`ipc` by node).
    fn test_samples(
        (run, test): (&str, &str),
        scenario: &str,
        replicas: &str,
        (nginx, co_runners): (Option<&str>, &str),
        rps: f64,
        p: [f64; 5],
        ipc: [(&str, f64); 2],
    ) -> Vec<TelemetrySample> {
        let mut labels = BTreeMap::from([
            ("run".to_string(), run.to_string()),
            ("test".to_string(), test.to_string()),
            ("interference".to_string(), scenario.to_string()),
            ("replicas".to_string(), replicas.to_string()),
            (CO_RUNNER_NODE.to_string(), co_runners.to_string()),
        ]);
        if let Some(nginx) = nginx {
            labels.insert(NGINX_NODE.to_string(), nginx.to_string());
        }
        let sample = |metric: &str, value: f64, labels: BTreeMap<String, String>, nginx: bool| {
            TelemetrySample {
                timestamp_ms: 0,
                entity: "e".into(),
                host: None,
                workload: nginx.then(|| "nginx".to_string()),
                metric: metric.into(),
                value,
                labels,
            }
        };
        let mut out: Vec<TelemetrySample> = [
            ("given_rps", rps),
            ("p50_latency_ms", p[0]),
            ("p90_latency_ms", p[1]),
            ("p95_latency_ms", p[2]),
            ("p99_latency_ms", p[3]),
            ("max_latency_ms", p[4]),
        ]
        .into_iter()
        .map(|(m, v)| sample(m, v, labels.clone(), true))
        .collect();
        for (node, value) in ipc {
            let mut labels = labels.clone();
            labels.insert(NODE.to_string(), node.to_string());
            out.push(sample("pcm_ipc", value, labels, false));
        }
        out
    }

    const SAME: (Option<&str>, &str) = (Some("b"), "b");
    const OTHER: (Option<&str>, &str) = (Some("b"), "a");

    fn samples() -> Vec<TelemetrySample> {
        let mut s = Vec::new();
        for (run, side) in [("M_V01", SAME), ("G_V01", OTHER)] {
            for (test, name, replicas, rps, p99) in [
                ("q1", "Baseline0", "1", 1000.0, 0.3),
                ("q2", "Baseline1", "1", 1000.0, 0.3 * 1.2_f64.powi(2)),
                ("q3", "Baseline0", "1", 3000.0, 0.5),
                ("q4", "Baseline0", "3", 1000.0, 0.2),
            ] {
                s.extend(test_samples(
                    (run, test),
                    name,
                    replicas,
                    side,
                    rps,
                    [0.1, 0.15, 0.18, p99, 1.0],
                    [("a", 1.0), ("b", 2.0)],
                ));
            }
            let noisy = if side == SAME { 4.0 } else { 1.0 };
            for (test, replicas) in [("n1", "1"), ("n3", "3")] {
                s.extend(test_samples(
                    (&format!("{run}_mix"), test),
                    "2_L3",
                    replicas,
                    side,
                    1000.0,
                    [0.2, 0.5, 1.0, 2.0 * noisy, 4.0 * noisy],
                    [("a", 0.5 * noisy), ("b", 1.0 / noisy)],
                ));
            }
        }
        s
    }

    #[test]
    fn looks_up_interpolates_and_mixes() {
        let p =
            Plant::from_tests(&Tests::of(&samples()), |run| run.contains("mix")).expect("plant");
        assert_eq!(p.scenarios(), ["2_L3", "none"]);
        assert_eq!(p.replica_counts(Side::Same, "2_L3"), [1, 3]);
        // Repeats averaged in log space (0.3 and 0.3 x 1.44: 0.36); rates interpolated
        // and clamped; replica counts interpolated between measured ones (1 and 3).
        assert!((p.p99(1000.0, [1, 0], QUIET).expect("p99") - 0.36).abs() < 1e-12);
        assert!((p.p99(2000.0, [1, 0], QUIET).expect("p99") - 0.43).abs() < 1e-12);
        assert!((p.p99(1000.0, [2, 0], QUIET).expect("p99") - 0.28).abs() < 1e-12);
        assert!((p.p99(1000.0, [4, 0], QUIET).expect("p99") - 0.2).abs() < 1e-12);
        // Noisy node vs the other node.
        let near = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-9);
        assert!(near(p.p99(1000.0, [1, 0], "2_L3"), 8.0));
        assert!(near(p.p99(1000.0, [0, 1], "2_L3"), 2.0));
        // A split lies between, and its share on the noisy node raises it.
        let half = p.p99(1000.0, [1, 1], "2_L3").expect("p99");
        let quarter = p.p99(1000.0, [1, 3], "2_L3").expect("p99");
        assert!(
            2.0 < quarter && quarter < half && half < 8.0,
            "{quarter} {half}"
        );
        assert_eq!(p.p99(1000.0, [0, 0], QUIET), None);
        assert_eq!(p.p99(1000.0, [1, 0], "unmeasured"), None);
        // The noise: the two quiet repeats, +-ln(1.2) around their mean, on each side.
        let mut noise = p.noise().to_vec();
        noise.sort_by(f64::total_cmp);
        assert_eq!(noise.len(), 4);
        assert!((noise[0] + 1.2_f64.ln()).abs() < 1e-12 && (noise[3] - 1.2_f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn each_node_reads_the_counters_of_its_role_in_the_same_test() {
        let p =
            Plant::from_tests(&Tests::of(&samples()), |run| run.contains("mix")).expect("plant");
        let ipc = |placement, scenario| -> [f64; 2] {
            let c = p.counters(1000.0, placement, scenario);
            [c[0].0[0], c[1].0[0]]
        };
        // Replicas on the noisy node: it reads as nginx's node with the co-runners (1/4),
        // the empty node as the other node of that test (0.5 x 4).
        assert_eq!(ipc([1, 0], "2_L3"), [0.25, 2.0]);
        // Replicas on the quiet node: the noisy node as the co-runners' node beside
        // nginx (0.5), nginx's node as nginx's node of that test (1).
        assert_eq!(ipc([0, 1], "2_L3"), [0.5, 1.0]);
        // Quiet: nginx's node and the other node of the baseline.
        assert_eq!(ipc([1, 0], QUIET), [2.0, 1.0]);
    }

    #[test]
    fn interference_comes_only_from_the_runs_asked_for() {
        let p =
            Plant::from_tests(&Tests::of(&samples()), |run| run.starts_with("M_")).expect("plant");
        // The G runs' interference is left out: 2_L3 is measured on one side only.
        assert_eq!(p.scenarios(), ["none"]);
        assert_eq!(p.p99(1000.0, [0, 1], "2_L3"), None);
    }

    #[test]
    fn splits_are_checked_against_measured_ones() {
        let mut s = samples();
        s.extend(test_samples(
            ("S_V01", "w"),
            "2_L3",
            "weighted_1_1",
            (None, "b"),
            1000.0,
            [0.2, 0.5, 1.0, 5.0, 8.0],
            [("a", 1.0), ("b", 1.0)],
        ));
        let tests = Tests::of(&s);
        let p = Plant::from_tests(&tests, |run| run.contains("mix")).expect("plant");
        let checks = p.validate_splits(&tests, &["a".to_string(), "b".to_string()]);
        assert_eq!(checks.len(), 1, "{checks:?}");
        let predicted = p.p99(1000.0, [1, 1], "2_L3").expect("p99");
        let c = &checks[0];
        assert_eq!((c.scenario.as_str(), c.splits), ("2_L3", 1));
        assert!((c.predicted_mean_ms - predicted).abs() < 1e-12);
        assert!((c.mean_abs_error_ms - (predicted - 5.0).abs()).abs() < 1e-12);
    }

    #[test]
    fn mixture_of_one_distribution_is_itself() {
        let a = [0.1, 0.2, 0.3, 0.4, 1.0];
        for share in [0.0, 0.3, 1.0] {
            assert!((mixture_quantile(&a, &a, share, 0.99) - 0.4).abs() < 1e-9);
        }
        let b = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((mixture_quantile(&b, &a, 1.0, 0.99) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn needs_quiet_tests_of_both_sides() {
        let s = test_samples(
            ("M_V01", "q"),
            "Baseline0",
            "1",
            SAME,
            100.0,
            [0.1, 0.2, 0.3, 0.4, 1.0],
            [("a", 1.0), ("b", 1.0)],
        );
        let e = Plant::from_tests(&Tests::of(&s), |_| true).expect_err("no other side");
        assert!(e.0.contains("beside"), "{e}");
    }
}
