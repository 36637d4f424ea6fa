//! The generated modules, run in wasmtime and validated by wasmparser (as WebAssembly 1.0, so
//! every engine takes them), held to the reference evaluator.

use std::sync::OnceLock;

use wasmparser::{Parser, Payload, Validator, WasmFeatures};
use wasmtime::{Engine, Instance, Memory, Module, Store};

use super::{MANIFEST_SECTION, MAX_ROWS, compile, exp, layout, module, trees};
use crate::abi::{self, STATUS_BAD_ROW_COUNT, STATUS_NON_FINITE, STATUS_OK};
use crate::ir::{
    Aggregate, Body, Cast, IR_VERSION, Link, Missing, ModelIr, Node, Output, Prediction, Preprocess, Tree,
};
use crate::parity;

/// How far a linear model's probabilities may stray from the evaluator's (by
/// [`parity::scaled_difference`]): the generated `exp` and the platform's differ by an ulp or so.
const LINK_TOLERANCE: f64 = 1e-14;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

/// Checks the bytes are a valid WebAssembly 1.0 module.
fn validate(bytes: &[u8]) {
    Validator::new_with_features(WasmFeatures::WASM1)
        .validate_all(bytes)
        .expect("the module is valid WebAssembly 1.0");
}

/// A generated module, instantiated.
struct Loaded {
    store: Store<()>,
    instance: Instance,
    memory: Memory,
}

impl Loaded {
    fn new(bytes: &[u8]) -> Self {
        validate(bytes);
        let module = Module::new(engine(), bytes).expect("wasmtime compiles the module");
        let mut store = Store::new(engine(), ());
        let instance = Instance::new(&mut store, &module, &[]).expect("no imports to satisfy");
        let memory = instance.get_memory(&mut store, "memory").expect("memory export");
        Loaded {
            store,
            instance,
            memory,
        }
    }

    fn get(&mut self, name: &str) -> i32 {
        self.instance
            .get_typed_func::<(), i32>(&mut self.store, name)
            .unwrap_or_else(|e| panic!("export {name}: {e}"))
            .call(&mut self.store, ())
            .unwrap()
    }

    fn call_predict(&mut self, n_rows: i32) -> i32 {
        self.instance
            .get_typed_func::<i32, i32>(&mut self.store, "predict")
            .unwrap()
            .call(&mut self.store, n_rows)
            .unwrap()
    }

    fn write_f64s(&mut self, ptr: i32, values: &[f64]) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.memory.write(&mut self.store, ptr as usize, &bytes).unwrap();
    }

    fn read_f64s(&mut self, ptr: i32, n: usize) -> Vec<f64> {
        let mut bytes = vec![0u8; 8 * n];
        self.memory.read(&self.store, ptr as usize, &mut bytes).unwrap();
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn last_error(&mut self) -> String {
        let (ptr, len) = (self.get("last_error_ptr"), self.get("last_error_len"));
        let mut bytes = vec![0u8; len as usize];
        self.memory.read(&self.store, ptr as usize, &mut bytes).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// Writes the rows, predicts them, and reads one output row per input row.
    fn predict(&mut self, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let input: Vec<f64> = rows.concat();
        let input_ptr = self.get("input_ptr");
        self.write_f64s(input_ptr, &input);
        assert_eq!(self.call_predict(rows.len() as i32), STATUS_OK);
        let stride = self.get("output_stride") as usize;
        let output_ptr = self.get("output_ptr");
        let output = self.read_f64s(output_ptr, rows.len() * stride);
        output.chunks_exact(stride).map(<[f64]>::to_vec).collect()
    }
}

/// How closely a module must match the evaluator.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Match {
    /// To the bit (NaN matches NaN).
    Exact,
    /// Within [`LINK_TOLERANCE`].
    Close,
}

fn same_number(want: f64, got: f64, how: Match) -> bool {
    (want.is_nan() && got.is_nan())
        || match how {
            Match::Exact => want.to_bits() == got.to_bits(),
            Match::Close => want == got || parity::scaled_difference(want, got) <= LINK_TOLERANCE,
        }
}

/// The largest [`parity::scaled_difference`] seen, for the report.
fn assert_matches(ir: &ModelIr, row: &[f64], got: &[f64], how: Match) -> f64 {
    let want = ir.predict(row).unwrap();
    let context = || {
        let mut model = format!("{ir:?}");
        model.truncate(model.floor_char_boundary(2000));
        format!("row {row:?}: evaluator {want:?}, module {got:?}\nmodel: {model}")
    };
    let (want_numbers, got_numbers) = match &want {
        Prediction::Value(v) => {
            assert_eq!(got.len(), 1, "{}", context());
            (vec![*v], got.to_vec())
        }
        Prediction::Class { label, probabilities } => {
            assert_eq!(got.len(), 1 + probabilities.len(), "{}", context());
            assert_eq!(got[0], *label as f64, "label: {}", context());
            (probabilities.clone(), got[1..].to_vec())
        }
    };
    let mut worst = 0f64;
    for (w, g) in want_numbers.iter().zip(&got_numbers) {
        assert!(same_number(*w, *g, how), "{}", context());
        if w.is_finite() && g.is_finite() {
            worst = worst.max(parity::scaled_difference(*w, *g));
        }
    }
    worst
}

/// Compiles `ir`, predicts `rows` in one call and holds every row to the evaluator.
fn check(ir: &ModelIr, rows: &[Vec<f64>], how: Match) -> f64 {
    let bytes = compile(ir, b"{}").unwrap();
    let mut module = Loaded::new(&bytes);
    let outputs = module.predict(rows);
    rows.iter()
        .zip(&outputs)
        .map(|(row, got)| assert_matches(ir, row, got, how))
        .fold(0.0, f64::max)
}

fn classes(k: usize) -> Output {
    Output::Classification {
        classes: (0..k).map(|i| format!("c{i}")).collect(),
    }
}

fn regression() -> Output {
    Output::Regression { target: "y".into() }
}

fn features(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i}")).collect()
}

fn linear(n: usize, link: Link, output: Output, weights: Vec<f64>, intercepts: Vec<f64>) -> ModelIr {
    ModelIr {
        ir_version: IR_VERSION,
        features: features(n),
        preprocess: vec![],
        body: Body::Linear {
            weights,
            intercepts,
            link,
        },
        output,
    }
}

fn forest(n: usize, trees: Vec<Tree>, aggregate: Aggregate, output: Output) -> ModelIr {
    ModelIr {
        ir_version: IR_VERSION,
        features: features(n),
        preprocess: vec![],
        body: Body::Trees { trees, aggregate },
        output,
    }
}

fn leaf(value: f64) -> Tree {
    Tree {
        nodes: vec![Node::Leaf { value }],
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

// ---------------------------------------------------------------- exp

/// A module exporting only the generated `exp`.
fn exp_module() -> Vec<u8> {
    let ir = linear(1, Link::Identity, regression(), vec![1.0], vec![0.0]);
    let mut builder = module::ModuleBuilder::default();
    let index = builder.add(&exp::PARAMS, &exp::RESULTS, exp::function());
    builder
        .finish(&layout::Layout::new(&ir).unwrap(), &[("exp", index)], b"")
        .unwrap()
}

#[test]
fn exp_is_within_an_ulp_of_the_platforms() {
    let mut module = Loaded::new(&exp_module());
    let exp = module
        .instance
        .get_typed_func::<f64, f64>(&mut module.store, "exp")
        .unwrap();
    let mut xs: Vec<f64> = Vec::new();
    // A wide sweep over the whole range, steps that are not a multiple of ln 2.
    let (lo, hi) = (-745.2, 709.8);
    let steps = 400_000;
    xs.extend((0..=steps).map(|i| lo + (hi - lo) * i as f64 / steps as f64));
    // Around 0, across magnitudes, both signs.
    for e in -320..3 {
        for m in [1.0, 1.234_567, 3.3, 7.777] {
            xs.extend([m * 10f64.powi(e), -m * 10f64.powi(e)]);
        }
    }
    // Random values from a fixed seed, and the edges of the ranges.
    let mut rng = Rng(7);
    xs.extend((0..100_000).map(|_| (rng.unit() * 2.0 - 1.0) * 50.0));
    xs.extend([
        0.0,
        -0.0,
        1.0,
        -1.0,
        std::f64::consts::LN_2,
        0.5 * std::f64::consts::LN_2,
        709.782_712_893_383_9,
        -708.39,
        -708.4,
        -709.0,
        -744.0,
        -745.13,
    ]);

    let (mut worst_relative, mut worst_ulps) = (0f64, 0u64);
    for x in xs {
        let (got, want) = (exp.call(&mut module.store, x).unwrap(), x.exp());
        if want >= f64::MIN_POSITIVE && want.is_finite() {
            let relative = (got - want).abs() / want;
            assert!(relative < 1e-14, "exp({x:e}) = {got:e}, expected {want:e}");
            worst_relative = worst_relative.max(relative);
            worst_ulps = worst_ulps.max(got.to_bits().abs_diff(want.to_bits()));
        } else {
            // Subnormal results (and 0): within two of the smallest steps.
            assert!(
                got.to_bits().abs_diff(want.to_bits()) <= 2,
                "exp({x:e}) = {got:e}, expected {want:e}"
            );
        }
    }
    assert!(worst_ulps <= 1, "{worst_ulps} ulps");
    println!("exp: worst relative error {worst_relative:e}, {worst_ulps} ulp");

    for (x, want) in [
        (f64::INFINITY, f64::INFINITY),
        (f64::NEG_INFINITY, 0.0),
        (710.0, f64::INFINITY),
        (1e300, f64::INFINITY),
        (-746.0, 0.0),
        (-1e300, 0.0),
    ] {
        assert_eq!(exp.call(&mut module.store, x).unwrap(), want, "exp({x})");
    }
    assert!(exp.call(&mut module.store, f64::NAN).unwrap().is_nan());
}

// ---------------------------------------------------------------- hand-made models

#[test]
fn linear_regression_scales_in_order_and_matches_to_the_bit() {
    let mut ir = linear(3, Link::Identity, regression(), vec![2.0, -1.0, 0.1], vec![0.5]);
    ir.preprocess = vec![
        Preprocess::Scale {
            center: vec![1.0, 0.0, -0.3],
            scale: vec![0.5, 1.0, 3.0],
        },
        Preprocess::Scale {
            center: vec![0.0, 0.25, 0.0],
            scale: vec![1.0, 1.0, 1e-3],
        },
    ];
    let rows = vec![
        vec![3.0, 4.25, 0.0],
        vec![-0.0, 0.1, 0.2],
        vec![1e300, -1e300, 1e-300],
        vec![0.1, 0.2, 0.3],
    ];
    check(&ir, &rows, Match::Exact);
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    // (3 - 1) * 0.5 = 1; 4.25 - 0.25 = 4; (0 + 0.3) * 3 * 1e-3 -> 0.5 + 2 - 4 + 0.1 * 0.0009
    let got = module.predict(&rows[..1])[0][0];
    assert_eq!(got, 0.5 + (2.0 * 1.0 + -4.0 + 0.1 * ((0.3 * 3.0) * 1e-3)));
}

#[test]
fn sigmoid_takes_both_branches_and_ties_go_to_the_first_class() {
    let ir = linear(2, Link::Sigmoid, classes(2), vec![1.0, -2.0], vec![0.0]);
    let rows = vec![
        vec![0.0, 0.0],     // z = 0: [0.5, 0.5], label 0
        vec![2.0, 1.0],     // z = 0 again
        vec![3.0, 0.0],     // z > 0
        vec![-3.0, 0.5],    // z < 0
        vec![800.0, 0.0],   // exp(-800) = 0
        vec![0.0, 400.0],   // exp(-800) = 0
        vec![40.0, -1e300], // inf
    ];
    check(&ir, &rows, Match::Close);
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    let out = module.predict(&rows);
    assert_eq!(out[0], vec![0.0, 0.5, 0.5]);
    assert_eq!(out[4], vec![1.0, 0.0, 1.0]);
    assert_eq!(out[5], vec![0.0, 1.0, 0.0]);
}

#[test]
fn softmax_subtracts_the_max_and_breaks_ties_low() {
    let ir = linear(
        2,
        Link::Softmax,
        classes(4),
        vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, -1.0, -1.0],
        vec![0.0, 0.0, 0.0, 5.0],
    );
    let rows = vec![
        vec![0.0, 0.0],      // class 3 by its intercept
        vec![7.0, 7.0],      // classes 0 and 2 tie... 1 ties 0 too: label 0
        vec![1000.0, 999.0], // would overflow without the max subtracted
        vec![-1e5, 1e5],     // 1 wins, others underflow to 0
        vec![1e308, 1e308],  // a score of -inf
        vec![0.125, -0.0625],
    ];
    check(&ir, &rows, Match::Close);
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    let out = module.predict(&rows);
    assert_eq!(out[1][0], 0.0, "a tie goes to the first class");
    assert_eq!(out[2][0], 0.0);
    assert_eq!(out[3][0], 1.0);
    assert_eq!(out[3][2], 1.0);
}

#[test]
fn trees_split_in_f32_vote_and_tie_low() {
    // 0.1 < 0.1f32 in f64 but not in f32: the row goes right, as in ONNX.
    let trees = vec![
        stump(0, 0.1f32, 0.0, 1.0),
        stump(1, 2.0, 1.0, 0.0),
        stump(0, 5.0, 1.0, 2.0),
        leaf(2.0),
    ];
    let ir = forest(2, trees, Aggregate::Vote, classes(3));
    let rows = vec![
        vec![0.1, 3.0],
        vec![0.09, 3.0],
        vec![f64::from(0.1f32), 1.0],
        vec![6.0, 3.0],
        vec![6.0, 1.0],
        vec![-1e300, 1e300],
    ];
    check(&ir, &rows, Match::Exact);
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    let out = module.predict(&rows);
    // Votes 1 (0.1 goes right), 0, 1, 2.
    assert_eq!(out[0], vec![1.0, 0.25, 0.5, 0.25]);
    // Votes 0 (0.09 goes left), 0, 1, 2.
    assert_eq!(out[1], vec![0.0, 0.5, 0.25, 0.25]);
    // Votes 1, 0, 2, 2.
    assert_eq!(out[3], vec![2.0, 0.25, 0.25, 0.5]);
    // Votes 1, 1, 2, 2: a tie between classes 1 and 2 goes to 1.
    assert_eq!(out[4], vec![1.0, 0.0, 0.5, 0.5]);
}

#[test]
fn order_keys_compare_as_the_floats_do() {
    let mut values = vec![
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        1.0,
        -1.0,
        0.1,
        -0.1,
    ];
    let mut rng = Rng(5);
    values.extend(
        (0..200)
            .map(|_| f32::from_bits(rng.next() as u32))
            .filter(|v| !v.is_nan()),
    );
    values.extend((0..200).map(|_| rng.number() as f32));
    for &a in &values {
        for &b in &values {
            assert_eq!(
                a < b,
                trees::order_key(a) < trees::order_key(b),
                "{a:e} < {b:e}: keys {} and {}",
                trees::order_key(a),
                trees::order_key(b)
            );
        }
    }
}

#[test]
fn packed_vote_counts_reach_their_field_maximum_without_carrying() {
    // n trees that all vote for `class`: the count is n, the most its field holds when n is
    // 2^width - 1. 16 classes of 4 bits fill the i64 to bit 63; 17 do not fit, so their
    // counters stay in memory (one more function: add_vote).
    for (n_trees, n_classes, class, packed) in [
        (7, 4, 1, true),
        (7, 4, 3, true),
        (15, 16, 15, true),
        (15, 16, 14, true),
        (15, 17, 16, false),
        (1, 64, 63, true),
        (3, 33, 32, false),
    ] {
        let trees = (0..n_trees).map(|_| stump(0, 0.5, class as f64, 0.0)).collect();
        let ir = forest(1, trees, Aggregate::Vote, classes(n_classes));
        let bytes = compile(&ir, b"{}").unwrap();
        let without_add_vote = 11 + 1 + 1;
        assert_eq!(
            count_functions(&bytes),
            without_add_vote + usize::from(!packed),
            "{n_classes} classes"
        );
        let rows = vec![vec![0.0], vec![1.0]];
        check(&ir, &rows, Match::Exact);
        let out = Loaded::new(&bytes).predict(&rows);
        let mut all_for_class = vec![0.0; 1 + n_classes];
        all_for_class[0] = class as f64;
        all_for_class[1 + class] = 1.0;
        assert_eq!(
            out[0], all_for_class,
            "{n_trees} trees, {n_classes} classes, class {class}"
        );
        let mut all_for_0 = vec![0.0; 1 + n_classes];
        all_for_0[1] = 1.0;
        assert_eq!(out[1], all_for_0);
    }
}

#[test]
fn class_weight_sums_are_exact_in_locals_and_in_memory() {
    // Up to MAX_SUMS_IN_LOCALS classes, the sums are passed from group to group; one more and
    // they live in memory (one more function: add_weights). Weights whose f64 sums round.
    for n_classes in [
        trees::MAX_SUMS_IN_LOCALS as usize,
        trees::MAX_SUMS_IN_LOCALS as usize + 1,
    ] {
        let weights = |seed: usize| Node::Weights {
            weights: (0..n_classes).map(|k| 0.1 * ((seed + k) % 7) as f32 + 1e-7).collect(),
        };
        let trees: Vec<Tree> = (0..5)
            .map(|t| Tree {
                nodes: vec![
                    Node::Split {
                        feature: 0,
                        threshold: t as f32,
                        left: 1,
                        right: 2,
                        missing: Default::default(),
                    },
                    weights(t),
                    weights(t + 3),
                ],
            })
            .collect();
        let ir = forest(1, trees, Aggregate::Sum, classes(n_classes));
        let bytes = compile(&ir, b"{}").unwrap();
        let in_memory = n_classes > trees::MAX_SUMS_IN_LOCALS as usize;
        assert_eq!(
            count_functions(&bytes),
            11 + 1 + 1 + usize::from(in_memory),
            "{n_classes} classes"
        );
        let rows: Vec<Vec<f64>> = (0..7).map(|i| vec![i as f64 - 0.5]).collect();
        check(&ir, &rows, Match::Exact);
    }
}

#[test]
fn summing_trees_add_class_weights_in_f64_and_tie_low() {
    // scikit-learn's soft vote: each leaf holds its class shares divided by the number of trees.
    let shares = |a: f32, b: f32, c: f32| Node::Weights {
        weights: vec![a / 2.0, b / 2.0, c / 2.0],
    };
    let split = |feature, threshold| Node::Split {
        feature,
        threshold,
        left: 1,
        right: 2,
        missing: Default::default(),
    };
    let trees = vec![
        Tree {
            nodes: vec![split(0, 0.5), shares(1.0, 0.0, 0.0), shares(0.2, 0.4, 0.4)],
        },
        Tree {
            nodes: vec![split(1, 0.5), shares(0.0, 0.5, 0.5), shares(0.0, 0.0, 1.0)],
        },
    ];
    let ir = forest(2, trees, Aggregate::Sum, classes(3));
    let rows = vec![vec![0.0, 0.0], vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 1.0]];
    check(&ir, &rows, Match::Exact);
    let out = Loaded::new(&compile(&ir, b"{}").unwrap()).predict(&rows);
    let sum = |a: f32, b: f32| f64::from(a) + f64::from(b);
    // Left, left: 0.5 + 0 for class 0, 0 + 0.25 for 1 and 2.
    assert_eq!(out[0], vec![0.0, 0.5, 0.25, 0.25]);
    // Right, left: classes 1 and 2 tie at 0.2 + 0.25; the tie goes to class 1.
    assert_eq!(out[1], vec![1.0, sum(0.1, 0.0), sum(0.2, 0.25), sum(0.2, 0.25)]);
    assert_eq!(out[2], vec![2.0, sum(0.1, 0.0), sum(0.2, 0.0), sum(0.2, 0.5)]);
    // Left, right: classes 0 and 2 tie at 0.5; the tie goes to class 0.
    assert_eq!(out[3], vec![0.0, 0.5, 0.0, 0.5]);

    // Weights that do not fit the classes, or leaves of the wrong kind, are refused.
    for (leaf, expected) in [
        (Node::Weights { weights: vec![1.0] }, "1 class weights for 3 classes"),
        (
            Node::Weights {
                weights: vec![f32::NAN, 0.0, 0.0],
            },
            "not a finite number",
        ),
        (Node::Leaf { value: 0.0 }, "must hold class weights"),
    ] {
        let mut wrong = ir.clone();
        let Body::Trees { trees, .. } = &mut wrong.body else {
            unreachable!()
        };
        trees[0].nodes[1] = leaf;
        let e = compile(&wrong, b"{}").unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn one_leaf_trees_and_an_averaging_forest() {
    let mut ir = forest(
        3,
        vec![
            leaf(1.5),
            stump(2, -0.5, 10.0, 20.0),
            Tree {
                nodes: vec![
                    Node::Split {
                        feature: 0,
                        threshold: 0.1,
                        left: 2,
                        right: 1,
                        missing: Default::default(),
                    },
                    Node::Leaf { value: -3.25 },
                    Node::Split {
                        feature: 1,
                        threshold: 1e30,
                        left: 3,
                        right: 4,
                        missing: Default::default(),
                    },
                    Node::Leaf { value: 1e-3 },
                    Node::Leaf { value: 7.0 },
                ],
            },
        ],
        Aggregate::Average,
        regression(),
    );
    ir.preprocess = vec![Preprocess::Scale {
        center: vec![0.0, 1.0, 2.0],
        scale: vec![1.0, 2.0, 0.25],
    }];
    let rows = vec![
        vec![0.0, 0.0, 0.0],
        vec![0.1, 1e300, 0.0],
        vec![1.0, 3.0, 1.0],
        vec![-0.0, -1e300, 100.0],
    ];
    check(&ir, &rows, Match::Exact);
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    // Scaled: [0, -2, -0.5]; -0.5 is not < -0.5, so the stump gives 20.
    assert_eq!(module.predict(&rows[..1])[0], vec![(1.5 + 20.0 + 1e-3) / 3.0]);
    // A forest of one-leaf trees only: no feature is read, but all are checked.
    let constant = forest(1, vec![leaf(1.0), leaf(0.0), leaf(1.0)], Aggregate::Vote, classes(2));
    check(&constant, &[vec![4.0]], Match::Exact);
    let mut module = Loaded::new(&compile(&constant, b"{}").unwrap());
    assert_eq!(module.predict(&[vec![4.0]])[0], vec![1.0, 1.0 / 3.0, 2.0 / 3.0]);
}

#[test]
fn trees_past_the_budgets_are_outlined_and_still_exact() {
    let mut rng = Rng(11);
    // A full tree of four node budgets, and a chain five times deeper than the nesting limit:
    // split d at 2d, its leaf at 2d + 1, the next split at 2d + 2.
    let full = grow_tree(
        &mut rng,
        5,
        13,
        &[-1.0, 0.0, 0.5, 1.0],
        &|r: &mut Rng| r.below(3) as f64,
        true,
    );
    assert!(full.nodes.len() as u32 > 3 * trees::NODE_BUDGET);
    let depth = 5 * trees::MAX_NESTING + 3;
    let mut chain = Vec::new();
    for d in 0..depth {
        chain.push(Node::Split {
            feature: d % 5,
            threshold: d as f32 * 0.01 - 1.0,
            left: 2 * d + 1,
            right: 2 * d + 2,
            missing: Default::default(),
        });
        chain.push(Node::Leaf {
            value: f64::from(d % 3),
        });
    }
    chain.push(Node::Leaf { value: 1.0 });
    let ir = forest(5, vec![full, Tree { nodes: chain }], Aggregate::Vote, classes(3));
    ir.validate().unwrap();
    let bytes = compile(&ir, b"{}").unwrap();
    // 11 getters, predict and the 2 trees (3 classes' votes are packed: no `add_vote`); the
    // rest are pieces. The full tree: the
    // root's function outlines both halves (8191 nodes each), each half both its quarters (4095),
    // and each quarter keeps its left eighth (2047 nodes, just the budget) and outlines its right
    // one. The chain: one piece per 64 levels.
    let outlined = count_functions(&bytes) - 14;
    assert_eq!(outlined, (2 + 4 + 4) + (depth / trees::MAX_NESTING) as usize);
    let rows: Vec<Vec<f64>> = (0..1000)
        .map(|_| (0..5).map(|_| rng.unit() * 4.0 - 2.0).collect())
        .collect();
    check(&ir, &rows, Match::Exact);
    println!(
        "outlining: {} nodes in {outlined} pieces, {} bytes",
        ir_nodes(&ir),
        bytes.len()
    );
}

// ---------------------------------------------------------------- the ABI

#[test]
fn the_module_speaks_the_abi() {
    let ir = linear(11, Link::Softmax, classes(3), vec![0.5; 33], vec![0.0; 3]);
    let metadata = br#"{"schema_version":1,"name":"wine","features":["a","b"]}"#;
    let bytes = compile(&ir, metadata).unwrap();
    let mut exports = Vec::new();
    let mut manifest = None;
    let mut memory = None;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::ImportSection(_) => panic!("the module has imports"),
            Payload::ExportSection(reader) => {
                exports.extend(reader.into_iter().map(|e| e.unwrap().name.to_owned()));
            }
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                manifest = Some(section.data().to_vec());
            }
            Payload::MemorySection(reader) => {
                let m = reader.into_iter().next().unwrap().unwrap();
                memory = Some((m.initial, m.maximum));
            }
            _ => {}
        }
    }
    assert_eq!(manifest.as_deref(), Some(&metadata[..]), "the manifest round-trips");
    let mut expected: Vec<String> = abi::FUNCTION_EXPORTS.iter().map(|s| s.to_string()).collect();
    expected.push(abi::MEMORY_EXPORT.into());
    exports.sort();
    expected.sort();
    assert_eq!(exports, expected, "exactly the ABI's exports");
    let (initial, maximum) = memory.unwrap();
    assert_eq!(Some(initial), maximum, "the memory has a fixed size");

    let mut module = Loaded::new(&bytes);
    let layout = abi::Layout {
        abi_version: module.get("wasmline_abi_version"),
        n_features: module.get("n_features"),
        n_outputs: module.get("n_outputs"),
        output_stride: module.get("output_stride"),
        max_rows: module.get("max_rows"),
        input_ptr: module.get("input_ptr"),
        output_ptr: module.get("output_ptr"),
        memory_bytes: module.memory.data_size(&module.store) as u64,
    };
    layout.check(11, 3).unwrap();
    assert_eq!((layout.abi_version, layout.max_rows), (super::ABI_VERSION, MAX_ROWS));
    assert_eq!((layout.n_outputs, layout.output_stride), (3, 4));

    // A regressor: one output, one slot.
    let mut regressor =
        Loaded::new(&compile(&linear(2, Link::Identity, regression(), vec![1.0; 2], vec![0.0]), b"").unwrap());
    assert_eq!((regressor.get("n_outputs"), regressor.get("output_stride")), (1, 1));
    // A full batch fills the buffers exactly.
    let rows = vec![vec![1.0, 2.0]; MAX_ROWS as usize];
    assert!(regressor.predict(&rows).iter().all(|r| r == &vec![3.0]));
}

#[test]
fn errors_set_the_status_and_message_and_write_nothing() {
    let ir = forest(4, vec![stump(1, 0.5, 0.0, 1.0)], Aggregate::Vote, classes(2));
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    let (input_ptr, output_ptr) = (module.get("input_ptr"), module.get("output_ptr"));
    let sentinel = vec![-7.0; 3 * 6];
    module.write_f64s(output_ptr, &sentinel);

    for n_rows in [-1, MAX_ROWS + 1, i32::MIN, i32::MAX] {
        assert_eq!(module.call_predict(n_rows), STATUS_BAD_ROW_COUNT, "n_rows {n_rows}");
        assert_eq!(module.last_error(), "n_rows is outside 0..=max_rows");
    }
    assert_eq!(module.read_f64s(output_ptr, sentinel.len()), sentinel);

    for (bad, row, feature) in [(f64::NAN, 3, 2), (f64::INFINITY, 0, 0), (f64::NEG_INFINITY, 5, 3)] {
        let mut rows = vec![vec![0.0, 1.0, 2.0, 3.0]; 6];
        rows[row][feature] = bad;
        module.write_f64s(input_ptr, &rows.concat());
        assert_eq!(module.call_predict(6), STATUS_NON_FINITE, "{bad} at {row}, {feature}");
        assert_eq!(
            (module.get("error_row"), module.get("error_feature")),
            (row as i32, feature as i32)
        );
        assert!(
            module.last_error().contains("NaN or infinite"),
            "{}",
            module.last_error()
        );
        assert_eq!(
            module.read_f64s(output_ptr, sentinel.len()),
            sentinel,
            "no output on error"
        );
        // The rows before the bad one alone are fine.
        assert_eq!(module.call_predict(row as i32), STATUS_OK);
        module.write_f64s(output_ptr, &sentinel);
    }
    assert_eq!(module.call_predict(0), STATUS_OK);
    assert_eq!(
        module.read_f64s(output_ptr, sentinel.len()),
        sentinel,
        "0 rows write nothing"
    );
    assert_eq!(module.predict(&[vec![0.0, 1.0, 2.0, 3.0]]), vec![vec![1.0, 0.0, 1.0]]);
}

#[test]
fn invalid_models_are_refused() {
    let dangling = Tree {
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
    };
    let cycle = Tree {
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
    };
    let cases = [
        (
            forest(2, vec![stump(7, 1.0, 0.0, 1.0)], Aggregate::Vote, classes(2)),
            "feature 7 is out of range",
        ),
        (forest(2, vec![cycle], Aggregate::Vote, classes(2)), "reached twice"),
        (
            forest(2, vec![dangling], Aggregate::Vote, classes(2)),
            "child 9 does not exist",
        ),
        (
            forest(2, vec![stump(0, 1.0, 0.0, 2.0)], Aggregate::Vote, classes(2)),
            "leaf class 2 is not one of the 2",
        ),
        (
            linear(2, Link::Identity, regression(), vec![f64::NAN, 1.0], vec![0.0]),
            "not a finite number",
        ),
        (
            linear(2, Link::Softmax, classes(3), vec![1.0; 4], vec![0.0; 2]),
            "2 linear outputs, expected 3",
        ),
        (forest(2, vec![], Aggregate::Average, regression()), "no trees"),
    ];
    for (ir, expected) in cases {
        let err = compile(&ir, b"{}").unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should contain {expected:?}");
    }
    // Buffers for 300 000 features do not fit in the memory a module may take.
    let wide = linear(300_000, Link::Identity, regression(), vec![0.0; 300_000], vec![0.0]);
    let err = layout::Layout::new(&wide).unwrap_err().to_string();
    assert!(err.contains("over the 2147483648 a module may use"), "{err}");
}

// ---------------------------------------------------------------- random models

/// SplitMix64: a small seeded generator, so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A number of mixed magnitude, sometimes exactly 0 or 1.
    fn number(&mut self) -> f64 {
        match self.below(10) {
            0 => 0.0,
            1 => 1.0,
            2 => (self.unit() - 0.5) * 1e4,
            3 => (self.unit() - 0.5) * 1e-3,
            _ => (self.unit() - 0.5) * 6.0,
        }
    }
}

fn random_scaling(rng: &mut Rng, n: usize) -> Vec<Preprocess> {
    (0..rng.below(3))
        .map(|_| Preprocess::Scale {
            center: (0..n).map(|_| rng.number()).collect(),
            scale: (0..n)
                .map(|_| if rng.chance(0.2) { 1.0 } else { rng.unit() * 4.0 + 0.01 })
                .collect(),
        })
        .collect()
}

fn random_linear(rng: &mut Rng) -> ModelIr {
    let n = 1 + rng.below(12);
    let (link, output, k) = match rng.below(3) {
        0 => (Link::Identity, regression(), 1),
        1 => (Link::Sigmoid, classes(2), 1),
        _ => {
            let k = 2 + rng.below(5);
            (Link::Softmax, classes(k), k)
        }
    };
    let mut ir = linear(
        n,
        link,
        output,
        (0..n * k).map(|_| rng.number()).collect(),
        (0..k).map(|_| rng.number()).collect(),
    );
    ir.preprocess = random_scaling(rng, n);
    ir
}

/// A tree grown depth-first (the root at 0, as the IR requires) to `depth` levels of splits:
/// all of them when `full`, else stopping at random.
fn grow_tree(
    rng: &mut Rng,
    n: usize,
    depth: usize,
    thresholds: &[f32],
    leaf: &dyn Fn(&mut Rng) -> f64,
    full: bool,
) -> Tree {
    let mut nodes = Vec::new();
    Grower {
        n,
        thresholds,
        leaf,
        full,
    }
    .grow(&mut nodes, rng, depth);
    Tree { nodes }
}

/// The settings of [`grow_tree`].
struct Grower<'a> {
    n: usize,
    thresholds: &'a [f32],
    leaf: &'a dyn Fn(&mut Rng) -> f64,
    full: bool,
}

impl Grower<'_> {
    /// Appends a subtree; its root's index.
    fn grow(&self, nodes: &mut Vec<Node>, rng: &mut Rng, depth: usize) -> u32 {
        let index = nodes.len() as u32;
        if depth == 0 || (!self.full && rng.chance(0.25)) {
            nodes.push(Node::Leaf {
                value: (self.leaf)(rng),
            });
            return index;
        }
        nodes.push(Node::Leaf { value: 0.0 });
        let (feature, threshold) = (rng.below(self.n) as u32, rng.pick(self.thresholds));
        let left = self.grow(nodes, rng, depth - 1);
        let right = self.grow(nodes, rng, depth - 1);
        nodes[index as usize] = Node::Split {
            feature,
            threshold,
            left,
            right,
            missing: Default::default(),
        };
        index
    }
}

fn random_forest(rng: &mut Rng) -> ModelIr {
    let n = 1 + rng.below(10);
    let mut thresholds: Vec<f32> = vec![0.1, -0.1, 0.0, 1.5, -2.25, 1e30, -1e-30, f32::MAX];
    thresholds.extend((0..8).map(|_| rng.number() as f32));
    let (aggregate, output, k) = match rng.below(3) {
        0 => {
            // Sometimes too many classes for the counts to be packed into one i64.
            let k = if rng.chance(0.25) {
                20 + rng.below(20)
            } else {
                2 + rng.below(4)
            };
            (Aggregate::Vote, classes(k), k)
        }
        1 => {
            // Sometimes too many classes for their sums to be kept in locals.
            let k = if rng.chance(0.25) {
                trees::MAX_SUMS_IN_LOCALS as usize + 1 + rng.below(4)
            } else {
                2 + rng.below(4)
            };
            (Aggregate::Sum, classes(k), k)
        }
        _ => (Aggregate::Average, regression(), 0),
    };
    let leaf = move |r: &mut Rng| if k > 0 { r.below(k) as f64 } else { r.number() };
    let trees = (0..1 + rng.below(8))
        .map(|_| {
            let depth = rng.below(9);
            let mut tree = grow_tree(rng, n, depth, &thresholds, &leaf, false);
            if aggregate == Aggregate::Sum {
                // Class shares as a forest stores them, ties included, and some odd weights.
                for node in &mut tree.nodes {
                    if let Node::Leaf { .. } = node {
                        let weights = (0..k)
                            .map(|_| rng.pick(&[0.0, 0.25, 0.5, 1.0 / 3.0, 0.1, 1.0, -0.75, 1e-7]))
                            .collect();
                        *node = Node::Weights { weights };
                    }
                }
            }
            tree
        })
        .collect();
    let mut ir = forest(n, trees, aggregate, output);
    if rng.chance(0.3) {
        ir.preprocess = random_scaling(rng, n);
    }
    ir
}

/// Rows that probe the model: values exactly at its thresholds and next to them (in f64 and in
/// f32), zeros of both signs, ordinary values and huge magnitudes.
fn random_rows(rng: &mut Rng, ir: &ModelIr, n_rows: usize) -> Vec<Vec<f64>> {
    let mut thresholds: Vec<f32> = Vec::new();
    if let Body::Trees { trees, .. } = &ir.body {
        for node in trees.iter().flat_map(|t| &t.nodes) {
            if let Node::Split { threshold, .. } = node {
                thresholds.push(*threshold);
            }
        }
    }
    (0..n_rows)
        .map(|_| {
            (0..ir.n_features())
                .map(|_| match rng.below(12) {
                    0 => rng.pick(&[0.0, -0.0]),
                    1 => rng.pick(&[1e300, -1e300, 1e30, -1e30, f64::MAX, -f64::MIN_POSITIVE]),
                    2..=5 if !thresholds.is_empty() => {
                        let t = rng.pick(&thresholds);
                        let near = match rng.below(5) {
                            0 => f64::from(t).next_up(),
                            1 => f64::from(t).next_down(),
                            2 => f64::from(t.next_up()),
                            3 => f64::from(t.next_down()),
                            _ => f64::from(t),
                        };
                        // Past f32::MAX is infinity in f32.
                        if near.is_finite() { near } else { f64::from(t) }
                    }
                    _ => rng.number(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn random_linear_models_match_the_evaluator() {
    let mut rng = Rng(2024);
    let mut worst = 0f64;
    for _ in 0..150 {
        let ir = random_linear(&mut rng);
        ir.validate().unwrap();
        let rows = random_rows(&mut rng, &ir, 40);
        let how = match ir.body {
            Body::Linear {
                link: Link::Identity, ..
            } => Match::Exact,
            _ => Match::Close,
        };
        worst = worst.max(check(&ir, &rows, how));
    }
    println!("random linear models: worst scaled difference {worst:e}");
}

#[test]
fn random_forests_match_the_evaluator_to_the_bit() {
    let mut rng = Rng(4048);
    for _ in 0..200 {
        let ir = random_forest(&mut rng);
        ir.validate().unwrap();
        let rows = random_rows(&mut rng, &ir, 40);
        check(&ir, &rows, Match::Exact);
    }
}

#[test]
fn large_forests_match_the_evaluator_to_the_bit() {
    // Past the first two sizes of BRANCH_FREE_NODES, so subtrees of up to 15 and 31 nodes are
    // written without branches, and past one function's node budget, so the trees are split
    // into groups.
    let mut rng = Rng(77);
    let thresholds: Vec<f32> = (0..16).map(|_| rng.number() as f32).collect();
    for (aggregate, k, n_trees, limit) in [
        (Aggregate::Vote, 2, 12, 15),
        (Aggregate::Vote, 2, 34, 31),
        (Aggregate::Vote, 4, 12, 15),
        (Aggregate::Vote, 4, 34, 31),
        (Aggregate::Sum, 3, 12, 15),
        (Aggregate::Sum, 3, 34, 31),
        (Aggregate::Average, 0, 12, 15),
        (Aggregate::Average, 0, 34, 31),
    ] {
        let leaf = move |r: &mut Rng| if k > 0 { r.below(k) as f64 } else { r.number() };
        let trees: Vec<Tree> = (0..n_trees)
            .map(|_| {
                let mut tree = grow_tree(&mut rng, 6, 8, &thresholds, &leaf, true);
                if aggregate == Aggregate::Sum {
                    for node in &mut tree.nodes {
                        if let Node::Leaf { .. } = node {
                            let weights = (0..k).map(|_| rng.pick(&[0.0, 0.25, 1.0 / 3.0, 0.1, 1.0])).collect();
                            *node = Node::Weights { weights };
                        }
                    }
                }
                tree
            })
            .collect();
        let output = if k > 0 { classes(k) } else { regression() };
        let ir = forest(6, trees, aggregate, output);
        ir.validate().unwrap();
        assert!(ir_nodes(&ir) > trees::NODE_BUDGET as usize);
        assert_eq!(trees::branch_free_limit(ir_nodes(&ir)), limit);
        let rows = random_rows(&mut rng, &ir, 300);
        check(&ir, &rows, Match::Exact);
    }
}

// ---------------------------------------------------------------- sizes

fn count_functions(bytes: &[u8]) -> usize {
    Parser::new(0)
        .parse_all(bytes)
        .find_map(|p| match p.unwrap() {
            Payload::FunctionSection(reader) => Some(reader.count() as usize),
            _ => None,
        })
        .unwrap_or(0)
}

fn ir_nodes(ir: &ModelIr) -> usize {
    ir.trees().iter().map(|t| t.nodes.len()).sum()
}

/// Size in bytes (without metadata) and time per row in wasmtime (the best of 30 full batches of
/// random rows, whose splits a branch predictor cannot guess).
/// Compiles `ir`, checks a full batch against the evaluator, and returns the module's size
/// (speed is measured by `scripts/bench-infer`, not here).
fn measure(ir: &ModelIr, rng: &mut Rng) -> usize {
    let bytes = compile(ir, b"").unwrap();
    let mut module = Loaded::new(&bytes);
    let rows: Vec<Vec<f64>> = (0..MAX_ROWS)
        .map(|_| (0..ir.n_features()).map(|_| rng.number()).collect())
        .collect();
    let outputs = module.predict(&rows);
    for (row, got) in rows.iter().zip(&outputs) {
        assert_matches(ir, row, got, Match::Close);
    }
    bytes.len()
}

/// Bytes per section, and the bodies of the code section.
fn breakdown(bytes: &[u8]) -> String {
    let names = [
        "custom", "type", "import", "function", "table", "memory", "global", "export",
    ];
    let names = names.iter().chain(&["start", "element", "code", "data"]);
    let mut parts = Vec::new();
    let mut bodies = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.unwrap();
        if let Payload::CodeSectionEntry(body) = &payload {
            let range = body.range();
            bodies.push(range.end - range.start);
        } else if let Some((id, range)) = payload.as_section() {
            parts.push(format!(
                "{} {}",
                names.clone().nth(id.into()).unwrap_or(&"?"),
                range.end - range.start
            ));
        }
    }
    format!("{} (+ headers); function bodies {bodies:?}", parts.join(", "))
}

/// Prints the sizes to quote (`cargo test -p model-wasm module_sizes -- --nocapture`).
#[test]
fn module_sizes() {
    let mut rng = Rng(99);
    let n = 11;
    let scaled = |mut ir: ModelIr, rng: &mut Rng| {
        ir.preprocess = vec![Preprocess::Scale {
            center: (0..n).map(|_| rng.number()).collect(),
            scale: (0..n).map(|_| rng.unit() + 0.5).collect(),
        }];
        ir
    };
    let weights = |rng: &mut Rng, k: usize| (0..n * k).map(|_| rng.unit() - 0.5).collect::<Vec<_>>();
    let w1 = weights(&mut rng, 1);
    let w3 = weights(&mut rng, 3);
    let forest_of = |rng: &mut Rng, count: usize, depth: usize, aggregate: Aggregate| {
        let (output, k) = match aggregate {
            Aggregate::Vote => (classes(2), 2),
            Aggregate::Average => (regression(), 0),
            Aggregate::Sum => unreachable!("sizes are measured on votes and averages"),
        };
        let thresholds: Vec<f32> = (0..64).map(|_| rng.number() as f32).collect();
        let leaf = move |r: &mut Rng| if k > 0 { r.below(k) as f64 } else { r.number() };
        let trees = (0..count)
            .map(|_| grow_tree(rng, n, depth, &thresholds, &leaf, true))
            .collect();
        forest(n, trees, aggregate, output)
    };
    let models = vec![
        (
            "11-feature linear regression",
            linear(n, Link::Identity, regression(), w1.clone(), vec![0.1]),
        ),
        (
            "11-feature linear regression, scaled",
            scaled(linear(n, Link::Identity, regression(), w1.clone(), vec![0.1]), &mut rng),
        ),
        (
            "11-feature logistic regression, scaled",
            scaled(linear(n, Link::Sigmoid, classes(2), w1, vec![0.1]), &mut rng),
        ),
        (
            "11-feature softmax, 3 classes, scaled",
            scaled(linear(n, Link::Softmax, classes(3), w3, vec![0.1; 3]), &mut rng),
        ),
        ("20 trees of depth 6, vote", forest_of(&mut rng, 20, 6, Aggregate::Vote)),
        (
            "20 trees of depth 6, average",
            forest_of(&mut rng, 20, 6, Aggregate::Average),
        ),
        (
            "100 trees of depth 8, vote",
            forest_of(&mut rng, 100, 8, Aggregate::Vote),
        ),
    ];
    println!(
        "11-feature linear regression: {}",
        breakdown(&compile(&models[0].1, b"").unwrap())
    );
    println!("{:<42} {:>10} {:>10}", "model", "nodes", "bytes");
    for (name, ir) in models {
        let bytes = measure(&ir, &mut rng);
        println!("{name:<42} {:>10} {bytes:>10}", ir_nodes(&ir));
    }
}

#[test]
fn the_first_non_finite_value_in_row_major_order_is_reported_with_few_or_many_features() {
    // 4 features: the check is written out per value; 70: a loop over the values.
    for n in [4, 70] {
        let ir = forest(n, vec![stump(1, 0.5, 0.0, 1.0)], Aggregate::Vote, classes(2));
        let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
        let input_ptr = module.get("input_ptr");
        let mut rows = vec![vec![1.0; n]; 5];
        rows[2][n - 1] = f64::NAN;
        rows[2][n - 2] = f64::NEG_INFINITY;
        rows[4][0] = f64::INFINITY;
        module.write_f64s(input_ptr, &rows.concat());
        assert_eq!(module.call_predict(5), STATUS_NON_FINITE, "{n} features");
        assert_eq!(
            (module.get("error_row"), module.get("error_feature")),
            (2, n as i32 - 2),
            "{n} features"
        );
        assert_eq!(module.call_predict(2), STATUS_OK, "{n} features: the rows before");
        rows[2] = vec![-0.0; n];
        rows[4][0] = 1e308;
        module.write_f64s(input_ptr, &rows.concat());
        assert_eq!(
            module.call_predict(5),
            STATUS_OK,
            "{n} features: -0 and large values are finite"
        );
    }
}

// ---------------------------------------------------------------- missing values, f64 and categorical splits, boosted sums

/// A random split node of the ensemble's kind: `f32` (`Split`) or `f64` (`SplitLe`) numerical
/// splits, or a category set of either cast, with any missing rule its kind takes.
fn random_split(rng: &mut Rng, n: usize, wide: bool, thresholds: &[f64], left: u32, right: u32) -> Node {
    let feature = rng.below(n) as u32;
    let numeric_missing = [
        Missing::Refuse,
        Missing::Left,
        Missing::Right,
        Missing::AsZero,
        Missing::ZeroLeft,
        Missing::ZeroRight,
    ];
    if rng.chance(0.25) {
        // Small sets fit a constant; others need a bitset in memory.
        let largest = rng.pick(&[3u32, 31, 32, 40, 200]);
        let mut categories: Vec<u32> = (0..=largest).filter(|_| rng.chance(0.4)).collect();
        if categories.last() != Some(&largest) {
            categories.push(largest);
        }
        return Node::SplitIn {
            feature,
            categories,
            cast: rng.pick(&[Cast::F32, Cast::F64, Cast::Exact]),
            left,
            right,
            missing: rng.pick(&[Missing::Refuse, Missing::Left, Missing::Right, Missing::AsZero]),
        };
    }
    let missing = rng.pick(&numeric_missing);
    let threshold = rng.pick(thresholds);
    if wide {
        Node::SplitLe {
            feature,
            threshold,
            left,
            right,
            missing,
        }
    } else {
        Node::Split {
            feature,
            threshold: threshold as f32,
            left,
            right,
            missing,
        }
    }
}

fn random_routing_tree(
    rng: &mut Rng,
    n: usize,
    wide: bool,
    thresholds: &[f64],
    leaf: &dyn Fn(&mut Rng) -> f64,
) -> Tree {
    fn grow(
        nodes: &mut Vec<Node>,
        rng: &mut Rng,
        depth: usize,
        split: &mut dyn FnMut(&mut Rng, u32, u32) -> Node,
        leaf: &dyn Fn(&mut Rng) -> f64,
    ) -> u32 {
        let index = nodes.len() as u32;
        nodes.push(Node::Leaf { value: leaf(rng) });
        if depth == 0 || rng.chance(0.2) {
            return index;
        }
        let left = grow(nodes, rng, depth - 1, split, leaf);
        let right = grow(nodes, rng, depth - 1, split, leaf);
        nodes[index as usize] = split(rng, left, right);
        index
    }
    let mut nodes = Vec::new();
    let depth = rng.below(8);
    grow(
        &mut nodes,
        rng,
        depth,
        &mut |rng, left, right| random_split(rng, n, wide, thresholds, left, right),
        leaf,
    );
    Tree { nodes }
}

/// A random tree model with missing rules, category sets and `f32` or `f64` splits: a vote, a
/// sum of class weights, an average, or a boosted sum with any link.
fn random_routing_model(rng: &mut Rng) -> ModelIr {
    let n = 1 + rng.below(6);
    let wide = rng.chance(0.5);
    let mut thresholds = vec![0.0, 0.5, -0.5, 1.0, 1e-36, -1e-36, 2.0, 31.5, 1e30];
    thresholds.extend((0..6).map(|_| rng.number()));
    let most = if rng.chance(0.2) { 300 } else { 12 };
    let n_trees = 1 + rng.below(most);
    let (body, output) = match rng.below(4) {
        0 => {
            let k = 2 + rng.below(3);
            let trees = (0..n_trees)
                .map(|_| random_routing_tree(rng, n, wide, &thresholds, &|r: &mut Rng| r.below(k) as f64))
                .collect();
            (
                Body::Trees {
                    trees,
                    aggregate: Aggregate::Vote,
                },
                classes(k),
            )
        }
        1 => {
            let trees = (0..n_trees)
                .map(|_| random_routing_tree(rng, n, wide, &thresholds, &|r: &mut Rng| r.number()))
                .collect();
            (
                Body::Trees {
                    trees,
                    aggregate: Aggregate::Average,
                },
                regression(),
            )
        }
        _ => {
            let (link, output, k) = match rng.below(5) {
                0 => (Link::Identity, regression(), 1),
                1 => (Link::Exp, regression(), 1),
                2 => (Link::Sigmoid, regression(), 1),
                3 => (Link::Sigmoid, classes(2), 1),
                _ => {
                    let most = if rng.chance(0.2) { 20 } else { 4 };
                    let k = 3 + rng.below(most);
                    (Link::Softmax, classes(k), k)
                }
            };
            let trees = (0..n_trees)
                .map(|_| random_routing_tree(rng, n, wide, &thresholds, &|r: &mut Rng| r.number() * 0.01))
                .collect();
            (
                Body::Boosted {
                    trees,
                    tree_outputs: (0..n_trees).map(|t| (t % k) as u32).collect(),
                    base_score: (0..k).map(|_| rng.number() * 0.1).collect(),
                    link,
                },
                output,
            )
        }
    };
    ModelIr {
        ir_version: IR_VERSION,
        features: features(n),
        preprocess: vec![],
        body,
        output,
    }
}

/// Rows that probe missing rules and category sets: NaN where the model accepts it, zeros and
/// values within LightGBM's zero threshold, thresholds and their neighbours in `f64` and `f32`,
/// category values, fractions, negatives and values past the largest category.
fn routing_rows(rng: &mut Rng, ir: &ModelIr, n_rows: usize) -> Vec<Vec<f64>> {
    let accepts = ir.accepts_missing();
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
    (0..n_rows)
        .map(|_| {
            (0..ir.n_features())
                .map(|i| match rng.below(14) {
                    0 if accepts[i] => f64::NAN,
                    1 => rng.pick(&[0.0, -0.0, 1e-36, -1e-36, 1e-35f32 as f64, 1e-34]),
                    2..=5 if !thresholds.is_empty() => {
                        let t = rng.pick(&thresholds);
                        match rng.below(5) {
                            0 => t.next_up(),
                            1 => t.next_down(),
                            2 => f64::from((t as f32).next_up()),
                            3 => f64::from((t as f32).next_down()),
                            _ => t,
                        }
                    }
                    6..=8 => rng.below(45) as f64,
                    9 => rng.pick(&[
                        -0.5, -1.0, -0.99, 31.999, 32.0, 200.0, 201.0, 16777216.0, 3e9, -3e9, 1e300,
                    ]),
                    _ => rng.number(),
                })
                .map(|v: f64| if v.is_infinite() { 0.0 } else { v })
                .collect()
        })
        .collect()
}

#[test]
fn missing_values_category_sets_and_boosted_sums_match_the_evaluator() {
    let mut rng = Rng(7331);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let ir = random_routing_model(&mut rng);
        ir.validate().unwrap();
        let bytes = compile(&ir, b"{}").unwrap();
        validate(&bytes);
        let rows = routing_rows(&mut rng, &ir, 60);
        let exact = match &ir.body {
            Body::Boosted { link, .. } => *link == Link::Identity,
            _ => true,
        };
        kinds.insert(format!("{:?}", std::mem::discriminant(&ir.body)));
        check(&ir, &rows, if exact { Match::Exact } else { Match::Close });
    }
    assert_eq!(kinds.len(), 2, "trees and boosted bodies were both drawn");
}

#[test]
fn a_missing_value_is_refused_where_no_split_routes_it() {
    // Feature a routes a missing value left; feature b refuses it (and so does a linear model).
    let tree = Tree {
        nodes: vec![
            Node::Split {
                feature: 0,
                threshold: 1.0,
                left: 1,
                right: 2,
                missing: Missing::Left,
            },
            Node::Leaf { value: 0.25 },
            Node::Split {
                feature: 1,
                threshold: 1.0,
                left: 3,
                right: 4,
                missing: Missing::Refuse,
            },
            Node::Leaf { value: 0.5 },
            Node::Leaf { value: 0.75 },
        ],
    };
    let ir = ModelIr {
        ir_version: IR_VERSION,
        features: features(3),
        preprocess: vec![],
        body: Body::Boosted {
            trees: vec![tree],
            tree_outputs: vec![0],
            base_score: vec![1.0],
            link: Link::Identity,
        },
        output: regression(),
    };
    assert_eq!(ir.accepts_missing(), vec![true, false, true]);
    let mut module = Loaded::new(&compile(&ir, b"{}").unwrap());
    assert_eq!(module.predict(&[vec![f64::NAN, 5.0, f64::NAN]]), vec![vec![1.25]]);
    assert_eq!(ir.predict(&[f64::NAN, 5.0, f64::NAN]).unwrap(), Prediction::Value(1.25));
    let input_ptr = module.get("input_ptr");
    for (row, feature) in [(vec![2.0, f64::NAN, 0.0], 1), (vec![f64::INFINITY, 0.0, 0.0], 0)] {
        module.write_f64s(input_ptr, &row);
        assert_eq!(module.call_predict(1), STATUS_NON_FINITE);
        assert_eq!(module.get("error_feature"), feature);
        assert_eq!(
            ir.predict(&row).unwrap_err().to_string().split(':').next().unwrap(),
            format!("feature '{}'", ir.features[feature as usize])
        );
    }
}
