//! The placement planner over a real Information Core snapshot: interference-aware choice,
//! fallback when models are missing or unusable, the anytime answer when the budget is
//! gone, and clear errors.

mod common;

use std::collections::BTreeMap;

use common::*;
use dcpilot_foreground::planner::{RIGHTSIZING_MODEL, SLOWDOWN_MODEL, SLOWDOWN_PODS_MODEL};
use dcpilot_foreground::{
    place, Intents, PlacementAnswer, PlacementRequest, PlanError, PlannerConfig,
};
use dcpilot_info_core::{InfoCore, Model, QuantileTable};

/// Places `request` on [`landscape`] with the default config, as of `now_ms`.
fn plan(
    request: &PlacementRequest,
    core: &InfoCore,
    now_ms: i64,
) -> Result<PlacementAnswer, PlanError> {
    plan_on(request, &landscape(), core, now_ms)
}

/// [`plan`] on `landscape`.
fn plan_on(
    request: &PlacementRequest,
    landscape: &dcpilot_foreground::Landscape,
    core: &InfoCore,
    now_ms: i64,
) -> Result<PlacementAnswer, PlanError> {
    place(
        request,
        landscape,
        &core.snapshot(),
        &Intents::default(),
        &PlannerConfig::default(),
        now_ms,
    )
}

#[test]
fn the_slowdown_model_steers_a_latency_critical_workload_away_from_a_cache_hog() {
    let core = core_with(vec![draft(
        SLOWDOWN_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let answer = plan(&nginx(), &core, now_ms()).expect("answer");
    assert_eq!(answer.choices[0].host, "quiet", "{answer:#?}");
    let noisy = answer
        .choices
        .iter()
        .find(|c| c.host == "noisy")
        .expect("noisy ranked too");
    // 5 ms × (1 + 2·4) = 45 ms against a 20 ms objective.
    let predicted = noisy.predicted_p99_ms.expect("predicted");
    assert!((predicted - 45.0).abs() < 1e-6, "{predicted}");
    assert!(
        noisy.explanation.contains("objective 20 ms"),
        "{}",
        noisy.explanation
    );
    assert_eq!(answer.provenance.models.get(SLOWDOWN_MODEL), Some(&1));
    assert_eq!(answer.candidates_scored, 2);
    assert!(!answer.provenance.budget_exhausted);
    // Only the rightsizing table is missing.
    assert!(answer.provenance.degraded);
    assert_eq!(
        answer.provenance.degraded_reasons.len(),
        1,
        "{:?}",
        answer.provenance.degraded_reasons
    );
    assert!(answer.provenance.degraded_reasons[0].contains(RIGHTSIZING_MODEL));
}

#[test]
fn without_models_it_degrades_to_least_loaded_and_says_so() {
    let answer = plan(&nginx(), &core_with(vec![]), now_ms()).expect("answer");
    assert_eq!(answer.choices[0].host, "noisy", "least loaded wins blind");
    assert!(answer.provenance.degraded);
    assert!(answer
        .provenance
        .degraded_reasons
        .iter()
        .any(|r| r.contains(SLOWDOWN_MODEL) && r.contains("missing")));
    assert!(answer.choices[0].predicted_p99_ms.is_none());
}

#[test]
fn a_model_reading_unknown_features_is_not_used() {
    let features = ["rps", "l3_pods", "gpu_temperature"];
    let core = core_with(vec![draft(
        SLOWDOWN_MODEL,
        &features,
        slowdown_model(&features),
    )]);
    let answer = plan(&nginx(), &core, now_ms()).expect("answer");
    assert!(
        answer
            .provenance
            .degraded_reasons
            .iter()
            .any(|r| r.contains("gpu_temperature")),
        "{:?}",
        answer.provenance.degraded_reasons
    );
    assert!(answer.choices.iter().all(|c| c.predicted_p99_ms.is_none()));
}

#[test]
fn rightsizing_sizes_the_workload_and_a_zero_budget_still_answers() {
    let table = QuantileTable {
        quantiles: vec![0.5, 0.9],
        rows: BTreeMap::from([(
            "nginx".to_string(),
            BTreeMap::from([("cores".to_string(), vec![3.0, 10.0])]),
        )]),
    };
    let core = core_with(vec![draft(
        RIGHTSIZING_MODEL,
        &["cores"],
        Model::QuantileTable(table),
    )]);
    // p90 says 10 cores: only "noisy" (15 free) fits, "quiet" (8 free) does not.
    let answer = plan(&nginx(), &core, now_ms()).expect("answer");
    assert_eq!(answer.candidates_feasible, 1);
    assert_eq!(answer.choices[0].host, "noisy");
    assert!(answer.choices[0]
        .explanation
        .contains("p90 from rightsizing"));

    let mut hurried = nginx();
    hurried.budget_ms = Some(0.0);
    let answer = plan(&hurried, &core, now_ms()).expect("answer");
    assert!(answer.provenance.budget_exhausted);
    assert_eq!(answer.candidates_scored, 0);
    assert_eq!(answer.choices.len(), 1);
    assert!(!answer.choices[0].model_scored);
}

#[test]
fn stale_models_are_flagged_and_bad_requests_refused() {
    let core = core_with(vec![draft(
        SLOWDOWN_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let far_future = now_ms() + 365 * 86_400_000;
    let answer = plan(&nginx(), &core, far_future).expect("answer");
    assert!(
        answer
            .provenance
            .degraded_reasons
            .iter()
            .any(|r| r.contains("stale")),
        "{:?}",
        answer.provenance.degraded_reasons
    );

    let mut huge = nginx();
    huge.cores = 100.0;
    let err = plan(&huge, &core, now_ms()).expect_err("nothing fits");
    assert!(matches!(err, PlanError::NoFeasibleHost { .. }), "{err}");
    assert!(err.to_string().contains("nginx"));

    for (cores, budget) in [(f64::NAN, None), (0.0, None), (1.0, Some(-1.0))] {
        let mut bad = nginx();
        bad.cores = cores;
        bad.budget_ms = budget;
        let err = plan(&bad, &core, now_ms()).expect_err("bad request");
        assert!(matches!(err, PlanError::BadRequest(_)), "{err}");
    }
}

/// A colouring in which host `sick` is anomalous through its switch `sw-1` (score 2).
fn colouring_of(sick: &str) -> Model {
    use dcpilot_info_core::colouring::{Colouring, HostColour, Window, DEFAULT_ANOMALOUS_FROM};
    Model::Colouring(Box::new(Colouring {
        at: 0,
        detector: "calibrated-robust-z".into(),
        window: Window::default(),
        entities: Vec::new(),
        ranking: Vec::new(),
        hosts: vec![HostColour {
            host: format!("node/{sick}"),
            name: sick.into(),
            score: 2.0,
            anomalous: DEFAULT_ANOMALOUS_FROM <= 2.0,
            via: "sw-1".into(),
        }],
        problems: Vec::new(),
    }))
}

#[test]
fn a_host_coloured_anomalous_is_avoided_and_the_answer_says_why() {
    use dcpilot_foreground::planner::COLOURING_MODEL;
    let request = PlacementRequest::new("batch", 1.0, 1 << 30);
    // Without a colouring the least-loaded host, "noisy", comes first.
    let plain = plan(&request, &core_with(vec![]), now_ms()).expect("answer");
    assert_eq!(plain.choices[0].host, "noisy", "{plain:#?}");

    let core = core_with(vec![draft(COLOURING_MODEL, &[], colouring_of("noisy"))]);
    let answer = plan(&request, &core, now_ms()).expect("answer");
    assert_eq!(answer.choices[0].host, "quiet", "{answer:#?}");
    let noisy = answer
        .choices
        .iter()
        .find(|c| c.host == "noisy")
        .expect("still ranked");
    assert!(
        noisy
            .explanation
            .contains("coloured anomalous (score 2.00 via sw-1): +2.00"),
        "{}",
        noisy.explanation
    );
    let before = plain
        .choices
        .iter()
        .find(|c| c.host == "noisy")
        .expect("noisy");
    assert!((noisy.score - before.score - 2.0).abs() < 1e-9);
    assert_eq!(answer.provenance.models.get(COLOURING_MODEL), Some(&1));

    // A colouring older than max_colouring_age_secs is ignored, and the answer says so.
    let later = now_ms() + 3_600_000;
    let stale = plan(&request, &core, later).expect("answer");
    assert_eq!(stale.choices[0].host, "noisy", "{stale:#?}");
    assert!(
        stale
            .provenance
            .degraded_reasons
            .iter()
            .any(|r| r.contains("colouring landscape-colouring v1 is stale")),
        "{:?}",
        stale.provenance.degraded_reasons
    );
}

#[test]
fn rebalancing_moves_work_off_a_host_coloured_anomalous() {
    use dcpilot_foreground::planner::COLOURING_MODEL;
    use dcpilot_foreground::{rebalance, RebalanceRequest};
    let core = core_with(vec![draft(COLOURING_MODEL, &[], colouring_of("noisy"))]);
    let plan = rebalance(
        &RebalanceRequest::default(),
        &landscape(),
        &core.snapshot(),
        &Intents::default(),
        &PlannerConfig::default(),
        now_ms(),
    )
    .expect("plan");
    let off_noisy = plan
        .actions
        .iter()
        .find(|a| a.explanation.contains("from noisy"))
        .unwrap_or_else(|| panic!("nothing leaves the anomalous host: {plan:#?}"));
    assert!(
        off_noisy
            .explanation
            .contains("its host is coloured anomalous (+2.00 per instance)"),
        "{}",
        off_noisy.explanation
    );
    assert!(plan.objective_after < plan.objective_before, "{plan:#?}");
}

/// The answer's choice of `host`.
fn choice<'a>(answer: &'a PlacementAnswer, host: &str) -> &'a dcpilot_foreground::Choice {
    answer
        .choices
        .iter()
        .find(|c| c.host == host)
        .unwrap_or_else(|| panic!("{host} ranked: {answer:#?}"))
}

/// A live verdict on version 1 of the slowdown model.
fn verdict(demoted_by: f64) -> dcpilot_info_core::ModelDraft {
    verdict_until(demoted_by, i64::MAX)
}

/// [`verdict`], holding until `expires_at_ms`.
fn verdict_until(demoted_by: f64, expires_at_ms: i64) -> dcpilot_info_core::ModelDraft {
    use dcpilot_info_core::live::{verdict_name, Fallback, LiveBaseline, LiveVerdict};
    let baselines = vec![LiveBaseline {
        name: "no_interference".into(),
        error: demoted_by,
        fallback: Some(Fallback::Constant(1.0)),
    }];
    let v = LiveVerdict::new(
        SLOWDOWN_MODEL,
        1,
        "mae",
        86_400,
        (2, 3),
        50,
        0.5,
        baselines,
        (4, expires_at_ms),
    );
    draft(
        &verdict_name(SLOWDOWN_MODEL),
        &[],
        Model::LiveVerdict(Box::new(v)),
    )
}

#[test]
fn a_demoted_slowdown_model_is_answered_by_its_baseline_and_the_answer_says_so() {
    let model = || draft(SLOWDOWN_MODEL, &FEATURES, slowdown_model(&FEATURES));
    // Worse live than "no interference" (0.5 vs 0.2): co-runners are taken to cost nothing.
    let demoted = core_with(vec![model(), verdict(0.2)]);
    let answer = plan(&nginx(), &demoted, now_ms()).expect("answer");
    let noisy = choice(&answer, "noisy");
    assert_eq!(noisy.predicted_p99_ms, Some(5.0), "{answer:#?}");
    let reasons = answer.provenance.degraded_reasons.join(" | ");
    assert!(
        reasons.contains("interference-slowdown v1 is demoted")
            && reasons.contains("live mae 0.5000 vs 0.2000 for no_interference")
            && reasons.contains("answered by baseline no_interference"),
        "{reasons}"
    );

    // Better live than its baseline: the model answers and nothing is said.
    let serving = core_with(vec![model(), verdict(0.9)]);
    let answer = plan(&nginx(), &serving, now_ms()).expect("answer");
    let noisy = choice(&answer, "noisy");
    assert!((noisy.predicted_p99_ms.expect("p99") - 45.0).abs() < 1e-6);
    assert!(!answer
        .provenance
        .degraded_reasons
        .iter()
        .any(|r| r.contains("demoted")));

    // An expired verdict demotes nothing: judgement stopped, the evidence is gone.
    let expired = core_with(vec![model(), verdict_until(0.2, now_ms() - 1)]);
    let answer = plan(&nginx(), &expired, now_ms()).expect("answer");
    assert!((choice(&answer, "noisy").predicted_p99_ms.expect("p99") - 45.0).abs() < 1e-6);

    // A verdict on another version does not demote the one served.
    let newer = core_with(vec![model(), verdict(0.2), model()]);
    let answer = plan(&nginx(), &newer, now_ms()).expect("answer");
    assert_eq!(answer.provenance.models.get(SLOWDOWN_MODEL), Some(&2));
    let noisy = choice(&answer, "noisy");
    assert!((noisy.predicted_p99_ms.expect("p99") - 45.0).abs() < 1e-6);
}

/// slowdown = 1 + 0.5 · memory read GB/s, on the counter features, fitted exactly.
fn counters_model() -> (Vec<&'static str>, Model) {
    use dcpilot_info_core::model::Linear;
    use dcpilot_info_core::DenseMatrix;
    use smartcore::linear::linear_regression::LinearRegressionParameters;
    let features = vec![
        "rps",
        "replicas",
        "pcm_ipc",
        "pcm_l3_misses_m",
        "pcm_mem_read_gbps",
        "pcm_mem_write_gbps",
    ];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..80u32 {
        let row: Vec<f64> = (0..features.len() as u32)
            .map(|f| f64::from((i * 7 + f * 13) % 11 + f * (i % 3)))
            .collect();
        y.push(1.0 + 0.5 * row[4]);
        x.push(row);
    }
    let m = DenseMatrix::from_2d_vec(&x).expect("matrix");
    let fitted = Linear::fit(&m, &y, LinearRegressionParameters::default()).expect("fit");
    (features, Model::LinearRegression(fitted))
}

/// Sets every counter of `host`, memory read traffic to `read_gbps`.
fn report_counters(l: &mut dcpilot_foreground::Landscape, host: &str, read_gbps: f64) {
    use dcpilot_foreground::{HostCounters, HostMeasure};
    for (metric, value) in [
        ("pcm_ipc", 1.2),
        ("pcm_l3_misses_m", 0.1),
        ("pcm_l2_misses_m", 0.5),
        ("pcm_mem_read_gbps", read_gbps),
        ("pcm_mem_write_gbps", read_gbps / 2.0),
        ("pcm_c0_residency_pct", 50.0),
    ] {
        let i = HostCounters::index_of(metric).expect("a counter");
        l.set_measured(host, HostMeasure::Counter(i), value)
            .expect("measured");
    }
}

#[test]
fn hosts_are_judged_by_what_they_measure_and_by_declared_pods_without_counters() {
    let (features, counters) = counters_model();
    let core = core_with(vec![
        draft(SLOWDOWN_MODEL, &features, counters),
        draft(SLOWDOWN_PODS_MODEL, &FEATURES, slowdown_model(&FEATURES)),
    ]);
    let place_on = |l| plan_on(&nginx(), l, &core, now_ms()).expect("answer");

    // "noisy" declares an L3 hog but measures calm; "quiet" declares nothing but its
    // memory traffic says a noisy neighbour runs there: judged by the counters.
    let mut measured = landscape();
    report_counters(&mut measured, "noisy", 0.5);
    report_counters(&mut measured, "quiet", 8.0);
    let answer = place_on(&measured);
    assert_eq!(answer.choices[0].host, "noisy", "{answer:#?}");
    let quiet = choice(&answer, "quiet");
    assert!(
        (quiet.predicted_p99_ms.expect("p99") - 25.0).abs() < 1e-6,
        "5 ms × 5"
    );
    assert!(
        quiet.explanation.contains("measured counters"),
        "{}",
        quiet.explanation
    );
    assert_eq!(answer.provenance.models.get(SLOWDOWN_MODEL), Some(&1));

    // Without counters from "quiet", its declared pods judge it (none: no slowdown).
    let mut partly = landscape();
    report_counters(&mut partly, "noisy", 0.5);
    let answer = place_on(&partly);
    let quiet = choice(&answer, "quiet");
    assert!((quiet.predicted_p99_ms.expect("p99") - 5.0).abs() < 1e-6);
    assert!(
        quiet.explanation.contains("declared co-runner pressure"),
        "{}",
        quiet.explanation
    );
    assert_eq!(answer.provenance.models.get(SLOWDOWN_PODS_MODEL), Some(&1));

    // The counter model demoted live, the pods model not: the pods model judges.
    let (features, counters) = counters_model();
    let demoted = core_with(vec![
        draft(SLOWDOWN_MODEL, &features, counters),
        draft(SLOWDOWN_PODS_MODEL, &FEATURES, slowdown_model(&FEATURES)),
        verdict(0.2),
    ]);
    let answer = plan_on(&nginx(), &measured, &demoted, now_ms()).expect("answer");
    let noisy = choice(&answer, "noisy");
    assert!(
        (noisy.predicted_p99_ms.expect("p99") - 45.0).abs() < 1e-6
            && noisy.explanation.contains("declared co-runner pressure"),
        "{noisy:?}"
    );

    // Only the pods model served: it judges every host, and the answer says why.
    let pods_only = core_with(vec![draft(
        SLOWDOWN_PODS_MODEL,
        &FEATURES,
        slowdown_model(&FEATURES),
    )]);
    let answer = plan_on(&nginx(), &measured, &pods_only, now_ms()).expect("answer");
    assert_eq!(answer.choices[0].host, "quiet", "{answer:#?}");
    assert!(
        answer
            .provenance
            .degraded_reasons
            .iter()
            .any(|r| r.contains("declared co-runner pods")),
        "{:?}",
        answer.provenance.degraded_reasons
    );
}

/// A forest (non-linear, walked in lock-step in batches) over `features`.
fn forest_model(features: &[&str]) -> Model {
    use dcpilot_info_core::model::Forest;
    use dcpilot_info_core::DenseMatrix;
    use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..400u64 {
        let row: Vec<f64> = (0..features.len() as u64)
            .map(|f| ((i * 2_654_435_761 + f * 40_503) % 997) as f64 / 997.0 * 8.0)
            .collect();
        y.push(1.0 + row[row.len() - 1] * row[row.len() - 2] / 8.0);
        x.push(row);
    }
    let m = DenseMatrix::from_2d_vec(&x).expect("matrix");
    let params = RandomForestRegressorParameters::default()
        .with_n_trees(20)
        .with_max_depth(6)
        .with_seed(5);
    Model::RandomForest(Forest::fit(&m, &y, params).expect("fit"))
}

#[test]
fn batched_predictions_score_every_host_exactly_as_one_by_one() {
    use dcpilot_foreground::planner::ModelUse;
    use dcpilot_foreground::{HostCounters, HostMeasure};
    let (features, _) = counters_model();
    let core = core_with(vec![
        draft(SLOWDOWN_MODEL, &features, forest_model(&features)),
        draft(SLOWDOWN_PODS_MODEL, &FEATURES, forest_model(&FEATURES)),
    ]);
    // 600 hosts (several batches, lanes and a remainder): two of three report their own
    // counters (the counter model judges them), the others only declared pods.
    let names: Vec<String> = (0..600).map(|i| format!("h{i}")).collect();
    let mut l = dcpilot_foreground::Landscape::new(names.iter().map(|n| host(n, 64.0)).collect())
        .expect("hosts");
    for (i, name) in names.iter().enumerate() {
        l.upsert(dcpilot_foreground::Instance {
            id: format!("hog-{i}"),
            workload: "stress".into(),
            host: name.clone(),
            cores: 1.0,
            memory_bytes: 1 << 30,
            pressure: dcpilot_foreground::Pressure {
                l3: (i % 5) as f64,
                membw: (i % 3) as f64,
                ..dcpilot_foreground::Pressure::default()
            },
            ..dcpilot_foreground::Instance::new("", "", "", 0.0, 0)
        })
        .expect("hog");
        if i % 3 != 0 {
            for (c, metric) in [
                "pcm_ipc",
                "pcm_l3_misses_m",
                "pcm_mem_read_gbps",
                "pcm_mem_write_gbps",
            ]
            .into_iter()
            .enumerate()
            {
                let value = ((i * 7_919 + c * 104_729) % 1_009) as f64 / 1_009.0 * 8.0;
                let k = HostCounters::index_of(metric).expect("a counter");
                l.set_measured(name, HostMeasure::Counter(k), value)
                    .expect("measured");
            }
        }
    }
    let config = PlannerConfig {
        top: 600,
        ..PlannerConfig::default()
    };
    let request = PlacementRequest {
        budget_ms: Some(60_000.0),
        ..nginx()
    };
    let snapshot = core.snapshot();
    let answer = place(
        &request,
        &l,
        &snapshot,
        &Intents::default(),
        &config,
        now_ms(),
    )
    .expect("answer");
    assert_eq!(answer.choices.len(), 600);

    let mut models = ModelUse::new(&snapshot, &config, now_ms());
    let slowdowns = models.slowdowns();
    let mut row = Vec::new();
    let (mut by_counters, mut by_pods) = (0, 0);
    for choice in &answer.choices {
        let load = &l.loads()[l.host_index(&choice.host).expect("host")];
        let (model, _) = slowdowns.for_host(&load.counters).expect("a model");
        let one = model
            .slowdown(2000.0, 2.0, &load.pressure, &load.counters, &mut row)
            .expect("a slowdown");
        let p99 = choice.predicted_p99_ms.expect("predicted");
        assert_eq!(p99.to_bits(), (5.0 * one).to_bits(), "{}", choice.host);
        if choice.explanation.contains("measured counters") {
            by_counters += 1;
        } else {
            by_pods += 1;
        }
    }
    assert_eq!((by_counters, by_pods), (400, 200));
}
