"""Small XGBoost and LightGBM models converted with onnxmltools, with onnxruntime's outputs.

Writes control-plane/tests/fixtures/onnxml/{name}.onnx and {name}.json (rows with NaNs, and
onnxruntime's label and probabilities, or value); lgb_cat has a categorical feature, which
onnxmltools writes as BRANCH_EQ chains. Run with the gbdt-bench venv.
"""
import json, os, sys
import numpy as np
import lightgbm as lgb
import xgboost as xgb
import onnxruntime as ort
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "control-plane", "tests", "fixtures", "onnxml")
N_FEATURES = 4


def data(task, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, N_FEATURES)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3]
    if task == "binary":
        y = (score > 0).astype(int)
    elif task == "multi":
        y = np.digitize(score, [-0.5, 0.5])
    else:
        y = score + 0.1 * rng.normal(size=300)
    x[rng.random(x.shape) < 0.15] = np.nan
    return x, y


def save(name, onx, x, task):
    path = os.path.join(OUT, name + ".onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rows = x[:40]
    rows[0, :] = np.nan
    res = sess.run(None, {sess.get_inputs()[0].name: rows})
    out = []
    for i, r in enumerate(rows):
        row = [None if np.isnan(v) else float(v) for v in r]
        if task == "reg":
            out.append({"x": row, "value": float(np.asarray(res[0]).reshape(-1)[i])})
        else:
            probs = res[1][i]
            if isinstance(probs, dict):
                probs = [probs[k] for k in sorted(probs)]
            else:
                probs = list(probs)
            out.append({"x": row, "label": int(res[0][i]), "probabilities": [float(p) for p in probs]})
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"rows": out}, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    ft = [("input", FloatTensorType([None, N_FEATURES]))]
    for task, seed in [("binary", 1), ("multi", 2), ("reg", 3)]:
        x, y = data(task, seed)
        if task == "reg":
            m = xgb.XGBRegressor(n_estimators=10, max_depth=3, random_state=seed)
        else:
            m = xgb.XGBClassifier(n_estimators=8, max_depth=3, random_state=seed)
        m.fit(x, y)
        save(f"xgb_{task}", convert_xgboost(m, initial_types=ft, target_opset=15), x, task)
        if task == "reg":
            l = lgb.LGBMRegressor(n_estimators=10, num_leaves=7, random_state=seed, verbose=-1)
        else:
            l = lgb.LGBMClassifier(n_estimators=8, num_leaves=7, random_state=seed, verbose=-1)
        l.fit(x, y)
        save(f"lgb_{task}", convert_lightgbm(l, initial_types=ft, target_opset=15, zipmap=False), x, task)

    # LightGBM with a categorical feature: onnxmltools writes each category set as a chain of
    # BRANCH_EQ nodes. The rows hold fractions, negatives and unseen codes, which BRANCH_EQ
    # (exact equality) puts in no set.
    x, y = data("binary", 4)
    rng = np.random.default_rng(4)
    x[:, 3] = rng.integers(0, 10, len(x)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ np.isin(x[:, 3], [1, 4, 5, 8])).astype(int)
    x[rng.random(len(x)) < 0.1, 3] = np.nan
    l = lgb.LGBMClassifier(n_estimators=8, num_leaves=7, min_child_samples=5, random_state=4, verbose=-1)
    l.fit(x, y, categorical_feature=[3])
    x[1:40:4, 3] = [2.5, -1.0, 15.0, 4.0000005, -0.0, 1.5, 8.0, 30.0, 0.5, 9.0][: len(range(1, 40, 4))]
    save("lgb_cat", convert_lightgbm(l, initial_types=ft, target_opset=15, zipmap=False), x, "binary")


if __name__ == "__main__":
    main()
