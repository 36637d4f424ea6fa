#!/usr/bin/env python3
"""MLServer side of scripts/bench-serve: trains a scikit-learn RandomForestClassifier on the same
wine train split as wasmline with the same hyperparameters (100 trees, max_depth 8), saves it as
MLServer's sklearn runtime expects it, and writes the test rows with scikit-learn's own answers.

    serve_sklearn.py TRAIN.csv TEST.csv TARGET MANIFEST.json NAME OUT_DIR

OUT_DIR/NAME/{model.joblib, model-settings.json}  the model for `mlserver start OUT_DIR`
OUT_DIR/rows.json                                 {"features", "rows", "sklearn_proba", "sklearn_label"}

Runs in the MLServer venv, so that the pickled model matches the scikit-learn MLServer loads.
"""
import json
import os
import sys

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

train_csv, test_csv, target, manifest_path, name, out = sys.argv[1:7]
manifest = json.load(open(manifest_path))
features = [f["name"] for f in manifest["features"]]
train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
x_train = train[features].to_numpy(dtype=np.float64)
y_train = train[target].to_numpy()
x_test = test[features].to_numpy(dtype=np.float64)

# wasmline's random_forest(n_trees=100, max_depth=8). Its feature_fraction draws one feature
# subset per tree; scikit-learn's max_features draws one per split (default sqrt), so the forests
# are not the same trees, only the same size. n_jobs=1: one thread, as the other servers.
model = RandomForestClassifier(n_estimators=100, max_depth=8, n_jobs=1, random_state=42)
model.fit(x_train, y_train)

folder = os.path.join(out, name)
os.makedirs(folder, exist_ok=True)
joblib.dump(model, os.path.join(folder, "model.joblib"))
with open(os.path.join(folder, "model-settings.json"), "w") as f:
    json.dump({
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }, f, indent=2)
with open(os.path.join(out, "rows.json"), "w") as f:
    json.dump({
        "features": features,
        "rows": x_test.tolist(),
        "sklearn_proba": model.predict_proba(x_test).tolist(),
        "sklearn_label": [str(v) for v in model.predict(x_test)],
        "sklearn_classes": [str(c) for c in model.classes_],
    }, f)
print(json.dumps({"model": name, "test_accuracy": float((model.predict(x_test) == test[target].to_numpy()).mean())}))
