#!/usr/bin/env python3
"""Joins the wasmtime/tract and onnxruntime inference results into one Markdown table."""
import gzip
import json
import os
import sys

ours = [json.loads(l) for l in open(sys.argv[1])]
ort = {r["model"]: r for r in map(json.loads, open(sys.argv[2]))}
out_dir = sys.argv[3]
ORT_WEB_BYTES = 12.8e6


def us(s):
    return f"{s * 1e6:.2f} us" if s >= 1e-6 else f"{s * 1e9:.0f} ns"


print("| model | .wasm (gzip) | .onnx | vs onnxruntime-web 12.8 MB | wasmtime compile + instantiate | batch 1: wasm / ort / tract | batch 1000 per row: wasm / ort / tract | speed-up vs ort (1 / 1000) |")
print("|---|---|---|---|---|---|---|---|")
for o in ours:
    name = o["model"]
    r = ort[name]
    wasm = open(os.path.join(out_dir, f"{name}.wasm"), "rb").read()
    gz = len(gzip.compress(wasm, 9))
    print(
        f"| {name} ({o['description']}) | {len(wasm):,} B ({gz:,} B) | {o['onnx_bytes']:,} B | {ORT_WEB_BYTES / len(wasm):,.0f}x smaller "
        f"| {o['wasmtime_load_seconds'] * 1000:.1f} ms "
        f"| {us(o['wasm_batch1_seconds'])} / {us(r['ort_batch1_seconds'])} / {us(o['tract_batch1_seconds'])} "
        f"| {us(o['wasm_batch1000_per_row_seconds'])} / {us(r['ort_batch1000_per_row_seconds'])} / {us(o['tract_batch1000_per_row_seconds'])} "
        f"| {r['ort_batch1_seconds'] / o['wasm_batch1_seconds']:.0f}x / {r['ort_batch1000_per_row_seconds'] / o['wasm_batch1000_per_row_seconds']:.1f}x |"
    )
