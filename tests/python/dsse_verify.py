#!/usr/bin/env python3
"""An independent check of an offkit DSSE envelope (a receipt), with python-securesystemslib's
DSSE implementation and the `cryptography` package: no offkit code.

    dsse_verify.py ENVELOPE PUB KEYID [KIT]

Verifies the envelope's signature by the Ed25519 public key PUB (SPKI PEM) named KEYID, checks
the payload is an in-toto Statement v1, and, with KIT, that a subject ending in .kit.tar.zst has
the file's SHA-256. Prints the statement's predicateType and exits 0; prints why and exits 1.
Used by tests/receipt.rs.
"""
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main():
    envelope_path, pub_path, keyid = sys.argv[1:4]
    kit = sys.argv[4] if len(sys.argv) > 4 else None
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
    if kit:
        with open(kit, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        kits = [s for s in statement["subject"] if s["name"].endswith(".kit.tar.zst")]
        if not kits or kits[0]["digest"]["sha256"] != digest:
            print("refused: the kit's SHA-256 is not the receipt's subject")
            sys.exit(1)
    print(statement["predicateType"])


if __name__ == "__main__":
    main()
