#!/usr/bin/env bash
# Runs every offkit test on this machine: installs/starts what the tests need, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-deps.sh
scripts/test-deps.sh
exec cargo nextest run --no-fail-fast "$@"
