#!/usr/bin/env python3
"""Ingest benchmark: wall time of the data steps on the bundled data, and ingest throughput and
peak memory on generated CSVs of 12 numeric columns (250k, 1M and 2M rows, so you can see that
memory does not grow with the file), against pandas.read_csv on the same files; then the 1M- and
2M-row files as Parquet (pyarrow, snappy, default row groups): wasmline's ingest of them next to
its CSV figures, against pyarrow.parquet.read_table on the same files.

Usage: scripts/bench-ingest   (builds the release binary and a pandas venv, then runs this)
"""

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

WASMLINE = os.environ["WASMLINE_BIN"]
PANDAS_PYTHON = os.environ.get("PANDAS_PYTHON")
PYARROW_PYTHON = os.environ.get("PYARROW_PYTHON")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLUMNS = [f"x{i}" for i in range(12)]


def generate(path, rows, seed=7):
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(COLUMNS) + "\n")
        chunk = []
        for _ in range(rows):
            chunk.append(",".join(f"{rng.uniform(-1000, 1000):.6f}" for _ in COLUMNS))
            if len(chunk) == 10000:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")


def config(path, source):
    """A config for source; its extension (.csv, .parquet) gives the format."""
    cols = ",\n".join(f'  {{ name = "{c}", type = "float" }}' for c in COLUMNS)
    with open(path, "w") as f:
        f.write(
            f'[dataset]\nname = "bench"\nsource = "{source}"\ncolumns = [\n{cols}\n]\n\n'
            f'[task]\nkind = "regression"\ntarget = "x11"\n'
        )


def to_parquet(csv, out):
    """The CSV as Parquet through pyarrow: snappy (its default), default row groups."""
    script = (
        "import sys, pyarrow.csv as c, pyarrow.parquet as p;"
        "p.write_table(c.read_csv(sys.argv[1]), sys.argv[2], compression='snappy');"
        "print(p.ParquetFile(sys.argv[2]).metadata.num_row_groups)"
    )
    out_text = subprocess.run([PYARROW_PYTHON, "-c", script, csv, out], check=True, capture_output=True, text=True)
    return int(out_text.stdout)


def measured(cmd, **kw):
    """Runs cmd; returns (seconds, peak RSS in MB of that child alone)."""
    script = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
        "e=time.perf_counter()-t;"
        "sys.stderr.write(r.stderr.decode()) if r.returncode else None;"
        "print(e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024, r.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", script, *cmd], capture_output=True, text=True, **kw)
    secs, mb, rc = out.stdout.split()
    if rc != "0":
        sys.exit(f"{cmd} failed:\n{out.stderr}")
    return float(secs), float(mb)


def main():
    work = tempfile.mkdtemp(prefix="wasmline-bench-")
    try:
        print("## Data steps on the bundled examples (release build, local store)\n")
        print("| example | ingest | transform | validate | profile | version | total |")
        print("|---|---|---|---|---|---|---|")
        for example in ["winequality", "diabetes"]:
            store = os.path.join(work, f"store-{example}")
            cfg = os.path.join(ROOT, "examples", example, "pipeline.toml")
            times = {}
            start = time.perf_counter()
            for step in ["ingest", "transform", "validate", "profile", "version"]:
                t = time.perf_counter()
                subprocess.run(
                    [WASMLINE, "--store", store, "pipeline", "step", step, "--run-id", "bench", "--config", cfg],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                times[step] = time.perf_counter() - t
            total = time.perf_counter() - start
            cells = " | ".join(f"{times[s] * 1000:.0f} ms" for s in times)
            print(f"| {example} | {cells} | {total * 1000:.0f} ms |")
        print("\n(each step is a separate process: the times include process start and store I/O)\n")

        print("## Ingest of generated CSVs, 12 float columns\n")
        print("| rows | file | wasmline ingest | rows/s | peak RSS | pandas.read_csv | rows/s | peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        parquet_lines = []
        for rows in [250_000, 1_000_000, 2_000_000]:
            csv = os.path.join(work, f"gen-{rows}.csv")
            generate(csv, rows)
            size_mb = os.path.getsize(csv) / 1e6
            cfg = os.path.join(work, f"gen-{rows}.toml")
            config(cfg, csv)
            store = os.path.join(work, f"store-{rows}")
            secs, mb = measured([WASMLINE, "--store", store, "pipeline", "step", "ingest", "--run-id", "r", "--config", cfg])
            if PANDAS_PYTHON:
                psecs, pmb = measured([PANDAS_PYTHON, "-c", f"import pandas; pandas.read_csv({csv!r})"])
                pandas_cells = f"{psecs:.2f} s | {rows / psecs / 1e6:.2f} M | {pmb:.0f} MB"
            else:
                pandas_cells = "- | - | -"
            print(
                f"| {rows:,} | {size_mb:.0f} MB | {secs:.2f} s | {rows / secs / 1e6:.2f} M | {mb:.0f} MB | {pandas_cells} |"
            )
            if PYARROW_PYTHON and rows >= 1_000_000:
                parquet = os.path.join(work, f"gen-{rows}.parquet")
                groups = to_parquet(csv, parquet)
                pq_mb = os.path.getsize(parquet) / 1e6
                pcfg = os.path.join(work, f"gen-{rows}-parquet.toml")
                config(pcfg, parquet)
                pstore = os.path.join(work, f"store-{rows}-parquet")
                qsecs, qmb = measured([WASMLINE, "--store", pstore, "pipeline", "step", "ingest", "--run-id", "r", "--config", pcfg])
                asecs, amb = measured([PYARROW_PYTHON, "-c", f"import pyarrow.parquet; pyarrow.parquet.read_table({parquet!r})"])
                parquet_lines.append(
                    f"| {rows:,} | {pq_mb:.0f} MB, {groups} row group{'s' if groups != 1 else ''} | {qsecs:.2f} s | {rows / qsecs / 1e6:.2f} M | {qmb:.0f} MB "
                    f"| {secs:.2f} s | {rows / secs / 1e6:.2f} M | {mb:.0f} MB "
                    f"| {asecs:.2f} s | {rows / asecs / 1e6:.2f} M | {amb:.0f} MB |"
                )
                os.remove(parquet)
                shutil.rmtree(pstore)
            os.remove(csv)
            shutil.rmtree(store)
        print(
            "\nwasmline ingest = the whole step in one process: MD5 of the file (the idempotency key), a\n"
            "full parse with every value checked against the schema, and a copy of the raw bytes into the\n"
            "store's DVC layout. pandas.read_csv only parses."
        )
        if parquet_lines:
            print("\n## Ingest of the same files as Parquet (pyarrow, snappy, default row groups)\n")
            print(
                "| rows | file | wasmline ingest | rows/s | peak RSS | same rows as CSV | rows/s | peak RSS "
                "| pyarrow read_table | rows/s | peak RSS |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for line in parquet_lines:
                print(line)
            print(
                "\nwasmline ingest of Parquet = the same step: MD5 of the file's bytes, every value of the\n"
                "declared columns decoded (8,192-row batches, page by page) and checked, and the copy into the\n"
                "store. pyarrow.parquet.read_table decodes the whole file into memory, with its threads."
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
