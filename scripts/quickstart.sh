#!/usr/bin/env bash
# offkit quick start: build the quick-start kit with the development key, verify it, apply it twice
# to the embedded defaults (SQLite + a folder store; the second apply changes nothing), show the ledger.
# Everything it writes goes to ./offkit-demo (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-deps.sh
cargo build --release --quiet
OFFKIT=target/release/offkit
DEMO=offkit-demo
mkdir -p "$DEMO"
chmod 600 keys/dev-release.key   # git does not keep modes; offkit refuses loose private keys
export SOURCE_DATE_EPOCH=1767225600   # reproducible: the same kit bytes on every machine

step() { printf '\n$ %s\n' "$*"; "$@"; }
step "$OFFKIT" build kits/quickstart --key keys/dev-release.key --out "$DEMO"
step "$OFFKIT" verify "$DEMO/quickstart-1.0.0.kit.tar.zst" --trust keys/dev-release.pub
# Apply to the embedded defaults: a SQLite file and a local folder store.
step "$OFFKIT" apply "$DEMO/quickstart-1.0.0.kit.tar.zst" --trust keys/dev-release.pub \
  --db "sqlite://$DEMO/offkit.db" --store "file://$DEMO/store" --progress lines
# Applying again changes nothing: every migration and object is already there.
step "$OFFKIT" apply "$DEMO/quickstart-1.0.0.kit.tar.zst" --trust keys/dev-release.pub \
  --db "sqlite://$DEMO/offkit.db" --store "file://$DEMO/store" --progress lines
step "$OFFKIT" history --db "sqlite://$DEMO/offkit.db"
