//! Landscape graph costs on a 100k-node / 1M-edge landscape built from events: the build
//! itself, the subgraph of one host to depth 3, a service's blast radius, an as-of-time
//! neighbourhood, and publishing a snapshot after one event (by copying, and by the
//! two-copy `SharedLandscape` the loops use). Besides criterion's medians it
//! prints p50/p99 over 1,000 different start nodes and the memory the graph holds (a
//! counting allocator).
//!
//! Shape: 50 racks ⊃ 1,000 hosts ⊃ (package ⊃ 8 cores ⊃ 16 PUs, 2 NICs); 50,000 pods
//! `runs_on` hosts and are `member_of` one of 1,950 services in 10 tiers (each calling 2 of
//! the next tier); 20,000 volumes and networks the pods `require` (~17 each) — 100,000
//! nodes, 1,000,000 edges. At t = 2 every tenth pod moves to another host (history).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use dcpilot_landscape::{LandscapeGraph, SharedLandscape, Walk};
use dcpilot_schemas::{Category, EdgeSpec, LandscapeEvent, Layer, NodeSpec, Relation};

#[path = "../../info-core/benches/shared/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

const HOSTS: usize = 1_000;
const PODS: usize = 50_000;
const SERVICES: usize = 1_950;
const TIERS: usize = 10;
const VOLUMES: usize = 20_000;
const EDGES: usize = 1_000_000;

/// A small deterministic generator (the same landscape every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn node(t: i64, id: String, layer: Layer, category: Category, ty: &str) -> LandscapeEvent {
    LandscapeEvent::NodeUp {
        timestamp_ms: t,
        node: NodeSpec::new(id, layer, category, ty),
    }
}

fn edge(t: i64, s: String, r: Relation, d: String) -> LandscapeEvent {
    LandscapeEvent::EdgeUp {
        timestamp_ms: t,
        edge: EdgeSpec::new(s, r, d),
    }
}

fn events() -> Vec<LandscapeEvent> {
    let mut rng = Lcg(7);
    let mut out = Vec::with_capacity(1_300_000);
    let (p, c) = (Layer::Physical, Category::Compute);
    for r in 0..50 {
        out.push(node(1, format!("rack-{r}"), p, c, "rack"));
    }
    for h in 0..HOSTS {
        let host = format!("host-{h}");
        out.push(node(1, host.clone(), p, c, "host"));
        out.push(edge(
            1,
            format!("rack-{}", h % 50),
            Relation::Contains,
            host.clone(),
        ));
        let package = format!("{host}/package:0");
        out.push(node(1, package.clone(), p, c, "package"));
        out.push(edge(1, host.clone(), Relation::Contains, package.clone()));
        for core in 0..8 {
            let core_id = format!("{host}/core:{core}");
            out.push(node(1, core_id.clone(), p, c, "core"));
            out.push(edge(
                1,
                package.clone(),
                Relation::Contains,
                core_id.clone(),
            ));
            for pu in 0..2 {
                let pu_id = format!("{host}/pu:{}", core * 2 + pu);
                out.push(node(1, pu_id.clone(), p, c, "pu"));
                out.push(edge(1, core_id.clone(), Relation::Contains, pu_id));
            }
        }
        for nic in 0..2 {
            let nic_id = format!("{host}/nic:{nic}");
            out.push(node(1, nic_id.clone(), p, Category::Network, "nic"));
            out.push(edge(1, host.clone(), Relation::Contains, nic_id));
        }
    }
    let per_tier = SERVICES / TIERS;
    for s in 0..SERVICES {
        out.push(node(1, format!("svc-{s}"), Layer::Service, c, "service"));
    }
    for s in 0..SERVICES - per_tier {
        let next_tier = (s / per_tier + 1) * per_tier;
        for _ in 0..2 {
            let callee = next_tier + rng.below(per_tier);
            out.push(edge(
                1,
                format!("svc-{s}"),
                Relation::Calls,
                format!("svc-{callee}"),
            ));
        }
    }
    for v in 0..VOLUMES {
        let ty = if v % 2 == 0 { "volume" } else { "network" };
        let category = if v % 2 == 0 {
            Category::Storage
        } else {
            Category::Network
        };
        out.push(node(1, format!("vol-{v}"), Layer::Virtual, category, ty));
    }
    for i in 0..PODS {
        let pod = format!("pod-{i}");
        out.push(node(1, pod.clone(), Layer::Virtual, c, "pod"));
        out.push(edge(
            1,
            pod.clone(),
            Relation::RunsOn,
            format!("host-{}", i % HOSTS),
        ));
        out.push(edge(
            1,
            pod,
            Relation::MemberOf,
            format!("svc-{}", i % SERVICES),
        ));
    }
    let so_far = out
        .iter()
        .filter(|e| matches!(e, LandscapeEvent::EdgeUp { .. }))
        .count();
    for k in 0..EDGES - so_far {
        let pod = format!("pod-{}", k % PODS);
        // Distinct volumes per pod: a stride that never repeats within one pod's ~17.
        let v = (k / PODS * 1_181 + k % PODS * 7) % VOLUMES;
        out.push(edge(1, pod, Relation::Requires, format!("vol-{v}")));
    }
    for i in (0..PODS).step_by(10) {
        let (pod, old) = (format!("pod-{i}"), format!("host-{}", i % HOSTS));
        out.push(LandscapeEvent::EdgeDown {
            timestamp_ms: 2,
            source: pod.clone(),
            target: old,
            relation: Relation::RunsOn,
        });
        out.push(edge(
            2,
            pod,
            Relation::RunsOn,
            format!("host-{}", (i + 1) % HOSTS),
        ));
    }
    out
}

fn build(events: &[LandscapeEvent]) -> LandscapeGraph {
    let mut g = LandscapeGraph::new();
    for e in events {
        g.apply_event(e).expect("a consistent landscape");
    }
    g
}

/// p50 and p99 of `query` over `starts`, one timed call each.
fn percentiles(name: &str, starts: &[String], mut query: impl FnMut(&str) -> usize) {
    let mut times: Vec<Duration> = starts
        .iter()
        .map(|s| {
            let t = Instant::now();
            black_box(query(s));
            t.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    eprintln!(
        "{name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} start nodes",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        times.len()
    );
}

fn bench(c: &mut Criterion) {
    let events = events();
    let before = counting_alloc::allocated();
    let graph = Arc::new(build(&events));
    let bytes = counting_alloc::allocated() - before;
    let (nodes, edges) = (graph.node_count(), graph.edge_count());
    eprintln!(
        "landscape: {nodes} nodes, {edges} edges, {} events; {:.0} MiB held, {:.0} bytes per node+edge",
        events.len(),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / (nodes + edges) as f64
    );
    let mut rng = Lcg(11);
    let hosts: Vec<String> = (0..1_000)
        .map(|_| format!("host-{}", rng.below(HOSTS)))
        .collect();
    let bottom = SERVICES - SERVICES / TIERS;
    let services: Vec<String> = (0..1_000)
        .map(|_| format!("svc-{}", rng.below(SERVICES)))
        .collect();
    let pods: Vec<String> = (0..1_000)
        .map(|_| format!("pod-{}", rng.below(PODS)))
        .collect();
    let t = 3;
    percentiles("subgraph host down d3", &hosts, |h| {
        graph
            .subgraph(h, Walk::Down, 3, &[], t)
            .expect("host")
            .nodes
            .len()
    });
    percentiles("subgraph host up d3", &hosts, |h| {
        graph
            .subgraph(h, Walk::Up, 3, &[], t)
            .expect("host")
            .nodes
            .len()
    });
    percentiles("blast radius service", &services, |s| {
        graph.blast_radius(s, t).expect("service").len()
    });
    percentiles("neighbours pod as of t=1", &pods, |p| {
        graph.neighbours(p, None, Walk::Both, 1).expect("pod").len()
    });

    let mut group = c.benchmark_group("landscape");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("build 100k nodes 1M edges from events", |b| {
        b.iter(|| black_box(build(&events)).node_count());
    });
    group.finish();

    let mut group = c.benchmark_group("landscape query");
    let mut i = 0;
    group.bench_function("subgraph of a host, down, depth 3", |b| {
        b.iter(|| {
            i = (i + 1) % hosts.len();
            graph
                .subgraph(&hosts[i], Walk::Down, 3, &[], t)
                .expect("host")
                .nodes
                .len()
        });
    });
    group.bench_function("blast radius of a bottom-tier service", |b| {
        let worst = format!("svc-{bottom}");
        b.iter(|| graph.blast_radius(&worst, t).expect("service").len());
    });
    group.bench_function("neighbourhood of a pod as of a past time", |b| {
        b.iter(|| {
            i = (i + 1) % pods.len();
            graph
                .neighbours(&pods[i], None, Walk::Both, 1)
                .expect("pod")
                .len()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("landscape snapshot");
    group.sample_size(10);
    let moved = LandscapeEvent::EdgeDown {
        timestamp_ms: 5,
        source: "pod-1".into(),
        target: "host-1".into(),
        relation: Relation::RunsOn,
    };
    group.bench_function("one event, then a new snapshot (clone + apply)", |b| {
        b.iter_batched(
            || Arc::clone(&graph),
            |current| {
                let mut next = LandscapeGraph::clone(&current);
                next.apply_event(&moved).expect("applies");
                Arc::new(next)
            },
            BatchSize::LargeInput,
        );
    });
    // What the loops do: the two-copy shared landscape. Each change relabels a host at a
    // later time (history grows by one version), is published, and is replayed on the
    // spare copy before the next one.
    let shared = SharedLandscape::new(LandscapeGraph::clone(&graph));
    let mut tick = 10i64;
    let mut relabel = move || {
        tick += 1;
        let mut node = NodeSpec::new("host-1", Layer::Physical, Category::Compute, "host");
        node.labels.insert("tick".into(), tick.to_string());
        LandscapeEvent::NodeUp {
            timestamp_ms: tick,
            node,
        }
    };
    group.sample_size(100);
    group.bench_function("one event, then a new snapshot (shared, two copies)", |b| {
        b.iter_batched(
            &mut relabel,
            |event| {
                let outcome = shared.apply_each(std::slice::from_ref(&event));
                assert!(outcome.refused.is_empty() && outcome.changed);
                // A reader takes the new snapshot and lets it go (readers hold one per
                // request; one held longer makes the next change copy the graph).
                shared.load().node_count()
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
