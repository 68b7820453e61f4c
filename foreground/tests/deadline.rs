//! The deadline under concurrency, and models vanishing mid-run.
//!
//! These assert behaviour, not speed: with a budget far below what scoring every host
//! takes, every answer must say the budget ran out, have scored fewer hosts than exist,
//! and still name a host; and while another thread removes and restores the slowdown
//! model, every answer must be consistent with one snapshot (model version listed and p99
//! predicted, or `degraded` with the reason and no prediction).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use dcpilot_foreground::planner::SLOWDOWN_MODEL;
use dcpilot_foreground::{place, Host, Instance, Intents, Landscape, PlannerConfig, Pressure};
use dcpilot_info_core::SnapshotCell;

/// `hosts` hosts whose co-runner pressure differs on each, so no prediction is memoised.
fn big_landscape(hosts: usize) -> Landscape {
    let mut l = Landscape::new(
        (0..hosts)
            .map(|i| Host {
                name: format!("n{i}"),
                ..host("x", 64.0)
            })
            .collect(),
    )
    .expect("hosts");
    for i in 0..hosts {
        l.upsert(Instance {
            pressure: Pressure {
                l3: (i % 97) as f64 * 0.01,
                membw: (i / 97) as f64 * 0.01,
                cpu: 0.0,
            },
            ..Instance::new(&format!("i{i}"), "noise", &format!("n{i}"), 1.0, 1)
        })
        .expect("instance");
    }
    l
}

#[test]
fn every_concurrent_request_answers_after_running_out_of_budget() {
    let core = core_with(vec![draft(
        SLOWDOWN_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let snapshot = core.snapshot();
    let landscape = Arc::new(big_landscape(50_000));
    let threads = thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let landscape = Arc::clone(&landscape);
            let snapshot = Arc::clone(&snapshot);
            thread::spawn(move || {
                let mut request = nginx();
                request.budget_ms = Some(0.05);
                (0..50)
                    .map(|_| {
                        place(
                            &request,
                            &landscape,
                            &snapshot,
                            &Intents::default(),
                            &PlannerConfig::default(),
                            now_ms(),
                        )
                        .expect("an answer")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut answers = 0;
    for h in handles {
        for a in h.join().expect("thread") {
            answers += 1;
            assert!(
                a.provenance.budget_exhausted,
                "50k hosts cannot all be scored in 50 µs"
            );
            assert!(a.candidates_scored < a.candidates_total);
            assert!(!a.choices.is_empty(), "an answer exists at once");
        }
    }
    assert_eq!(answers, threads * 50);
}

#[test]
fn models_vanishing_mid_run_give_consistent_degraded_answers() {
    let core = core_with(vec![draft(
        SLOWDOWN_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let with_model = core.snapshot();
    let without = with_model.with(SLOWDOWN_MODEL, None);
    let cell = Arc::new(SnapshotCell::default());
    cell.store((*with_model).clone());
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (cell, stop) = (Arc::clone(&cell), Arc::clone(&stop));
        let (with_model, without) = ((*with_model).clone(), without.clone());
        thread::spawn(move || {
            let mut flips = 0u32;
            while !stop.load(Ordering::Relaxed) {
                cell.store(if flips.is_multiple_of(2) {
                    without.clone()
                } else {
                    with_model.clone()
                });
                flips += 1;
                thread::yield_now();
            }
            flips
        })
    };
    let landscape = landscape();
    let (mut modelled, mut degraded) = (0, 0);
    for _ in 0..5_000 {
        let snapshot = cell.load();
        let a = place(
            &nginx(),
            &landscape,
            &snapshot,
            &Intents::default(),
            &PlannerConfig::default(),
            now_ms(),
        )
        .expect("answer");
        let missing = a
            .provenance
            .degraded_reasons
            .iter()
            .any(|r| r.contains(SLOWDOWN_MODEL) && r.contains("missing"));
        if a.provenance.models.contains_key(SLOWDOWN_MODEL) {
            assert!(!missing);
            assert!(a.choices.iter().all(|c| c.predicted_p99_ms.is_some()));
            assert_eq!(a.choices[0].host, "quiet");
            modelled += 1;
        } else {
            assert!(
                missing && a.provenance.degraded,
                "{:?}",
                a.provenance.degraded_reasons
            );
            assert!(a.choices.iter().all(|c| c.predicted_p99_ms.is_none()));
            assert_eq!(a.choices[0].host, "noisy", "least loaded without the model");
            degraded += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().expect("flipper");
    assert!(flips > 1, "the model came and went");
    assert_eq!(modelled + degraded, 5_000);
}

#[test]
fn rebalancing_without_time_answers_with_an_empty_plan() {
    let core = core_with(vec![draft(
        SLOWDOWN_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let request = dcpilot_foreground::RebalanceRequest {
        budget_ms: Some(0.0),
        ..Default::default()
    };
    let plan = dcpilot_foreground::rebalance(
        &request,
        &big_landscape(20_000),
        &core.snapshot(),
        &Intents::default(),
        &PlannerConfig::default(),
        now_ms(),
    )
    .expect("a plan");
    assert!(plan.provenance.budget_exhausted);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.objective_before, None, "not every host was costed");
    assert_eq!(plan.instances, 20_000);
}
