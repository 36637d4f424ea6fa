#!/usr/bin/env python3
"""scikit-learn on the same train/test split as wasmline, with settings comparable to
control-plane/benches/train.rs; prints one JSON object per family."""

import json
import statistics
import sys
import time

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

train_csv, test_csv, target, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
x_train, y_train = train.drop(columns=[target]).to_numpy(), train[target].to_numpy()
x_test, y_test = test.drop(columns=[target]).to_numpy(), test[target].to_numpy()

families = {
    # linfa's alpha is an L2 penalty; sklearn's C is its inverse.
    "logistic_regression": lambda s: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=200)),
    "decision_tree": lambda s: DecisionTreeClassifier(max_depth=6, random_state=s),
    "random_forest": lambda s: RandomForestClassifier(n_estimators=100, max_depth=8, n_jobs=1, random_state=s),
    "random_forest_bagged": lambda s: RandomForestClassifier(
        n_estimators=100, max_depth=8, max_features=None, n_jobs=1, random_state=s
    ),
}
for name, make in families.items():
    times = []
    for r in range(repeats):
        model = make(42 + r)
        started = time.perf_counter()
        model.fit(x_train, y_train)
        times.append(time.perf_counter() - started)
    predicted = model.predict(x_test)
    proba = model.predict_proba(x_test)[:, 1]
    print(json.dumps({
        "family": name,
        "fit_seconds_median": statistics.median(times),
        "accuracy": accuracy_score(y_test, predicted),
        "f1": f1_score(y_test, predicted, average="macro"),
        "roc_auc": roc_auc_score(y_test, proba),
    }))
