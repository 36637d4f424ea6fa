//! The importers against the libraries' own predictions (the fixtures of
//! `scripts/gbdt/make_fixtures.py`), and hostile files.

use std::path::{Path, PathBuf};

use model_wasm::ir::Missing;
use model_wasm::{Body, Link, Node, Prediction};
use serde_json::Value;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gbdt")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

fn import(bytes: &[u8], name: &str) -> anyhow::Result<ImportedModel> {
    import_model(bytes, Path::new(name), None, &ImportOptions::default())
}

/// The error's whole chain, as the command line prints it.
fn error(bytes: &[u8], name: &str) -> String {
    format!("{:#}", import(bytes, name).expect_err("the import must fail"))
}

fn assert_error(bytes: &[u8], name: &str, parts: &[&str]) {
    let message = error(bytes, name);
    assert!(message.contains(name), "the error does not name the file: {message}");
    for part in parts {
        assert!(message.contains(part), "the error does not say {part:?}: {message}");
    }
}

struct Rows {
    rows: Vec<Vec<f64>>,
    predictions: Vec<Value>,
    leaves: Vec<Vec<usize>>,
}

fn rows(name: &str) -> Rows {
    let v: Value = serde_json::from_slice(&read(&format!("{name}.rows.json"))).unwrap();
    let rows = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let leaves = v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect()
        })
        .collect();
    Rows {
        rows,
        predictions: v["predictions"].as_array().unwrap().clone(),
        leaves,
    }
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance * want.abs().max(1e-300)
}

/// The IR's predictions against the library's: values and probabilities within `tolerance`
/// (relative), labels identical (the library's label is its most probable class).
fn assert_parity(imported: &ImportedModel, name: &str, tolerance: f64) {
    let expected = rows(name);
    assert!(expected.rows.len() >= 40, "{name}: {} rows", expected.rows.len());
    let mut worst = 0.0f64;
    for (r, (row, want)) in expected.rows.iter().zip(&expected.predictions).enumerate() {
        let got = imported
            .ir
            .predict(row)
            .unwrap_or_else(|e| panic!("{name} row {r} {row:?}: {e}"));
        match (got, want) {
            (Prediction::Value(v), Value::Number(w)) => {
                let w = w.as_f64().unwrap();
                assert!(
                    close(v, w, tolerance),
                    "{name} row {r} {row:?}: {v} vs the library's {w}"
                );
                worst = worst.max((v - w).abs() / w.abs());
            }
            (Prediction::Class { label, probabilities }, Value::Number(p1)) => {
                let p1 = p1.as_f64().unwrap();
                assert_eq!(probabilities.len(), 2);
                assert!(
                    close(probabilities[1], p1, tolerance),
                    "{name} row {r} {row:?}: P(1) {} vs the library's {p1}",
                    probabilities[1]
                );
                assert_eq!(label, usize::from(p1 > 0.5), "{name} row {r}: label");
                worst = worst.max((probabilities[1] - p1).abs() / p1);
            }
            (Prediction::Class { label, probabilities }, Value::Array(ps)) => {
                let ps: Vec<f64> = ps.iter().map(|p| p.as_f64().unwrap()).collect();
                assert_eq!(probabilities.len(), ps.len());
                for (k, (g, w)) in probabilities.iter().zip(&ps).enumerate() {
                    assert!(
                        close(*g, *w, tolerance),
                        "{name} row {r} {row:?}: P({k}) {g} vs the library's {w}"
                    );
                    worst = worst.max((g - w).abs() / w);
                }
                let want_label = (0..ps.len()).fold(0, |best, k| if ps[k] > ps[best] { k } else { best });
                assert_eq!(label, want_label, "{name} row {r}: label");
            }
            (got, want) => panic!("{name} row {r}: {got:?} against {want}"),
        }
    }
    eprintln!("{name}: worst relative difference {worst:e}");
}

/// The leaf each tree reaches holds the value of the leaf the library says it reaches.
fn assert_leaves(imported: &ImportedModel, name: &str, library_leaf_value: impl Fn(usize, usize) -> f64) {
    let expected = rows(name);
    let trees = imported.ir.trees();
    for (r, (row, leaves)) in expected.rows.iter().zip(&expected.leaves).enumerate() {
        assert_eq!(leaves.len(), trees.len(), "{name}: leaves per row");
        for (t, (tree, &leaf)) in trees.iter().zip(leaves).enumerate() {
            let Node::Leaf { value } = tree.nodes[tree.leaf_index(row)] else {
                panic!("{name}: tree {t} ends in a leaf");
            };
            assert_eq!(
                value,
                library_leaf_value(t, leaf),
                "{name} row {r} {row:?}: tree {t} reaches another leaf than the library's {leaf}"
            );
        }
    }
}

fn xgboost_parity(name: &str) -> ImportedModel {
    let file = format!("{name}.json");
    let imported = import(&read(&file), &file).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(imported.format, ModelFormat::Xgboost);
    assert_eq!(imported.library, "xgboost 3.2.0");
    assert_parity(&imported, name, 1e-5);
    let model: Value = serde_json::from_slice(&read(&file)).unwrap();
    let trees = model["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap()
        .clone();
    assert_leaves(&imported, name, |t, leaf| {
        f64::from(trees[t]["split_conditions"][leaf].as_f64().unwrap() as f32)
    });
    imported
}

/// Each LightGBM tree's `leaf_value=` list, as the file writes it.
fn lightgbm_leaf_values(model: &str) -> Vec<Vec<f64>> {
    model
        .lines()
        .filter_map(|l| l.strip_prefix("leaf_value="))
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect()
}

fn lightgbm_parity(name: &str, scale: f64) -> ImportedModel {
    let file = format!("{name}.txt");
    let imported = import(&read(&file), &file).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(imported.format, ModelFormat::Lightgbm);
    assert_eq!(imported.library, "lightgbm v4");
    assert_parity(&imported, name, 1e-9);
    let leaves = lightgbm_leaf_values(&text(&file));
    assert_leaves(&imported, name, |t, leaf| leaves[t][leaf] * scale);
    imported
}

fn boosted(imported: &ImportedModel) -> (&[u32], &[f64], Link) {
    match &imported.ir.body {
        Body::Boosted {
            tree_outputs,
            base_score,
            link,
            ..
        } => (tree_outputs, base_score, *link),
        other => panic!("not a boosted body: {other:?}"),
    }
}

#[test]
fn xgboost_binary_logistic_matches_xgboost_with_missing_values() {
    let imported = xgboost_parity("xgb_binary");
    assert_eq!(imported.ir.features, ["alpha", "beta", "gamma", "delta"]);
    assert_eq!(imported.ir.classes(), ["0", "1"]);
    assert_eq!(boosted(&imported).2, Link::Sigmoid);
    assert!(imported.ir.accepts_missing().iter().all(|&a| a));
}

#[test]
fn xgboost_softprob_with_parallel_trees_matches_xgboost() {
    let imported = xgboost_parity("xgb_multi");
    let (outputs, base, link) = boosted(&imported);
    assert_eq!(link, Link::Softmax);
    assert_eq!(base.len(), 3);
    assert_eq!(&outputs[..6], &[0, 0, 1, 1, 2, 2]);
    assert_eq!(imported.ir.features, ["f0", "f1", "f2", "f3"]);
    assert!(
        imported.notes.iter().any(|n| n.contains("num_parallel_tree 2")),
        "{:?}",
        imported.notes
    );
}

#[test]
fn xgboost_categorical_regression_matches_xgboost_on_unseen_categories() {
    let imported = xgboost_parity("xgb_regression_cat");
    let sets = imported
        .ir
        .trees()
        .iter()
        .flat_map(|t| &t.nodes)
        .filter(|n| matches!(n, Node::SplitIn { .. }))
        .count();
    assert!(sets > 0, "the fixture has categorical splits");
}

#[test]
fn xgboost_poisson_and_reg_logistic_match_xgboost() {
    assert_eq!(boosted(&xgboost_parity("xgb_poisson")).2, Link::Exp);
    let logistic = xgboost_parity("xgb_reg_logistic");
    assert_eq!(boosted(&logistic).2, Link::Sigmoid);
    assert!(logistic.ir.classes().is_empty(), "reg:logistic is a regressor");
}

#[test]
fn xgboost_scalar_base_score_of_older_versions_is_read_as_the_vector() {
    let file = text("xgb_binary.json");
    let mut model: Value = serde_json::from_str(&file).unwrap();
    let param = &mut model["learner"]["learner_model_param"]["base_score"];
    let scalar = param.as_str().unwrap().trim_matches(['[', ']']).to_owned();
    *param = Value::String(scalar);
    let imported = import(&serde_json::to_vec(&model).unwrap(), "scalar.json").unwrap();
    assert_parity(&imported, "xgb_binary", 1e-5);
}

#[test]
fn xgboost_softmax_gives_the_same_labels_with_a_note() {
    let file = text("xgb_multi.json").replace("multi:softprob", "multi:softmax");
    let imported = import(file.as_bytes(), "softmax.json").unwrap();
    assert_parity(&imported, "xgb_multi", 1e-5);
    assert!(imported.notes.iter().any(|n| n.contains("multi:softmax")));
}

#[test]
fn lightgbm_binary_with_a_sigmoid_parameter_folds_it_into_the_leaves() {
    let imported = lightgbm_parity("lgb_binary", 0.7);
    assert_eq!(boosted(&imported).1, &[0.0]);
    assert!(
        imported.notes.iter().any(|n| n.contains("sigmoid:0.7")),
        "{:?}",
        imported.notes
    );
    assert_eq!(imported.ir.features, ["alpha", "beta", "gamma", "delta"]);
}

#[test]
fn lightgbm_multiclass_matches_lightgbm() {
    let imported = lightgbm_parity("lgb_multi", 1.0);
    let (outputs, _, link) = boosted(&imported);
    assert_eq!(link, Link::Softmax);
    assert_eq!(outputs, &[0, 1, 2, 0, 1, 2, 0, 1, 2]);
}

#[test]
fn lightgbm_categorical_regression_matches_lightgbm_on_unseen_categories() {
    let imported = lightgbm_parity("lgb_regression_cat", 1.0);
    assert!(
        imported
            .ir
            .trees()
            .iter()
            .flat_map(|t| &t.nodes)
            .any(|n| matches!(n, Node::SplitIn { .. }))
    );
}

#[test]
fn lightgbm_poisson_with_zero_as_missing_and_cross_entropy_match_lightgbm() {
    let poisson = lightgbm_parity("lgb_poisson_zero", 1.0);
    assert_eq!(boosted(&poisson).2, Link::Exp);
    let zero_rules = poisson
        .ir
        .trees()
        .iter()
        .flat_map(|t| &t.nodes)
        .filter(|n| matches!(n.missing(), Some(Missing::ZeroLeft | Missing::ZeroRight)))
        .count();
    assert!(zero_rules > 0, "the fixture has Zero missing types");
    assert_eq!(boosted(&lightgbm_parity("lgb_cross_entropy", 1.0)).2, Link::Sigmoid);
}

/// A hand-made LightGBM model: a stump on `x` at 0.5 (missing type NaN, default left) and a
/// one-leaf tree.
fn lightgbm_stump(decision_type: &str, extra_header: &str) -> String {
    format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=0\n\
         objective=regression\n{extra_header}feature_names=x\nfeature_infos=[0:1]\ntree_sizes=1 1\n\n\
         Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=0.5\n\
         decision_type={decision_type}\nleft_child=-1\nright_child=-2\nleaf_value=1.5 2.5\n\
         leaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=0\ninternal_count=2\n\
         is_linear=0\nshrinkage=1\n\n\
         Tree=1\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n\
         left_child=\nright_child=\nleaf_value=0.25\nleaf_weight=\nleaf_count=\ninternal_value=\n\
         internal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n\n\nend of trees\n\n\
         parameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n"
    )
}

fn value(imported: &ImportedModel, x: f64) -> f64 {
    match imported.ir.predict(&[x]).unwrap() {
        Prediction::Value(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lightgbm_one_leaf_tree_is_that_leaf_and_thresholds_compare_with_le() {
    let imported = import(lightgbm_stump("10", "").as_bytes(), "stump.txt").unwrap();
    assert_eq!(imported.ir.trees()[1].nodes, [Node::Leaf { value: 0.25 }]);
    assert_eq!(value(&imported, 0.5), 1.75);
    assert_eq!(value(&imported, 0.500_000_000_000_001), 2.75);
    assert_eq!(value(&imported, f64::NAN), 1.75, "NaN type, default left");
    // Missing type None: NaN is read as 0 (left); Zero, default right: NaN and 0 go right.
    let none = import(lightgbm_stump("0", "").as_bytes(), "none.txt").unwrap();
    assert_eq!(value(&none, f64::NAN), 1.75);
    let zero = import(lightgbm_stump("4", "").as_bytes(), "zero.txt").unwrap();
    assert_eq!(value(&zero, f64::NAN), 2.75);
    assert_eq!(value(&zero, 0.0), 2.75);
    assert_eq!(value(&zero, 0.25), 1.75);
}

#[test]
fn formats_are_detected_and_named() {
    for (name, format) in [
        ("xgb_binary.json", ModelFormat::Xgboost),
        ("lgb_binary.txt", ModelFormat::Lightgbm),
    ] {
        assert_eq!(detect(&read(name)).unwrap(), format, "{name}");
    }
    for format in ModelFormat::ALL {
        assert_eq!(format.to_string().parse::<ModelFormat>(), Ok(format));
    }
    assert_eq!("LightGBM".parse::<ModelFormat>(), Ok(ModelFormat::Lightgbm));
    let err = "catboost".parse::<ModelFormat>().unwrap_err();
    assert!(
        err.contains("'catboost'") && err.contains("xgboost, lightgbm or onnx"),
        "{err}"
    );
}

/// A hand-made ONNX file: `LinearRegressor` over float `[N, n]` input `X`, y = 0.5 + a + 2 b.
fn onnx_linear(n: i64) -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb::attribute_proto::AttributeType;
    use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
    use tract_onnx::pb::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
        ValueInfoProto, type_proto,
    };
    let floats = |name: &str, floats: Vec<f32>| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats,
        ..AttributeProto::default()
    };
    let dim = |value| Dimension {
        value: Some(value),
        ..Dimension::default()
    };
    ModelProto {
        ir_version: 7,
        producer_name: "handmade".into(),
        producer_version: "1".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: "ai.onnx.ml".into(),
            version: 1,
        }],
        graph: Some(GraphProto {
            node: vec![NodeProto {
                input: vec!["X".into()],
                output: vec!["variable".into()],
                op_type: "LinearRegressor".into(),
                domain: "ai.onnx.ml".into(),
                attribute: vec![floats("coefficients", vec![1.0, 2.0]), floats("intercepts", vec![0.5])],
                ..NodeProto::default()
            }],
            input: vec![ValueInfoProto {
                name: "X".into(),
                r#type: Some(TypeProto {
                    value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                        elem_type: 1,
                        shape: Some(TensorShapeProto {
                            dim: vec![
                                dim(dimension::Value::DimParam("N".into())),
                                dim(dimension::Value::DimValue(n)),
                            ],
                        }),
                    })),
                    ..TypeProto::default()
                }),
                ..ValueInfoProto::default()
            }],
            output: vec![ValueInfoProto {
                name: "variable".into(),
                ..ValueInfoProto::default()
            }],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    }
    .encode_to_vec()
}

#[test]
fn onnx_files_go_through_the_onnx_importer() {
    let bytes = onnx_linear(2);
    assert_eq!(detect(&bytes).unwrap(), ModelFormat::Onnx);
    let options = ImportOptions {
        features: Some(vec!["u".into(), "v".into()]),
        ..ImportOptions::default()
    };
    let imported = import_model(&bytes, Path::new("m.onnx"), None, &options).unwrap();
    assert_eq!(imported.format, ModelFormat::Onnx);
    assert_eq!(imported.library, "handmade 1");
    assert_eq!(imported.ir.features, ["u", "v"]);
    assert_eq!(imported.ir.predict(&[1.0, 1.0]).unwrap(), Prediction::Value(3.5));
    // A declared input of 10^12 features, in a file of under 200 bytes.
    let tiny = onnx_linear(1_000_000_000_000);
    assert!(tiny.len() < 200, "{} bytes", tiny.len());
    assert_error(&tiny, "huge.onnx", &["declares 1000000000000 features"]);
}

#[test]
fn names_given_by_the_caller_are_used_when_the_file_has_none() {
    let options = ImportOptions {
        features: Some(["p", "q", "r", "s"].map(String::from).to_vec()),
        classes: Some(["low", "mid", "high"].map(String::from).to_vec()),
        labels_only: false,
    };
    let imported = import_model(&read("xgb_multi.json"), Path::new("m.json"), None, &options).unwrap();
    assert_eq!(imported.ir.features, ["p", "q", "r", "s"]);
    assert_eq!(imported.ir.classes(), ["low", "mid", "high"]);
    let wrong = ImportOptions {
        classes: Some(vec!["a".into()]),
        ..ImportOptions::default()
    };
    let message = format!(
        "{:#}",
        import_model(&read("lgb_multi.txt"), Path::new("m.txt"), None, &wrong).unwrap_err()
    );
    assert!(
        message.contains("--classes gives 1 classes, the model has 3"),
        "{message}"
    );
    // The file's own names win, with a note.
    let features_only = ImportOptions {
        classes: None,
        ..options
    };
    let imported = import_model(&read("lgb_binary.txt"), Path::new("b.txt"), None, &features_only).unwrap();
    assert_eq!(imported.ir.features, ["alpha", "beta", "gamma", "delta"]);
    assert!(imported.notes.iter().any(|n| n.contains("names its features")));
}

// Hostile files.

/// An XGBoost fixture with one change to its JSON.
fn xgboost_edit(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut model: Value = serde_json::from_slice(&read(name)).unwrap();
    edit(&mut model);
    serde_json::to_vec(&model).unwrap()
}

fn tree(model: &mut Value, t: usize) -> &mut Value {
    &mut model["learner"]["gradient_booster"]["model"]["trees"][t]
}

/// A LightGBM fixture with one line of its first tree (`key=`) replaced.
fn lightgbm_edit(name: &str, key: &str, value: &str) -> Vec<u8> {
    let file = text(name);
    let start = file.find("Tree=0").unwrap();
    let at = start + file[start..].find(&format!("\n{key}=")).unwrap() + 1;
    let end = at + file[at..].find('\n').unwrap();
    format!("{}{key}={value}{}", &file[..at], &file[end..]).into_bytes()
}

#[test]
fn a_file_of_no_known_format_is_refused_naming_it() {
    assert_error(b"hello, world\n", "notes.bin", &["not a model format"]);
    assert_error(b"", "empty.bin", &["not a model format"]);
    assert_error(br#"{"trees": []}"#, "other.json", &["without a \"learner\""]);
    assert_error(b"{L\x00\x00\x00\x07learner", "model.ubj", &["UBJSON"]);
}

#[test]
fn truncated_files_are_refused() {
    let json = read("xgb_binary.json");
    assert_error(&json[..json.len() / 2], "cut.json", &["cut short"]);
    let lgb = read("lgb_binary.txt");
    assert_error(&lgb[..lgb.len() / 2], "cut.txt", &["cut short"]);
}

#[test]
fn unknown_objectives_are_named() {
    let json = text("xgb_binary.json").replace("binary:logistic", "rank:pairwise");
    assert_error(
        json.as_bytes(),
        "rank.json",
        &["objective 'rank:pairwise' is not supported"],
    );
    let lgb = text("lgb_binary.txt").replace("objective=binary sigmoid:0.7", "objective=lambdarank");
    assert_error(lgb.as_bytes(), "rank.txt", &["objective 'lambdarank' is not supported"]);
    let ova = text("lgb_multi.txt").replace("objective=multiclass", "objective=multiclassova");
    assert_error(ova.as_bytes(), "ova.txt", &["multiclassova", "one-vs-all"]);
}

#[test]
fn boosters_and_modes_the_ir_cannot_hold_are_refused() {
    let dart = xgboost_edit("xgb_binary.json", |m| {
        m["learner"]["gradient_booster"]["name"] = "dart".into();
    });
    assert_error(&dart, "dart.json", &["dart", "gbtree"]);
    let linear = xgboost_edit("xgb_binary.json", |m| {
        m["learner"]["gradient_booster"]["name"] = "gblinear".into();
    });
    assert_error(&linear, "linear.json", &["gblinear"]);
    assert_error(
        &lightgbm_edit("lgb_binary.txt", "is_linear", "1"),
        "linear.txt",
        &["tree 0", "linear trees"],
    );
    let rf = text("lgb_binary.txt").replacen("feature_names=", "average_output\nfeature_names=", 1);
    assert_error(rf.as_bytes(), "rf.txt", &["average_output", "random forest"]);
    let sqrt = text("lgb_regression_cat.txt").replace("objective=regression", "objective=regression sqrt");
    assert_error(sqrt.as_bytes(), "sqrt.txt", &["sqrt"]);
}

#[test]
fn unknown_decision_type_bits_are_refused() {
    let bytes = lightgbm_edit("lgb_regression_cat.txt", "decision_type", "64 10 10 8 8 8");
    assert_error(
        &bytes,
        "bits.txt",
        &["tree 0", "node 0", "decision_type 64 has unknown bits"],
    );
    let bytes = lightgbm_edit("lgb_regression_cat.txt", "decision_type", "12 10 10 8 8 8");
    assert_error(&bytes, "bits.txt", &["decision_type 12"]);
}

#[test]
fn children_out_of_range_are_refused() {
    let bytes = lightgbm_edit("lgb_regression_cat.txt", "left_child", "99 -1 3 -2 -4 -3");
    assert_error(&bytes, "child.txt", &["tree 0", "node 0: left_child 99 does not exist"]);
    let bytes = lightgbm_edit("lgb_regression_cat.txt", "right_child", "2 -9 4 -5 -6 -7");
    assert_error(&bytes, "leaf.txt", &["tree 0", "node 1: right_child -9 is leaf 8"]);
    let bytes = xgboost_edit("xgb_binary.json", |m| tree(m, 2)["left_children"][0] = 1000.into());
    assert_error(
        &bytes,
        "child.json",
        &["tree 2", "node 0: left child 1000 does not exist"],
    );
}

#[test]
fn trees_that_loop_are_refused() {
    let bytes = xgboost_edit("xgb_binary.json", |m| tree(m, 0)["left_children"][1] = 0.into());
    assert_error(
        &bytes,
        "loop.json",
        &["tree 0", "node 0 is reached twice (from node 1)"],
    );
    let bytes = lightgbm_edit("lgb_regression_cat.txt", "left_child", "1 0 3 -2 -4 -3");
    assert_error(&bytes, "loop.txt", &["tree 0", "reached twice"]);
}

#[test]
fn features_past_the_feature_list_are_refused() {
    let bytes = xgboost_edit("xgb_binary.json", |m| tree(m, 1)["split_indices"][0] = 7.into());
    assert_error(
        &bytes,
        "feature.json",
        &["tree 1", "node 0: split_indices = 7 is not one of the 4 features"],
    );
    let bytes = lightgbm_edit("lgb_regression_cat.txt", "split_feature", "9 0 0 1 1 1");
    assert_error(&bytes, "feature.txt", &["tree 0", "node 0: split_feature 9"]);
}

/// A LightGBM tree of `splits` categorical splits in a chain, each testing the same set of
/// `words` all-ones words.
fn lightgbm_categories(splits: usize, boundaries: &str, words: usize) -> String {
    let internal = splits;
    let ints = |f: &dyn Fn(usize) -> String| (0..internal).map(f).collect::<Vec<_>>().join(" ");
    let mut model = lightgbm_stump("1", "");
    let tree = format!(
        "Tree=0\nnum_leaves={}\nnum_cat=1\nsplit_feature={}\nsplit_gain={}\nthreshold={}\n\
         decision_type={}\nleft_child={}\nright_child={}\nleaf_value={}\ncat_boundaries={boundaries}\n\
         cat_threshold={}\nis_linear=0\nshrinkage=1\n\n",
        internal + 1,
        ints(&|_| "0".into()),
        ints(&|_| "1".into()),
        ints(&|_| "0".into()),
        ints(&|_| "1".into()),
        ints(&|i| format!("-{}", i + 1)),
        ints(&|i| if i + 1 < internal {
            (i + 1).to_string()
        } else {
            format!("-{}", i + 2)
        }),
        (0..=internal).map(|_| "1").collect::<Vec<_>>().join(" "),
        vec!["4294967295"; words].join(" "),
    );
    let start = model.find("Tree=0").unwrap();
    let end = model.find("Tree=1").unwrap();
    model.replace_range(start..end, &tree);
    model
}

#[test]
fn huge_category_sets_are_refused_before_they_are_made() {
    // A set declared as 10^9 bits, in a file that holds one word.
    let bytes = lightgbm_categories(1, "0 31250000", 1);
    assert_error(
        bytes.as_bytes(),
        "span.txt",
        &["tree 0", "node 0", "cat_boundaries 0..31250000"],
    );
    // A set of 2^24 + 32 bits, really written out.
    let words = (1 << 19) + 1;
    let bytes = lightgbm_categories(1, &format!("0 {words}"), words);
    assert_error(bytes.as_bytes(), "bits.txt", &["categories must be below 16777216"]);
    // One set of 2^23 categories shared by three splits: more than 2^24 in all.
    let words = 1 << 18;
    let bytes = lightgbm_categories(3, &format!("0 {words}"), words);
    assert_error(
        bytes.as_bytes(),
        "shared.txt",
        &["node 2", "more than 16777216 categories"],
    );
    // XGBoost: a category value of 10^9.
    let bytes = xgboost_edit("xgb_regression_cat.json", |m| {
        tree(m, 0)["categories"][0] = 1_000_000_000.into()
    });
    assert_error(
        &bytes,
        "cat.json",
        &["tree 0", "category 1000000000 is not in 0..16777216"],
    );
    let bytes = xgboost_edit("xgb_regression_cat.json", |m| {
        tree(m, 0)["categories_sizes"][0] = 1_000_000_000.into();
    });
    assert_error(&bytes, "size.json", &["tree 0", "run past the"]);
}

#[test]
fn declared_sizes_of_a_trillion_are_refused() {
    let bytes = lightgbm_edit("lgb_binary.txt", "num_leaves", "1000000000000");
    assert_error(&bytes, "leaves.txt", &["tree 0", "num_leaves=1000000000000"]);
    let lgb = text("lgb_binary.txt").replace("max_feature_idx=3", "max_feature_idx=999999999999");
    assert_error(lgb.as_bytes(), "features.txt", &["declares 1000000000000 features"]);
    let bytes = xgboost_edit("xgb_binary.json", |m| {
        m["learner"]["learner_model_param"]["num_feature"] = "1000000000000".into();
    });
    assert_error(
        &bytes,
        "features.json",
        &["num_feature declares 1000000000000 features"],
    );
    let bytes = xgboost_edit("xgb_binary.json", |m| {
        tree(m, 0)["tree_param"]["num_nodes"] = "1000000000000".into();
    });
    assert_error(&bytes, "nodes.json", &["tree 0", "num_nodes is 1000000000000"]);
}
