//! Generated modules in wasmtime agree with the IR's reference evaluator: random IRs of every
//! family, compiled by `model_wasm::codegen`, labels identical and numbers within
//! `model_wasm::parity`'s tolerance.

use edge_runtime::{HostError, ModelModule, ModuleLimits, Prediction};
use model_wasm::codegen::compile;
use model_wasm::parity::{agree, scaled_difference};
use model_wasm::{Aggregate, Body, IR_VERSION, Link, ModelIr, Node, Output, Preprocess, Tree};

use crate::support::runtime;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform(0.0, 1.0) < p
    }
}

fn tree(rng: &mut Rng, n_features: usize, depth: usize, leaf: &mut dyn FnMut(&mut Rng) -> f64) -> Tree {
    fn grow(
        rng: &mut Rng,
        nodes: &mut Vec<Node>,
        n_features: usize,
        depth: usize,
        leaf: &mut dyn FnMut(&mut Rng) -> f64,
    ) -> u32 {
        let index = nodes.len();
        nodes.push(Node::Leaf { value: 0.0 });
        if depth == 0 || rng.chance(0.2) {
            nodes[index] = Node::Leaf { value: leaf(rng) };
        } else {
            let feature = rng.below(n_features) as u32;
            let threshold = rng.uniform(-2.0, 2.0) as f32;
            let left = grow(rng, nodes, n_features, depth - 1, leaf);
            let right = grow(rng, nodes, n_features, depth - 1, leaf);
            nodes[index] = Node::Split {
                feature,
                threshold,
                left,
                right,
                missing: Default::default(),
            };
        }
        index as u32
    }
    let mut nodes = Vec::new();
    grow(rng, &mut nodes, n_features, depth, leaf);
    Tree { nodes }
}

/// A random valid IR of family `family % 5`.
fn random_ir(rng: &mut Rng, family: usize) -> ModelIr {
    let n = 1 + rng.below(12);
    let features: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    let preprocess = if rng.chance(0.5) {
        vec![Preprocess::Scale {
            center: (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect(),
            scale: (0..n).map(|_| rng.uniform(0.2, 3.0)).collect(),
        }]
    } else {
        vec![]
    };
    let classes = |k: usize| Output::Classification {
        classes: (0..k).map(|c| format!("c{c}")).collect(),
    };
    let regression = Output::Regression { target: "y".into() };
    let weights = |rng: &mut Rng, rows: usize| -> (Vec<f64>, Vec<f64>) {
        (
            (0..rows * n).map(|_| rng.uniform(-2.0, 2.0)).collect(),
            (0..rows).map(|_| rng.uniform(-1.0, 1.0)).collect(),
        )
    };
    let (body, output) = match family % 5 {
        0 => {
            let (weights, intercepts) = weights(rng, 1);
            let link = Link::Identity;
            (
                Body::Linear {
                    weights,
                    intercepts,
                    link,
                },
                regression,
            )
        }
        1 => {
            let (weights, intercepts) = weights(rng, 1);
            let link = Link::Sigmoid;
            (
                Body::Linear {
                    weights,
                    intercepts,
                    link,
                },
                classes(2),
            )
        }
        2 => {
            let k = 3 + rng.below(3);
            let (weights, intercepts) = weights(rng, k);
            let link = Link::Softmax;
            (
                Body::Linear {
                    weights,
                    intercepts,
                    link,
                },
                classes(k),
            )
        }
        3 => {
            let k = 2 + rng.below(3);
            let trees = (0..1 + rng.below(8))
                .map(|_| {
                    let depth = 1 + rng.below(5);
                    tree(rng, n, depth, &mut |rng| rng.below(k) as f64)
                })
                .collect();
            let aggregate = Aggregate::Vote;
            (Body::Trees { trees, aggregate }, classes(k))
        }
        _ => {
            let trees = (0..1 + rng.below(8))
                .map(|_| {
                    let depth = 1 + rng.below(5);
                    tree(rng, n, depth, &mut |rng| rng.uniform(-100.0, 100.0))
                })
                .collect();
            let aggregate = Aggregate::Average;
            (Body::Trees { trees, aggregate }, regression)
        }
    };
    ModelIr {
        ir_version: IR_VERSION,
        features,
        preprocess,
        body,
        output,
    }
}

/// Rows around the model's range, with some values exactly on tree thresholds.
fn random_rows(rng: &mut Rng, ir: &ModelIr, count: usize) -> Vec<Vec<f64>> {
    let thresholds: Vec<f64> = ir
        .trees()
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(|node| match node {
            Node::Split { threshold, .. } => Some(f64::from(*threshold)),
            Node::SplitLe { threshold, .. } => Some(*threshold),
            _ => None,
        })
        .collect();
    (0..count)
        .map(|_| {
            (0..ir.n_features())
                .map(|_| {
                    if !thresholds.is_empty() && rng.chance(0.2) {
                        thresholds[rng.below(thresholds.len())]
                    } else {
                        rng.uniform(-3.0, 3.0)
                    }
                })
                .collect()
        })
        .collect()
}

fn assert_agree(expected: &Prediction, actual: &Prediction, context: &str) {
    match (expected, actual) {
        (Prediction::Value(e), Prediction::Value(a)) => {
            assert!(agree(*e, *a), "{context}: {e} vs {a} ({})", scaled_difference(*e, *a))
        }
        (
            Prediction::Class {
                label: el,
                probabilities: ep,
            },
            Prediction::Class {
                label: al,
                probabilities: ap,
            },
        ) => {
            assert_eq!(el, al, "{context}: labels ({ep:?} vs {ap:?})");
            assert_eq!(ep.len(), ap.len(), "{context}: class count");
            for (e, a) in ep.iter().zip(ap) {
                assert!(agree(*e, *a), "{context}: probability {e} vs {a}");
            }
        }
        _ => panic!("{context}: {expected:?} vs {actual:?}"),
    }
}

#[test]
fn random_irs_agree_with_the_reference_evaluator() {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for case in 0..60 {
        let ir = random_ir(&mut rng, case);
        let metadata = format!(r#"{{"case":{case}}}"#);
        let wasm = compile(&ir, metadata.as_bytes()).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let module =
            ModelModule::load(runtime(), &wasm, ModuleLimits::default()).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(module.metadata(), Some(metadata.as_bytes()));
        assert_eq!(module.n_features(), ir.n_features());
        assert_eq!(module.n_outputs(), ir.n_outputs());
        let classes = ir.classes().len();
        module.layout().check(ir.n_features(), classes).unwrap();

        // More rows than max_rows, so the batch is split.
        let count = if case % 10 == 0 { 2100 } else { 50 };
        let rows = random_rows(&mut rng, &ir, count);
        let predictions = module.predict(&rows).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(predictions.len(), rows.len());
        for (i, (row, actual)) in rows.iter().zip(&predictions).enumerate() {
            let expected = ir.predict(row).unwrap();
            assert_agree(
                &expected,
                actual,
                &format!("case {case} ({:?}), row {i}", ir.body_kind()),
            );
        }

        // A non-finite value: both refuse it; the module names the row and feature.
        let mut bad = rows[..3].to_vec();
        let feature = case % ir.n_features();
        bad[2][feature] = f64::NAN;
        assert!(ir.predict(&bad[2]).is_err());
        assert!(matches!(
            module.predict(&bad),
            Err(HostError::Input { row: 2, feature: Some(f), .. }) if f == feature
        ));
    }
}

trait BodyKind {
    fn body_kind(&self) -> String;
}

impl BodyKind for ModelIr {
    fn body_kind(&self) -> String {
        match &self.body {
            Body::Linear { link, .. } => format!("linear {link:?}"),
            Body::Trees { trees, aggregate } => format!("{} trees, {aggregate:?}", trees.len()),
            Body::Boosted { trees, link, .. } => format!("{} boosted trees, {link:?}", trees.len()),
        }
    }
}
