#!/usr/bin/env python3
"""LightGBM and scikit-learn on the same train/test split as wasmline, with the settings of
control-plane/benches/train.rs. Prints one JSON object per (family, library, threads).

    train_peers.py TRAIN.csv TEST.csv TARGET classification|regression REPEATS [--bundled]

Gradient boosting: LightGBM and HistGradientBoosting (100 trees, 31 leaves, learning rate 0.1, 255
bins, 20 rows a leaf, no L2, no sampling, no early stopping); on classification sets the forest
(100 trees of depth 8, sqrt of the features per split). Each at 1 and 2 threads. --bundled adds
the rows the wine set always had: a logistic regression, one tree of depth 6 and a forest that
considers every feature (1 thread).

The CSV files have a header row; an empty field is a missing value (NaN).
"""
import io
import json
import re
import statistics
import sys
import time
import warnings

import lightgbm as lgb
import numpy as np
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score, roc_auc_score, root_mean_squared_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

THREADS = (1, 2)
SEED = 42


def read_csv(path, target):
    """(features, target) of a CSV file with a header row; empty fields become NaN."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        body = re.sub(r"(?m)(^|,)(?=,|$)", r"\1nan", f.read().rstrip("\n"))
    data = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
    j = header.index(target)
    return np.delete(data, j, axis=1), data[:, j]


def gbdt(task, library, threads, seed):
    shared = dict(learning_rate=0.1, random_state=seed)
    if library == "lightgbm":
        make = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
        return make(
            n_estimators=100, num_leaves=31, max_bin=255, min_child_samples=20, reg_lambda=0.0,
            subsample=1.0, colsample_bytree=1.0, deterministic=True, n_jobs=threads, verbose=-1, **shared,
        )
    make = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return make(
        max_iter=100, max_leaf_nodes=31, max_bins=255, min_samples_leaf=20, l2_regularization=0.0,
        early_stopping=False, **shared,
    )


def forest(max_features, threads, seed):
    return RandomForestClassifier(
        n_estimators=100, max_depth=8, max_features=max_features, n_jobs=threads, random_state=seed
    )


def metrics(task, model, x, y):
    if task == "regression":
        predicted = model.predict(x)
        return {"rmse": root_mean_squared_error(y, predicted), "r2": r2_score(y, predicted)}
    proba = model.predict_proba(x)
    predicted = model.classes_[proba.argmax(axis=1)]
    binary = proba.shape[1] == 2
    return {
        "accuracy": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted, average="macro"),
        "roc_auc": roc_auc_score(y, proba[:, 1]) if binary else roc_auc_score(y, proba, multi_class="ovr"),
        "log_loss": log_loss(y, proba, labels=model.classes_),
    }


def main():
    train_csv, test_csv, target, task, repeats = sys.argv[1:6]
    repeats, bundled = int(repeats), "--bundled" in sys.argv[6:]
    assert task in ("classification", "regression"), task
    x_train, y_train = read_csv(train_csv, target)
    x_test, y_test = read_csv(test_csv, target)
    if task == "classification":
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)

    # (family, library, threads, make(seed)); the threads are the library's own, and threadpoolctl
    # caps the OpenMP pool HistGradientBoosting uses.
    runs = []
    if bundled and task == "classification":
        runs += [
            # linfa's alpha is an L2 penalty; sklearn's C is its inverse.
            ("logistic_regression", "sklearn", 1,
             lambda s: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=200))),
            ("decision_tree", "sklearn", 1, lambda s: DecisionTreeClassifier(max_depth=6, random_state=s)),
        ]
    for t in THREADS:
        runs += [
            ("gradient_boosting", "lightgbm", t, lambda s, t=t: gbdt(task, "lightgbm", t, s)),
            ("gradient_boosting", "sklearn_hgb", t, lambda s, t=t: gbdt(task, "hgb", t, s)),
        ]
        if task == "classification":
            runs.append(("random_forest", "sklearn", t, lambda s, t=t: forest("sqrt", t, s)))
            if bundled:
                runs.append(("random_forest_bagged", "sklearn", t, lambda s, t=t: forest(None, t, s)))

    for family, library, threads, make in runs:
        times = []
        with threadpool_limits(threads):
            for r in range(repeats):
                model = make(SEED + r)
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(x_train, y_train)
                times.append(time.perf_counter() - started)
        print(json.dumps({
            "family": family,
            "library": library,
            "threads": threads,
            "repeats": repeats,
            "fit_seconds": statistics.median(times),
            "train_rows": len(y_train),
            "test_rows": len(y_test),
            "features": x_train.shape[1],
            "task": task,
            **metrics(task, model, x_test, y_test),
        }), flush=True)


main()
