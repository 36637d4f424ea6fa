#!/usr/bin/env python3
"""Trains scikit-learn models on the bundled wine data and converts them to ONNX with skl2onnx.

    make_sklearn_onnx.py OUT_DIR

Writes OUT_DIR/NAME.onnx for every model below and OUT_DIR/expected.json:

    {"features": [...], "rows": [[f64, ...], ...],
     "models": {NAME: {"task": "classification" | "regression", "classes": [...],
                       "labels": [class index, ...], "probabilities": [[...], ...],
                       "pure": [bool, ...], "values": [...], "supported": bool}}}

"labels" are indices into "classes" (the class labels as strings, in sklearn's order);
"pure" says, per row, whether sklearn's probabilities for it are all 0 or 1 (for a single tree:
the leaf the row reaches holds one class). "supported": whether `wasmline import-onnx` should
take the file. Models whose file should be refused are written too, to test the errors.

The data: examples/winequality/winequality-red.csv; "good" = quality >= 6. The rows are the
held-out quarter of a seeded split. Conversion uses opset 13 and ai.onnx.ml 3, float32 input.
Used by control-plane/tests/all/import_onnx.rs.
"""

import json
import os
import sys
import warnings

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "examples", "winequality", "winequality-red.csv")
SEED = 7
TARGET_OPSET = {"": 13, "ai.onnx.ml": 3}


def load():
    with open(DATA) as f:
        header = [h.strip('"') for h in f.readline().strip().split(",")]
    data = np.loadtxt(DATA, delimiter=",", skiprows=1, dtype=np.float64)
    features = header[:-1]
    return features, data[:, :-1], data[:, -1]


def convert(model, x, name, path, metadata=None):
    onx = to_onnx(
        model,
        x[:1].astype(np.float32),
        target_opset=TARGET_OPSET,
        options={id(model): {"zipmap": True}} if hasattr(model, "predict_proba") else None,
    )
    onx.graph.name = name
    for key, value in (metadata or {}).items():
        entry = onx.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(onx)
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())


def classifier(model, rows, supported=True):
    probabilities = model.predict_proba(rows)
    labels = model.predict(rows)
    classes = list(model.classes_)
    return {
        "task": "classification",
        "classes": [str(int(c)) if isinstance(c, (int, np.integer, float, np.floating)) else str(c) for c in classes],
        "labels": [classes.index(v) for v in labels],
        "probabilities": probabilities.tolist(),
        "pure": [bool(np.all((p == 0.0) | (p == 1.0))) for p in probabilities],
        "supported": supported,
    }


def labels(model, rows):
    """Labels only: the model has no probabilities (raw decision scores)."""
    classes = list(model.classes_)
    return {
        "task": "classification",
        "classes": [str(int(c)) for c in classes],
        "labels": [classes.index(v) for v in model.predict(rows)],
        "supported": True,
    }


def regressor(model, rows, supported=True):
    return {
        "task": "regression",
        "values": [float(v) for v in model.predict(rows)],
        "supported": supported,
    }


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    warnings.filterwarnings("ignore")
    features, x, quality = load()
    good = (quality >= 6).astype(np.int64)
    quality_class = quality.astype(np.int64)
    x_train, x_test, q_train, _q_test, g_train, _g_test, c_train, _c_test = train_test_split(
        x, quality, good, quality_class, test_size=0.25, random_state=SEED
    )

    # Fully grown trees on rows whose features occur once have pure leaves: their forest's soft
    # vote is a hard vote.
    _, first = np.unique(x_train, axis=0, return_index=True)
    unique = np.sort(first)

    models = {
        "linear_regression": (LinearRegression().fit(x_train, q_train), regressor, {}),
        "logistic_binary": (LogisticRegression(max_iter=5000).fit(x_train, g_train), classifier, {}),
        "logistic_multinomial": (LogisticRegression(max_iter=5000).fit(x_train, c_train), classifier, {}),
        "scaler_logistic": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, g_train),
            classifier,
            {"features": json.dumps(features)},
        ),
        "scaler_linear_regression": (
            make_pipeline(StandardScaler(), LinearRegression()).fit(x_train, q_train),
            regressor,
            {"target": "quality"},
        ),
        "decision_tree": (
            DecisionTreeClassifier(max_depth=6, random_state=SEED).fit(x_train, c_train),
            classifier,
            {},
        ),
        "decision_tree_pure": (
            DecisionTreeClassifier(random_state=SEED).fit(x_train[unique], g_train[unique]),
            classifier,
            {},
        ),
        "decision_tree_regressor": (
            DecisionTreeRegressor(max_depth=6, random_state=SEED).fit(x_train, q_train),
            regressor,
            {},
        ),
        "random_forest_regressor": (
            RandomForestRegressor(n_estimators=8, max_depth=6, random_state=SEED).fit(x_train, q_train),
            regressor,
            {},
        ),
        "random_forest_pure": (
            RandomForestClassifier(n_estimators=9, random_state=SEED).fit(x_train[unique], c_train[unique]),
            classifier,
            {},
        ),
        "random_forest_soft": (
            RandomForestClassifier(n_estimators=5, max_depth=4, random_state=SEED).fit(x_train, g_train),
            classifier,
            {},
        ),
        "random_forest_soft_multiclass": (
            RandomForestClassifier(n_estimators=30, max_depth=8, random_state=SEED).fit(x_train, c_train),
            classifier,
            {},
        ),
        "linear_svc": (LinearSVC(random_state=SEED).fit(x_train, c_train), labels, {}),
        "svm": (
            SVC(probability=False, random_state=SEED).fit(x_train[:300], g_train[:300]),
            None,
            {},
        ),
    }
    expected = {"features": features, "rows": x_test.tolist(), "models": {}}
    for name, (model, predictions, metadata) in models.items():
        convert(model, x_train, name, os.path.join(out, f"{name}.onnx"), metadata)
        if predictions is None:
            expected["models"][name] = {"supported": False}
        else:
            expected["models"][name] = predictions(model, x_test)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"wrote {len(models)} models and {len(x_test)} rows to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
