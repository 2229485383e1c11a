//! Parts for removable media (issue 11): `build --max-part-size`, `split` and `join` cut and
//! restore kits byte for byte; verify, extract and apply read the parts, checking each against
//! the signed frame index before using it; every broken part is named; stock tools read the
//! parts once `cat` puts them together.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Workspace, failure_kinds, outcome, run};

/// A kit source with `blobs` seed objects of 9 MB of random bytes each: several frames of about
/// 8 MiB, so that parts of 9 MiB hold one frame each.
fn source(ws: &Workspace, name: &str, blobs: usize) -> PathBuf {
    let src = ws.path(name);
    common::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("kits/quickstart"),
        &src,
    );
    std::fs::create_dir_all(src.join("seeds/blobs")).unwrap();
    for i in 0..blobs {
        let data = common::noise(&format!("{name}/b{i}"), 9_000_000);
        std::fs::write(src.join(format!("seeds/blobs/b{i}.bin")), data).unwrap();
    }
    src
}

fn parts_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| {
                e.len() == 3 && e.to_str().unwrap().bytes().all(|b| b.is_ascii_digit())
            })
        })
        .collect();
    v.sort();
    v
}

fn concat(parts: &[PathBuf]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Builds `src` with `--max-part-size SIZE` into `out`; returns the kit and its parts.
fn build_split(ws: &Workspace, src: &Path, out: &str, size: &str) -> (PathBuf, Vec<PathBuf>) {
    let dir = ws.path(out);
    std::fs::create_dir_all(&dir).unwrap();
    let key = ws.key("release").0;
    let o = common::cmd()
        .args([
            "build",
            src.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .args(["--out", dir.to_str().unwrap(), "--max-part-size", size])
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&o);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let kit = PathBuf::from(stdout.lines().next().unwrap());
    (kit, parts_in(&dir))
}

fn verify(target: &Path, ws: &Workspace) -> (i32, String, String) {
    let public = ws.key("release").1;
    outcome(&run(&[
        "verify",
        target.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--json",
    ]))
}

fn sh(script: &str, dir: &Path) -> (bool, String) {
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn parts_join_byte_for_byte_and_every_command_reads_them() {
    let ws = Workspace::new();
    let src = source(&ws, "src", 4);
    let (kit, parts) = build_split(&ws, &src, "dist", "20M");
    assert!(parts.len() >= 2, "{parts:?}");
    for p in &parts {
        assert!(std::fs::metadata(p).unwrap().len() <= 20 << 20);
    }
    let whole = std::fs::read(&kit).unwrap();
    assert_eq!(concat(&parts), whole, "cat of the parts is the kit");

    // The stock-tool recipe of the README, on the parts.
    let (ok, said) = sh(
        "cat dist/*.kit.tar.zst.[0-9][0-9][0-9] > joined.kit.tar.zst \
         && mkdir x && tar --zstd -xf joined.kit.tar.zst -C x \
         && (cd x && sha256sum -c --strict --quiet SHA256SUMS)",
        ws.dir.path(),
    );
    assert!(ok, "{said}");

    // offkit join, and split of the whole kit at another size.
    let joined = ws.path("offkit-joined.kit.tar.zst");
    let (code, out, err) = outcome(&run(&[
        "join",
        parts[0].to_str().unwrap(),
        "--out",
        joined.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(&joined).unwrap(), whole);
    let small = ws.path("small");
    std::fs::create_dir_all(&small).unwrap();
    let (code, out, err) = outcome(&run(&[
        "split",
        kit.to_str().unwrap(),
        "--max-part-size",
        "9M",
        "--out",
        small.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let small_parts = parts_in(&small);
    assert!(small_parts.len() > parts.len());
    assert_eq!(concat(&small_parts), whole);

    // verify by the first part and by the folder; extract and apply from the parts.
    for target in [&small_parts[0], &small] {
        let (code, out, _) = verify(target, &ws);
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["kit_sha256"].as_str().unwrap(),
            offkit::util::sha256_hex(&whole)
        );
    }
    let public = ws.key("release").1;
    let to = ws.path("extracted");
    let (code, out, err) = outcome(&run(&[
        "extract",
        small.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(to.join("seeds/blobs/b3.bin")).unwrap(),
        std::fs::read(src.join("seeds/blobs/b3.bin")).unwrap()
    );
    let (code, out, err) = ws.apply(&small_parts[0], &public, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(ws.path("store/blobs/b0.bin")).unwrap(),
        std::fs::read(src.join("seeds/blobs/b0.bin")).unwrap()
    );

    // A co-signature goes into a whole kit only.
    let (code, _, err) = outcome(&run(&[
        "sign",
        small_parts[0].to_str().unwrap(),
        "--key",
        ws.key("co").0.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("join them"), "{err}");
}

/// A fresh copy of the parts folder `from` under `name`.
fn copy_parts(ws: &Workspace, from: &Path, name: &str) -> PathBuf {
    let to = ws.path(name);
    std::fs::create_dir_all(&to).unwrap();
    for p in parts_in(from) {
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    to
}

/// Verify of the folder `dir` fails with `part-mismatch` on `part` (its number), saying `says`;
/// extract does too and writes nothing.
fn refused(ws: &Workspace, dir: &Path, part: usize, says: &str) {
    let (code, out, err) = verify(dir, ws);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(failure_kinds(&out), ["part-mismatch"], "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entry = v["failures"][0]["entry"].as_str().unwrap().to_owned();
    assert!(
        entry.ends_with(&format!(".kit.tar.zst.{part:03}")),
        "{entry}"
    );
    assert!(out.contains(says), "{out}");
    let to = ws.path(&format!("x-{}", dir.file_name().unwrap().to_str().unwrap()));
    let (code, _, _) = outcome(&run(&[
        "extract",
        dir.to_str().unwrap(),
        "--trust",
        ws.key("release").1.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_eq!(code, 3);
    assert!(!to.exists());
}

#[test]
fn a_missing_truncated_swapped_stale_or_foreign_part_is_named() {
    let ws = Workspace::new();
    let (_, parts) = build_split(&ws, &source(&ws, "a", 4), "a", "9M");
    let dir = parts[0].parent().unwrap().to_path_buf();
    // Interior parts hold one full frame each: the same size.
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(parts.len() >= 5, "{parts:?}");
    assert_eq!(size(&parts[1]), size(&parts[2]));
    let name = |i: usize| parts[i].file_name().unwrap().to_owned();

    let d = copy_parts(&ws, &dir, "missing-middle");
    std::fs::remove_file(d.join(name(2))).unwrap();
    refused(&ws, &d, 3, "part 3 is missing");

    let d = copy_parts(&ws, &dir, "missing-last");
    let last = parts.len() - 1;
    std::fs::remove_file(d.join(name(last))).unwrap();
    refused(&ws, &d, parts.len(), "the last part(s) are missing");

    let d = copy_parts(&ws, &dir, "truncated");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join(name(1)))
        .unwrap();
    f.set_len(size(&parts[1]) - 1).unwrap();
    refused(&ws, &d, 2, "ends inside frame");

    let d = copy_parts(&ws, &dir, "swapped");
    std::fs::rename(d.join(name(1)), d.join("tmp")).unwrap();
    std::fs::rename(d.join(name(2)), d.join(name(1))).unwrap();
    std::fs::rename(d.join("tmp"), d.join(name(2))).unwrap();
    refused(
        &ws,
        &d,
        2,
        "is not the one the kit's signed frame index lists",
    );

    // Stale: part 2 of another build of the same kit (other seed bytes, same sizes).
    let (_, other) = build_split(&ws, &source(&ws, "b", 4), "b", "9M");
    assert_eq!(size(&other[1]), size(&parts[1]));
    let d = copy_parts(&ws, &dir, "stale");
    std::fs::copy(&other[1], d.join(name(1))).unwrap();
    refused(&ws, &d, 2, "stale, swapped, damaged or from another kit");

    // A part beyond the kit's end.
    let d = copy_parts(&ws, &dir, "extra");
    std::fs::copy(&parts[1], d.join(format!("{}", parts.len() + 1)))
        .map(|_| ())
        .unwrap();
    let extra_name = offkit::kit::parts::part_name(
        parts[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".001"),
        parts.len() + 1,
    );
    std::fs::rename(d.join(format!("{}", parts.len() + 1)), d.join(&extra_name)).unwrap();
    refused(&ws, &d, parts.len() + 1, "beyond the kit's end");

    // A first part that is not there (in a folder, and with no folder at all).
    std::fs::create_dir_all(ws.path("empty")).unwrap();
    let (code, out, _) = verify(&ws.path("nowhere/k-1.0.0.kit.tar.zst.001"), &ws);
    assert_eq!(code, 3, "{out}");
    assert_eq!(failure_kinds(&out), ["part-mismatch"]);
    let (code, out, _) = verify(&ws.path("empty/k-1.0.0.kit.tar.zst.001"), &ws);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("part 1 is missing"), "{out}");

    // join names the broken part too, and writes nothing.
    let d = copy_parts(&ws, &dir, "join-stale");
    std::fs::copy(&other[1], d.join(name(1))).unwrap();
    let out = ws.path("joined.kit.tar.zst");
    let (code, _, err) = outcome(&run(&[
        "join",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(".kit.tar.zst.002: frame "), "{err}");
    assert!(
        err.contains("is not the one the kit's signed frame index lists"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn only_a_kit_as_built_can_be_split_and_parts_must_hold_a_frame() {
    let ws = Workspace::new();
    let (kit, _) = build_split(&ws, &source(&ws, "c", 2), "c", "40M");
    // Recompressed into one frame: still a valid kit whole, but its frames are not its index's.
    let (ok, said) = sh(
        &format!(
            "zstd -q -dc {k} > plain.tar && zstd -q -3 --check plain.tar -o re.kit.tar.zst",
            k = kit.display()
        ),
        ws.dir.path(),
    );
    assert!(ok, "{said}");
    let re = ws.path("re.kit.tar.zst");
    assert_eq!(verify(&re, &ws).0, 0);
    let out = ws.path("re-parts");
    std::fs::create_dir_all(&out).unwrap();
    let (code, _, err) = outcome(&run(&[
        "split",
        re.to_str().unwrap(),
        "--max-part-size",
        "9M",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("was it recompressed?"), "{err}");
    assert!(parts_in(&out).is_empty());

    // Parts smaller than a frame cannot be cut; sizes must parse.
    let (code, _, err) = outcome(&run(&[
        "split",
        kit.to_str().unwrap(),
        "--max-part-size",
        "1M",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is smaller than frame"), "{err}");
    let (code, _, err) = outcome(&run(&[
        "split",
        kit.to_str().unwrap(),
        "--max-part-size",
        "lots",
    ]));
    assert_eq!(code, 2, "{err}");
}

/// `--jobs N` decompresses the payload frames side by side, cut by the signed frame index: the
/// same verdict and kit digest as one stream, for a whole kit and for its parts, and a damaged
/// frame is still refused by name.
#[test]
fn frames_decompressed_in_parallel_verify_the_same() {
    let ws = Workspace::new();
    let src = source(&ws, "par", 3);
    let (kit, parts) = build_split(&ws, &src, "par-out", "9M");
    assert!(parts.len() >= 3, "{parts:?}");
    let public = ws.key("release").1;
    let verify_jobs = |target: &Path, jobs: &str| {
        outcome(&run(&[
            "verify",
            target.to_str().unwrap(),
            "--trust",
            public.to_str().unwrap(),
            "--json",
            "--jobs",
            jobs,
        ]))
    };
    let digest = |out: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["kit_sha256"].as_str().unwrap().to_owned()
    };
    let (code, one, _) = verify_jobs(&kit, "1");
    assert_eq!(code, 0, "{one}");
    for target in [&kit, &parts[0]] {
        let (code, out, err) = verify_jobs(target, "3");
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(digest(&out), digest(&one));
    }
    // One byte of a blob's frame changed (its zstd checksum still matches nothing): refused.
    let mut bytes = std::fs::read(&kit).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let damaged = ws.path("damaged.kit.tar.zst");
    std::fs::write(&damaged, &bytes).unwrap();
    let (code, out, _) = verify_jobs(&damaged, "3");
    assert_eq!(code, 3, "{out}");
    let kinds = failure_kinds(&out);
    assert!(
        kinds
            .iter()
            .any(|k| k == "corrupt-compression" || k == "digest-mismatch"),
        "{kinds:?}"
    );
}
