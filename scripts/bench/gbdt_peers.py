#!/usr/bin/env python3
"""The peers' side of scripts/bench-gbdt, one model: the library's own predict, lleaves (LightGBM
models), treelite + tl2cgen compiled with the system C compiler, and onnxruntime on onnxmltools'
file, all on one thread, on the same rows as wasmtime.

    gbdt_peers.py OUT_DIR NAME

Prints one JSON object: per peer, seconds per call at batch 1 (median over many calls, each on the
next of 1,000 rows), seconds per row at batch 10,000, and for lleaves and tl2cgen the same
through their native entry point called with ctypes (no Python wrapper); the worst relative difference from the
library's own predictions; or the reason a peer could not run. Writes the library's predictions
(f64, row-major, the probabilities or values) to NAME.library.f64 for the table's check of the
module's answers.
"""
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np

OUT, NAME = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(OUT, f"{NAME}.meta.json")))
model_file = os.path.join(OUT, meta["file"])
rows = np.fromfile(os.path.join(OUT, f"{NAME}.rows.f64"), dtype="<f8").reshape(-1, meta["n_features"])
# Batch 1 goes through SINGLES different rows, one per call, as the wasm side does: one row over
# and over would let the branch predictor learn its path through every tree.
SINGLES = 1000
singles = [np.ascontiguousarray(rows[i : i + 1]) for i in range(min(SINGLES, len(rows)))]
result = {"model": NAME}


def cycling(inputs, call):
    """A function of no arguments that calls `call` on the next of `inputs` each time."""
    state = {"next": 0}

    def f():
        i = state["next"]
        state["next"] = (i + 1) % len(inputs)
        return call(inputs[i])

    return f


def median_call(f, repeats, warmup=20):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        f()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timings(key, batch1, batch_all, repeats1=2000, repeats_all=7):
    result[f"{key}_batch1_seconds"] = median_call(batch1, repeats1)
    result[f"{key}_batch10000_per_row_seconds"] = median_call(batch_all, repeats_all, warmup=1) / len(rows)


def as_outputs(p):
    """Predictions in the module's layout: per row the class probabilities, or the value."""
    p = np.asarray(p, dtype=np.float64)
    if meta["task"] == "binary" and p.size == len(rows):
        p = p.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return p.reshape(len(rows), -1)


def worst_difference(key, p):
    want = as_outputs(reference)
    got = as_outputs(p)
    scale = np.maximum(np.abs(want), 1e-300)
    result[f"{key}_max_rel_diff"] = float(np.max(np.abs(got - want) / scale))


def refused(key, e):
    result[f"{key}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


# The library's own predict, one thread.
if meta["library"] == "lightgbm":
    import lightgbm as lgb

    booster = lgb.Booster(model_file=model_file)
    library_predict = lambda x: booster.predict(x, num_threads=1)  # noqa: E731
else:
    import xgboost as xgb

    booster = xgb.Booster(model_file=model_file)
    booster.set_param({"nthread": 1})
    library_predict = lambda x: booster.inplace_predict(x)  # noqa: E731
reference = library_predict(rows)
as_outputs(reference).astype("<f8").tofile(os.path.join(OUT, f"{NAME}.library.f64"))
timings("library", cycling(singles, library_predict), lambda: library_predict(rows))

# lleaves (LightGBM only): LLVM-compiled, predict(n_jobs=1), and its C entry point.
if meta["library"] == "lightgbm":
    try:
        import lleaves

        model = lleaves.Model(model_file=model_file)
        model.compile(cache=os.path.join(OUT, f"{NAME}.lleaves.o"))
        timings(
            "lleaves", cycling(singles, lambda x: model.predict(x, n_jobs=1)), lambda: model.predict(rows, n_jobs=1)
        )
        worst_difference("lleaves", model.predict(rows, n_jobs=1))
        n_out = model._n_classes
        out_all = np.zeros(len(rows) * n_out)
        out_one = np.zeros(n_out)
        pointer = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))  # noqa: E731
        data_all, p_all, p_one = pointer(rows), pointer(out_all), pointer(out_one)
        data_singles = [pointer(x) for x in singles]
        entry = model._c_entry_func
        timings(
            "lleaves_native",
            cycling(data_singles, lambda d: entry(d, p_one, 0, 1)),
            lambda: entry(data_all, p_all, 0, len(rows)),
        )
    except Exception as e:
        refused("lleaves", e)

# treelite + tl2cgen, compiled by gcc (-O3 is tl2cgen's default for gcc), one thread.
try:
    import tl2cgen
    import treelite

    if meta["library"] == "lightgbm":
        tl_model = treelite.frontend.load_lightgbm_model(model_file)
    else:
        tl_model = treelite.frontend.load_xgboost_model(model_file)
    lib = os.path.join(OUT, f"{NAME}.tl2cgen.so")
    started = time.perf_counter()
    tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=lib, params={"parallel_comp": os.cpu_count()})
    result["tl2cgen_compile_seconds"] = time.perf_counter() - started
    predictor = tl2cgen.Predictor(lib, nthread=1)
    d_singles, d_all = [tl2cgen.DMatrix(x) for x in singles], tl2cgen.DMatrix(rows)
    timings("tl2cgen", cycling(d_singles, predictor.predict), lambda: predictor.predict(d_all))
    worst_difference("tl2cgen", predictor.predict(d_all))
    # The native batch entry point: TL2cgenPredictorPredictBatch on a DMatrix made beforehand.
    from tl2cgen.core import _LIB

    def native(dmat):
        out = np.zeros_like(predictor.predict(dmat))
        ptr_type = ctypes.POINTER(ctypes.c_float if out.dtype == np.float32 else ctypes.c_double)
        ptr = out.ctypes.data_as(ptr_type)
        return lambda: _LIB.TL2cgenPredictorPredictBatch(predictor.handle, dmat.handle, 0, 0, ptr)

    natives = [native(d) for d in d_singles]
    timings("tl2cgen_native", cycling(natives, lambda f: f()), native(d_all))
except Exception as e:
    refused("tl2cgen", e)

# onnxruntime on onnxmltools' file, one thread, f32 input (the file's input type).
onnx_file = os.path.join(OUT, f"{NAME}.onnx")
if os.path.exists(onnx_file):
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        f_singles, f_all = [x.astype(np.float32) for x in singles], rows.astype(np.float32)
        # Classifiers: (label, probabilities); regressors: (values,).
        pick = -1
        timings(
            "ort", cycling(f_singles, lambda x: session.run(None, {name: x})), lambda: session.run(None, {name: f_all})
        )
        worst_difference("ort", session.run(None, {name: f_all})[pick])
        result["onnx_bytes"] = os.path.getsize(onnx_file)
    except Exception as e:
        refused("ort", e)
else:
    result["ort_error"] = open(onnx_file + ".error").read().strip()

print(json.dumps(result))
