//! `wasmline models import`: a model made elsewhere becomes a signed version of the registry.
//! The ONNX files are built here with the protobuf types (the forms skl2onnx writes), so the test
//! needs no Python; XGBoost and LightGBM files are held to their libraries by the parity tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edge_runtime::{LoadOptions, Runtime, RuntimeConfig, ServedModel};
use model_wasm::signature::PublicKey;
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto,
    TypeProto, ValueInfoProto, type_proto,
};

fn attr(name: &str, r#type: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: r#type as i32,
        ..Default::default()
    }
}

fn ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: ints.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i,
        ..attr(name, AttributeType::Int)
    }
}

fn floats(name: &str, floats: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: floats.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

fn strings(name: &str, strings: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

fn node(domain: &str, op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!("{op}_{}", outputs[0]),
        op_type: op.into(),
        domain: domain.into(),
        attribute,
        ..Default::default()
    }
}

/// A model with input `X` (float [N, n]), the given nodes and outputs, and the feature names in
/// the metadata (as wasmline's own files and skl2onnx with options name them).
fn model(features: &[&str], nodes: Vec<NodeProto>, outputs: &[&str]) -> Vec<u8> {
    let dim = |value| Dimension {
        value: Some(value),
        ..Default::default()
    };
    let input = ValueInfoProto {
        name: "X".into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("N".into())),
                        dim(dimension::Value::DimValue(features.len() as i64)),
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        ir_version: 7,
        producer_name: "skl2onnx".into(),
        producer_version: "1.17.0".into(),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            },
            OperatorSetIdProto {
                domain: "ai.onnx.ml".into(),
                version: 1,
            },
        ],
        metadata_props: vec![StringStringEntryProto {
            key: "features".into(),
            value: serde_json::to_string(features).unwrap(),
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            input: vec![input],
            output: outputs
                .iter()
                .map(|o| ValueInfoProto {
                    name: (*o).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A two-tree forest classifier over `alcohol` and `acidity` (scikit-learn's soft vote: each leaf
/// holds its class shares over the number of trees), with skl2onnx's classifier tail.
fn forest_classifier() -> Vec<u8> {
    let ensemble = node(
        "ai.onnx.ml",
        "TreeEnsembleClassifier",
        &["X"],
        &["label", "probabilities"],
        vec![
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 1, 0, 0]),
            strings(
                "nodes_modes",
                &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
            ),
            floats("nodes_values", &[10.5, 0.0, 0.0, 0.3, 0.0, 0.0]),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
            ints("classlabels_int64s", &[0, 1]),
            ints("class_treeids", &[0, 0, 0, 0, 1, 1, 1, 1]),
            ints("class_nodeids", &[1, 1, 2, 2, 1, 1, 2, 2]),
            ints("class_ids", &[0, 1, 0, 1, 0, 1, 0, 1]),
            floats("class_weights", &[0.4, 0.1, 0.1, 0.4, 0.35, 0.15, 0.05, 0.45]),
            string("post_transform", "NONE"),
        ],
    );
    let tail = vec![
        node("", "Cast", &["label"], &["output_label"], vec![int("to", 7)]),
        node(
            "ai.onnx.ml",
            "ZipMap",
            &["probabilities"],
            &["output_probability"],
            vec![ints("classlabels_int64s", &[0, 1])],
        ),
    ];
    model(
        &["alcohol", "acidity"],
        [vec![ensemble], tail].concat(),
        &["output_label", "output_probability"],
    )
}

/// `y = 2 a - b + 0.5`.
fn linear_regressor() -> Vec<u8> {
    model(
        &["a", "b"],
        vec![node(
            "ai.onnx.ml",
            "LinearRegressor",
            &["X"],
            &["variable"],
            vec![floats("coefficients", &[2.0, -1.0]), floats("intercepts", &[0.5])],
        )],
        &["variable"],
    )
}

/// A scratch store and a directory for input files.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn wasmline(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wasmline"))
            .arg("--store")
            .arg(self.store())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.wasmline(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "wasmline {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs a command that must fail with exit code 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.wasmline(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "wasmline {args:?}: {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    fn manifest(&self, model: &str) -> Value {
        serde_json::from_str(&self.ok(&["models", "show", model])).unwrap()
    }

    fn stored(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.store().join(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// Nothing was registered: no model directory at all (not even a claimed number).
    fn assert_nothing_registered(&self) {
        assert!(!self.store().join("models").exists(), "something was registered");
        assert!(self.ok(&["models", "list"]).starts_with("no models"));
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn an_onnx_import_registers_a_signed_version_that_lists_promotes_and_loads_at_the_edge() {
    let s = Scratch::new();
    let onnx = forest_classifier();
    let file = s.write("forest.onnx", &onnx);

    let out = s.ok(&["models", "import", path(&file), "--name", "wine-forest"]);
    for line in [
        &format!(
            "imported from {} (sha256 {}, onnx, skl2onnx 1.17.0)",
            file.display(),
            sha256(&onnx)
        ),
        "features (2): alcohol, acidity",
        "generated rows reaching 4 of 4 leaves",
        "model.onnx: tract = IR on ",
        "no drift reference: no --reference-data was given",
        "metrics: none",
        "registered wine-forest@1 (4 artifacts: model.ir.json, model.onnx, model.wasm, source.onnx)",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }

    // The manifest verifies (`show` checks the signature) and says where the model came from.
    let m = s.manifest("wine-forest@1");
    assert_eq!(
        keys(&m["artifacts"]),
        ["model.ir.json", "model.onnx", "model.wasm", "source.onnx"]
    );
    assert!(m["signature"]["value"].is_string());
    assert_eq!(m["task"], "classification");
    assert_eq!(m["output"]["classes"], serde_json::json!(["0", "1"]));
    assert_eq!(m["family"], "onnx_trees");
    let lineage = &m["lineage"];
    assert_eq!(lineage["source"]["sha256"], sha256(&onnx));
    assert_eq!(lineage["source"]["format"], "onnx");
    assert_eq!(lineage["source"]["library"], "skl2onnx 1.17.0");
    assert_eq!(lineage["source"]["artifact"], "source.onnx");
    assert!(lineage.get("no_onnx").is_none());
    assert!(
        lineage["no_drift_reference"]
            .as_str()
            .unwrap()
            .contains("drift is not monitored")
    );
    assert_eq!(m["reference_profile"], serde_json::json!({"rows": 0, "features": []}));
    assert_eq!(m["metrics"], serde_json::json!({}));
    // Trees that define no missing-value rule refuse a missing input: the flag stays off.
    assert!(
        m["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f.get("missing").is_none())
    );
    // Generated rows serve as the load gate's sample rows, finite and in feature order.
    let samples = m["sample_rows"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.iter().all(|r| r.as_array().unwrap().len() == 2));

    // Every artifact is what the manifest says; the source file is kept byte for byte.
    let out_dir = s.dir.path().join("download");
    s.ok(&["models", "download", "wine-forest@1", "--out", path(&out_dir)]);
    assert_eq!(std::fs::read(out_dir.join("source.onnx")).unwrap(), onnx);

    // The edge's load gate: signature with the store's key, digest, shape, smoke prediction.
    let key: PublicKey = serde_json::from_slice(&s.stored("keys/manifest-signing.pub.json")).unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let served = ServedModel::load(
        &runtime,
        &s.stored("models/wine-forest/1/manifest.json"),
        &s.stored("models/wine-forest/1/model.wasm"),
        &LoadOptions {
            trusted_key: Some(key),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(served.version(), 1);

    // Listed and promoted like any version; a second import is version 2.
    let list = s.ok(&["models", "list"]);
    assert!(
        list.contains("wine-forest\tversions 1\tlatest 1: onnx_trees f1 n/a"),
        "{list}"
    );
    s.ok(&["models", "promote", "wine-forest", "1", "--by", "ci"]);
    assert!(s.ok(&["models", "list"]).contains("aliases: production -> 1"));
    let out = s.ok(&["models", "import", path(&file), "--name", "wine-forest"]);
    assert!(out.contains("registered wine-forest@2"), "{out}");
    s.ok(&["models", "promote", "wine-forest", "2", "--by", "ci"]);
    assert!(s.ok(&["models", "list"]).contains("aliases: production -> 2"));
}

#[test]
fn reference_data_gives_the_drift_reference_the_sample_rows_and_the_metrics() {
    let s = Scratch::new();
    let file = s.write("linear.onnx", &linear_regressor());
    // Columns in another order than the model's, the target among them.
    let mut csv = String::from("b,y,a\n");
    for i in 0..40 {
        let (a, b) = (f64::from(i) * 0.25, f64::from(i % 7));
        let y = 2.0 * a - b + 0.5 + if i % 2 == 0 { 0.5 } else { -0.5 };
        csv += &format!("{b},{y},{a}\n");
    }
    let data = s.write("reference.csv", csv.as_bytes());

    let out = s.ok(&[
        "models",
        "import",
        path(&file),
        "--name",
        "lin",
        "--reference-data",
        path(&data),
        "--target",
        "y",
    ]);
    assert!(
        out.contains(&format!(
            "drift reference and sample rows from {} (40 rows)",
            data.display()
        )),
        "{out}"
    );
    assert!(out.contains("40 reference rows"), "{out}");
    assert!(out.contains("metrics on the reference data: mae 0.5000, r2 "), "{out}");

    let m = s.manifest("lin@1");
    assert_eq!(
        keys(&m["artifacts"]),
        [
            "metrics.json",
            "model.ir.json",
            "model.onnx",
            "model.wasm",
            "source.onnx"
        ]
    );
    assert_eq!(m["task"], "regression");
    assert_eq!(m["output"]["target"], "y");
    assert_eq!(m["selection_metric"], "rmse");
    assert!(
        (m["metrics"]["rmse"].as_f64().unwrap() - 0.5).abs() < 1e-6,
        "{}",
        m["metrics"]
    );
    assert!((m["metrics"]["mae"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert_eq!(m["reference_profile"]["rows"], 40);
    let profiled: Vec<&str> = m["reference_profile"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(profiled, ["a", "b"]);
    // The first rows, in the model's feature order (a, b).
    assert_eq!(m["sample_rows"][1], serde_json::json!([0.25, 1.0]));
    assert_eq!(m["features"][0]["min"], 0.0);
    assert_eq!(m["features"][0]["max"], 9.75);
    let lineage = &m["lineage"];
    assert_eq!(lineage["reference_data"]["rows"], 40);
    assert_eq!(lineage["reference_data"]["target"], "y");
    assert_eq!(lineage["reference_data"]["sha256"], sha256(csv.as_bytes()));
    assert!(lineage.get("no_drift_reference").is_none());

    // The drift reference works: the same data has not drifted.
    let drift: Value =
        serde_json::from_str(&s.ok(&["drift", "--model", "lin@1", "--data", path(&data), "--json"])).unwrap();
    let features = drift["drift"]["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    assert!(
        features
            .iter()
            .all(|f| f["psi"].as_f64().unwrap() < 0.01 && f["observed"] == 40),
        "{drift}"
    );

    // Two imported versions have no dataset in the store to be compared on: said, exit 2.
    s.ok(&[
        "models",
        "import",
        path(&file),
        "--name",
        "lin",
        "--reference-data",
        path(&data),
        "--target",
        "y",
    ]);
    let out = s.wasmline(&["compare", "--candidate", "lin@2", "--baseline", "lin@1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lin@2 and lin@1 were both imported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_imports_exit_1_naming_the_file_and_the_part_and_register_nothing() {
    let s = Scratch::new();
    let model = s.write("linear.onnx", &linear_regressor());
    let model = path(&model);
    let import = |extra: &[&str]| {
        let mut args = vec!["models", "import", model, "--name", "lin"];
        args.extend_from_slice(extra);
        s.fails(&args)
    };

    // A file that is no model.
    let junk = s.write("junk.onnx", b"this is not a model at all");
    let err = s.fails(&["models", "import", path(&junk), "--name", "lin"]);
    assert!(
        err.contains(&format!("cannot import {}: not a model format", junk.display()))
            && err.matches("cannot import").count() == 1,
        "{err}"
    );

    // Reference data whose columns do not match the model's features.
    let extra = s.write("extra.csv", b"a,b,colour\n1,2,red\n");
    let err = import(&["--reference-data", path(&extra)]);
    assert!(
        err.contains(&format!(
            "{}: column(s) 'colour' are not features of the model",
            extra.display()
        )),
        "{err}"
    );
    let lacking = s.write("lacking.csv", b"a,y\n1,2\n");
    let err = import(&["--reference-data", path(&lacking), "--target", "y"]);
    assert!(
        err.contains(&format!(
            "{}: the header lacks the model's feature(s) 'b'",
            lacking.display()
        )),
        "{err}"
    );

    // A target that is not in the reference data.
    let data = s.write("data.csv", b"a,b\n1,2\n3,4\n");
    let err = import(&["--reference-data", path(&data), "--target", "quality"]);
    assert!(
        err.contains(&format!(
            "{}: the target column 'quality' (--target) is not in the header",
            data.display()
        )),
        "{err}"
    );

    // A missing value for a model that has no rule for one; text where a number goes.
    let gap = s.write("gap.csv", b"a,b\n1,2\n,4\n");
    let err = import(&["--reference-data", path(&gap)]);
    assert!(
        err.contains(&format!("{}: row 2, column 'a': the value is missing", gap.display())),
        "{err}"
    );
    let text = s.write("text.csv", b"a,b\n1,two\n");
    let err = import(&["--reference-data", path(&text)]);
    assert!(
        err.contains(&text.display().to_string()) && err.contains("'b'"),
        "{err}"
    );

    // A name that cannot be a model's.
    let err = s.fails(&["models", "import", model, "--name", "../escape"]);
    assert!(err.contains("invalid model name '../escape'"), "{err}");

    // And a model file that is not there.
    let err = s.fails(&["models", "import", "nowhere.onnx", "--name", "lin"]);
    assert!(err.contains("cannot read nowhere.onnx"), "{err}");

    s.assert_nothing_registered();
}
