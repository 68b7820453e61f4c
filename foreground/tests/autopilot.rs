//! The intent loop's decision core: objectives classified from telemetry (never guessed
//! without fresh data), plans searched within the budget and costed with the models,
//! and the safety rules (no scale-in while broken, cool-down, hysteresis, bounds).

mod common;

use common::{core_with, counter_slowdown_model, draft, COUNTER_FEATURES};
use dcpilot_foreground::autopilot::{
    Action, Autopilot, AutopilotConfig, NodeView, ObjectiveState, Reading, TargetView,
};
use dcpilot_foreground::landscape::HostCounters;
use dcpilot_foreground::Pressure;
use dcpilot_info_core::{InfoCore, Snapshot};

const NOW: i64 = 1_700_000_000_000;

fn counters(l3: f64) -> HostCounters {
    let mut c = HostCounters::default();
    c.0[HostCounters::index_of("pcm_l3_misses_m").expect("l3")] = l3;
    c
}

/// nginx with `placement` replicas on a noisy node (L3 misses 2.0: slowdown 5) and a quiet
/// one (slowdown 1), its newest p99 `p99` ms measured `age_ms` ago.
fn view(placement: [u32; 2], p99: f64, age_ms: i64) -> TargetView {
    TargetView {
        target: "default/nginx".into(),
        now_ms: NOW,
        p99_ms: Some(Reading {
            value: p99,
            at_ms: NOW - age_ms,
        }),
        rps: Some(Reading {
            value: 1000.0,
            at_ms: NOW,
        }),
        rps_trend_per_min: 0.0,
        nodes: vec![
            NodeView {
                name: "noisy".into(),
                replicas: placement[0],
                counters: counters(2.0),
                pressure: Pressure::default(),
                room: u32::MAX,
                evictable: Vec::new(),
            },
            NodeView {
                name: "quiet".into(),
                replicas: placement[1],
                counters: counters(0.0),
                pressure: Pressure::default(),
                room: u32::MAX,
                evictable: Vec::new(),
            },
        ],
        quiet_p99_ms: None,
    }
}

fn served() -> InfoCore {
    core_with(vec![draft(
        "interference-slowdown",
        &COUNTER_FEATURES,
        counter_slowdown_model(),
    )])
}

fn config() -> AutopilotConfig {
    AutopilotConfig {
        max_replicas: 4,
        ..AutopilotConfig::default()
    }
}

fn empty() -> Snapshot {
    Snapshot::default()
}

#[test]
fn stale_or_missing_telemetry_is_no_data_and_no_plan() {
    let core = served();
    let mut pilot = Autopilot::new(config());
    let d = pilot.tick(&view([1, 1], 5.0, 10 * 60_000), 1.0, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::NoData);
    assert!(d.plan.is_none());
    assert!(d.reason.contains("p99"), "{}", d.reason);
    let mut no_rate = view([1, 1], 0.2, 0);
    no_rate.rps = None;
    let d = pilot.tick(&no_rate, 1.0, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::NoData);
    assert!(d.reason.contains("request rate"), "{}", d.reason);
}

#[test]
fn moves_off_the_node_the_model_finds_noisy() {
    let core = served();
    let mut pilot = Autopilot::new(config());
    // Learn the quiet latency where the model sees no interference: 0.2 ms.
    let d = pilot.tick(&view([0, 1], 0.2, 0), 1.0, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::Met);
    assert!(d.plan.is_none(), "{:?}", d.plan);
    assert_eq!(d.provenance.models.get("interference-slowdown"), Some(&1));
    // A replica lands on the noisy node: 0.2 x 5 = 1.0 ms seen, over the 0.9 ms objective.
    let d = pilot.tick(&view([1, 1], 1.0, 0), 0.9, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::Violated);
    let plan = d.plan.expect("a plan");
    assert_eq!(plan.placement[0], 0, "{plan:?}");
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Move { from, to } if from == "noisy" && to == "quiet")),
        "{plan:?}"
    );
    assert!(plan.predicted_p99_ms.expect("predicted") < 0.9 * 0.8);
    assert!(plan.cost_after < plan.cost_before);
}

#[test]
fn at_risk_from_the_models_before_it_breaks() {
    let core = served();
    let mut pilot = Autopilot::new(config());
    pilot.tick(&view([0, 1], 0.2, 0), 1.0, &core.snapshot());
    // Seen 0.2 ms (met), but the model foresees 0.2 x 5 on the noisy node once the rate
    // there counts: a replica on it is at risk.
    let d = pilot.tick(&view([1, 1], 0.2, 0), 0.9, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::AtRisk, "{d:?}");
    assert!(d.predicted_p99_ms.expect("predicted") > 0.9);
}

#[test]
fn without_a_model_it_scales_out_on_what_it_sees_and_never_in_while_broken() {
    let snapshot = empty();
    let mut pilot = Autopilot::new(config());
    pilot.tick(&view([1, 1], 0.2, 0), 1.0, &snapshot);
    // Seen 2 ms, nothing explains it: more replicas are predicted to carry the excess.
    let d = pilot.tick(&view([1, 1], 2.0, 0), 1.0, &snapshot);
    assert_eq!(d.state, ObjectiveState::Violated);
    assert!(d.reason.contains("no slowdown model"), "{}", d.reason);
    let plan = d.plan.expect("a plan");
    assert!(plan.placement.iter().sum::<u32>() > 2, "{plan:?}");
    assert!(plan
        .actions
        .iter()
        .all(|a| !matches!(a, Action::ScaleIn { .. })));
    // Never past the bounds: at 4 replicas there is no scale-out left.
    let d = pilot.tick(&view([2, 2], 2.0, 0), 1.0, &snapshot);
    assert!(d.plan.is_none_or(|p| p.placement.iter().sum::<u32>() <= 4));
}

#[test]
fn cooling_down_and_hysteresis_keep_it_from_flapping() {
    let core = served();
    let mut pilot = Autopilot::new(config());
    pilot.tick(&view([0, 1], 0.2, 0), 1.0, &core.snapshot());
    let d = pilot.tick(&view([1, 1], 1.0, 0), 0.9, &core.snapshot());
    assert!(d.plan.is_some());
    pilot.acted("default/nginx", NOW);
    // Met again, with a spare replica: no scale-in while cooling down.
    let d = pilot.tick(&view([0, 2], 0.2, 0), 0.9, &core.snapshot());
    assert!(d.plan.is_none());
    assert!(d.reason.contains("cooling down"), "{}", d.reason);
    // Still broken, but by the sample from before the plan: no new plan on old evidence.
    let d = pilot.tick(&view([0, 2], 1.0, 0), 0.9, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::Violated);
    assert!(d.reason.contains("cooling down"), "{}", d.reason);
    // A huge hysteresis: the saving is not worth acting.
    let mut calm = Autopilot::new(AutopilotConfig {
        hysteresis: 100.0,
        ..config()
    });
    calm.tick(&view([0, 1], 0.2, 0), 1.0, &core.snapshot());
    let d = calm.tick(&view([1, 1], 1.0, 0), 0.9, &core.snapshot());
    assert!(d.plan.is_none());
    assert!(d.reason.contains("hysteresis"), "{}", d.reason);
}

#[test]
fn an_exhausted_budget_still_answers_and_says_so() {
    let core = served();
    let mut pilot = Autopilot::new(AutopilotConfig {
        budget_ms: 1e-9,
        ..config()
    });
    pilot.tick(&view([0, 1], 0.2, 0), 1.0, &core.snapshot());
    let d = pilot.tick(&view([1, 1], 1.0, 0), 0.9, &core.snapshot());
    assert!(d.provenance.budget_exhausted, "{d:?}");
    assert_eq!(d.state, ObjectiveState::Violated);
}

#[test]
fn bad_settings_name_their_key() {
    let bad = AutopilotConfig {
        budget_ms: 0.0,
        min_replicas: 5,
        max_replicas: 4,
        tolerance: 1.5,
        replica_cost: -1.0,
        ..AutopilotConfig::default()
    };
    let problems = bad.problems().join("\n");
    for key in ["budget_ms", "min_replicas", "tolerance", "replica_cost"] {
        assert!(problems.contains(key), "{key}: {problems}");
    }
    assert!(AutopilotConfig::default().problems().is_empty());
}

#[test]
fn evicts_a_best_effort_hog_when_the_pods_model_says_it_is_the_cause() {
    use common::{slowdown_model, FEATURES};
    // Only the declared-pods model: slowdown = 1 + 2 x L3 pods. The replica's node holds a
    // best-effort L3 hog (2 pods' worth: slowdown 5), and no node has room for a replica.
    let core = core_with(vec![draft(
        "interference-slowdown-pods",
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let hog = Pressure {
        l3: 2.0,
        ..Pressure::default()
    };
    let mut v = view([1, 0], 1.0, 0);
    v.quiet_p99_ms = Some(0.2);
    for node in &mut v.nodes {
        node.room = 0;
    }
    v.nodes[0].pressure = hog;
    v.nodes[0].evictable = vec![("default/hog-1".into(), hog)];
    let mut pilot = Autopilot::new(config());
    let d = pilot.tick(&v, 0.9, &core.snapshot());
    assert_eq!(d.state, ObjectiveState::Violated);
    let plan = d.plan.expect("a plan");
    assert_eq!(
        plan.actions,
        [Action::Evict {
            instance: "default/hog-1".into(),
            node: "noisy".into()
        }]
    );
    assert_eq!(plan.placement, [1, 0], "the replicas stay");
    assert!(plan.predicted_p99_ms.expect("predicted") < 0.5, "{plan:?}");
    // Nothing evictable: no plan can help, and none is made.
    v.nodes[0].evictable.clear();
    let d = Autopilot::new(config()).tick(&v, 0.9, &core.snapshot());
    assert!(d.plan.is_none(), "{:?}", d.plan);
}
