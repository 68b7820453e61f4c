//! Information Core costs: a snapshot swap, a model lookup in a snapshot, a prediction with
//! a prepared forest next to smartcore's own, and a publish to the file store (fsync
//! included).

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use dcpilot_info_core::model::{Forest, Linear};
use dcpilot_info_core::{
    DenseMatrix, HoldoutMetrics, InfoCore, Lineage, MemoryStorage, Model, ModelDraft,
    PreparedModel, ServedModel, Snapshot, SnapshotCell, TrainingWindow,
};
use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;
use smartcore::linear::linear_regression::LinearRegressionParameters;

fn training() -> (DenseMatrix<f64>, Vec<f64>) {
    let x: Vec<Vec<f64>> = (0..2000)
        .map(|i| (0..10).map(|f| ((i * (f + 3)) % 97) as f64 / 7.0).collect())
        .collect();
    let y = x.iter().map(|r| r[0] * 2.0 + r[3] * r[4] - r[9]).collect();
    (DenseMatrix::from_2d_vec(&x).expect("matrix"), y)
}

fn draft(name: &str, model: Model) -> ModelDraft {
    ModelDraft {
        name: name.into(),
        features: (0..10).map(|f| format!("f{f}")).collect(),
        target: "y".into(),
        window: TrainingWindow {
            start_ms: 0,
            end_ms: 1,
        },
        rows: 2000,
        metrics: HoldoutMetrics {
            metric: "mae".into(),
            model_error: 1.0,
            baseline_error: 2.0,
            baseline: "mean".into(),
        },
        lineage: Lineage::of_job("bench", "0"),
        model,
    }
}

fn linear() -> Model {
    let (x, y) = training();
    Model::LinearRegression(
        Linear::fit(&x, &y, LinearRegressionParameters::default()).expect("fit"),
    )
}

fn forest() -> Forest {
    let (x, y) = training();
    Forest::fit(
        &x,
        &y,
        RandomForestRegressorParameters::default()
            .with_n_trees(50)
            .with_max_depth(12),
    )
    .expect("fit")
}

fn bench(c: &mut Criterion) {
    // 50 models served, as a busy deployment might have.
    let store = InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("store");
    for i in 0..50 {
        store
            .publish(draft(&format!("model-{i:02}"), linear()))
            .expect("publish");
    }
    let base: Arc<Snapshot> = store.snapshot();
    let served: Arc<ServedModel> = {
        let snapshot = store.snapshot();
        let s = snapshot.get("model-25").expect("served");
        Arc::new(ServedModel {
            record: s.record.clone(),
            prepared: s.prepared.clone(),
        })
    };
    let cell = SnapshotCell::default();
    cell.store(base.with("model-00", Some(served.clone())));

    c.bench_function("snapshot_swap_50_models", |b| {
        b.iter(|| {
            let next = cell.load().with("model-07", Some(served.clone()));
            cell.store(next);
        })
    });
    c.bench_function("snapshot_load_and_lookup", |b| {
        b.iter(|| {
            let snapshot = cell.load();
            black_box(snapshot.get(black_box("model-33")).map(|m| m.version()))
        })
    });
    let held = cell.load();
    c.bench_function("lookup_in_held_snapshot", |b| {
        b.iter(|| black_box(held.get(black_box("model-33")).map(|m| m.version())))
    });

    let row: Vec<f64> = (0..10).map(|f| f as f64 * 1.3).collect();
    let forest = forest();
    let one_row = DenseMatrix::from_2d_vec(&vec![row.clone()]).expect("matrix");
    c.bench_function("predict_forest_50x12_smartcore", |b| {
        b.iter(|| black_box(forest.predict(black_box(&one_row)).expect("predict")))
    });
    let prepared = PreparedModel::prepare(Model::RandomForest(forest), 10).expect("prepare");
    c.bench_function("predict_forest_50x12_prepared", |b| {
        b.iter(|| black_box(prepared.predict(black_box(&row)).expect("predict")))
    });
    // 5,000 hosts, each with its own (measured, continuous) feature row: no memo helps.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let rows: Vec<f64> = (0..5_000 * 10)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 10.0
        })
        .collect();
    c.bench_function("predict_forest_50x12_5k_distinct_rows_one_by_one", |b| {
        b.iter(|| {
            rows.chunks_exact(10)
                .map(|r| prepared.predict(black_box(r)).expect("predict"))
                .sum::<f64>()
        })
    });
    let mut out = Vec::with_capacity(5_000);
    c.bench_function("predict_forest_50x12_5k_distinct_rows_many", |b| {
        b.iter(|| {
            prepared
                .predict_many(black_box(&rows), 10, &mut out)
                .expect("predict_many");
            black_box(out.len())
        })
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let file_store = InfoCore::open_dir(dir.path()).expect("file store");
    c.bench_function("publish_linear_to_file_store", |b| {
        b.iter_batched(
            || draft("cpu-demand", linear()),
            |d| file_store.publish(d).expect("publish"),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
