//! Trained estimators and rule-of-thumb tables, and their prepared (prediction-ready) form.
//!
//! A [`Model`] is what is stored: smartcore estimators as smartcore serializes them, or a
//! [`QuantileTable`]. A [`PreparedModel`] is what the foreground predicts with: built once
//! when a snapshot is built, validated, and free of I/O, deserialization and panics —
//! linear models become a coefficient vector, trees and forests flat node arrays.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::RandomForestRegressor;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::linear_regression::LinearRegression;
use smartcore::linear::ridge_regression::RidgeRegression;
use smartcore::metrics::distance::euclidian::Euclidian;
use smartcore::neighbors::knn_regressor::KNNRegressor;
use smartcore::tree::decision_tree_regressor::DecisionTreeRegressor;

use crate::colouring::Colouring;
use crate::error::{InfoCoreError, Result};
use crate::live::LiveVerdict;

/// smartcore's linear regression over dense f64 matrices.
pub type Linear = LinearRegression<f64, f64, DenseMatrix<f64>, Vec<f64>>;
/// smartcore's ridge regression.
pub type Ridge = RidgeRegression<f64, f64, DenseMatrix<f64>, Vec<f64>>;
/// smartcore's CART regression tree.
pub type Tree = DecisionTreeRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;
/// smartcore's random forest regressor.
pub type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;
/// smartcore's k-nearest-neighbours regressor (Euclidean).
pub type Knn = KNNRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>, Euclidian<f64>>;

/// A stored model.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "estimator", rename_all = "snake_case")]
pub enum Model {
    /// Ordinary least squares.
    LinearRegression(Linear),
    /// L2-regularised least squares.
    RidgeRegression(Ridge),
    /// One regression tree.
    DecisionTree(Tree),
    /// A bagged forest of regression trees.
    RandomForest(Forest),
    /// k nearest neighbours.
    Knn(Knn),
    /// Gradient-boosted trees, in dcpilot's own stored form (see [`BoostedTrees`]).
    GradientBoosting(BoostedTrees),
    /// A rule-of-thumb table: values at quantiles per key (e.g. cores a workload needs).
    QuantileTable(QuantileTable),
    /// A colouring of the landscape: how abnormal each entity is, the ranked root causes.
    Colouring(Box<Colouring>),
    /// How a model's served version does live, next to its baselines (`<model>.live`).
    LiveVerdict(Box<LiveVerdict>),
    /// An estimator trained on ln(target): predictions are exp of its own. For targets
    /// that are positive ratios with a heavy tail (a slowdown of 1.1× or 80×), where a
    /// squared-error fit on the raw values is pulled by the tail.
    LogTarget(Box<Model>),
}

impl Model {
    /// Stable name of the model's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LinearRegression(_) => "linear_regression",
            Self::RidgeRegression(_) => "ridge_regression",
            Self::DecisionTree(_) => "decision_tree",
            Self::RandomForest(_) => "random_forest",
            Self::Knn(_) => "knn",
            Self::GradientBoosting(_) => "gradient_boosting",
            Self::QuantileTable(_) => "quantile_table",
            Self::Colouring(_) => "colouring",
            Self::LiveVerdict(_) => "live_verdict",
            Self::LogTarget(inner) => match inner.as_ref() {
                Self::LinearRegression(_) => "linear_regression_log_target",
                Self::RidgeRegression(_) => "ridge_regression_log_target",
                Self::DecisionTree(_) => "decision_tree_log_target",
                Self::RandomForest(_) => "random_forest_log_target",
                Self::Knn(_) => "knn_log_target",
                Self::GradientBoosting(_) => "gradient_boosting_log_target",
                _ => "log_target",
            },
        }
    }
}

/// Gradient-boosted regression trees: the prediction is `base_score` plus every tree's
/// leaf value, added in tree order. Stored in this crate's own form, not the trainer's, so
/// that a stored model does not depend on the training library's serialization; the
/// trainer (forust-ml, in dcpilot-pipelines) checks on its training rows that this form
/// predicts exactly what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostedTrees {
    /// The constant the trees' values are added to.
    pub base_score: f64,
    /// The trees; each one's root is its first node.
    pub trees: Vec<Vec<BoostedNode>>,
}

/// A node of a [`BoostedTrees`] tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoostedNode {
    /// A leaf: the tree's value for rows that reach it.
    Leaf {
        /// The value.
        value: f64,
    },
    /// A split: rows whose `feature` is below `below` go `left`, the others `right`
    /// (indices into the tree's nodes, after this one).
    Split {
        /// Feature index, in the record's feature order.
        feature: usize,
        /// The split value; finite.
        below: f64,
        /// Node for `x < below`.
        left: usize,
        /// Node for `x >= below`.
        right: usize,
    },
}

impl BoostedTrees {
    /// The tree in the flat form the forest walks: a split `x < below` is the same test as
    /// `x <= below.next_down()` for every number (NaN is refused before any walk).
    fn flatten(&self, features: usize) -> std::result::Result<Vec<FlatTree>, String> {
        if !self.base_score.is_finite() {
            return Err(format!("base score {}", self.base_score));
        }
        self.trees
            .iter()
            .enumerate()
            .map(|(t, nodes)| {
                let serialized = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| match *node {
                        BoostedNode::Leaf { value } if value.is_finite() => Ok(SerializedNode {
                            output: value,
                            split_feature: 0,
                            split_value: None,
                            true_child: None,
                            false_child: None,
                        }),
                        BoostedNode::Split {
                            feature,
                            below,
                            left,
                            right,
                        } if below.is_finite() => Ok(SerializedNode {
                            output: 0.0,
                            split_feature: feature,
                            split_value: Some(below.next_down()),
                            true_child: Some(left),
                            false_child: Some(right),
                        }),
                        _ => Err(format!("tree {t}, node {i}: not a finite number")),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                flatten(SerializedTree { nodes: serialized }, features)
                    .map_err(|e| format!("tree {t}: {e}"))
            })
            .collect()
    }
}

/// Values at chosen quantiles, per key and column: e.g. `shop` → `cores` → [p50, p90, p99].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileTable {
    /// The quantiles, ascending, in (0, 1].
    pub quantiles: Vec<f64>,
    /// key → column → one value per quantile.
    pub rows: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
}

impl QuantileTable {
    /// The value of `column` for `key` at the smallest stored quantile ≥ `q` (the largest
    /// one if `q` is above all).
    pub fn lookup(&self, key: &str, column: &str, q: f64) -> Option<f64> {
        let values = self.rows.get(key)?.get(column)?;
        let i = self
            .quantiles
            .iter()
            .position(|&stored| stored >= q)
            .unwrap_or(self.quantiles.len().saturating_sub(1));
        values.as_slice().get(i).copied()
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.quantiles.is_empty() {
            return Err("quantile table without quantiles".into());
        }
        let ascending = self.quantiles.windows(2).all(|w| w[0] < w[1]);
        let in_range = self.quantiles.iter().all(|&q| q > 0.0 && q <= 1.0);
        if !(ascending && in_range) {
            return Err("quantiles must ascend strictly within (0, 1]".into());
        }
        for (key, columns) in &self.rows {
            for (column, values) in columns {
                if values.len() != self.quantiles.len() {
                    return Err(format!(
                        "{key}/{column}: {} values for {} quantiles",
                        values.len(),
                        self.quantiles.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One node of a flattened regression tree, 24 bytes. A split's children are adjacent:
/// `x <= threshold` goes to `left`, anything else — NaN included, as smartcore does — to
/// `left + 1`, so a step is an add, not a branch. A leaf has `left` = itself and an
/// infinite threshold: a row without NaN that reached it stays there however many more
/// steps it takes; its value is beside the threshold, read with it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatNode {
    threshold: f64,
    /// A leaf's value (splits: 0).
    value: f64,
    feature: u32,
    left: u32,
}

/// A regression tree as one array, walked without allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatTree {
    nodes: Vec<FlatNode>,
    /// Edges on the longest path from the root to a leaf.
    depth: usize,
}

/// Rows walked through a tree side by side: their independent loads overlap. Eight: more
/// lanes spill registers (5k rows through 50 trees of depth 12 took 2.58 / 1.74 / 1.94 /
/// 2.12 / 3.11 ms with 4 / 8 / 12 / 16 / 32 lanes, criterion medians, 2026-12-03).
const LANES: usize = 8;

impl FlatTree {
    /// The node `row` goes to from `node` (itself for a leaf, unless the row holds NaN).
    #[inline(always)]
    // `!(x <= t)`, not `x > t`: a NaN feature goes right, as in the trained trees.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn step(node: &FlatNode, row: &[f64]) -> usize {
        node.left as usize + usize::from(!(row[node.feature as usize] <= node.threshold))
    }

    fn predict(&self, row: &[f64]) -> f64 {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.left as usize == i {
                return node.value;
            }
            i = Self::step(node, row);
        }
    }

    /// Adds the tree's prediction for each row of `rows` (`width` values each) to `sums`:
    /// [`LANES`] rows at a time walk `depth` steps in lock-step (a leaf keeps them where
    /// they are), so the walks have no data-dependent exit to mispredict. `lock_step`
    /// false (some row holds NaN, which a leaf would not keep) walks row by row.
    fn add_predictions(&self, rows: &[f64], width: usize, sums: &mut [f64], lock_step: bool) {
        let walked = if lock_step {
            sums.len() / LANES * LANES
        } else {
            0
        };
        let (blocks, rest) = sums.split_at_mut(walked);
        for (block, sums) in rows
            .chunks_exact(width * LANES)
            .zip(blocks.chunks_exact_mut(LANES))
        {
            let lanes: [&[f64]; LANES] =
                std::array::from_fn(|k| &block[k * width..(k + 1) * width]);
            let mut at = [0usize; LANES];
            for _ in 0..self.depth {
                for (i, row) in at.iter_mut().zip(&lanes) {
                    *i = Self::step(&self.nodes[*i], row);
                }
            }
            for (sum, i) in sums.iter_mut().zip(at) {
                *sum += self.nodes[i].value;
            }
        }
        for (sum, row) in rest
            .iter_mut()
            .zip(rows[walked * width..].chunks_exact(width))
        {
            *sum += self.predict(row);
        }
    }
}

/// Mirror of smartcore's serialized tree node (its fields are private; its serde form is
/// what the FORMAT_VERSION pins).
#[derive(Deserialize)]
struct SerializedNode {
    output: f64,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

#[derive(Deserialize)]
struct SerializedTree {
    nodes: Vec<SerializedNode>,
}

fn flatten(tree: SerializedTree, features: usize) -> std::result::Result<FlatTree, String> {
    let count = tree.nodes.len();
    if count == 0 || count > u32::MAX as usize - 1 {
        return Err(format!("tree with {count} nodes"));
    }
    // Validate in the stored numbering: children after their parent (every walk ends),
    // features in range, and exactly one parent for every node but the root (a tree, not
    // a graph, all of it reachable).
    let mut children = Vec::with_capacity(count);
    let mut parents = vec![0u32; count];
    for (i, n) in tree.nodes.iter().enumerate() {
        children.push(match (n.true_child, n.false_child) {
            (None, None) => None,
            (Some(l), Some(r)) => {
                if l <= i || r <= i || l >= count || r >= count {
                    return Err(format!("node {i}: children {l}, {r} out of order"));
                }
                if n.split_feature >= features {
                    return Err(format!(
                        "node {i}: feature {} of {features}",
                        n.split_feature
                    ));
                }
                parents[l] += 1;
                parents[r] += 1;
                Some((l, r))
            }
            _ => return Err(format!("node {i} has one child")),
        });
    }
    if let Some(i) = (1..count).find(|&i| parents[i] != 1) {
        return Err(format!("node {i} has {} parents", parents[i]));
    }
    // Renumber breadth-first, each split's two children side by side.
    let mut order = Vec::with_capacity(count);
    order.push(0usize);
    let mut nodes = Vec::with_capacity(count);
    let mut depth_of = Vec::with_capacity(count);
    depth_of.push(0usize);
    let mut k = 0usize;
    while k < order.len() {
        let stored = order[k];
        let n = &tree.nodes[stored];
        match children[stored] {
            None => {
                nodes.push(FlatNode {
                    threshold: f64::INFINITY,
                    value: n.output,
                    feature: 0,
                    left: k as u32,
                });
            }
            Some((l, r)) => {
                nodes.push(FlatNode {
                    threshold: n.split_value.unwrap_or(f64::NAN),
                    value: 0.0,
                    feature: n.split_feature as u32,
                    left: order.len() as u32,
                });
                order.extend([l, r]);
                depth_of.extend([depth_of[k] + 1; 2]);
            }
        }
        k += 1;
    }
    let depth = depth_of.into_iter().max().unwrap_or(0);
    Ok(FlatTree { nodes, depth })
}

/// A model ready for prediction: validated, allocation-free where the kind allows.
#[derive(Debug, Clone)]
pub enum PreparedModel {
    /// `intercept + coefficients · x`.
    Linear {
        /// One per feature.
        coefficients: Vec<f64>,
        /// The constant term.
        intercept: f64,
    },
    /// A tree ensemble: the mean of a forest's trees (one tree for a decision tree), or
    /// boosted trees' sum.
    Trees {
        /// The trees.
        trees: Vec<FlatTree>,
        /// Row width (the record's feature count); every split reads a feature below it,
        /// as checked when flattening, so one width check covers the whole walk.
        width: usize,
        /// How the trees' values make the prediction.
        ensemble: Ensemble,
    },
    /// smartcore's kNN (needs its neighbour search), guarded against panics.
    Knn(Arc<Knn>),
    /// A lookup table; [`PreparedModel::predict`] does not apply.
    Table(QuantileTable),
    /// A colouring with its hosts indexed by id and name; [`PreparedModel::predict`]
    /// does not apply.
    Colouring(Arc<PreparedColouring>),
    /// A live verdict on another model's version.
    Verdict(Arc<LiveVerdict>),
    /// exp of an estimator of ln(target).
    LogTarget(Box<PreparedModel>),
}

/// How a tree ensemble combines its trees' values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ensemble {
    /// Their mean (bagging: forests, one tree).
    Mean,
    /// `base` plus each tree's value, added in tree order (boosting). NaN features are
    /// refused: the trainer routes them its own way, which the flat walk does not know.
    Sum {
        /// The constant the values are added to.
        base: f64,
    },
}

/// A colouring ready for lookups on the hot path.
#[derive(Debug)]
pub struct PreparedColouring {
    /// The colouring as published.
    pub colouring: Colouring,
    hosts: std::collections::HashMap<String, usize>,
}

impl PreparedColouring {
    /// Indexes `colouring`'s hosts by node id and by name.
    pub fn new(colouring: Colouring) -> Self {
        let mut hosts = std::collections::HashMap::with_capacity(colouring.hosts.len() * 2);
        for (i, h) in colouring.hosts.iter().enumerate() {
            hosts.entry(h.name.clone()).or_insert(i);
            hosts.entry(h.host.clone()).or_insert(i);
        }
        Self { colouring, hosts }
    }

    /// The colour of the host named `name` (node id or display name).
    pub fn host(&self, name: &str) -> Option<&crate::colouring::HostColour> {
        self.hosts.get(name).map(|&i| &self.colouring.hosts[i])
    }
}

impl PreparedModel {
    /// Prepares `model` for rows of `features` values, checking it is well-formed. A
    /// malformed estimator (e.g. an imported file with missing parts, on which smartcore
    /// would panic) is an error, never a panic.
    pub fn prepare(model: Model, features: usize) -> Result<Self> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::prepare_unguarded(model, features)
        }))
        .unwrap_or_else(|_| {
            Err(InfoCoreError::InvalidModel {
                reason: "malformed estimator (smartcore panicked reading it)".into(),
            })
        })
    }

    fn prepare_unguarded(model: Model, features: usize) -> Result<Self> {
        let invalid = |reason: String| InfoCoreError::InvalidModel { reason };
        let prepared = match model {
            Model::LinearRegression(m) => linear(m.coefficients(), *m.intercept(), features)?,
            Model::RidgeRegression(m) => linear(m.coefficients(), *m.intercept(), features)?,
            Model::DecisionTree(m) => {
                #[derive(Deserialize)]
                struct Wrapper {
                    tree_regressor: Option<SerializedTree>,
                }
                let w: Wrapper = reserialize(&m)?;
                let tree = w
                    .tree_regressor
                    .ok_or_else(|| invalid("untrained decision tree".into()))?;
                Self::Trees {
                    trees: vec![flatten(tree, features).map_err(invalid)?],
                    width: features,
                    ensemble: Ensemble::Mean,
                }
            }
            Model::RandomForest(m) => {
                #[derive(Deserialize)]
                struct Base {
                    trees: Option<Vec<SerializedTree>>,
                }
                #[derive(Deserialize)]
                struct Wrapper {
                    forest_regressor: Option<Base>,
                }
                let w: Wrapper = reserialize(&m)?;
                let trees = w
                    .forest_regressor
                    .and_then(|b| b.trees)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| invalid("untrained random forest".into()))?;
                let flat = trees
                    .into_iter()
                    .map(|t| flatten(t, features))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                Self::Trees {
                    trees: flat,
                    width: features,
                    ensemble: Ensemble::Mean,
                }
            }
            Model::GradientBoosting(boosted) => Self::Trees {
                trees: boosted.flatten(features).map_err(invalid)?,
                width: features,
                ensemble: Ensemble::Sum {
                    base: boosted.base_score,
                },
            },
            Model::Knn(m) => {
                let prepared = Self::Knn(Arc::new(m));
                // A probe prediction proves the estimator is usable with this width.
                prepared.predict(&vec![0.0; features])?;
                prepared
            }
            Model::QuantileTable(t) => {
                t.validate().map_err(invalid)?;
                Self::Table(t)
            }
            Model::Colouring(c) => Self::Colouring(Arc::new(PreparedColouring::new(*c))),
            Model::LiveVerdict(v) => {
                v.validate().map_err(invalid)?;
                Self::Verdict(Arc::new(*v))
            }
            Model::LogTarget(inner) => match *inner {
                Model::LinearRegression(_)
                | Model::RidgeRegression(_)
                | Model::DecisionTree(_)
                | Model::RandomForest(_)
                | Model::GradientBoosting(_)
                | Model::Knn(_) => {
                    Self::LogTarget(Box::new(Self::prepare_unguarded(*inner, features)?))
                }
                other => {
                    return Err(invalid(format!(
                        "a log target wraps an estimator, not a {}",
                        other.kind()
                    )))
                }
            },
        };
        Ok(prepared)
    }

    /// Predicts one row (its values in the record's feature order).
    pub fn predict(&self, row: &[f64]) -> Result<f64> {
        match self {
            Self::Linear {
                coefficients,
                intercept,
            } => {
                check_width(row, coefficients.len())?;
                Ok(intercept
                    + coefficients
                        .iter()
                        .zip(row)
                        .map(|(c, x)| c * x)
                        .sum::<f64>())
            }
            Self::Trees {
                trees,
                width,
                ensemble,
            } => {
                check_width(row, *width)?;
                Ok(match *ensemble {
                    Ensemble::Mean => {
                        trees.iter().map(|t| t.predict(row)).sum::<f64>() / trees.len() as f64
                    }
                    Ensemble::Sum { base } => {
                        check_numbers(row)?;
                        trees.iter().fold(base, |sum, t| sum + t.predict(row))
                    }
                })
            }
            Self::Knn(m) => {
                let x = DenseMatrix::from_2d_vec(&vec![row.to_vec()]).map_err(|e| {
                    InfoCoreError::Prediction {
                        reason: e.to_string(),
                    }
                })?;
                let m = m.clone();
                let y = std::panic::catch_unwind(move || m.predict(&x))
                    .map_err(|_| InfoCoreError::Prediction {
                        reason: "kNN prediction panicked (malformed estimator?)".into(),
                    })?
                    .map_err(|e| InfoCoreError::Prediction {
                        reason: e.to_string(),
                    })?;
                y.first().copied().ok_or_else(|| InfoCoreError::Prediction {
                    reason: "kNN returned no value".into(),
                })
            }
            Self::Table(_) => Err(InfoCoreError::Prediction {
                reason: "a quantile table is looked up, not predicted".into(),
            }),
            Self::Colouring(_) => Err(InfoCoreError::Prediction {
                reason: "a colouring is looked up, not predicted".into(),
            }),
            Self::Verdict(_) => Err(InfoCoreError::Prediction {
                reason: "a live verdict is looked up, not predicted".into(),
            }),
            Self::LogTarget(inner) => inner.predict(row).map(f64::exp),
        }
    }

    /// Predicts many rows at once: `rows` holds them one after another, `width` values
    /// each (the record's feature count); `out` gets one prediction per row, exactly what
    /// [`PreparedModel::predict`] gives row by row. A forest walks every row through one
    /// tree before the next, so each tree stays in cache while it is used.
    pub fn predict_many(&self, rows: &[f64], width: usize, out: &mut Vec<f64>) -> Result<()> {
        if width == 0 || !rows.len().is_multiple_of(width) {
            return Err(InfoCoreError::Prediction {
                reason: format!("{} values are not whole rows of {width}", rows.len()),
            });
        }
        out.clear();
        match self {
            Self::Trees {
                trees,
                width: w,
                ensemble,
            } => {
                if *w != width {
                    return Err(InfoCoreError::Prediction {
                        reason: format!("rows of {width} values for a model of {w} features"),
                    });
                }
                let start = match *ensemble {
                    Ensemble::Mean => 0.0,
                    Ensemble::Sum { base } => {
                        check_numbers(rows)?;
                        base
                    }
                };
                out.resize(rows.len() / width, start);
                let lock_step = !rows.iter().any(|v| v.is_nan());
                for tree in trees {
                    tree.add_predictions(rows, width, out, lock_step);
                }
                if *ensemble == Ensemble::Mean {
                    let n = trees.len() as f64;
                    out.iter_mut().for_each(|sum| *sum /= n);
                }
            }
            Self::LogTarget(inner) => {
                inner.predict_many(rows, width, out)?;
                out.iter_mut().for_each(|v| *v = v.exp());
            }
            _ => {
                for row in rows.chunks_exact(width) {
                    out.push(self.predict(row)?);
                }
            }
        }
        Ok(())
    }

    /// The colouring, for anomaly lookups.
    pub fn colouring(&self) -> Option<&PreparedColouring> {
        match self {
            Self::Colouring(c) => Some(c),
            _ => None,
        }
    }

    /// The live verdict, if this is one.
    pub fn verdict(&self) -> Option<&LiveVerdict> {
        match self {
            Self::Verdict(v) => Some(v),
            _ => None,
        }
    }

    /// The table, for rule-of-thumb lookups.
    pub fn table(&self) -> Option<&QuantileTable> {
        match self {
            Self::Table(t) => Some(t),
            _ => None,
        }
    }
}

fn check_width(row: &[f64], width: usize) -> Result<()> {
    if row.len() == width {
        Ok(())
    } else {
        Err(InfoCoreError::Prediction {
            reason: format!(
                "row of {} values for a model of {width} features",
                row.len()
            ),
        })
    }
}

fn check_numbers(values: &[f64]) -> Result<()> {
    if values.iter().any(|v| v.is_nan()) {
        Err(InfoCoreError::Prediction {
            reason: "a feature value is NaN".into(),
        })
    } else {
        Ok(())
    }
}

fn linear(
    coefficients: &DenseMatrix<f64>,
    intercept: f64,
    features: usize,
) -> Result<PreparedModel> {
    let (rows, cols) = coefficients.shape();
    // smartcore keeps the coefficients as a column (features × 1).
    let values: Vec<f64> = if cols == 1 {
        (0..rows).map(|r| *coefficients.get((r, 0))).collect()
    } else if rows == 1 {
        (0..cols).map(|c| *coefficients.get((0, c))).collect()
    } else {
        return Err(InfoCoreError::InvalidModel {
            reason: format!("coefficients of shape {rows}×{cols}"),
        });
    };
    if values.len() != features {
        return Err(InfoCoreError::InvalidModel {
            reason: format!("{} coefficients for {features} features", values.len()),
        });
    }
    if !intercept.is_finite() || values.iter().any(|v| !v.is_finite()) {
        return Err(InfoCoreError::InvalidModel {
            reason: "non-finite coefficient".into(),
        });
    }
    Ok(PreparedModel::Linear {
        coefficients: values,
        intercept,
    })
}

/// Reads smartcore's private structure through its serde form.
fn reserialize<T: Serialize, U: for<'de> Deserialize<'de>>(value: &T) -> Result<U> {
    let json = serde_json::to_value(value).map_err(|e| InfoCoreError::InvalidModel {
        reason: e.to_string(),
    })?;
    serde_json::from_value(json).map_err(|e| InfoCoreError::InvalidModel {
        reason: format!("unexpected estimator layout: {e}"),
    })
}
