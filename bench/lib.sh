# Shared by the bench/*/run.sh scripts (source it after setting W and RUNS).
#   measure NAME COMMAND...   runs COMMAND RUNS times (after $PREP, if set, each time); records
#                             the median wall seconds in SECS[NAME] and the peak RSS (KiB) in RSS[NAME]
#                             (a failed run's time is kept, marked "(failed)"; the bench goes on)
#   ratio A B                 A / B with two decimals
#   mib KIB                   KiB as whole MiB
#   for_stores                calls the caller's run_store once per store named in $STORES (file,
#                             s3), with STORE_NAME, APPLY_STORE (offkit's --store), STOCK_DEST
#                             (rclone's destination), APPLY_PREP and STOCK_PREP (each empties its
#                             own: emptying the other's million objects through the server would
#                             cost more than the run) set; S3 is `rclone serve s3` on loopback
declare -A SECS RSS
measure() {
  local name=$1; shift
  local times=() rss=0 out
  for _ in $(seq "$RUNS"); do
    [ -n "${PREP:-}" ] && eval "$PREP"
    local failed=""
    if ! /usr/bin/time -o "$W/time.out" -f "%e %M" bash -c "$*" >/dev/null 2>"$W/stderr.out"; then
      # One failed command (a server that answered short once in a million) must not lose the
      # run's figures: its time is kept, marked "(failed)", and the run goes on.
      echo "bench: failed, the run goes on: $*" >&2; tail -n 20 "$W/stderr.out" >&2
      failed=" (failed)"
    fi
    out=$(tail -n1 "$W/time.out")
    times+=("${out% *}"); [ "${out#* }" -gt "$rss" ] && rss=${out#* }
  done
  SECS[$name]=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")$failed
  RSS[$name]=$rss
}
# Both read a figure marked "(failed)" as its number, and print "—" for one that is not a number.
ratio() { python3 -c "import sys; a, b = (float(x.split()[0]) for x in sys.argv[1:]); print(f'{a/b:.2f}')" "$1" "$2" 2>/dev/null || echo "—"; }
mib() { python3 -c "import sys; print(f'{float(sys.argv[1].split()[0])/1024:.0f}')" "$1" 2>/dev/null || echo "—"; }
# Commands that empty BUCKET through the server, so that its listing cache never holds a bucket
# emptied behind it.
empty_bucket() {
  printf 'rclone purge --config /dev/null "%s" 2>/dev/null || true; ' "$(remote "$1")"
  printf 'rclone mkdir --config /dev/null "%s"' "$(remote "$1")"
}
for_stores() {
  if [[ " $STORES " == *" file "* ]]; then
    STORE_NAME=folder APPLY_STORE="file://$W/site/store" STOCK_DEST="$W/store2" \
      APPLY_PREP="true" STOCK_PREP="rm -rf $W/store2" run_store
  fi
  if [[ " $STORES " == *" s3 "* ]]; then
    work=$W
    source bench/store/lib.sh
    start_s3
    STORE_NAME=S3 APPLY_STORE="s3://apply-b?endpoint=http://127.0.0.1:$port&path_style=true" \
      STOCK_DEST="\"$(remote stock-b)\"" \
      APPLY_PREP="$(empty_bucket apply-b)" STOCK_PREP="$(empty_bucket stock-b)" run_store
    kill "$server" 2>/dev/null || true
  fi
}
