//! `offkit build` and `keygen`: reproducibility, source validation, key handling.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Workspace, outcome, run, tree, write};

fn build_into(
    ws: &Workspace,
    src: &Path,
    key: &Path,
    out: &str,
    epoch: &str,
) -> (i32, String, String) {
    ws.try_build(src, &[key], out, epoch)
}

#[test]
fn same_source_and_epoch_give_identical_bytes_whatever_the_disk_metadata() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let a = ws.example_source("concelier-lnm");
    // A second copy with other mtimes, modes and owners, at another path.
    let b = ws.path("elsewhere/other-name");
    common::copy_tree(&a, &b);
    for entry in walkdir::WalkDir::new(&b) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let f = std::fs::File::options()
                .append(true)
                .open(entry.path())
                .unwrap();
            f.set_modified(
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345),
            )
            .unwrap();
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
            let _ = std::os::unix::fs::chown(entry.path(), Some(4321), Some(4321));
        }
    }
    let (c1, o1, e1) = build_into(&ws, &a, &key, "out1", "1767225600");
    let (c2, o2, e2) = build_into(&ws, &b, &key, "out2", "1767225600");
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    let name = "concelier-lnm-21.103.0.kit.tar.zst";
    let k1 = std::fs::read(ws.path("out1").join(name)).unwrap();
    let mode = std::fs::metadata(ws.path("out1").join(name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "a kit is public: mode 0644");
    let k2 = std::fs::read(ws.path("out2").join(name)).unwrap();
    assert!(k1 == k2, "kits differ");
    assert_eq!(
        o1.lines().nth(1),
        o2.lines().nth(1),
        "printed SHA-256 differs"
    );
    assert_eq!(
        o1.lines().nth(1).unwrap(),
        format!("sha256 {}", offkit::util::sha256_hex(&k1))
    );

    // Another creation time is another kit.
    let (c3, _, _) = build_into(&ws, &a, &key, "out3", "1767225601");
    assert_eq!(c3, 0);
    assert!(std::fs::read(ws.path("out3").join(name)).unwrap() != k1);
}

#[test]
fn rebuilding_keeps_an_identical_kit_and_refuses_to_replace_a_different_one() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = ws.example_source("quickstart");
    assert_eq!(build_into(&ws, &src, &key, "out", "1767225600").0, 0);
    let (code, out, _) = build_into(&ws, &src, &key, "out", "1767225600");
    assert_eq!(code, 0);
    assert!(out.contains("left unchanged"), "{out}");
    let (code, _, err) = build_into(&ws, &src, &key, "out", "1767225700");
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("pass --force"), "{err}");
}

/// Each broken rule: exit 4, the file named, no kit written.
#[test]
fn invalid_sources_are_refused_with_the_file_and_rule() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    type Breaker = fn(&Path);
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "bad-name",
            |s| write(&s.join("migrations/inventory/7_oops.sql"), "SELECT 1;"),
            "7_oops.sql",
        ),
        (
            "duplicate-number",
            |s| write(&s.join("migrations/inventory/001_again.sql"), "SELECT 1;"),
            "have the same startup number 1",
        ),
        (
            "rollback-without-migration",
            |s| write(&s.join("rollback/inventory/003_nothing.sql"), "SELECT 1;"),
            "rollback without a migration",
        ),
        (
            "unknown-top-file",
            |s| write(&s.join("NOTES.md"), "hi"),
            "NOTES.md: unknown file",
        ),
        (
            "file-in-migrations-root",
            |s| write(&s.join("migrations/001_x.sql"), "SELECT 1;"),
            "migrations/001_x.sql: unknown file",
        ),
        (
            "nested-module-dir",
            |s| write(&s.join("migrations/inventory/sub/001_x.sql"), "SELECT 1;"),
            "unknown file",
        ),
        (
            "bad-module-name",
            |s| write(&s.join("migrations/Inventory2/001_x.sql"), "SELECT 1;"),
            "module names must match",
        ),
        (
            "case-collision",
            |s| write(&s.join("seeds/catalog/ITEMS.json"), "[]"),
            "collide on case-insensitive",
        ),
        (
            "reserved-sbom",
            |s| write(&s.join("sboms/kit.spdx.json"), "{}"),
            "kit.spdx.json is reserved",
        ),
        (
            "bad-sbom-json",
            |s| write(&s.join("sboms/x.spdx.json"), "{nope"),
            "not valid JSON",
        ),
        (
            "empty-migration",
            |s| write(&s.join("migrations/inventory/003_empty.sql"), ""),
            "empty migration",
        ),
        (
            "sql-not-utf8",
            |s| {
                write(
                    &s.join("migrations/inventory/003_latin1.sql"),
                    b"SELECT '\xe9';",
                )
            },
            "not UTF-8 text",
        ),
        (
            "unknown-kit-toml-key",
            |s| {
                let t = std::fs::read_to_string(s.join("kit.toml")).unwrap();
                write(
                    &s.join("kit.toml"),
                    format!("{t}expiry = \"2027-01-01T00:00:00Z\"\n"),
                );
            },
            "unknown field",
        ),
        (
            "module-config-without-folder",
            |s| {
                let t = std::fs::read_to_string(s.join("kit.toml")).unwrap();
                write(
                    &s.join("kit.toml"),
                    format!("{t}[modules.ghost]\nschema = \"ghost\"\n"),
                );
            },
            "[modules.ghost]",
        ),
        (
            "symlink",
            |s| std::os::unix::fs::symlink("/etc/passwd", s.join("seeds/catalog/passwd")).unwrap(),
            "symbolic links are not allowed",
        ),
        (
            "non-utf8-name",
            |s| {
                use std::os::unix::ffi::OsStrExt;
                write(
                    &s.join("seeds/catalog")
                        .join(std::ffi::OsStr::from_bytes(b"\xff.json")),
                    "{}",
                );
            },
            "not valid UTF-8",
        ),
    ];
    for (name, breaker, expect) in cases {
        let src = ws.path(&format!("src-{name}"));
        common::copy_tree(&ws.example_source("quickstart"), &src);
        breaker(&src);
        let out = format!("out-{name}");
        let (code, stdout, stderr) = build_into(&ws, &src, &key, &out, "1767225600");
        assert_eq!(code, 4, "{name}: {stdout}{stderr}");
        assert!(
            stderr.contains(expect),
            "{name}: expected {expect:?} in {stderr}"
        );
        assert!(
            tree(&ws.path(&out)).is_empty(),
            "{name}: something was written"
        );
    }
}

#[test]
fn keygen_writes_private_key_0600_and_refuses_to_overwrite() {
    let ws = Workspace::new();
    let prefix = ws.path("keys/site");
    let o = run(&["keygen", "--out", prefix.to_str().unwrap(), "--json"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keyid = v["keyid"].as_str().unwrap();
    let key = ws.path("keys/site.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The keyid is the SHA-256 of the SPKI DER, as OpenSSL computes it.
    let der = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(ws.path("keys/site.pub"))
        .output()
        .unwrap();
    assert_eq!(keyid, offkit::util::sha256_hex(&der.stdout));
    let before = std::fs::read(&key).unwrap();
    let (code, _, err) = outcome(&run(&["keygen", "--out", prefix.to_str().unwrap()]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn build_refuses_a_private_key_readable_by_others() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let src = ws.example_source("quickstart");
    let (code, _, err) = build_into(&ws, &src, &key, "out", "1767225600");
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(tree(&ws.path("out")).is_empty());
}

#[test]
fn keys_made_by_openssl_sign_kits() {
    let ws = Workspace::new();
    let key = ws.path("ossl.key");
    let public = ws.path("ossl.pub");
    let ok = |c: &mut std::process::Command| assert!(c.status().unwrap().success());
    ok(std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public));
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let (code, out, _) = outcome(&run(&[
        "verify",
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_kit_whose_header_no_verifier_would_read_is_refused_by_build() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = ws.example_source("quickstart");
    // 45,000 attestations with 250-byte paths: each path is written four times in the header
    // (manifest, SHA256SUMS, the statement's subjects and predicate), past its limits. (Seeds
    // are no longer the way past them: a kit of many seeds lists them in pages, offkit/v2.)
    let dir = src.join("attestations");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..45_000 {
        std::fs::write(dir.join(format!("{n:05}{}.json", "a".repeat(227))), b"{}").unwrap();
    }
    // A 4 GiB seed (sparse): reading it would take a while; the build must refuse first.
    let huge = std::fs::File::create(src.join("seeds/huge.bin")).unwrap();
    huge.set_len(4 << 30).unwrap();
    let (code, out, err) = ws.try_build(&src, &[&key], "out", "1700000000");
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("would take at least"), "{err}");
    assert!(err.contains("refused before hashing them"), "{err}");
    assert!(err.contains("split the source"), "{err}");
    assert_eq!(err.matches("would take").count(), 1, "said once: {err}");
    let written: Vec<_> = std::fs::read_dir(ws.path("out")).map_or(Vec::new(), |d| d.collect());
    assert!(written.is_empty(), "build left {written:?}");
}

/// The floor `build` checks before hashing any payload file is never above the envelope it writes,
/// and close to it for a kit of many seeds (so the early refusal catches most sources past the
/// limit; the exact check after signing catches the rest).
#[test]
fn the_envelope_floor_checked_before_reading_is_below_the_envelope_written() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = ws.example_source("quickstart");
    for n in 0..2000 {
        write(&src.join(format!("seeds/objects/{n:05}.json")), "{}");
    }
    let kit = ws.build_in(&src, &[&key], "out");
    let x = ws.path("x");
    std::fs::create_dir_all(&x).unwrap();
    let (code, _, err) = outcome(
        &std::process::Command::new("tar")
            .args(["--zstd", "-xf"])
            .arg(&kit)
            .arg("-C")
            .arg(&x)
            .args(["SHA256SUMS", "manifest.dsse.json"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "tar: {err}");
    let envelope = std::fs::metadata(x.join("manifest.dsse.json"))
        .unwrap()
        .len();
    let sums = std::fs::read_to_string(x.join("SHA256SUMS")).unwrap();
    let payload: Vec<&str> = sums
        .lines()
        .map(|l| &l[66..])
        .filter(|p| !["offkit-layout", "manifest.json", "sboms/kit.spdx.json"].contains(p))
        .collect();
    assert!(payload.len() > 2000);
    let floor =
        offkit::kit::frame::envelope_floor(payload.iter().map(|p| (*p, p.starts_with("seeds/"))));
    assert!(
        floor <= envelope,
        "floor {floor} above the envelope {envelope}"
    );
    assert!(
        floor * 10 >= envelope * 9,
        "floor {floor} far below the envelope {envelope}"
    );
}

#[test]
fn the_readme_s_reproducible_build_gives_the_sha256_it_promises() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let command = "$ SOURCE_DATE_EPOCH=1767225600 offkit build kits/concelier-lnm --key keys/dev-release.key --out dist";
    let at = readme
        .find(command)
        .expect("the README shows the reproducible build");
    let promised = readme[at..]
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .expect("and the SHA-256 it prints")
        .trim()
        .to_owned();
    let ws = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A clone does not keep the key's 0600 mode (git records only the executable bit).
    let key = ws.path("dev-release.key");
    std::fs::copy(root.join("keys/dev-release.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out_dir = ws.path("dist");
    std::fs::create_dir_all(&out_dir).unwrap();
    let o = common::cmd()
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .args(["build", "kits/concelier-lnm", "--key"])
        .arg(&key)
        .arg("--out")
        .arg(&out_dir)
        .current_dir(root)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.lines().any(|l| l == format!("sha256 {promised}")),
        "the README promises {promised}; the build printed:\n{out}"
    );
}

#[test]
fn every_rule_a_source_breaks_is_reported_in_one_run() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = ws.example_source("quickstart");
    write(&src.join("NOTES.md"), "hi");
    write(&src.join("migrations/001_x.sql"), "SELECT 1;");
    write(&src.join("seeds/catalog/ITEMS.json"), "[]");
    std::os::unix::fs::symlink("/etc/passwd", src.join("seeds/catalog/link.json")).unwrap();
    let (code, out, err) = build_into(&ws, &src, &key, "out", common::EPOCH);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("4 problems in the kit source:"), "{err}");
    for says in [
        "NOTES.md: unknown file",
        "migrations/001_x.sql: unknown file",
        "collide on case-insensitive file systems",
        "seeds/catalog/link.json: symbolic links are not allowed",
    ] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert!(tree(&ws.path("out")).is_empty());
}
