//! Trust policies, thresholds, revocation, expiry, and the inspect/extract views.

mod common;

use std::path::{Path, PathBuf};

use common::{Workspace, failure_kinds, outcome, run, write};

fn verify(kit: &Path, trust: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "verify".to_owned(),
        kit.display().to_string(),
        "--json".to_owned(),
    ];
    for t in trust {
        args.push("--trust".into());
        args.push(t.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    outcome(&run(&args))
}

fn policy(ws: &Workspace, body: &str) -> std::path::PathBuf {
    let p = ws.path("keys/policy.toml");
    write(&p, body);
    p
}

#[test]
fn threshold_counts_distinct_trusted_keys() {
    let ws = Workspace::new();
    let (a_key, _) = ws.key("a");
    let (b_key, _) = ws.key("b");
    let src = ws.example_source("quickstart");
    let two_of_two = policy(
        &ws,
        "threshold = 2\n[[keys]]\nname = \"a\"\npublic_key = \"a.pub\"\n[[keys]]\nname = \"b\"\npublic_key = \"b.pub\"\n",
    );
    let single = ws.build(&src, &[&a_key]);
    let (code, out, _) = verify(&single, &[&two_of_two], &[]);
    assert_eq!(code, 3);
    assert_eq!(failure_kinds(&out), ["threshold-not-met"]);

    std::fs::remove_file(&single).unwrap();
    let double = ws.build(&src, &[&a_key, &b_key]);
    let (code, out, _) = verify(&double, &[&two_of_two], &[]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signers"].as_array().unwrap().len(), 2);

    // The same key listed twice in the envelope does not count twice.
    std::fs::remove_file(&double).unwrap();
    let o = common::cmd()
        .args([
            "build",
            src.to_str().unwrap(),
            "--key",
            a_key.to_str().unwrap(),
            "--key",
            a_key.to_str().unwrap(),
        ])
        .args(["--out", ws.path("out").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(outcome(&o).0, 2, "a key given twice is a usage error");

    // --threshold may tighten a policy but not loosen it.
    let (code, _, err) = verify(
        &single_kit(&ws, &src, &a_key),
        &[&two_of_two],
        &["--threshold", "1"],
    );
    assert_eq!(code, 2, "{err}");
}

fn single_kit(ws: &Workspace, src: &Path, key: &Path) -> std::path::PathBuf {
    ws.build_in(src, &[key], "single")
}

#[test]
fn revoked_and_out_of_window_keys_do_not_count() {
    let ws = Workspace::new();
    let (a_key, a_pub) = ws.key("a");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&a_key]);
    let keyid = offkit::trust::PublicKey::load(&a_pub)
        .unwrap()
        .keyid()
        .to_owned();
    let (_, b_pub) = ws.key("b");
    let _ = b_pub;
    let revoked = policy(
        &ws,
        &format!(
            "revoked = [\"{keyid}\"]\n[[keys]]\nname = \"a\"\npublic_key = \"a.pub\"\n[[keys]]\nname = \"b\"\npublic_key = \"b.pub\"\n"
        ),
    );
    let (code, out, _) = verify(&kit, &[&revoked], &[]);
    assert_eq!(code, 3);
    assert_eq!(failure_kinds(&out), ["revoked-key"]);

    let expired_key = policy(
        &ws,
        "[[keys]]\nname = \"a\"\npublic_key = \"a.pub\"\nnot_after = \"2020-01-01T00:00:00Z\"\n",
    );
    let (code, out, _) = verify(&kit, &[&expired_key], &[]);
    assert_eq!(code, 3);
    assert_eq!(failure_kinds(&out), ["threshold-not-met"]);
    assert!(out.contains("expired at"), "{out}");

    let pinned_wrong = policy(
        &ws,
        &format!(
            "[[keys]]\nname = \"a\"\npublic_key = \"a.pub\"\nkeyid = \"{}\"\n",
            "0".repeat(64)
        ),
    );
    let (code, _, err) = verify(&kit, &[&pinned_wrong], &[]);
    assert_eq!(code, 5, "{err}");
}

/// The quickstart kit with `expires` set, signed by `key`.
fn quickstart_expiring(ws: &Workspace, key: &Path, expires: &str) -> PathBuf {
    let src = ws.example_source("quickstart");
    let toml = std::fs::read_to_string(src.join("kit.toml")).unwrap();
    write(
        &src.join("kit.toml"),
        format!("{toml}expires = \"{expires}\"\n"),
    );
    ws.build(&src, &[key])
}

#[test]
fn expired_kits_are_refused_unless_explicitly_allowed() {
    let ws = Workspace::new();
    let (key, public) = ws.key("a");
    let kit = quickstart_expiring(&ws, &key, "2026-06-01T00:00:00Z");
    let (code, out, _) = verify(&kit, &[&public], &[]);
    assert_eq!(code, 3);
    assert_eq!(failure_kinds(&out), ["expired"]);
    let (code, out, _) = verify(&kit, &[&public], &["--allow-expired"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("--allow-expired"),
        "the report must say the expiry was overridden: {out}"
    );
}

#[test]
fn inspect_labels_unverified_output_and_verifies_with_trust() {
    let ws = Workspace::new();
    let (key, public) = ws.key("a");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&key]);
    let (code, out, _) = outcome(&run(&["inspect", kit.to_str().unwrap()]));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("NOT VERIFIED: concelier-lnm 21.103.0"),
        "{out}"
    );
    assert!(out.contains("release  100_lnm_shards_ttl [rollback], 101_lnm_linkset_expiry_index [no-transaction] [rollback]"), "{out}");
    assert!(
        out.contains("data     DM001_backfill_linkset_expiry [rollback]"),
        "{out}"
    );
    assert!(out.contains("sboms/migration-runner.spdx.json"), "{out}");

    let (code, out, _) = outcome(&run(&[
        "inspect",
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "VERIFIED");
    assert_eq!(v["manifest"]["channel"], "concelier");
    assert_eq!(v["manifest"]["sequence"], 3);
    assert_eq!(v["manifest"]["seeds"].as_array().unwrap().len(), 5);

    // An untrusted key makes inspect --trust fail, not print.
    let (_, other) = ws.key("other");
    let (code, _, _) = outcome(&run(&[
        "inspect",
        kit.to_str().unwrap(),
        "--trust",
        other.to_str().unwrap(),
    ]));
    assert_eq!(code, 3);
}

#[test]
fn extract_writes_every_file_and_refuses_a_non_empty_target() {
    let ws = Workspace::new();
    let (key, public) = ws.key("a");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&key]);
    let to = ws.path("site/kit");
    let (code, out, err) = outcome(&run(&[
        "extract",
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let files = common::tree(&to);
    assert!(
        files.contains(&"manifest.dsse.json".to_owned()),
        "{files:?}"
    );
    assert!(
        files.contains(&"seeds/advisories/raw/osv/OSV-2026-17.json".to_owned()),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("offkit-staging")),
        "{files:?}"
    );
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "--quiet", "SHA256SUMS"])
        .current_dir(&to)
        .status()
        .unwrap();
    assert!(check.success());

    let (code, _, err) = outcome(&run(&[
        "extract",
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn exit_code_table_is_printed_by_help() {
    let (code, out, _) = outcome(&run(&["--help"]));
    assert_eq!(code, 0);
    for line in ["0  success", "3  kit verification failed", "7  lock busy"] {
        assert!(out.contains(line), "{line:?} missing from --help: {out}");
    }
}

/// The README's exit-code table is the binary's, row for row (backticks aside).
#[test]
fn readme_exit_code_table_matches_the_binary() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .unwrap()
        .replace('`', "");
    for (exit, meaning) in offkit::exit::Exit::TABLE {
        let row = format!("| {} | {} |", exit.code(), meaning);
        assert!(readme.contains(&row), "README lacks the row {row:?}");
    }
}

#[test]
fn sign_adds_a_cosigner_without_touching_the_payload_frames() {
    let ws = Workspace::new();
    let (a_key, a_pub) = ws.key("a");
    let (b_key, b_pub) = ws.key("b");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&a_key]);
    let before = std::fs::read(&kit).unwrap();
    let both = policy(
        &ws,
        "threshold = 2\n[[keys]]\nname = \"a\"\npublic_key = \"a.pub\"\n[[keys]]\nname = \"b\"\npublic_key = \"b.pub\"\n",
    );
    assert_eq!(
        verify(&kit, &[&both], &[]).0,
        3,
        "one signature must not meet 2-of-2"
    );

    let signed = ws.path("signed.kit.tar.zst");
    let (code, out, err) = outcome(&run(&[
        "sign",
        kit.to_str().unwrap(),
        "--key",
        b_key.to_str().unwrap(),
        "--trust",
        a_pub.to_str().unwrap(),
        "--out",
        signed.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = verify(&signed, &[&both], &[]);
    assert_eq!(code, 0, "{out}");

    // Only the first frame changed: the payload frames are the same bytes at the end of the file.
    let after = std::fs::read(&signed).unwrap();
    let first = |b: &[u8]| zstd::zstd_safe::find_frame_compressed_size(b).unwrap();
    assert_eq!(&before[first(&before)..], &after[first(&after)..]);

    // Stock tools can check the co-signer's detached signature.
    let x = untar(&ws, &signed);
    let keyid = offkit::trust::PublicKey::load(&b_pub)
        .unwrap()
        .keyid()
        .to_owned();
    assert_openssl_verifies(&x, &b_pub, &format!("SHA256SUMS.{keyid}.sig"));

    // Signing twice with the same key is refused; signing a kit that fails verification too.
    let (code, _, err) = outcome(&run(&[
        "sign",
        signed.to_str().unwrap(),
        "--key",
        b_key.to_str().unwrap(),
        "--trust",
        a_pub.to_str().unwrap(),
    ]));
    assert_eq!(code, 2, "{err}");
    let (_, stranger) = ws.key("stranger");
    let (code, _, _) = outcome(&run(&[
        "sign",
        kit.to_str().unwrap(),
        "--key",
        b_key.to_str().unwrap(),
        "--trust",
        stranger.to_str().unwrap(),
    ]));
    assert_eq!(code, 3);
    assert_eq!(
        std::fs::read(&kit).unwrap(),
        before,
        "a refused sign must not touch the kit"
    );
}

/// Extracts `kit` with stock `tar` into a new folder of the workspace.
fn untar(ws: &Workspace, kit: &Path) -> PathBuf {
    let x = ws.path(&format!(
        "untar-{}",
        kit.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&x).unwrap();
    assert!(
        std::process::Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(kit)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap()
            .success()
    );
    x
}

/// The README's stock-tool recipe: `openssl pkeyutl -verify` of `sig` over SHA256SUMS in `dir`.
fn assert_openssl_verifies(dir: &Path, public: &Path, sig: &str) {
    let ok = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(public)
        .args(["-rawin", "-in", "SHA256SUMS", "-sigfile", sig])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{sig}: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn every_key_that_signs_a_build_leaves_a_detached_signature_openssl_checks() {
    let ws = Workspace::new();
    let (a_key, a_pub) = ws.key("a");
    let (b_key, b_pub) = ws.key("b");
    let kit = ws.build(&ws.example_source("quickstart"), &[&a_key, &b_key]);
    // A site trusting only the second key accepts the kit …
    let (code, out, _) = verify(&kit, &[&b_pub], &[]);
    assert_eq!(code, 0, "{out}");
    // … and stock tools check each key's own detached signature.
    let x = untar(&ws, &kit);
    assert_openssl_verifies(&x, &a_pub, "SHA256SUMS.sig");
    let b_id = offkit::trust::PublicKey::load(&b_pub)
        .unwrap()
        .keyid()
        .to_owned();
    assert_openssl_verifies(&x, &b_pub, &format!("SHA256SUMS.{b_id}.sig"));
}

/// Runs `offkit verify` with the machine's clock set to `clock` by libfaketime (the real clock
/// shift a site with a wrong clock lives with).
fn verify_at(clock: &str, kit: &Path, trust: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let o = std::process::Command::new("faketime")
        .arg(clock)
        .arg(env!("CARGO_BIN_EXE_offkit"))
        .arg("verify")
        .arg(kit)
        .arg("--trust")
        .arg(trust)
        .arg("--json")
        .args(extra)
        .output()
        .expect("faketime (scripts/test-deps.sh installs it)");
    let code = o.status.code().unwrap_or(-1);
    let report = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    (code, report)
}

#[test]
fn key_validity_can_be_judged_at_the_signed_creation_time_and_a_wrong_clock_is_reported() {
    let ws = Workspace::new();
    let (key, _) = ws.key("a");
    // Created 2026-01-01 (the tests' SOURCE_DATE_EPOCH), expires 2028-01-01; the key is valid
    // during 2026 only.
    let kit = quickstart_expiring(&ws, &key, "2028-01-01T00:00:00Z");
    let trust = policy(
        &ws,
        "[[keys]]\nname = \"a\"\npublic_key = \"a.pub\"\nnot_before = \"2025-12-01T00:00:00Z\"\nnot_after = \"2026-12-31T00:00:00Z\"\n",
    );
    let kinds = |r: &serde_json::Value| failure_kinds(&r.to_string());

    // 2027: the key's window has closed at the clock …
    let (code, r) = verify_at("2027-06-01 00:00:00", &kit, &trust, &[]);
    assert_eq!(
        (code, kinds(&r)),
        (3, vec!["threshold-not-met".to_owned()]),
        "{r}"
    );
    // … but it was open when the kit was signed: accepted in signing-time mode, and said so.
    let args = ["--key-validity", "signing-time"];
    let (code, r) = verify_at("2027-06-01 00:00:00", &kit, &trust, &args);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["key_validity"]["basis"], "signing-time", "{r}");
    assert_eq!(
        r["key_validity"]["judged_at"], "2026-01-01T00:00:00Z",
        "{r}"
    );
    assert!(
        r["warnings"].to_string().contains("signed creation time"),
        "{r}"
    );
    // Expiry stays at the clock: after it, refused in either mode.
    let (code, r) = verify_at("2028-06-01 00:00:00", &kit, &trust, &args);
    assert_eq!((code, kinds(&r)), (3, vec!["expired".to_owned()]), "{r}");

    // A clock earlier than the kit's creation time is reported, not silently trusted.
    let (code, r) = verify_at("2025-12-15 00:00:00", &kit, &trust, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["key_validity"]["basis"], "clock", "{r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("earlier than the kit's signed creation time"),
        "{r}"
    );
    // With the clock before the key's window, signing-time mode still judges at creation.
    let (code, r) = verify_at("2025-06-01 00:00:00", &kit, &trust, &[]);
    assert_eq!(
        (code, kinds(&r)),
        (3, vec!["threshold-not-met".to_owned()]),
        "{r}"
    );
    let (code, r) = verify_at("2025-06-01 00:00:00", &kit, &trust, &args);
    assert_eq!(code, 0, "{r}");
}

#[test]
fn sites_that_only_verify_or_extract_refuse_a_rollback_of_a_channel() {
    let ws = Workspace::new();
    let (key, public) = ws.key("a");
    let kit_with = |sequence: u64, description: &str, out: &str| {
        let src = ws.path(&format!("src-{out}"));
        common::copy_tree(&ws.example_source("quickstart"), &src);
        let toml = std::fs::read_to_string(src.join("kit.toml")).unwrap();
        let toml = toml
            .replace("sequence = 1", &format!("sequence = {sequence}"))
            .replace("A tiny inventory", description);
        write(&src.join("kit.toml"), toml);
        ws.build_in(&src, &[&key], out)
    };
    let two = kit_with(2, "Release two", "two");
    let one = kit_with(1, "Release one", "one");
    let other_two = kit_with(2, "Another release two", "other-two");
    let state = ws.path("site/accepted.sqlite");
    let st = state.to_str().unwrap();
    let trust = public.to_str().unwrap();
    let check = |kit: &Path, extra: &[&str]| {
        let mut a = vec!["verify", kit.to_str().unwrap(), "--trust", trust, "--json"];
        a.extend(extra);
        outcome(&run(&a))
    };

    let (code, out, err) = check(&two, &["--record", "--state", st]);
    assert_eq!(code, 0, "{out}{err}");
    // Lower sequence: refused before the payload is read, by verify --record and by extract.
    let (code, _, err) = check(&one, &["--record", "--state", st]);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("channel quickstart is at sequence 2"), "{err}");
    let target = ws.path("extracted");
    let (code, _, err) = outcome(&run(&[
        "extract",
        one.to_str().unwrap(),
        "--trust",
        trust,
        "--to",
        target.to_str().unwrap(),
        "--state",
        st,
    ]));
    assert_eq!(code, 11, "{err}");
    assert!(!target.exists(), "a refused extract wrote its target");
    // Plain verify neither reads nor writes the record.
    assert_eq!(check(&one, &["--state", st]).0, 0);
    // The same sequence from another kit is refused too.
    let (code, _, err) = check(&other_two, &["--record", "--state", st]);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("from a different kit"), "{err}");
    // Explicitly allowed: accepted, said in the report, kept in the record.
    let (code, out, err) = check(&one, &["--record", "--state", st, "--allow-downgrade"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("accepted under --allow-downgrade"), "{out}");
    // The same kit again is no rollback; extract records too.
    let (code, _, err) = outcome(&run(&[
        "extract",
        two.to_str().unwrap(),
        "--trust",
        trust,
        "--to",
        target.to_str().unwrap(),
        "--state",
        st,
    ]));
    assert_eq!(code, 0, "{err}");
    let rows = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print('\\n'.join(f'{r[0]} {r[1]} {r[2]}' for r in c.execute(\
             'select sequence, command, allowed_downgrade from accepted_kits order by id')))",
        )
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rows.stdout),
        "2 verify --record 0\n1 verify --record 1\n2 extract 0\n"
    );
}
