#!/usr/bin/env python3
"""Generates the seeding benchmark's data: N small JSON-ish objects (200 B - 4 KiB, 1,000 per
folder) and M large random objects of L MiB. Usage: gen.py DIR N M L. Deterministic small files
(seeded PRNG); large files from os.urandom (incompressible)."""
import os
import random
import sys

out, n_small, n_large, large_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20260118)
letters = bytes(97 + b % 26 for b in range(256))
for i in range(n_small):
    d = os.path.join(out, "small", f"{i // 1000:03d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    size = rng.randint(200, 4096)
    body = ('{"id":%d,"pad":"' % i).encode() + rng.randbytes(size).translate(letters) + b'"}\n'
    with open(os.path.join(d, f"obj-{i:06d}.json"), "wb") as f:
        f.write(body)
os.makedirs(os.path.join(out, "large"), exist_ok=True)
for j in range(n_large):
    with open(os.path.join(out, "large", f"blob-{j:02d}.bin"), "wb") as f:
        for _ in range(large_mib):
            f.write(os.urandom(1 << 20))
