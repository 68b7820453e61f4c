//! The rule an SRE writes first against noisy neighbours: a node whose counter crosses a
//! threshold is too noisy for the latency-critical workload. The counter, its direction
//! and the threshold are fitted on the training runs only, on the counters of nginx's
//! node: the split of their tests into "the objective broke because of co-runners on this
//! node" (p99 above it while the same point's quiet baseline is within it) and "the
//! objective held" that is best by balanced accuracy.

use std::collections::BTreeMap;

use dcpilot_foreground::landscape::HostCounters;
use serde::Serialize;

use super::plant::{MeasuredTest, QUIET};

/// The counters a rule may read (those the per-core files give per node).
const COUNTERS: [&str; 4] = [
    "pcm_ipc",
    "pcm_l3_misses_m",
    "pcm_l2_misses_m",
    "pcm_c0_residency_pct",
];

/// A fitted threshold on one node counter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRule {
    /// The counter.
    pub counter: String,
    /// Its position in [`HostCounters`].
    #[serde(skip)]
    pub index: usize,
    /// Noisy when above the threshold (else when below: IPC falls under contention).
    pub above: bool,
    /// The threshold.
    pub threshold: f64,
    /// Balanced accuracy on the training tests.
    pub balanced_accuracy: f64,
}

impl NodeRule {
    /// Whether a node reading `counters` is too noisy (an unreported counter is not).
    pub fn crosses(&self, counters: &HostCounters) -> bool {
        counters.get(self.index).is_some_and(|v| {
            if self.above {
                v > self.threshold
            } else {
                v < self.threshold
            }
        })
    }

    /// Fits the rule on `tests` for an objective of `slo_ms`; `None` when they hold no
    /// test of each kind.
    pub fn fit(tests: &[MeasuredTest], slo_ms: f64) -> Option<Self> {
        // The quiet p99 of each point (run, replicas, rate): the mean of its baselines.
        let mut quiet: BTreeMap<(&str, u32, u64), (f64, u32)> = BTreeMap::new();
        for t in tests.iter().filter(|t| t.scenario == QUIET) {
            let q = quiet
                .entry((t.run.as_str(), t.replicas, t.rps.to_bits()))
                .or_default();
            q.0 += t.p99_ms;
            q.1 += 1;
        }
        let labelled: Vec<(&MeasuredTest, bool)> = tests
            .iter()
            .filter_map(|t| {
                if t.p99_ms <= slo_ms {
                    return Some((t, false));
                }
                // Broken next to co-runners on the other node: nginx's node is not the
                // noisy one, so its counters say nothing either way.
                if !t.co_runners_on_its_node {
                    return None;
                }
                let (sum, n) = quiet.get(&(t.run.as_str(), t.replicas, t.rps.to_bits()))?;
                (sum / f64::from(*n) <= slo_ms && t.scenario != QUIET).then_some((t, true))
            })
            .collect();
        let mut best: Option<NodeRule> = None;
        for counter in COUNTERS {
            let index = HostCounters::index_of(counter)?;
            let mut rows: Vec<(f64, bool)> = labelled
                .iter()
                .filter_map(|(t, noisy)| t.nginx_node.get(index).map(|v| (v, *noisy)))
                .collect();
            let positives = rows.iter().filter(|(_, p)| *p).count();
            let negatives = rows.len() - positives;
            if positives == 0 || negatives == 0 {
                continue;
            }
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            // Sweep thresholds between distinct values: positives and negatives at or
            // below each.
            let (mut pos_below, mut neg_below) = (0usize, 0usize);
            for i in 0..rows.len() - 1 {
                if rows[i].1 {
                    pos_below += 1;
                } else {
                    neg_below += 1;
                }
                if rows[i].0 == rows[i + 1].0 {
                    continue;
                }
                let threshold = 0.5 * (rows[i].0 + rows[i + 1].0);
                let tpr_above = (positives - pos_below) as f64 / positives as f64;
                let tnr_above = neg_below as f64 / negatives as f64;
                for (above, accuracy) in [
                    (true, 0.5 * (tpr_above + tnr_above)),
                    (false, 0.5 * ((1.0 - tpr_above) + (1.0 - tnr_above))),
                ] {
                    if best.as_ref().is_none_or(|b| accuracy > b.balanced_accuracy) {
                        best = Some(NodeRule {
                            counter: counter.to_string(),
                            index,
                            above,
                            threshold,
                            balanced_accuracy: accuracy,
                        });
                    }
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(scenario: &str, p99_ms: f64, c0: f64, rps: f64) -> MeasuredTest {
        let mut nginx_node = HostCounters::default();
        nginx_node.0[HostCounters::index_of("pcm_c0_residency_pct").expect("c0")] = c0;
        MeasuredTest {
            run: "r".into(),
            scenario: scenario.into(),
            replicas: 1,
            rps,
            p99_ms,
            nginx_node,
            co_runners_on_its_node: true,
        }
    }

    #[test]
    fn fits_the_counter_and_threshold_that_tell_noisy_from_quiet() {
        let tests = [
            test(QUIET, 0.2, 1.0, 1000.0),
            test(QUIET, 2.0, 2.0, 4000.0),
            test("cpu", 3.0, 9.0, 1000.0),
            test("cpu", 4.0, 8.0, 1000.0),
            test("cpu", 0.5, 1.5, 1000.0),
            // Over the objective where the quiet baseline is too: load, not co-runners.
            test("cpu", 3.0, 2.5, 4000.0),
            // Broken next to co-runners on the other node: not this node's doing.
            MeasuredTest {
                co_runners_on_its_node: false,
                ..test("cpu", 3.0, 1.2, 1000.0)
            },
        ];
        let rule = NodeRule::fit(&tests, 1.0).expect("a rule");
        assert_eq!(rule.counter, "pcm_c0_residency_pct");
        assert!(
            rule.above && rule.threshold > 2.0 && rule.threshold < 8.0,
            "{rule:?}"
        );
        assert_eq!(rule.balanced_accuracy, 1.0);
        let mut c = HostCounters::default();
        assert!(!rule.crosses(&c), "unreported is not noisy");
        c.0[rule.index] = 8.5;
        assert!(rule.crosses(&c));
        assert!(NodeRule::fit(&tests[..1], 1.0).is_none());
    }
}
