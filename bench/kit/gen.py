#!/usr/bin/env python3
"""Generates a kit source of mixed data for the kit benchmark (deterministic, seeded).

usage: gen.py DIR SIZE_MIB
  ~40% incompressible binary in large files, ~40% compressible JSON text in medium files,
  ~20% small JSON objects (10 KiB each), plus 200 migrations.
"""
import json, os, random, sys

out, size_mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261122)
MiB = 1 << 20

def write(rel, data):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "kit.toml"), "w") as f:
    f.write('name = "bench"\nversion = "1.0.0"\nchannel = "bench"\nsequence = 1\ntarget = "postgres"\n')

for i in range(1, 201):
    write(f"migrations/bench/{i:03d}_step_{i}.sql" if i < 100 else f"migrations/bench/{i}_release_{i}.sql",
          f"CREATE TABLE t{i} (id BIGINT PRIMARY KEY, payload TEXT);\n".encode())

binary = size_mib * 40 // 100
for i in range(max(1, binary // 100)):
    write(f"seeds/blobs/blob-{i:02d}.bin", rng.randbytes(min(100, binary) * MiB))

words = ["advisory", "linkset", "observation", "CVE", "severity", "HIGH", "LOW", "package", "npm",
         "PyPI", "range", "introduced", "fixed", "source", "ghsa", "osv", "nvd", "summary", "affected"]
def text(n):
    parts, total = [], 0
    while total < n:
        doc = json.dumps({"id": f"GHSA-{rng.randrange(10**8):08d}",
                          "summary": " ".join(rng.choice(words) for _ in range(rng.randrange(8, 40))),
                          "score": rng.random() * 10, "refs": [rng.randrange(10**6) for _ in range(5)]})
        parts.append(doc); total += len(doc) + 1
    return ("\n".join(parts) + "\n").encode()[:n]

compressible = size_mib * 40 // 100
for i in range(max(1, compressible // 10)):
    write(f"seeds/text/dump-{i:03d}.ndjson", text(10 * MiB))

small = size_mib * 20 // 100 * MiB // (10 * 1024)
block = text(64 * 1024 * 1024 // 64)  # 1 MiB of text reused for small objects, sliced differently
for i in range(small):
    start = rng.randrange(len(block) - 10240)
    write(f"seeds/objects/{i // 1000:03d}/obj-{i:06d}.json", block[start:start + 10240])
