#!/usr/bin/env python3
"""The models of scripts/bench-gbdt, trained here with fixed seeds, and the rows they are timed on.

    gbdt_models.py OUT_DIR

For each model NAME it writes into OUT_DIR:
  NAME.json (XGBoost, Booster.save_model) or NAME.txt (LightGBM, Booster.save_model)
  NAME.onnx            onnxmltools' conversion, or NAME.onnx.error with the reason it has none
  NAME.rows.f64        10,000 rows, little-endian f64, row-major (not seen in training)
  NAME.meta.json       {"name", "library", "file", "n_features", "description", "task"}
"""
import json
import os
import sys
import traceback

import lightgbm as lgb
import numpy as np
import xgboost as xgb

OUT = sys.argv[1]
ROWS = 10_000
SEED = 7


def data(n_features, n_categorical, n_rows, task, seed, n_classes=2):
    """Features (the last n_categorical of them integer category codes) and a target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_features))
    sizes = [8, 20, 50][:n_categorical]
    for j, size in enumerate(sizes):
        x[:, n_features - n_categorical + j] = rng.integers(0, size, n_rows)
    w = rng.normal(size=n_features)
    z = np.tanh(x[:, : n_features - n_categorical]) @ w[: n_features - n_categorical]
    for j, size in enumerate(sizes):
        effect = rng.normal(size=size)
        z += effect[x[:, n_features - n_categorical + j].astype(int)]
    z += 0.3 * x[:, 0] * x[:, 1]
    if task == "binary":
        y = (z + rng.normal(scale=0.5, size=n_rows) > 0).astype(float)
    elif task == "multiclass":
        edges = np.quantile(z, np.linspace(0, 1, n_classes + 1)[1:-1])
        y = np.digitize(z + rng.normal(scale=0.3, size=n_rows), edges).astype(float)
    else:
        y = z + rng.normal(scale=0.3, size=n_rows)
    return x, y


# (name stem, features, categorical, task, rounds, classes)
SHAPES = [
    ("100x31-5f", 5, 0, "binary", 100, 2),
    ("1000x31-15f-cat", 15, 3, "regression", 1000, 1),
    ("10class-100r", 10, 0, "multiclass", 100, 10),
]


def onnx_of(booster, n_features, path, library):
    """Writes onnxmltools' ONNX file for booster, or the reason it cannot."""
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, n_features]))]
        if library == "lightgbm":
            model = onnxmltools.convert_lightgbm(booster, initial_types=types, zipmap=False, target_opset=15)
        else:
            model = onnxmltools.convert_xgboost(booster, initial_types=types, target_opset=15)
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
    except Exception as e:  # the converter's own refusal is the table's reason
        with open(path + ".error", "w") as f:
            f.write(f"onnxmltools: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200])
        traceback.print_exc(file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    for stem, n_features, n_categorical, task, rounds, n_classes in SHAPES:
        x, y = data(n_features, n_categorical, 20_000 + ROWS, task, SEED, n_classes)
        x_train, y_train, x_rows = x[:20_000], y[:20_000], x[20_000:]
        categorical = list(range(n_features - n_categorical, n_features))
        what = f"{task}, {n_features} features" + (f" ({n_categorical} categorical)" if n_categorical else "")

        # LightGBM: 31 leaves per tree (its default num_leaves).
        objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[task]
        params = {
            "objective": objective,
            "num_leaves": 31,
            "learning_rate": 0.1,
            "seed": SEED,
            "deterministic": True,
            "num_threads": 2,
            "verbose": -1,
            "min_data_per_group": 20,
            "cat_smooth": 10,
        }
        if task == "multiclass":
            params["num_class"] = n_classes
        train = lgb.Dataset(x_train, y_train, categorical_feature=categorical or "auto", free_raw_data=False)
        booster = lgb.train(params, train, num_boost_round=rounds)
        name = f"lightgbm-{stem}"
        booster.save_model(os.path.join(OUT, f"{name}.txt"))
        onnx_of(booster, n_features, os.path.join(OUT, f"{name}.onnx"), "lightgbm")
        write(name, "lightgbm", f"{name}.txt", n_features, task, booster.num_trees(), what, x_rows)

        # XGBoost: lossguide growth capped at 31 leaves, the same shape.
        objective = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}[task]
        params = {
            "objective": objective,
            "tree_method": "hist",
            "grow_policy": "lossguide",
            "max_leaves": 31,
            "max_depth": 0,
            "eta": 0.1,
            "seed": SEED,
            "nthread": 2,
        }
        if task == "multiclass":
            params["num_class"] = n_classes
        types = ["c" if j in categorical else "q" for j in range(n_features)]
        train = xgb.DMatrix(x_train, y_train, feature_types=types, enable_categorical=bool(categorical))
        booster = xgb.train(params, train, num_boost_round=rounds)
        name = f"xgboost-{stem}"
        booster.save_model(os.path.join(OUT, f"{name}.json"))
        onnx_of(booster, n_features, os.path.join(OUT, f"{name}.onnx"), "xgboost")
        n_trees = booster.num_boosted_rounds() * (n_classes if task == "multiclass" else 1)
        write(name, "xgboost", f"{name}.json", n_features, task, n_trees, what, x_rows)


def write(name, library, file, n_features, task, n_trees, what, rows):
    np.ascontiguousarray(rows, dtype="<f8").tofile(os.path.join(OUT, f"{name}.rows.f64"))
    meta = {
        "name": name,
        "library": library,
        "file": file,
        "n_features": n_features,
        "task": task,
        "description": f"{n_trees} trees x 31 leaves, {what}",
    }
    with open(os.path.join(OUT, f"{name}.meta.json"), "w") as f:
        json.dump(meta, f)
    print(f"trained {name}: {meta['description']}", file=sys.stderr)


main()
