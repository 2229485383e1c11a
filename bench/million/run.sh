#!/usr/bin/env bash
# Million-object benchmark (issue 14): a kit of N small seed objects (default 1,000,000, plus the
# quickstart's migrations) — an offkit/v2 kit, its seeds listed in signed pages — built, verified
# and applied to a folder store (and to S3 with STORES="file s3"), each beside the stock tools
# doing the same job in the same run:
#   build  vs `tar --sort=name | zstd -T0 -3` (and -19) plus `sha256sum` of every file
#   verify vs `zstd -dc | openssl dgst -sha256` (the floor), `zstd -dc | sha256sum`, and
#             extract + `sha256sum -c` of SHA256SUMS and of the pages
#   apply  vs extract + `sha256sum -c` + `rclone copy --checksum` of the seeds
#   usage: bench/million/run.sh [SEEDS=1000000] [RUNS=1]
# Prints Markdown tables (seconds, ratio, peak RSS, and for apply the peak scratch disk) for
# docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}; RUNS=${2:-1}; STORES=${STORES:-file}
W=${BENCH_DIR:-/tmp/offkit-bench-million}
cargo build --release --quiet
OFFKIT=$PWD/target/release/offkit
mkdir -p "$W"
if [ ! -f "$W/src/kit.toml" ] || [ "$(cat "$W/count" 2>/dev/null)" != "$N" ]; then
  rm -rf "$W/src"; cp -r kits/quickstart "$W/src"
  # Small JSON objects of 20 to 220 bytes in 997 folders.
  python3 - "$W/src/seeds/obj" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(min(n, 997)):
    os.makedirs(f"{root}/{d:03d}", exist_ok=True)
for i in range(n):
    with open(f"{root}/{i % 997:03d}/{i:07d}.json", "w") as f:
        f.write('{"n":%d,"pad":"%s"}\n' % (i, "x" * (i % 200)))
PY
  echo "$N" > "$W/count"
fi
[ -f "$W/keys/bench.key" ] || "$OFFKIT" keygen --out "$W/keys/bench" >/dev/null
export SOURCE_DATE_EPOCH=1767225600
PUB="$W/keys/bench.pub"
source bench/lib.sh
FILES=$(find "$W/src" -type f ! -name kit.toml | wc -l)
find "$W/src" -type f -exec cat {} + > /dev/null

# Build.
PREP="rm -rf $W/out; mkdir -p $W/out"
measure build "$OFFKIT build $W/src --key $W/keys/bench.key --out $W/out"
KIT=$(ls "$W"/out/*.kit.tar.zst)
for level in 3 19; do
  PREP="rm -f $W/stock.tar.zst $W/stock.sums"
  measure "tar$level" "cd $W/src && tar --sort=name --owner=0 --group=0 --numeric-owner -cf - . | zstd -q -T0 -$level -o $W/stock.tar.zst && find . -type f -print0 | sort -z | xargs -0 sha256sum > $W/stock.sums"
done
KIT_MIB=$(python3 -c "import os; print(f'{os.path.getsize(\"$KIT\")/2**20:.0f}')")
PAGES=$(tar --zstd -tf "$KIT" | grep -c '^index/seeds/' || true)

# Verify.
cat "$KIT" > /dev/null
PREP=""
measure verify "$OFFKIT verify $KIT --trust $PUB"
measure floor "zstd -dc $KIT | openssl dgst -sha256"
measure zsha "zstd -dc $KIT | sha256sum"
PREP="rm -rf $W/x; mkdir -p $W/x"
measure extract "tar --zstd -xf $KIT -C $W/x && cd $W/x && sha256sum -c --strict --quiet SHA256SUMS && cat index/seeds/*.sha256 | sha256sum -c --strict --quiet"

cat <<MD
Kit: $FILES files ($N seed objects of 20-220 bytes, listed in $PAGES pages, and the quickstart's migrations), $KIT_MIB MiB compressed at level 3; median of $RUNS runs; $(nproc) cores; $(date -u +%F).

| operation | command | seconds | ratio | peak RSS (MiB) |
|---|---|---:|---:|---:|
| build | \`offkit build SRC\` (level 3) | ${SECS[build]} | 1.00 | $(mib "${RSS[build]}") |
| build | \`tar --sort=name \| zstd -T0 -3\` + \`sha256sum\` of the files | ${SECS[tar3]} | $(ratio "${SECS[tar3]}" "${SECS[build]}") | $(mib "${RSS[tar3]}") |
| build | \`tar --sort=name \| zstd -T0 -19\` + \`sha256sum\` of the files | ${SECS[tar19]} | $(ratio "${SECS[tar19]}" "${SECS[build]}") | $(mib "${RSS[tar19]}") |
| verify | \`offkit verify KIT --trust PUB\` | ${SECS[verify]} | 1.00 | $(mib "${RSS[verify]}") |
| verify | floor: \`zstd -dc KIT \| openssl dgst -sha256\` | ${SECS[floor]} | $(ratio "${SECS[floor]}" "${SECS[verify]}") | $(mib "${RSS[floor]}") |
| verify | \`zstd -dc KIT \| sha256sum\` | ${SECS[zsha]} | $(ratio "${SECS[zsha]}" "${SECS[verify]}") | $(mib "${RSS[zsha]}") |
| verify | \`tar --zstd -x\` + \`sha256sum -c\` (SHA256SUMS, then the pages) | ${SECS[extract]} | $(ratio "${SECS[extract]}" "${SECS[verify]}") | $(mib "${RSS[extract]}") |

Ratio = the other command's time ÷ offkit's (above 1.00: offkit is faster).
MD

# Apply, per store, against the stock pipeline.
ROWS=()
run_store() {
  local apply="$OFFKIT apply $KIT --trust $PUB --db sqlite://$W/site/offkit.db --store '$APPLY_STORE' --progress off"
  local stock="tar --zstd -xf $KIT -C $W/x && (cd $W/x && sha256sum -c --strict --quiet SHA256SUMS && cat index/seeds/*.sha256 | sha256sum -c --strict --quiet) && rclone copy --checksum --config /dev/null $W/x/seeds $STOCK_DEST"
  PREP="rm -rf $W/site; mkdir -p $W/site; $APPLY_PREP; sync"
  measure "apply-$STORE_NAME" "$apply"
  PREP="rm -rf $W/x; mkdir -p $W/x; $STOCK_PREP; sync"
  measure "stock-$STORE_NAME" "$stock"
  local a=${SECS[apply-$STORE_NAME]} b=${SECS[stock-$STORE_NAME]}
  ROWS+=("| $STORE_NAME | \`offkit apply KIT\` (verify, migrations, seeds read again from the kit) | $a | $(ratio "$a" "$b") | $(mib "${RSS[apply-$STORE_NAME]}") | 0 |")
  ROWS+=("| $STORE_NAME | \`tar --zstd -x\` + \`sha256sum -c\` + \`rclone copy --checksum\` (stock) | $b | 1.00 | $(mib "${RSS[stock-$STORE_NAME]}") | $(du -sm "$W/x" | cut -f1) |")
}
for_stores
cat <<MD

| store | job | seconds | ÷ stock | peak RSS (MiB) | scratch disk (MiB) |
|---|---|---:|---:|---:|---:|
MD
printf '%s\n' "${ROWS[@]}"
