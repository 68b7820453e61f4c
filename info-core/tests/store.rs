//! The Information Core through its public API: versions, rollback, retention, snapshots,
//! prepared models against smartcore's own predictions, corruption and truncation.

use std::collections::BTreeMap;
use std::sync::Arc;

use dcpilot_info_core::model::{Forest, Knn, Linear, Ridge, Tree};
use dcpilot_info_core::{
    BoostedNode, BoostedTrees, DenseMatrix, FileStorage, HoldoutMetrics, InfoCore, InfoCoreError,
    Lineage, MemoryStorage, Model, ModelDraft, PreparedModel, QuantileTable, Storage,
    TrainingWindow,
};
use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;
use smartcore::linear::linear_regression::LinearRegressionParameters;
use smartcore::linear::ridge_regression::RidgeRegressionParameters;
use smartcore::neighbors::knn_regressor::KNNRegressorParameters;
use smartcore::tree::decision_tree_regressor::DecisionTreeRegressorParameters;

/// y = 3·x0 − 2·x1 + noise-free interaction, on a grid.
fn data() -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..20 {
        for j in 0..10 {
            let (a, b) = (i as f64 * 0.5, j as f64 * 1.5);
            x.push(vec![a, b]);
            y.push(3.0 * a - 2.0 * b + if a > 5.0 { 4.0 } else { 0.0 });
        }
    }
    (x, y)
}

fn matrix(rows: &[Vec<f64>]) -> DenseMatrix<f64> {
    DenseMatrix::from_2d_vec(&rows.to_vec()).expect("matrix")
}

fn models() -> Vec<Model> {
    let (x, y) = data();
    let m = matrix(&x);
    vec![
        Model::LinearRegression(
            Linear::fit(&m, &y, LinearRegressionParameters::default()).expect("linear"),
        ),
        Model::RidgeRegression(
            Ridge::fit(&m, &y, RidgeRegressionParameters::default().with_alpha(0.5))
                .expect("ridge"),
        ),
        Model::DecisionTree(
            Tree::fit(&m, &y, DecisionTreeRegressorParameters::default()).expect("tree"),
        ),
        Model::RandomForest(
            Forest::fit(
                &m,
                &y,
                RandomForestRegressorParameters::default()
                    .with_n_trees(10)
                    .with_max_depth(6),
            )
            .expect("forest"),
        ),
        Model::Knn(Knn::fit(&m, &y, KNNRegressorParameters::default().with_k(3)).expect("knn")),
        // A forest of ln(y + 40) (the targets here reach -20): predictions are exp of it.
        Model::LogTarget(Box::new(Model::RandomForest(
            Forest::fit(
                &m,
                &y.iter().map(|v| (v + 40.0).ln()).collect(),
                RandomForestRegressorParameters::default()
                    .with_n_trees(5)
                    .with_max_depth(5),
            )
            .expect("log forest"),
        ))),
        boosted(),
    ]
}

/// Boosted trees written by hand: splits on values the probes hit exactly (a tie goes
/// right), a one-leaf tree, a base score.
fn boosted() -> Model {
    use BoostedNode::{Leaf, Split};
    let split = |feature, below, left, right| Split {
        feature,
        below,
        left,
        right,
    };
    Model::GradientBoosting(BoostedTrees {
        base_score: 1.5,
        trees: vec![
            vec![
                split(0, 5.0, 1, 2),
                Leaf { value: -1.25 },
                split(1, 4.5, 3, 4),
                Leaf { value: 0.5 },
                Leaf { value: 2.0 },
            ],
            vec![Leaf { value: 0.125 }],
            vec![
                split(1, 3.0, 1, 2),
                Leaf { value: -0.5 },
                Leaf { value: 0.75 },
            ],
        ],
    })
}

/// What boosted trees mean: `base_score` plus each tree's leaf, walked with `x < below`.
fn boosted_predict(model: &BoostedTrees, row: &[f64]) -> f64 {
    model.trees.iter().fold(model.base_score, |sum, nodes| {
        let mut i = 0;
        loop {
            match nodes[i] {
                BoostedNode::Leaf { value } => break sum + value,
                BoostedNode::Split {
                    feature,
                    below,
                    left,
                    right,
                } => i = if row[feature] < below { left } else { right },
            }
        }
    })
}

fn smartcore_predict(model: &Model, rows: &[Vec<f64>]) -> Vec<f64> {
    let x = matrix(rows);
    match model {
        Model::LinearRegression(m) => m.predict(&x),
        Model::RidgeRegression(m) => m.predict(&x),
        Model::DecisionTree(m) => m.predict(&x),
        Model::RandomForest(m) => m.predict(&x),
        Model::Knn(m) => m.predict(&x),
        Model::GradientBoosting(b) => return rows.iter().map(|r| boosted_predict(b, r)).collect(),
        Model::LogTarget(inner) => {
            return smartcore_predict(inner, rows)
                .iter()
                .map(|v| v.exp())
                .collect()
        }
        Model::QuantileTable(_) | Model::Colouring(_) | Model::LiveVerdict(_) => {
            unreachable!("tables, colourings and verdicts are not predicted")
        }
    }
    .expect("smartcore predict")
}

fn draft(name: &str, model: Model) -> ModelDraft {
    ModelDraft {
        name: name.to_string(),
        features: vec!["load".into(), "co_runner_pressure".into()],
        target: "p99_ms".into(),
        window: TrainingWindow {
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_086_400_000,
        },
        rows: 200,
        metrics: HoldoutMetrics {
            metric: "mae".into(),
            model_error: 0.5,
            baseline_error: 2.0,
            baseline: "last_value".into(),
        },
        lineage: Lineage::of_job("test", "abc"),
        model,
    }
}

fn table() -> Model {
    let mut rows = BTreeMap::new();
    rows.insert(
        "shop".to_string(),
        BTreeMap::from([("cores".to_string(), vec![1.0, 2.5, 4.0])]),
    );
    Model::QuantileTable(QuantileTable {
        quantiles: vec![0.5, 0.9, 0.99],
        rows,
    })
}

#[test]
fn prepared_models_predict_what_smartcore_predicts() {
    let probes = vec![
        vec![0.0, 0.0],
        vec![5.0, 3.0],
        vec![5.0, 4.5],
        vec![5.25, 7.5],
        vec![9.5, 13.5],
        vec![-3.0, 40.0],
    ];
    for model in models() {
        let kind = model.kind();
        let expected = smartcore_predict(&model, &probes);
        let prepared = PreparedModel::prepare(model, 2).expect("prepare");
        for (row, want) in probes.iter().zip(expected) {
            let got = prepared.predict(row).expect("predict");
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{kind}: {got} != {want} at {row:?}"
            );
            if kind == "gradient_boosting" {
                // No smartcore in between: the flat walk is the stored model, to the bit.
                assert_eq!(got.to_bits(), want.to_bits(), "{row:?}");
            }
        }
        assert!(prepared.predict(&[1.0]).is_err(), "{kind}: short row");
        // Many rows at once (whole blocks of rows walked side by side, and a remainder):
        // exactly the row-by-row predictions — without NaN (the lock-step walk), and with
        // one (row by row: a leaf does not keep a NaN row).
        let mut rows = probes.clone();
        rows.extend((0..37).map(|i| vec![(i * 7 % 23) as f64 * 0.5 - 2.0, (i % 11) as f64 * 1.5]));
        let mut batches = vec![rows.clone()];
        if kind == "gradient_boosting" {
            // The trainer routes NaN its own way; the prepared model refuses it.
            assert!(prepared.predict(&[f64::NAN, 3.0]).is_err());
            let mut out = Vec::new();
            assert!(prepared
                .predict_many(&[1.0, f64::NAN], 2, &mut out)
                .is_err());
        } else if kind != "knn" {
            // (smartcore's neighbour search refuses NaN; the guarded kNN says so.)
            rows.push(vec![f64::NAN, 3.0]);
            batches.push(rows);
        }
        for rows in batches {
            let flat: Vec<f64> = rows.iter().flatten().copied().collect();
            let mut many = Vec::new();
            prepared
                .predict_many(&flat, 2, &mut many)
                .expect("predict_many");
            let one_by_one: Vec<f64> = rows
                .iter()
                .map(|row| prepared.predict(row).expect("predict"))
                .collect();
            let same = many
                .iter()
                .zip(&one_by_one)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            assert!(
                same && many.len() == rows.len(),
                "{kind}: {many:?} vs {one_by_one:?}"
            );
            assert!(
                prepared.predict_many(&flat[1..], 2, &mut many).is_err(),
                "{kind}: ragged"
            );
        }
    }
}

#[test]
fn every_kind_round_trips_through_the_file_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = InfoCore::open_dir(dir.path()).expect("open");
    let mut names = Vec::new();
    for model in models().into_iter().chain([table()]) {
        let name = format!("m-{}", model.kind());
        store.publish(draft(&name, model)).expect("publish");
        names.push(name);
    }
    let reopened = InfoCore::open_dir(dir.path()).expect("reopen");
    assert!(reopened.problems().is_empty(), "{:?}", reopened.problems());
    let snapshot = reopened.snapshot();
    assert_eq!(snapshot.len(), names.len());
    let before = store.snapshot();
    for name in &names {
        let (a, b) = (
            before.get(name).expect("served"),
            snapshot.get(name).expect("served"),
        );
        assert_eq!(a.version(), 1);
        if let Some(t) = b.prepared.table() {
            assert_eq!(t.lookup("shop", "cores", 0.9), Some(2.5));
            assert_eq!(t.lookup("shop", "cores", 0.95), Some(4.0));
            assert_eq!(t.lookup("nobody", "cores", 0.9), None);
        } else {
            let row = [4.0, 6.0];
            assert_eq!(
                a.prepared.predict(&row).expect("predict"),
                b.prepared.predict(&row).expect("predict")
            );
        }
    }
}

fn linear() -> Model {
    models().swap_remove(0)
}

#[test]
fn versions_history_rollback_and_snapshots() {
    let store = InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("open");
    let mut swaps = store.snapshots().subscribe();
    for _ in 0..3 {
        store
            .publish(draft("cpu-demand", linear()))
            .expect("publish");
    }
    assert!(swaps.has_changed().expect("sender alive"));
    let g = *swaps.borrow_and_update();
    assert_eq!(store.latest("cpu-demand").expect("latest").version, 3);
    assert_eq!(store.get("cpu-demand", 1).expect("v1").version, 1);
    let held = store.snapshot();

    let pointer = store
        .rollback("cpu-demand", 2, "v3 regressed")
        .expect("rollback");
    assert_eq!(pointer.version, 2);
    assert_eq!(store.latest("cpu-demand").expect("latest").version, 2);
    assert_eq!(
        store
            .snapshot()
            .get("cpu-demand")
            .expect("served")
            .version(),
        2
    );
    assert!(*swaps.borrow_and_update() > g);
    // A snapshot taken before stays as it was.
    assert_eq!(held.get("cpu-demand").expect("served").version(), 3);

    let history = store.history("cpu-demand").expect("history");
    let actions: Vec<_> = history.iter().map(|h| (h.action, h.version)).collect();
    assert_eq!(
        actions,
        vec![
            ("published", 1),
            ("published", 2),
            ("published", 3),
            ("rolled_back", 2)
        ]
    );
    // A publish after a rollback becomes current, with a fresh number.
    let v4 = store
        .publish(draft("cpu-demand", linear()))
        .expect("publish");
    assert_eq!(v4.version, 4);
    assert_eq!(store.latest("cpu-demand").expect("latest").version, 4);

    assert!(matches!(
        store.rollback("cpu-demand", 4, "x"),
        Err(InfoCoreError::Rejected(_))
    ));
    assert!(matches!(
        store.rollback("cpu-demand", 99, "x"),
        Err(InfoCoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.rollback("nope", 1, "x"),
        Err(InfoCoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.publish(draft("../escape", linear())),
        Err(InfoCoreError::Rejected(_))
    ));
}

#[test]
fn retention_keeps_the_newest_versions() {
    let store = InfoCore::open(Arc::new(MemoryStorage::default()), 3).expect("open");
    for _ in 0..6 {
        store.publish(draft("m", linear())).expect("publish");
    }
    let versions: Vec<u64> = store.versions("m").iter().map(|r| r.version).collect();
    assert_eq!(versions, vec![4, 5, 6]);
    let history = store.history("m").expect("history");
    assert_eq!(history.len(), 6, "history remembers removed versions");
    assert!(!history[0].stored && history[5].stored);
}

#[test]
fn export_and_import() {
    let a = InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("open");
    a.publish(draft("rightsizing", table())).expect("publish");
    let file = a.export("rightsizing", None).expect("export");
    let b = InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("open");
    b.publish(draft("rightsizing", table())).expect("publish");
    let imported = b.import(&file, "export.model").expect("import");
    assert_eq!(imported.version, 2);
    assert_eq!(imported.lineage.job, "test");

    let mut torn = file.clone();
    torn.truncate(file.len() / 2);
    assert!(matches!(
        b.import(&torn, "torn.model"),
        Err(InfoCoreError::Corrupt { .. })
    ));
    let newer =
        String::from_utf8_lossy(&file).replacen("dcpilot-info-core 1 ", "dcpilot-info-core 7 ", 1);
    let err = b
        .import(newer.as_bytes(), "newer.model")
        .expect_err("unknown format");
    assert!(
        matches!(err, InfoCoreError::UnsupportedFormat { found: 7, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer.model"));
}

#[test]
fn malformed_estimators_are_refused_not_panicked_on() {
    let store = InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("open");
    let file = {
        let a = InfoCore::open(Arc::new(MemoryStorage::default()), 20).expect("open");
        a.publish(draft("forest", models().swap_remove(3)))
            .expect("publish");
        a.export("forest", None).expect("export")
    };
    // Rewrite the forest's trees away and re-frame the file with a valid checksum, as a
    // hand-edited import would be.
    let text = String::from_utf8(file).expect("utf-8");
    let body = text.split_once('\n').expect("header").1;
    let mut record: serde_json::Value = serde_json::from_str(body).expect("json");
    let model = r#"{"kind":"random_forest","estimator":{"forest_regressor":null}}"#;
    record["model"] = serde_json::from_str(model).expect("json");
    // The checksum covers the model's text as it will be written.
    record["checksum"] = crc(&record["model"].to_string()).into();
    let body = serde_json::to_vec(&record).expect("json");
    let mut framed = format!("dcpilot-info-core 1 {:08x}\n", crc_bytes(&body)).into_bytes();
    framed.extend_from_slice(&body);
    let err = store.import(&framed, "edited.model").expect_err("no trees");
    assert!(matches!(err, InfoCoreError::InvalidModel { .. }), "{err}");
}

fn crc(text: &str) -> u32 {
    crc_bytes(text.as_bytes())
}

fn crc_bytes(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[test]
fn corrupt_or_truncated_files_are_quarantined_and_the_previous_version_served() {
    for damage in ["flip", "truncate", "empty"] {
        let storage = Arc::new(MemoryStorage::default());
        let store = InfoCore::open(storage.clone(), 20).expect("open");
        store.publish(draft("m", linear())).expect("v1");
        store.publish(draft("m", linear())).expect("v2");
        let key = storage
            .list()
            .expect("list")
            .into_iter()
            .rfind(|k| k.ends_with(".model"))
            .expect("v2 key");
        storage.tamper(&key, |bytes| match damage {
            "flip" => {
                let i = bytes.len() - 10;
                bytes[i] ^= 0x20;
            }
            "truncate" => bytes.truncate(bytes.len() * 2 / 3),
            _ => bytes.clear(),
        });
        let reopened = InfoCore::open(storage.clone(), 20).expect("reopen");
        assert_eq!(
            reopened.snapshot().get("m").expect("served").version(),
            1,
            "{damage}: the previous good version is served"
        );
        assert_eq!(reopened.problems().len(), 1, "{damage}");
        assert_eq!(storage.quarantined().len(), 1, "{damage}");
        // The lost version's number is not reused.
        let next = reopened.publish(draft("m", linear())).expect("publish");
        assert_eq!(next.version, 3, "{damage}");
    }
}

#[test]
fn file_store_quarantines_into_its_directory_and_ignores_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = InfoCore::open_dir(dir.path()).expect("open");
    store.publish(draft("m", linear())).expect("v1");
    store.publish(draft("m", linear())).expect("v2");
    drop(store);
    let v2 = dir.path().join("m/v0000000002.model");
    let bytes = std::fs::read(&v2).expect("read");
    std::fs::write(&v2, &bytes[..bytes.len() / 2]).expect("truncate");
    // Left by a writer that no longer runs (no process has this id).
    std::fs::write(
        dir.path().join("m/v0000000003.model.999999999.tmp"),
        b"half a wr",
    )
    .expect("tmp");
    let store = InfoCore::open_dir(dir.path()).expect("reopen");
    assert_eq!(store.latest("m").expect("latest").version, 1);
    let quarantined: Vec<_> = std::fs::read_dir(dir.path().join("quarantine"))
        .expect("quarantine dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        quarantined.len(),
        2,
        "{quarantined:?}: the file and its reason"
    );
    assert!(!dir
        .path()
        .join("m/v0000000003.model.999999999.tmp")
        .exists());
    let storage = FileStorage::open(dir.path()).expect("storage");
    assert_eq!(storage.list().expect("list"), vec!["m/v0000000001.model"]);
}

#[test]
fn a_running_writers_temp_file_is_left_alone() {
    // Another process (a background) is between writing and linking: opening the store
    // beside it (`dcpilot models list`) must not take its file away.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("m")).expect("mkdir");
    let mine = dir
        .path()
        .join(format!("m/v0000000001.model.{}.tmp", std::process::id()));
    std::fs::write(&mine, b"being written").expect("tmp");
    let _store = InfoCore::open_dir(dir.path()).expect("open");
    assert!(mine.exists(), "a live writer's temp file stays");
}

#[test]
fn malformed_boosted_trees_are_refused_with_a_reason() {
    use BoostedNode::{Leaf, Split};
    let split = |feature, below, left, right| Split {
        feature,
        below,
        left,
        right,
    };
    let leaf = |value| Leaf { value };
    let model = |base_score, tree: Vec<BoostedNode>| {
        Model::GradientBoosting(BoostedTrees {
            base_score,
            trees: vec![vec![leaf(1.0)], tree],
        })
    };
    let cases = [
        (
            "child before its parent",
            model(0.0, vec![leaf(0.0), split(0, 1.0, 0, 0)]),
        ),
        (
            "child out of range",
            model(0.0, vec![split(0, 1.0, 1, 7), leaf(0.0)]),
        ),
        (
            "feature out of range",
            model(0.0, vec![split(2, 1.0, 1, 2), leaf(0.0), leaf(1.0)]),
        ),
        ("NaN leaf", model(0.0, vec![leaf(f64::NAN)])),
        (
            "infinite split",
            model(
                0.0,
                vec![split(0, f64::INFINITY, 1, 2), leaf(0.0), leaf(1.0)],
            ),
        ),
        ("empty tree", model(0.0, vec![])),
        ("infinite base", model(f64::INFINITY, vec![leaf(0.0)])),
        // Node 3 reached from 1 and 2: a graph, on which the lock-step walk's depth lies.
        (
            "node with two parents",
            model(
                0.0,
                vec![
                    split(0, 0.0, 1, 2),
                    split(1, 0.0, 3, 4),
                    split(1, 1.0, 3, 5),
                    leaf(1.0),
                    leaf(2.0),
                    leaf(3.0),
                ],
            ),
        ),
    ];
    for (case, bad) in cases {
        let err = PreparedModel::prepare(bad, 2).expect_err(case);
        assert!(
            matches!(err, InfoCoreError::InvalidModel { .. }),
            "{case}: {err}"
        );
    }
}
