//! The site trust store (issue 11, "rotation chain"): TUF root versions made by python-tuf
//! (tests/python/tuf_root.py, PyPI `tuf`), independently of offkit's code, pinned, rotated and used to
//! verify kits; forged, skipped, older and hand-edited versions refused by name; and the versions
//! offkit writes (`trust new`, `trust sign`) accepted by python-tuf.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Workspace, failure_kinds, outcome, run};

const FAR: &str = "2099-01-01T00:00:00Z";

/// Runs tests/python/tuf_root.py; returns (success, stdout).
fn python(args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tuf_root.py");
    let o = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (scripts/test-deps.sh installs tuf)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("Traceback") || o.status.success(),
        "python-tuf failed: {err}"
    );
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// A trust version made by python-tuf: `root` keys sign the next version, `kit` keys sign kits,
/// signed by `signers` (key names).
struct Version<'a> {
    version: u32,
    expires: &'a str,
    root: &'a [&'a str],
    kit: &'a [&'a str],
    signers: &'a [&'a str],
}

fn make(ws: &Workspace, file: &str, v: Version) -> PathBuf {
    let out = ws.path(file);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let pubs = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .map(|n| ws.key(n).1.display().to_string())
            .collect()
    };
    let version = v.version.to_string();
    let mut args = vec![
        "make".to_owned(),
        out.display().to_string(),
        "--version".into(),
        version,
        "--expires".into(),
        v.expires.into(),
        "--root".into(),
    ];
    args.extend(pubs(v.root));
    args.push("--kit".into());
    args.extend(pubs(v.kit));
    args.push("--sign".into());
    args.extend(v.signers.iter().map(|n| ws.key(n).0.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out_text) = python(&args);
    assert!(ok, "{out_text}");
    out
}

fn trust(args: &[&str], store: &Path) -> (i32, String, String) {
    let mut all: Vec<&str> = vec!["trust"];
    all.extend(args);
    let store = store.display().to_string();
    all.extend(["--store", &store]);
    outcome(&run(&all))
}

fn verify(kit: &Path, store: &Path, extra: &[&str]) -> (i32, String, String) {
    let kit = kit.display().to_string();
    let store = store.display().to_string();
    let mut args = vec!["verify", &kit, "--trust", &store, "--json"];
    args.extend(extra);
    outcome(&run(&args))
}

/// The chain 1 → 2 → 3 of the rotation tests: root keys r1, r2, r3 one after the other; kits
/// signed by k1 under version 1, by k2 from version 2.
fn chain(ws: &Workspace) -> [PathBuf; 3] {
    [
        make(
            ws,
            "chain/1.root.json",
            Version {
                version: 1,
                expires: FAR,
                root: &["r1"],
                kit: &["k1"],
                signers: &["r1"],
            },
        ),
        make(
            ws,
            "chain/2.root.json",
            Version {
                version: 2,
                expires: FAR,
                root: &["r2"],
                kit: &["k2"],
                signers: &["r1", "r2"],
            },
        ),
        make(
            ws,
            "chain/3.root.json",
            Version {
                version: 3,
                expires: FAR,
                root: &["r3"],
                kit: &["k2"],
                signers: &["r2", "r3"],
            },
        ),
    ]
}

/// A version `version` an attacker made: its root and kit key is theirs, signed by `signers`.
fn attacker_version(ws: &Workspace, file: &str, version: u32, signers: &[&str]) -> PathBuf {
    make(
        ws,
        file,
        Version {
            version,
            expires: FAR,
            root: &["attacker"],
            kit: &["attacker"],
            signers,
        },
    )
}

fn kit_signed_by(ws: &Workspace, key: &str) -> PathBuf {
    let src = ws.example_source("quickstart");
    ws.build_in(&src, &[&ws.key(key).0], &format!("kit-{key}"))
}

#[test]
fn a_rotation_1_2_3_made_by_python_tuf_moves_which_keys_sign_kits() {
    let ws = Workspace::new();
    let [v1, v2, v3] = chain(&ws);
    let store = ws.path("site/trust");
    let (code, out, err) = trust(&["init", v1.to_str().unwrap()], &store);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pinned trust version 1"), "{out}");
    let by_k1 = kit_signed_by(&ws, "k1");
    let by_k2 = kit_signed_by(&ws, "k2");
    assert_eq!(verify(&by_k1, &store, &[]).0, 0);
    let (code, out, _) = verify(&by_k2, &store, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(failure_kinds(&out), ["untrusted-signer"]);

    // Given out of order, walked in order; each accepted version written.
    let (code, out, err) = trust(
        &[
            "update",
            v3.to_str().unwrap(),
            v2.to_str().unwrap(),
            "--json",
        ],
        &store,
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["accepted"], serde_json::json!([2, 3]));
    assert_eq!(report["current"]["version"], 3);
    for n in 1..=3 {
        assert_eq!(
            std::fs::read(store.join(format!("{n}.root.json"))).unwrap(),
            std::fs::read(ws.path(&format!("chain/{n}.root.json"))).unwrap(),
            "version {n} is kept byte for byte"
        );
    }
    assert_eq!(verify(&by_k2, &store, &[]).0, 0);
    let (code, out, _) = verify(&by_k1, &store, &[]);
    assert_eq!(code, 3, "k1 was rotated out: {out}");
    assert_eq!(failure_kinds(&out), ["untrusted-signer"]);

    // Updating again with the whole chain changes nothing.
    let (code, out, _) = trust(&["update", ws.path("chain").to_str().unwrap()], &store);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("nothing new: the store is at version 3"),
        "{out}"
    );
    let (code, out, _) = trust(&["show", "--json"], &store);
    assert_eq!(code, 0);
    let show: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(show["versions"].as_array().unwrap().len(), 3);
    assert_eq!(show["first_version"], 1);
}

#[test]
fn forged_skipped_older_and_conflicting_versions_are_refused_by_name() {
    let ws = Workspace::new();
    let [v1, v2, v3] = chain(&ws);
    let store = ws.path("trust");
    assert_eq!(trust(&["init", v1.to_str().unwrap()], &store).0, 0);

    // Skipped: the store is at 1, version 3 cannot be checked against it.
    let (code, _, err) = trust(&["update", v3.to_str().unwrap()], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("version 3 skips version 2 (the store is at version 1)"),
        "{err}"
    );
    assert!(!store.join("3.root.json").exists());

    assert_eq!(trust(&["update", v2.to_str().unwrap()], &store).0, 0);

    // Forged with an old key: an attacker holding r1 (version 1's root key) signs a version 3
    // naming their own key. python-tuf refuses it too.
    let forged = attacker_version(&ws, "forged/3.root.json", 3, &["r1", "attacker"]);
    assert!(!python(&["check", v2.to_str().unwrap(), forged.to_str().unwrap()]).0);
    let (code, _, err) = trust(&["update", forged.to_str().unwrap()], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("forged/3.root.json: version 3 is not signed by a threshold of version 2's root keys (0 of 1 required signature(s)); refused as forged"),
        "{err}"
    );
    // Signed by the old root keys only, not by its own.
    let unsigned_by_own = make(
        &ws,
        "own/3.root.json",
        Version {
            version: 3,
            expires: FAR,
            root: &["r3"],
            kit: &["k2"],
            signers: &["r2"],
        },
    );
    let (code, _, err) = trust(&["update", unsigned_by_own.to_str().unwrap()], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("version 3 is not signed by its own root keys (0 of 1"),
        "{err}"
    );
    assert!(!store.join("3.root.json").exists());

    assert_eq!(trust(&["update", v3.to_str().unwrap()], &store).0, 0);
    // Older: a version 2 other than the trusted one (a policy downgrade) is refused; the trusted
    // version 2 itself is already trusted.
    let other2 = make(
        &ws,
        "other/2.root.json",
        Version {
            version: 2,
            expires: "2098-01-01T00:00:00Z",
            root: &["r2"],
            kit: &["k1"],
            signers: &["r1", "r2"],
        },
    );
    let (code, _, err) = trust(&["update", other2.to_str().unwrap()], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains(
            "version 2 is older than the trusted version 3; a trust store never goes back"
        ),
        "{err}"
    );
    assert_eq!(trust(&["update", v2.to_str().unwrap()], &store).0, 0);
    // The same number with other content.
    let other3 = make(
        &ws,
        "other/3.root.json",
        Version {
            version: 3,
            expires: "2098-01-01T00:00:00Z",
            root: &["r3"],
            kit: &["k2"],
            signers: &["r2", "r3"],
        },
    );
    let (code, _, err) = trust(&["update", other3.to_str().unwrap()], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("version 3 differs from the trusted version 3"),
        "{err}"
    );

    // A second init over a store is refused; so is a first version not signed by its own keys.
    let (code, _, err) = trust(&["init", v1.to_str().unwrap()], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("already holds a trust store at version 3"),
        "{err}"
    );
    let (code, _, err) = trust(
        &["init", unsigned_by_own.to_str().unwrap()],
        &ws.path("fresh"),
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("not signed by its own root keys"), "{err}");
}

#[test]
fn a_store_edited_by_hand_is_refused_when_it_is_used() {
    let ws = Workspace::new();
    let [v1, v2, _] = chain(&ws);
    let store = ws.path("trust");
    assert_eq!(trust(&["init", v1.to_str().unwrap()], &store).0, 0);
    assert_eq!(trust(&["update", v2.to_str().unwrap()], &store).0, 0);
    let kit = kit_signed_by(&ws, "k2");
    assert_eq!(verify(&kit, &store, &[]).0, 0);

    // A version dropped into the folder is only as good as its signatures.
    let forged = attacker_version(&ws, "forged/3.root.json", 3, &["attacker"]);
    std::fs::copy(&forged, store.join("3.root.json")).unwrap();
    let (code, out, err) = verify(&kit, &store, &[]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains(
            "3.root.json: version 3 is not signed by a threshold of version 2's root keys"
        ),
        "{err}"
    );
    std::fs::remove_file(store.join("3.root.json")).unwrap();

    // A gap, a file whose name is not its version, a stranger file.
    std::fs::copy(&v2, store.join("4.root.json")).unwrap();
    let (code, _, err) = trust(&["show"], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("version 3 is missing (the store holds 1 to 4)"),
        "{err}"
    );
    std::fs::rename(store.join("4.root.json"), store.join("3.root.json")).unwrap();
    let (code, _, err) = trust(&["show"], &store);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("3.root.json holds version 2"), "{err}");
    std::fs::remove_file(store.join("3.root.json")).unwrap();
    std::fs::write(store.join("notes.txt"), "x").unwrap();
    let (code, _, err) = trust(&["show"], &store);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("notes.txt is not a trust version file"),
        "{err}"
    );
    std::fs::remove_file(store.join("notes.txt")).unwrap();
    assert_eq!(trust(&["show"], &store).0, 0);
}

#[test]
fn versions_offkit_writes_are_accepted_by_python_tuf() {
    let ws = Workspace::new();
    let [v1, ..] = chain(&ws);
    let next = ws.path("release/2.root.json");
    std::fs::create_dir_all(next.parent().unwrap()).unwrap();
    let (_, r2) = ws.key("r2");
    let (_, k2) = ws.key("k2");
    let (_, k3) = ws.key("k3");
    let o = run(&[
        "trust",
        "new",
        "--version",
        "2",
        "--expires",
        FAR,
        "--root-key",
        r2.to_str().unwrap(),
        "--kit-key",
        k2.to_str().unwrap(),
        "--kit-key",
        k3.to_str().unwrap(),
        "--kit-threshold",
        "2",
        "--out",
        next.to_str().unwrap(),
    ]);
    assert_eq!(outcome(&o).0, 0, "{:?}", outcome(&o));
    // Unsigned, then signed by the new root key only: python-tuf refuses both as a rotation.
    assert!(!python(&["check", v1.to_str().unwrap(), next.to_str().unwrap()]).0);
    for signer in ["r2", "r1"] {
        let key = ws.key(signer).0;
        let (code, out, err) = outcome(&run(&[
            "trust",
            "sign",
            next.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]));
        assert_eq!(code, 0, "{out}{err}");
        if signer == "r2" {
            assert!(python(&["check-self", next.to_str().unwrap()]).0);
            assert!(!python(&["check", v1.to_str().unwrap(), next.to_str().unwrap()]).0);
        }
    }
    let (ok, why) = python(&["check", v1.to_str().unwrap(), next.to_str().unwrap()]);
    assert!(ok, "{why}");

    // And offkit accepts it, with the two-of-two kit threshold it says.
    let store = ws.path("trust");
    assert_eq!(trust(&["init", v1.to_str().unwrap()], &store).0, 0);
    assert_eq!(trust(&["update", next.to_str().unwrap()], &store).0, 0);
    let src = ws.example_source("quickstart");
    let one = ws.build_in(&src, &[&ws.key("k2").0], "one");
    let (code, out, _) = verify(&one, &store, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(failure_kinds(&out), ["threshold-not-met"]);
    let two = ws.build_in(&src, &[&ws.key("k2").0, &ws.key("k3").0], "two");
    assert_eq!(verify(&two, &store, &[]).0, 0);
}

#[test]
fn an_expired_trust_version_refuses_kits_at_the_clock_not_at_the_signing_time() {
    let ws = Workspace::new();
    // The kits are created on 2026-01-01 (tests/common EPOCH); the version expired on 2026-06-01.
    let v1 = make(
        &ws,
        "1.root.json",
        Version {
            version: 1,
            expires: "2026-06-01T00:00:00Z",
            root: &["r1"],
            kit: &["k1"],
            signers: &["r1"],
        },
    );
    let store = ws.path("trust");
    let (code, _, err) = trust(&["init", v1.to_str().unwrap()], &store);
    assert_eq!(code, 0);
    assert!(err.contains("this version has expired"), "{err}");
    let kit = kit_signed_by(&ws, "k1");
    let (code, out, _) = verify(&kit, &store, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("expired at 2026-06-01"), "{out}");
    let (code, out, _) = verify(&kit, &store, &["--key-validity", "signing-time"]);
    assert_eq!(code, 0, "{out}");
}

/// The quickstart source carrying `versions` (files) in its `trust/` folder, built signed by
/// `key` into `out`; returns (exit code, kit path or build output).
fn build_carrying(ws: &Workspace, versions: &[&Path], key: &str, out: &str) -> (i32, String) {
    let src = ws.path(&format!("src-{out}"));
    common::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("kits/quickstart"),
        &src,
    );
    std::fs::create_dir_all(src.join("trust")).unwrap();
    for v in versions {
        std::fs::copy(v, src.join("trust").join(v.file_name().unwrap())).unwrap();
    }
    let (code, stdout, stderr) = ws.try_build(&src, &[&ws.key(key).0], out, common::EPOCH);
    if code == 0 {
        (0, stdout.lines().next().unwrap().to_owned())
    } else {
        (code, format!("{stdout}{stderr}"))
    }
}

#[test]
fn a_kit_carries_its_rotation_and_extract_adds_it_to_the_store() {
    let ws = Workspace::new();
    let [v1, v2, v3] = chain(&ws);
    let store = ws.path("trust");
    assert_eq!(trust(&["init", v1.to_str().unwrap()], &store).0, 0);
    let (code, kit) = build_carrying(&ws, &[&v2, &v3], "k2", "carrying");
    assert_eq!(code, 0, "{kit}");
    let kit = PathBuf::from(kit);

    // A stock tar still reads the kit; the versions are header entries before the envelope.
    let listing = Command::new("tar")
        .args(["--zstd", "-tf"])
        .arg(&kit)
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    let names: Vec<&str> = listing.lines().collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(at("trust/2.root.json") < at("trust/3.root.json"));
    assert!(at("trust/3.root.json") < at("manifest.dsse.json"));

    // Verify walks the rotation in memory and leaves the store as it was.
    let (code, out, err) = verify(&kit, &store, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("trust version(s) 2, 3 carried by the kit were accepted in memory"),
        "{out}"
    );
    assert!(!store.join("2.root.json").exists());

    // Extract adds it, byte for byte.
    let to = ws.path("extracted");
    let (code, out, err) = outcome(&run(&[
        "extract",
        kit.to_str().unwrap(),
        "--trust",
        store.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("the trust store moved to version 3 (version(s) 2, 3 carried by the kit)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(store.join("3.root.json")).unwrap(),
        std::fs::read(&v3).unwrap()
    );
    // The trust versions are not payload: not extracted.
    assert!(!to.join("trust").exists());
    // Now version 3 rules: a kit by k1 is refused; the carrying kit verifies with nothing new.
    let (code, out, _) = verify(&kit_signed_by(&ws, "k1"), &store, &[]);
    assert_eq!(code, 3, "{out}");
    let (code, out, _) = verify(&kit, &store, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("carried by the kit"), "{out}");
}

/// Apply adds the rotation a kit carries to the store once the kit is applied — from the header
/// it authenticated, not from a second read of the kit file.
#[test]
fn apply_adds_the_rotation_its_kit_carries_to_the_store() {
    let ws = Workspace::new();
    let [v1, v2, v3] = chain(&ws);
    let store = ws.path("trust");
    assert_eq!(trust(&["init", v1.to_str().unwrap()], &store).0, 0);
    let (code, kit) = build_carrying(&ws, &[&v2, &v3], "k2", "carrying");
    assert_eq!(code, 0, "{kit}");
    let (code, out, err) = ws.apply(Path::new(&kit), &store, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("the trust store moved to version 3 (version(s) 2, 3 carried by the kit)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(store.join("3.root.json")).unwrap(),
        std::fs::read(&v3).unwrap()
    );
}

#[test]
fn a_kit_carrying_a_rotation_that_does_not_follow_the_store_is_refused() {
    let ws = Workspace::new();
    let [v1, ..] = chain(&ws);
    let store = ws.path("trust");
    assert_eq!(trust(&["init", v1.to_str().unwrap()], &store).0, 0);

    // An attacker's version 2, signed by their own key only: a chain of one, which build
    // accepts; the site refuses it as forged.
    let forged = attacker_version(&ws, "forged/2.root.json", 2, &["attacker"]);
    let (code, kit) = build_carrying(&ws, &[&forged], "attacker", "forged");
    assert_eq!(code, 0, "{kit}");
    let (code, out, _) = verify(Path::new(&kit), &store, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(failure_kinds(&out), ["untrusted-rotation"]);
    assert!(
        out.contains("version 2 is not signed by a threshold of version 1's root keys"),
        "{out}"
    );
    // Extract refuses it too, and the store does not move.
    let (code, _, _) = outcome(&run(&[
        "extract",
        &kit,
        "--trust",
        store.to_str().unwrap(),
        "--to",
        ws.path("x").to_str().unwrap(),
    ]));
    assert_eq!(code, 3);
    assert!(!store.join("2.root.json").exists());

    // An attacker's own version 1 (another anchor): the store holds another version 1.
    let other1 = attacker_version(&ws, "other/1.root.json", 1, &["attacker"]);
    let (code, kit) = build_carrying(&ws, &[&other1], "attacker", "other");
    assert_eq!(code, 0, "{kit}");
    let (code, out, _) = verify(Path::new(&kit), &store, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(failure_kinds(&out), ["untrusted-rotation"]);
    assert!(out.contains("differs from the trusted version 1"), "{out}");

    // Build refuses a chain with a gap, or one whose steps do not verify, naming the file.
    let [_, v2, v3] = chain(&ws);
    let (code, out) = build_carrying(&ws, &[&v1, &v3], "k2", "gap");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("version 3 skips version 2"), "{out}");
    let forged3 = attacker_version(&ws, "forged/3.root.json", 3, &["attacker"]);
    let (code, out) = build_carrying(&ws, &[&v2, &forged3], "k2", "fork");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("is not signed by"), "{out}");
}
