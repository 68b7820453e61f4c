//! Fixtures of the foreground benches: a landscape with a deterministic mix of co-runner
//! pressure and an Information Core serving a random-forest slowdown model.
#![allow(dead_code)] // Each bench uses its own part.

use std::collections::BTreeMap;
use std::sync::Arc;

use dcpilot_foreground::landscape::HostMeasure;
use dcpilot_foreground::planner::SLOWDOWN_MODEL;
use dcpilot_foreground::{Host, Instance, Landscape, Pressure};
use dcpilot_info_core::model::Forest;
use dcpilot_info_core::{
    DenseMatrix, HoldoutMetrics, InfoCore, Lineage, MemoryStorage, Model, ModelDraft,
    TrainingWindow,
};
use dcpilot_schemas::PlatformFeatures;
use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;

pub const FEATURES: [&str; 5] = ["rps", "replicas", "cpu_pods", "l3_pods", "membw_pods"];

/// A counter model's features: what the host measures, continuous — no two hosts alike.
pub const COUNTER_FEATURES: [&str; 6] = [
    "rps",
    "replicas",
    "pcm_ipc",
    "pcm_l3_misses_m",
    "pcm_mem_read_gbps",
    "pcm_mem_write_gbps",
];

pub fn forest() -> Model {
    forest_of(FEATURES.len())
}

/// A 50-tree forest of depth 8 over `width` features.
pub fn forest_of(width: usize) -> Model {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..2_000u64 {
        let row: Vec<f64> = (0..width as u64)
            .map(|f| ((i * 2_654_435_761 + f * 40_503) % 997) as f64 / 997.0 * 4.0)
            .collect();
        y.push(1.0 + 2.0 * row[3] + 0.5 * row[4] + 0.1 * row[2]);
        x.push(row);
    }
    let m = DenseMatrix::from_2d_vec(&x).expect("matrix");
    let params = RandomForestRegressorParameters::default()
        .with_n_trees(50)
        .with_max_depth(8)
        .with_seed(3);
    Model::RandomForest(Forest::fit(&m, &y, params).expect("fit"))
}

pub fn landscape(hosts: usize) -> Landscape {
    let mut l = Landscape::new(
        (0..hosts)
            .map(|i| Host {
                name: format!("node-{i}"),
                cores: 32.0,
                memory_bytes: 128 << 30,
                features: PlatformFeatures::default(),
                labels: BTreeMap::new(),
            })
            .collect(),
    )
    .expect("hosts");
    for i in 0..hosts * 4 {
        let kind = (i * 7) % 5;
        l.upsert(Instance {
            id: format!("i-{i}"),
            workload: format!("w-{}", i % 50),
            host: format!("node-{}", (i * 31) % hosts),
            cores: 1.0 + (i % 6) as f64,
            memory_bytes: 2 << 30,
            pressure: Pressure {
                cpu: f64::from(kind == 1) * ((i % 3) as f64 + 1.0),
                l3: f64::from(kind == 2) * ((i % 4) as f64 + 1.0),
                membw: f64::from(kind == 3) * ((i % 2) as f64 + 1.0),
            },
            latency_critical: kind == 0,
            rps: (kind == 0).then_some(500.0),
            quiet_p99_ms: (kind == 0).then_some(5.0),
            evictable: false,
        })
        .expect("instance");
    }
    l
}

/// [`landscape`] whose every host reports its own PCM counters (distinct values).
pub fn measured_landscape(hosts: usize) -> Landscape {
    let mut l = landscape(hosts);
    for i in 0..hosts {
        let host = format!("node-{i}");
        for (c, metric) in COUNTER_FEATURES[2..].iter().enumerate() {
            let value = 0.5
                + ((i as u64 * 2_654_435_761 + c as u64 * 40_503) % 9_973) as f64 / 9_973.0 * 3.0;
            let measure = HostMeasure::of(metric, "host_cpu_cores_used").expect("a counter");
            l.set_measured(&host, measure, value).expect("counter");
        }
    }
    l
}

/// An Information Core serving [`forest`] as the `interference-slowdown` model.
pub fn core_with_slowdown() -> InfoCore {
    core_serving(&FEATURES, forest())
}

/// An Information Core serving a forest on [`COUNTER_FEATURES`] as the
/// `interference-slowdown` model.
pub fn core_with_counter_slowdown() -> InfoCore {
    core_serving(&COUNTER_FEATURES, forest_of(COUNTER_FEATURES.len()))
}

fn core_serving(features: &[&str], model: Model) -> InfoCore {
    let core = InfoCore::open(Arc::new(MemoryStorage::default()), 5).expect("store");
    core.publish(ModelDraft {
        name: SLOWDOWN_MODEL.into(),
        features: features.iter().map(|f| f.to_string()).collect(),
        target: "slowdown".into(),
        window: TrainingWindow {
            start_ms: 0,
            end_ms: 1,
        },
        rows: 2_000,
        metrics: HoldoutMetrics {
            metric: "mae".into(),
            model_error: 0.1,
            baseline_error: 1.0,
            baseline: "no_interference".into(),
        },
        lineage: Lineage::of_job("bench", "00000000"),
        model,
    })
    .expect("publish");
    core
}
