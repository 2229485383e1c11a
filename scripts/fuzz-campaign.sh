#!/usr/bin/env bash
# A fuzzing campaign (docs/FUZZING.md): runs fuzz targets one after the other, each for SECONDS
# in one process at low priority, growing its working corpus under fuzz/corpus/TARGET (not
# committed) from the committed seeds. Prints one row per target for docs/FUZZING.md's table; the
# full libFuzzer log is kept under fuzz/logs/. A crash stops that target: its input is in
# fuzz/artifacts/TARGET/ (minimise it with `cargo +nightly fuzz tmin TARGET INPUT` and commit
# the result under fuzz/regressions/TARGET/).
#
#   scripts/fuzz-campaign.sh SECONDS [TARGET...]     (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz-campaign.sh SECONDS [TARGET...]}"
shift
source fuzz/options.sh
(cd fuzz && cargo +nightly fuzz build)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work"
bin="$(fuzz_bin_dir)"
mkdir -p fuzz/logs
echo "| target | seconds | executions | exec/s | cov | ft | corpus | peak RSS MB | result |"
for target in "${targets[@]}"; do
  log="fuzz/logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  start=$SECONDS
  result=ok
  nice -n 10 "$bin/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
    -dict="$(fuzz_dict "$target")" "${FUZZ_FLAGS[@]}" -max_total_time="$seconds" \
    -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1 || result="CRASH (see $log)"
  took=$((SECONDS - start))
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  last="$(grep -E '^#[0-9]+ ' "$log" | tail -n 1)"
  field() { sed -n "s/.* $1: \([0-9a-zA-Z/]*\).*/\1/p" <<<"$last"; }
  echo "| $target | $took | $(stat number_of_executed_units) | $(stat average_exec_per_sec) |" \
    "$(field cov) | $(field ft) | $(field corp) | $(stat peak_rss_mb) | $result |"
done
