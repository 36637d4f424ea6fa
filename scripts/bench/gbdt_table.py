#!/usr/bin/env python3
"""Joins scripts/bench-gbdt's results into one Markdown table.

    gbdt_table.py OURS.jsonl PEERS.jsonl OUT_DIR

OURS.jsonl: one object per model from `cargo bench --bench gbdt`; PEERS.jsonl: one per model from
gbdt_peers.py. A peer that could not run gets its reason under the table.
"""
import gzip
import json
import os
import sys

import numpy as np

ours = [json.loads(line) for line in open(sys.argv[1])]
peers = {r["model"]: r for r in map(json.loads, open(sys.argv[2]))}
out_dir = sys.argv[3]
ORT_WEB_BYTES = 12.8e6
# (key, column title)
PEERS = [
    ("library", "library predict"),
    ("lleaves", "lleaves"),
    ("lleaves_native", "lleaves C entry"),
    ("tl2cgen", "tl2cgen"),
    ("tl2cgen_native", "tl2cgen C entry"),
    ("ort", "onnxruntime"),
]


def t(s):
    if s is None:
        return "-"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e9:.0f} ns"


def worst_diff(name):
    """Worst relative difference between the module's answers and the library's."""
    ours_file = os.path.join(out_dir, f"{name}.wasm.f64")
    lib_file = os.path.join(out_dir, f"{name}.library.f64")
    if not (os.path.exists(ours_file) and os.path.exists(lib_file)):
        return None
    got, want = np.fromfile(ours_file, dtype="<f8"), np.fromfile(lib_file, dtype="<f8")
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))


print(
    "| model | model file | .wasm (gzip) | vs onnxruntime-web 12.8 MB | wasmtime compile | "
    "batch 1, per call: wasm / " + " / ".join(title for _, title in PEERS) + " | "
    "batch 10,000, per row: wasm / " + " / ".join(title for _, title in PEERS) + " | "
    "batch 10,000: wasm / fastest C entry (lleaves, tl2cgen) | batch 10,000: library / wasm, onnxruntime / wasm "
    "| module vs library (max rel. diff) |"
)
print("|---|---|---|---|---|---|---|---|---|---|")
notes = []
for o in ours:
    name = o["model"]
    p = peers.get(name, {})
    meta = json.load(open(os.path.join(out_dir, f"{name}.meta.json")))
    wasm = open(os.path.join(out_dir, f"{name}.wasm"), "rb").read()
    gz = len(gzip.compress(wasm, 9))
    batch1 = [t(o["wasm_batch1_seconds"])] + [t(p.get(f"{k}_batch1_seconds")) for k, _ in PEERS]
    batch_all = [t(o["wasm_batch10000_per_row_seconds"])] + [
        t(p.get(f"{k}_batch10000_per_row_seconds")) for k, _ in PEERS
    ]
    natives = [p.get(f"{k}_batch10000_per_row_seconds") for k in ("lleaves_native", "tl2cgen_native")]
    natives = [n for n in natives if n is not None]
    ours_row = o["wasm_batch10000_per_row_seconds"]
    ratio = f"{ours_row / min(natives):.2f}" if natives else "-"
    speedups = " / ".join(
        f"{p[k] / ours_row:.1f}x" if k in p else "-"
        for k in ("library_batch10000_per_row_seconds", "ort_batch10000_per_row_seconds")
    )
    diff = worst_diff(name)
    print(
        f"| {name} ({meta['description']}) | {o['model_file_bytes']:,} B | {len(wasm):,} B ({gz:,} B) "
        f"| {ORT_WEB_BYTES / len(wasm):,.1f}x smaller | {o['wasmtime_compile_seconds'] * 1e3:.0f} ms "
        f"| {' / '.join(batch1)} | {' / '.join(batch_all)} | {ratio} | {speedups} "
        f"| {'-' if diff is None else f'{diff:.1e}'} |"
    )
    for key, title in PEERS:
        if f"{key}_error" in p:
            notes.append(f"- {name}, {title}: not measured: {p[f'{key}_error']}")
    if meta["library"] != "lightgbm":
        notes.append(f"- {name}, lleaves: not measured: lleaves compiles LightGBM models only")
    for key in ("lleaves", "tl2cgen", "ort"):
        if f"{key}_max_rel_diff" in p:
            notes.append(f"- {name}, {key} vs library: max rel. diff {p[f'{key}_max_rel_diff']:.1e}")

print()
print(
    "Each time is the median over repeated calls on one thread; batch 10,000 in wasmtime is 10 calls "
    "into the module (at most max_rows = 1,024 rows per call). Targets: wasm / fastest C entry at most "
    "1.5; library / wasm and onnxruntime / wasm at least 3x; at batch 1 wasm faster than every peer; "
    "the 1,000-tree modules under 2 MB and compiled in under 1 s."
)
print()
for note in notes:
    print(note)
