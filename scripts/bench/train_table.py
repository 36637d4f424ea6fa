#!/usr/bin/env python3
"""Joins the wasmline and scikit-learn training results into one Markdown table."""
import json
import sys

ours = {r["family"]: r for r in map(json.loads, open(sys.argv[1]))}
theirs = {r["family"]: r for r in map(json.loads, open(sys.argv[2]))}
print("| family | wasmline fit | sklearn fit | time ratio (wasmline/sklearn) | accuracy (wasmline / sklearn) | macro F1 | ROC-AUC |")
print("|---|---|---|---|---|---|---|")
for family, o in ours.items():
    t = theirs[family]
    print(
        f"| {family} | {o['fit_seconds_median'] * 1000:.1f} ms | {t['fit_seconds_median'] * 1000:.1f} ms | "
        f"{o['fit_seconds_median'] / t['fit_seconds_median']:.2f}x | {o['accuracy']:.3f} / {t['accuracy']:.3f} | "
        f"{o['f1']:.3f} / {t['f1']:.3f} | {o['roc_auc']:.3f} / {t['roc_auc']:.3f} |"
    )
