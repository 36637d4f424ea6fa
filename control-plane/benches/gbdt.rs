//! The wasm side of `scripts/bench-gbdt` (a bench binary): for each model `scripts/bench/gbdt_models.py`
//! trained into OUT_DIR, imports the XGBoost/LightGBM file with [`wasmline::import_model`],
//! compiles the IR to a module, loads it in wasmtime and times it: Cranelift's compile time, one
//! row per call (each call another row), and 10,000 rows (10 calls into the module: it takes at most `max_rows` rows per
//! call) per row. Writes NAME.wasm and the module's outputs on the rows (NAME.wasm.f64, the same
//! layout as the library's NAME.library.f64) and prints one JSON object per model.
//!
//! Usage: `cargo bench -p control-plane --bench gbdt -- OUT_DIR`

use std::path::Path;
use std::time::{Duration, Instant};

use edge_runtime::{ModelModule, ModuleLimits, Runtime, RuntimeConfig};
use serde_json::Value;

/// Batch 1 goes through this many different rows, one per call (as the peers' side does).
const SINGLES: usize = 1000;

/// Median time of one call of `f` over `samples` runs of `calls` calls each (calls that take
/// tens of nanoseconds are timed in groups, so reading the clock is not counted in them).
fn median_per_call(samples: usize, calls: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..calls {
                f();
            }
            started.elapsed() / calls
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [out] = args.as_slice() else {
        anyhow::bail!("usage: gbdt OUT_DIR");
    };
    let out = Path::new(out);
    let mut metas: Vec<_> = std::fs::read_dir(out)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    metas.sort();
    if metas.is_empty() {
        anyhow::bail!(
            "no *.meta.json in {}: run scripts/bench/gbdt_models.py first",
            out.display()
        );
    }
    // One runtime, as an edge has; the default limits (100 ms per call of at most max_rows rows).
    let runtime = Runtime::new(RuntimeConfig::default())?;
    for meta in metas {
        let meta: Value = serde_json::from_slice(&std::fs::read(&meta)?)?;
        measure(&runtime, out, &meta)?;
    }
    Ok(())
}

fn measure(runtime: &Runtime, out: &Path, meta: &Value) -> anyhow::Result<()> {
    let name = meta["name"].as_str().unwrap_or_default();
    let n_features = meta["n_features"].as_u64().unwrap_or_default() as usize;
    let file = out.join(meta["file"].as_str().unwrap_or_default());
    let bytes = std::fs::read(&file)?;

    let started = Instant::now();
    let imported = wasmline::import_model(&bytes, &file, None, &wasmline::ModelImportOptions::default())?;
    let import = started.elapsed();
    let started = Instant::now();
    let wasm = model_wasm::codegen::compile(&imported.ir, b"{}")?;
    let codegen = started.elapsed();
    std::fs::write(out.join(format!("{name}.wasm")), &wasm)?;

    let started = Instant::now();
    let module = ModelModule::load(runtime, &wasm, ModuleLimits::default())?;
    let load = started.elapsed();

    let rows: Vec<f64> = std::fs::read(out.join(format!("{name}.rows.f64")))?
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let n_rows = rows.len() / n_features;
    let mut outputs = Vec::new();
    // The module's answers on all rows, for the table's check against the library's: the
    // probabilities (after the label slot) or the value.
    module.predict_flat(&rows, &mut outputs)?;
    let stride = module.output_stride();
    let skip = usize::from(stride > 1);
    let answers: Vec<u8> = outputs
        .chunks_exact(stride)
        .flat_map(|row| row[skip..].iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    std::fs::write(out.join(format!("{name}.wasm.f64")), answers)?;

    // Batch 1 goes through the rows one per call: the same row over and over would let the
    // processor's branch predictor learn its path through every tree and flatter the figure.
    let mut next = 0;
    let mut one_row = || {
        let row = &rows[next * n_features..(next + 1) * n_features];
        next = (next + 1) % n_rows.min(SINGLES);
        module.predict_flat(row, &mut outputs).expect("predict");
    };
    for _ in 0..1000 {
        one_row();
    }
    let batch1 = median_per_call(201, 200, &mut one_row);
    let batch_all = median_per_call(11, 1, || {
        module.predict_flat(&rows, &mut outputs).expect("predict");
    });
    println!(
        "{}",
        serde_json::json!({
            "model": name,
            "wasm_bytes": wasm.len(),
            "model_file_bytes": bytes.len(),
            "import_seconds": import.as_secs_f64(),
            "codegen_seconds": codegen.as_secs_f64(),
            "wasmtime_compile_seconds": module.compile_time().as_secs_f64(),
            "wasmtime_load_seconds": load.as_secs_f64(),
            "max_rows": module.max_rows(),
            "rows": n_rows,
            "wasm_batch1_seconds": batch1.as_secs_f64(),
            "wasm_batch10000_per_row_seconds": batch_all.as_secs_f64() / n_rows as f64,
        })
    );
    Ok(())
}
