//! Gradient boosting: trained by forust-ml, stored and served as dcpilot's own
//! [`BoostedTrees`].
//!
//! Why forust-ml: a maintained (0.8, 2026), pure-Rust, Apache-2.0 GBM on stable Rust, with
//! XGBoost's histogram algorithm and parameters. perpetual (its successor, with one
//! `budget` in place of the parameters) was the first choice, but every release needs a
//! nightly compiler (`#![feature(array_ptr_get)]`); the LightGBM and XGBoost bindings need
//! a C++ build that would cost CI minutes. The trees are copied into [`BoostedTrees`] so
//! that a stored model does not depend on the trainer's serialization and the foreground
//! serves it through the same flat, allocation-free walk as a forest; [`fit`] proves on
//! every training row that the copy predicts exactly what forust-ml does.

use dcpilot_info_core::{BoostedNode, BoostedTrees, Model, PreparedModel};
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};

use crate::error::{PipelineError, Result};
use crate::spec::ModelSpec;

/// Fits `spec` (a [`ModelSpec::GradientBoosting`]) on `x` (rows) and `y`, on one thread:
/// the other core stays with ingest.
pub fn fit(spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<BoostedTrees> {
    train(spec, x, y).map(|(_, stored)| stored)
}

/// forust-ml's booster as `spec` (a [`ModelSpec::GradientBoosting`]) configures it:
/// squared loss, one thread, no row or column sampling (so no randomness: no seed).
pub fn booster(spec: &ModelSpec) -> Result<GradientBooster> {
    let ModelSpec::GradientBoosting {
        n_trees,
        learning_rate,
        max_depth,
        min_samples_leaf,
        l2,
    } = *spec
    else {
        return Err(PipelineError::Spec(format!(
            "{spec:?} is not gradient boosting"
        )));
    };
    Ok(GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(n_trees)
        .set_learning_rate(learning_rate as f32)
        .set_max_depth(max_depth)
        .set_min_leaf_weight(min_samples_leaf as f32)
        .set_l2(l2 as f32)
        .set_parallel(false))
}

/// [`fit`], with forust-ml's booster beside the copy.
fn train(spec: &ModelSpec, x: &[Vec<f64>], y: &[f64]) -> Result<(GradientBooster, BoostedTrees)> {
    let mut booster = booster(spec)?;
    let width = x.first().map_or(0, Vec::len);
    if x.is_empty() || width == 0 || x.len() != y.len() || x.iter().any(|r| r.len() != width) {
        return Err(PipelineError::Data(format!(
            "{} feature rows of {width} values for {} targets",
            x.len(),
            y.len()
        )));
    }
    // forust-ml reads a column-major matrix.
    let mut columns = Vec::with_capacity(x.len() * width);
    for c in 0..width {
        columns.extend(x.iter().map(|row| row[c]));
    }
    let matrix = Matrix::new(&columns, x.len(), width);
    booster
        .fit_unweighted(&matrix, y, None)
        .map_err(PipelineError::training)?;
    let used = booster
        .prediction_iteration
        .unwrap_or(booster.trees.len())
        .min(booster.trees.len());
    let stored = BoostedTrees {
        base_score: booster.base_score,
        trees: booster.trees[..used]
            .iter()
            .enumerate()
            .map(|(i, tree)| {
                stored_tree(tree).map_err(|e| PipelineError::Training(format!("tree {i}: {e}")))
            })
            .collect::<Result<_>>()?,
    };
    check_copy(&stored, &booster.predict(&matrix, false), x)?;
    Ok((booster, stored))
}

/// forust-ml's tree (nodes by number) as nodes in breadth-first order from the root, so
/// every child comes after its parent whatever order the trainer numbered them in.
fn stored_tree(tree: &forust_ml::tree::Tree) -> std::result::Result<Vec<BoostedNode>, String> {
    let mut order = vec![0usize];
    let mut nodes = Vec::with_capacity(tree.nodes.len());
    let mut next = 0;
    while let Some(&number) = order.get(next) {
        next += 1;
        let node = tree
            .nodes
            .get(number)
            .ok_or_else(|| format!("no node {number}"))?;
        if node.is_leaf {
            nodes.push(BoostedNode::Leaf {
                value: f64::from(node.weight_value),
            });
            continue;
        }
        order.extend([node.left_child, node.right_child]);
        nodes.push(BoostedNode::Split {
            feature: node.split_feature,
            below: node.split_value,
            left: order.len() - 2,
            right: order.len() - 1,
        });
        if order.len() > tree.nodes.len() {
            return Err("nodes reached twice".into());
        }
    }
    Ok(nodes)
}

/// Refuses a copy that predicts anything but exactly what forust-ml does on the rows.
fn check_copy(stored: &BoostedTrees, theirs: &[f64], x: &[Vec<f64>]) -> Result<()> {
    let width = x[0].len();
    let prepared = PreparedModel::prepare(Model::GradientBoosting(stored.clone()), width)?;
    let rows: Vec<f64> = x.iter().flatten().copied().collect();
    let mut ours = Vec::with_capacity(x.len());
    prepared.predict_many(&rows, width, &mut ours)?;
    match (0..x.len()).find(|&i| ours[i].to_bits() != theirs[i].to_bits()) {
        None => Ok(()),
        Some(i) => Err(PipelineError::Training(format!(
            "row {i}: the stored trees predict {} where forust-ml predicts {}",
            ours[i], theirs[i]
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step in x0, a slope in x1, and a feature that does nothing.
    fn data(rows: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
        let x: Vec<Vec<f64>> = (0..rows)
            .map(|i| vec![(i % 13) as f64, (i % 7) as f64 * 0.5, (i % 3) as f64])
            .collect();
        let y = x
            .iter()
            .map(|r| if r[0] > 6.0 { 10.0 } else { 0.0 } + 2.0 * r[1])
            .collect();
        (x, y)
    }

    fn spec(n_trees: usize) -> ModelSpec {
        ModelSpec::GradientBoosting {
            n_trees,
            learning_rate: 0.3,
            max_depth: 4,
            min_samples_leaf: 1,
            l2: 1.0,
        }
    }

    #[test]
    fn learns_a_step_and_a_slope_and_is_reproducible() {
        let (x, y) = data(600);
        let model = fit(&spec(60), &x, &y).expect("fit");
        assert_eq!(model.trees.len(), 60);
        let prepared =
            PreparedModel::prepare(Model::GradientBoosting(model.clone()), 3).expect("prepare");
        let mae = x
            .iter()
            .zip(&y)
            .map(|(r, t)| (prepared.predict(r).expect("predict") - t).abs())
            .sum::<f64>()
            / y.len() as f64;
        // The mean alone is off by ≈ 5.5 on average.
        assert!(mae < 0.5, "MAE {mae}");
        assert_eq!(fit(&spec(60), &x, &y).expect("refit"), model);
    }

    #[test]
    fn the_copy_predicts_what_forust_predicts_at_and_around_every_split() {
        let (x, y) = data(600);
        let (booster, stored) = train(&spec(40), &x, &y).expect("train");
        let prepared =
            PreparedModel::prepare(Model::GradientBoosting(stored.clone()), 3).expect("prepare");
        // Rows sitting on each split value, a hair below and above it, and far outside.
        let mut probes = vec![vec![-1e9, -1e9, -1e9], vec![1e9, 1e9, 1e9]];
        for node in stored.trees.iter().flatten() {
            if let BoostedNode::Split { feature, below, .. } = *node {
                for v in [below.next_down(), below, below.next_up()] {
                    let mut row = x[probes.len() % x.len()].clone();
                    row[feature] = v;
                    probes.push(row);
                }
            }
        }
        let columns: Vec<f64> = (0..3)
            .flat_map(|c| probes.iter().map(move |r| r[c]))
            .collect();
        let theirs = booster.predict(&Matrix::new(&columns, probes.len(), 3), false);
        for (row, want) in probes.iter().zip(theirs) {
            let got = prepared.predict(row).expect("predict");
            assert_eq!(got.to_bits(), want.to_bits(), "{row:?}: {got} vs {want}");
        }
    }

    #[test]
    fn ragged_or_empty_rows_are_errors() {
        assert!(fit(&spec(5), &[], &[]).is_err());
        assert!(fit(&spec(5), &[vec![1.0], vec![1.0, 2.0]], &[1.0, 2.0]).is_err());
        assert!(fit(&spec(5), &[vec![1.0]], &[1.0, 2.0]).is_err());
        assert!(fit(&ModelSpec::LinearRegression, &[vec![1.0]], &[1.0]).is_err());
    }
}
