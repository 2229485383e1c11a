#!/usr/bin/env bash
# A fuzzing campaign (docs/FUZZING.md): runs fuzz targets one after the other, each for SECONDS
# at low priority, one fuzzing process at a time (libFuzzer's -fork=1, so that a crash is
# recorded and the campaign goes on), growing its working corpus under fuzz/corpus/TARGET (not
# committed) from the committed seeds. Prints one row per target for docs/FUZZING.md's table; the
# full log is kept under fuzz/logs/ and crashing inputs under fuzz/artifacts/TARGET/ (minimise one
# with `cargo +nightly fuzz tmin TARGET INPUT`, commit it under fuzz/regressions/TARGET/).
#
#   scripts/fuzz-campaign.sh SECONDS [TARGET...]     (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz-campaign.sh SECONDS [TARGET...]}"
shift
cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
source fuzz/options.sh
(cd fuzz && cargo +nightly fuzz build)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work" # the targets' scratch folders, and libFuzzer's fork-mode folders
bin="$(fuzz_bin_dir)"
mkdir -p fuzz/logs
echo "| target | seconds | executions | exec/s | cov | ft | corpus | oom/timeout/crash |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for target in "${targets[@]}"; do
  log="fuzz/logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  start=$SECONDS
  # A private copy: fork mode starts every job from the binary's path, and a build started
  # meanwhile (another campaign's, or a test's) would replace the binary under the campaign.
  cp "$bin/$target" "$work/$target"
  nice -n 10 "$work/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
    -dict="$(fuzz_dict "$target")" "${FUZZ_FLAGS[@]}" -max_total_time="$seconds" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1 || true
  took=$((SECONDS - start))
  # The last status line: "#EXECS: cov: C ft: F corp: N exec/s: E oom/timeout/crash: O/T/C ...".
  last="$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1)"
  field() { sed -n "s|.* $1: \([0-9/]*\).*|\1|p" <<<"$last"; }
  execs="$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")"
  echo "| $target | $took | $execs | $(field exec/s) | $(field cov) | $(field ft) |" \
    "$(field corp) | $(field oom/timeout/crash) |"
done
