//! Live judgement of a job's served version on the rows whose truth arrived after its
//! training window (see [`dcpilot_info_core::live`]): a forecast made at `t` is in the
//! job's query only once `t + horizon` has been observed, so every such row is a forecast
//! checked against what happened.

use datafusion::prelude::SessionContext;
use dcpilot_info_core::live::{verdict_name, Fallback, LiveBaseline, LiveVerdict};
use dcpilot_info_core::{HoldoutMetrics, InfoCore, Lineage, Model, ModelDraft, TrainingWindow};
use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::job::{check_features, off_the_runtime, query_dataset, spec_hash, Job};
use crate::spec::Live;
use crate::train::{baseline_errors, predict_rows};

/// How a verdict differs from the one before it on the same version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveChange {
    /// The version is now worse than its best baseline (or is from its first verdict on).
    Demoted,
    /// A demoted version wins again.
    Repromoted,
}

/// What one live judgement did.
#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    /// Job (= model) name.
    pub job: String,
    /// The version judged, if one is served.
    pub version: Option<u64>,
    /// The verdict, unless there was too little to judge.
    pub verdict: Option<LiveVerdict>,
    /// Why there is no verdict.
    pub pending: Option<String>,
    /// A demotion or re-promotion, compared with the previous verdict.
    pub change: Option<LiveChange>,
    /// The version of `<job>.live` published, if it was (a changed verdict, a first
    /// one on a version, or an unchanged one after `live.republish_secs`).
    pub published_version: Option<u64>,
}

impl LiveReport {
    fn pending(job: &str, version: Option<u64>, why: String) -> Self {
        Self {
            job: job.into(),
            version,
            verdict: None,
            pending: Some(why),
            change: None,
            published_version: None,
        }
    }
}

/// Whether `verdict` demotes its version, given whether the previous verdict on it did:
/// a fresh demotion as soon as the model is worse than its best baseline; a re-promotion
/// only once it is better by `live.repromote_margin`.
fn still_demoted(was_demoted: bool, verdict: &LiveVerdict, live: &Live) -> bool {
    if verdict.demoted || !was_demoted {
        return verdict.demoted;
    }
    let bar = verdict
        .best()
        .map(|b| b.error * (1.0 - live.repromote_margin));
    // An undefined model error never earns a re-promotion.
    bar.is_some_and(|bar| verdict.model_error.is_nan() || verdict.model_error >= bar)
}

/// How long a verdict holds: three republish periods. A verdict is republished every
/// `republish_secs` while judgement goes on; when it stops (no new rows, failures), the
/// demotion lapses instead of outliving its evidence.
fn verdict_lifetime_ms(live: &Live) -> i64 {
    i64::try_from(live.republish_secs.saturating_mul(3_000)).unwrap_or(i64::MAX)
}

/// Judges the version of `job`'s model that `store` serves on the newest rows of `ctx`
/// it never saw, and publishes the verdict as `<job>.live` when it is news.
pub async fn judge_live(
    job: &dyn Job,
    ctx: &SessionContext,
    store: &InfoCore,
    now_ms: i64,
) -> Result<LiveReport> {
    let spec = job.spec();
    let Some(live) = &spec.live else {
        return Err(PipelineError::Spec(format!(
            "{} is not judged live (a table, a colouring, or live.enabled = false)",
            spec.name
        )));
    };
    let snapshot = store.snapshot();
    let Some(served) = snapshot.get(&spec.name) else {
        let why = "no version is served yet".to_string();
        return Ok(LiveReport::pending(&spec.name, None, why));
    };
    let version = served.version();
    check_features(spec, served)?;
    let data = query_dataset(job, ctx).await?;
    let trained_until = served.record.window.end_ms;
    let unseen: Vec<usize> = (0..data.times.len())
        .filter(|&i| data.times[i] > trained_until)
        .collect();
    let data = data.select(&unseen).within_window(live.window_secs);
    if (data.times.len() as u64) < live.min_rows {
        let why = format!(
            "{} rows with their truth since v{version}'s training window ended; a verdict needs live.min_rows = {}",
            data.times.len(),
            live.min_rows
        );
        return Ok(LiveReport::pending(&spec.name, Some(version), why));
    }
    let (data, predicted) = {
        let prepared = served.prepared.clone();
        let kind = crate::kinds::of(&spec.model);
        off_the_runtime(move || {
            let predicted = predict_rows(kind, &prepared, &data.features)?;
            Ok((data, predicted))
        })
        .await?
    };
    let model_error = spec.metric.error(&data.target, &predicted);
    let errors = baseline_errors(
        spec.metric,
        &data.target,
        data.baselines
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice())),
    );
    let baselines = errors
        .into_iter()
        .zip(&data.baselines)
        .map(|((name, error), (_, values))| LiveBaseline {
            name,
            error,
            fallback: Fallback::detect(values, &spec.features, &data.features),
        })
        .collect();
    let from_ms = data.times.iter().copied().min().unwrap_or(0);
    let to_ms = data.times.iter().copied().max().unwrap_or(0);
    let mut verdict = LiveVerdict::new(
        &spec.name,
        version,
        spec.metric.as_str(),
        live.window_secs,
        (from_ms, to_ms),
        data.times.len() as u64,
        model_error,
        baselines,
        (now_ms, now_ms.saturating_add(verdict_lifetime_ms(live))),
    );
    let previous = snapshot.served_verdict(&spec.name);
    // Hysteresis: a demoted version is re-promoted only once it wins by
    // `live.repromote_margin`, so one hovering at its baseline's error does not flip at
    // every judgement.
    verdict.demoted = still_demoted(previous.is_some_and(|p| p.demoted), &verdict, live);
    let change = match (previous.map(|p| p.demoted), verdict.demoted) {
        (Some(false) | None, true) => Some(LiveChange::Demoted),
        (Some(true), false) => Some(LiveChange::Repromoted),
        _ => None,
    };
    let stale = previous.is_none_or(|p| {
        now_ms.saturating_sub(p.judged_at_ms)
            >= i64::try_from(live.republish_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    });
    let published_version = if change.is_some() || stale {
        let best = verdict.best();
        let record = store.publish(ModelDraft {
            name: verdict_name(&spec.name),
            features: Vec::new(),
            target: spec.target.clone(),
            window: TrainingWindow {
                start_ms: from_ms,
                end_ms: to_ms,
            },
            rows: verdict.rows,
            metrics: HoldoutMetrics {
                metric: verdict.metric.clone(),
                model_error,
                baseline_error: best.map_or(f64::NAN, |b| b.error),
                baseline: best.map_or_else(|| "none".into(), |b| b.name.clone()),
            },
            lineage: Lineage::of_job(spec.name.clone(), spec_hash(spec)),
            model: Model::LiveVerdict(Box::new(verdict.clone())),
        })?;
        Some(record.version)
    } else {
        None
    };
    Ok(LiveReport {
        job: spec.name.clone(),
        version: Some(version),
        verdict: Some(verdict),
        pending: None,
        change,
        published_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(model_error: f64, baseline_error: f64) -> LiveVerdict {
        let baselines = vec![LiveBaseline {
            name: "last_value".into(),
            error: baseline_error,
            fallback: None,
        }];
        LiveVerdict::new(
            "m",
            1,
            "rmse",
            60,
            (0, 1),
            50,
            model_error,
            baselines,
            (0, 1),
        )
    }

    #[test]
    fn a_demoted_model_is_repromoted_only_once_it_wins_by_the_margin() {
        let live = Live::default(); // margin 0.02
                                    // Worse: demoted either way.
        assert!(still_demoted(false, &verdict(10.1, 10.0), &live));
        assert!(still_demoted(true, &verdict(10.1, 10.0), &live));
        // Better by 1%: stays demoted if it was, serves if it was not.
        assert!(still_demoted(true, &verdict(9.9, 10.0), &live));
        assert!(!still_demoted(false, &verdict(9.9, 10.0), &live));
        // Better by 5%: re-promoted.
        assert!(!still_demoted(true, &verdict(9.5, 10.0), &live));
        let no_margin = Live {
            repromote_margin: 0.0,
            ..Live::default()
        };
        assert!(!still_demoted(true, &verdict(9.9, 10.0), &no_margin));
    }
}
