//! The Information Core's decisions, as plain functions over plain types: which version is
//! current, what the next version is, whether a rollback or a promotion is allowed, which
//! versions retention removes. No I/O here; the store applies what these decide.

use std::collections::BTreeSet;

/// One step of a model's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Version `version` was published at `seq`.
    Published {
        /// History position.
        seq: u64,
        /// The new version.
        version: u64,
    },
    /// At `seq`, the model was rolled back to `version`.
    RolledBack {
        /// History position.
        seq: u64,
        /// The version served from then on.
        version: u64,
    },
}

impl Step {
    /// History position.
    pub fn seq(self) -> u64 {
        match self {
            Self::Published { seq, .. } | Self::RolledBack { seq, .. } => seq,
        }
    }

    /// The version this step makes current.
    pub fn version(self) -> u64 {
        match self {
            Self::Published { version, .. } | Self::RolledBack { version, .. } => version,
        }
    }
}

/// The current version: the newest step's, or — if that version is unavailable (corrupt,
/// quarantined, removed) — the newest earlier step's that is available.
pub fn current(steps: &[Step], available: &BTreeSet<u64>) -> Option<u64> {
    let mut ordered: Vec<Step> = steps.to_vec();
    ordered.sort_by_key(|s| s.seq());
    ordered
        .iter()
        .rev()
        .map(|s| s.version())
        .find(|v| available.contains(v))
}

/// The version number of the next publish: one above every version ever used, so a
/// number is never reused even after retention or quarantine.
pub fn next_version(steps: &[Step], available: &BTreeSet<u64>) -> u64 {
    let published = steps.iter().map(|s| s.version());
    published
        .chain(available.iter().copied())
        .max()
        .unwrap_or(0)
        + 1
}

/// The next history position.
pub fn next_seq(steps: &[Step]) -> u64 {
    steps.iter().map(|s| s.seq()).max().unwrap_or(0) + 1
}

/// Why a rollback is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackRefusal {
    /// The model has no such version (or it is unavailable).
    UnknownVersion,
    /// That version is already current.
    AlreadyCurrent,
}

/// Decides a rollback to `to`: the step to record.
pub fn plan_rollback(
    steps: &[Step],
    available: &BTreeSet<u64>,
    to: u64,
) -> Result<Step, RollbackRefusal> {
    if !available.contains(&to) {
        return Err(RollbackRefusal::UnknownVersion);
    }
    if current(steps, available) == Some(to) {
        return Err(RollbackRefusal::AlreadyCurrent);
    }
    Ok(Step::RolledBack {
        seq: next_seq(steps),
        version: to,
    })
}

/// Versions retention removes: all but the newest `keep` versions, never the current one
/// and never one a rollback pointed at (an operator chose it; it stays until a newer
/// rollback or publish makes it history).
pub fn expired(steps: &[Step], available: &BTreeSet<u64>, keep: usize) -> Vec<u64> {
    let current = current(steps, available);
    let last_rollback_target = steps
        .iter()
        .filter(|s| matches!(s, Step::RolledBack { .. }))
        .max_by_key(|s| s.seq())
        .map(|s| s.version());
    available
        .iter()
        .rev()
        .skip(keep.max(1))
        .copied()
        .filter(|v| Some(*v) != current && Some(*v) != last_rollback_target)
        .collect()
}

/// Outcome of champion/challenger.
#[derive(Debug, Clone, PartialEq)]
pub enum Promotion {
    /// Publish the challenger.
    Promote,
    /// Keep the champion; why.
    Reject(String),
}

/// Champion/challenger on one holdout (errors: lower is better): the challenger must beat
/// the naive baseline and, if there is a champion, the champion's error on the same data.
pub fn promotion(
    challenger_error: f64,
    baseline_error: f64,
    champion_error: Option<f64>,
) -> Promotion {
    if !challenger_error.is_finite() {
        return Promotion::Reject(format!("challenger error is {challenger_error}"));
    }
    if challenger_error >= baseline_error {
        return Promotion::Reject(format!(
            "challenger error {challenger_error:.4} does not beat the baseline's {baseline_error:.4}"
        ));
    }
    match champion_error {
        Some(champion) if champion.is_finite() && challenger_error >= champion => {
            Promotion::Reject(format!(
                "challenger error {challenger_error:.4} does not beat the champion's {champion:.4}"
            ))
        }
        _ => Promotion::Promote,
    }
}

/// Whether `name` is usable as a model name (and a directory name).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    fn published(n: u64) -> Vec<Step> {
        (1..=n)
            .map(|v| Step::Published { seq: v, version: v })
            .collect()
    }

    #[test]
    fn current_follows_the_newest_step_and_falls_back_past_missing_versions() {
        let mut steps = published(3);
        assert_eq!(current(&steps, &set(&[1, 2, 3])), Some(3));
        assert_eq!(current(&steps, &set(&[1, 2])), Some(2), "v3 corrupt");
        steps.push(Step::RolledBack { seq: 4, version: 1 });
        assert_eq!(current(&steps, &set(&[1, 2, 3])), Some(1));
        assert_eq!(current(&[], &set(&[])), None);
    }

    #[test]
    fn versions_are_never_reused() {
        let steps = published(3);
        assert_eq!(next_version(&steps, &set(&[1])), 4);
        assert_eq!(next_version(&[], &set(&[])), 1);
        assert_eq!(next_seq(&steps), 4);
    }

    #[test]
    fn rollback_rules() {
        let steps = published(3);
        let available = set(&[1, 2, 3]);
        assert_eq!(
            plan_rollback(&steps, &available, 2),
            Ok(Step::RolledBack { seq: 4, version: 2 })
        );
        assert_eq!(
            plan_rollback(&steps, &available, 3),
            Err(RollbackRefusal::AlreadyCurrent)
        );
        assert_eq!(
            plan_rollback(&steps, &available, 9),
            Err(RollbackRefusal::UnknownVersion)
        );
    }

    #[test]
    fn retention_keeps_the_newest_the_current_and_the_rollback_target() {
        let mut steps = published(6);
        let available = set(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(expired(&steps, &available, 3), vec![3, 2, 1]);
        steps.push(Step::RolledBack { seq: 7, version: 2 });
        assert_eq!(expired(&steps, &available, 3), vec![3, 1]);
        assert!(expired(&steps, &available, 0).len() < available.len());
    }

    #[test]
    fn promotion_needs_to_beat_baseline_and_champion() {
        assert_eq!(promotion(1.0, 2.0, None), Promotion::Promote);
        assert_eq!(promotion(1.0, 2.0, Some(1.5)), Promotion::Promote);
        assert!(matches!(promotion(2.0, 2.0, None), Promotion::Reject(_)));
        assert!(matches!(
            promotion(1.6, 2.0, Some(1.5)),
            Promotion::Reject(_)
        ));
        assert!(matches!(
            promotion(f64::NAN, 2.0, None),
            Promotion::Reject(_)
        ));
    }

    #[test]
    fn names() {
        assert!(valid_name("cpu-demand_v2.1"));
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
