//! A plant built from measurements instead of a live cluster: nginx's latency for a
//! request rate, a replica count, how the replicas are split over two nodes and what
//! co-runs on the first node, looked up in the NTUA profiling runs (see
//! `tests/data/README.md` for their provenance).
//!
//! What the runs measured, and how the plant reads it:
//! - *Memento* runs put the co-runners on nginx's node: every replica on the noisy node
//!   (node 0) is a Memento test of the same co-runners, replicas and rate.
//! - *TheGame* runs put them on the other node of the same machine: every replica on the
//!   quiet node (node 1) is a TheGame test of the same co-runners.
//! - A split (some replicas on each node) was measured only at 1,500 rps (The Substance),
//!   so it is *derived*: requests spread evenly over replicas, so the split's latency is
//!   the mixture of the two sides' latency distributions; each side's distribution is
//!   interpolated linearly between its measured p50, p90, p95, p99 and maximum, and the
//!   plant reports the mixture's 99th percentile.
//! - Rates between measured ones are interpolated linearly (clamped to the measured
//!   range); a replica count a run family did not measure for these co-runners takes the
//!   nearest one measured; repeated measurements of one point are averaged.
//!
//! Nothing in the autopilot reads this table: the planner sees only the telemetry the
//! plant emits (its p99, its rate, each node's PCM counters) and its own models.

use std::collections::BTreeMap;

use dcpilot_schemas::names::PCM_SYSTEM_METRICS;
use dcpilot_schemas::TelemetrySample;

use dcpilot_foreground::landscape::HostCounters;

/// The latency percentiles a test measured, in ms: p50, p90, p95, p99, max.
pub type Percentiles = [f64; 5];
const LEVELS: [f64; 5] = [0.50, 0.90, 0.95, 0.99, 1.0];

/// One measured point: a rate, its latency percentiles and the host's mean counters.
#[derive(Debug, Clone)]
struct Point {
    rps: f64,
    latency: Percentiles,
    counters: HostCounters,
}

/// Where the co-runners ran relative to nginx in a run family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    /// On nginx's node (Memento).
    Same,
    /// On the other node (TheGame).
    Other,
}

/// The quiet scenario's name in the plant (the runs call it `Baseline0`..`Baseline2`).
pub const QUIET: &str = "none";

/// The measurements, by (side, co-runners, replicas), each a curve over the rate.
#[derive(Debug, Clone, Default)]
pub struct Plant {
    curves: BTreeMap<(Side, String, u32), Vec<Point>>,
}

/// Why a plant cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no plant: {0}")]
pub struct PlantError(pub String);

impl Plant {
    /// The plant of every Memento and TheGame run among `samples` (an NTUA trace as
    /// `read_trace` gives it) whose run name `keep` accepts.
    pub fn from_samples(
        samples: &[TelemetrySample],
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, PlantError> {
        #[derive(Default)]
        struct Test {
            rps: Option<f64>,
            latency: [Option<f64>; 5],
            counters: [(f64, u32); PCM_SYSTEM_METRICS.len()],
            side: Option<Side>,
            interference: String,
            replicas: Option<u32>,
        }
        let mut tests: BTreeMap<(String, String), Test> = BTreeMap::new();
        for s in samples {
            let (Some(run), Some(test)) = (s.labels.get("run"), s.labels.get("test")) else {
                continue;
            };
            let side = if run.starts_with("Memento") {
                Side::Same
            } else if run.starts_with("TheGame") {
                Side::Other
            } else {
                continue;
            };
            if !keep(run) {
                continue;
            }
            let t = tests.entry((run.clone(), test.clone())).or_default();
            t.side = Some(side);
            if let Some(name) = s.labels.get("interference") {
                t.interference = scenario_name(name);
            }
            if let Some(r) = s.labels.get("replicas") {
                t.replicas = r.parse().ok();
            }
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
                metric => {
                    if let Some(i) = PCM_SYSTEM_METRICS.iter().position(|(_, m)| *m == metric) {
                        t.counters[i].0 += s.value;
                        t.counters[i].1 += 1;
                    }
                    continue;
                }
            };
            t.latency[level] = Some(s.value);
        }
        let mut points: BTreeMap<(Side, String, u32), Vec<Point>> = BTreeMap::new();
        for t in tests.into_values() {
            let (Some(side), Some(replicas), Some(rps)) = (t.side, t.replicas, t.rps) else {
                continue;
            };
            let Some(latency) = t
                .latency
                .iter()
                .copied()
                .collect::<Option<Vec<f64>>>()
                .filter(|l| l.windows(2).all(|w| w[0] <= w[1]) && l[0] > 0.0)
            else {
                continue;
            };
            let mut counters = HostCounters::default();
            for (i, (sum, n)) in t.counters.iter().enumerate() {
                if *n > 0 {
                    counters.0[i] = sum / f64::from(*n);
                }
            }
            points
                .entry((side, t.interference, replicas))
                .or_default()
                .push(Point {
                    rps,
                    latency: [latency[0], latency[1], latency[2], latency[3], latency[4]],
                    counters,
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
                    "no quiet ({QUIET}) tests of the {} runs",
                    match side {
                        Side::Same => "Memento",
                        Side::Other => "TheGame",
                    }
                )));
            }
        }
        Ok(Self { curves })
    }

    /// Co-runner scenarios measured on both sides (the quiet one included), by name.
    pub fn scenarios(&self) -> Vec<String> {
        let on = |side: Side| {
            self.curves
                .keys()
                .filter(move |(s, _, _)| *s == side)
                .map(|(_, name, _)| name.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        on(Side::Same)
            .intersection(&on(Side::Other))
            .cloned()
            .collect()
    }

    /// nginx's p99 (ms) at `rps` with `placement[0]` replicas on the node running
    /// `scenario` (the noisy node) and `placement[1]` on the other node; `None` without replicas or when the
    /// scenario was not measured on a side that has replicas.
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

    /// The PCM counters a node reports: the noisy node those of the test of `scenario`
    /// nearest this rate and replica count, the quiet node those of a quiet test.
    pub fn counters(&self, rps: f64, replicas: u32, scenario: &str, noisy: bool) -> HostCounters {
        let scenario = if noisy { scenario } else { QUIET };
        self.curve(Side::Same, scenario, replicas.max(1))
            .and_then(|curve| {
                curve
                    .iter()
                    .min_by(|a, b| (a.rps - rps).abs().total_cmp(&(b.rps - rps).abs()))
            })
            .map(|p| p.counters)
            .unwrap_or_default()
    }

    /// The measured curve of a scenario, at `replicas` or the nearest replica count
    /// measured for it.
    fn curve(&self, side: Side, scenario: &str, replicas: u32) -> Option<&[Point]> {
        self.curves
            .range((side, scenario.to_string(), 0)..=(side, scenario.to_string(), u32::MAX))
            .min_by_key(|((_, _, r), _)| (r.abs_diff(replicas), *r))
            .map(|(_, points)| points.as_slice())
    }

    /// Latency percentiles at `rps`, interpolated linearly between measured rates.
    fn latency(&self, side: Side, scenario: &str, replicas: u32, rps: f64) -> Option<Percentiles> {
        let curve = self.curve(side, scenario, replicas)?;
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
}

/// The runs' scenario names as the plant keys them: every baseline is the quiet one.
fn scenario_name(name: &str) -> String {
    if name.starts_with("Baseline") {
        QUIET.to_string()
    } else {
        name.to_string()
    }
}

/// Points sorted by rate, repeated measurements of one rate averaged.
fn average_by_rate(points: &mut [Point]) -> Vec<Point> {
    points.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mut out: Vec<Point> = Vec::new();
    for group in points.chunk_by(|a, b| a.rps == b.rps) {
        let n = group.len() as f64;
        let mut latency = [0.0; 5];
        let mut counters = HostCounters::default();
        for (i, v) in latency.iter_mut().enumerate() {
            *v = group.iter().map(|p| p.latency[i]).sum::<f64>() / n;
        }
        for (i, c) in counters.0.iter_mut().enumerate() {
            let known: Vec<f64> = group
                .iter()
                .map(|p| p.counters.0[i])
                .filter(|v| v.is_finite())
                .collect();
            if !known.is_empty() {
                *c = known.iter().sum::<f64>() / known.len() as f64;
            }
        }
        out.push(Point {
            rps: group[0].rps,
            latency,
            counters,
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

    fn test_samples(
        run: &str,
        test: &str,
        scenario: &str,
        replicas: u32,
        rps: f64,
        p: [f64; 5],
    ) -> Vec<TelemetrySample> {
        let labels = BTreeMap::from([
            ("run".to_string(), run.to_string()),
            ("test".to_string(), test.to_string()),
            ("interference".to_string(), scenario.to_string()),
            ("replicas".to_string(), replicas.to_string()),
        ]);
        let metrics = [
            ("given_rps", rps),
            ("p50_latency_ms", p[0]),
            ("p90_latency_ms", p[1]),
            ("p95_latency_ms", p[2]),
            ("p99_latency_ms", p[3]),
            ("max_latency_ms", p[4]),
            ("pcm_ipc", 1.0 / p[3]),
        ];
        metrics
            .into_iter()
            .map(|(metric, value)| TelemetrySample {
                timestamp_ms: 0,
                entity: format!("nginx-{run}"),
                host: None,
                workload: Some("nginx".into()),
                metric: metric.into(),
                value,
                labels: labels.clone(),
            })
            .collect()
    }

    fn plant() -> Plant {
        let mut s = Vec::new();
        for (run, base) in [("Memento_V01", 1.0), ("TheGame_V01", 1.0)] {
            s.extend(test_samples(
                run,
                "q1",
                "Baseline0",
                2,
                1000.0,
                [0.1, 0.2, 0.25, 0.3, 1.0],
            ));
            s.extend(test_samples(
                run,
                "q2",
                "Baseline1",
                2,
                3000.0,
                [0.1, 0.2, 0.25, 0.5, 1.0],
            ));
            let noisy = if run.starts_with("Memento") {
                4.0
            } else {
                base
            };
            s.extend(test_samples(
                run,
                "n1",
                "2_L3",
                2,
                1000.0,
                [0.2, 0.5, 1.0, 2.0 * noisy, 4.0 * noisy],
            ));
        }
        Plant::from_samples(&s, |_| true).expect("plant")
    }

    #[test]
    fn looks_up_interpolates_and_mixes() {
        let p = plant();
        assert_eq!(p.scenarios(), ["2_L3", "none"]);
        // Quiet: interpolated between 1000 and 3000 rps, clamped outside.
        assert!((p.p99(2000.0, [2, 0], QUIET).expect("p99") - 0.4).abs() < 1e-12);
        assert!((p.p99(9000.0, [1, 1], QUIET).expect("p99") - 0.5).abs() < 1e-9);
        // Noisy node vs the other node; 3 replicas takes the nearest measured (2).
        assert_eq!(p.p99(1000.0, [3, 0], "2_L3"), Some(8.0));
        assert_eq!(p.p99(1000.0, [0, 2], "2_L3"), Some(2.0));
        // A split lies between, and its share on the noisy node raises it.
        let half = p.p99(1000.0, [1, 1], "2_L3").expect("p99");
        let quarter = p.p99(1000.0, [1, 3], "2_L3").expect("p99");
        assert!(
            2.0 < quarter && quarter < half && half < 8.0,
            "{quarter} {half}"
        );
        assert_eq!(p.p99(1000.0, [0, 0], QUIET), None);
        assert_eq!(p.p99(1000.0, [1, 0], "unmeasured"), None);
        // The noisy node reports its test's counters, the quiet one a quiet test's.
        assert_eq!(p.counters(1000.0, 2, "2_L3", true).0[0], 1.0 / 8.0);
        assert_eq!(p.counters(1000.0, 2, "2_L3", false).0[0], 1.0 / 0.3);
    }

    #[test]
    fn mixture_of_one_distribution_is_itself() {
        let a = [0.1, 0.2, 0.3, 0.4, 1.0];
        for share in [0.0, 0.3, 1.0] {
            assert!((mixture_quantile(&a, &a, share, 0.99) - 0.4).abs() < 1e-9);
        }
        // All requests on the slow side: its own p99.
        let b = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((mixture_quantile(&b, &a, 1.0, 0.99) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn needs_quiet_tests_of_both_families() {
        let s = test_samples(
            "Memento_V01",
            "q",
            "Baseline0",
            1,
            100.0,
            [0.1, 0.2, 0.3, 0.4, 1.0],
        );
        let e = Plant::from_samples(&s, |_| true).expect_err("no TheGame runs");
        assert!(e.0.contains("TheGame"), "{e}");
    }
}
