"""An ai.onnx.ml opset 5 TreeEnsemble regressor made by hand, with onnxruntime's outputs.

Writes control-plane/tests/fixtures/onnxml/ensemble5_reg.onnx and .json (rows with NaNs and
onnxruntime's value per row, as make_onnxml_fixtures.py writes them). Three trees: BRANCH_LEQ,
BRANCH_LT, BRANCH_GT with missing-value tracking, a BRANCH_MEMBER set, and a tree that is one
leaf (both branches of its root to the same leaf). Run with any venv that has onnx and
onnxruntime (the test venv does).
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "control-plane", "tests", "fixtures", "onnxml")

# Interior nodes, global indices:
# tree 0: n0: x0 <= 0.25 ? n1 : leaf0 ; n1: x2 member {1, 3, 4} ? leaf1 : leaf2   (NaN: true at n0)
# tree 1: n2: x1 < -0.5 ? leaf3 : n3 ; n3: x0 > 1.5 ? leaf4 : leaf5             (NaN: false)
# tree 2: n4: x1 <= 0 ? leaf6 : leaf6 (a single leaf)
nodes = dict(
    nodes_featureids=[0, 2, 1, 0, 1],
    nodes_modes=[0, 6, 1, 3, 0],
    nodes_splits=[0.25, 0.0, -0.5, 1.5, 0.0],
    nodes_truenodeids=[1, 1, 3, 4, 6],
    nodes_trueleafs=[0, 1, 1, 1, 1],
    nodes_falsenodeids=[0, 2, 3, 5, 6],
    nodes_falseleafs=[1, 1, 0, 1, 1],
    nodes_missing_value_tracks_true=[1, 0, 0, 0, 0],
)
leaf_weights = [1.5, -2.0, 0.75, 3.0, -1.25, 0.5, 0.125]
node = helper.make_node(
    "TreeEnsemble",
    ["X"],
    ["Y"],
    domain="ai.onnx.ml",
    n_targets=1,
    aggregate_function=1,
    post_transform=0,
    tree_roots=[0, 2, 4],
    nodes_featureids=nodes["nodes_featureids"],
    nodes_modes=numpy_helper.from_array(np.array(nodes["nodes_modes"], dtype=np.uint8), "nodes_modes"),
    nodes_splits=numpy_helper.from_array(np.array(nodes["nodes_splits"], dtype=np.float32), "nodes_splits"),
    nodes_truenodeids=nodes["nodes_truenodeids"],
    nodes_trueleafs=nodes["nodes_trueleafs"],
    nodes_falsenodeids=nodes["nodes_falsenodeids"],
    nodes_falseleafs=nodes["nodes_falseleafs"],
    nodes_missing_value_tracks_true=nodes["nodes_missing_value_tracks_true"],
    membership_values=numpy_helper.from_array(np.array([1.0, 3.0, 4.0], dtype=np.float32), "membership_values"),
    leaf_targetids=[0] * len(leaf_weights),
    leaf_weights=numpy_helper.from_array(np.array(leaf_weights, dtype=np.float32), "leaf_weights"),
)
graph = helper.make_graph(
    [node],
    "ensemble5",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
model.ir_version = 10
onnx.checker.check_model(model)

rng = np.random.default_rng(5)
x = rng.normal(size=(60, 3)).astype(np.float32)
x[:, 2] = rng.integers(-1, 6, 60)
specials = [0.25, np.nextafter(np.float32(0.25), np.float32(1)), -0.5, 1.5, 0.0, 2.5, 3.0, np.nan]
for i in range(0, 60, 3):
    x[i, i % 3] = specials[(i // 3) % len(specials)]
x[rng.random(x.shape) < 0.1] = np.nan

os.makedirs(OUT, exist_ok=True)
path = os.path.join(OUT, "ensemble5_reg.onnx")
onnx.save(model, path)
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
y = session.run(None, {"X": x})[0].reshape(-1)
rows = [{"x": [None if np.isnan(v) else float(v) for v in r], "value": float(v)} for r, v in zip(x, y)]
with open(os.path.join(OUT, "ensemble5_reg.json"), "w") as f:
    json.dump({"rows": rows}, f)
print(f"{path}: {len(rows)} rows")
