#!/usr/bin/env python3
"""Runs an ONNX file written by Wasmline in onnxruntime and compares it with expected outputs.

    onnx_parity.py MODEL.onnx EXPECTED.json

EXPECTED.json holds {"rows": [[f64, ...], ...]} and either "labels" (class indices) and
"probabilities" (one list per row) for a classifier, or "values" (one number per row) for a
regressor, as the IR's reference evaluator gives them. The rows go in as one float32 batch.

Labels must be identical; numbers agree when |a - b| <= 1e-5 * max(|a|, |b|, 0.1): 1e-5
relative, 1e-6 absolute near zero (the rule of wasmline::onnx::scaled_difference).
Prints a short report; exits 1 on any mismatch, 2 when the files cannot be used.
"""

import json
import sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-5
SCALE_FLOOR = 0.1


def scaled_difference(expected, got):
    expected = np.asarray(expected, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(expected), np.abs(got)), SCALE_FLOOR)
    diff = np.abs(expected - got) / scale
    return np.where(np.isnan(diff), np.inf, diff)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, expected_path = argv[1], argv[2]
    try:
        with open(expected_path) as f:
            expected = json.load(f)
        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - any failure to load is reported the same way
        print(f"cannot load {model_path} or {expected_path}: {e}", file=sys.stderr)
        return 2

    rows = np.asarray(expected["rows"], dtype=np.float64)
    outputs = [o.name for o in session.get_outputs()]
    try:
        got = dict(zip(outputs, session.run(None, {"input": rows.astype(np.float32)})))
    except Exception as e:  # noqa: BLE001
        print(f"onnxruntime failed to run {model_path}: {e}", file=sys.stderr)
        return 2
    n = len(rows)

    bad = np.zeros(n, dtype=bool)
    diffs = []
    if "labels" in expected:
        want_labels = np.asarray(expected["labels"], dtype=np.int64)
        want_p = np.asarray(expected["probabilities"], dtype=np.float64)
        got_labels = np.asarray(got["label"]).reshape(-1)
        got_p = np.asarray(got["probabilities"], dtype=np.float64)
        if got_labels.shape != (n,) or got_p.shape != want_p.shape:
            print(f"output shapes: label {got_labels.shape}, probabilities {got_p.shape}; "
                  f"expected ({n},) and {want_p.shape}")
            return 1
        bad |= got_labels != want_labels
        d = scaled_difference(want_p, got_p)
        bad |= (d > TOLERANCE).any(axis=1)
        diffs = [(d, np.abs(want_p - got_p))]
        show = lambda i: (f"label {want_labels[i]}, probabilities {want_p[i].tolist()}",
                          f"label {got_labels[i]}, probabilities {got_p[i].tolist()}")
    else:
        want_v = np.asarray(expected["values"], dtype=np.float64)
        got_v = np.asarray(got["value"], dtype=np.float64)
        if got_v.shape != (n, 1):
            print(f"output shape: value {got_v.shape}, expected ({n}, 1)")
            return 1
        got_v = got_v[:, 0]
        d = scaled_difference(want_v, got_v)
        bad |= d > TOLERANCE
        diffs = [(d, np.abs(want_v - got_v))]
        show = lambda i: (f"value {want_v[i]}", f"value {got_v[i]}")

    max_rel = max((float(np.max(d, initial=0.0)) for d, _ in diffs), default=0.0)
    max_abs = max((float(np.nanmax(a, initial=0.0)) for _, a in diffs), default=0.0)
    summary = (f"onnxruntime {ort.__version__}: {{}} (max abs diff {max_abs:.3e}, "
               f"max rel diff {max_rel:.3e}, tolerance {TOLERANCE:g})")
    mismatches = int(bad.sum())
    if mismatches == 0:
        print(summary.format(f"{n} rows agree"))
        return 0
    first = int(np.argmax(bad))
    want, have = show(first)
    print(summary.format(f"{mismatches} of {n} rows disagree"))
    print(f"first: row {first}: expected {want}, got {have}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
