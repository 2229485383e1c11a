# Sourced by scripts/fuzz-smoke.sh and scripts/fuzz-campaign.sh: where the fuzz targets are built
# and the libFuzzer options every run uses (docs/FUZZING.md).

# The targets' binaries, as `cargo +nightly fuzz build` leaves them (release, debug assertions,
# AddressSanitizer).
fuzz_bin_dir() {
  echo "fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
}

# The dictionary of a target.
fuzz_dict() {
  case "$1" in
    tar_reader | kit_reader | verify_kit) echo fuzz/dict/kit.dict ;;
    manifest_json | dsse_envelope | sha256sums | trust_root) echo fuzz/dict/json.dict ;;
    trust_policy | kit_toml) echo fuzz/dict/toml.dict ;;
    sql_split) echo fuzz/dict/sql.dict ;;
    db_url | store_url) echo fuzz/dict/url.dict ;;
    seed_pages) echo fuzz/dict/pages.dict ;;
  esac
}

# A single allocation above 128 MiB is a finding (the header is bounded at 64 MiB, everything
# else streams); an input that takes 10 s is one too.
FUZZ_FLAGS=(-malloc_limit_mb=128 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
