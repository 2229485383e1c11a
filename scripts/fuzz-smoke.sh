#!/usr/bin/env bash
# Fuzz smoke test (docs/FUZZING.md): builds the cargo-fuzz targets under fuzz/, replays every
# committed regression input, then runs each target for a short time (FUZZ_SECONDS, default 10)
# from its committed seeds. Fails on any crash, leaving the crashing input under fuzz/artifacts/.
# Needs the nightly toolchain (skipped with a note when it is missing); installs cargo-fuzz from
# crates.io when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-10}"

if ! rustc +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: no nightly toolchain, skipped (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
source fuzz/options.sh

# The first lines of what went wrong: a panic's message, else the sanitizer's or libFuzzer's report.
report() {
  grep -m1 -A8 'panicked at' "$1" || grep -m1 -A30 -E '^==[0-9]+==ERROR' "$1" || tail -n 30 "$1"
  grep -m1 '^SUMMARY' "$1" || true
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work" # the targets' scratch folders go here and are removed with it

(cd fuzz && cargo +nightly fuzz build)
bin="$(fuzz_bin_dir)"
failed=()
for target in $(cd fuzz && cargo +nightly fuzz list); do
  regressions=(fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$bin/$target" "${regressions[@]}" >"$work/$target.replay.log" 2>&1; then
      echo "fuzz-smoke: $target: a regression input crashes again:"
      report "$work/$target.replay.log"
      failed+=("$target")
      continue
    fi
  fi
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
  if "$bin/$target" "$work/corpus/$target" "fuzz/seeds/$target" -dict="$(fuzz_dict "$target")" \
    "${FUZZ_FLAGS[@]}" -max_total_time="$seconds" -artifact_prefix="$work/artifacts/$target/" \
    >"$work/$target.log" 2>&1; then
    stats="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" | tail -n 1)"
    echo "fuzz-smoke: $target: ok ${stats#\#}"
  else
    mkdir -p "fuzz/artifacts/$target"
    cp "$work/artifacts/$target/"* "fuzz/artifacts/$target/" 2>/dev/null || true
    echo "fuzz-smoke: $target: CRASH (input kept in fuzz/artifacts/$target/):"
    report "$work/$target.log"
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: failed: ${failed[*]}"
  exit 1
fi
