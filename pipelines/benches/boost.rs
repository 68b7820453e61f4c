//! Gradient boosting as `cpu-demand` configures it (100 trees, depth 5, 5 features):
//! training on 20k rows, and prediction — dcpilot's prepared flat trees next to
//! forust-ml's own predict, one row and 5k distinct rows.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcpilot_info_core::{Model, PreparedModel};
use dcpilot_pipelines::boost;
use dcpilot_pipelines::spec::ModelSpec;
use forust_ml::Matrix;

const FEATURES: usize = 5;

fn spec() -> ModelSpec {
    ModelSpec::GradientBoosting {
        n_trees: 100,
        learning_rate: 0.1,
        max_depth: 5,
        min_samples_leaf: 20,
        l2: 1.0,
    }
}

/// Deterministic rows: a CPU-like level, its recent mean and max, a change, an hour.
fn rows(n: usize, salt: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            let now = next() * 100.0;
            vec![
                now,
                now * (0.5 + next()),
                now + next() * 20.0,
                next() * 10.0 - 5.0,
                (next() * 24.0).floor(),
            ]
        })
        .collect();
    let y = x
        .iter()
        .map(|r| 0.6 * r[0] + 0.3 * r[1] + if r[4] > 8.0 && r[4] < 18.0 { 10.0 } else { 0.0 })
        .collect();
    (x, y)
}

fn bench(c: &mut Criterion) {
    let (x, y) = rows(20_000, 1);
    let mut training = c.benchmark_group("boost_fit");
    training.sample_size(10);
    training.bench_function("fit_100x5_20k_rows", |b| {
        b.iter(|| boost::fit(&spec(), black_box(&x), &y).expect("fit"))
    });
    training.finish();

    let stored = boost::fit(&spec(), &x, &y).expect("fit");
    let prepared =
        PreparedModel::prepare(Model::GradientBoosting(stored), FEATURES).expect("prepare");
    // forust-ml's own booster, trained the same way, for its predict.
    let columns: Vec<f64> = (0..FEATURES)
        .flat_map(|c| x.iter().map(move |r| r[c]))
        .collect();
    let mut booster = boost::booster(&spec()).expect("booster");
    booster
        .fit_unweighted(&Matrix::new(&columns, x.len(), FEATURES), &y, None)
        .expect("forust fit");

    let (probe, _) = rows(5_000, 2);
    let one = probe[0].clone();
    c.bench_function("predict_boosted_100x5_one_row_prepared", |b| {
        b.iter(|| prepared.predict(black_box(&one)).expect("predict"))
    });
    c.bench_function("predict_boosted_100x5_one_row_forust", |b| {
        b.iter(|| booster.predict(&Matrix::new(black_box(&one), 1, FEATURES), false))
    });
    let flat: Vec<f64> = probe.iter().flatten().copied().collect();
    let mut out = Vec::with_capacity(probe.len());
    c.bench_function("predict_boosted_100x5_5k_distinct_rows_many", |b| {
        b.iter(|| {
            prepared
                .predict_many(black_box(&flat), FEATURES, &mut out)
                .expect("predict_many");
            out[0]
        })
    });
    let probe_columns: Vec<f64> = (0..FEATURES)
        .flat_map(|c| probe.iter().map(move |r| r[c]))
        .collect();
    c.bench_function("predict_boosted_100x5_5k_distinct_rows_forust", |b| {
        b.iter(|| {
            booster.predict(
                &Matrix::new(black_box(&probe_columns), probe.len(), FEATURES),
                false,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
