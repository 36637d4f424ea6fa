#!/usr/bin/env python3
"""Tiny XGBoost and LightGBM models, with rows and the libraries' own predictions, for the
parity tests of control-plane's importers (control-plane/src/import/tests.rs).

Run with the venv of scripts/requirements-gbdt.txt:
    python3 -m venv /root/.cache/wasmline/gbdt-venv
    /root/.cache/wasmline/gbdt-venv/bin/pip install -r scripts/requirements-gbdt.txt
    /root/.cache/wasmline/gbdt-venv/bin/python scripts/gbdt/make_fixtures.py

Writes control-plane/tests/fixtures/gbdt/{name}.{json,txt} (the model as the library saves it)
and {name}.rows.json: {"rows": [[x or null for NaN]], "predictions": [value or [probabilities]],
"leaves": [[leaf per tree]]}. Fixed seeds: the output is the same on every run.
"""

import json
import math
from pathlib import Path

import lightgbm as lgb
import numpy as np
import xgboost as xgb

OUT = Path(__file__).resolve().parents[2] / "control-plane" / "tests" / "fixtures" / "gbdt"
N_ROWS = 400
N_FEATURES = 4
CAT = 3  # the categorical column (0..5 in training)


def data(seed, categorical=False, zeros=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, N_FEATURES))
    x[rng.random(x.shape) < 0.1] = np.nan
    if categorical:
        x[:, CAT] = rng.integers(0, 6, size=N_ROWS).astype(float)
        x[rng.random(N_ROWS) < 0.1, CAT] = np.nan
    if zeros:
        x[rng.random(x.shape) < 0.15] = 0.0
    signal = np.nan_to_num(x[:, 0]) - 0.5 * np.nan_to_num(x[:, 1]) + 0.3 * np.isnan(x[:, 2])
    if categorical:
        signal += np.where(np.isin(x[:, CAT], [1.0, 4.0]), 1.0, 0.0)
    return x, signal, rng


def probe_rows(x, thresholds, rng, categorical=False):
    """Training-like rows, rows with NaN everywhere, values equal to the thresholds, unseen categories."""
    rows = [list(r) for r in x[:30]]
    rows.append([math.nan] * N_FEATURES)
    rows.append([0.0] * N_FEATURES)
    rows.append([-0.0, 1e-36, -1e-36, 0.0])
    for f, t in thresholds[:24]:
        r = list(rng.normal(size=N_FEATURES))
        r[f] = t
        if categorical:
            r[CAT] = float(rng.integers(0, 6))
        rows.append(r)
    if categorical:
        for c in [6.0, 7.0, 100.0, -1.0, -0.5, 2.7, 1e9, 1.0, 4.0]:
            r = list(rng.normal(size=N_FEATURES))
            r[CAT] = c
            rows.append(r)
    return np.array(rows, dtype=float)


def clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def write_rows(name, rows, predictions, leaves):
    body = {
        "rows": [[clean(float(v)) for v in r] for r in rows],
        "predictions": [p if isinstance(p, float) else [float(q) for q in p] for p in predictions],
        "leaves": [[int(v) for v in r] for r in leaves],
    }
    (OUT / f"{name}.rows.json").write_text(json.dumps(body, separators=(",", ":")) + "\n")


def xgb_thresholds(path):
    """(feature, threshold) of every numerical split, read from the saved JSON."""
    trees = json.loads(path.read_text())["learner"]["gradient_booster"]["model"]["trees"]
    out = []
    for t in trees:
        types = t.get("split_type") or [0] * len(t["left_children"])
        for i, left in enumerate(t["left_children"]):
            if left != -1 and types[i] == 0:
                out.append((t["split_indices"][i], float(np.float32(t["split_conditions"][i]))))
    return out


def xgboost_model(name, params, rounds, seed, labels, categorical=False, names=True):
    x, signal, rng = data(seed, categorical)
    y = labels(signal, rng)
    kwargs = {}
    if categorical:
        kwargs = dict(feature_types=["q", "q", "q", "c"], enable_categorical=True)
    fnames = ["alpha", "beta", "gamma", "delta"] if names else None
    d = xgb.DMatrix(x, label=y, feature_names=fnames, **kwargs)
    booster = xgb.train({**params, "seed": seed, "max_depth": 3, "eta": 0.3}, d, rounds)
    booster.save_model(str(OUT / f"{name}.json"))
    rows = probe_rows(x, xgb_thresholds(OUT / f"{name}.json"), rng, categorical)
    dr = xgb.DMatrix(rows, feature_names=fnames, **kwargs)
    pred = booster.predict(dr)
    leaves = booster.predict(dr, pred_leaf=True).reshape(len(rows), -1)
    predictions = [float(p) if np.ndim(p) == 0 else list(map(float, p)) for p in pred]
    write_rows(name, rows, predictions, leaves)


def lgb_thresholds(booster):
    out = []
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            n = stack.pop()
            if "split_feature" in n:
                if n["decision_type"] == "<=":
                    out.append((n["split_feature"], float(n["threshold"])))
                stack += [n["left_child"], n["right_child"]]
    return out


def lightgbm_model(name, params, rounds, seed, labels, categorical=False, zeros=False):
    x, signal, rng = data(seed, categorical, zeros)
    y = labels(signal, rng)
    cats = [CAT] if categorical else "auto"
    d = lgb.Dataset(x, label=y, categorical_feature=cats, feature_name=["alpha", "beta", "gamma", "delta"],
                    params={"min_data_per_group": 5, "cat_smooth": 1, "max_cat_to_onehot": 2})
    booster = lgb.train({**params, "seed": seed, "num_leaves": 7, "learning_rate": 0.3, "verbose": -1,
                         "min_data_in_leaf": 5, "deterministic": True, "num_threads": 1}, d, rounds)
    booster.save_model(str(OUT / f"{name}.txt"))
    rows = probe_rows(x, lgb_thresholds(booster), rng, categorical)
    pred = booster.predict(rows)
    leaves = booster.predict(rows, pred_leaf=True).reshape(len(rows), -1)
    predictions = [float(p) if np.ndim(p) == 0 else list(map(float, p)) for p in pred]
    write_rows(name, rows, predictions, leaves)


def binary(signal, rng):
    return (signal + 0.3 * rng.normal(size=len(signal)) > 0).astype(float)


def three(signal, rng):
    s = signal + 0.3 * rng.normal(size=len(signal))
    return np.digitize(s, [-0.5, 0.5]).astype(float)


def real(signal, rng):
    return signal + 0.1 * rng.normal(size=len(signal))


def counts(signal, rng):
    return rng.poisson(np.exp(0.5 * signal)).astype(float)


def unit(signal, rng):
    return 1.0 / (1.0 + np.exp(-signal))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    xgboost_model("xgb_binary", {"objective": "binary:logistic"}, 6, 1, binary)
    xgboost_model("xgb_multi", {"objective": "multi:softprob", "num_class": 3, "num_parallel_tree": 2,
                                "subsample": 0.8}, 3, 2, three, names=False)
    xgboost_model("xgb_regression_cat", {"objective": "reg:squarederror", "max_cat_to_onehot": 1}, 6, 3, real,
                  categorical=True)
    xgboost_model("xgb_poisson", {"objective": "count:poisson"}, 5, 4, counts)
    xgboost_model("xgb_reg_logistic", {"objective": "reg:logistic"}, 4, 5, unit)
    lightgbm_model("lgb_binary", {"objective": "binary", "sigmoid": 0.7}, 6, 11, binary)
    lightgbm_model("lgb_multi", {"objective": "multiclass", "num_class": 3}, 3, 12, three)
    lightgbm_model("lgb_regression_cat", {"objective": "regression"}, 6, 13, real, categorical=True)
    lightgbm_model("lgb_poisson_zero", {"objective": "poisson", "zero_as_missing": True}, 5, 14, counts, zeros=True)
    lightgbm_model("lgb_cross_entropy", {"objective": "cross_entropy"}, 4, 15, unit)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
