#!/usr/bin/env bash
# Apply benchmark: `offkit apply` of a mixed kit (bench/kit/gen.py, migrations portable to SQLite)
# into a folder store and into S3 (`rclone serve s3` on loopback), against the stock pipeline
# doing the same job with standard tools — extract the kit, check every file with
# `sha256sum -c`, copy the seeds with `rclone copy --checksum` — in one run, on the same kit.
#   usage: bench/apply/run.sh [SIZE_MIB=1100] [RUNS=3]     (STORES="file s3" by default)
# Prints a Markdown table (median seconds, ratio, peak RSS, peak scratch disk) for
# docs/BENCHMARKS.md. Scratch disk is what a run needs beside the kit and the store: apply's
# --work-dir (sampled while it runs) and the pipeline's extraction folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-1100}; RUNS=${2:-3}; STORES=${STORES:-file s3}
W=${BENCH_DIR:-/tmp/offkit-bench-apply}
cargo build --release --quiet
OFFKIT=$PWD/target/release/offkit
mkdir -p "$W"
if [ ! -f "$W/src/kit.toml" ] || [ "$(cat "$W/size" 2>/dev/null)" != "$SIZE" ]; then
  rm -rf "$W/src"; python3 bench/kit/gen.py "$W/src" "$SIZE"
  sed -i 's/^target = "postgres"/target = "any"/' "$W/src/kit.toml"
  echo "$SIZE" > "$W/size"
fi
[ -f "$W/keys/bench.key" ] || "$OFFKIT" keygen --out "$W/keys/bench" >/dev/null
export SOURCE_DATE_EPOCH=1767225600
rm -rf "$W/out"; mkdir -p "$W/out"
"$OFFKIT" build "$W/src" --key "$W/keys/bench.key" --out "$W/out" >/dev/null
KIT="$W/out/bench-1.0.0.kit.tar.zst"
PUB="$W/keys/bench.pub"

source bench/lib.sh

cat "$KIT" > /dev/null
KIT_MIB=$(python3 -c "import os; print(f'{os.path.getsize(\"$KIT\")/2**20:.0f}')")
SEEDS=$(find "$W/src/seeds" -type f | wc -l)

# Peak scratch disk: one more run, sampling its scratch folder every 0.2 s.
peak() {
  local dir=$1; shift
  local max=0 now
  eval "$PREP"
  bash -c "$*" >/dev/null 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    now=$(du -sb "$dir" 2>/dev/null | cut -f1); [ "${now:-0}" -gt "$max" ] && max=$now
    sleep 0.2
  done
  wait "$pid"
  now=$(du -sb "$dir" 2>/dev/null | cut -f1); [ "${now:-0}" -gt "$max" ] && max=$now
  python3 -c "print(f'{$max/2**20:.0f}')"
}

ROWS=()
# One store: STORE_NAME, APPLY_STORE (offkit's --store), STOCK_DEST (rclone's destination),
# APPLY_PREP and STOCK_PREP (each empties its own store).
run_store() {
  local apply="$OFFKIT apply $KIT --trust $PUB --db sqlite://$W/site/offkit.db --store '$APPLY_STORE' --work-dir $W/work --progress off"
  local stock="tar --zstd -xf $KIT -C $W/x && (cd $W/x && sha256sum -c --strict --quiet SHA256SUMS) && rclone copy --checksum --config /dev/null $W/x/seeds $STOCK_DEST"
  PREP="rm -rf $W/site $W/work; mkdir -p $W/site $W/work; $APPLY_PREP; sync"
  measure "apply-$STORE_NAME" "$apply"
  local disk_apply; disk_apply=$(peak "$W/work" "$apply")
  PREP="rm -rf $W/x; mkdir -p $W/x; $STOCK_PREP; sync"
  measure "stock-$STORE_NAME" "$stock"
  local disk_stock; disk_stock=$(peak "$W/x" "$stock")
  local a=${SECS[apply-$STORE_NAME]} b=${SECS[stock-$STORE_NAME]}
  ROWS+=("| $STORE_NAME | \`offkit apply KIT\` (verify, migrations, seeds read again from the kit) | $a | $(ratio "$a" "$b") | $(mib "${RSS[apply-$STORE_NAME]}") | $disk_apply |")
  ROWS+=("| $STORE_NAME | \`tar --zstd -x\` + \`sha256sum -c\` + \`rclone copy --checksum\` (stock) | $b | 1.00 | $(mib "${RSS[stock-$STORE_NAME]}") | $disk_stock |")
}

for_stores

cat <<MD
Kit: $SIZE MiB of mixed payload ($SEEDS seed objects, 200 migrations), $KIT_MIB MiB compressed; median of $RUNS runs; $(nproc) cores; $(date -u +%F); S3 is \`rclone serve s3\` on loopback.

| store | job | seconds | ÷ stock | peak RSS (MiB) | peak scratch disk (MiB) |
|---|---|---:|---:|---:|---:|
MD
printf '%s\n' "${ROWS[@]}"
