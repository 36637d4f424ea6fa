#!/usr/bin/env python3
"""Writes a variant of examples/winequality/pipeline.toml for scripts/bench-serve: the same data,
transforms, split and expectations (the source made absolute), with its own [train] section.

    serve_config.py EXAMPLE.toml OUT.toml bundled NAME TRAIN_SEED   the example's grid, another seed
    serve_config.py EXAMPLE.toml OUT.toml forest  NAME TRAIN_SEED   one random_forest: 100 trees, depth 8
"""
import os
import re
import sys

example, out, kind, name, seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
text = open(example).read()
head, sep, train = text.partition("\n[train]\n")
assert sep, f"{example} has no [train] section"
source = re.search(r'^source = "([^"]+)"$', head, re.M)
assert source, f"{example} has no dataset source"
absolute = os.path.join(os.path.dirname(os.path.abspath(example)), source.group(1))
head = head[: source.start()] + f'source = "{absolute}"' + head[source.end():]

if kind == "bundled":
    train = re.sub(r'^model_name = ".*"$', f'model_name = "{name}"', train, flags=re.M)
    train = re.sub(r"^seed = \d+$", f"seed = {seed}", train, flags=re.M)
elif kind == "forest":
    train = (
        f'model_name = "{name}"\nmetric = "f1"\nfolds = 2\nseed = {seed}\n\n'
        "[[train.models]]\n"
        'family = "random_forest"\n'
        "grid = { n_trees = [100], max_depth = [8], feature_fraction = [0.4] }\n"
    )
else:
    sys.exit(f"unknown kind {kind}")
with open(out, "w") as f:
    f.write(head + sep + train)
