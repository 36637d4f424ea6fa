// Hand-made IRs, one per body kind, and seeded rows to check them on. Not a module: the unit
// tests (src/onnx/tests.rs, tract) and the integration test (tests/all/onnx.rs, onnxruntime)
// `include!` this file, so both runtimes are held to the same cases.

use model_wasm::ir::{Cast, Missing};
use model_wasm::{Aggregate, Body, IR_VERSION, Link, ModelIr, Node, Output, Preprocess, Tree};

/// A model and the rows to check it on.
struct Case {
    name: &'static str,
    ir: ModelIr,
    rows: Vec<Vec<f64>>,
}

const ROWS: usize = 200;

/// SplitMix64, so the rows are the same on every run and platform.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn classes(k: usize) -> Output {
    Output::Classification {
        classes: (0..k).map(|i| format!("class {i}")).collect(),
    }
}

fn split(feature: u32, threshold: f32, left: u32, right: u32) -> Node {
    Node::Split {
        feature,
        threshold,
        left,
        right, missing: Default::default() }
}

/// XGBoost's split: `(x as f32) < threshold`, NaN as `missing` says.
fn split_nan(feature: u32, threshold: f32, left: u32, right: u32, missing: Missing) -> Node {
    Node::Split {
        feature,
        threshold,
        left,
        right,
        missing,
    }
}

/// LightGBM's split: `x <= threshold` in f64.
fn split_le(feature: u32, threshold: f64, left: u32, right: u32, missing: Missing) -> Node {
    Node::SplitLe {
        feature,
        threshold,
        left,
        right,
        missing,
    }
}

fn split_in(feature: u32, categories: &[u32], cast: Cast, left: u32, right: u32, missing: Missing) -> Node {
    Node::SplitIn {
        feature,
        categories: categories.to_vec(),
        cast,
        left,
        right,
        missing,
    }
}

fn leaf(value: f64) -> Node {
    Node::Leaf { value }
}

/// Random rows in `ranges` (one per feature).
fn uniform_rows(rng: &mut Rng, ranges: &[(f64, f64)]) -> Vec<Vec<f64>> {
    (0..ROWS)
        .map(|_| ranges.iter().map(|(lo, hi)| rng.uniform(*lo, *hi)).collect())
        .collect()
}

/// Rows for trees: each value is random, a threshold of that feature exactly (as f64), or the f64
/// number nearest to the threshold's decimal (0.1 for 0.1f32, which differ: only an f32 compare
/// puts them on the same side).
fn tree_rows(rng: &mut Rng, trees: &[Tree], ranges: &[(f64, f64)]) -> Vec<Vec<f64>> {
    let mut thresholds = vec![Vec::new(); ranges.len()];
    for node in trees.iter().flat_map(|t| &t.nodes) {
        if let Node::Split { feature, threshold, .. } = node {
            thresholds[*feature as usize].push(*threshold);
        }
    }
    (0..ROWS)
        .map(|_| {
            ranges
                .iter()
                .zip(&thresholds)
                .map(|((lo, hi), at)| match rng.next_u64() % 4 {
                    0 | 1 if !at.is_empty() => {
                        let t = *rng.pick(at);
                        if rng.next_u64().is_multiple_of(2) {
                            f64::from(t)
                        } else {
                            t.to_string().parse().expect("a float prints as a float")
                        }
                    }
                    _ => rng.uniform(*lo, *hi),
                })
                .collect()
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(20240611);
    let mut cases = Vec::new();

    // Linear regression with standard scaling.
    let ranges = [(-5.0, 8.0), (-10.0, 6.0), (0.0, 300.0)];
    cases.push(Case {
        name: "linear_regression",
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 3),
            preprocess: vec![Preprocess::Scale {
                center: vec![1.5, -2.0, 100.0],
                scale: vec![0.5, 2.0, 0.01],
            }],
            body: Body::Linear {
                weights: vec![2.0, -1.25, 0.3],
                intercepts: vec![4.0],
                link: Link::Identity,
            },
            output: Output::Regression { target: "y".into() },
        },
        rows: uniform_rows(&mut rng, &ranges),
    });

    // Binary logistic regression with scaling. The centres give z = 0 exactly (p = 0.5, a tie
    // that goes to the first class); the ranges reach |z| ~ 40, two rows |z| ~ 100 (p = 1 in
    // f64, and 1 - p below f32's smallest normal number).
    let center = vec![0.25, 3.0, -1.0, 10.0];
    let mut rows = uniform_rows(&mut rng, &[(-20.0, 20.0), (-10.0, 10.0), (-5.0, 5.0), (0.0, 20.0)]);
    rows[0] = center.clone();
    rows[1] = vec![60.0, -30.0, 4.0, 1e6];
    rows[2] = vec![-60.0, 40.0, -5.0, -1e6];
    cases.push(Case {
        name: "binary_logistic",
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("f", 4),
            preprocess: vec![Preprocess::Scale {
                center,
                scale: vec![0.8, 1.0 / 3.0, 2.0, 0.1],
            }],
            body: Body::Linear {
                weights: vec![1.5, -2.0, 0.75, 0.0],
                intercepts: vec![0.0],
                link: Link::Sigmoid,
            },
            output: classes(2),
        },
        rows,
    });

    // Softmax over 3 classes: z0 = a, z1 = b, z2 = 0.5 after scaling; rows with a == b tie
    // between the first two classes.
    let mut rows = uniform_rows(&mut rng, &[(-4.0, 6.0), (-4.0, 6.0)]);
    for row in rows.iter_mut().step_by(5) {
        row[1] = row[0];
    }
    rows[1] = vec![1.0, 1.0];
    cases.push(Case {
        name: "softmax_3_classes",
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 2),
            preprocess: vec![Preprocess::Scale {
                center: vec![1.0, 1.0],
                scale: vec![1.5, 1.5],
            }],
            body: Body::Linear {
                weights: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
                intercepts: vec![0.0, 0.0, 0.5],
                link: Link::Softmax,
            },
            output: classes(3),
        },
        rows,
    });

    // A voting forest of four trees (even, so votes tie 2-2 and 1-1-1-1), thresholds that are
    // not f64 numbers (0.1f32, 1.3f32), a deeper tree and a single-leaf tree.
    let trees = vec![
        Tree {
            nodes: vec![split(0, 0.1, 1, 2), leaf(0.0), leaf(1.0)],
        },
        Tree {
            nodes: vec![
                split(1, 1.3, 1, 4),
                split(0, -1.0, 2, 3),
                leaf(2.0),
                leaf(0.0),
                split(2, 0.5, 5, 6),
                leaf(1.0),
                leaf(2.0),
            ],
        },
        Tree {
            nodes: vec![split(2, -0.75, 2, 1), leaf(2.0), leaf(0.0)],
        },
        Tree { nodes: vec![leaf(1.0)] },
    ];
    let ranges = [(-2.0, 2.0), (0.0, 3.0), (-2.0, 2.0)];
    cases.push(Case {
        name: "vote_forest",
        rows: tree_rows(&mut rng, &trees, &ranges),
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 3),
            preprocess: vec![],
            body: Body::Trees {
                trees,
                aggregate: Aggregate::Vote,
            },
            output: classes(3),
        },
    });

    // Two classes: the case where both runtimes have special "binary" code paths. Two trees, so
    // votes tie 1-1.
    let trees = vec![
        Tree {
            nodes: vec![split(0, 0.1, 1, 2), leaf(1.0), leaf(0.0)],
        },
        Tree {
            nodes: vec![split(1, 0.7, 1, 2), leaf(0.0), leaf(1.0)],
        },
    ];
    cases.push(Case {
        name: "vote_forest_binary",
        rows: tree_rows(&mut rng, &trees, &[(-1.0, 1.0), (0.0, 1.5)]),
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 2),
            preprocess: vec![],
            body: Body::Trees {
                trees,
                aggregate: Aggregate::Vote,
            },
            output: classes(2),
        },
    });

    // Every leaf votes for the first class: tract's binary layout would kick in without the
    // padding classes.
    let trees = vec![Tree {
        nodes: vec![split(0, 0.5, 1, 2), leaf(0.0), leaf(0.0)],
    }];
    cases.push(Case {
        name: "vote_forest_first_class_only",
        rows: tree_rows(&mut rng, &trees, &[(0.0, 1.0)]),
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 1),
            preprocess: vec![],
            body: Body::Trees {
                trees,
                aggregate: Aggregate::Vote,
            },
            output: classes(2),
        },
    });

    // An averaging regression forest after scaling, with leaf values of mixed signs and
    // magnitudes (they nearly cancel: 1000 and -999.995) and a single-leaf tree. Rows are f32
    // numbers, so the f64 scaling sees the same input on both sides.
    let trees = vec![
        Tree {
            nodes: vec![split(0, 0.1, 1, 2), leaf(1000.0), leaf(-3.25)],
        },
        Tree {
            nodes: vec![
                split(1, -0.5, 1, 2),
                leaf(-999.995),
                split(2, 1.75, 3, 4),
                leaf(0.001),
                leaf(12.5),
            ],
        },
        Tree { nodes: vec![leaf(0.3)] },
        Tree {
            nodes: vec![split(2, 0.0, 1, 2), leaf(-7.0), leaf(7.000001)],
        },
        Tree {
            nodes: vec![split(0, -0.3, 2, 1), leaf(1e-9), leaf(-2.0)],
        },
    ];
    let rows = uniform_rows(&mut rng, &[(-3.0, 3.0), (-2.0, 2.0), (-1.0, 4.0)])
        .into_iter()
        .map(|row| row.into_iter().map(|v| f64::from(v as f32)).collect())
        .collect();
    cases.push(Case {
        name: "average_forest",
        rows,
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 3),
            preprocess: vec![Preprocess::Scale {
                center: vec![0.5, 0.0, 1.0],
                scale: vec![0.75, 1.0, 1.25],
            }],
            body: Body::Trees {
                trees,
                aggregate: Aggregate::Average,
            },
            output: Output::Regression { target: "y".into() },
        },
    });

    // Boosted sums. Rows are f32 numbers (the ONNX input's type), so both runtimes see what the
    // evaluator sees; they hold every value a split treats apart: NaN, each threshold and the
    // f32 numbers either side of it, tiny values (LightGBM's zero), and as categories -1, -0.5,
    // fractions, unseen and huge numbers.
    let specials = |rng: &mut Rng, trees: &[Tree], ranges: &[(f64, f64)]| -> Vec<Vec<f64>> {
        let mut at = vec![vec![f64::NAN, 0.0, -0.0, 1e-36, -1e-36, 1e-35, 2e-35, -1.0, -0.5, 2.5, 1e7, 3e9]; ranges.len()];
        for node in trees.iter().flat_map(|t| &t.nodes) {
            match node {
                Node::Split { feature, threshold, .. } => {
                    let t = *threshold;
                    at[*feature as usize].extend([t, t.next_up(), t.next_down()].map(f64::from));
                }
                Node::SplitLe { feature, threshold, .. } => {
                    let t = *threshold as f32;
                    at[*feature as usize].extend([t, t.next_up(), t.next_down()].map(f64::from));
                }
                Node::SplitIn { feature, categories, .. } => {
                    at[*feature as usize].extend(categories.iter().map(|c| f64::from(*c)));
                }
                _ => {}
            }
        }
        // Row r < len holds special value r of each feature (so each one is there), later rows
        // a random mix of specials and uniform values.
        for values in &mut at {
            values.retain(|v| !v.is_infinite());
        }
        (0..ROWS)
            .map(|r| {
                ranges
                    .iter()
                    .zip(&at)
                    .map(|((lo, hi), at)| match at.get(r) {
                        Some(x) => *x,
                        None if rng.next_u64().is_multiple_of(3) => *rng.pick(at),
                        None => f64::from(rng.uniform(*lo, *hi) as f32),
                    })
                    .collect()
            })
            .collect()
    };

    // XGBoost-like binary classifier: f32 `<` splits with default directions, a category set
    // read with XGBoost's cast, NaN as zero in one split, a base score.
    let trees = vec![
        Tree {
            nodes: vec![
                split_nan(0, 0.1, 1, 2, Missing::Left),
                split_in(2, &[1, 3, 4], Cast::F32, 3, 4, Missing::Right),
                leaf(-0.4),
                leaf(0.75),
                leaf(0.125),
            ],
        },
        Tree {
            nodes: vec![
                split_nan(1, -0.3, 1, 2, Missing::Right),
                leaf(-0.2),
                split_nan(0, 1.7, 3, 4, Missing::AsZero),
                leaf(0.3),
                leaf(-1.1),
            ],
        },
        Tree {
            nodes: vec![split_in(2, &[0], Cast::F32, 1, 2, Missing::Left), leaf(0.5), leaf(-0.5)],
        },
        Tree { nodes: vec![leaf(0.01)] },
    ];
    let ranges = [(-1.0, 3.0), (-2.0, 2.0), (-1.0, 6.0)];
    cases.push(Case {
        name: "boosted_binary",
        rows: specials(&mut rng, &trees, &ranges),
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 3),
            preprocess: vec![],
            body: Body::Boosted {
                tree_outputs: vec![0; trees.len()],
                trees,
                base_score: vec![-0.25],
                link: Link::Sigmoid,
            },
            output: classes(2),
        },
    });

    // LightGBM-like 3-class softmax: f64 `<=` splits on thresholds that are not f32 numbers,
    // the zero missing type both ways, NaN as zero, category sets with LightGBM's cast (one of
    // them empty but for NaN), trees in class order.
    let trees = vec![
        Tree {
            nodes: vec![
                split_le(0, 0.1, 1, 2, Missing::ZeroLeft),
                leaf(0.5),
                split_in(2, &[0, 2, 5, 7], Cast::F64, 3, 4, Missing::AsZero),
                leaf(-0.25),
                leaf(0.9),
            ],
        },
        Tree {
            nodes: vec![split_le(1, -1.0 / 3.0, 1, 2, Missing::AsZero), leaf(0.2), leaf(-0.6)],
        },
        Tree {
            nodes: vec![
                split_le(0, 1.9, 1, 2, Missing::ZeroRight),
                split_in(2, &[3], Cast::F64, 3, 4, Missing::Right),
                leaf(0.05),
                leaf(1.5),
                leaf(-0.75),
            ],
        },
        Tree {
            nodes: vec![split_le(1, 0.0, 1, 2, Missing::Left), leaf(0.125), leaf(-0.125)],
        },
        Tree {
            nodes: vec![split_in(2, &[], Cast::F64, 1, 2, Missing::Left), leaf(0.4), leaf(-0.4)],
        },
        Tree {
            nodes: vec![split_le(0, f64::MAX, 1, 2, Missing::Right), leaf(0.3), leaf(-0.3)],
        },
    ];
    cases.push(Case {
        name: "boosted_softmax",
        rows: specials(&mut rng, &trees, &[(-1.0, 3.0), (-2.0, 2.0), (-1.0, 9.0)]),
        ir: ModelIr {
            ir_version: IR_VERSION,
            features: names("x", 3),
            preprocess: vec![],
            body: Body::Boosted {
                tree_outputs: vec![0, 1, 2, 0, 1, 2],
                trees,
                base_score: vec![0.1, -0.2, 0.0],
                link: Link::Softmax,
            },
            output: classes(3),
        },
    });

    // Regressors: identity, exp (Poisson) and sigmoid (reg:logistic) links on one set of trees.
    let trees = vec![
        Tree {
            nodes: vec![
                split_nan(0, 0.5, 1, 2, Missing::Left),
                leaf(1.25),
                split_nan(1, 2.0, 3, 4, Missing::Right),
                leaf(-0.5),
                leaf(3.0),
            ],
        },
        Tree {
            nodes: vec![split_nan(1, -0.75, 1, 2, Missing::AsZero), leaf(-2.0), leaf(0.75)],
        },
    ];
    for (name, link) in [
        ("boosted_regression", Link::Identity),
        ("boosted_poisson", Link::Exp),
        ("boosted_logistic_regression", Link::Sigmoid),
    ] {
        cases.push(Case {
            name,
            rows: specials(&mut rng, &trees, &[(-1.0, 2.0), (-2.0, 4.0)]),
            ir: ModelIr {
                ir_version: IR_VERSION,
                features: names("x", 2),
                preprocess: vec![],
                body: Body::Boosted {
                    tree_outputs: vec![0; trees.len()],
                    trees: trees.clone(),
                    base_score: vec![0.5],
                    link,
                },
                output: Output::Regression { target: "y".into() },
            },
        });
    }

    cases
}
