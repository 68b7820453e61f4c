//! Detectors: how abnormal one metric of one entity is around a moment, against the
//! entity's own recent behaviour. A small trait, so better detectors can be added like
//! model kinds, and an explicit registry naming them.

use std::sync::Arc;

pub use dcpilot_info_core::colouring::{MetricScore, Window};

/// One metric of one entity: `(unix seconds, value)`, in time order. Non-finite values
/// are gaps.
pub type Points = [(i64, f64)];

/// Scores one metric's behaviour in `[at, at + observe)` against its past.
pub trait Detector: Send + Sync {
    /// The registry name.
    fn name(&self) -> &'static str;
    /// `None` when there is too little data on either side of `at`.
    fn score(&self, points: &Points, at: i64, window: &Window) -> Option<MetricScore>;

    /// A cheap upper bound of [`Detector::score`], if the detector has one (`None`: no
    /// bound, or no data): colouring skips metrics whose bound cannot change an entity's
    /// evidence.
    fn bound(&self, points: &Points, at: i64, window: &Window) -> Option<f64> {
        let _ = (points, at, window);
        None
    }
}

/// The deviation of `[at, at + observe)` from `[at − baseline, at)`: median and MAD
/// (scaled to a standard deviation), the scale floored at 5% of the level so a nearly
/// constant series does not turn noise into huge scores. `None` under 3 baseline values
/// or no observed value.
pub fn robust_deviation(points: &Points, at: i64, window: &Window) -> Option<MetricScore> {
    robust_deviation_in(points, at, window, &mut Vec::new())
}

/// [`robust_deviation`] reusing `scratch` (calibration calls it for every past step).
fn robust_deviation_in(
    points: &Points,
    at: i64,
    window: &Window,
    scratch: &mut Vec<f64>,
) -> Option<MetricScore> {
    deviation_of(
        span(points, at.saturating_sub(window.baseline_secs), at),
        span(points, at, at.saturating_add(window.observe_secs)),
        scratch,
    )
}

/// The robust deviation of `observed` from `baseline` (see [`robust_deviation`]).
fn deviation_of(
    baseline: &Points,
    observed: &Points,
    scratch: &mut Vec<f64>,
) -> Option<MetricScore> {
    scratch.clear();
    scratch.extend(baseline.iter().map(|(_, v)| *v).filter(|v| v.is_finite()));
    if scratch.len() < 3 {
        return None;
    }
    let median = median_in_place(scratch);
    scratch.iter_mut().for_each(|v| *v = (*v - median).abs());
    let mad = median_in_place(scratch) * 1.4826;
    let scale = mad.max(0.05 * median.abs()).max(1e-9);
    furthest(observed.iter().map(|(_, v)| *v), median, scale)
}

/// The finite value of `observed` furthest from `normal` (the first of equals), as a
/// score in units of `scale`; `None` without a finite value.
fn furthest(observed: impl Iterator<Item = f64>, normal: f64, scale: f64) -> Option<MetricScore> {
    let mut found = None::<(f64, f64)>;
    for v in observed.filter(|v| v.is_finite()) {
        let z = (v - normal) / scale;
        if found.is_none_or(|(best, _)| z.abs() > best.abs()) {
            found = Some((z, v));
        }
    }
    let (deviation, value) = found?;
    Some(MetricScore {
        score: deviation.abs(),
        deviation,
        normal,
        observed: value,
    })
}

/// The points with `from <= t < to`.
fn span(points: &Points, from: i64, to: i64) -> &Points {
    let start = points.partition_point(|(t, _)| *t < from);
    let end = start + points[start..].partition_point(|(t, _)| *t < to);
    &points[start..end]
}

fn finite_in(points: &Points, from: i64, to: i64) -> Vec<f64> {
    span(points, from, to)
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .collect()
}

fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (below, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        // The lower middle is the largest of the lower half.
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// The largest robust deviation (median/MAD), as is: a noisy metric scores high as often
/// as a broken one. The naive peer of [`Calibrated`].
#[derive(Debug, Default)]
pub struct RobustZ;

impl Detector for RobustZ {
    fn name(&self) -> &'static str {
        "robust-z"
    }
    fn score(&self, points: &Points, at: i64, window: &Window) -> Option<MetricScore> {
        robust_deviation(points, at, window)
    }
}

/// The robust deviation now, relative to the deviations this very metric of this very
/// entity showed at every step of the last `history_secs` (their 90th percentile, at
/// least 1): `ln(now / usual)` — negative when it moves less than it usually does, so
/// rankings stay ordered below the anomalous ones (within one robust σ, `ln(now)`
/// uncalibrated: an upper bound). A metric that always jumps scores low when
/// it jumps again; one that never moved scores high when it does. An entity with under 5
/// steps of history is judged on the plain robust deviation (`usual` = 1).
#[derive(Debug, Default)]
pub struct Calibrated;

/// The share of past deviations the calibrating detector treats as usual.
const USUAL_QUANTILE: f64 = 0.9;

impl Detector for Calibrated {
    fn name(&self) -> &'static str {
        DEFAULT
    }
    /// `ln(now)`: the usual deviation is at least 1.
    fn bound(&self, points: &Points, at: i64, window: &Window) -> Option<f64> {
        robust_deviation(points, at, window).map(|now| now.score.max(1e-12).ln())
    }
    fn score(&self, points: &Points, at: i64, window: &Window) -> Option<MetricScore> {
        let mut scratch = Vec::new();
        let now = robust_deviation_in(points, at, window, &mut scratch)?;
        if now.score <= 1.0 {
            // Within one robust σ is normal whatever the history says: `usual` ≥ 1 could
            // only lower the score further, so its upper bound is reported, uncalibrated.
            return Some(MetricScore {
                score: now.score.max(1e-12).ln(),
                ..now
            });
        }
        // Every past step whose observed window ends before `at` (the fault does not
        // calibrate itself away), newest first. The moments only move back in time, so
        // the window edges are walked back instead of searched for.
        let first = at.saturating_sub(window.observe_secs);
        let mut edge = [
            points.partition_point(|(t, _)| *t < first.saturating_sub(window.baseline_secs)),
            points.partition_point(|(t, _)| *t < first),
            points.partition_point(|(t, _)| *t < at),
        ];
        let steps = (window.history_secs / window.step_secs.max(1)).max(0) as usize;
        let mut past = Vec::with_capacity(steps.min(points.len()) + 1);
        let mut t = first;
        let oldest = at.saturating_sub(window.history_secs);
        while t >= oldest {
            for (i, from) in [
                t.saturating_sub(window.baseline_secs),
                t,
                t.saturating_add(window.observe_secs),
            ]
            .into_iter()
            .enumerate()
            {
                while edge[i] > 0 && points[edge[i] - 1].0 >= from {
                    edge[i] -= 1;
                }
            }
            let [b, m, e] = edge;
            if let Some(d) = deviation_of(&points[b..m], &points[m..e], &mut scratch) {
                past.push(d.score);
            }
            match t.checked_sub(window.step_secs) {
                Some(earlier) => t = earlier,
                None => break,
            }
        }
        let usual = if past.len() >= 5 {
            let i = ((past.len() - 1) as f64 * USUAL_QUANTILE).round() as usize;
            past.select_nth_unstable_by(i, f64::total_cmp).1.max(1.0)
        } else {
            1.0
        };
        Some(MetricScore {
            score: (now.score.max(1e-12) / usual).ln(),
            ..now
        })
    }
}

/// Mean and standard deviation of the baseline, the largest |z| observed ("n-sigma"):
/// the textbook naive detector, kept as a baseline for `evaluate`.
#[derive(Debug, Default)]
pub struct NSigma;

impl Detector for NSigma {
    fn name(&self) -> &'static str {
        "n-sigma"
    }
    fn score(&self, points: &Points, at: i64, window: &Window) -> Option<MetricScore> {
        let baseline = finite_in(points, at.saturating_sub(window.baseline_secs), at);
        let observed = finite_in(points, at, at.saturating_add(window.observe_secs));
        if baseline.len() < 2 || observed.is_empty() {
            return None;
        }
        let n = baseline.len() as f64;
        let mean = baseline.iter().sum::<f64>() / n;
        let sd = (baseline.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        if sd <= 0.0 || !sd.is_finite() {
            return None;
        }
        furthest(observed.into_iter(), mean, sd)
    }
}

/// Every detector by name; the first is the default.
pub fn registry() -> Vec<Arc<dyn Detector>> {
    vec![Arc::new(Calibrated), Arc::new(RobustZ), Arc::new(NSigma)]
}

/// The default detector's name.
pub const DEFAULT: &str = "calibrated-robust-z";

/// A detector name the registry does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown detector {name:?} (known: {known})")]
pub struct UnknownDetector {
    /// The name asked for.
    pub name: String,
    /// The registry's names, comma-separated.
    pub known: String,
}

/// The detector called `name`, or the known names.
pub fn by_name(name: &str) -> Result<Arc<dyn Detector>, UnknownDetector> {
    let all = registry();
    let known: Vec<&str> = all.iter().map(|d| d.name()).collect();
    let known = known.join(", ");
    all.into_iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| UnknownDetector {
            name: name.to_string(),
            known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(values: &[f64]) -> Vec<(i64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 60, *v))
            .collect()
    }

    #[test]
    fn a_jump_scores_and_noise_it_always_had_does_not() {
        let w = Window::default();
        let mut quiet = vec![10.0; 70];
        quiet
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += (i % 3) as f64 * 0.1);
        let mut noisy: Vec<f64> = (0..70)
            .map(|i| if i % 4 == 0 { 30.0 } else { 10.0 })
            .collect();
        for v in [&mut quiet, &mut noisy] {
            v[62] = 30.0;
        }
        let at = 62 * 60;
        let c = Calibrated;
        let q = c.score(&minutes(&quiet), at, &w).expect("scored");
        let n = c.score(&minutes(&noisy), at, &w).expect("scored");
        assert!(q.score > 2.0, "{q:?}");
        assert!(n.score < q.score / 2.0, "{n:?} vs {q:?}");
        assert!(q.deviation > 0.0 && q.observed == 30.0, "{q:?}");
    }

    #[test]
    fn gaps_constants_and_non_finite_values_never_panic() {
        let w = Window::default();
        let constant = minutes(&[5.0; 20]);
        for d in registry() {
            let s = d.score(&constant, 10 * 60, &w);
            assert!(s.is_none_or(|s| s.score <= 0.0), "{}: {s:?}", d.name());
            let broken = minutes(&[f64::NAN, f64::INFINITY, 1.0, f64::NEG_INFINITY, 2.0, 3.0]);
            let _ = d.score(&broken, 4 * 60, &w);
            assert!(d.score(&[], 0, &w).is_none());
            assert!(
                d.score(&minutes(&[1.0, 2.0]), 60, &w).is_none(),
                "{}",
                d.name()
            );
        }
    }

    #[test]
    fn detectors_are_found_by_name() {
        assert_eq!(by_name("n-sigma").expect("known").name(), "n-sigma");
        let Err(e) = by_name("magic") else {
            panic!("an unknown name is refused")
        };
        assert!(e.to_string().contains("calibrated-robust-z"), "{e}");
    }
}
