//! Hostile kits: each attack is forged from a real, validly signed kit by rewriting its entries
//! (tests/common/forge.rs) and must be refused with its own failure kind, exit code 3, and
//! nothing written — `extract` leaves no target folder and nothing beside it.

mod common;

use std::path::{Path, PathBuf};

use common::forge::{self, Entry};
use common::{Workspace, failure_kinds, outcome, run, tree};
use tar::EntryType;

struct Case {
    ws: Workspace,
    kit: PathBuf,
    trusted: PathBuf,
    key: PathBuf,
    entries: Vec<Entry>,
}

/// Position of the first payload entry (after the six header entries: offkit-layout,
/// manifest.json, SHA256SUMS, SHA256SUMS.sig, provenance.dsse.json, manifest.dsse.json).
const PAYLOAD: usize = 6;

fn case() -> Case {
    let ws = Workspace::new();
    let (key, trusted) = ws.key("release");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&key]);
    let entries = forge::read(&kit);
    Case {
        ws,
        kit,
        trusted,
        key,
        entries,
    }
}

impl Case {
    /// Where a further detached signature goes: after the others, before the provenance.
    fn signature_slot(&self) -> usize {
        forge::find(&self.entries, "provenance.dsse.json")
    }

    /// Writes `entries` as `hostile/<name>.kit.tar.zst`.
    fn forge(&self, name: &str, entries: &[Entry]) -> PathBuf {
        let out = self.ws.path(&format!("hostile/{name}.kit.tar.zst"));
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        forge::write(entries, &out);
        out
    }

    /// Asserts verify and extract both refuse `kit` with `kind` first, and nothing is written.
    fn assert_refused(&self, kit: &Path, kind: &str) {
        let trust = self.trusted.to_str().unwrap();
        let o = run(&["verify", kit.to_str().unwrap(), "--trust", trust, "--json"]);
        let (code, stdout, stderr) = outcome(&o);
        assert_eq!(code, 3, "verify exit code for {kind}: {stdout}{stderr}");
        let kinds = failure_kinds(&stdout);
        assert_eq!(kinds.first().map(String::as_str), Some(kind), "{stdout}");
        assert!(stderr.contains("kit refused"), "{stderr}");

        let before = tree(self.ws.dir.path());
        let target = self.ws.path("extracted");
        let o = run(&[
            "extract",
            kit.to_str().unwrap(),
            "--trust",
            trust,
            "--to",
            target.to_str().unwrap(),
        ]);
        let (code, stdout, stderr) = outcome(&o);
        assert_eq!(code, 3, "extract exit code for {kind}: {stdout}{stderr}");
        assert!(
            !target.exists(),
            "extract left {target:?} behind for {kind}"
        );
        assert_eq!(
            tree(self.ws.dir.path()),
            before,
            "extract wrote something for {kind}"
        );
    }

    fn with(&self, f: impl FnOnce(&mut Vec<Entry>)) -> Vec<Entry> {
        let mut e = self.entries.clone();
        f(&mut e);
        e
    }
}

#[test]
fn the_untouched_kit_verifies() {
    let c = case();
    // Rewriting with the independent tar writer keeps a valid kit valid: the forge is faithful.
    let same = c.forge("identity", &c.entries);
    let o = run(&[
        "verify",
        same.to_str().unwrap(),
        "--trust",
        c.trusted.to_str().unwrap(),
    ]);
    assert_eq!(outcome(&o).0, 0, "{:?}", outcome(&o));
}

#[test]
fn path_traversal_is_refused() {
    let c = case();
    for (name, path) in [
        ("dotdot-escape", "../../offkit-escape.sql"),
        ("absolute-path", "/tmp/offkit-absolute-escape.sql"),
        ("backslash-escape", "seeds\\..\\..\\escape.sql"),
    ] {
        let kit = c.forge(
            name,
            &c.with(|e| e.insert(PAYLOAD, Entry::file(path, "DROP TABLE x;"))),
        );
        c.assert_refused(&kit, "unsafe-path");
    }
    assert!(!Path::new("/tmp/offkit-absolute-escape.sql").exists());
    assert!(
        !c.ws
            .dir
            .path()
            .parent()
            .unwrap()
            .join("offkit-escape.sql")
            .exists()
    );
}

#[test]
fn symlink_is_refused() {
    let c = case();
    let mut link = Entry::file("seeds/catalog/passwd", "");
    link.kind = EntryType::Symlink;
    link.link = b"/etc/passwd".to_vec();
    let kit = c.forge("symlink-escape", &c.with(|e| e.insert(PAYLOAD, link)));
    c.assert_refused(&kit, "symlink");
}

#[test]
fn hard_link_is_refused() {
    let c = case();
    let mut link = Entry::file("seeds/catalog/copy.json", "");
    link.kind = EntryType::Link;
    link.link = b"seeds/catalog/items.json".to_vec();
    let kit = c.forge("hard-link", &c.with(|e| e.push(link)));
    c.assert_refused(&kit, "hard-link");
}

#[test]
fn devices_and_fifos_are_refused() {
    let c = case();
    for (name, kind) in [
        ("char-device", EntryType::Char),
        ("block-device", EntryType::Block),
        ("fifo", EntryType::Fifo),
    ] {
        let mut dev = Entry::file("seeds/catalog/dev", "");
        dev.kind = kind;
        let kit = c.forge(name, &c.with(|e| e.insert(PAYLOAD, dev)));
        c.assert_refused(&kit, "special-file");
    }
}

#[test]
fn duplicate_entry_is_refused() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/items.json");
    let kit = c.forge(
        "duplicate-entry",
        &c.with(|e| {
            let copy = e[i].clone();
            e.insert(i + 1, copy);
        }),
    );
    c.assert_refused(&kit, "duplicate-entry");
}

#[test]
fn case_colliding_names_are_refused() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/items.json");
    let kit = c.forge(
        "case-collision",
        &c.with(|e| {
            let mut twin = e[i].clone();
            twin.path = b"seeds/catalog/ITEMS.json".to_vec();
            e.insert(i, twin);
        }),
    );
    c.assert_refused(&kit, "case-collision");
}

#[test]
fn extra_file_is_refused() {
    let c = case();
    let kit = c.forge(
        "extra-file",
        &c.with(|e| e.push(Entry::file("seeds/catalog/zz-extra.json", "{}"))),
    );
    c.assert_refused(&kit, "extra-file");
}

#[test]
fn missing_file_is_refused() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/README.txt");
    let kit = c.forge(
        "missing-file",
        &c.with(|e| {
            e.remove(i);
        }),
    );
    c.assert_refused(&kit, "missing-file");
}

#[test]
fn payload_before_header_is_refused() {
    let c = case();
    let i = forge::find(&c.entries, "migrations/inventory/001_create_items.sql");
    let kit = c.forge(
        "payload-before-header",
        &c.with(|e| {
            let m = e.remove(i);
            e.insert(0, m);
        }),
    );
    c.assert_refused(&kit, "payload-before-header");
}

#[test]
fn truncated_archive_is_refused() {
    let c = case();
    let bytes = std::fs::read(&c.kit).unwrap();
    let out = c.ws.path("hostile/truncated.kit.tar.zst");
    common::write(&out, &bytes[..bytes.len() * 2 / 3]);
    c.assert_refused(&out, "truncated");
}

#[test]
fn corrupt_zstd_is_refused() {
    let c = case();
    let mut bytes = std::fs::read(&c.kit).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let out = c.ws.path("hostile/corrupt-zstd.kit.tar.zst");
    common::write(&out, &bytes);
    c.assert_refused(&out, "corrupt-compression");
}

#[test]
fn decompression_bomb_is_refused() {
    let c = case();
    // A valid kit followed by 256 MiB of zeros: a few kilobytes compressed.
    let mut tar = forge::tar_bytes(&c.entries);
    tar.resize(tar.len() + (256 << 20), 0);
    let out = c.ws.path("hostile/zstd-bomb.kit.tar.zst");
    forge::write_raw(&tar, &out);
    assert!(std::fs::metadata(&out).unwrap().len() < 1 << 20);
    c.assert_refused(&out, "decompression-bomb");
}

#[test]
fn oversized_entry_is_refused() {
    let c = case();
    let i = forge::find(&c.entries, "manifest.json");
    let kit = c.forge(
        "oversized-manifest",
        &c.with(|e| e[i].data = vec![b' '; 97 << 20]),
    );
    c.assert_refused(&kit, "oversized-entry");
}

#[test]
fn non_utf8_name_is_refused() {
    let c = case();
    let mut bad = Entry::file("", "x");
    bad.path = b"seeds/catalog/\xff\xfe.json".to_vec();
    let kit = c.forge("bad-utf8-name", &c.with(|e| e.insert(PAYLOAD, bad)));
    c.assert_refused(&kit, "non-utf8-path");
}

#[test]
fn flipped_byte_in_payload_is_refused() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/items.json");
    let kit = c.forge("flipped-byte", &c.with(|e| e[i].data[3] ^= 0x01));
    c.assert_refused(&kit, "digest-mismatch");
}

#[test]
fn sha256sums_edited_to_match_a_changed_file_breaks_the_signature() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/items.json");
    let s = forge::find(&c.entries, "SHA256SUMS");
    let kit = c.forge(
        "sums-edited",
        &c.with(|e| {
            let old = offkit::util::sha256_hex(&e[i].data);
            e[i].data = b"[{\"sku\":\"EVIL\"}]\n".to_vec();
            let new = offkit::util::sha256_hex(&e[i].data);
            e[s].data = String::from_utf8(e[s].data.clone())
                .unwrap()
                .replace(&old, &new)
                .into_bytes();
        }),
    );
    c.assert_refused(&kit, "bad-signature");
}

#[test]
fn valid_signature_by_untrusted_key_is_refused() {
    let c = case();
    let (other_key, _) = c.ws.key("stranger");
    let src = c.ws.example_source("quickstart");
    let kit = c.ws.build_in(&src, &[&other_key], "stranger-out");
    c.assert_refused(&kit, "untrusted-signer");
}

#[test]
fn stripped_signatures_are_refused() {
    let c = case();
    let sig = forge::find(&c.entries, "SHA256SUMS.sig");
    let kit = c.forge(
        "detached-signature-stripped",
        &c.with(|e| {
            e.remove(sig);
        }),
    );
    c.assert_refused(&kit, "missing-signature");

    let d = forge::find(&c.entries, "manifest.dsse.json");
    let kit = c.forge(
        "dsse-signatures-stripped",
        &c.with(|e| {
            let mut env: serde_json::Value = serde_json::from_slice(&e[d].data).unwrap();
            env["signatures"] = serde_json::json!([]);
            e[d].data = forge::pretty(&env);
        }),
    );
    c.assert_refused(&kit, "missing-signature");
}

#[test]
fn dsse_subjects_not_matching_sha256sums_are_refused() {
    let c = case();
    let key = offkit::trust::SecretKey::load(&c.key).unwrap();
    let d = forge::find(&c.entries, "manifest.dsse.json");
    let kit = c.forge(
        "subject-mismatch",
        &c.with(|e| {
            let env: offkit::kit::dsse::Envelope = serde_json::from_slice(&e[d].data).unwrap();
            let mut statement: serde_json::Value =
                serde_json::from_slice(&env.payload_bytes().unwrap()).unwrap();
            statement["subject"][1]["digest"]["sha256"] = serde_json::json!("0".repeat(64));
            let signed = offkit::trust::sign::sign_envelope(
                &serde_json::to_vec(&statement).unwrap(),
                &[key],
            );
            e[d].data = signed.to_bytes();
        }),
    );
    c.assert_refused(&kit, "subject-mismatch");
}

#[test]
fn unknown_format_version_is_refused() {
    let c = case();
    let kit = c.forge(
        "format-v2",
        &c.with(|e| e[0].data = b"offkit/v2\n".to_vec()),
    );
    c.assert_refused(&kit, "unknown-format");
}

#[test]
fn malformed_json_is_refused() {
    let c = case();
    let m = forge::find(&c.entries, "manifest.json");
    let broken = b"{\"schema\": \"offkit/manifest/v1\", oops".to_vec();
    // Not re-signed: manifest.json is not what SHA256SUMS says, and is never parsed.
    let kit = c.forge(
        "malformed-manifest",
        &c.with(|e| e[m].data = broken.clone()),
    );
    c.assert_refused(&kit, "manifest-mismatch");
    // Re-signed by the release key, so that its digest is the signed one: then it is parsed.
    let key = offkit::trust::SecretKey::load(&c.key).unwrap();
    let signed = forge::manifest(&c.entries);
    let kit = c.forge(
        "malformed-manifest-signed",
        &c.with(|e| {
            e[m].data = broken;
            forge::resign(e, &key, &signed);
        }),
    );
    c.assert_refused(&kit, "malformed-json");

    let d = forge::find(&c.entries, "manifest.dsse.json");
    let kit = c.forge(
        "malformed-envelope",
        &c.with(|e| e[d].data = b"[1, 2".to_vec()),
    );
    c.assert_refused(&kit, "malformed-json");
}

impl Case {
    /// The kit with its manifest edited by `edit` and re-signed by the trusted release key (the
    /// statement carries the edited manifest too): only offkit's own rules can refuse it.
    fn resigned(&self, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let key = offkit::trust::SecretKey::load(&self.key).unwrap();
        let mut m = forge::manifest(&self.entries);
        edit(&mut m);
        let mut e = self.entries.clone();
        forge::set_manifest(&mut e, &m);
        forge::resign(&mut e, &key, &m);
        self.forge(name, &e)
    }
}

#[test]
fn a_resigned_kit_verifies_when_nothing_else_changed() {
    // The re-signing forge is faithful: a kit re-signed without edits still verifies, so the
    // refusals below come from the edits.
    let c = case();
    let kit = c.resigned("resigned", |_| {});
    let o = run(&[
        "verify",
        kit.to_str().unwrap(),
        "--trust",
        c.trusted.to_str().unwrap(),
    ]);
    assert_eq!(outcome(&o).0, 0, "{:?}", outcome(&o));
}

#[test]
fn a_signed_manifest_that_breaks_a_layout_rule_is_refused() {
    let c = case();
    // A seed whose key does not match its path (apply would put other bytes at that key).
    let kit = c.resigned("seed-key-moved", |m| {
        m["seeds"][0]["key"] = serde_json::json!("elsewhere/items.json");
    });
    c.assert_refused(&kit, "invalid-manifest");
    // A migration name outside the naming standard, signed by a trusted key.
    let kit = c.resigned("bad-migration-name", |m| {
        m["modules"][0]["migrations"][0]["name"] = serde_json::json!("1_init");
    });
    c.assert_refused(&kit, "invalid-manifest");
    // Totals that do not add up (a bound the reader relies on).
    let kit = c.resigned("bad-totals", |m| {
        m["payload"]["bytes"] = serde_json::json!(u64::MAX);
    });
    c.assert_refused(&kit, "invalid-manifest");
}

#[test]
fn a_manifest_json_that_differs_from_the_signed_statement_is_refused() {
    let c = case();
    let key = offkit::trust::SecretKey::load(&c.key).unwrap();
    let signed = forge::manifest(&c.entries);
    let mut shown = signed.clone();
    shown["description"] = serde_json::json!("not what was signed");
    let mut e = c.entries.clone();
    forge::set_manifest(&mut e, &shown);
    // SHA256SUMS and its signature cover the edited manifest.json; the statement keeps the
    // manifest that was signed.
    forge::resign(&mut e, &key, &signed);
    let kit = c.forge("manifest-mismatch", &e);
    c.assert_refused(&kit, "manifest-mismatch");
}

#[test]
fn header_entries_out_of_order_are_refused() {
    let c = case();
    let kit = c.forge("header-order", &c.with(|e| e.swap(1, 2)));
    c.assert_refused(&kit, "header-order");
}

#[test]
fn payload_entries_out_of_order_are_refused() {
    let c = case();
    let kit = c.forge("entry-order", &c.with(|e| e.swap(PAYLOAD, PAYLOAD + 1)));
    c.assert_refused(&kit, "entry-order");
}

#[test]
fn data_after_the_end_of_the_archive_is_refused() {
    let c = case();
    let mut tar = forge::tar_bytes(&c.entries);
    let mut garbage = b"#!/bin/sh\necho appended\n".to_vec();
    garbage.resize(512, 0);
    tar.extend_from_slice(&garbage);
    let out = c.ws.path("hostile/trailing-data.kit.tar.zst");
    forge::write_raw(&tar, &out);
    c.assert_refused(&out, "trailing-data");
}

#[test]
fn a_directory_entry_is_refused() {
    let c = case();
    let kit = c.forge(
        "directory-entry",
        &c.with(|e| {
            e.insert(
                PAYLOAD,
                Entry {
                    kind: EntryType::Directory,
                    ..Entry::file("migrations/", "")
                },
            )
        }),
    );
    c.assert_refused(&kit, "unsupported-entry");
}

#[test]
fn terminal_escapes_in_a_manifest_never_reach_the_output() {
    let c = case();
    let trust = c.trusted.to_str().unwrap();
    let mut m = forge::manifest(&c.entries);
    m["\u{1b}[31mEVIL\u{1b}[0m"] = serde_json::json!(1);
    // Unsigned edit: refused before manifest.json is parsed.
    let mut e = c.entries.clone();
    forge::set_manifest(&mut e, &m);
    let kit = c.forge("escape-unsigned", &e);
    c.assert_refused(&kit, "manifest-mismatch");
    // Signed by the release key: parsed, refused, and the field name shown escaped.
    let kit = c.resigned("escape-signed", |m| {
        m["\u{1b}[31mEVIL\u{1b}[0m"] = serde_json::json!(1);
        m["seeds"][0]["mediaType"] = serde_json::json!("\u{1b}[2J\u{1b}[32mVERIFIED");
    });
    c.assert_refused(&kit, "invalid-manifest");
    for args in [vec!["verify", "--json"], vec!["verify"], vec!["inspect"]] {
        let mut a = args.clone();
        a.insert(1, kit.to_str().unwrap());
        if a[0] == "verify" {
            a.extend(["--trust", trust]);
        }
        let (_, out, err) = outcome(&run(&a));
        assert!(
            !out.contains('\u{1b}') && !err.contains('\u{1b}'),
            "{a:?}: {out}{err}"
        );
    }
}

#[test]
fn terminal_escapes_anywhere_in_an_unauthenticated_kit_never_reach_the_output() {
    let c = case();
    let esc = "\u{1b}[2J\u{1b}[32mVERIFIED\u{7}";
    let d = forge::find(&c.entries, "manifest.dsse.json");
    let mut hint: serde_json::Value = serde_json::from_slice(&c.entries[d].data).unwrap();
    hint["signatures"][0]["keyid"] = serde_json::json!(esc);
    let mut stranger = hint.clone();
    stranger["payloadType"] = serde_json::json!(esc);
    let kits = [
        c.forge(
            "esc-layout",
            &c.with(|e| e[0].data = esc.as_bytes().to_vec()),
        ),
        c.forge(
            "esc-entry",
            &c.with(|e| e.insert(PAYLOAD, Entry::file(&format!("seeds/{esc}"), "x"))),
        ),
        c.forge("esc-hint", &c.with(|e| e[d].data = forge::pretty(&hint))),
        c.forge(
            "esc-type",
            &c.with(|e| e[d].data = forge::pretty(&stranger)),
        ),
    ];
    let trust = c.trusted.to_str().unwrap();
    let target = c.ws.path("esc-target");
    for kit in &kits {
        let k = kit.to_str().unwrap();
        for a in [
            vec!["verify", k, "--trust", trust],
            vec!["verify", k, "--trust", trust, "--json"],
            vec!["inspect", k],
            vec!["inspect", k, "--json"],
            vec![
                "extract",
                k,
                "--trust",
                trust,
                "--to",
                target.to_str().unwrap(),
            ],
        ] {
            let (code, out, err) = outcome(&run(&a));
            // `inspect` shows a kit's header without judging its payload; the others refuse.
            assert!(
                a[0] == "inspect" || code != 0,
                "{a:?} accepted a forged kit"
            );
            assert!(
                !out.contains('\u{1b}') && !err.contains('\u{1b}') && !err.contains('\u{7}'),
                "{a:?}: {out}{err}"
            );
        }
    }
}

// ---- Canonical kits: every byte is what `offkit build` writes or is signed (issue 10, class 2).

/// The mode field of a ustar header.
const MODE: usize = 100;

#[test]
fn a_skippable_frame_anywhere_is_refused() {
    let c = case();
    let bytes = std::fs::read(&c.kit).unwrap();
    // 1 MiB of unsigned bytes in a skippable frame, at the end and after the header frame.
    let mut skippable = vec![0x50, 0x2A, 0x4D, 0x18];
    skippable.extend((1u32 << 20).to_le_bytes());
    skippable.resize(8 + (1 << 20), b'A');
    let mut at_end = bytes.clone();
    at_end.extend(&skippable);
    let out = c.ws.path("hostile/skippable-end.kit.tar.zst");
    common::write(&out, &at_end);
    c.assert_refused(&out, "non-canonical-compression");

    let header = zstd::zstd_safe::find_frame_compressed_size(&bytes).unwrap();
    let mut inside = bytes[..header].to_vec();
    inside.extend(&skippable);
    inside.extend(&bytes[header..]);
    let out = c.ws.path("hostile/skippable-inside.kit.tar.zst");
    common::write(&out, &inside);
    c.assert_refused(&out, "non-canonical-compression");
}

#[test]
fn frames_without_checksum_or_size_are_refused() {
    let c = case();
    // The stock streaming encoder: same tar stream, frames without checksum or content size.
    let z = zstd::stream::encode_all(&forge::tar_bytes(&c.entries)[..], 3).unwrap();
    let out = c.ws.path("hostile/plain-zstd.kit.tar.zst");
    common::write(&out, &z);
    c.assert_refused(&out, "non-canonical-compression");
}

#[test]
fn tar_header_fields_other_than_builds_are_refused() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/items.json");
    let patches: [(&str, usize, &[u8]); 5] = [
        // World-writable setuid: what stock `tar -xp` as root would create.
        ("setuid", MODE, b"0004777\0"),
        ("uid", 108, b"0001750\0"),
        ("gid", 116, b"0001750\0"),
        ("uname", 265, b"attacker"),
        ("devmajor", 329, b"0000001\0"),
    ];
    for (name, at, bytes) in patches {
        let kit = c.forge(
            &format!("header-{name}"),
            &c.with(|e| e[i].patch.push((at, bytes.to_vec()))),
        );
        c.assert_refused(&kit, "non-canonical-entry");
    }
    // One entry with a different mtime, and a header entry too.
    let kit = c.forge("header-mtime", &c.with(|e| e[i].mtime = Some(1)));
    c.assert_refused(&kit, "non-canonical-entry");
    let kit = c.forge(
        "header-entry-mode",
        &c.with(|e| e[1].patch.push((MODE, b"0000755\0".to_vec()))),
    );
    c.assert_refused(&kit, "non-canonical-entry");
    // Every entry at another time than the kit's signed creation time.
    let kit = c.forge(
        "all-mtimes",
        &c.with(|e| e.iter_mut().for_each(|x| x.mtime = Some(12345))),
    );
    c.assert_refused(&kit, "non-canonical-entry");
}

#[test]
fn pax_records_other_than_builds_are_refused() {
    let c = case();
    let i = forge::find(&c.entries, "seeds/catalog/items.json");
    // A pax header that offkit never writes for a short name: it changes owner and mode for
    // tools that honour it.
    let mut pax = Entry::file("PaxHeader", "16 uname=attack\n");
    pax.kind = EntryType::XHeader;
    let kit = c.forge("pax-uname", &c.with(|e| e.insert(i, pax.clone())));
    c.assert_refused(&kit, "non-canonical-entry");
    // A pax header describing nothing, just before the end-of-archive marker.
    let kit = c.forge("pax-dangling", &c.with(|e| e.push(pax)));
    c.assert_refused(&kit, "malformed-archive");
}

#[test]
fn a_byte_in_the_padding_after_an_entrys_data_is_refused() {
    let c = case();
    // Found by fuzzing (fuzz/regressions/verify_kit): the padding after an entry's data was read
    // without being checked. Here, after the first payload entry whose size is not a multiple
    // of 512.
    let mut tar = forge::tar_bytes(&c.entries);
    let mut offset = 0;
    for e in &c.entries {
        let end = offset + 512 + e.data.len();
        if c.entries.iter().position(|x| x.path == e.path).unwrap() >= PAYLOAD
            && e.data.len() % 512 != 0
        {
            tar[end] = 0x09;
            break;
        }
        offset = end.div_ceil(512) * 512;
    }
    let out = c.ws.path("hostile/padding-byte.kit.tar.zst");
    forge::write_raw(&tar, &out);
    c.assert_refused(&out, "non-canonical-entry");
}

#[test]
fn bytes_after_the_end_marker_are_refused_even_zeros() {
    let c = case();
    let mut tar = forge::tar_bytes(&c.entries);
    tar.resize(tar.len() + 10 * 512, 0);
    let out = c.ws.path("hostile/zero-padding.kit.tar.zst");
    forge::write_raw(&tar, &out);
    c.assert_refused(&out, "trailing-data");
}

#[test]
fn an_envelope_not_in_builds_form_is_refused() {
    let c = case();
    let d = forge::find(&c.entries, "manifest.dsse.json");
    let env: serde_json::Value = serde_json::from_slice(&c.entries[d].data).unwrap();
    // The signatures are over the PAE, not the JSON: these still carry valid signatures.
    let mut extra = env.clone();
    extra["note"] = serde_json::json!("unsigned bytes");
    let mut extra_sig = env.clone();
    extra_sig["signatures"][0]["cert"] = serde_json::json!("x");
    for (name, bytes) in [
        ("envelope-extra-field", forge::pretty(&extra)),
        ("envelope-signature-field", forge::pretty(&extra_sig)),
        ("envelope-compact", serde_json::to_vec(&env).unwrap()),
    ] {
        let kit = c.forge(name, &c.with(|e| e[d].data = bytes));
        c.assert_refused(&kit, "non-canonical-signature");
    }
}

// ---- Detached signatures are enforced (class 3).

#[test]
fn a_detached_signature_by_nobody_is_refused() {
    let c = case();
    let d = c.signature_slot();
    let nobody = format!("SHA256SUMS.{}.sig", "ab".repeat(32));
    // 64 bytes by a key that did not sign the envelope.
    let kit = c.forge(
        "detached-by-nobody",
        &c.with(|e| e.insert(d, Entry::file(&nobody, vec![7u8; 64]))),
    );
    c.assert_refused(&kit, "bad-signature");
    // A shell script, or 4 MiB of noise, is not a signature at all.
    let kit = c.forge(
        "detached-script",
        &c.with(|e| e.insert(d, Entry::file(&nobody, "#!/bin/sh\nrm -rf ~\n"))),
    );
    c.assert_refused(&kit, "non-canonical-signature");
    let kit = c.forge(
        "detached-noise",
        &c.with(|e| e.insert(d, Entry::file(&nobody, vec![0x42u8; 4 << 20]))),
    );
    c.assert_refused(&kit, "non-canonical-signature");
}

#[test]
fn a_bogus_first_signature_cannot_carry_a_garbage_detached_signature() {
    let c = case();
    let d = forge::find(&c.entries, "manifest.dsse.json");
    let s = forge::find(&c.entries, "SHA256SUMS.sig");
    let stranger = offkit::trust::SecretKey::generate().unwrap();
    let kit = c.forge(
        "bogus-first-signature",
        &c.with(|e| {
            let mut env: serde_json::Value = serde_json::from_slice(&e[d].data).unwrap();
            let sigs = env["signatures"].as_array_mut().unwrap();
            sigs.insert(
                0,
                serde_json::json!({"keyid": stranger.keyid().as_str(), "sig": "A".repeat(86) + "=="}),
            );
            e[d].data = forge::pretty(&env);
            e[s].data = vec![0u8; 64];
        }),
    );
    // The trusted key's envelope signature counts, but its detached signature is gone.
    c.assert_refused(&kit, "missing-signature");
}

#[test]
fn co_signer_entries_out_of_order_or_repeated_are_refused() {
    let c = case();
    let d = c.signature_slot();
    let a = format!("SHA256SUMS.{}.sig", "a".repeat(64));
    let b = format!("SHA256SUMS.{}.sig", "b".repeat(64));
    for (name, first, second) in [("cosig-order", &b, &a), ("cosig-repeat", &a, &a)] {
        let kit = c.forge(
            name,
            &c.with(|e| {
                e.insert(d, Entry::file(second, vec![1u8; 64]));
                e.insert(d, Entry::file(first, vec![1u8; 64]));
            }),
        );
        c.assert_refused(&kit, "non-canonical-signature");
    }
}

// ---- Work before authentication is bounded (class 1).

#[test]
fn the_whole_header_is_bounded_not_each_entry() {
    let c = case();
    let m = forge::find(&c.entries, "manifest.json");
    let s = forge::find(&c.entries, "SHA256SUMS");
    // Two entries of 50 MiB each: under any per-entry limit, together over the header's 96 MiB.
    let kit = c.forge(
        "header-over-budget",
        &c.with(|e| {
            e[m].data = vec![b' '; 50 << 20];
            e[s].data = vec![b' '; 50 << 20];
        }),
    );
    assert!(std::fs::metadata(&kit).unwrap().len() < 1 << 20);
    c.assert_refused(&kit, "oversized-entry");
    // The envelope, held before authentication with its PAE copy, has a limit of its own.
    let d = forge::find(&c.entries, "manifest.dsse.json");
    let kit = c.forge(
        "envelope-over-budget",
        &c.with(|e| e[d].data = vec![b' '; 37 << 20]),
    );
    c.assert_refused(&kit, "oversized-entry");
}

#[test]
fn a_kit_file_changed_while_it_is_verified_is_refused() {
    use std::io::BufRead;
    let c = case();
    let kit = c.ws.path("changing.kit.tar.zst");
    std::fs::copy(&c.kit, &kit).unwrap();
    let resume = c.ws.path("resume");
    let mut child = common::cmd()
        .args(["verify", kit.to_str().unwrap(), "--json", "--trust"])
        .arg(&c.trusted)
        .env("OFFKIT_FAILPOINT", "verify:envelope-authenticated")
        .env("OFFKIT_FAILPOINT_RESUME", &resume)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("offkit-failpoint: verify:envelope-authenticated") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "verify ended early"
        );
    }
    // Between the first read (envelope authenticated, manifest only hashed) and the second:
    // another manifest.json under the same signatures.
    let m = forge::find(&c.entries, "manifest.json");
    let other = c.forge("swapped-manifest", &c.with(|e| e[m].data.insert(1, b' ')));
    std::fs::rename(&other, &kit).unwrap();
    std::fs::write(&resume, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert_eq!(
        failure_kinds(&stdout).first().map(String::as_str),
        Some("changed-during-verification"),
        "{stdout}"
    );
}

#[test]
fn too_many_envelope_signatures_are_refused_while_parsing() {
    let c = case();
    let d = forge::find(&c.entries, "manifest.dsse.json");
    let kit = c.forge(
        "many-signatures",
        &c.with(|e| {
            let mut env: serde_json::Value = serde_json::from_slice(&e[d].data).unwrap();
            let one = env["signatures"][0].clone();
            env["signatures"] = serde_json::Value::Array(vec![one; 100_000]);
            e[d].data = forge::pretty(&env);
        }),
    );
    c.assert_refused(&kit, "malformed-json");
}

// ---- Extraction stays in its target (class 7).

#[test]
fn extraction_never_goes_through_a_link_to_its_target() {
    let c = case();
    let outside = c.ws.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let link = c.ws.path("link");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    // With or without a trailing slash, the link is refused and nothing reaches its target.
    for to in [link.display().to_string(), format!("{}/", link.display())] {
        let o = run(&[
            "extract",
            c.kit.to_str().unwrap(),
            "--trust",
            c.trusted.to_str().unwrap(),
            "--to",
            &to,
        ]);
        let (code, _, stderr) = outcome(&o);
        assert_eq!(code, 6, "{to}: {stderr}");
        assert!(stderr.contains("symbolic link"), "{stderr}");
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "{to}"
        );
    }
}

#[test]
fn a_target_swapped_for_a_link_during_extraction_redirects_nothing() {
    use std::io::BufRead;
    let c = case();
    let outside = c.ws.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = c.ws.path("target");
    let resume = c.ws.path("resume");
    let mut child = common::cmd()
        .args(["extract", c.kit.to_str().unwrap(), "--trust"])
        .arg(&c.trusted)
        .arg("--to")
        .arg(&target)
        .env("OFFKIT_FAILPOINT", "retain-file:seeds/*")
        .env("OFFKIT_FAILPOINT_RESUME", &resume)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("offkit-failpoint: retain-file:seeds/") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "extract ended early"
        );
    }
    // Mid-extraction: the target moves away and a link to another folder takes its place.
    let moved = c.ws.path("moved");
    std::fs::rename(&target, &moved).unwrap();
    std::os::unix::fs::symlink(&outside, &target).unwrap();
    std::fs::write(&resume, b"").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(6), "{rest}");
    assert!(rest.contains("moved or replaced"), "{rest}");
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "files were written through the swapped-in link"
    );
    // The folder that was opened holds nothing of the refused extraction either.
    assert!(std::fs::read_dir(&moved).unwrap().next().is_none());
}
