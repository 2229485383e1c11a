#!/usr/bin/env python3
"""Writes a kit source with many small seed objects and a few migrations (bench/site/run.sh).

usage: gen.py DIR [SEEDS=100000]
Seeds are ~1 KiB JSON documents in 100 folders; migrations are 20 startup migrations, 5 seed
migrations and rollbacks, in one module. Deterministic: the same arguments give the same tree.
"""
import json
import os
import random
import sys

root = sys.argv[1]
seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
rng = random.Random(7)
os.makedirs(root, exist_ok=True)
with open(os.path.join(root, "kit.toml"), "w") as f:
    f.write('name = "site-bench"\nversion = "1.0.0"\nchannel = "site-bench"\n'
            'sequence = 1\ntarget = "any"\n')
mig = os.path.join(root, "migrations", "bench")
rb = os.path.join(root, "rollback", "bench")
os.makedirs(mig, exist_ok=True)
os.makedirs(rb, exist_ok=True)
for i in range(1, 21):
    with open(os.path.join(mig, f"{i:03d}_table_{i}.sql"), "w") as f:
        f.write(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);\n")
    with open(os.path.join(rb, f"{i:03d}_table_{i}.sql"), "w") as f:
        f.write(f"DROP TABLE t{i};\n")
for i in range(1, 6):
    with open(os.path.join(mig, f"S{i:03d}_rows_{i}.sql"), "w") as f:
        f.write("".join(f"INSERT INTO t{i} (id, doc) VALUES ({n}, 'row {n}');\n" for n in range(50)))
for n in range(seeds):
    d = os.path.join(root, "seeds", "advisories", f"{n % 100:02d}")
    os.makedirs(d, exist_ok=True)
    doc = {"id": f"ADV-{n:07d}", "severity": rng.choice(["low", "medium", "high"]),
           "summary": " ".join(rng.choice(["lorem", "ipsum", "dolor", "sit", "amet", "kit"])
                               for _ in range(120))}
    with open(os.path.join(d, f"adv-{n:07d}.json"), "w") as f:
        json.dump(doc, f)
