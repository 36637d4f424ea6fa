//! Parquet sources through the `wasmline` binary: the bundled wine data written as Parquet by
//! pyarrow (the GBDT venv, `gbdt_python()`) runs the same pipeline as its CSV and gives the same
//! processed data and the same model bytes; over HTTP and from S3 too; and a bad file stops the
//! run with its row group, row and column, storing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::servers::{HttpServer, S3sFs};

use crate::Scratch;
use crate::gbdt::gbdt_python;

/// Writes the wine CSV as Parquet at `out` with pyarrow (its CSV reader: doubles, and int64 for
/// `quality`), in row groups of 400 rows, after setting to null the `alcohol` value of each
/// 0-based row in `nulls`. Returns the number of row groups pyarrow wrote.
fn wine_parquet(out: &Path, nulls: &[usize]) -> u64 {
    let script = r#"
import sys
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
table = pc.read_csv(sys.argv[1])
nulls = {int(i) for i in sys.argv[3:]}
if nulls:
    i = table.schema.get_field_index("alcohol")
    alcohol = [None if r in nulls else v for r, v in enumerate(table.column(i).to_pylist())]
    table = table.set_column(i, "alcohol", pa.array(alcohol, pa.float64()))
pq.write_table(table, sys.argv[2], row_group_size=400)
meta = pq.ParquetFile(sys.argv[2]).metadata
assert str(table.schema.field("quality").type) == "int64", table.schema
print(meta.num_row_groups)
"#;
    let csv = Scratch::example_data("winequality");
    let mut cmd = Command::new(gbdt_python());
    cmd.args(["-c", script, &csv, out.to_str().unwrap()]);
    cmd.args(nulls.iter().map(ToString::to_string));
    let output = cmd.output().expect("run python");
    assert!(
        output.status.success(),
        "pyarrow failed (is it in scripts/requirements-gbdt.txt's venv?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap()
}

/// The wine example's config reading `source` as Parquet, written in `s`.
fn parquet_config(s: &Scratch, source: &str, data_only: bool) -> PathBuf {
    let path = if data_only {
        s.example_data_config("winequality", source)
    } else {
        s.example_config("winequality", source)
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let line = format!("source = {source:?}\n");
    assert!(text.contains(&line));
    std::fs::write(&path, text.replace(&line, &format!("{line}format = \"parquet\"\n"))).unwrap();
    path
}

fn record(s: &Scratch, version: u64) -> serde_json::Value {
    let path = s.store().join(format!("datasets/winequality-red/{version}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn md5_hex(path: &Path) -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .expect("python3");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The whole pipeline on the wine CSV, and on the same rows as Parquet in 4 row groups: the
/// processed train and test files (their MD5s, the dataset's identity past the raw bytes) and the
/// registered model.wasm and model.onnx are byte for byte the same. The raw Parquet bytes are
/// stored at their own MD5 in DVC's layout, and the `.dvc` file names `wine.parquet`.
#[test]
fn a_parquet_source_gives_the_csv_runs_data_and_model_bytes() {
    let csv_run = Scratch::new();
    let config = csv_run.example_config("winequality", &Scratch::example_data("winequality"));
    let out = csv_run
        .run(&["pipeline", "run", "--config", config.to_str().unwrap()])
        .ok();
    assert!(out.contains("model wine-quality version 1"), "{out}");

    let s = Scratch::new();
    let parquet = s.path().join("wine.parquet");
    assert_eq!(wine_parquet(&parquet, &[]), 4);
    let config = parquet_config(&s, "wine.parquet", false);
    let out = s
        .run(&[
            "pipeline",
            "run",
            "--config",
            config.to_str().unwrap(),
            "--dvc-file",
            "wine.parquet.dvc",
        ])
        .ok();
    assert!(out.contains("1599 rows"), "{out}");
    assert!(out.contains("model wine-quality version 1"), "{out}");

    let (from_csv, from_parquet) = (record(&csv_run, 1), record(&s, 1));
    for part in ["train", "test"] {
        assert_eq!(from_parquet[part]["md5"], from_csv[part]["md5"], "{part}");
        assert_eq!(from_parquet[part]["rows"], from_csv[part]["rows"], "{part}");
    }
    assert_eq!(from_parquet["columns"], from_csv["columns"]);
    assert_eq!(from_parquet["source"]["format"], "parquet");
    let md5 = md5_hex(&parquet);
    assert_ne!(from_parquet["raw"]["md5"], from_csv["raw"]["md5"]);
    assert_eq!(from_parquet["raw"]["md5"], md5.as_str());
    let raw = s.store().join(format!("dvc/files/md5/{}/{}", &md5[..2], &md5[2..]));
    assert!(
        std::fs::read(raw).unwrap() == std::fs::read(&parquet).unwrap(),
        "the raw Parquet bytes in the DVC layout"
    );
    let dvc = std::fs::read_to_string(s.path().join("wine.parquet.dvc")).unwrap();
    assert!(
        dvc.contains(&format!("- md5: {md5}\n")) && dvc.contains("  path: wine.parquet\n"),
        "{dvc}"
    );

    for artifact in ["model.wasm", "model.onnx"] {
        let read = |run: &Scratch| std::fs::read(run.store().join("models/wine-quality/1").join(artifact)).unwrap();
        assert!(
            read(&s) == read(&csv_run),
            "{artifact}: the same bytes from CSV and Parquet"
        );
    }
}

/// Remote Parquet sources are fetched like CSV ones, over HTTP and from S3 (each run with a store
/// of its own): the raw and processed data are the local file's. The HTTP URL has no extension, so
/// the config's `format` decides; the S3 key ends in `.parquet`, and the config says nothing.
#[test]
fn parquet_over_http_and_from_s3() {
    let s3 = S3sFs::start();
    let mut s = Scratch::new();
    s.env = s3.env();
    let served = s.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    wine_parquet(&served.join("wine.parquet"), &[]);
    std::fs::copy(served.join("wine.parquet"), served.join("wine-data")).unwrap();
    let bucket = s3.data_dir.join(&s3.bucket);
    std::fs::create_dir_all(bucket.join("raw")).unwrap();
    std::fs::copy(served.join("wine.parquet"), bucket.join("raw/wine.parquet")).unwrap();
    let server = HttpServer::start(&served);

    let configs = [
        (
            "local",
            parquet_config(&s, served.join("wine.parquet").to_str().unwrap(), true),
        ),
        ("http", parquet_config(&s, &format!("{}/wine-data", server.url), true)),
        (
            "s3",
            s.example_data_config("winequality", &format!("s3://{}/raw/wine.parquet", s3.bucket)),
        ),
    ];
    let mut records = Vec::new();
    for (name, config) in &configs {
        let store = s.path().join(format!("store-{name}"));
        let store = store.to_str().unwrap();
        let out = s
            .run_with_store(store, &["pipeline", "run", "--config", config.to_str().unwrap()])
            .ok();
        assert!(out.contains("1599 rows"), "{name}: {out}");
        let shown = s.run_with_store(store, &["datasets", "show", "winequality-red@1"]).ok();
        records.push(serde_json::from_str::<serde_json::Value>(&shown).unwrap());
    }
    for (record, (name, _)) in records.iter().zip(&configs) {
        assert_eq!(record["source"]["format"], "parquet", "{name}");
        for file in ["raw", "train", "test"] {
            assert_eq!(record[file]["md5"], records[0][file]["md5"], "{name}: {file}");
        }
    }
    assert!(records[2]["source"]["uri"].as_str().unwrap().starts_with("s3://"));
}

/// A null `alcohol` in row 501 (row group 2 of 400-row groups): exit code 1, the message names
/// the file, row group, row and column, and the store holds no dataset, no raw object, no model.
#[test]
fn a_null_in_row_group_2_stops_the_run_and_nothing_is_stored() {
    let s = Scratch::new();
    assert_eq!(wine_parquet(&s.path().join("bad.parquet"), &[500]), 4);
    let config = parquet_config(&s, "bad.parquet", false);
    let err = s
        .run(&["pipeline", "run", "--config", config.to_str().unwrap()])
        .fails();
    assert!(
        err.contains("bad.parquet: row group 2, row 501, column 'alcohol': null in a column that is not nullable"),
        "{err}"
    );
    for prefix in ["datasets", "dvc", "models", ".tmp"] {
        assert_eq!(s.store_files(prefix), Vec::<String>::new(), "nothing under {prefix}/");
    }
}
