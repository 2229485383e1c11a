#!/usr/bin/env python3
"""An independent check of an offkit DSSE envelope (a receipt), with python-securesystemslib's
DSSE implementation and the `cryptography` package: no offkit code.

    dsse_verify.py ENVELOPE PUB KEYID [FILE...]

Verifies the envelope's signature by the Ed25519 public key PUB (SPKI PEM) named KEYID, checks
the payload is an in-toto Statement v1, and that each FILE is a subject with the file's SHA-256
(a kit file: the subject ending in .kit.tar.zst; any other file: the subject named as it, or
ending in /NAME). Prints the statement's predicateType and exits 0; prints why and exits 1.
Used by tests/receipt.rs and tests/provenance.rs.
"""
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main():
    envelope_path, pub_path, keyid = sys.argv[1:4]
    files = sys.argv[4:]
    with open(envelope_path) as f:
        envelope = Envelope.from_dict(json.load(f))
    with open(pub_path, "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()), keyid=keyid)
    try:
        envelope.verify([key], 1)
    except Exception as e:  # noqa: BLE001 - the reason is the output
        print(f"refused: {e}")
        sys.exit(1)
    statement = json.loads(envelope.payload)
    if statement.get("_type") != "https://in-toto.io/Statement/v1":
        print("refused: not an in-toto Statement v1")
        sys.exit(1)
    for path in files:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        name = os.path.basename(path)
        if name.endswith(".kit.tar.zst"):
            match = [s for s in statement["subject"] if s["name"].endswith(".kit.tar.zst")]
        else:
            match = [s for s in statement["subject"]
                     if s["name"] == name or s["name"].endswith("/" + name)]
        if not match or match[0]["digest"]["sha256"] != digest:
            print(f"refused: {name}'s SHA-256 is not the statement's subject")
            sys.exit(1)
    print(statement["predicateType"])


if __name__ == "__main__":
    main()
