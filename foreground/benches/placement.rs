//! One placement request, in process, with model scoring of every feasible host: a
//! latency-critical workload with a p99 objective, the `interference-slowdown` model a
//! random forest (50 trees, depth 8, 5 features, flat prepared form), hosts carrying a
//! deterministic mix of co-runner pressure. Budget large enough to score every host, so
//! the time is the full refinement; with the default budget the planner stops earlier.
//! `place_measured`: the same with every host reporting its own PCM counters and a forest
//! on rps, replicas and four counters — every host a distinct feature row.
//! Printed besides: p50/p99 of placements with the default budget up to 50,000 hosts /
//! 200,000 instances, and the memory the placement view holds (a counting allocator).

mod common;

#[path = "../../info-core/benches/shared/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocated;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

use common::{core_with_counter_slowdown, core_with_slowdown, landscape, measured_landscape};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dcpilot_foreground::{
    place, rebalance_state, Intents, Landscape, PlacementRequest, PlannerConfig, RebalanceRequest,
};
use dcpilot_info_core::Snapshot;

fn placement(c: &mut Criterion) {
    let core = core_with_slowdown();
    let snapshot = core.snapshot();
    let config = PlannerConfig::default();
    let request = PlacementRequest {
        rps: Some(2_000.0),
        replicas: Some(2.0),
        quiet_p99_ms: Some(5.0),
        p99_objective_ms: Some(20.0),
        budget_ms: Some(1_000.0),
        ..PlacementRequest::new("nginx", 2.0, 1 << 30)
    };
    // Every workload promises p99 ≤ 20 ms (only latency-critical instances can miss it).
    let body: Vec<String> = (0..50)
        .map(|w| format!(r#"{{"kind":"WorkloadIntent","workload":"w-{w}","p99_latency_ms":20.0}}"#))
        .collect();
    let (intents, _) = Intents::default()
        .with_body(&format!("[{}]", body.join(",")))
        .expect("intents");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Declared pressure (predictions repeat across hosts: the memo helps), then hosts that
    // measure: each reports its own PCM counters, so every host is a distinct feature row
    // (the memo cannot help; the batched prediction does).
    let measured_core = core_with_counter_slowdown();
    let measured_snapshot = measured_core.snapshot();
    type Group<'s> = (&'static str, &'s Snapshot, fn(usize) -> Landscape);
    let groups: [Group<'_>; 2] = [
        ("place", &snapshot, landscape),
        ("place_measured", &measured_snapshot, measured_landscape),
    ];
    for (name, snapshot, build) in groups {
        let mut group = c.benchmark_group(name);
        for hosts in [1_000, 5_000, 10_000] {
            let l = build(hosts);
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(BenchmarkId::new("score_all_hosts", hosts), &l, |b, l| {
                b.iter(|| {
                    let answer =
                        place(&request, l, snapshot, &intents, &config, now_ms).expect("answer");
                    assert!(!answer.provenance.budget_exhausted);
                    answer
                })
            });
        }
        group.finish();
    }

    // Latency distribution (criterion reports medians): p50 and p99 of 2,000 placements
    // with the default 10 ms budget, printed for the README.
    for hosts in [1_000, 5_000, 10_000, 50_000] {
        let before = allocated();
        let l = landscape(hosts);
        let view_bytes = allocated().saturating_sub(before);
        let before = allocated();
        let index = dcpilot_foreground::objective::State::new(&l, &intents);
        let index_bytes = allocated().saturating_sub(before);
        drop(index);
        let nodes = hosts * 5; // hosts and their 4 instances each
        eprintln!(
            "memory at {hosts} hosts / {} instances: placement view {:.1} MiB ({} bytes per host or instance), rebalancing index {:.1} MiB ({} bytes per host or instance)",
            hosts * 4,
            view_bytes as f64 / 1048576.0,
            view_bytes / nodes,
            index_bytes as f64 / 1048576.0,
            index_bytes / nodes,
        );
        let mut request = request.clone();
        request.budget_ms = None;
        let mut exhausted = 0;
        let mut samples: Vec<f64> = (0..2_000)
            .map(|_| {
                let started = std::time::Instant::now();
                let answer =
                    place(&request, &l, &snapshot, &intents, &config, now_ms).expect("answer");
                exhausted += usize::from(answer.provenance.budget_exhausted);
                std::hint::black_box(answer);
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        eprintln!(
            "place {hosts} hosts (default budget {} ms): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} placements, {exhausted} stopped by the budget",
            config.budget_ms,
            at(0.5),
            at(0.99),
            at(1.0),
            samples.len()
        );
    }

    // Rebalancing 20,000 instances (5,000 hosts × 4) within 10 ms and 100 ms: the time is
    // the budget by design; the quality (objective before → after, actions) is printed.
    let l = landscape(5_000);
    // The server keeps the landscape in index form between changes and copies it per
    // request (the copy is on the clock); building it is not.
    let started = std::time::Instant::now();
    let prepared = dcpilot_foreground::objective::State::new(&l, &intents);
    eprintln!(
        "rebalance: building the index form of 20k instances took {:.2} ms (once per landscape change, off the request path)",
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut group = c.benchmark_group("rebalance_20k_instances");
    group.sample_size(10);
    for budget in [10.0, 100.0] {
        // No cap on actions: the budget alone ends the search.
        let request = RebalanceRequest {
            budget_ms: Some(budget),
            max_actions: Some(usize::MAX),
            ..RebalanceRequest::default()
        };
        let run = || {
            rebalance_state(
                &request,
                prepared.clone(),
                dcpilot_foreground::planner::Clock::now(budget),
                &snapshot,
                &config,
                now_ms,
            )
            .expect("plan")
        };
        let plan = run();
        let (before, after) = (
            plan.objective_before.unwrap_or(f64::NAN),
            plan.objective_after.unwrap_or(f64::NAN),
        );
        eprintln!(
            "rebalance {} instances in {budget} ms: objective {before:.3} -> {after:.3} ({:.2}% better), {} actions, {} moves evaluated, {:.2} ms used",
            plan.instances,
            100.0 * (before - after) / before,
            plan.actions.len(),
            plan.moves_evaluated,
            plan.provenance.used_ms
        );
        group.bench_function(BenchmarkId::new("budget_ms", budget), |b| b.iter(run));
    }
    group.finish();
}

criterion_group!(benches, placement);
criterion_main!(benches);
