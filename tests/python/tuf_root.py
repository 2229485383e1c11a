#!/usr/bin/env python3
"""Trust versions made and checked by python-tuf (PyPI `tuf`), independently of offkit's code.

    tuf_root.py make OUT --version N --expires T --root PUB... [--root-threshold K]
                --kit PUB... [--kit-threshold K] --sign KEY...
    tuf_root.py check TRUSTED NEW     exit 0 when python-tuf accepts NEW after TRUSTED (TUF 5.3.4:
                                  signed by a threshold of TRUSTED's root keys and of its own,
                                  version exactly one more), else prints why and exits 1
    tuf_root.py check-self ROOT       exit 0 when ROOT is signed by a threshold of its own root keys

Keys are offkit's Ed25519 PEM files (SPKI public, PKCS#8 private). Used by tests/trust_store.rs.
"""
import argparse
import sys
from datetime import datetime

from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Metadata, Root


def public(path):
    with open(path, "rb") as f:
        return SSlibKey.from_crypto(load_pem_public_key(f.read()))


def make(a):
    root = Root(
        version=a.version,
        expires=datetime.fromisoformat(a.expires.replace("Z", "+00:00")),
        consistent_snapshot=True,
    )
    for p in a.root:
        for role in ("root", "snapshot", "timestamp"):
            root.add_key(public(p), role)
    for p in a.kit:
        root.add_key(public(p), "targets")
    root.roles["root"].threshold = a.root_threshold
    root.roles["targets"].threshold = a.kit_threshold
    md = Metadata(root)
    for p in a.sign:
        with open(p, "rb") as f:
            md.sign(CryptoSigner(load_pem_private_key(f.read(), None)), append=True)
    md.to_file(a.out)


def check(a):
    trusted = Metadata[Root].from_file(a.trusted)
    new = Metadata[Root].from_file(a.new)
    try:
        if new.signed.version != trusted.signed.version + 1:
            raise ValueError(f"version {new.signed.version} after {trusted.signed.version}")
        trusted.signed.verify_delegate("root", new.signed_bytes, new.signatures)
        new.signed.verify_delegate("root", new.signed_bytes, new.signatures)
    except Exception as e:  # noqa: BLE001 - the reason is the output
        print(f"refused: {e}")
        sys.exit(1)


def check_self(a):
    md = Metadata[Root].from_file(a.root)
    try:
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    except Exception as e:  # noqa: BLE001
        print(f"refused: {e}")
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--version", type=int, required=True)
    m.add_argument("--expires", required=True)
    m.add_argument("--root", nargs="+", required=True)
    m.add_argument("--root-threshold", type=int, default=1)
    m.add_argument("--kit", nargs="+", required=True)
    m.add_argument("--kit-threshold", type=int, default=1)
    m.add_argument("--sign", nargs="*", default=[])
    c = sub.add_parser("check")
    c.add_argument("trusted")
    c.add_argument("new")
    s = sub.add_parser("check-self")
    s.add_argument("root")
    a = p.parse_args()
    {"make": make, "check": check, "check-self": check_self}[a.cmd](a)


if __name__ == "__main__":
    main()
