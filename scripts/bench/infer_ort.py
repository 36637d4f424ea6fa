#!/usr/bin/env python3
"""onnxruntime side of the inference benchmark: the same ONNX file and rows as wasmtime and tract.

    infer_ort.py MODEL.onnx ROWS.json NAME

ROWS.json is {"rows": [[f64, ...], ...]} (at least 1000 rows). Prints one JSON object: the time
of one InferenceSession.run call with 1 row (median of many), and per row at batch 1000.
"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

model, rows_path, name = sys.argv[1], sys.argv[2], sys.argv[3]
rows = np.asarray(json.load(open(rows_path))["rows"], dtype=np.float32)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
one = rows[:1]
batch = rows[:1000]
for _ in range(200):
    session.run(None, {input_name: one})


def timed(x, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {input_name: x})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


print(json.dumps({
    "model": name,
    "ort_batch1_seconds": timed(one, 2000),
    "ort_batch1000_per_row_seconds": timed(batch, 50) / len(batch),
}))
