//! Times the host on hand-written ABI modules and prints a table:
//! `cargo run --release -p edge-runtime --example bench`.
//!
//! Informational: the numbers depend on the machine and its load.

#[path = "../tests/all/fixtures.rs"]
mod fixtures;

use std::hint::black_box;
use std::time::{Duration, Instant};

use edge_runtime::{Lease, ModelModule, ModuleLimits, QueueLimits, Runtime, RuntimeConfig};
use model_wasm::{Aggregate, Body, IR_VERSION, Link, ModelIr, Node, Output, Tree};

fn ir(n_features: usize, body: Body, output: Output) -> ModelIr {
    ModelIr {
        ir_version: IR_VERSION,
        features: (0..n_features).map(|i| format!("f{i}")).collect(),
        preprocess: vec![],
        body,
        output,
    }
}

/// A linear regression compiled by `model_wasm::codegen`.
fn generated_linear(weights: &[f64]) -> Vec<u8> {
    let body = Body::Linear {
        weights: weights.to_vec(),
        intercepts: vec![0.5],
        link: Link::Identity,
    };
    let output = Output::Regression { target: "y".into() };
    model_wasm::codegen::compile(&ir(weights.len(), body, output), b"{}").expect("compiles")
}

/// A random-forest-shaped classifier: `n_trees` full trees of `depth`, voting for `n_classes`.
fn generated_forest(n_features: usize, n_trees: usize, depth: u32, n_classes: usize) -> Vec<u8> {
    fn grow(nodes: &mut Vec<Node>, n_features: usize, n_classes: usize, depth: u32, seed: usize) -> u32 {
        let index = nodes.len();
        nodes.push(Node::Leaf {
            value: (seed % n_classes) as f64,
        });
        if depth > 0 {
            let left = grow(nodes, n_features, n_classes, depth - 1, seed * 2 + 1);
            let right = grow(nodes, n_features, n_classes, depth - 1, seed * 2 + 2);
            nodes[index] = Node::Split {
                feature: (seed % n_features) as u32,
                threshold: 1.0 + (seed % 7) as f32,
                left,
                right,
                missing: Default::default(),
            };
        }
        index as u32
    }
    let trees = (0..n_trees)
        .map(|t| {
            let mut nodes = Vec::new();
            grow(&mut nodes, n_features, n_classes, depth, t);
            Tree { nodes }
        })
        .collect();
    let body = Body::Trees {
        trees,
        aggregate: Aggregate::Vote,
    };
    let output = Output::Classification {
        classes: (0..n_classes).map(|k| format!("class {k}")).collect(),
    };
    model_wasm::codegen::compile(&ir(n_features, body, output), b"{}").expect("compiles")
}

/// An instance of `module` as a server takes one: [`ModelModule::lease`], which does not wait
/// while an instance is idle (polled once, no async runtime needed).
fn lease_now(module: &ModelModule) -> Lease {
    let lease = std::pin::pin!(module.lease(QueueLimits::default()));
    match lease.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(lease) => lease.expect("an instance"),
        std::task::Poll::Pending => panic!("no idle instance"),
    }
}

/// Mean time per iteration of `f`, over about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut iterations = 0u32;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        iterations += 16;
    }
    start.elapsed() / iterations
}

fn main() {
    let budget = Duration::from_millis(300);
    let runtime = Runtime::new(RuntimeConfig::default()).expect("engine");
    let weights: Vec<f64> = (0..11).map(|i| 0.1 * i as f64 - 0.4).collect();
    let models = [
        ("WAT linear, 11 features", fixtures::linear(&weights, 0.5).wasm(), 11),
        ("WAT argmax, 3 classes", fixtures::argmax(3).wasm(), 3),
        ("codegen linear, 11 features", generated_linear(&weights), 11),
        ("codegen forest, 20 trees depth 6", generated_forest(11, 20, 6, 2), 11),
        (
            "codegen forest, 20 trees depth 6, 5 classes",
            generated_forest(11, 20, 6, 5),
            11,
        ),
    ];

    println!("| model | step | time |");
    println!("|---|---|---|");
    for (name, wasm, n_features) in &models {
        let load_start = Instant::now();
        let module = ModelModule::load(&runtime, wasm, ModuleLimits::default()).expect("load");
        let load = load_start.elapsed();
        let fresh = ModelModule::load(
            &runtime,
            wasm,
            ModuleLimits {
                idle_instances: 0,
                ..ModuleLimits::default()
            },
        )
        .expect("load");
        println!("| {name} | module size | {} bytes |", wasm.len());
        println!("| {name} | compile (Cranelift) | {:?} |", module.compile_time());
        println!("| {name} | load (compile + checks + first instance) | {load:?} |");

        let row: Vec<f64> = (0..*n_features).map(|i| 1.0 + i as f64).collect();
        let one = [row.clone()];
        let batch: Vec<Vec<f64>> = (0..1000).map(|_| row.clone()).collect();
        let flat: Vec<f64> = batch.concat();
        let mut outputs = Vec::new();

        let t = time(budget, || {
            black_box(fresh.predict(black_box(&one)).unwrap());
        });
        println!("| {name} | batch 1, fresh instance per call | {t:?} |");
        let t = time(budget, || {
            black_box(module.predict(black_box(&one)).unwrap());
        });
        println!("| {name} | batch 1, reused instance, predict | {t:?} |");
        let t = time(budget, || {
            module.predict_flat(black_box(&row), &mut outputs).unwrap();
        });
        println!("| {name} | batch 1, reused instance, predict_flat | {t:?} |");
        let t = time(budget, || {
            let lease = lease_now(&module);
            module.predict_flat_on(lease, black_box(&row), &mut outputs).unwrap();
        });
        println!("| {name} | batch 1, lease + predict_flat_on (the server's path) | {t:?} |");
        let t = time(budget, || {
            black_box(module.predict(black_box(&batch)).unwrap());
        });
        println!("| {name} | batch 1000, predict, per row | {:?} |", t / 1000);
        let t = time(budget, || {
            module.predict_flat(black_box(&flat), &mut outputs).unwrap();
        });
        println!("| {name} | batch 1000, predict_flat, per row | {:?} |", t / 1000);
    }
}
