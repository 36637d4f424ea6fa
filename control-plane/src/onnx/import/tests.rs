//! Hand-made ONNX graphs for each rule of the importer (the scikit-learn files are tested in
//! `tests/all/import_onnx.rs`).

use model_wasm::ir::{Cast, Missing};
use model_wasm::{Aggregate, Body, Link, Node, Prediction, Preprocess};
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto,
    TypeProto, ValueInfoProto, type_proto,
};

use super::*;

fn attr(name: &str, r#type: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: r#type as i32,
        ..Default::default()
    }
}

fn a_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i,
        ..attr(name, AttributeType::Int)
    }
}

fn a_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: ints.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

fn a_floats(name: &str, floats: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: floats.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

fn a_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

fn a_strings(name: &str, strings: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}

fn node(domain: &str, op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!("{op}_{}", outputs.first().unwrap_or(&"")),
        op_type: op.into(),
        domain: domain.into(),
        attribute,
        ..Default::default()
    }
}

fn ml(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    node("ai.onnx.ml", op, inputs, outputs, attribute)
}

fn tensor_input(name: &str, elem: DataType, n: i64) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        Dimension {
                            value: Some(dimension::Value::DimParam("N".into())),
                            ..Default::default()
                        },
                        Dimension {
                            value: Some(dimension::Value::DimValue(n)),
                            ..Default::default()
                        },
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn output(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        ..Default::default()
    }
}

/// A model with input `X` (float [N, n]) and the given nodes and outputs.
fn model(n: i64, nodes: Vec<NodeProto>, outputs: &[&str]) -> ModelProto {
    ModelProto {
        ir_version: 7,
        producer_name: "handmade".into(),
        producer_version: "1".into(),
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
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            input: vec![tensor_input("X", DataType::Float, n)],
            output: outputs.iter().map(|o| output(o)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn import(model: &ModelProto) -> Result<Imported> {
    import_onnx(&model.encode_to_vec())
}

fn import_labels_only(model: &ModelProto) -> Result<Imported> {
    import_onnx_with(&model.encode_to_vec(), ImportOptions { labels_only: true })
}

fn error(model: &ModelProto) -> String {
    import(model).unwrap_err().to_string()
}

/// skl2onnx's classifier tail: label cast to int64, probabilities through a ZipMap.
fn classifier_tail(labels: &[i64]) -> Vec<NodeProto> {
    vec![
        node("", "Cast", &["label"], &["output_label"], vec![a_int("to", 7)]),
        ml(
            "ZipMap",
            &["probabilities"],
            &["output_probability"],
            vec![a_ints("classlabels_int64s", labels)],
        ),
    ]
}

fn linear_regression() -> ModelProto {
    model(
        2,
        vec![ml(
            "LinearRegressor",
            &["X"],
            &["variable"],
            vec![a_floats("coefficients", &[2.0, -1.0]), a_floats("intercepts", &[0.5])],
        )],
        &["variable"],
    )
}

fn linear_classifier(coefficients: &[f32], intercepts: &[f32], labels: &[i64], post: &str) -> Vec<NodeProto> {
    let mut nodes = vec![ml(
        "LinearClassifier",
        &["X"],
        &["label", "probabilities"],
        vec![
            a_ints("classlabels_ints", labels),
            a_floats("coefficients", coefficients),
            a_floats("intercepts", intercepts),
            a_string("post_transform", post),
        ],
    )];
    nodes.extend(classifier_tail(labels));
    nodes
}

fn value(ir: &ModelIr, row: &[f64]) -> f64 {
    match ir.predict(row).unwrap() {
        Prediction::Value(v) => v,
        p => panic!("{p:?}"),
    }
}

fn class(ir: &ModelIr, row: &[f64]) -> (usize, Vec<f64>) {
    match ir.predict(row).unwrap() {
        Prediction::Class { label, probabilities } => (label, probabilities),
        p => panic!("{p:?}"),
    }
}

#[test]
fn a_linear_regressor_becomes_an_identity_link_and_reports_what_it_found() {
    let imported = import(&linear_regression()).unwrap();
    assert_eq!(imported.producer, "handmade 1");
    assert_eq!(imported.onnx_ir_version, 7);
    assert_eq!(
        imported.opsets,
        [("ai.onnx".to_string(), 13), ("ai.onnx.ml".to_string(), 1)]
    );
    assert_eq!(imported.ops, ["ai.onnx.ml.LinearRegressor"]);
    assert_eq!(imported.ir.features, ["f0", "f1"]);
    assert_eq!(
        imported.ir.output,
        Output::Regression {
            target: "target".into()
        }
    );
    assert_eq!(value(&imported.ir, &[1.0, 3.0]), -0.5);
    assert!(imported.notes.is_empty());
}

#[test]
fn metadata_names_the_features_and_the_target() {
    let mut m = linear_regression();
    m.metadata_props = vec![
        StringStringEntryProto {
            key: "features".into(),
            value: r#"["a", "b"]"#.into(),
        },
        StringStringEntryProto {
            key: "target".into(),
            value: "quality".into(),
        },
    ];
    let ir = import(&m).unwrap().ir;
    assert_eq!(ir.features, ["a", "b"]);
    assert_eq!(
        ir.output,
        Output::Regression {
            target: "quality".into()
        }
    );
    m.metadata_props[0].value = r#"["a"]"#.into();
    let imported = import(&m).unwrap();
    assert_eq!(imported.ir.features, ["f0", "f1"]);
    assert!(imported.notes[0].contains("names 1 features, the model takes 2"));
}

#[test]
fn scalers_chain_before_the_model_and_broadcast_one_value() {
    let mut m = linear_regression();
    let graph = m.graph.as_mut().unwrap();
    graph.node[0].input = vec!["scaled2".into()];
    graph.node.insert(
        0,
        ml(
            "Scaler",
            &["X"],
            &["scaled"],
            vec![a_floats("offset", &[1.0, 2.0]), a_floats("scale", &[0.5, 4.0])],
        ),
    );
    graph
        .node
        .insert(1, node("", "Cast", &["scaled"], &["cast"], vec![a_int("to", 1)]));
    graph.node.insert(
        2,
        ml("Scaler", &["cast"], &["scaled2"], vec![a_floats("scale", &[2.0])]),
    );
    let imported = import(&m).unwrap();
    assert_eq!(
        imported.ir.preprocess,
        [
            Preprocess::Scale {
                center: vec![1.0, 2.0],
                scale: vec![0.5, 4.0]
            },
            Preprocess::Scale {
                center: vec![0.0, 0.0],
                scale: vec![2.0, 2.0]
            },
        ]
    );
    // x = [3, 3] -> [1, 4] -> [2, 8] -> 0.5 + 4 - 8
    assert_eq!(value(&imported.ir, &[3.0, 3.0]), -3.5);
}

#[test]
fn binary_logistic_forms_become_a_sigmoid() {
    // skl2onnx: two rows, the first the negation of the second.
    let m = model(
        2,
        linear_classifier(&[-1.0, -2.0, 1.0, 2.0], &[0.5, -0.5], &[0, 1], "LOGISTIC"),
        &["output_label", "output_probability"],
    );
    let imported = import(&m).unwrap();
    assert_eq!(
        imported.ir.body,
        Body::Linear {
            weights: vec![1.0, 2.0],
            intercepts: vec![-0.5],
            link: Link::Sigmoid
        }
    );
    assert_eq!(imported.ir.classes(), ["0", "1"]);
    assert_eq!(
        imported.ops,
        ["ai.onnx.ml.LinearClassifier", "ai.onnx.Cast", "ai.onnx.ml.ZipMap"]
    );
    // One row for two classes is the same model.
    let m = model(
        2,
        linear_classifier(&[1.0, 2.0], &[-0.5], &[0, 1], "LOGISTIC"),
        &["output_label", "output_probability"],
    );
    assert_eq!(import(&m).unwrap().ir.body, imported.ir.body);
    // Two rows that are not each other's negation give sigmoids that do not sum to one.
    let m = model(
        2,
        linear_classifier(&[1.0, 2.0, 1.0, 2.0], &[0.0, 0.0], &[0, 1], "LOGISTIC"),
        &["output_label", "output_probability"],
    );
    assert!(error(&m).contains("one-vs-rest probabilities"), "{}", error(&m));
}

#[test]
fn softmax_scores_and_their_l1_normalizer_become_a_softmax() {
    let mut nodes = linear_classifier(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[0.0, 0.0, 1.0], &[3, 5, 7], "SOFTMAX");
    // skl2onnx's multinomial tail: Normalizer L1 between the scores and the ZipMap.
    nodes[0].output[1] = "probability_tensor".into();
    nodes.push(ml(
        "Normalizer",
        &["probability_tensor"],
        &["probabilities"],
        vec![a_string("norm", "L1")],
    ));
    let ir = import(&model(2, nodes.clone(), &["output_label", "output_probability"]))
        .unwrap()
        .ir;
    assert_eq!(ir.classes(), ["3", "5", "7"]);
    let (label, p) = class(&ir, &[0.0, 0.0]);
    assert_eq!(label, 2);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);

    // Raw scores followed by a Softmax op are the same model.
    nodes[0].attribute[3] = a_string("post_transform", "NONE");
    nodes[3] = node(
        "",
        "Softmax",
        &["probability_tensor"],
        &["probabilities"],
        vec![a_int("axis", 1)],
    );
    assert_eq!(
        import(&model(2, nodes, &["output_label", "output_probability"]))
            .unwrap()
            .ir,
        ir
    );
}

#[test]
fn one_vs_rest_and_raw_scores_need_labels_only() {
    for post in ["LOGISTIC", "NONE"] {
        let m = model(
            2,
            linear_classifier(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[0.0, 0.0, 0.0], &[0, 1, 2], post),
            &["output_label", "output_probability"],
        );
        let err = error(&m);
        assert!(err.contains("--labels-only"), "{err}");
        let imported = import_labels_only(&m).unwrap();
        assert!(
            matches!(
                imported.ir.body,
                Body::Linear {
                    link: Link::Softmax,
                    ..
                }
            ),
            "{post}"
        );
        assert!(
            imported.notes[0].contains("the labels are the same"),
            "{:?}",
            imported.notes
        );
        assert_eq!(class(&imported.ir, &[2.0, 1.0]).0, 2);
    }
}

/// One tree: `x[0] {mode} threshold` goes to node 1 (class 1 / value 10), else node 2 (class 0
/// / value 20), node ids scrambled so that the root is not node 0.
fn stump(op: &str, mode: &str, threshold: f32) -> ModelProto {
    let mut attributes = vec![
        a_ints("nodes_treeids", &[0, 0, 0]),
        a_ints("nodes_nodeids", &[7, 3, 5]),
        a_ints("nodes_featureids", &[0, 0, 0]),
        a_strings("nodes_modes", &[mode, "LEAF", "LEAF"]),
        a_floats("nodes_values", &[threshold, 0.0, 0.0]),
        a_ints("nodes_truenodeids", &[3, 0, 0]),
        a_ints("nodes_falsenodeids", &[5, 0, 0]),
        a_string("post_transform", "NONE"),
    ];
    if op == "TreeEnsembleClassifier" {
        attributes.extend([
            a_ints("classlabels_int64s", &[0, 1]),
            a_ints("class_treeids", &[0, 0]),
            a_ints("class_nodeids", &[3, 5]),
            a_ints("class_ids", &[1, 0]),
            a_floats("class_weights", &[1.0, 1.0]),
        ]);
        let mut nodes = vec![ml(op, &["X"], &["label", "probabilities"], attributes)];
        nodes.extend(classifier_tail(&[0, 1]));
        model(1, nodes, &["output_label", "output_probability"])
    } else {
        attributes.extend([
            a_ints("target_treeids", &[0, 0]),
            a_ints("target_nodeids", &[3, 5]),
            a_ints("target_ids", &[0, 0]),
            a_floats("target_weights", &[10.0, 20.0]),
        ]);
        model(1, vec![ml(op, &["X"], &["variable"], attributes)], &["variable"])
    }
}

#[test]
fn split_modes_convert_exactly_at_the_f32_threshold() {
    let t = 0.1f32;
    let at = f64::from(t);
    let below = f64::from(t.next_down());
    let above = f64::from(t.next_up());
    // (mode, whether below, at and above the threshold take the "true" branch)
    let cases = [
        ("BRANCH_LEQ", [true, true, false]),
        ("BRANCH_LT", [true, false, false]),
        ("BRANCH_GTE", [false, true, true]),
        ("BRANCH_GT", [false, false, true]),
    ];
    for (mode, expected) in cases {
        let ir = import(&stump("TreeEnsembleRegressor", mode, t)).unwrap().ir;
        for (x, yes) in [below, at, above].into_iter().zip(expected) {
            let want = if yes { 10.0 } else { 20.0 };
            assert_eq!(value(&ir, &[x]), want, "{mode} at {x}");
        }
        // 0.1 in f64 rounds to the f32 threshold, and goes where the f32 does.
        assert_eq!(value(&ir, &[0.1]), value(&ir, &[at]), "{mode}");
        let ir = import(&stump("TreeEnsembleClassifier", mode, t)).unwrap().ir;
        for (x, yes) in [below, at, above].into_iter().zip(expected) {
            assert_eq!(
                class(&ir, &[x]),
                if yes { (1, vec![0.0, 1.0]) } else { (0, vec![1.0, 0.0]) }
            );
        }
    }
    // BRANCH_EQ tests categories: 0.1 is none.
    let err = error(&stump("TreeEnsembleRegressor", "BRANCH_EQ", t));
    assert!(
        err.contains("tree 0, node 7: BRANCH_EQ on 0.1: only category sets"),
        "{err}"
    );
    let err = error(&stump("TreeEnsembleRegressor", "BRANCH_NEQ", 1.0));
    assert!(err.contains("split mode BRANCH_NEQ"), "{err}");
    let err = error(&stump("TreeEnsembleRegressor", "BRANCH_LEQ", f32::MAX));
    assert!(err.contains("no finite f32 above it"), "{err}");
}

/// A regressor of one tree: a chain of `BRANCH_EQ` nodes on feature 0 for `categories` (ids 0,
/// 10, 11, ...: true to leaf 1 (10.0), the last false to leaf 2 (20.0)), NaN to the true branch.
fn category_chain(categories: &[f32], share_false: bool) -> ModelProto {
    let k = categories.len() as i64;
    let chain: Vec<i64> = std::iter::once(0).chain((0..k - 1).map(|j| 10 + j)).collect();
    let mut ids = chain.clone();
    ids.extend([1, 2]);
    let mut modes = vec!["BRANCH_EQ"; chain.len()];
    modes.extend(["LEAF", "LEAF"]);
    let mut values = categories.to_vec();
    values.extend([0.0, 0.0]);
    let mut true_ids = vec![1; chain.len()];
    true_ids.extend([0, 0]);
    let mut false_ids: Vec<i64> = chain[1..].to_vec();
    false_ids.push(2);
    if share_false {
        // The first node's false branch skips to the end: the second node has no pointer.
        false_ids[0] = 2;
    }
    false_ids.extend([0, 0]);
    let n = ids.len();
    let attributes = vec![
        a_ints("nodes_treeids", &vec![0; n]),
        a_ints("nodes_nodeids", &ids),
        a_ints("nodes_featureids", &vec![0; n]),
        a_strings("nodes_modes", &modes),
        a_floats("nodes_values", &values),
        a_ints("nodes_truenodeids", &true_ids),
        a_ints("nodes_falsenodeids", &false_ids),
        a_ints("nodes_missing_value_tracks_true", &vec![1; n]),
        a_string("post_transform", "NONE"),
        a_ints("target_treeids", &[0, 0]),
        a_ints("target_nodeids", &[1, 2]),
        a_ints("target_ids", &[0, 0]),
        a_floats("target_weights", &[10.0, 20.0]),
    ];
    model(
        2,
        vec![ml("TreeEnsembleRegressor", &["X"], &["variable"], attributes)],
        &["variable"],
    )
}

#[test]
fn branch_eq_chains_become_category_sets_read_exactly() {
    let ir = import(&category_chain(&[3.0, 0.0, 7.0, 3.0], false)).unwrap().ir;
    let Node::SplitIn {
        categories,
        cast,
        missing,
        ..
    } = &ir.trees()[0].nodes[0]
    else {
        panic!("{:?}", ir.trees()[0])
    };
    assert_eq!(
        (categories.as_slice(), *cast, *missing),
        (&[0, 3, 7][..], Cast::Exact, Missing::Left)
    );
    assert_eq!(ir.trees()[0].nodes.len(), 3, "the chain is one node");
    // In the set: 0, -0, 3, 7 and NaN (tracked true); out: fractions, negatives, unseen.
    for (x, want) in [
        (0.0, 10.0),
        (-0.0, 10.0),
        (3.0, 10.0),
        (7.0, 10.0),
        (f64::NAN, 10.0),
        (2.5, 20.0),
        (f64::from(3.0f32.next_up()), 20.0),
        (-3.0, 20.0),
        (4.0, 20.0),
        (1e30, 20.0),
    ] {
        assert_eq!(value(&ir, &[x, 0.0]), want, "x = {x}");
    }
    // A chain cut short leaves a node nothing points at: refused as a graph, not guessed.
    let err = error(&category_chain(&[1.0, 2.0, 4.0], true));
    assert!(err.contains("tree 0 has 2 roots"), "{err}");
    // A negative category is refused with the node.
    let err = error(&category_chain(&[1.0, -2.0], false));
    assert!(err.contains("node 10: BRANCH_EQ on -2"), "{err}");
}

#[test]
fn regressor_sums_average_and_base_values() {
    let mut m = stump("TreeEnsembleRegressor", "BRANCH_LEQ", 1.0);
    let attributes = &mut m.graph.as_mut().unwrap().node[0].attribute;
    attributes.push(a_floats("base_values", &[0.5]));
    attributes.push(a_string("aggregate_function", "AVERAGE"));
    let ir = import(&m).unwrap().ir;
    assert_eq!(value(&ir, &[0.0]), 10.5);
    let attributes = &mut m.graph.as_mut().unwrap().node[0].attribute;
    attributes.pop();
    attributes.push(a_string("aggregate_function", "MAX"));
    assert!(error(&m).contains("aggregate_function MAX"));
}

/// Two trees (or one) splitting on x[0] at 0.5, binary classes in skl2onnx's form: one class id,
/// the weight is class 1's share.
fn binary_forest(trees: usize, weights_left: f32, weights_right: f32) -> ModelProto {
    let mut tree_ids = Vec::new();
    let mut node_ids = Vec::new();
    let mut modes = Vec::new();
    let mut class_trees = Vec::new();
    let mut class_nodes = Vec::new();
    for t in 0..trees as i64 {
        tree_ids.extend([t; 3]);
        node_ids.extend([0, 1, 2]);
        modes.extend(["BRANCH_LEQ", "LEAF", "LEAF"]);
        class_trees.extend([t, t]);
        class_nodes.extend([1, 2]);
    }
    let mut nodes = vec![ml(
        "TreeEnsembleClassifier",
        &["X"],
        &["label", "probabilities"],
        vec![
            a_ints("classlabels_int64s", &[0, 1]),
            a_ints("nodes_treeids", &tree_ids),
            a_ints("nodes_nodeids", &node_ids),
            a_ints("nodes_featureids", &vec![0; 3 * trees]),
            a_strings("nodes_modes", &modes),
            a_floats("nodes_values", &[0.5, 0.0, 0.0].repeat(trees)),
            a_ints("nodes_truenodeids", &[1, 0, 0].repeat(trees)),
            a_ints("nodes_falsenodeids", &[2, 0, 0].repeat(trees)),
            a_ints("class_treeids", &class_trees),
            a_ints("class_nodeids", &class_nodes),
            a_ints("class_ids", &vec![0; 2 * trees]),
            a_floats("class_weights", &[weights_left, weights_right].repeat(trees)),
            a_string("post_transform", "NONE"),
        ],
    )];
    nodes.extend(classifier_tail(&[0, 1]));
    model(1, nodes, &["output_label", "output_probability"])
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} != {want:?}");
    }
}

#[test]
fn forests_of_pure_leaves_vote_and_soft_voting_forests_sum_their_leaves() {
    let third = 1.0f32 / 3.0;
    // Three trees, each leaf all class 0 (weight 0) or all class 1 (weight 1/3).
    let ir = import(&binary_forest(3, 0.0, third)).unwrap().ir;
    assert!(matches!(
        ir.body,
        Body::Trees {
            aggregate: Aggregate::Vote,
            ..
        }
    ));
    assert_eq!(class(&ir, &[0.0]), (0, vec![1.0, 0.0]));
    assert_eq!(class(&ir, &[1.0]), (1, vec![0.0, 1.0]));

    // Leaves with class shares: class 1 gets 0.1 (left) or 0.2 (right) per tree, class 0 the
    // rest of the tree's third, as onnxruntime reads the binary form.
    let imported = import(&binary_forest(3, 0.1, 0.2)).unwrap();
    assert!(matches!(
        imported.ir.body,
        Body::Trees {
            aggregate: Aggregate::Sum,
            ..
        }
    ));
    assert!(
        imported.notes[0].contains("6 of the 6 leaves hold class distributions"),
        "{:?}",
        imported.notes
    );
    let (label, p) = class(&imported.ir, &[0.0]);
    assert_eq!(label, 0);
    assert_close(&p, &[0.7, 0.3]);
    let (label, p) = class(&imported.ir, &[1.0]);
    assert_eq!(label, 1);
    assert_close(&p, &[0.4, 0.6]);
}

#[test]
fn a_single_tree_with_class_fractions_keeps_them() {
    // Left leaf: 40% class 1; right leaf: 50% (a tie goes to class 0, as in scikit-learn).
    let imported = import(&binary_forest(1, 0.4, 0.5)).unwrap();
    let (label, p) = class(&imported.ir, &[0.0]);
    assert_eq!(label, 0);
    assert_close(&p, &[0.6, 0.4]);
    let (label, p) = class(&imported.ir, &[1.0]);
    assert_eq!(label, 0);
    assert_close(&p, &[0.5, 0.5]);
    let imported = import(&binary_forest(1, 0.75, 0.0)).unwrap();
    let (label, p) = class(&imported.ir, &[0.0]);
    assert_eq!(label, 1);
    assert_close(&p, &[0.25, 0.75]);
}

#[test]
fn bytes_that_are_not_onnx_are_refused() {
    for bytes in [
        &b"this is a CSV file, not a model\n1,2,3\n"[..],
        &[0xff; 64][..],
        &[][..],
    ] {
        let err = import_onnx(bytes).unwrap_err();
        assert!(matches!(err, ImportError::NotOnnx(_)), "{err}");
        assert!(err.to_string().starts_with("not an ONNX model: "), "{err}");
    }
}

#[test]
fn a_truncated_file_is_refused() {
    let bytes = linear_regression().encode_to_vec();
    for cut in [bytes.len() / 2, bytes.len() - 1, 10] {
        let err = import_onnx(&bytes[..cut]).unwrap_err();
        assert!(matches!(err, ImportError::NotOnnx(_)), "cut at {cut}: {err}");
    }
}

#[test]
fn unsupported_ops_are_named_all_at_once() {
    let m = model(
        2,
        vec![
            ml("SVMClassifier", &["X"], &["label", "scores"], vec![]),
            node("", "Cast", &["scores"], &["probabilities"], vec![a_int("to", 1)]),
            node("", "Mul", &["probabilities", "probabilities"], &["squared"], vec![]),
        ],
        &["label", "squared"],
    );
    assert_eq!(
        error(&m),
        "unsupported ONNX op(s): ai.onnx.ml.SVMClassifier, ai.onnx.Mul"
    );
}

#[test]
fn two_inputs_are_refused() {
    let mut m = linear_regression();
    m.graph
        .as_mut()
        .unwrap()
        .input
        .push(tensor_input("Y", DataType::Float, 2));
    assert_eq!(
        error(&m),
        "unsupported: the model has 2 inputs (X, Y); only models with one float tensor input [N, n_features] can be imported"
    );
}

#[test]
fn a_double_input_and_a_branching_graph_are_refused() {
    let mut m = linear_regression();
    m.graph.as_mut().unwrap().input[0] = tensor_input("X", DataType::Double, 2);
    assert!(error(&m).contains("holds Double values"), "{}", error(&m));

    let mut m = linear_regression();
    m.graph
        .as_mut()
        .unwrap()
        .node
        .push(node("", "Identity", &["X"], &["copy"], vec![]));
    assert!(error(&m).contains("'X' is read by 2 nodes"), "{}", error(&m));
}

#[test]
fn a_declared_input_of_a_trillion_features_is_refused_before_anything_is_made() {
    let bytes = stump("TreeEnsembleRegressor", "BRANCH_LT", 0.5);
    let mut model = bytes;
    model.graph.as_mut().unwrap().input = vec![tensor_input("X", DataType::Float, 1_000_000_000_000)];
    let encoded = model.encode_to_vec();
    let message = import_onnx(&encoded).unwrap_err().to_string();
    assert!(
        message.contains("declares 1000000000000 features; at most 65536"),
        "{message}"
    );
    // The same refusal for a minimal file: one input, one op, nothing else.
    let tiny = ModelProto {
        graph: Some(GraphProto {
            node: vec![ml("TreeEnsembleRegressor", &["X"], &["v"], vec![])],
            input: vec![tensor_input("X", DataType::Float, 1_000_000_000_000)],
            ..Default::default()
        }),
        ..model
    }
    .encode_to_vec();
    assert!(tiny.len() < 300, "{} bytes", tiny.len());
    let message = import_onnx(&tiny).unwrap_err().to_string();
    assert!(message.contains("declares 1000000000000 features"), "{message}");
}

/// `|a - b| <= 1e-5 * |b|`, or `1e-6` near 0.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= (1e-5 * b.abs()).max(1e-6)
}

/// Imports `tests/fixtures/onnxml/{name}.onnx` (onnxmltools' conversion of an XGBoost or
/// LightGBM model, made by `scripts/gbdt/make_onnxml_fixtures.py`) and checks the IR's
/// predictions against onnxruntime's, stored with the rows (NaNs as null); returns the body.
fn onnxml_fixture(name: &str) -> Body {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnxml/");
    let bytes = std::fs::read(format!("{dir}{name}.onnx")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}{name}.json")).unwrap()).unwrap();
    let imported = import_onnx_with(&bytes, ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rows = expected["rows"].as_array().unwrap();
    assert!(rows.len() >= 20, "{name}: {} rows", rows.len());
    let mut with_nan = 0;
    for (i, r) in rows.iter().enumerate() {
        let x: Vec<f64> = r["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        with_nan += usize::from(x.iter().any(|v| v.is_nan()));
        match imported.ir.predict(&x).unwrap() {
            Prediction::Value(v) => {
                let want = r["value"].as_f64().unwrap();
                assert!(close(v, want), "{name}, row {i} {x:?}: {v} vs onnxruntime {want}");
            }
            Prediction::Class { label, probabilities } => {
                assert_eq!(label as u64, r["label"].as_u64().unwrap(), "{name}, row {i} {x:?}");
                let want: Vec<f64> = r["probabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_f64().unwrap())
                    .collect();
                assert_eq!(probabilities.len(), want.len(), "{name}, row {i}");
                for (p, w) in probabilities.iter().zip(&want) {
                    assert!(
                        close(*p, *w),
                        "{name}, row {i} {x:?}: {probabilities:?} vs onnxruntime {want:?}"
                    );
                }
            }
        }
    }
    assert!(with_nan >= 5, "{name}: only {with_nan} rows with NaN");
    imported.ir.body
}

fn boosted_link(body: &Body) -> (Link, usize, Vec<u32>) {
    match body {
        Body::Boosted {
            link,
            base_score,
            tree_outputs,
            ..
        } => (*link, base_score.len(), tree_outputs.clone()),
        other => panic!("not boosted: {other:?}"),
    }
}

#[test]
fn onnxmltools_xgboost_binary_matches_onnxruntime() {
    let (link, outputs, _) = boosted_link(&onnxml_fixture("xgb_binary"));
    assert_eq!((link, outputs), (Link::Sigmoid, 1));
}

#[test]
fn onnxmltools_lightgbm_binary_matches_onnxruntime() {
    let (link, outputs, _) = boosted_link(&onnxml_fixture("lgb_binary"));
    assert_eq!((link, outputs), (Link::Sigmoid, 1));
}

#[test]
fn onnxmltools_xgboost_multiclass_matches_onnxruntime() {
    let (link, outputs, trees) = boosted_link(&onnxml_fixture("xgb_multi"));
    assert_eq!((link, outputs), (Link::Softmax, 3));
    assert_eq!(trees[..3], [0, 1, 2]);
}

#[test]
fn onnxmltools_lightgbm_multiclass_matches_onnxruntime() {
    let (link, outputs, trees) = boosted_link(&onnxml_fixture("lgb_multi"));
    assert_eq!((link, outputs), (Link::Softmax, 3));
    assert_eq!(trees[..3], [0, 1, 2]);
}

#[test]
fn onnxmltools_xgboost_regression_matches_onnxruntime() {
    let (link, outputs, _) = boosted_link(&onnxml_fixture("xgb_reg"));
    assert_eq!((link, outputs), (Link::Identity, 1));
}

#[test]
fn onnxmltools_lightgbm_regression_matches_onnxruntime() {
    let (link, outputs, _) = boosted_link(&onnxml_fixture("lgb_reg"));
    assert_eq!((link, outputs), (Link::Identity, 1));
}

#[test]
fn onnxmltools_lightgbm_category_chains_match_onnxruntime() {
    // The rows hold 2.5, -1, 15 and 4.0000005 in the categorical feature: no category for
    // BRANCH_EQ, as onnxruntime answered.
    let body = onnxml_fixture("lgb_cat");
    let sets = match &body {
        Body::Boosted { trees, .. } => trees
            .iter()
            .flat_map(|t| &t.nodes)
            .filter(|n| {
                matches!(
                    n,
                    Node::SplitIn {
                        feature: 3,
                        cast: Cast::Exact,
                        ..
                    }
                )
            })
            .count(),
        other => panic!("not boosted: {other:?}"),
    };
    assert!(sets >= 4, "{sets} category sets");
}

#[test]
fn an_opset_5_tree_ensemble_matches_onnxruntime() {
    // scripts/gbdt/make_ensemble5_fixture.py: BRANCH_LEQ, BRANCH_LT, BRANCH_GT with NaN tracking,
    // a BRANCH_MEMBER set and a one-leaf tree, in onnxruntime.
    let body = onnxml_fixture("ensemble5_reg");
    let Body::Boosted { trees, base_score, .. } = &body else {
        panic!("not boosted: {body:?}")
    };
    assert_eq!((trees.len(), base_score.as_slice()), (3, &[0.0][..]));
    assert!(trees[0].nodes.iter().any(|n| matches!(
        n,
        Node::SplitIn { categories, cast: Cast::Exact, .. } if categories == &[1, 3, 4]
    )));
    assert_eq!(trees[2].nodes, [Node::Leaf { value: 0.125 }]);
}

#[test]
fn an_opset_5_tree_ensemble_that_is_not_a_tree_is_refused_naming_the_tree() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnxml/");
    let bytes = std::fs::read(format!("{dir}ensemble5_reg.onnx")).unwrap();
    let mut model = ModelProto::decode(&bytes[..]).unwrap();
    let node = &mut model.graph.as_mut().unwrap().node[0];
    // Tree 1's second node points back at its root: a loop.
    let falses = node
        .attribute
        .iter_mut()
        .find(|a| a.name == "nodes_falsenodeids")
        .unwrap();
    falses.ints[3] = 2;
    let falses_leaf = node
        .attribute
        .iter_mut()
        .find(|a| a.name == "nodes_falseleafs")
        .unwrap();
    falses_leaf.ints[3] = 0;
    let err = error(&model);
    assert!(err.contains("tree 1") && err.contains("reached twice"), "{err}");
    // A root past the nodes.
    let mut model = ModelProto::decode(&bytes[..]).unwrap();
    let node = &mut model.graph.as_mut().unwrap().node[0];
    node.attribute.iter_mut().find(|a| a.name == "tree_roots").unwrap().ints[2] = 99;
    let err = error(&model);
    assert!(err.contains("tree 2 has its root at node 99, past the nodes"), "{err}");
}

#[test]
fn an_opset_5_tree_ensemble_with_bad_indices_or_double_thresholds_is_refused_clearly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnxml/");
    let bytes = std::fs::read(format!("{dir}ensemble5_reg.onnx")).unwrap();
    let edit = |change: &dyn Fn(&mut NodeProto)| {
        let mut model = ModelProto::decode(&bytes[..]).unwrap();
        change(&mut model.graph.as_mut().unwrap().node[0]);
        error(&model)
    };
    let ints = |node: &mut NodeProto, name: &str, i: usize, v: i64| {
        node.attribute.iter_mut().find(|a| a.name == name).unwrap().ints[i] = v;
    };
    let err = edit(&|n| ints(n, "nodes_truenodeids", 0, 1000));
    assert!(err.contains("node 0 points at 1000, past the lists"), "{err}");
    let err = edit(&|n| ints(n, "nodes_trueleafs", 1, 2));
    assert!(err.contains("node 1: a leaf flag of 2"), "{err}");
    let err = edit(&|n| {
        let splits = n.attribute.iter_mut().find(|a| a.name == "nodes_splits").unwrap();
        let t = splits.t.as_mut().unwrap();
        t.data_type = DataType::Double as i32;
    });
    assert!(
        err.contains("nodes_splits is not a float tensor") && err.contains("only float ensembles"),
        "{err}"
    );
}
