//! `offkit diff`: two LNM-style releases compared, with and without verification.

mod common;

use common::{Workspace, outcome, run, write};

#[test]
fn two_lnm_releases_differ_in_what_changed_and_an_edited_migration_is_loud() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (approver, approver_pub) = ws.key("approver");
    let a = ws.build_in(&ws.example_source("concelier-lnm"), &[&key], "a");

    // The next release: version and sequence up, a new migration, a shipped migration edited
    // (a licence header), a seed removed and one changed, the runner image upgraded in the SBOM,
    // and a second signer.
    let src = ws.path("next");
    common::copy_tree(&ws.example_source("concelier-lnm"), &src);
    let toml = std::fs::read_to_string(src.join("kit.toml")).unwrap();
    write(
        &src.join("kit.toml"),
        toml.replace("version = \"21.103.0\"", "version = \"21.104.0\"")
            .replace("sequence = 3", "sequence = 4"),
    );
    let mig = src.join("migrations/concelier");
    write(
        &mig.join("004_linkset_notes.sql"),
        "ALTER TABLE concelier.advisory_linksets ADD COLUMN notes text;\n",
    );
    let shipped = mig.join("001_advisory_raw.sql");
    let sql = std::fs::read_to_string(&shipped).unwrap();
    write(
        &shipped,
        format!("-- SPDX-License-Identifier: Apache-2.0\n{sql}"),
    );
    std::fs::remove_file(src.join("seeds/advisories/raw/osv/OSV-2026-17.json")).unwrap();
    write(
        &src.join("seeds/linksets/shard-map.csv"),
        "shard,range\n0,a-m\n1,n-z\n",
    );
    let sbom = src.join("sboms/migration-runner.spdx.json");
    let text = std::fs::read_to_string(&sbom).unwrap();
    write(
        &sbom,
        text.replacen(
            "\"versionInfo\": \"21.103.0\"",
            "\"versionInfo\": \"21.104.0\"",
            1,
        ),
    );
    let b = ws.build_in(&src, &[&key, &approver], "b");

    // Unverified: the headers alone; packages are not compared.
    let (code, out, err) = outcome(&run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]));
    assert_eq!(code, 15, "{out}{err}");
    assert!(
        out.starts_with("NOT VERIFIED: concelier-lnm 21.103.0"),
        "{out}"
    );
    assert!(
        out.contains("version: \"21.103.0\" → \"21.104.0\""),
        "{out}"
    );
    assert!(
        out.contains("+ concelier/startup 004_linkset_notes"),
        "{out}"
    );
    assert!(
        out.contains("!! concelier/startup 001_advisory_raw: CHANGED after it was shipped"),
        "{out}"
    );
    assert!(
        out.contains("WARNING: 1 shipped migration(s) edited"),
        "{out}"
    );
    assert!(
        out.contains("- advisories/raw/osv/OSV-2026-17.json"),
        "{out}"
    );
    assert!(out.contains("~ linksets/shard-map.csv"), "{out}");
    assert!(out.contains("packages: not compared"), "{out}");

    // Verified: both kits authenticated, their SBOMs read.
    let trust = [
        "--trust",
        public.to_str().unwrap(),
        "--trust",
        approver_pub.to_str().unwrap(),
    ];
    let mut args = vec!["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"];
    args.extend(trust);
    let (code, out, err) = outcome(&run(&args));
    assert_eq!(code, 15, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["verified"], true);
    assert_eq!(r["edited_migrations"], 1);
    let changed: Vec<&str> = r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["001_advisory_raw", "004_linkset_notes"], "{out}");
    let packages = r["packages"].as_array().unwrap();
    assert!(
        packages
            .iter()
            .any(|p| p["name"] == "concelier-migration-runner"
                && p["change"] == "upgraded"
                && p["version"] == serde_json::json!(["21.103.0", "21.104.0"])),
        "{out}"
    );
    assert_eq!(
        r["signers"]["only_in_b"].as_array().unwrap().len(),
        1,
        "{out}"
    );
    let fields: Vec<&str> = r["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["version", "sequence"], "{out}");

    // A kit compared with itself: no difference, exit 0.
    let mut same = vec!["diff", a.to_str().unwrap(), a.to_str().unwrap()];
    same.extend(trust);
    let (code, out, _) = outcome(&run(&same));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no difference"), "{out}");
}
