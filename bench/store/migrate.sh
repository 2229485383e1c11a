#!/usr/bin/env bash
# Store-migration benchmark: `offkit store migrate` next to `rclone copy --checksum` at the same
# parallelism, in the same run, for file→S3, S3→file and S3→S3, first into an empty destination
# and again onto the full one (the rerun: nothing to copy).
#
#   bench/store/migrate.sh [WORKDIR]
#
# Data (bench/store/gen.py): SMALL small objects (200 B - 4 KiB) and LARGE objects of LARGE_MIB.
# S3 is `rclone serve s3` on loopback (one server for both tools, a bucket each). offkit records
# its runs in a SQLite ledger in WORKDIR (the checkpoint and index writes are part of the time).
# Wall time and peak memory (max RSS) from /usr/bin/time; each variant REPEAT times, minimum and
# median. Results as Markdown in WORKDIR/results-migrate.md.
#
# Knobs: SMALL=100000 LARGE=3 LARGE_MIB=52 REPEAT=1 JOBS=16 OFFKIT=path/to/offkit
# READ_BACK=1 (also offkit with `confirm=read-back`: every object read back).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/offkit-bench-migrate.XXXXXX)}
mkdir -p "$work"
SMALL=${SMALL:-100000}
LARGE=${LARGE:-3}
LARGE_MIB=${LARGE_MIB:-52}
REPEAT=${REPEAT:-1}
JOBS=${JOBS:-16}
READ_BACK=${READ_BACK:-0}

results="$work/results-migrate.md"
source "$here/lib.sh"
need_tools
data="$work/data-$SMALL-$LARGE"
gen_data "$data"
total_bytes=$(du -sb --apparent-size "$data" | cut -f1)
objects=$(find "$data" -type f | wc -l)

rm -rf "$work"/t-* "$work"/ledger-*
start_s3
s3url() { echo "s3://$1?endpoint=http://127.0.0.1:$port&path_style=true${2:-}"; }
mkbucket() { rclone mkdir --config /dev/null "$(remote "$1")"; }

# The S3 source of the S3→file and S3→S3 cases: the data, copied in once by rclone.
mkbucket source
rclone copy --transfers "$JOBS" --config /dev/null "$data" "$(remote source)"

{
    echo "| case | tool | first: min / median (s) | rerun: min / median (s) | peak RSS (MiB) |"
    echo "|---|---|---|---|---|"
} | tee "$results"

bucket_dest() { mkbucket "t-$1"; echo "t-$1"; }
file_dest() { echo "$work/t-file-$1"; }
om="$OFFKIT store migrate --progress lines --parallelism $JOBS --db @DB@"
rc="rclone copy --checksum --transfers $JOBS --config /dev/null"

bench "file → S3" "offkit store migrate" bucket_dest "$om --from file://$data --to '$(s3url @DEST@)'"
[[ $READ_BACK == 1 ]] && bench "file → S3" "offkit, confirm=read-back" bucket_dest "$om --from file://$data --to '$(s3url @DEST@ '&confirm=read-back')'"
bench "file → S3" "rclone copy --checksum" bucket_dest "$rc $data \"$(remote @DEST@)\""
bench "S3 → file" "offkit store migrate" file_dest "$om --from '$(s3url source)' --to file://@DEST@"
[[ $READ_BACK == 1 ]] && bench "S3 → file" "offkit, confirm=read-back" file_dest "$om --from '$(s3url source '&confirm=read-back')' --to file://@DEST@"
bench "S3 → file" "rclone copy --checksum" file_dest "$rc \"$(remote source)\" @DEST@"
bench "S3 → S3" "offkit store migrate" bucket_dest "$om --from '$(s3url source)' --to '$(s3url @DEST@)'"
[[ $READ_BACK == 1 ]] && bench "S3 → S3" "offkit, confirm=read-back" bucket_dest "$om --from '$(s3url source '&confirm=read-back')' --to '$(s3url @DEST@ '&confirm=read-back')'"
bench "S3 → S3" "rclone copy --checksum" bucket_dest "$rc \"$(remote source)\" \"$(remote @DEST@)\""

{
    echo
    echo "objects: $objects, bytes: $total_bytes, parallelism: $JOBS, repetitions: $REPEAT"
    echo "offkit: $("$OFFKIT" --version) ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "rclone: $(rclone version | head -1)"
    echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$results"
kill "$server" 2>/dev/null || true
rm -rf "$work/s3" "$work"/t-*
echo "results in $results" >&2
