#!/usr/bin/env bash
# Installs what building offkit needs beyond the Rust toolchain, on a machine that may be new:
# OpenSSL's headers and pkg-config (TLS to PostgreSQL uses the system's OpenSSL, as libpq does;
# docs/DECISIONS.md). Idempotent; quiet when everything is there.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
need=()
have pkg-config || need+=(pkg-config)
{ have pkg-config && pkg-config --exists openssl; } || need+=(libssl-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if have apt-get; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
else
  echo "build-deps: please install: ${need[*]} (OpenSSL development files and pkg-config)" >&2
  exit 1
fi
