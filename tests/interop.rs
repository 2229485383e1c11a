//! Stock-tool interoperability: a kit built by offkit is read, checked and verified by tools that
//! share no code with offkit — GNU tar with zstd, OpenSSL, coreutils sha256sum, an independent DSSE
//! PAE computation in Python, and the SPDX project's validator.

mod common;

use std::process::Command;

use common::{Workspace, outcome};

fn sh(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    outcome(&o)
}

#[test]
fn stock_tools_verify_a_kit() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("concelier-lnm");
    let kit = ws.build(&src, &[&key]);
    let x = ws.path("x");
    std::fs::create_dir_all(&x).unwrap();

    let (code, _, err) = sh(Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&kit)
        .arg("-C")
        .arg(&x));
    assert_eq!(code, 0, "tar --zstd -x: {err}");

    let (code, out, err) = sh(Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&public)
        .args(["-rawin", "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig"])
        .current_dir(&x));
    assert_eq!(code, 0, "openssl: {out}{err}");
    assert!(out.contains("Signature Verified Successfully"), "{out}");

    let (code, out, err) = sh(Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&x));
    assert_eq!(code, 0, "sha256sum: {out}{err}");
    assert!(
        out.contains("seeds/advisories/raw/ghsa/GHSA-2026-0001.json: OK"),
        "{out}"
    );

    // An edited file must make the stock recipe fail too (the recipe is not a rubber stamp).
    std::fs::write(x.join("seeds/linksets/shard-map.csv"), "tampered\n").unwrap();
    let (code, _, _) = sh(Command::new("sha256sum")
        .args(["-c", "--strict", "--quiet", "SHA256SUMS"])
        .current_dir(&x));
    assert_ne!(code, 0);
}

/// DSSE `protocol.md`: PAE computed in Python from the envelope alone, then checked by OpenSSL.
#[test]
fn dsse_signature_verifies_with_an_independent_pae() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (key2, public2) = ws.key("cosigner");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&key, &key2]);
    let x = ws.path("x");
    std::fs::create_dir_all(&x).unwrap();
    assert_eq!(
        sh(Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(&kit)
            .arg("-C")
            .arg(&x))
        .0,
        0
    );

    let script = r#"
import base64, json, sys
env = json.load(open("manifest.dsse.json"))
payload = base64.b64decode(env["payload"])
ptype = env["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
open("pae.bin", "wb").write(pae)
for i, s in enumerate(env["signatures"]):
    open("sig%d.bin" % i, "wb").write(base64.b64decode(s["sig"]))
stmt = json.loads(payload)
assert stmt["_type"] == "https://in-toto.io/Statement/v1", stmt["_type"]
assert stmt["predicateType"] == "https://offkit.dev/manifest/v1"
sums = {l[66:]: l[:64] for l in open("SHA256SUMS").read().splitlines()}
subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
assert sums == subjects, "subjects differ from SHA256SUMS"
assert stmt["predicate"] == json.load(open("manifest.json"))
print(len(env["signatures"]))
"#;
    let (code, out, err) = sh(Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(&x));
    assert_eq!(code, 0, "python: {out}{err}");
    assert_eq!(out.trim(), "2");
    for (i, public) in [public, public2].iter().enumerate() {
        let (code, out, err) = sh(Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(public)
            .args([
                "-rawin",
                "-in",
                "pae.bin",
                "-sigfile",
                &format!("sig{i}.bin"),
            ])
            .current_dir(&x));
        assert_eq!(code, 0, "openssl over PAE, signature {i}: {out}{err}");
    }
}

#[test]
fn pyspdxtools_accepts_the_kit_sbom_and_the_shipped_one() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = ws.example_source("concelier-lnm");
    let kit = ws.build(&src, &[&key]);
    let x = ws.path("x");
    std::fs::create_dir_all(&x).unwrap();
    assert_eq!(
        sh(Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(&kit)
            .arg("-C")
            .arg(&x))
        .0,
        0
    );
    for sbom in ["sboms/kit.spdx.json", "sboms/migration-runner.spdx.json"] {
        let (code, out, err) = sh(Command::new("pyspdxtools").arg("-i").arg(x.join(sbom)));
        assert_eq!(code, 0, "pyspdxtools -i {sbom}: {out}{err}");
    }
    // The kit SBOM lists every other payload file with SHA1 and SHA256.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join("sboms/kit.spdx.json")).unwrap()).unwrap();
    let names: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"./migrations/concelier/100_lnm_shards_ttl.sql"));
    assert!(names.contains(&"./sboms/migration-runner.spdx.json"));
    assert!(!names.contains(&"./sboms/kit.spdx.json"));

    // And the validator is not a rubber stamp: drop a SHA1 and it complains.
    let mut broken = doc.clone();
    broken["files"][0]["checksums"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let bad = ws.path("bad.spdx.json");
    std::fs::write(&bad, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert_ne!(sh(Command::new("pyspdxtools").arg("-i").arg(&bad)).0, 0);
}
