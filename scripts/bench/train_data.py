#!/usr/bin/env python3
"""The generated data sets of scripts/bench-train, from scikit-learn's generators with fixed seeds,
with 10% of the feature values missing (at random, seeded).

    train_data.py OUT_DIR

Writes OUT_DIR/NAME.train.csv and OUT_DIR/NAME.test.csv (a header row, features x0..x19 then the
target y; an empty field is a missing value) and prints one line per set on stdout:
NAME TASK TARGET TRAIN_CSV TEST_CSV.
"""
import os
import re
import sys

import numpy as np
from sklearn.datasets import make_classification, make_regression

OUT = sys.argv[1]
MISSING = 0.1

# name: (task, generator, training rows); the rows after the training rows are the test rows.
SETS = {
    "binary": (
        "classification",
        lambda: make_classification(n_samples=250_000, n_features=20, n_informative=10, random_state=0),
        200_000,
    ),
    "multiclass": (
        "classification",
        lambda: make_classification(
            n_samples=125_000, n_features=20, n_informative=15, n_classes=10, random_state=0
        ),
        100_000,
    ),
    "regression": (
        "regression",
        lambda: make_regression(n_samples=250_000, n_features=20, noise=10, random_state=0),
        200_000,
    ),
}


def write_csv(path, x, y, task):
    """x as %.10g with NaN as an empty field, y as an integer class or a %.10g value."""
    target = y.astype(np.int64).astype(str) if task == "classification" else np.char.mod("%.10g", y)
    body = np.char.mod("%.10g", x)
    lines = [",".join(row) + "," + t for row, t in zip(body.tolist(), target.tolist())]
    text = "\n".join(lines)
    text = re.sub(r"(?m)(^|,)nan(?=,|$)", r"\1", text)
    header = ",".join(f"x{j}" for j in range(x.shape[1])) + ",y"
    with open(path, "w") as f:
        f.write(header + "\n" + text + "\n")


os.makedirs(OUT, exist_ok=True)
for seed, (name, (task, make, n_train)) in enumerate(SETS.items()):
    x, y = make()
    rng = np.random.default_rng(seed)
    x[rng.random(x.shape) < MISSING] = np.nan
    train, test = os.path.join(OUT, f"{name}.train.csv"), os.path.join(OUT, f"{name}.test.csv")
    write_csv(train, x[:n_train], y[:n_train], task)
    write_csv(test, x[n_train:], y[n_train:], task)
    print(name, task, "y", train, test)
