#!/usr/bin/env bash
# Kit benchmark: offkit build/verify against the stock pipelines, in one run, on the same data.
#   usage: bench/kit/run.sh [SIZE_MIB=1100] [RUNS=3] [LEVEL=3]
# Prints a Markdown table (median wall seconds, ratio to the reference, peak RSS of the largest
# process) to stdout; the README's docs/BENCHMARKS.md section was made with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-1100}; RUNS=${2:-3}; LEVEL=${3:-3}
W=${BENCH_DIR:-/tmp/offkit-bench}
cargo build --release --quiet
OFFKIT=$PWD/target/release/offkit
mkdir -p "$W"
if [ ! -f "$W/src/kit.toml" ] || [ "$(cat "$W/size" 2>/dev/null)" != "$SIZE" ]; then
  rm -rf "$W/src"; python3 bench/kit/gen.py "$W/src" "$SIZE"; echo "$SIZE" > "$W/size"
fi
[ -f "$W/keys/bench.key" ] || "$OFFKIT" keygen --out "$W/keys/bench" >/dev/null
export SOURCE_DATE_EPOCH=1767225600
KIT="$W/out/bench-1.0.0.kit.tar.zst"

source bench/lib.sh

# Warm the page cache so every contender reads from memory.
cat $(find "$W/src" -type f) > /dev/null

PREP="rm -rf $W/out; mkdir -p $W/out"
measure build "$OFFKIT build $W/src --key $W/keys/bench.key --out $W/out --level $LEVEL"
PREP="rm -f $W/pipe.tar.zst"
measure build_pipeline "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$SOURCE_DATE_EPOCH -cf - -C $W/src . | zstd -q -T0 -$LEVEL -o $W/pipe.tar.zst && (cd $W/src && find . -type f -print0 | sort -z | xargs -0 sha256sum > $W/pipe.sums)"
PREP=""
rm -rf "$W/out"; mkdir -p "$W/out"
"$OFFKIT" build "$W/src" --key "$W/keys/bench.key" --out "$W/out" --level "$LEVEL" >/dev/null
KIT_BYTES=$(stat -c %s "$KIT")
PAYLOAD=$(zstd -dc "$KIT" | wc -c)
measure verify "$OFFKIT verify $KIT --trust $W/keys/bench.pub"
measure verify_jobs2 "$OFFKIT verify $KIT --trust $W/keys/bench.pub --jobs 2"
measure floor "zstd -dc $KIT | openssl dgst -sha256"
measure zstd_sha256sum "zstd -dc $KIT | sha256sum"
PREP="rm -rf $W/x; mkdir -p $W/x"
measure extract_check "tar --zstd -xf $KIT -C $W/x && cd $W/x && sha256sum -c --strict --quiet SHA256SUMS"
PREP=""

# Memory does not grow with kit size: a kit of three 1 GiB files (one random, two compressible).
BIG="$W/big"
if [ ! -f "$BIG/src/kit.toml" ]; then
  mkdir -p "$BIG/src/seeds"
  printf 'name = "big"\nversion = "1.0.0"\nchannel = "big"\nsequence = 1\ntarget = "any"\n' > "$BIG/src/kit.toml"
  head -c 1073741824 /dev/urandom > "$BIG/src/seeds/random.bin"
  python3 -c "import sys; b=open('$W/src/seeds/text/dump-000.ndjson','rb').read(); f=open('$BIG/src/seeds/text-a.ndjson','wb'); [f.write(b) for _ in range(1073741824//len(b))]"
  cp "$BIG/src/seeds/text-a.ndjson" "$BIG/src/seeds/text-b.ndjson"
fi
rm -rf "$BIG/out"; mkdir -p "$BIG/out"
"$OFFKIT" build "$BIG/src" --key "$W/keys/bench.key" --out "$BIG/out" --level "$LEVEL" >/dev/null
BIG_KIT="$BIG/out/big-1.0.0.kit.tar.zst"
BIG_BYTES=$(zstd -dc "$BIG_KIT" | wc -c)
measure verify_big "$OFFKIT verify $BIG_KIT --trust $W/keys/bench.pub"
measure floor_big "zstd -dc $BIG_KIT | openssl dgst -sha256"

cat <<MD
Kit: $(python3 -c "print(f'{$PAYLOAD/2**30:.2f}')") GiB uncompressed ($(find "$W/src" -type f | wc -l) files), $(python3 -c "print(f'{$KIT_BYTES/2**30:.2f}')") GiB compressed at level $LEVEL; median of $RUNS runs; $(nproc) cores; $(date -u +%F).

| operation | command | seconds | ratio | peak RSS (MiB) |
|---|---|---:|---:|---:|
| verify | \`offkit verify KIT --trust PUB\` | ${SECS[verify]} | 1.00 | $(mib ${RSS[verify]}) |
| verify | \`offkit verify KIT --trust PUB --jobs 2\` | ${SECS[verify_jobs2]} | $(ratio ${SECS[verify_jobs2]} ${SECS[verify]}) | $(mib ${RSS[verify_jobs2]}) |
| verify | floor: \`zstd -dc KIT \| openssl dgst -sha256\` | ${SECS[floor]} | $(ratio ${SECS[floor]} ${SECS[verify]}) | $(mib ${RSS[floor]}) |
| verify | \`zstd -dc KIT \| sha256sum\` | ${SECS[zstd_sha256sum]} | $(ratio ${SECS[zstd_sha256sum]} ${SECS[verify]}) | $(mib ${RSS[zstd_sha256sum]}) |
| verify | peers: \`tar --zstd -x\` then \`sha256sum -c\` | ${SECS[extract_check]} | $(ratio ${SECS[extract_check]} ${SECS[verify]}) | $(mib ${RSS[extract_check]}) |
| build | \`offkit build SRC --level $LEVEL\` | ${SECS[build]} | 1.00 | $(mib ${RSS[build]}) |
| build | \`tar --sort=name … \| zstd -T0 -$LEVEL\` + \`sha256sum\` of the files | ${SECS[build_pipeline]} | $(ratio ${SECS[build_pipeline]} ${SECS[build]}) | $(mib ${RSS[build_pipeline]}) |

| verify, 3-file kit of $(python3 -c "print(f'{$BIG_BYTES/2**30:.2f}')") GiB | \`offkit verify\` | ${SECS[verify_big]} | 1.00 | $(mib ${RSS[verify_big]}) |
| verify, 3-file kit | floor: \`zstd -dc \| openssl dgst -sha256\` | ${SECS[floor_big]} | $(ratio ${SECS[floor_big]} ${SECS[verify_big]}) | $(mib ${RSS[floor_big]}) |

Ratios are the other command's time divided by offkit's (above 1.00: offkit is faster).
offkit verify / floor = $(ratio ${SECS[verify]} ${SECS[floor]}), with --jobs 2 $(ratio ${SECS[verify_jobs2]} ${SECS[floor]}) (issue 14's target ≤ 0.70).
MD
