#!/usr/bin/env python3
"""The GBDT parity test's models and their libraries' own answers (tests/tests/all/gbdt.rs).

    parity_models.py OUT_DIR

Trains XGBoost and LightGBM models on generated data (numeric, with NaNs, with categoricals;
binary, multiclass, regression, poisson and other log links; 1 to 500 trees), fixed seeds, and
writes for each model NAME:
  NAME.json (XGBoost) or NAME.txt (LightGBM)   Booster.save_model
  NAME.reference.csv                           training rows without NaN, features and "target"
and OUT_DIR/cases.json: per model its file, task, feature names, classes and tolerance, and the
rows it is held to, with the library's own answers:
  rows          NaN as null; test rows, then for a sample of the model's splits the threshold
                itself and the values one ulp either side (np.nextafter, in f64, and for XGBoost
                also in f32, its split precision), each feature NaN, zeros and values within
                LightGBM's kZeroThreshold, unseen, negative, fractional and huge categories
  outputs       per row the class probabilities (classifiers) or the value (regressors), from
                Booster.predict (XGBoost's multi:softmax predicts labels only: its probabilities
                here are the softmax of its margins, output_margin=True)
  labels        classifiers: the library's label (argmax; multi:softmax's own predict)
  leaf_values   per row and tree, the value of the leaf the library's pred_leaf names (so the
                test can hold the path the IR takes to the library's, whatever the node numbering)
"""
import json
import os
import sys

import lightgbm as lgb
import numpy as np
import xgboost as xgb

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
N_TRAIN = 3000
N_TEST = 120


def make_data(seed, n_numeric, categories, task, n_classes, nan_rate):
    """Rows of n_numeric normal features then one integer-coded column per category count."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    numeric = rng.normal(size=(n, n_numeric))
    # Some exact zeros and tiny values: LightGBM's Zero missing type routes |x| <= 1e-35 as missing.
    numeric[rng.random((n, n_numeric)) < 0.05] = 0.0
    codes = np.stack([rng.integers(0, k, n) for k in categories], axis=1) if categories else np.zeros((n, 0))
    z = np.tanh(numeric) @ rng.normal(size=n_numeric) + 0.5 * numeric[:, 0] * numeric[:, -1]
    for j, k in enumerate(categories):
        z += rng.normal(size=k)[codes[:, j].astype(int)]
    x = np.concatenate([numeric, codes.astype(float)], axis=1)
    if nan_rate:
        x[rng.random(x.shape) < nan_rate] = np.nan
    noise = rng.normal(scale=0.3, size=n)
    if task == "binary":
        y = (z + noise > 0).astype(float)
    elif task == "multiclass":
        edges = np.quantile(z, np.linspace(0, 1, n_classes + 1)[1:-1])
        y = np.digitize(z + noise, edges).astype(float)
    elif task in ("poisson",):
        y = rng.poisson(np.exp(0.5 * np.clip(z, -3, 3))).astype(float)
    elif task in ("gamma", "tweedie"):
        y = rng.gamma(2.0, np.exp(0.3 * np.clip(z, -3, 3)) / 2.0)
    elif task == "logistic":
        y = 1.0 / (1.0 + np.exp(-(z + noise)))
    else:
        # Away from zero: the tolerance is relative.
        y = 10.0 + z + noise
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:]


# name, library, objective, task kind, trees (rounds), numeric features, categories, NaN rate, params
MODELS = [
    ("lgb-binary-nan", "lightgbm", "binary", "binary", 50, 6, [], 0.1, {"num_leaves": 15}),
    ("lgb-regression-1tree-zero", "lightgbm", "regression", "regression", 1, 4, [], 0.1,
     {"num_leaves": 31, "zero_as_missing": True}),
    ("lgb-multiclass-cat", "lightgbm", "multiclass", "multiclass", 40, 3, [5, 30], 0.05,
     {"num_leaves": 15, "num_class": 4, "min_data_per_group": 10, "cat_smooth": 1, "max_cat_to_onehot": 6}),
    ("lgb-poisson-no-missing", "lightgbm", "poisson", "poisson", 100, 5, [], 0.0,
     {"num_leaves": 15, "use_missing": False}),
    ("lgb-regression-500-cat", "lightgbm", "regression", "regression", 500, 6, [12], 0.05,
     {"num_leaves": 31, "learning_rate": 0.05, "min_data_per_group": 10, "cat_smooth": 1}),
    ("lgb-gamma", "lightgbm", "gamma", "gamma", 20, 4, [], 0.05, {"num_leaves": 7}),
    ("xgb-binary-nan", "xgboost", "binary:logistic", "binary", 50, 6, [], 0.1, {"max_depth": 4}),
    ("xgb-regression-1tree", "xgboost", "reg:squarederror", "regression", 1, 4, [], 0.0, {"max_depth": 6}),
    ("xgb-softprob-cat", "xgboost", "multi:softprob", "multiclass", 40, 3, [3, 30], 0.05,
     {"max_depth": 4, "num_class": 4, "max_cat_to_onehot": 4}),
    ("xgb-softmax", "xgboost", "multi:softmax", "multiclass", 20, 5, [], 0.05, {"max_depth": 3, "num_class": 3}),
    ("xgb-poisson", "xgboost", "count:poisson", "poisson", 100, 5, [], 0.05, {"max_depth": 4}),
    ("xgb-regression-500-cat", "xgboost", "reg:squarederror", "regression", 500, 6, [12], 0.05,
     {"max_depth": 5, "eta": 0.05}),
    ("xgb-reg-logistic", "xgboost", "reg:logistic", "logistic", 30, 4, [], 0.05, {"max_depth": 3}),
]


def f64(v):
    return None if np.isnan(v) else float(v)


def special_rows(base, splits, categorical, sizes, lib, rng):
    """Rows that probe the splits: thresholds and their ulp neighbours, NaN, zeros, categories."""
    rows = []
    n_features = base.shape[1]
    picks = rng.choice(len(splits), size=min(60, len(splits)), replace=False) if splits else []
    for i in picks:
        feature, threshold = splits[i]
        values = [threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)]
        if lib == "xgboost":
            t32 = np.float32(threshold)
            values += [float(np.nextafter(t32, np.float32(np.inf))), float(np.nextafter(t32, np.float32(-np.inf)))]
        for v in values:
            row = base[rng.integers(len(base))].copy()
            row[feature] = v
            rows.append(row)
    for feature in range(n_features):
        probes = [np.nan]
        if feature in categorical:
            k = sizes[categorical.index(feature)]
            probes += [0.0, k, k + 5, 1000.0, -1.0, -0.5, 2.5, 3.999, 1e10, 2.0**31, float(k - 1)]
        else:
            probes += [0.0, -0.0, 1e-36, -1e-36, 1e-35, np.nextafter(np.float64(np.float32(1e-35)), np.inf), 1e30, -1e30]
        for v in probes:
            row = base[rng.integers(len(base))].copy()
            row[feature] = v
            rows.append(row)
    row = np.full(n_features, np.nan)
    rows.append(row)
    return np.array(rows)


def lgb_splits_and_leaves(booster):
    """Numerical splits (feature, threshold) and per tree {leaf_index: leaf_value}."""
    splits, leaves = [], []
    for info in booster.dump_model()["tree_info"]:
        values = {}
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_index" in node or "split_index" not in node:
                values[node.get("leaf_index", 0)] = node["leaf_value"]
                continue
            if node["decision_type"] == "<=":
                splits.append((node["split_feature"], float(node["threshold"])))
            stack += [node["left_child"], node["right_child"]]
        leaves.append(values)
    return splits, leaves


def xgb_splits_and_leaves(path):
    model = json.load(open(path))
    splits, leaves = [], []
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        values = {}
        types = tree.get("split_type", [0] * len(tree["left_children"]))
        for nid, left in enumerate(tree["left_children"]):
            if left == -1:
                values[nid] = tree["split_conditions"][nid]
            elif types[nid] == 0:
                splits.append((tree["split_indices"][nid], float(tree["split_conditions"][nid])))
        leaves.append(values)
    return splits, leaves


def main():
    cases = []
    for index, (name, lib, objective, task, rounds, n_numeric, categories, nan_rate, extra) in enumerate(MODELS):
        seed = 1000 + index
        rng = np.random.default_rng(seed)
        n_classes = extra.get("num_class", 2 if task == "binary" else 1)
        x, y, x_test = make_data(seed, n_numeric, categories, task, n_classes, nan_rate)
        n_features = x.shape[1]
        names = [f"x{j}" for j in range(n_features)]
        categorical = list(range(n_numeric, n_features))
        if lib == "lightgbm":
            params = {"objective": objective, "seed": seed, "deterministic": True, "num_threads": 1, "verbose": -1}
            params.update(extra)
            data = lgb.Dataset(x, y, feature_name=names, categorical_feature=categorical or "auto")
            booster = lgb.train(params, data, num_boost_round=rounds)
            file = f"{name}.txt"
            booster.save_model(os.path.join(OUT, file))
            splits, leaves = lgb_splits_and_leaves(booster)
        else:
            params = {"objective": objective, "seed": seed, "nthread": 1, "tree_method": "hist"}
            params.update(extra)
            types = ["c" if j in categorical else "q" for j in range(n_features)]
            data = xgb.DMatrix(x, y, feature_names=names, feature_types=types, enable_categorical=bool(categorical))
            booster = xgb.train(params, data, num_boost_round=rounds)
            file = f"{name}.json"
            booster.save_model(os.path.join(OUT, file))
            splits, leaves = xgb_splits_and_leaves(os.path.join(OUT, file))
        base = x_test[~np.isnan(x_test).any(axis=1)]
        if len(base) == 0:
            base = np.nan_to_num(x_test)
        rows = np.concatenate([x_test, special_rows(base, splits, categorical, categories, lib, rng)])

        if lib == "lightgbm":
            raw = booster.predict(rows)
            pred_leaf = booster.predict(rows, pred_leaf=True)
        else:
            matrix = xgb.DMatrix(rows, feature_names=names, feature_types=types, enable_categorical=bool(categorical))
            raw = booster.predict(matrix)
            pred_leaf = booster.predict(matrix, pred_leaf=True)
        pred_leaf = np.asarray(pred_leaf).reshape(len(rows), -1).astype(int)
        assert pred_leaf.shape[1] == len(leaves), (name, pred_leaf.shape, len(leaves))
        leaf_values = [[leaves[t][int(pred_leaf[r, t])] for t in range(len(leaves))] for r in range(len(rows))]

        case = {
            "name": name,
            "library": lib,
            "library_version": lgb.__version__ if lib == "lightgbm" else xgb.__version__,
            "objective": objective,
            "file": file,
            "features": names,
            "trees": len(leaves),
            # LightGBM sums in f64; XGBoost in f32.
            "tolerance": 1e-9 if lib == "lightgbm" else 1e-5,
            "rows": [[f64(v) for v in row] for row in rows],
            "leaf_values": leaf_values,
        }
        if task in ("binary", "multiclass"):
            if objective == "multi:softmax":
                labels = np.asarray(raw).astype(int)
                margin = booster.predict(matrix, output_margin=True).astype(np.float64)
                e = np.exp(margin - margin.max(axis=1, keepdims=True))
                probabilities = e / e.sum(axis=1, keepdims=True)
            elif task == "binary":
                p = np.asarray(raw, dtype=np.float64).reshape(-1)
                probabilities = np.stack([1.0 - p, p], axis=1)
                labels = (p > 0.5).astype(int)
            else:
                probabilities = np.asarray(raw, dtype=np.float64)
                labels = probabilities.argmax(axis=1)
            case["classes"] = [str(k) for k in range(probabilities.shape[1])]
            case["outputs"] = probabilities.tolist()
            case["labels"] = labels.tolist()
        else:
            case["outputs"] = [[float(v)] for v in np.asarray(raw, dtype=np.float64)]
        cases.append(case)

        # The reference data: training rows without NaN, with the target.
        clean = ~np.isnan(x).any(axis=1)
        with open(os.path.join(OUT, f"{name}.reference.csv"), "w") as f:
            f.write(",".join(names + ["target"]) + "\n")
            for row, target in list(zip(x[clean], y[clean]))[:500]:
                values = [repr(float(v)) for v in row]
                target = str(int(target)) if task in ("binary", "multiclass") else repr(float(target))
                f.write(",".join(values + [target]) + "\n")
        print(f"{name}: {len(leaves)} trees, {len(rows)} rows", file=sys.stderr)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f, allow_nan=False)


main()
