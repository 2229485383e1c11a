//! Sigstore bundles, verified offline (issue 12): real bundles made by the Sigstore services
//! (fixtures/sigstore, from sigstore-python) carried in kits, each bound in kit.toml to the file it
//! vouches for; the site's policy pins the staging trusted root and the identities it accepts.
//! offkit's verdict on every bundle must be the README's, and the reference Python client's
//! (`sigstore --staging verify identity --offline`), which shares no code with offkit.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Workspace, failure_kinds, outcome, run, write};

const GITHUB: &str = "https://github.com/login/oauth";
const GOOGLE: &str = "https://accounts.google.com";
const ACTIONS: &str = "https://token.actions.githubusercontent.com";
const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sigstore")
        .join(name)
}

/// One row of fixtures/sigstore/README.md.
struct Case {
    artifact: &'static str,
    bundle: &'static str,
    san: &'static str,
    issuer: &'static str,
    accept: bool,
}

const CASES: &[Case] = &[
    Case {
        artifact: "bundle.txt",
        bundle: "bundle.txt.sigstore",
        san: "a@tny.town",
        issuer: GITHUB,
        accept: true,
    },
    Case {
        artifact: "bundle_v3.txt",
        bundle: "bundle_v3.txt.sigstore",
        san: "william@yossarian.net",
        issuer: GITHUB,
        accept: true,
    },
    Case {
        artifact: "bundle_v3_alt.txt",
        bundle: "bundle_v3_alt.txt.sigstore",
        san: "william@yossarian.net",
        issuer: GITHUB,
        accept: true,
    },
    Case {
        artifact: "staging-rekor-v2.txt",
        bundle: "staging-rekor-v2.txt.sigstore.json",
        san: "jku@goto.fi",
        issuer: GITHUB,
        accept: true,
    },
    Case {
        artifact: "bundle_cve_2022_36056.txt",
        bundle: "bundle_cve_2022_36056.txt.sigstore",
        san: "william@yossarian.net",
        issuer: GITHUB,
        accept: false,
    },
    Case {
        artifact: "bundle_no_checkpoint.txt",
        bundle: "bundle_no_checkpoint.txt.sigstore",
        san: "william@yossarian.net",
        issuer: GITHUB,
        accept: false,
    },
    Case {
        artifact: "bundle_no_log_entry.txt",
        bundle: "bundle_no_log_entry.txt.sigstore",
        san: "alex.cameron@trailofbits.com",
        issuer: GOOGLE,
        accept: false,
    },
    Case {
        artifact: "a.txt",
        bundle: "a.dsse.staging-rekor-v2.txt.sigstore.json",
        san: BEACON,
        issuer: ACTIONS,
        accept: false,
    },
];

/// A kit source (the quick-start kit) carrying `artifact` as the seed `sigstore/ARTIFACT` and
/// each bundle under attestations/, bound to it in kit.toml with kind `release`.
fn source_with(ws: &Workspace, name: &str, pairs: &[(&str, &str)]) -> PathBuf {
    let src = ws.example_source("quickstart");
    let renamed = ws.path(&format!("src-{name}"));
    std::fs::rename(&src, &renamed).unwrap();
    let mut toml = std::fs::read_to_string(renamed.join("kit.toml")).unwrap();
    for (artifact, bundle) in pairs {
        std::fs::create_dir_all(renamed.join("seeds/sigstore")).unwrap();
        std::fs::copy(
            fixture(artifact),
            renamed.join("seeds/sigstore").join(artifact),
        )
        .unwrap();
        write(
            &renamed.join("attestations").join(bundle),
            std::fs::read(fixture(bundle)).unwrap(),
        );
        toml.push_str(&format!(
            "\n[[sigstore]]\nbundle = \"attestations/{bundle}\"\nkind = \"release\"\nsubject = \"seeds/sigstore/{artifact}\"\n"
        ));
    }
    std::fs::write(renamed.join("kit.toml"), toml).unwrap();
    renamed
}

/// A policy file trusting `public` for kits, pinning `root` (a fixtures/sigstore/trusted_root
/// file) and `rules` (TOML of [[sigstore.identities]] and [[sigstore.require]] tables).
fn policy(ws: &Workspace, name: &str, public: &Path, root: &str, rules: &str) -> PathBuf {
    let p = ws.path(&format!("{name}.toml"));
    let root = fixture(&format!("trusted_root/{root}"));
    write(
        &p,
        format!(
            "[[keys]]\nname = \"release\"\npublic_key = {:?}\n\n[sigstore]\ntrusted_root = {:?}\n\n{rules}",
            public.display().to_string(),
            root.display().to_string()
        ),
    );
    p
}

fn identity(kinds: &str, san: &str, issuer: &str) -> String {
    format!("[[sigstore.identities]]\nkinds = [{kinds}]\nsan = {san:?}\nissuer = {issuer:?}\n")
}

fn verify(kit: &Path, trust: &Path) -> (i32, serde_json::Value) {
    let (code, out, err) = outcome(&run(&[
        "verify",
        kit.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
    ]));
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v)
}

/// The reference client's verdict, offline, with the staging trusted root it ships.
fn reference_accepts(case: &Case) -> (bool, String) {
    let o = Command::new("sigstore")
        .args(["--staging", "verify", "identity", "--offline", "--bundle"])
        .arg(fixture(case.bundle))
        .args([
            "--cert-identity",
            case.san,
            "--cert-oidc-issuer",
            case.issuer,
        ])
        .arg(fixture(case.artifact))
        .env("NO_COLOR", "1")
        .output()
        .expect("the sigstore client (pip install sigstore; scripts/test-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[test]
fn real_bundles_give_the_expected_verdict_offline_in_agreement_with_the_reference_client() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    for (i, case) in CASES.iter().enumerate() {
        let src = source_with(&ws, &format!("case{i}"), &[(case.artifact, case.bundle)]);
        let kit = ws.build_in(&src, &[&key], &format!("out{i}"));
        let trust = policy(
            &ws,
            &format!("policy{i}"),
            &public,
            "staging.json",
            &identity("\"release\"", case.san, case.issuer),
        );
        let (code, v) = verify(&kit, &trust);
        let (reference, said) = reference_accepts(case);
        assert_eq!(
            reference, case.accept,
            "the reference client disagrees with the README on {}: {said}",
            case.bundle
        );
        let bundle = format!("attestations/{}", case.bundle);
        if case.accept {
            assert_eq!(code, 0, "{}: {v:#}", case.bundle);
            let a = &v["attestations"][0];
            assert_eq!(a["bundle"], bundle.as_str());
            assert_eq!(a["verdict"], "verified");
            assert_eq!(a["identity"], case.san);
            assert_eq!(a["issuer"], case.issuer);
            assert_eq!(
                a["subject"],
                format!("seeds/sigstore/{}", case.artifact).as_str()
            );
            assert!(
                a["signed_at"].as_str().is_some_and(|t| t.starts_with("20")),
                "{a}"
            );
        } else {
            assert_eq!(code, 3, "{}: {v:#}", case.bundle);
            let f = &v["failures"][0];
            assert_eq!(f["kind"], "bad-attestation", "{v:#}");
            assert_eq!(f["entry"], bundle.as_str());
        }
    }
}

#[test]
fn each_refusal_says_why() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let why = |i: usize, expect: &str| {
        let case = &CASES[i];
        let src = source_with(&ws, &format!("why{i}"), &[(case.artifact, case.bundle)]);
        let kit = ws.build_in(&src, &[&key], &format!("why{i}"));
        let trust = policy(
            &ws,
            &format!("why{i}"),
            &public,
            "staging.json",
            &identity("\"*\"", case.san, case.issuer),
        );
        let (code, v) = verify(&kit, &trust);
        assert_eq!(code, 3);
        let message = v["failures"][0]["message"].as_str().unwrap().to_owned();
        assert!(
            message.to_lowercase().contains(expect),
            "{}: {message}",
            case.bundle
        );
    };
    why(4, "does not match"); // CVE-2022-36056: the log entry is another certificate's
    why(5, "checkpoint");
    why(6, "inclusion promise");
    why(7, "subject"); // the DSSE statement is about another a.txt
}

#[test]
fn identities_are_judged_by_the_site_exactly_or_by_pattern_and_per_kind() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = source_with(&ws, "id", &[("bundle_v3.txt", "bundle_v3.txt.sigstore")]);
    let kit = ws.build(&src, &[&key]);
    let verdict = |name: &str, rules: &str| {
        let trust = policy(&ws, name, &public, "staging.json", rules);
        verify(&kit, &trust)
    };

    // Another signer, another issuer, or no rule for the kind: refused, naming the signer.
    for (name, rules) in [
        (
            "other-san",
            identity("\"release\"", "someone@example.com", GITHUB),
        ),
        (
            "other-issuer",
            identity("\"release\"", "william@yossarian.net", GOOGLE),
        ),
        (
            "other-kind",
            identity("\"sbom\"", "william@yossarian.net", GITHUB),
        ),
        (
            "pattern-too-narrow",
            format!(
                "[[sigstore.identities]]\nkinds = [\"release\"]\nsan_pattern = \"*@example.net\"\nissuer = {GITHUB:?}\n"
            ),
        ),
    ] {
        let (code, v) = verdict(name, &rules);
        assert_eq!(code, 3, "{name}: {v:#}");
        assert_eq!(failure_kinds(&v.to_string()), ["bad-attestation"], "{name}");
        let message = v["failures"][0]["message"].as_str().unwrap();
        if name == "other-kind" {
            assert!(
                message.contains("accepts no signer for kind release"),
                "{message}"
            );
        } else {
            assert!(
                message.contains(
                    "signed by william@yossarian.net from https://github.com/login/oauth"
                ),
                "{name}: {message}"
            );
        }
    }
    // A pattern that matches, among other rules.
    let (code, v) = verdict(
        "pattern",
        &format!(
            "{}[[sigstore.identities]]\nkinds = [\"release\"]\nsan_pattern = \"*@yossarian.net\"\nissuer = {GITHUB:?}\n",
            identity("\"release\"", "someone@example.com", GITHUB)
        ),
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["attestations"][0]["identity"], "william@yossarian.net");

    // The production trusted root does not vouch for a staging bundle.
    let trust = policy(
        &ws,
        "production",
        &public,
        "production.json",
        &identity("\"release\"", "william@yossarian.net", GITHUB),
    );
    let (code, v) = verify(&kit, &trust);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(failure_kinds(&v.to_string()), ["bad-attestation"]);
}

#[test]
fn a_required_attestation_must_be_carried_and_verified() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let with = ws.build_in(
        &source_with(&ws, "with", &[("bundle_v3.txt", "bundle_v3.txt.sigstore")]),
        &[&key],
        "with",
    );
    let without = ws.build_in(&ws.example_source("quickstart"), &[&key], "without");
    let rules = format!(
        "{}[[sigstore.require]]\nkind = \"release\"\nsubject = \"seeds/sigstore/bundle_v3.txt\"\n",
        identity("\"release\"", "william@yossarian.net", GITHUB)
    );
    let trust = policy(&ws, "require", &public, "staging.json", &rules);
    let (code, v) = verify(&with, &trust);
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = verify(&without, &trust);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(failure_kinds(&v.to_string()), ["missing-attestation"]);
    assert_eq!(v["failures"][0]["entry"], "seeds/sigstore/bundle_v3.txt");

    // Required by digest: the artifact's SHA-256 (the seed's) is what must be vouched for.
    let digest =
        offkit::kit::digest::Sha256Hex::of(&std::fs::read(fixture("bundle_v3.txt")).unwrap());
    let rules = format!(
        "{}[[sigstore.require]]\nkind = \"release\"\ndigest = \"sha256:{digest}\"\n",
        identity("\"release\"", "william@yossarian.net", GITHUB)
    );
    let trust = policy(&ws, "require-digest", &public, "staging.json", &rules);
    assert_eq!(verify(&with, &trust).0, 0);
    assert_eq!(verify(&without, &trust).0, 3);

    // Apply is refused too, and nothing reaches the database or the store.
    let (code, out, err) = ws.apply(&without, &trust, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("[missing-attestation]"), "{out}{err}");
    assert!(common::tree(&ws.path("store")).is_empty());
    // An extraction writes nothing.
    let to = ws.path("extracted");
    let (code, out, err) = outcome(&run(&[
        "extract",
        without.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
        "--state",
        ws.path("accepted.db").to_str().unwrap(),
    ]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(common::tree(&to).is_empty(), "{:?}", common::tree(&to));
}

#[test]
fn without_a_pinned_root_bundles_are_reported_not_checked() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(
        &source_with(&ws, "plain", &[("bundle_v3.txt", "bundle_v3.txt.sigstore")]),
        &[&key],
    );
    let (code, v) = verify(&kit, &public);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["attestations"][0]["verdict"], "not-checked");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not checked")),
        "{v:#}"
    );
    // inspect shows the binding from the signed manifest.
    let (code, out, _) = outcome(&run(&["inspect", kit.to_str().unwrap()]));
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "attestations/bundle_v3.txt.sigstore (Sigstore bundle, kind release, for seeds/sigstore/bundle_v3.txt)"
        ),
        "{out}"
    );
}

#[test]
fn build_refuses_a_declared_bundle_that_is_not_one_and_a_binding_to_nothing() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    // The README's "unknown bundle media type" row: refused where it is made.
    let src = source_with(
        &ws,
        "invalid",
        &[(
            "bundle_invalid_version.txt",
            "bundle_invalid_version.txt.sigstore",
        )],
    );
    let (code, out, err) = ws.try_build(&src, &[&key], "invalid", common::EPOCH);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("attestations/bundle_invalid_version.txt.sigstore"),
        "{err}"
    );
    assert!(err.contains("Sigstore bundle"), "{err}");

    // A binding whose subject is not in the kit.
    let src = source_with(
        &ws,
        "nothing",
        &[("bundle_v3.txt", "bundle_v3.txt.sigstore")],
    );
    let toml = std::fs::read_to_string(src.join("kit.toml"))
        .unwrap()
        .replace(
            "seeds/sigstore/bundle_v3.txt\"",
            "seeds/sigstore/absent.txt\"",
        );
    std::fs::write(src.join("kit.toml"), toml).unwrap();
    let (code, _, err) = ws.try_build(&src, &[&key], "nothing", common::EPOCH);
    assert_ne!(code, 0);
    assert!(
        err.contains("seeds/sigstore/absent.txt is not another file of the kit"),
        "{err}"
    );
}

#[test]
fn the_audit_report_names_each_bundle_its_signer_and_verdict_in_a_browser() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(
        &source_with(
            &ws,
            "report",
            &[
                ("bundle_v3.txt", "bundle_v3.txt.sigstore"),
                ("staging-rekor-v2.txt", "staging-rekor-v2.txt.sigstore.json"),
            ],
        ),
        &[&key],
    );
    let rules = format!(
        "{}{}",
        identity("\"release\"", "william@yossarian.net", GITHUB),
        identity("\"release\"", "jku@goto.fi", GITHUB)
    );
    let trust = policy(&ws, "report", &public, "staging.json", &rules);
    let html = ws.path("report.html");
    let (code, out, err) = outcome(&run(&[
        "report",
        kit.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let (dom, _) = common::browser::render(&html, &ws.path("report.png"));
    for fact in [
        "<td>attestations/bundle_v3.txt.sigstore</td><td>release</td><td>seeds/sigstore/bundle_v3.txt</td><td>verified</td><td>william@yossarian.net (https://github.com/login/oauth) at 2024-04-02T19:19:09Z</td>",
        "<td>attestations/staging-rekor-v2.txt.sigstore.json</td><td>release</td><td>seeds/sigstore/staging-rekor-v2.txt</td><td>verified</td><td>jku@goto.fi (https://github.com/login/oauth)",
    ] {
        assert!(
            dom.contains(fact),
            "the rendered page lacks {fact:?}:\n{dom}"
        );
    }
}

#[test]
fn a_bundle_about_an_artifact_outside_the_kit_is_bound_by_digest() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let digest =
        offkit::kit::digest::Sha256Hex::of(&std::fs::read(fixture("bundle_v3.txt")).unwrap());
    let trust = policy(
        &ws,
        "digest",
        &public,
        "staging.json",
        &identity("\"image\"", "william@yossarian.net", GITHUB),
    );
    let kit_declaring = |name: &str, digest: &str| {
        let src = ws.example_source("quickstart");
        let renamed = ws.path(&format!("src-{name}"));
        std::fs::rename(&src, &renamed).unwrap();
        write(
            &renamed.join("attestations/image.sigstore"),
            std::fs::read(fixture("bundle_v3.txt.sigstore")).unwrap(),
        );
        let mut toml = std::fs::read_to_string(renamed.join("kit.toml")).unwrap();
        toml.push_str(&format!(
            "\n[[sigstore]]\nbundle = \"attestations/image.sigstore\"\nkind = \"image\"\ndigest = \"sha256:{digest}\"\nname = \"registry.example/runner:1.4\"\n"
        ));
        std::fs::write(renamed.join("kit.toml"), toml).unwrap();
        ws.build_in(&renamed, &[&key], name)
    };
    let (code, v) = verify(&kit_declaring("right", digest.as_str()), &trust);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        v["attestations"][0]["subject"],
        format!("sha256:{digest} (registry.example/runner:1.4)").as_str()
    );
    assert_eq!(v["manifest"]["sigstore"][0]["digest"], digest.as_str());
    let other = offkit::kit::digest::Sha256Hex::of(b"another image");
    let (code, v) = verify(&kit_declaring("wrong", other.as_str()), &trust);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(failure_kinds(&v.to_string()), ["bad-attestation"]);
}
