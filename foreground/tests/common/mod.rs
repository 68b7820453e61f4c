//! Fixtures shared by the foreground's integration tests: a two-host landscape with a
//! cache hog on the emptier host, an exactly-known slowdown model, and a request.
#![allow(dead_code)] // Each test file uses its own part.

use std::collections::BTreeMap;
use std::sync::Arc;

use dcpilot_foreground::{Host, Instance, Landscape, PlacementRequest, Pressure};
use dcpilot_info_core::model::Linear;
use dcpilot_info_core::{
    DenseMatrix, HoldoutMetrics, InfoCore, Lineage, MemoryStorage, Model, ModelDraft,
    TrainingWindow,
};
use dcpilot_schemas::PlatformFeatures;
use smartcore::linear::linear_regression::LinearRegressionParameters;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn host(name: &str, cores: f64) -> Host {
    Host {
        name: name.into(),
        cores,
        memory_bytes: 64 << 30,
        features: PlatformFeatures::default(),
        labels: BTreeMap::new(),
    }
}

pub fn draft(name: &str, features: &[&str], model: Model) -> ModelDraft {
    ModelDraft {
        name: name.into(),
        features: features.iter().map(|f| f.to_string()).collect(),
        target: "y".into(),
        window: TrainingWindow {
            start_ms: 0,
            end_ms: 1,
        },
        rows: 100,
        metrics: HoldoutMetrics {
            metric: "mae".into(),
            model_error: 0.1,
            baseline_error: 1.0,
            baseline: "b".into(),
        },
        lineage: Lineage::of_job(name, "00000000"),
        model,
    }
}

/// slowdown = 1 + 2·l3_pods + 0.5·membw_pods (+ 0·cpu_pods, rps, replicas), fitted exactly.
pub fn slowdown_model(features: &[&str]) -> Model {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..60u32 {
        let row: Vec<f64> = features
            .iter()
            .enumerate()
            .map(|(f, _)| f64::from((i * 7 + f as u32 * 13) % 11))
            .collect();
        let l3 = features
            .iter()
            .position(|f| *f == "l3_pods")
            .map_or(0.0, |p| row[p]);
        let membw = features
            .iter()
            .position(|f| *f == "membw_pods")
            .map_or(0.0, |p| row[p]);
        y.push(1.0 + 2.0 * l3 + 0.5 * membw);
        x.push(row);
    }
    let m = DenseMatrix::from_2d_vec(&x).expect("matrix");
    Model::LinearRegression(
        Linear::fit(&m, &y, LinearRegressionParameters::default()).expect("fit"),
    )
}

pub const FEATURES: [&str; 5] = ["rps", "replicas", "cpu_pods", "l3_pods", "membw_pods"];

pub fn core_with(models: Vec<ModelDraft>) -> InfoCore {
    let core = InfoCore::open(Arc::new(MemoryStorage::default()), 5).expect("store");
    for m in models {
        core.publish(m).expect("publish");
    }
    core
}

/// "noisy" is the least loaded but runs an L3 hog; "quiet" is busier but clean.
pub fn landscape() -> Landscape {
    let mut l = Landscape::new(vec![host("noisy", 16.0), host("quiet", 16.0)]).expect("hosts");
    l.upsert(Instance {
        id: "hog".into(),
        workload: "stress-ng-l3".into(),
        host: "noisy".into(),
        cores: 1.0,
        memory_bytes: 1 << 30,
        pressure: Pressure {
            l3: 4.0,
            ..Pressure::default()
        },
        ..Instance::new("", "", "", 0.0, 0)
    })
    .expect("hog");
    l.upsert(Instance {
        id: "batch".into(),
        workload: "batch".into(),
        host: "quiet".into(),
        cores: 8.0,
        memory_bytes: 8 << 30,
        pressure: Pressure::default(),
        ..Instance::new("", "", "", 0.0, 0)
    })
    .expect("batch");
    l
}

pub fn nginx() -> PlacementRequest {
    PlacementRequest {
        workload: "nginx".into(),
        cores: 2.0,
        memory_bytes: 1 << 30,
        pressure: Pressure::default(),
        rps: Some(2000.0),
        replicas: Some(2.0),
        quiet_p99_ms: Some(5.0),
        p99_objective_ms: Some(20.0),
        ..PlacementRequest::new("nginx", 2.0, 1 << 30)
    }
}

/// slowdown = 1 + 2·pcm_l3_misses_m (+ 0·rps, replicas), fitted exactly: judged by what a
/// host measures.
pub fn counter_slowdown_model() -> Model {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..40u32 {
        let l3 = f64::from(i % 7) * 0.5;
        x.push(vec![f64::from(i * 100 % 3000), f64::from(1 + i % 4), l3]);
        y.push(1.0 + 2.0 * l3);
    }
    let m = DenseMatrix::from_2d_vec(&x).expect("matrix");
    Model::LinearRegression(
        Linear::fit(&m, &y, LinearRegressionParameters::default()).expect("fit"),
    )
}

pub const COUNTER_FEATURES: [&str; 3] = ["rps", "replicas", "pcm_l3_misses_m"];
