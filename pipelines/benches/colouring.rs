//! Colouring and ranking costs (criterion; run with `cargo bench -p dcpilot-pipelines
//! --bench colouring`):
//! - `colour_10k_entities_x_20_metrics`: the calibrated detector on 10,000 entities × 20
//!   metrics, 70 one-minute samples each (an hour of calibration history) with ±10% noise
//!   (the share of metrics that move more than one robust σ, and so are calibrated, is
//!   printed), one thread;
//! - `rank_100k_node_landscape`: ranking already-scored entities over a 100,000-node
//!   landscape (2,000 hosts; 48,000 pods `runs_on` them; 50,000 services in 10 tiers, each
//!   calling 2 of the next tier), every node with telemetry; the top 1,000 candidates are
//!   built with their evidence.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use dcpilot_landscape::LandscapeGraph;
use dcpilot_pipelines::colouring::{
    colour,
    detect::{robust_deviation, Calibrated},
    rank, score, RankParams, Telemetry, Window,
};
use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};

/// A small deterministic generator (SplitMix64: the same data every run).
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n
    }
}

const AT: i64 = 62 * 60;

/// Samples every minute from `first_minute` to 70, a jump at 62 on every 50th entity.
fn telemetry(
    entities: &[String],
    metrics: usize,
    first_minute: i64,
    rng: &mut SplitMix,
) -> Telemetry {
    let mut t = Telemetry::default();
    for (i, e) in entities.iter().enumerate() {
        for m in 0..metrics {
            let metric = if m == 0 {
                "latency".to_string()
            } else {
                format!("m{m}")
            };
            let level = 1.0 + 100.0 * rng.unit();
            let broken = i % 50 == 0 && m < 2;
            for minute in first_minute..70 {
                let jump = if broken && minute >= 62 { 5.0 } else { 1.0 };
                t.push(
                    e,
                    &metric,
                    minute * 60,
                    level * jump * (1.0 + 0.2 * rng.unit()),
                );
            }
        }
    }
    t.sort();
    t
}

fn landscape(rng: &mut SplitMix) -> (LandscapeGraph, Vec<String>) {
    let (hosts, pods, services, tiers) = (2_000, 48_000, 50_000, 10);
    let mut events = Vec::new();
    let mut names = Vec::new();
    let mut node = |id: String, layer, ty: &str, names: &mut Vec<String>| {
        events.push(LandscapeEvent::NodeUp {
            timestamp_ms: 0,
            node: NodeSpec::new(id.clone(), layer, Category::Compute, ty),
        });
        names.push(id);
    };
    for h in 0..hosts {
        node(format!("host-{h}"), Layer::Physical, "host", &mut names);
    }
    for s in 0..services {
        node(format!("svc-{s}"), Layer::Service, "service", &mut names);
    }
    for p in 0..pods {
        node(format!("pod-{p}"), Layer::Virtual, "pod", &mut names);
    }
    let edge = |s: String, r, d: String| LandscapeEvent::EdgeUp {
        timestamp_ms: 0,
        edge: EdgeSpec::new(s, r, d),
    };
    let per_tier = services / tiers;
    for s in 0..services - per_tier {
        let next = (s / per_tier + 1) * per_tier;
        for _ in 0..2 {
            let callee = next + rng.below(per_tier);
            events.push(edge(
                format!("svc-{s}"),
                Relation::Calls,
                format!("svc-{callee}"),
            ));
        }
    }
    for p in 0..pods {
        let host = rng.below(hosts);
        events.push(edge(
            format!("pod-{p}"),
            Relation::RunsOn,
            format!("host-{host}"),
        ));
    }
    let mut g = LandscapeGraph::new();
    for e in &events {
        // Two random calls may be the same edge: applying it twice changes nothing.
        let _ = g.apply_event(e);
    }
    (g, names)
}

fn bench(c: &mut Criterion) {
    let mut rng = SplitMix(42);
    let (window, params) = (Window::default(), RankParams::default());

    let entities: Vec<String> = (0..10_000).map(|i| format!("e{i}")).collect();
    let t = telemetry(&entities, 20, 0, &mut rng);
    let calibrated = t
        .entities
        .values()
        .flat_map(|m| m.values())
        .filter(|p| robust_deviation(p, AT, &window).is_some_and(|d| d.score > 1.0))
        .count();
    println!(
        "{calibrated} of {} metrics move more than one robust σ (calibrated)",
        entities.len() * 20
    );
    let empty = LandscapeGraph::new();
    let mut group = c.benchmark_group("anomaly");
    group.sample_size(10);
    group.bench_function("colour_10k_entities_x_20_metrics", |b| {
        b.iter(|| black_box(colour(&t, &empty, AT, &Calibrated, &window, &params)));
    });

    let (g, names) = landscape(&mut rng);
    assert_eq!(g.node_count(), 100_000);
    // Just the baseline and the observed window: the scores are not what is measured.
    let t = telemetry(&names, 2, 57, &mut rng);
    let scores = score(&t, &g, AT, &Calibrated, &window, &params);
    assert_eq!(scores.len(), 100_000);
    assert_eq!(rank(&g, &scores, &params).len(), params.max_candidates);
    group.bench_function("rank_100k_node_landscape", |b| {
        b.iter(|| black_box(rank(&g, &scores, &params)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
