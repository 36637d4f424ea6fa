"""A real KServe v2 client against an edge: tritonclient[http] sends rows with np.nan.

    python triton_infer.py HOST:PORT MODEL CASES.json

CASES.json: {"rows": [[...]], "expected": [...], "refused": {"rows": [[...]], "message": "..."}}
with NaN written as Python's json writes it. The rows go as one FP64 tensor of shape
[n, n_features] in JSON (binary_data=False: the edge speaks the JSON protocol), first asking for
the `value` output, then for no output in particular (tritonclient then asks for binary outputs,
and must still read the edge's JSON answer). The answers must be the expected values within
1e-12 relative; the refused rows must fail with the message. Exit 1 on any mismatch.
"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def infer(client, model, rows, outputs):
    data = np.array(rows, dtype=np.float64)
    tensor = httpclient.InferInput("input", list(data.shape), "FP64")
    tensor.set_data_from_numpy(data, binary_data=False)
    return client.infer(model, [tensor], outputs=outputs)


def main():
    url, model, cases_file = sys.argv[1:4]
    with open(cases_file) as f:
        cases = json.load(f)
    client = httpclient.InferenceServerClient(url=url)
    if not client.is_model_ready(model):
        sys.exit(f"model {model} is not ready")
    expected = np.array(cases["expected"], dtype=np.float64)
    if not np.isnan(np.array(cases["rows"], dtype=np.float64)).any():
        sys.exit("the rows hold no NaN: nothing is tested")
    for outputs in ([httpclient.InferRequestedOutput("value", binary_data=False)], None):
        got = infer(client, model, cases["rows"], outputs).as_numpy("value")
        if got is None or got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-12, atol=0):
            sys.exit(f"outputs={outputs!r}: got {got!r}, expected {expected!r}")
    refused = cases["refused"]
    try:
        infer(client, model, refused["rows"], None)
    except InferenceServerException as e:
        if refused["message"] not in str(e):
            sys.exit(f"refused with {e}, expected {refused['message']!r}")
    else:
        sys.exit(f"rows {refused['rows']!r} were not refused")
    print(f"tritonclient: {len(expected)} rows with NaN predicted as expected, and the refusal named its feature")


if __name__ == "__main__":
    main()
