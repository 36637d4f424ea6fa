//! The reference evaluator and the IR's structural checks.

use crate::ir::{
    Aggregate, Body, IR_VERSION, Link, MAX_CATEGORY, Missing, ModelIr, Node, Output, Prediction, Preprocess, Tree,
};
use crate::{Error, Result};

/// Most bits the category sets of one model take in all: 2^24 (2 MiB of bitsets in the module).
pub const MAX_CATEGORY_BITS: u64 = 1 << 24;

/// What a tree body's leaves hold.
#[derive(Debug, Clone, Copy)]
enum Leaves {
    Of(Aggregate),
    /// Boosted margins ([`Node::Leaf`] values).
    Margins,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidModel(message.into())
}

impl ModelIr {
    /// Checks everything the evaluator, the ONNX writer and the code generator rely on: sizes,
    /// finite numbers, feature indices in range, trees that are trees (no cycle, no dangling or
    /// unreachable node), leaf classes within the outputs, and a link that fits the task.
    pub fn validate(&self) -> Result<()> {
        if self.ir_version != IR_VERSION {
            return Err(invalid(format!(
                "IR version {} is not supported (expected {IR_VERSION})",
                self.ir_version
            )));
        }
        let n = self.n_features();
        if n == 0 {
            return Err(invalid("the model has no features"));
        }
        for (i, name) in self.features.iter().enumerate() {
            if name.is_empty() || self.features[..i].contains(name) {
                return Err(invalid(format!("feature {i}: name {name:?} is empty or repeated")));
            }
        }
        match &self.output {
            Output::Classification { classes } => {
                if classes.len() < 2 {
                    return Err(invalid("a classifier needs at least two classes"));
                }
                if classes.len() > crate::ir::MAX_CLASSES {
                    return Err(invalid(format!(
                        "{} classes: a module outputs at most {}",
                        classes.len(),
                        crate::ir::MAX_CLASSES
                    )));
                }
                for (i, c) in classes.iter().enumerate() {
                    if classes[..i].contains(c) {
                        return Err(invalid(format!("class {c:?} is repeated")));
                    }
                }
            }
            Output::Regression { .. } => {}
        }
        for (p, step) in self.preprocess.iter().enumerate() {
            match step {
                Preprocess::Scale { center, scale } => {
                    if center.len() != n || scale.len() != n {
                        return Err(invalid(format!(
                            "preprocess step {p} (scale): {} centers and {} scales for {n} features",
                            center.len(),
                            scale.len()
                        )));
                    }
                    if let Some(i) = (0..n).find(|&i| !center[i].is_finite() || !scale[i].is_finite()) {
                        return Err(invalid(format!(
                            "preprocess step {p} (scale): feature {} has a non-finite center or scale",
                            self.features[i]
                        )));
                    }
                }
            }
        }
        match &self.body {
            Body::Linear {
                weights,
                intercepts,
                link,
            } => self.validate_linear(weights, intercepts, *link),
            Body::Trees { trees, aggregate } => self.validate_trees(trees, Leaves::Of(*aggregate)),
            Body::Boosted {
                trees,
                tree_outputs,
                base_score,
                link,
            } => self.validate_boosted(trees, tree_outputs, base_score, *link),
        }
    }

    fn validate_boosted(&self, trees: &[Tree], tree_outputs: &[u32], base_score: &[f64], link: Link) -> Result<()> {
        let outputs = match (&self.output, link) {
            (Output::Regression { .. }, Link::Identity | Link::Sigmoid | Link::Exp) => 1,
            (Output::Classification { classes }, Link::Sigmoid) if classes.len() == 2 => 1,
            (Output::Classification { classes }, Link::Softmax) => classes.len(),
            (Output::Regression { .. }, _) => {
                return Err(invalid(format!("a boosted regressor cannot end in a {link:?} link")));
            }
            (Output::Classification { classes }, _) => {
                return Err(invalid(format!(
                    "a {link:?} link does not fit a boosted classifier of {} classes",
                    classes.len()
                )));
            }
        };
        if base_score.len() != outputs {
            return Err(invalid(format!(
                "{} base scores for {outputs} outputs",
                base_score.len()
            )));
        }
        if base_score.iter().any(|b| !b.is_finite()) {
            return Err(invalid("a base score is not a finite number"));
        }
        if tree_outputs.len() != trees.len() {
            return Err(invalid(format!(
                "{} tree outputs for {} trees",
                tree_outputs.len(),
                trees.len()
            )));
        }
        if let Some(t) = tree_outputs.iter().position(|&k| k as usize >= outputs) {
            return Err(invalid(format!(
                "tree {t} adds to output {}, the model has {outputs}",
                tree_outputs[t]
            )));
        }
        self.validate_trees(trees, Leaves::Margins)
    }

    fn validate_linear(&self, weights: &[f64], intercepts: &[f64], link: Link) -> Result<()> {
        let rows = intercepts.len();
        let expected_rows = match (&self.output, link) {
            (Output::Regression { .. }, Link::Identity) => 1,
            (Output::Classification { classes }, Link::Sigmoid) if classes.len() == 2 => 1,
            (Output::Classification { classes }, Link::Softmax) => classes.len(),
            (output, link) => {
                let task = if matches!(output, Output::Regression { .. }) {
                    "regression"
                } else {
                    "this classification"
                };
                return Err(invalid(format!("a {link:?} link does not fit {task}")));
            }
        };
        if rows != expected_rows {
            return Err(invalid(format!("{rows} linear outputs, expected {expected_rows}")));
        }
        if weights.len() != rows * self.n_features() {
            return Err(invalid(format!(
                "{} weights for {rows} outputs of {} features",
                weights.len(),
                self.n_features()
            )));
        }
        if weights.iter().chain(intercepts).any(|w| !w.is_finite()) {
            return Err(invalid("a weight or intercept is not a finite number"));
        }
        Ok(())
    }

    fn validate_trees(&self, trees: &[Tree], leaves: Leaves) -> Result<()> {
        let n_classes = match (&self.output, leaves) {
            (Output::Classification { classes }, Leaves::Of(Aggregate::Vote | Aggregate::Sum)) => Some(classes.len()),
            (Output::Regression { .. }, Leaves::Of(Aggregate::Average)) | (_, Leaves::Margins) => None,
            _ => {
                return Err(invalid(
                    "trees vote or sum class weights for classification, and average for regression",
                ));
            }
        };
        let aggregate = match leaves {
            Leaves::Of(aggregate) => aggregate,
            // Margins are values, as an average's leaves.
            Leaves::Margins => Aggregate::Average,
        };
        if trees.is_empty() {
            return Err(invalid("the ensemble has no trees"));
        }
        let splits = || trees.iter().flat_map(|t| &t.nodes);
        if splits().any(|n| matches!(n, Node::Split { .. })) && splits().any(|n| matches!(n, Node::SplitLe { .. })) {
            return Err(invalid(
                "the ensemble mixes f32 (`split`) and f64 (`split_le`) comparisons; one ensemble compares in one precision",
            ));
        }
        // The bitsets the code generator writes: one bit per category up to a set's largest.
        let mut category_bits = 0u64;
        for (t, tree) in trees.iter().enumerate() {
            let at = |node: usize, what: String| invalid(format!("tree {t}, node {node}: {what}"));
            if tree.nodes.is_empty() {
                return Err(invalid(format!("tree {t} has no nodes")));
            }
            // Walk from the root: every node must be reached exactly once.
            let mut seen = vec![false; tree.nodes.len()];
            let mut stack = vec![0usize];
            while let Some(i) = stack.pop() {
                if seen[i] {
                    return Err(at(i, "is reached twice (a cycle or a shared child)".into()));
                }
                seen[i] = true;
                let node = &tree.nodes[i];
                if let (Some(feature), Some((left, right))) = (node.split_feature(), node.children()) {
                    if feature as usize >= self.n_features() {
                        return Err(at(
                            i,
                            format!("feature {feature} is out of range ({} features)", self.n_features()),
                        ));
                    }
                    for child in [left, right] {
                        if child as usize >= tree.nodes.len() {
                            return Err(at(
                                i,
                                format!("child {child} does not exist ({} nodes)", tree.nodes.len()),
                            ));
                        }
                        stack.push(child as usize);
                    }
                }
                match node {
                    Node::Split { threshold, .. } => {
                        if !threshold.is_finite() {
                            return Err(at(i, "the threshold is not a finite number".into()));
                        }
                    }
                    Node::SplitLe { threshold, .. } => {
                        if !threshold.is_finite() {
                            return Err(at(i, "the threshold is not a finite number".into()));
                        }
                    }
                    Node::SplitIn {
                        categories, missing, ..
                    } => {
                        if categories.windows(2).any(|w| w[0] >= w[1]) {
                            return Err(at(i, "the categories are not ascending without repeats".into()));
                        }
                        if let Some(&last) = categories.last() {
                            if last >= MAX_CATEGORY {
                                return Err(at(i, format!("category {last} is not below {MAX_CATEGORY}")));
                            }
                            category_bits += u64::from(last) + 1;
                            if category_bits > MAX_CATEGORY_BITS {
                                return Err(at(
                                    i,
                                    format!(
                                        "the category sets need more than {MAX_CATEGORY_BITS} bits in all (one per category up to each set's largest)"
                                    ),
                                ));
                            }
                        }
                        if matches!(missing, Missing::ZeroLeft | Missing::ZeroRight) {
                            return Err(at(i, "a categorical split has no zero missing type".into()));
                        }
                    }
                    Node::Leaf { .. } if aggregate == Aggregate::Sum => {
                        return Err(at(i, "a leaf of a summing ensemble must hold class weights".into()));
                    }
                    Node::Weights { .. } if aggregate != Aggregate::Sum => {
                        return Err(at(
                            i,
                            "class weights in a leaf of a voting or averaging ensemble".into(),
                        ));
                    }
                    Node::Weights { weights } => {
                        let k = n_classes.unwrap_or(0);
                        if weights.len() != k {
                            return Err(at(i, format!("{} class weights for {k} classes", weights.len())));
                        }
                        if weights.iter().any(|w| !w.is_finite()) {
                            return Err(at(i, "a class weight is not a finite number".into()));
                        }
                    }
                    Node::Leaf { value } => {
                        if !value.is_finite() {
                            return Err(at(i, "the leaf value is not a finite number".into()));
                        }
                        if let Some(k) = n_classes
                            && (value.fract() != 0.0 || *value < 0.0 || *value >= k as f64)
                        {
                            return Err(at(i, format!("leaf class {value} is not one of the {k} classes")));
                        }
                    }
                }
            }
            if let Some(i) = seen.iter().position(|s| !s) {
                return Err(at(i, "is not reachable from the root".into()));
            }
        }
        Ok(())
    }

    /// Predicts one row. The IR must have passed [`ModelIr::validate`].
    pub fn predict(&self, row: &[f64]) -> Result<Prediction> {
        if row.len() != self.n_features() {
            return Err(Error::InvalidInput {
                feature: String::new(),
                reason: format!(
                    "{} values given, the model takes {} features",
                    row.len(),
                    self.n_features()
                ),
            });
        }
        let accepts = self.accepts_missing();
        if let Some(i) = (0..row.len()).find(|&i| !(row[i].is_finite() || row[i].is_nan() && accepts[i])) {
            return Err(Error::InvalidInput {
                feature: self.features[i].clone(),
                reason: format!("{} is not a finite number", row[i]),
            });
        }
        let mut x = row.to_vec();
        for step in &self.preprocess {
            match step {
                Preprocess::Scale { center, scale } => {
                    for ((v, c), s) in x.iter_mut().zip(center).zip(scale) {
                        *v = (*v - c) * s;
                    }
                }
            }
        }
        Ok(match &self.body {
            Body::Linear {
                weights,
                intercepts,
                link,
            } => {
                let n = x.len();
                let z: Vec<f64> = intercepts
                    .iter()
                    .enumerate()
                    .map(|(k, b)| {
                        b + weights[k * n..(k + 1) * n]
                            .iter()
                            .zip(&x)
                            .map(|(w, v)| w * v)
                            .sum::<f64>()
                    })
                    .collect();
                match link {
                    Link::Identity => Prediction::Value(z[0]),
                    Link::Sigmoid => {
                        let p = sigmoid(z[0]);
                        class_of(vec![1.0 - p, p])
                    }
                    Link::Softmax => class_of(softmax(&z)),
                    Link::Exp => unreachable!("validated: a linear model has no exp link"),
                }
            }
            Body::Boosted {
                trees,
                tree_outputs,
                base_score,
                link,
            } => {
                let mut z = base_score.clone();
                for (tree, &k) in trees.iter().zip(tree_outputs) {
                    z[k as usize] += leaf(tree, &x);
                }
                match (link, &self.output) {
                    (Link::Identity, _) => Prediction::Value(z[0]),
                    (Link::Exp, _) => Prediction::Value(z[0].exp()),
                    (Link::Sigmoid, Output::Regression { .. }) => Prediction::Value(sigmoid(z[0])),
                    (Link::Sigmoid, Output::Classification { .. }) => {
                        let p = sigmoid(z[0]);
                        class_of(vec![1.0 - p, p])
                    }
                    (Link::Softmax, _) => class_of(softmax(&z)),
                }
            }
            Body::Trees { trees, aggregate } => {
                let leaves = trees.iter().map(|t| leaf(t, &x));
                match aggregate {
                    Aggregate::Sum => {
                        let mut sums = vec![0.0; self.n_outputs()];
                        for tree in trees {
                            let Node::Weights { weights } = &tree.nodes[tree.leaf_index(&x)] else {
                                unreachable!("validated: the leaves of a sum hold weights")
                            };
                            for (s, w) in sums.iter_mut().zip(weights) {
                                *s += f64::from(*w);
                            }
                        }
                        class_of(sums)
                    }
                    Aggregate::Average => Prediction::Value(leaves.sum::<f64>() / trees.len() as f64),
                    Aggregate::Vote => {
                        let mut votes = vec![0.0; self.n_outputs()];
                        for class in leaves {
                            votes[class as usize] += 1.0;
                        }
                        let total = trees.len() as f64;
                        class_of(votes.into_iter().map(|v| v / total).collect())
                    }
                }
            }
        })
    }
}

/// The leaf value `x` reaches in `tree`.
fn leaf(tree: &Tree, x: &[f64]) -> f64 {
    match &tree.nodes[tree.leaf_index(x)] {
        Node::Leaf { value } => *value,
        _ => unreachable!("validated: a vote, average or boosted sum ends at a value leaf"),
    }
}

/// The class with the highest probability; ties go to the lowest index.
fn class_of(probabilities: Vec<f64>) -> Prediction {
    let mut label = 0;
    for (k, p) in probabilities.iter().enumerate() {
        if *p > probabilities[label] {
            label = k;
        }
    }
    Prediction::Class { label, probabilities }
}

/// The logistic function, computed so that neither tail overflows.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Softmax with the maximum subtracted first, so large scores do not overflow.
pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(link: Link, output: Output, weights: Vec<f64>, intercepts: Vec<f64>) -> ModelIr {
        ModelIr {
            ir_version: IR_VERSION,
            features: vec!["a".into(), "b".into()],
            preprocess: vec![Preprocess::Scale {
                center: vec![1.0, 0.0],
                scale: vec![0.5, 1.0],
            }],
            body: Body::Linear {
                weights,
                intercepts,
                link,
            },
            output,
        }
    }

    fn classes(k: usize) -> Output {
        Output::Classification {
            classes: (0..k).map(|i| format!("c{i}")).collect(),
        }
    }

    fn stump(feature: u32, threshold: f32, left: f64, right: f64) -> Tree {
        Tree {
            nodes: vec![
                Node::Split {
                    feature,
                    threshold,
                    left: 1,
                    right: 2,
                    missing: Default::default(),
                },
                Node::Leaf { value: left },
                Node::Leaf { value: right },
            ],
        }
    }

    fn forest(trees: Vec<Tree>, output: Output, aggregate: Aggregate) -> ModelIr {
        ModelIr {
            ir_version: IR_VERSION,
            features: vec!["a".into(), "b".into()],
            preprocess: vec![],
            body: Body::Trees { trees, aggregate },
            output,
        }
    }

    #[test]
    fn linear_regression_scales_then_sums() {
        let ir = linear(
            Link::Identity,
            Output::Regression { target: "y".into() },
            vec![2.0, -1.0],
            vec![0.5],
        );
        ir.validate().unwrap();
        // a: (3 - 1) * 0.5 = 1; b: 4 -> 0.5 + 2*1 - 4 = -1.5
        assert_eq!(ir.predict(&[3.0, 4.0]).unwrap(), Prediction::Value(-1.5));
    }

    #[test]
    fn binary_and_multiclass_links() {
        let ir = linear(Link::Sigmoid, classes(2), vec![1.0, 0.0], vec![0.0]);
        ir.validate().unwrap();
        let Prediction::Class { label, probabilities } = ir.predict(&[1.0, 9.0]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (label, probabilities),
            (0, vec![0.5, 0.5]),
            "ties go to the first class"
        );
        let ir = linear(
            Link::Softmax,
            classes(3),
            vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            vec![0.0, 0.0, 5.0],
        );
        ir.validate().unwrap();
        let Prediction::Class { label, probabilities } = ir.predict(&[3.0, 1.0]).unwrap() else {
            panic!()
        };
        assert_eq!(label, 2);
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn trees_compare_in_f32_and_vote() {
        // In f64, 0.1 < 0.1f32 (= 0.100000001490116...) and would go left; in f32 both are the
        // same number, so it goes right, as in ONNX.
        let trees = vec![
            stump(0, 0.1f32, 0.0, 1.0),
            stump(1, 2.0, 1.0, 0.0),
            stump(0, 5.0, 1.0, 2.0),
        ];
        let ir = forest(trees, classes(3), Aggregate::Vote);
        ir.validate().unwrap();
        let Prediction::Class { label, probabilities } = ir.predict(&[0.1, 3.0]).unwrap() else {
            panic!()
        };
        assert_eq!(probabilities, vec![1.0 / 3.0, 2.0 / 3.0, 0.0]);
        assert_eq!(label, 1);
        let reg = forest(
            vec![stump(0, 1.0, 10.0, 20.0), stump(1, 1.0, 1.0, 3.0)],
            Output::Regression { target: "y".into() },
            Aggregate::Average,
        );
        assert_eq!(reg.predict(&[2.0, 0.0]).unwrap(), Prediction::Value(10.5));
    }

    #[test]
    fn inputs_are_checked_and_named() {
        let ir = linear(
            Link::Identity,
            Output::Regression { target: "y".into() },
            vec![1.0, 1.0],
            vec![0.0],
        );
        assert_eq!(
            ir.predict(&[1.0, f64::NAN]).unwrap_err().to_string(),
            "feature 'b': NaN is not a finite number"
        );
        assert!(
            ir.predict(&[1.0])
                .unwrap_err()
                .to_string()
                .contains("1 values given, the model takes 2")
        );
    }

    #[test]
    fn broken_models_are_refused_before_use() {
        let cases: Vec<(ModelIr, &str)> = vec![
            (
                forest(vec![stump(7, 1.0, 0.0, 1.0)], classes(2), Aggregate::Vote),
                "feature 7 is out of range",
            ),
            (
                forest(
                    vec![Tree {
                        nodes: vec![
                            Node::Split {
                                feature: 0,
                                threshold: 1.0,
                                left: 0,
                                right: 1,
                                missing: Default::default(),
                            },
                            Node::Leaf { value: 0.0 },
                        ],
                    }],
                    classes(2),
                    Aggregate::Vote,
                ),
                "reached twice",
            ),
            (
                forest(
                    vec![Tree {
                        nodes: vec![
                            Node::Split {
                                feature: 0,
                                threshold: 1.0,
                                left: 1,
                                right: 9,
                                missing: Default::default(),
                            },
                            Node::Leaf { value: 0.0 },
                        ],
                    }],
                    classes(2),
                    Aggregate::Vote,
                ),
                "child 9 does not exist",
            ),
            (
                forest(vec![stump(0, 1.0, 0.0, 3.0)], classes(2), Aggregate::Vote),
                "leaf class 3 is not one of the 2 classes",
            ),
            (
                linear(
                    Link::Identity,
                    Output::Regression { target: "y".into() },
                    vec![f64::NAN, 1.0],
                    vec![0.0],
                ),
                "not a finite number",
            ),
            (
                linear(Link::Softmax, classes(3), vec![1.0; 4], vec![0.0; 2]),
                "2 linear outputs, expected 3",
            ),
            (
                linear(
                    Link::Sigmoid,
                    Output::Regression { target: "y".into() },
                    vec![1.0; 2],
                    vec![0.0],
                ),
                "does not fit regression",
            ),
            (
                forest(vec![stump(0, f32::NAN, 0.0, 1.0)], classes(2), Aggregate::Vote),
                "threshold is not a finite number",
            ),
        ];
        for (ir, expected) in cases {
            let err = ir.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn ir_round_trips_through_json() {
        let ir = forest(vec![stump(1, 0.25, 0.0, 1.0)], classes(2), Aggregate::Vote);
        let json = serde_json::to_string(&ir).unwrap();
        assert_eq!(serde_json::from_str::<ModelIr>(&json).unwrap(), ir);
    }
}
