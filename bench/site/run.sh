#!/usr/bin/env bash
# Site commands on a kit of many small seed objects: `offkit status` and
# `offkit migrations status --kit` against `offkit verify` of the same kit, in one run.
#   usage: bench/site/run.sh [SEEDS=80000] [RUNS=3]
# status and migrations --kit keep only the kit's SQL from the verifying pass (no extraction), so
# they should cost about one verify. Prints a Markdown table (median seconds, ratio to verify,
# peak RSS) for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${1:-80000}; RUNS=${2:-3}
W=${BENCH_DIR:-/tmp/offkit-bench-site}
cargo build --release --quiet
OFFKIT=$PWD/target/release/offkit
mkdir -p "$W"
if [ ! -f "$W/src/kit.toml" ] || [ "$(cat "$W/seeds" 2>/dev/null)" != "$SEEDS" ]; then
  rm -rf "$W/src"; python3 bench/site/gen.py "$W/src" "$SEEDS"; echo "$SEEDS" > "$W/seeds"
fi
[ -f "$W/keys/bench.key" ] || "$OFFKIT" keygen --out "$W/keys/bench" >/dev/null
export SOURCE_DATE_EPOCH=1767225600
rm -rf "$W/out"; mkdir -p "$W/out"
"$OFFKIT" build "$W/src" --key "$W/keys/bench.key" --out "$W/out" >/dev/null
KIT="$W/out/site-bench-1.0.0.kit.tar.zst"
PUB="$W/keys/bench.pub"

source bench/lib.sh

cat "$KIT" > /dev/null
rm -rf "$W/site"; mkdir -p "$W/site"
DB="sqlite://$W/site/offkit.db"
measure verify "$OFFKIT verify $KIT --trust $PUB"
# status exits 10 while the kit is incomplete here (nothing applied yet).
measure status_empty "$OFFKIT status $KIT --trust $PUB --db $DB --store file://$W/site/empty; test \$? -eq 10"
measure migrations_status "$OFFKIT migrations status --kit $KIT --trust $PUB --db $DB"
"$OFFKIT" apply "$KIT" --trust "$PUB" --db "$DB" --store "file://$W/site/store" --progress off >/dev/null
# Let the 100,000 new files reach the disk first: the page cache's write-back must not run during
# the measurements (the tools are measured, not the disk).
sync
measure status_applied "$OFFKIT status $KIT --trust $PUB --db $DB --store file://$W/site/store"
measure migrations_status_applied "$OFFKIT migrations status --kit $KIT --trust $PUB --db $DB"
# Holding the lock: how long a second apply takes to be refused (--lock-timeout 0s).
OFFKIT_FAILPOINT=apply:locked "$OFFKIT" apply "$KIT" --trust "$PUB" --db "$DB" --store "file://$W/site/store" --progress off >/dev/null 2>&1 &
HOLDER=$!
sleep 1
measure lock_busy "$OFFKIT apply $KIT --trust $PUB --db $DB --store file://$W/site/store --lock-timeout 0s --progress off; test \$? -eq 7"
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true

KIT_MIB=$(python3 -c "import os; print(f'{os.path.getsize(\"$KIT\")/2**20:.0f}')")
cat <<MD
Kit: $SEEDS seed objects (~1 KiB JSON each) and 45 SQL files, $KIT_MIB MiB compressed; median of $RUNS runs; $(nproc) cores; $(date -u +%F).

| command | seconds | ÷ verify | peak RSS (MiB) |
|---|---:|---:|---:|
| \`offkit verify KIT\` | ${SECS[verify]} | 1.00 | $(mib ${RSS[verify]}) |
| \`offkit status --kit KIT\` (empty store) | ${SECS[status_empty]} | $(ratio ${SECS[status_empty]} ${SECS[verify]}) | $(mib ${RSS[status_empty]}) |
| \`offkit migrations status --kit KIT\` (nothing applied) | ${SECS[migrations_status]} | $(ratio ${SECS[migrations_status]} ${SECS[verify]}) | $(mib ${RSS[migrations_status]}) |
| \`offkit status --kit KIT\` (kit applied: every object read back) | ${SECS[status_applied]} | $(ratio ${SECS[status_applied]} ${SECS[verify]}) | $(mib ${RSS[status_applied]}) |
| \`offkit migrations status --kit KIT\` (kit applied) | ${SECS[migrations_status_applied]} | $(ratio ${SECS[migrations_status_applied]} ${SECS[verify]}) | $(mib ${RSS[migrations_status_applied]}) |
| \`offkit apply KIT --lock-timeout 0s\` while another apply holds the lock | ${SECS[lock_busy]} | $(ratio ${SECS[lock_busy]} ${SECS[verify]}) | $(mib ${RSS[lock_busy]}) |
MD
