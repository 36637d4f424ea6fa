#!/usr/bin/env python3
"""Joins wasmline's training results with LightGBM's and scikit-learn's into one Markdown table.

    train_table.py WORK NAME...

reads WORK/NAME.ours.jsonl (control-plane/benches/train.rs; may be empty) and
WORK/NAME.peers.jsonl (train_peers.py) for each data set NAME. One row per library; wasmline's
row carries, in parentheses, its fit time as a multiple of the reference's at the same thread
count and its metrics' distance from the reference's (points, or percent for log-loss and RMSE),
and whether it meets the issue's targets.
"""
import json
import os
import sys

LABELS = {
    "wine": "wine quality >= 6",
    "diabetes": "diabetes progression",
    "binary": "make_classification, 2 classes, 10% NaN",
    "multiclass": "make_classification, 10 classes, 10% NaN",
    "regression": "make_regression, noise 10, 10% NaN",
}
MODELS = {
    "logistic_regression": "logistic regression",
    "decision_tree": "decision tree, depth 6",
    "gradient_boosting": "gradient boosting, 100 x 31 leaves",
    "random_forest": "forest, 100 x depth 8, sqrt features a split",
    "random_forest_bagged": "forest, 100 x depth 8, all features",
}
LIBRARIES = {"wasmline": "**wasmline**", "lightgbm": "LightGBM", "sklearn_hgb": "sklearn HGB", "sklearn": "scikit-learn"}
# The peer wasmline is measured against, per family (the others are shown for reference).
REFERENCE = {"gradient_boosting": "lightgbm"}
# (key, header, format, higher is better, distance in points (else percent))
METRICS = [
    ("accuracy", "accuracy", "{:.4f}", True, True),
    ("f1", "macro F1", "{:.4f}", True, True),
    ("roc_auc", "ROC-AUC", "{:.4f}", True, True),
    ("log_loss", "log-loss", "{:.4f}", False, False),
    ("rmse", "RMSE", "{:.3f}", False, False),
    ("r2", "R²", "{:.4f}", True, True),
]
# The targets: family -> (metrics within 0.5 points of the reference's, max fit-time ratio).
TARGETS = {
    "gradient_boosting": (("accuracy", "f1", "roc_auc", "r2"), 2.0),
    "random_forest": (("accuracy",), 1.0),
}
THREADS = (1, 2)


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def seconds(s):
    return f"{s:.3g}"


def main():
    work, names = sys.argv[1], sys.argv[2:]
    print(
        "| data set (train / test rows x features) | model | library | fit s, 1 thread | fit s, 2 threads | "
        + " | ".join(header for _, header, *_ in METRICS)
        + " | targets |"
    )
    print("|---|---|---|---:|---:|" + "---:|" * len(METRICS) + "---|")
    notes, repeats = [], {}
    for name in names:
        records = load(os.path.join(work, f"{name}.ours.jsonl")) + load(os.path.join(work, f"{name}.peers.jsonl"))
        shape = next(r for r in records if "train_rows" in r)
        repeats[name] = shape["repeats"]
        dataset = f"{LABELS.get(name, name)} ({shape['train_rows']:,} / {shape['test_rows']:,} x {shape['features']})"
        families = list(dict.fromkeys(r["family"] for r in records if r["library"] != "wasmline"))
        for family in families:
            # by library, then thread count; wasmline first, then the reference, then the rest.
            runs = {}
            for r in records:
                if r["family"] == family:
                    runs.setdefault(r["library"], {})[r["threads"]] = r
            reference = REFERENCE.get(family, "sklearn")
            order = ["wasmline", reference] + sorted(set(runs) - {"wasmline", reference})
            model = MODELS.get(family, family)
            for library in order:
                by_threads = runs.get(library, {})
                first = by_threads.get(1) or next(iter(by_threads.values()), None)
                ref = runs.get(reference, {})
                cells = [dataset, model, LIBRARIES.get(library, library)]
                dataset = model = ""
                if first is None:
                    cells += ["–"] * (2 + len(METRICS)) + [""]
                    print("| " + " | ".join(cells) + " |")
                    continue
                misses = []
                for t in THREADS:
                    run = by_threads.get(t)
                    if run is None:
                        cells.append("")
                    elif library == "wasmline" and t in ref:
                        ratio = run["fit_seconds"] / ref[t]["fit_seconds"]
                        cells.append(f"{seconds(run['fit_seconds'])} ({ratio:.2f}x)")
                        if family in TARGETS and ratio > TARGETS[family][1]:
                            misses.append(f"fit at {t} thread{'s' if t > 1 else ''} {ratio:.2f}x")
                    else:
                        cells.append(seconds(run["fit_seconds"]))
                for key, _, fmt, higher, points in METRICS:
                    value = first.get(key)
                    if value is None:
                        cells.append("")
                        continue
                    cell = fmt.format(value)
                    ref_value = (ref.get(1) or {}).get(key)
                    if library == "wasmline" and ref_value is not None:
                        if points:
                            delta = 100 * (value - ref_value)
                            cell += f" ({delta:+.2f})"
                            worse = -delta if higher else delta
                            if family in TARGETS and key in TARGETS[family][0] and worse > 0.5:
                                misses.append(f"{key} {delta:+.2f}")
                        else:
                            cell += f" ({100 * (value - ref_value) / ref_value:+.1f}%)"
                    cells.append(cell)
                if library == "wasmline" and family in TARGETS and ref:
                    cells.append("missed: " + ", ".join(misses) if misses else "met")
                else:
                    cells.append("")
                print("| " + " | ".join(cells) + " |")
                # Thread counts must not change the model (wasmline promises it; LightGBM is
                # deterministic=True): say so when the metrics differ.
                for t, run in by_threads.items():
                    differ = [k for k, *_ in METRICS if k in first and abs(run[k] - first[k]) > 1e-9]
                    if run is not first and differ:
                        notes.append(f"{library}'s {family} on {name} at {t} threads ({', '.join(differ)})")
    print()
    counts = sorted(set(repeats.values()))
    print(
        "Fit time: median of "
        + ", ".join(f"{n} fit{'s' if n > 1 else ''} ({', '.join(k for k in names if repeats[k] == n)})" for n in counts)
        + "; metrics on the held-out rows, from the 1-thread fit. In wasmline's rows, in parentheses: fit time "
        "as a multiple of the reference's at the same thread count (the reference is LightGBM for gradient "
        "boosting, scikit-learn otherwise), and the distance from the reference's metric, in points (x100) or "
        "in percent (log-loss, RMSE). HGB is scikit-learn's HistGradientBoosting, with the same trees, leaves, "
        "learning rate and bins."
    )
    print()
    print(
        "Targets (issue #17): gradient boosting's held-out accuracy, macro F1, ROC-AUC (R² for regression) "
        "within 0.5 points of LightGBM's, and its fit time no worse than 2x LightGBM's at the same thread "
        "count; the forest within 0.5 points of scikit-learn's accuracy and no slower to fit."
    )
    if notes:
        print()
        print("Metrics that differ from the 1-thread fit's: " + "; ".join(notes) + ".")


main()
