# Shared by the bench/*/run.sh scripts (source it after setting W and RUNS).
#   measure NAME COMMAND...   runs COMMAND RUNS times (after $PREP, if set, each time); records
#                             the median wall seconds in SECS[NAME] and the peak RSS (KiB) in RSS[NAME]
#   ratio A B                 A / B with two decimals
#   mib KIB                   KiB as whole MiB
declare -A SECS RSS
measure() {
  local name=$1; shift
  local times=() rss=0 out
  for _ in $(seq "$RUNS"); do
    [ -n "${PREP:-}" ] && eval "$PREP"
    /usr/bin/time -o "$W/time.out" -f "%e %M" bash -c "$*" >/dev/null 2>"$W/stderr.out" ||
      { echo "bench: failed: $*" >&2; cat "$W/stderr.out" >&2; exit 1; }
    out=$(tail -n1 "$W/time.out")
    times+=("${out% *}"); [ "${out#* }" -gt "$rss" ] && rss=${out#* }
  done
  SECS[$name]=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  RSS[$name]=$rss
}
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
mib() { python3 -c "print(f'{$1/1024:.0f}')"; }
