#!/usr/bin/env python3
"""The FastAPI + uvicorn + onnxruntime baseline of scripts/bench-serve: one process, one
`async def` handler, serving a pipeline-exported model.onnx over an Open Inference Protocol (KServe
v2) shaped REST API, the way a small team would write it by hand.

    serve_fastapi.py --onnx model.onnx --manifest manifest.json --port PORT

Request:  {"inputs": [{"name": "input", "shape": [N, F], "datatype": "FP64", "data": [...]}]}
Response: {"model_name", "model_version", "outputs": [label (BYTES, the manifest's classes),
           probabilities (FP32, [N, K])]}, as wasmline-edge answers.
"""
import argparse
import json

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException, Request

parser = argparse.ArgumentParser()
parser.add_argument("--onnx", required=True)
parser.add_argument("--manifest", required=True)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()

manifest = json.load(open(args.manifest))
NAME = manifest["name"]
VERSION = str(manifest["version"])
CLASSES = manifest["output"]["classes"]
N_FEATURES = len(manifest["features"])

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
INPUT = session.get_inputs()[0].name
OUTPUTS = ["label", "probabilities"]  # what the pipeline's exporter names them
assert set(OUTPUTS) <= {o.name for o in session.get_outputs()}, session.get_outputs()

app = FastAPI()


@app.get("/v2/health/ready")
async def ready():
    return {"ready": True}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    if name != NAME:
        raise HTTPException(status_code=404, detail=f"unknown model {name}")
    body = await request.json()
    try:
        tensor = body["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float32).reshape(-1, N_FEATURES)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise HTTPException(status_code=400, detail=f"bad request: {e}")
    label, probabilities = session.run(OUTPUTS, {INPUT: x})
    return {
        "model_name": NAME,
        "model_version": VERSION,
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [len(label)], "data": [CLASSES[int(i)] for i in label]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.ravel().tolist(),
            },
        ],
    }


if __name__ == "__main__":
    # One process (workers=1); uvicorn picks uvloop and httptools when installed ("standard").
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning", access_log=False)
