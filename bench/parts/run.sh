#!/usr/bin/env bash
# Parts benchmark: offkit split / join / verify of a split kit against GNU split, cat and the
# whole-kit verify, in one run, on one kit of SIZE_GIB (default 7, about 5.3 GiB compressed) GiB: three quarters random
# bytes, one quarter text, so that both incompressible and compressible frames are cut.
#   usage: bench/parts/run.sh [SIZE_GIB=7] [RUNS=1]
# Prints a Markdown table (median wall seconds, ratio, peak RSS) for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-7}; RUNS=${2:-1}
W=${BENCH_DIR:-/tmp/offkit-bench-parts}
cargo build --release --quiet
OFFKIT=$PWD/target/release/offkit
mkdir -p "$W"
export SOURCE_DATE_EPOCH=1767225600
if [ ! -f "$W/src/kit.toml" ] || [ "$(cat "$W/size" 2>/dev/null)" != "$SIZE" ]; then
  rm -rf "$W/src"; mkdir -p "$W/src/seeds"
  printf 'name = "parts"\nversion = "1.0.0"\nchannel = "parts"\nsequence = 1\ntarget = "any"\n' > "$W/src/kit.toml"
  python3 - "$W/src/seeds" "$SIZE" <<'PY'
import os, sys
out, gib = sys.argv[1], float(sys.argv[2])
total = int(gib * 2**30)
chunk = 1 << 30
n = 0
left = total * 3 // 4
while left > 0:
    size = min(chunk, left)
    with open(f"{out}/random-{n:02}.bin", "wb") as f:
        for _ in range(size >> 24):
            f.write(os.urandom(1 << 24))
        f.write(os.urandom(size & ((1 << 24) - 1)))
    left -= size; n += 1
line = b'{"id": %d, "advisory": "CVE-2026-%05d", "summary": "a text line that compresses"}\n'
with open(f"{out}/text.ndjson", "wb") as f:
    written, i = 0, 0
    while written < total // 4:
        b = b"".join(line % (j, j % 99999) for j in range(i, i + 10000)); i += 10000
        f.write(b); written += len(b)
PY
  echo "$SIZE" > "$W/size"
fi
[ -f "$W/keys/bench.key" ] || "$OFFKIT" keygen --out "$W/keys/bench" >/dev/null
rm -rf "$W/out"; mkdir -p "$W/out"
"$OFFKIT" build "$W/src" --key "$W/keys/bench.key" --out "$W/out" >/dev/null
KIT="$W/out/parts-1.0.0.kit.tar.zst"
KIT_BYTES=$(stat -c %s "$KIT")

source bench/lib.sh
cat "$KIT" > /dev/null  # warm the page cache

for size in 700M fat32; do
  bytes=$([ "$size" = fat32 ] && echo 4294967295 || echo $((700 << 20)))
  PREP="rm -rf $W/p-$size; mkdir -p $W/p-$size"
  measure "split_$size" "$OFFKIT split $KIT --max-part-size $size --out $W/p-$size"
  PREP="rm -rf $W/g-$size; mkdir -p $W/g-$size"
  measure "gnusplit_$size" "split -b $bytes -a 3 --numeric-suffixes=1 $KIT $W/g-$size/parts-1.0.0.kit.tar.zst."
  measure "gnusplit_sync_$size" "split -b $bytes -a 3 --numeric-suffixes=1 $KIT $W/g-$size/parts-1.0.0.kit.tar.zst. && sync $W/g-$size/*"
  PREP="rm -f $W/joined.kit.tar.zst"
  measure "join_$size" "$OFFKIT join $W/p-$size --out $W/joined.kit.tar.zst"
  measure "cat_$size" "cat $W/p-$size/*.kit.tar.zst.[0-9][0-9][0-9] > $W/joined.kit.tar.zst"
  measure "cat_sync_$size" "cat $W/p-$size/*.kit.tar.zst.[0-9][0-9][0-9] > $W/joined.kit.tar.zst && sync $W/joined.kit.tar.zst"
  PREP=""
  cmp "$W/joined.kit.tar.zst" "$KIT"
  measure "verify_parts_$size" "$OFFKIT verify $W/p-$size --trust $W/keys/bench.pub"
  rm -rf "$W/g-$size"
done
measure verify_whole "$OFFKIT verify $KIT --trust $W/keys/bench.pub"
measure floor "zstd -dc $KIT | openssl dgst -sha256"
PARTS_700=$(ls "$W/p-700M" | wc -l); PARTS_FAT=$(ls "$W/p-fat32" | wc -l)

cat <<MD
Kit: $(python3 -c "print(f'{$KIT_BYTES/2**30:.2f}')") GiB compressed (3/4 random, 1/4 text); $PARTS_700 parts of 700 MiB, $PARTS_FAT of FAT32 size; median of $RUNS run(s); $(nproc) cores; $(date -u +%F).

| operation | command | seconds | ratio | peak RSS (MiB) |
|---|---|---:|---:|---:|
| split, 700 MiB | \`offkit split KIT --max-part-size 700M\` | ${SECS[split_700M]} | 1.00 | $(mib ${RSS[split_700M]}) |
| split, 700 MiB | \`split -b 700M\` | ${SECS[gnusplit_700M]} | $(ratio ${SECS[gnusplit_700M]} ${SECS[split_700M]}) | $(mib ${RSS[gnusplit_700M]}) |
| split, 700 MiB | \`split -b 700M\` then \`sync\` the parts (durable, as offkit's) | ${SECS[gnusplit_sync_700M]} | $(ratio ${SECS[gnusplit_sync_700M]} ${SECS[split_700M]}) | $(mib ${RSS[gnusplit_sync_700M]}) |
| split, FAT32 | \`offkit split KIT --max-part-size fat32\` | ${SECS[split_fat32]} | 1.00 | $(mib ${RSS[split_fat32]}) |
| split, FAT32 | \`split -b 4294967295\` | ${SECS[gnusplit_fat32]} | $(ratio ${SECS[gnusplit_fat32]} ${SECS[split_fat32]}) | $(mib ${RSS[gnusplit_fat32]}) |
| split, FAT32 | \`split -b 4294967295\` then \`sync\` | ${SECS[gnusplit_sync_fat32]} | $(ratio ${SECS[gnusplit_sync_fat32]} ${SECS[split_fat32]}) | $(mib ${RSS[gnusplit_sync_fat32]}) |
| join, 700 MiB parts | \`offkit join DIR --out KIT\` | ${SECS[join_700M]} | 1.00 | $(mib ${RSS[join_700M]}) |
| join, 700 MiB parts | \`cat DIR/*.[0-9][0-9][0-9] > KIT\` | ${SECS[cat_700M]} | $(ratio ${SECS[cat_700M]} ${SECS[join_700M]}) | $(mib ${RSS[cat_700M]}) |
| join, 700 MiB parts | \`cat … > KIT\` then \`sync KIT\` (durable, as offkit's) | ${SECS[cat_sync_700M]} | $(ratio ${SECS[cat_sync_700M]} ${SECS[join_700M]}) | $(mib ${RSS[cat_sync_700M]}) |
| join, FAT32 parts | \`offkit join DIR --out KIT\` | ${SECS[join_fat32]} | 1.00 | $(mib ${RSS[join_fat32]}) |
| join, FAT32 parts | \`cat\` | ${SECS[cat_fat32]} | $(ratio ${SECS[cat_fat32]} ${SECS[join_fat32]}) | $(mib ${RSS[cat_fat32]}) |
| join, FAT32 parts | \`cat\` then \`sync\` | ${SECS[cat_sync_fat32]} | $(ratio ${SECS[cat_sync_fat32]} ${SECS[join_fat32]}) | $(mib ${RSS[cat_sync_fat32]}) |
| verify | \`offkit verify KIT\` (whole) | ${SECS[verify_whole]} | 1.00 | $(mib ${RSS[verify_whole]}) |
| verify | \`offkit verify DIR\` (700 MiB parts) | ${SECS[verify_parts_700M]} | $(ratio ${SECS[verify_parts_700M]} ${SECS[verify_whole]}) | $(mib ${RSS[verify_parts_700M]}) |
| verify | \`offkit verify DIR\` (FAT32 parts) | ${SECS[verify_parts_fat32]} | $(ratio ${SECS[verify_parts_fat32]} ${SECS[verify_whole]}) | $(mib ${RSS[verify_parts_fat32]}) |
| verify | floor: \`zstd -dc KIT \| openssl dgst -sha256\` | ${SECS[floor]} | $(ratio ${SECS[floor]} ${SECS[verify_whole]}) | $(mib ${RSS[floor]}) |

Ratios are the other command's time divided by the first row of the group (split, join: above 1.00
offkit is faster; verify of parts: the parts' time over the whole kit's).
MD
