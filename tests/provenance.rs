//! The kit's SLSA provenance (issue 12): `build` signs a provenance v1 statement about the kit's
//! manifest into its header; `verify` checks it and reports it; python-securesystemslib's DSSE
//! checks it independently; a provenance of another kit, by another key, or reformatted refuses
//! the kit.

mod common;

use std::path::Path;

use common::forge;
use common::{Workspace, dsse_verdict, failure_kinds, outcome, run};

fn verify(kit: &Path, public: &Path) -> (i32, serde_json::Value) {
    let (code, out, err) = outcome(&run(&[
        "verify",
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--json",
    ]));
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v)
}

#[test]
fn a_kit_carries_its_provenance_which_verify_and_securesystemslib_check() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let (code, v) = verify(&kit, &public);
    assert_eq!(code, 0, "{v}");
    let p = &v["provenance"];
    assert_eq!(p["build_type"], "https://offkit.dev/build/v1");
    assert_eq!(p["builder_version"], env!("CARGO_PKG_VERSION"));
    let keyid = offkit::trust::PublicKey::load(&public)
        .unwrap()
        .keyid()
        .to_string();
    assert_eq!(p["signed_by"], serde_json::json!([keyid]));

    // Extracted with stock tar: the source digest is that of the source files' SHA256SUMS lines
    // (every payload file but the generated SBOM), and kit.toml's digest is the source's.
    let x = ws.path("x");
    std::fs::create_dir_all(&x).unwrap();
    let ok = std::process::Command::new("tar")
        .args(["--zstd", "-xf"])
        .arg(&kit)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let sums = std::fs::read_to_string(x.join("SHA256SUMS")).unwrap();
    let tree: String = sums
        .lines()
        .filter(|l| {
            !l.ends_with("  offkit-layout")
                && !l.ends_with("  manifest.json")
                && !l.ends_with("  sboms/kit.spdx.json")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        p["source_sha256"],
        offkit::util::sha256_hex(tree.as_bytes())
    );
    let toml = std::fs::read(ws.path("src-quickstart/kit.toml")).unwrap();
    assert_eq!(p["kit_toml_sha256"], offkit::util::sha256_hex(&toml));

    let (ok, said) = dsse_verdict(
        &x.join("provenance.dsse.json"),
        &public,
        &[&x.join("manifest.json")],
    );
    assert!(ok, "{said}");
    assert_eq!(said.trim(), "https://slsa.dev/provenance/v1");
    // Not about another file.
    assert!(
        !dsse_verdict(
            &x.join("provenance.dsse.json"),
            &public,
            &[&x.join("SHA256SUMS")]
        )
        .0
    );
}

/// The kit with its provenance entry replaced by `bytes`, written as `name`.
fn with_provenance(ws: &Workspace, kit: &Path, bytes: Vec<u8>, name: &str) -> std::path::PathBuf {
    let mut entries = forge::read(kit);
    let i = forge::find(&entries, "provenance.dsse.json");
    entries[i].data = bytes;
    let out = ws.path(&format!("forged/{name}.kit.tar.zst"));
    forge::write(&entries, &out);
    out
}

#[test]
fn another_kit_s_another_key_s_or_a_reformatted_provenance_refuses_the_kit() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&key]);
    let provenance_of = |k: &Path| {
        let e = forge::read(k);
        e[forge::find(&e, "provenance.dsse.json")].data.clone()
    };
    let own = provenance_of(&kit);

    // The provenance of another build (another kit.toml), by the same trusted key.
    let toml = src.join("kit.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("sequence = 1", "sequence = 2")).unwrap();
    let other = ws.build_in(&src, &[&key], "other");
    let forged = with_provenance(&ws, &kit, provenance_of(&other), "other-kit");
    let (code, v) = verify(&forged, &public);
    assert_eq!(code, 3, "{v}");
    assert_eq!(failure_kinds(&v.to_string()), ["bad-provenance"]);
    assert!(
        v.to_string()
            .contains("its subject is not this kit's manifest.json"),
        "{v}"
    );

    // This kit's own statement, signed by a key the site does not trust.
    let envelope: offkit::kit::dsse::Envelope = serde_json::from_slice(&own).unwrap();
    let attacker = offkit::trust::SecretKey::generate().unwrap();
    let resigned = offkit::trust::sign::sign_envelope(
        &envelope.payload_bytes().unwrap(),
        std::slice::from_ref(&attacker),
    );
    let forged = with_provenance(&ws, &kit, resigned.to_bytes(), "attacker");
    let (code, v) = verify(&forged, &public);
    assert_eq!(code, 3, "{v}");
    assert_eq!(failure_kinds(&v.to_string()), ["bad-provenance"]);

    // The same envelope written compactly: not the form offkit writes.
    let compact = serde_json::to_vec(&envelope).unwrap();
    let forged = with_provenance(&ws, &kit, compact, "compact");
    let (code, v) = verify(&forged, &public);
    assert_eq!(code, 3, "{v}");
    assert_eq!(failure_kinds(&v.to_string()), ["non-canonical-signature"]);

    // The kit itself, rewritten by the same tool, still verifies: the checks above are the
    // provenance's, not the rewriting's.
    let same = with_provenance(&ws, &kit, own, "same");
    assert_eq!(verify(&same, &public).0, 0);
}
