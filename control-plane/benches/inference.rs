//! Inference benchmark (a bench binary): for each model, the generated module's size, wasmtime's
//! compile + instantiate time, and per-row prediction times at batch 1 and 1000 in wasmtime and
//! in native tract on the same ONNX file. The models: every model registered in STORE (version 1,
//! as the bundled pipelines made it), then [`MODELS`], trained here. Writes each model's `.onnx`,
//! `.wasm` and 1000 test rows into OUT_DIR for `scripts/bench-infer` (which adds onnxruntime and
//! gzip sizes) and prints one JSON object per model.
//!
//! Usage: `cargo bench -p control-plane --bench inference -- STORE OUT_DIR`

use std::path::Path;
use std::time::{Duration, Instant};

use edge_runtime::{ModelModule, ModuleLimits, Runtime, RuntimeConfig};
use model_wasm::{Body, ModelIr};
use tract_onnx::prelude::*;
use wasmline::{Family, LocalStore, ModelSpec, TrainData, load_dataset};

/// (name, dataset, family, grid)
const MODELS: &[(&str, &str, Family, &str)] = &[
    (
        "wine-logistic",
        "winequality-red",
        Family::LogisticRegression,
        "alpha = [1.0]",
    ),
    (
        "wine-tree-d6",
        "winequality-red",
        Family::DecisionTree,
        "max_depth = [6]",
    ),
    (
        "wine-forest-20x6",
        "winequality-red",
        Family::RandomForest,
        "n_trees = [20]\nmax_depth = [6]",
    ),
    (
        "wine-forest-100x8",
        "winequality-red",
        Family::RandomForest,
        "n_trees = [100]\nmax_depth = [8]",
    ),
    ("diabetes-linear", "diabetes", Family::LinearRegression, ""),
];

/// Median time of one call of `f` over `samples` runs of `calls` calls each: calls that take tens
/// of nanoseconds are timed in groups, so reading the clock is not counted as part of them.
fn median_per_call(samples: usize, calls: u32, mut f: impl FnMut()) -> Duration {
    median(samples, || {
        for _ in 0..calls {
            f();
        }
    }) / calls
}

/// Median time of `f`, run `repeats` times.
fn median(repeats: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..repeats)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn rows_of(test: &TrainData, n: usize) -> Vec<Vec<f64>> {
    let rows = test.row_vecs();
    (0..n).map(|i| rows[i % rows.len()].clone()).collect()
}

/// One model to measure: its IR's ONNX file and module, and test rows.
struct Case {
    name: String,
    n_features: usize,
    onnx: Vec<u8>,
    wasm: Vec<u8>,
    rows: Vec<Vec<f64>>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [store, out] = args.as_slice() else {
        anyhow::bail!("usage: inference STORE OUT_DIR");
    };
    let out = Path::new(out);
    let tokio = tokio::runtime::Runtime::new()?;
    let store = LocalStore::open(store)?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    // The bundled pipelines' registered models, as `pipeline run` made them (their own .wasm).
    for name in tokio.block_on(wasmline::list_models(&store))? {
        let manifest = tokio.block_on(wasmline::load_version(&store, &name, 1))?;
        let artifact = |file: &str| -> anyhow::Result<Vec<u8>> {
            Ok(tokio
                .block_on(wasmline::load_artifact(&store, &manifest, file))?
                .to_vec())
        };
        let ir: ModelIr = serde_json::from_slice(&artifact(wasmline::IR_ARTIFACT)?)?;
        let dataset = tokio.block_on(load_dataset(
            &store,
            &manifest.dataset.name,
            Some(manifest.dataset.version),
        ))?;
        let (_, test_data) = tokio.block_on(dataset.train_data(&store))?;
        let case = Case {
            name: format!("bundled-{name}"),
            n_features: ir.n_features(),
            onnx: artifact("model.onnx")?,
            wasm: artifact("model.wasm")?,
            rows: rows_of(&test_data, 1000),
        };
        measure(&runtime, &case, &format!("{} {}", manifest.family, describe(&ir)), out)?;
    }
    for (name, dataset, family, grid) in MODELS {
        let record = tokio.block_on(load_dataset(&store, dataset, None))?;
        let (train_data, test_data) = tokio.block_on(record.train_data(&store))?;
        let spec = ModelSpec {
            family: *family,
            grid: toml::from_str(grid)?,
        };
        let candidate = wasmline::candidates(&spec).map_err(anyhow::Error::msg)?.remove(0);
        let ir = wasmline::fit(&candidate, &train_data, 42)?.ir;
        let case = Case {
            name: (*name).to_owned(),
            n_features: ir.n_features(),
            onnx: wasmline::to_onnx(&ir, name)?,
            wasm: model_wasm::codegen::compile(&ir, b"{}")?,
            rows: rows_of(&test_data, 1000),
        };
        measure(&runtime, &case, &describe(&ir), out)?;
    }
    Ok(())
}

/// "100 trees, depth 12, 9,861 nodes" or "11 features".
fn describe(ir: &ModelIr) -> String {
    match &ir.body {
        Body::Trees { trees, .. } | Body::Boosted { trees, .. } => {
            fn depth(tree: &model_wasm::Tree, node: usize) -> usize {
                match tree.nodes[node].children() {
                    Some((left, right)) => 1 + depth(tree, left as usize).max(depth(tree, right as usize)),
                    None => 0,
                }
            }
            let nodes: usize = trees.iter().map(|t| t.nodes.len()).sum();
            let deepest = trees.iter().map(|t| depth(t, 0)).max().unwrap_or(0);
            format!("{} trees, depth {deepest}, {nodes} nodes", trees.len())
        }
        Body::Linear { .. } => format!("{} features", ir.n_features()),
    }
}

/// Times `case` in wasmtime and tract, writes its files into `out` for onnxruntime and prints
/// one JSON line.
fn measure(runtime: &Runtime, case: &Case, description: &str, out: &Path) -> anyhow::Result<()> {
    let Case {
        name,
        n_features,
        onnx,
        wasm,
        rows,
    } = case;
    std::fs::write(out.join(format!("{name}.onnx")), onnx)?;
    std::fs::write(out.join(format!("{name}.wasm")), wasm)?;
    std::fs::write(
        out.join(format!("{name}.rows.json")),
        serde_json::to_vec(&serde_json::json!({ "rows": rows }))?,
    )?;

    // wasmtime: compile and instantiate, then calls.
    let started = Instant::now();
    let module = ModelModule::load(runtime, wasm, ModuleLimits::default())?;
    let compile = started.elapsed();
    // The flat path a server uses: a row-major tensor in, raw outputs out, no allocation per row.
    let one = &rows[..1];
    let flat_one: Vec<f64> = one.concat();
    let flat_all: Vec<f64> = rows.concat();
    let mut outputs = Vec::new();
    for _ in 0..200 {
        module.predict_flat(&flat_one, &mut outputs)?;
    }
    let wasm_batch1 = median_per_call(200, 100, || {
        module.predict_flat(&flat_one, &mut outputs).expect("predict");
    });
    let wasm_batch1000 = median(50, || {
        module.predict_flat(&flat_all, &mut outputs).expect("predict");
    });

    // tract, native, on the ONNX file.
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))?
        .into_optimized()?
        .into_runnable()?;
    let tensor = |rows: &[Vec<f64>]| -> anyhow::Result<Tensor> {
        let flat: Vec<f32> = rows.iter().flatten().map(|v| *v as f32).collect();
        Ok(tract_ndarray::Array2::from_shape_vec((rows.len(), *n_features), flat)?.into_tensor())
    };
    let (t1, t1000) = (tensor(one)?, tensor(rows)?);
    for _ in 0..50 {
        model.run(tvec!(t1.clone().into()))?;
    }
    let tract_batch1 = median(500, || {
        model.run(tvec!(t1.clone().into())).expect("tract");
    });
    let tract_batch1000 = median(20, || {
        model.run(tvec!(t1000.clone().into())).expect("tract");
    });
    println!(
        "{}",
        serde_json::json!({
            "model": name,
            "description": description,
            "wasm_bytes": wasm.len(),
            "onnx_bytes": onnx.len(),
            "wasmtime_load_seconds": compile.as_secs_f64(),
            "wasm_batch1_seconds": wasm_batch1.as_secs_f64(),
            "wasm_batch1000_per_row_seconds": wasm_batch1000.as_secs_f64() / 1000.0,
            "tract_batch1_seconds": tract_batch1.as_secs_f64(),
            "tract_batch1000_per_row_seconds": tract_batch1000.as_secs_f64() / 1000.0,
        })
    );
    Ok(())
}
