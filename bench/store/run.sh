#!/usr/bin/env bash
# Seeding benchmark: offkit (`offkit store put-dir`, the seeding library behind `offkit apply`)
# next to `rclone copy --checksum` of the same files to the same kind of target, in the same run.
#
#   bench/store/run.sh [WORKDIR]
#
# Data: 100,000 small objects (200 B - 4 KiB, 100 folders) and 10 large ones of 52 MiB
# (≥ 500 MiB in all). Targets: a local folder, and S3 (`rclone serve s3` on loopback).
# Each variant runs REPEAT times; each repetition seeds a fresh target ("first") and then runs
# again on the full target ("rerun", the idempotent case). Wall time and peak memory (max RSS)
# come from /usr/bin/time; the table gives the minimum and the median time over the repetitions
# and the largest peak memory. Results are printed as Markdown and kept in WORKDIR/results.md;
# the data stays in WORKDIR (default a fresh folder under /tmp) and is removed with `rm -rf`.
#
# Knobs (environment): SMALL=100000 LARGE=10 LARGE_MIB=52 REPEAT=3 OFFKIT=path/to/offkit
# TARGETS="file s3" RCLONE_TRANSFERS="4 16" (rclone's default 4, and offkit's default 16)
# READ_BACK=1 (also offkit with S3 `confirm=read-back`: every object read back).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/offkit-bench-store.XXXXXX)}
mkdir -p "$work"
SMALL=${SMALL:-100000}
LARGE=${LARGE:-10}
LARGE_MIB=${LARGE_MIB:-52}
REPEAT=${REPEAT:-3}
TARGETS=${TARGETS:-"file s3"}
RCLONE_TRANSFERS=${RCLONE_TRANSFERS:-"4 16"}
READ_BACK=${READ_BACK:-0}

results="$work/results.md"
source "$here/lib.sh"
need_tools
data="$work/data"
gen_data "$data"
total_bytes=$(du -sb --apparent-size "$data" | cut -f1)
objects=$(find "$data" -type f | wc -l)

{
    echo "| tool | target | first: min / median (s) | rerun: min / median (s) | peak RSS (MiB) |"
    echo "|---|---|---|---|---|"
} | tee "$results"

slug() { echo "$1" | tr -c 'a-z0-9\n' '-'; }

if [[ " $TARGETS " == *" file "* ]]; then
    file_dest() { local d="$work/t-file-$name-$1"; rm -rf "$d"; echo "$d"; }
    name=offkit
    bench "offkit put-dir" file file_dest "$OFFKIT store put-dir --progress lines file://@DEST@ $data"
    for tr in $RCLONE_TRANSFERS; do
        name=rclone-$tr
        bench "rclone copy --checksum --transfers $tr" file file_dest \
            "rclone copy --checksum --transfers $tr --config /dev/null $data @DEST@"
    done
    rm -rf "$work"/t-file-*
fi

if [[ " $TARGETS " == *" s3 "* ]]; then
    start_s3
    bucket_dest() {
        local b
        b="$(slug "$name")-$1"
        rclone mkdir --config /dev/null "$(remote "$b")"
        echo "$b"
    }
    endpoint="endpoint=http://127.0.0.1:$port&path_style=true"
    name=offkit
    bench "offkit put-dir" s3 bucket_dest \
        "$OFFKIT store put-dir --progress lines 's3://@DEST@?$endpoint' $data"
    if [[ $READ_BACK == 1 ]]; then
        name=offkit-read-back
        bench "offkit put-dir, confirm=read-back" s3 bucket_dest \
            "$OFFKIT store put-dir --progress lines 's3://@DEST@?$endpoint&confirm=read-back' $data"
    fi
    for tr in $RCLONE_TRANSFERS; do
        name=rclone-$tr
        bench "rclone copy --checksum --transfers $tr" s3 bucket_dest \
            "rclone copy --checksum --transfers $tr --config /dev/null $data \"\$(echo \":s3,provider=Other,access_key_id=$key,secret_access_key=$secret,endpoint='http://127.0.0.1:$port':@DEST@\")\""
    done
    kill "$server" 2>/dev/null || true
    rm -rf "$work/s3"
fi

{
    echo
    echo "objects: $objects, bytes: $total_bytes, repetitions: $REPEAT"
    echo "offkit: $("$OFFKIT" --version) ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "rclone: $(rclone version | head -1)"
    echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel $(uname -r); fs: $(df -T "$work" | awk 'NR==2 {print $2}')"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$results"
echo "results in $results" >&2
