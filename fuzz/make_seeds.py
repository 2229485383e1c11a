#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ (docs/FUZZING.md).

Every seed is made here, from the repository's own kits and keys or from text written below, so
anyone can see how each was made and make them again:

    cargo build && fuzz/make_seeds.py            # or: fuzz/make_seeds.py --offkit PATH

It builds kits/quickstart and kits/concelier-lnm with the development key at a fixed time
(SOURCE_DATE_EPOCH, as scripts/quickstart.sh does), so the kits, and the seeds, are the same on
every machine. Needs Python 3 (standard library), the zstd command and an offkit binary.
A seed that is a kit file starts with a mode byte (fuzz/src/kitfile.rs): 0 for the file as it is,
1 for its uncompressed frames joined by FRAME_SEP.
"""

import argparse
import io
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01T00:00:00Z, as scripts/quickstart.sh
FRAME_SEP = b"\xffOFFKIT-FRAME\xff"  # fuzz/src/kitfile.rs
DEV_PUB = (ROOT / "keys" / "dev-release.pub").read_text()


# --- zstd frames -------------------------------------------------------------------------------

def frame_sizes(data):
    """Sizes of the zstd frames of `data` (RFC 8878 §3.1: frame header, blocks, checksum)."""
    sizes, at = [], 0
    while at < len(data):
        start = at
        magic = int.from_bytes(data[at:at + 4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame
            at += 8 + int.from_bytes(data[at + 4:at + 8], "little")
            sizes.append(at - start)
            continue
        assert magic == 0xFD2FB528, "not a zstd frame"
        fhd = data[at + 4]
        at += 5
        single_segment = fhd >> 5 & 1
        if not single_segment:
            at += 1  # window descriptor
        at += [0, 1, 2, 4][fhd & 3]  # dictionary id
        fcs_flag = fhd >> 6
        at += [1 if single_segment else 0, 2, 4, 8][fcs_flag]
        while True:
            header = int.from_bytes(data[at:at + 3], "little")
            last, kind, size = header & 1, header >> 1 & 3, header >> 3
            at += 3 + (1 if kind == 1 else size)  # an RLE block stores one byte
            if last:
                break
        if fhd >> 2 & 1:
            at += 4  # content checksum
        sizes.append(at - start)
    return sizes


def unzstd(frame):
    return subprocess.run(["zstd", "-dcq"], input=frame, capture_output=True, check=True).stdout


def frames(kit):
    out, at = [], 0
    for n in frame_sizes(kit):
        out.append(kit[at:at + n])
        at += n
    return out


def raw_input(kit):
    return b"\x00" + kit


def framed_input(kit):
    return b"\x01" + FRAME_SEP.join(unzstd(f) for f in frames(kit))


def tar_members(tar_bytes):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


# --- writing seeds -----------------------------------------------------------------------------

def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


def build_kits(offkit, out):
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    key = ROOT / "keys" / "dev-release.key"
    key.chmod(0o600)  # git does not keep modes; offkit refuses loose private keys
    kits = {}
    for name, file in [("quickstart", "quickstart-1.0.0"), ("concelier", "concelier-lnm-21.103.0")]:
        src = ROOT / "kits" / ("quickstart" if name == "quickstart" else "concelier-lnm")
        subprocess.run([offkit, "build", src, "--key", key, "--out", out], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        kits[name] = (pathlib.Path(out) / f"{file}.kit.tar.zst").read_bytes()
    return kits


def tar_bytes(entries, fmt):
    """A tar archive of `entries` (TarInfo, data) in format `fmt`, fixed times and owners."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            info.mtime, info.uid, info.gid, info.uname, info.gname = 1767225600, 0, 0, "", ""
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name, kind=tarfile.REGTYPE, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = kw.get("mode", 0o644)
    for k in ("linkname", "devmajor", "devminor", "pax_headers"):
        if k in kw:
            setattr(info, k, kw[k])
    return info, (data if kind == tarfile.REGTYPE else None)


def tar_seeds(kits):
    quick = kits["quickstart"]
    write("tar_reader", "quickstart-header.tar", unzstd(frames(quick)[0]))
    write("tar_reader", "quickstart.tar", unzstd(quick))
    write("tar_reader", "empty.tar", bytes(1024))
    write("tar_reader", "ustar-file.tar",
          tar_bytes([entry("migrations/core/001_init.sql", data=b"CREATE TABLE t (id int);\n")],
                    tarfile.USTAR_FORMAT))
    write("tar_reader", "ustar-prefix.tar",
          tar_bytes([entry("seeds/" + "d" * 120 + "/object.json", data=b"{}\n")],
                    tarfile.USTAR_FORMAT))
    write("tar_reader", "pax-long-path.tar",
          tar_bytes([entry("seeds/" + "p" * 150 + "/é.json", data=b"[]\n")], tarfile.PAX_FORMAT))
    write("tar_reader", "pax-global.tar",
          tar_bytes([entry("a.sql", data=b"SELECT 1;\n",
                           pax_headers={"comment": "x", "mtime": "1.5"})], tarfile.PAX_FORMAT))
    write("tar_reader", "gnu-types.tar", tar_bytes([
        entry("dir", tarfile.DIRTYPE, mode=0o755),
        entry("dir/link", tarfile.SYMTYPE, linkname="../../etc/passwd"),
        entry("dir/hard", tarfile.LNKTYPE, linkname="dir/link"),
        entry("l" * 120, data=b"long name\n"),
    ], tarfile.GNU_FORMAT))
    write("tar_reader", "special.tar", tar_bytes([
        entry("fifo", tarfile.FIFOTYPE),
        entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        entry("setuid", data=b"#!/bin/sh\n", mode=0o4777),
    ], tarfile.USTAR_FORMAT))
    truncated = unzstd(frames(quick)[0])
    write("tar_reader", "truncated.tar", truncated[:len(truncated) // 2])


def kit_seeds(kits):
    for name, kit in kits.items():
        write("kit_reader", f"{name}-raw", raw_input(kit))
        write("kit_reader", f"{name}-framed", framed_input(kit))
    quick = kits["quickstart"]
    write("kit_reader", "quickstart-header-only", raw_input(frames(quick)[0]))
    write("verify_kit", "quickstart-raw", raw_input(quick))
    write("verify_kit", "quickstart-framed", framed_input(quick))


def header_seeds(kits):
    for name, kit in kits.items():
        header = tar_members(unzstd(frames(kit)[0]))
        manifest, sums, dsse = header["manifest.json"], header["SHA256SUMS"], header["manifest.dsse.json"]
        write("manifest_json", f"{name}.json", manifest)
        write("sha256sums", f"{name}.SHA256SUMS", sums)
        write("dsse_envelope", f"{name}.dsse.json", dsse)
        if name == "concelier":
            m = json.loads(manifest)
            mig = m["modules"][0]["migrations"][-1]
            mig["destructive"] = {"reason": "drops the legacy table", "kinds": ["drop-table"]}
            m["requires"] = [{"name": "quickstart", "minVersion": "1.0.0"}]
            write("manifest_json", "destructive-requires.json", json.dumps(m, indent=2) + "\n")
            env = json.loads(dsse)
            env["payload"] = env["payload"].replace("+", "-").replace("/", "_").rstrip("=")
            write("dsse_envelope", "urlsafe-unpadded.dsse.json", json.dumps(env))
    write("sha256sums", "empty", b"")
    write("sha256sums", "one-line", "0" * 64 + "  offkit-layout\n")


def trust_root_seeds(offkit, out):
    """TUF root versions as offkit writes and signs them (with the development key: the same
    bytes on every machine, Ed25519 being deterministic), one signed and one not."""
    pub, key = str(ROOT / "keys" / "dev-release.pub"), str(ROOT / "keys" / "dev-release.key")
    for version, sign in ((1, True), (2, False)):
        path = os.path.join(out, f"{version}.root.json")
        subprocess.run([offkit, "trust", "new", "--version", str(version),
                        "--expires", "2099-01-01T00:00:00Z", "--root-key", pub,
                        "--kit-key", pub, "--out", path], check=True, capture_output=True)
        if sign:
            subprocess.run([offkit, "trust", "sign", path, "--key", key], check=True,
                           capture_output=True)
        write("trust_root", f"{version}.root.json", pathlib.Path(path).read_bytes())
    write("trust_root", "canonical.json", '{"b": [1, -2, true, null], "a": "x\\"}')


def policy_seeds():
    pem = DEV_PUB.strip()
    keyid = "1f3c95a3ae43b8375339971f9f4e14e975cefebb1282f01221769e4e357e8091"
    write("trust_policy", "dev-release.pub", DEV_PUB)
    write("trust_policy", "file-key.toml", '[[keys]]\nname = "dev"\npublic_key = "dev-release.pub"\n')
    write("trust_policy", "inline-full.toml", f'''threshold = 1
revoked = ["SHA256:{"ab" * 32}"]

[[keys]]
name = "release-2026a"
pem = """{pem}"""
keyid = "{keyid}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2027-01-01T00:00:00Z"
roles = ["kit"]
''')
    write("trust_policy", "threshold-two.toml", f'''threshold = 2

[[keys]]
name = "a"
public_key = "dev-release.pub"

[[keys]]
name = "b"
pem = """{pem}"""
roles = ["kit", "attest"]
''')
    write("trust_policy", "revoked-self.toml", f'''revoked = ["{keyid.upper()}"]

[[keys]]
name = "dev"
public_key = "dev-release.pub"
''')


def toml_seeds():
    write("kit_toml", "quickstart.toml", (ROOT / "kits/quickstart/kit.toml").read_text())
    write("kit_toml", "concelier.toml", (ROOT / "kits/concelier-lnm/kit.toml").read_text())
    write("kit_toml", "everything.toml", '''name = "site-core"
version = "2.0.0-rc.1+build.7"
channel = "site"
sequence = 9223372036854775807
target = "sqlite"
description = "every key kit.toml has"
created = "2026-01-01T00:00:00Z"
expires = "2027-01-01T00:00:00Z"

[[requires]]
name = "quickstart"
min_version = "1.0.0"

[modules.core]
schema = "core_v2"

[destructive]
"core/120_drop_legacy" = "the legacy table has been empty since 1.4"
"core/DM001_backfill" = "rewrites every row"
''')


def sql_seeds():
    n = 0
    for path in sorted((ROOT / "kits").rglob("*.sql")):
        n += 1
        write("sql_split", f"kit-{n:02}-{path.name}", path.read_bytes())
    tricky = {
        "dollar-bodies.sql": "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
                             "DO $$ BEGIN PERFORM 1; END $$;\nSELECT $1, a$b FROM t;\n",
        "quotes.sql": "SELECT 'it''s; not', E'\\'; still', \"a;b\", `c;d` FROM t; -- end; here\n",
        "nested-comments.sql": "/* outer /* inner; */ still comment; */ SELECT 1; /* open",
        "batched.sql": "UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t WHERE x IS NULL "
                       "LIMIT :batch_size); SELECT '::batch_size', x::batch_size, :batch_sizes;\n",
        "transaction-control.sql": "BEGIN;\nCREATE FUNCTION g() RETURNS int LANGUAGE sql\n"
                                   "BEGIN ATOMIC SELECT 1; END;\nCOMMIT;\nEND;\n",
        "destructive.sql": "DROP TABLE IF EXISTS ONLY \"Old\".t CASCADE;\nTRUNCATE t2;\n"
                           "ALTER TABLE t DROP COLUMN c;\nDELETE FROM t3;\n"
                           "CREATE TABLE n (i int); DROP TABLE n;\n",
    }
    for name, text in tricky.items():
        write("sql_split", name, text)


def structured(form_byte, style, secret, *parts):
    return bytes([form_byte, style]) + b"\0".join(p.encode() for p in (secret,) + parts)


def form_byte(form, forms):
    """The first byte that selects structured form `form` (a multiple of 4 selects plain text)."""
    return next(b for b in range(1, 256) if b % 4 and b % forms == form)


def url_seeds():
    db_plain = [
        "postgres://app:s3cr%40t@db.local:5432/app?sslmode=verify-full",
        "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write&application_name=x",
        "postgres://db.local/app?user=a&password=hunter2&connect_timeout=5",
        "host=db port=5432 dbname='my db' user=u password='it\\'s' sslmode=require",
        "host=/var/run/postgresql dbname=app sslrootcert=system",
        "postgres://u:p?ss@h/d",
        "postgres://%5B::1%5D/db",
        "postgres://u@[::1]:5432/db?sslcert=~/c.pem&sslkey=k&sslpassword=kp4ss",
        "sqlite://./offkit.db",
        "sqlite:///var/lib/offkit.db",
        "mysql://root:hunter2@h/db",
    ]
    for i, url in enumerate(db_plain):
        write("db_url", f"plain-{i:02}", b"\x00" + url.encode())
    db_forms = [  # (form, style, secret, parts), fuzz_targets/db_url.rs `fill`
        (0, 1, "hunter2!", "app", "db.local:5432/app?sslmode=require"),
        (1, 0, "p@ss/w?rd", "db.local/app", "user=a&", "&sslmode=disable"),
        (2, 2, "it's a secret", "host=db user=u", "dbname=app"),
        (3, 1, "k3y pass", "host=db sslcert=c.pem sslkey=k.pem", "dbname=app"),
        (4, 2, "s3cr3t+key", "h/db", "sslcert=c&sslkey=k&", ""),
        (5, 1, "pass%77ord-value", "h/db", "", "&sslmode=require"),
        (6, 2, "back\\slash secret", "host=h", "dbname=d"),
    ]
    for form, style, secret, *parts in db_forms:
        write("db_url", f"form-{form}-style-{style}", structured(form_byte(form, 7), style, secret, *parts))

    store_plain = [
        "file://./offkit-store",
        "s3://bucket/seeds/v1?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true",
        "s3://b/p?access_key_id=AKIA1&secret_access_key=wJalr%2Fx&session_token=tok&confirm=etag-md5",
        "s3://b?conditional_put=disabled&allow_http=false",
        "postgres://app:hunter2@db.example:5432/site?table=store.objects&sslmode=disable",
        "postgres://u@h/x?table=arch.docs&key_column=bom_ref&data_column=doc&where=kind%3D'sbom'",
        "postgresql://postgres@127.0.0.1/x",
        "s3://AKIA:secret@bucket/p",
    ]
    for i, url in enumerate(store_plain):
        write("store_url", f"plain-{i:02}", b"\x00" + url.encode())
    store_forms = [  # fuzz_targets/store_url.rs `fill`
        (0, 1, "AKIAEXAMPLE1", "bucket/seeds", "region=us-east-1&", "&path_style=true"),
        (1, 0, "wJalrXUtnFEMI/K7MDENG", "bucket", "endpoint=http://127.0.0.1:9000&", ""),
        (2, 2, "FwoGZXIvYXdzE+token==", "bucket/p", "", "&confirm=etag-md5"),
        (3, 1, "wJalr-secret-key", "bucket", "", "&bogus=1"),
        (4, 2, "minio-pass", "bucket", "region=x&", "127.0.0.1:9000"),
        (5, 0, "hunter2hunter2", "bucket/p"),
        (6, 1, "pg-secret", "app", "db:5432/site?table=store.objects&sslmode=disable"),
        (7, 2, "p?ss&word", "db/site", "table=bad-name&", ""),
        (8, 1, "encoded-key-secret", "db/site", "table=s.t&", ""),
    ]
    for form, style, secret, *parts in store_forms:
        write("store_url", f"form-{form}-style-{style}", structured(form_byte(form, 9), style, secret, *parts))


def page_seeds():
    """seed_pages: a page of three seeds and the stream that takes them (the target's docs)."""
    import hashlib
    import struct
    paths = ["seeds/a.json", "seeds/b/c.json", "seeds/d.txt"]
    page = "".join(f"{hashlib.sha256(p.encode()).hexdigest()}  {p}\n" for p in paths).encode()
    sizes = [10, 0, 65535]
    stream = b"".join(struct.pack("<BH", i, n) for i, n in enumerate(sizes))
    head = struct.pack("<HIH", len(paths), sum(sizes), len(page))
    write("seed_pages", "three-seeds", head + page + stream)
    write("seed_pages", "an-extra-seed", head + page + stream[:3] + struct.pack("<BH", 200, 1))
    write("seed_pages", "empty-page", struct.pack("<HIH", 0, 0, 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--offkit", default=str(ROOT / "target" / "debug" / "offkit"))
    args = ap.parse_args()
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    with tempfile.TemporaryDirectory() as out:
        kits = build_kits(args.offkit, out)
        trust_root_seeds(args.offkit, out)
    tar_seeds(kits)
    kit_seeds(kits)
    header_seeds(kits)
    policy_seeds()
    toml_seeds()
    sql_seeds()
    url_seeds()
    page_seeds()
    for d in sorted(SEEDS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
