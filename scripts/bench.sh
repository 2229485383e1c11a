#!/usr/bin/env bash
# Runs offkit's benchmarks (not tests: they take minutes and want an otherwise idle machine).
#   scripts/bench.sh kit      build/verify vs tar|zstd|sha256sum|openssl   (bench/kit/run.sh)
#   scripts/bench.sh migrate  10,000 migrations vs sqlx-cli and dbmate     (bench/migrate/run.sh)
#   scripts/bench.sh store    seeding vs rclone copy --checksum            (bench/store/run.sh)
#   scripts/bench.sh store-migrate  store migrate vs rclone copy --checksum (bench/store/migrate.sh)
#   scripts/bench.sh site     status / migrations --kit vs verify, 100,000 seeds (bench/site/run.sh)
#   scripts/bench.sh parts    split/join/verify of a 5.3 GiB kit vs split, cat (bench/parts/run.sh)
#   scripts/bench.sh apply    apply of a 1.1 GiB kit vs tar -x, sha256sum -c, rclone copy (bench/apply/run.sh)
#   scripts/bench.sh million  build, verify and apply of a 1,000,000-object kit vs the stock tools (bench/million/run.sh)
#   scripts/bench.sh all
# Figures and how to read them: docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case $what in
  kit) bench/kit/run.sh "${@:2}" ;;
  migrate) bench/migrate/run.sh 10000 3 dml && bench/migrate/run.sh 10000 3 ddl ;;
  store) bench/store/run.sh "${@:2}" ;;
  store-migrate) bench/store/migrate.sh "${@:2}" ;;
  site) bench/site/run.sh "${@:2}" ;;
  parts) bench/parts/run.sh "${@:2}" ;;
  apply) bench/apply/run.sh "${@:2}" ;;
  million) bench/million/run.sh "${@:2}" ;;
  all) "$0" kit && "$0" migrate && "$0" store && "$0" site && "$0" parts && "$0" apply ;;
  *) echo "usage: $0 kit|migrate|store|store-migrate|site|parts|apply|million|all" >&2; exit 2 ;;
esac
