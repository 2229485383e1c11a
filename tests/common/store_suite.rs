//! The behaviour every store driver must show, written once and run against each real driver by
//! `tests/store_file.rs`, `tests/store_s3.rs` and `tests/store_pg.rs`.

#![allow(dead_code)]

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use offkit::kit::path::KitPath;
use offkit::store::seed::{Action, Outcome, SeedMode};
use offkit::store::stream::digest_of;
use offkit::store::{
    ConflictPolicy, FolderSource, SeedError, SeedObject, SeedOptions, SeedPlan, SeedReport,
    SeedState, Store,
};

/// Seeds `seeds`, whose files are under `src` at their keys.
pub fn seed_from(
    store: &dyn Store,
    src: &Path,
    seeds: &[SeedObject],
    opts: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    let source = FolderSource::new(src.to_path_buf());
    offkit::store::seed(store, seeds, Some(&source), opts)
}

/// Compares `seeds` with `store` as `offkit status` does (one page).
pub fn compare(store: &dyn Store, seeds: &[SeedObject]) -> Result<SeedPlan, SeedError> {
    let mut c = offkit::store::Comparison::new(store)?;
    c.page(seeds)?;
    Ok(c.finish())
}

/// Writes `bytes` to `dir/key` and describes it as a seed.
pub fn seed_file(dir: &Path, key: &str, bytes: &[u8]) -> SeedObject {
    let path = KitPath::new(key).unwrap().under(dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let d = digest_of(bytes).unwrap();
    SeedObject {
        key: KitPath::new(key).unwrap(),
        sha256: d.sha256,
        size: d.size,
        media_type: "application/json".into(),
    }
}

/// Writes a file of `size` pseudo-random bytes (deterministic from `seed`) without holding it in
/// memory, and describes it as a seed.
pub fn large_seed_file(dir: &Path, key: &str, size: u64, seed: u64) -> SeedObject {
    let path = KitPath::new(key).unwrap().under(dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut x = seed | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            // xorshift64: cheap, incompressible enough, reproducible.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    drop(f);
    let d = digest_of(std::fs::File::open(&path).unwrap()).unwrap();
    SeedObject {
        key: KitPath::new(key).unwrap(),
        sha256: d.sha256,
        size: d.size,
        media_type: "application/octet-stream".into(),
    }
}

/// Sorted (key, sha256) of everything in the store.
pub fn fingerprint(store: &dyn Store) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    store
        .list(None, &mut |i| {
            keys.push(i.key);
            ControlFlow::Continue(())
        })
        .unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let d = store.digest(&KitPath::new(&k).unwrap()).unwrap().unwrap();
            (k, d.sha256)
        })
        .collect()
}

fn opts() -> SeedOptions {
    SeedOptions {
        parallelism: Some(3),
        progress: offkit::report::progress::ProgressMode::Off,
        ..SeedOptions::default()
    }
}

fn get(store: &dyn Store, key: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    store
        .get(&KitPath::new(key).unwrap(), &mut out)
        .unwrap()
        .map(|_| out)
}

/// Puts seeds, reads them back, lists them; a second seeding skips them all.
pub fn put_get_skip(store: &dyn Store, src: &Path) {
    let seeds = vec![
        seed_file(src, "adv/raw/a.json", b"{\"a\":1}"),
        seed_file(src, "adv/raw/b.json", b"{\"b\":2}"),
        seed_file(src, "adv/empty.json", b""),
        seed_file(src, "odd keys/sp ace+plus%pct ü.json", b"odd"),
        seed_file(src, ".hidden/x", b"hidden"),
    ];
    let r = seed_from(store, src, &seeds, &opts()).unwrap();
    assert_eq!(r.totals.put, 5, "{r:#?}");
    assert_eq!(r.totals.bytes_written, 7 + 7 + 3 + 6);
    assert!(r.objects.iter().all(|o| o.outcome == Some(Outcome::Put)));
    assert_eq!(get(store, "adv/raw/a.json").unwrap(), b"{\"a\":1}");
    assert_eq!(get(store, "adv/empty.json").unwrap(), b"");
    assert_eq!(
        get(store, "odd keys/sp ace+plus%pct ü.json").unwrap(),
        b"odd"
    );
    assert_eq!(get(store, "adv/raw/none.json"), None);
    let fp = fingerprint(store);
    let keys: Vec<&str> = fp.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            ".hidden/x",
            "adv/empty.json",
            "adv/raw/a.json",
            "adv/raw/b.json",
            "odd keys/sp ace+plus%pct ü.json"
        ]
    );
    let again = seed_from(store, src, &seeds, &opts()).unwrap();
    assert_eq!(again.totals.skipped, 5, "{again:#?}");
    assert_eq!(again.totals.bytes_written, 0);
    assert_eq!(fingerprint(store), fp);
}

/// A different object at a seed key stops seeding before any put; nothing is overwritten.
pub fn conflict_stops(store: &dyn Store, src: &Path) {
    let first = vec![seed_file(src, "c/one.json", b"original")];
    seed_from(store, src, &first, &opts()).unwrap();
    let other = tempfile::tempdir().unwrap();
    let seeds = vec![
        seed_file(other.path(), "c/new.json", b"new"),
        seed_file(other.path(), "c/one.json", b"changed"),
    ];
    let err = seed_from(store, other.path(), &seeds, &opts()).unwrap_err();
    let SeedError::Conflicts { first, report, .. } = &err else {
        panic!("expected a conflict, got {err}")
    };
    assert_eq!(first, "c/one.json");
    assert!(err.to_string().contains("c/one.json"), "{err}");
    assert_eq!(report.totals.conflicts, 1);
    assert_eq!(report.totals.not_run, 1);
    assert_eq!(get(store, "c/one.json").unwrap(), b"original");
    assert_eq!(get(store, "c/new.json"), None, "stopped before any put");
    // The plan (status) says the same without changing anything.
    let plan = compare(store, &seeds).unwrap();
    assert_eq!(
        (
            plan.totals.pending,
            plan.totals.conflicting,
            plan.totals.present
        ),
        (1, 1, 0)
    );
    assert_eq!(plan.entries[0].state, SeedState::Absent);
    assert!(matches!(plan.entries[1].state, SeedState::Different { .. }));
    assert_eq!(plan.entries[1].action, Action::Conflict);
    // With --replace-conflicting it is replaced, and the report says so.
    let replace = SeedOptions {
        conflicts: ConflictPolicy::Replace,
        ..opts()
    };
    let r = seed_from(store, other.path(), &seeds, &replace).unwrap();
    assert_eq!((r.totals.put, r.totals.replaced), (1, 1), "{r:#?}");
    assert_eq!(r.objects[1].outcome, Some(Outcome::Replaced));
    assert_eq!(
        r.objects[1].existing.as_ref().unwrap().sha256,
        digest_of(&b"original"[..]).unwrap().sha256
    );
    assert_eq!(get(store, "c/one.json").unwrap(), b"changed");
    let again = seed_from(store, other.path(), &seeds, &opts()).unwrap();
    assert_eq!(again.totals.skipped, 2);
}

/// A dry run plans puts, skips and conflicts and changes nothing.
pub fn dry_run_changes_nothing(store: &dyn Store, src: &Path) {
    let done = vec![seed_file(src, "d/kept.json", b"kept")];
    seed_from(store, src, &done, &opts()).unwrap();
    let before = fingerprint(store);
    let other = tempfile::tempdir().unwrap();
    let seeds = vec![
        seed_file(other.path(), "d/kept.json", b"kept"),
        seed_file(other.path(), "d/new.json", b"new"),
    ];
    let dry = SeedOptions {
        mode: SeedMode::DryRun,
        ..opts()
    };
    let r = seed_from(store, src, &seeds, &dry).unwrap();
    assert_eq!(r.mode, SeedMode::DryRun);
    assert_eq!((r.totals.put, r.totals.skipped), (1, 1));
    assert!(r.objects.iter().all(|o| o.outcome.is_none()));
    assert_eq!(fingerprint(store), before);
}

/// A source file that is not what the seed promises is never stored.
pub fn source_mismatch_stores_nothing(store: &dyn Store, src: &Path) {
    let mut s = seed_file(src, "m/file.json", b"promised bytes");
    std::fs::write(s.key.under(src), b"tampered bytes").unwrap();
    let err = seed_from(store, src, std::slice::from_ref(&s), &opts()).unwrap_err();
    assert!(matches!(err, SeedError::SourceChanged { .. }), "{err}");
    assert!(err.to_string().contains("m/file.json"), "{err}");
    assert_eq!(get(store, "m/file.json"), None);
    // Longer than promised, too.
    std::fs::write(s.key.under(src), b"promised bytes and more").unwrap();
    assert!(seed_from(store, src, std::slice::from_ref(&s), &opts()).is_err());
    assert_eq!(get(store, "m/file.json"), None);
    s.sha256 = "not hex".into();
    assert!(matches!(
        seed_from(store, src, &[s], &opts()),
        Err(SeedError::InvalidSeed { .. })
    ));
}

/// A large object goes in streamed (multipart on S3, chunked in PostgreSQL) and reads back intact.
pub fn large_object(store: &dyn Store, src: &Path, size: u64) -> SeedObject {
    let s = large_seed_file(src, "big/blob.bin", size, 42);
    let r = seed_from(store, src, std::slice::from_ref(&s), &opts()).unwrap();
    assert_eq!(r.totals.bytes_written, size);
    let d = store.digest(&s.key).unwrap().unwrap();
    assert_eq!((d.size, d.sha256.as_str()), (size, s.sha256.as_str()));
    let again = seed_from(store, src, std::slice::from_ref(&s), &opts()).unwrap();
    assert_eq!(again.totals.skipped, 1);
    s
}

/// The probe of `offkit store check` passes and leaves nothing behind.
pub fn check_passes(store: &dyn Store) {
    let before = fingerprint(store);
    let r = offkit::store::check::check(store);
    assert!(r.ok, "{}", r.render_text());
    assert_eq!(r.steps.len(), 7);
    assert_eq!(fingerprint(store), before);
}

/// A folder of small files and one larger one, for CLI and crash tests.
pub fn seed_folder(dir: &Path, small: usize, large: u64) -> PathBuf {
    for i in 0..small {
        seed_file(
            dir,
            &format!("set/{:02}/obj-{i:03}.json", i % 4),
            format!("{{\"i\":{i}}}").as_bytes(),
        );
    }
    if large > 0 {
        large_seed_file(dir, "set/large/blob.bin", large, 7);
    }
    dir.to_path_buf()
}

/// Keys that look like escapes but are valid archive paths stay literal, inside the store; keys
/// that are not valid archive paths cannot even be constructed.
pub fn key_safety(store: &dyn Store, src: &Path) {
    let tricky = [
        "%2e%2e/x.json",
        "a/..b/c",
        "..x",
        "a/%2F/b",
        "sp ace/tab\u{a0}nbsp",
        "uni/ü∂≈.json",
    ];
    let seeds: Vec<SeedObject> = tricky
        .iter()
        .map(|k| seed_file(src, k, k.as_bytes()))
        .collect();
    seed_from(store, src, &seeds, &opts()).unwrap();
    for k in tricky {
        assert_eq!(get(store, k).unwrap(), k.as_bytes(), "{k}");
    }
    let mut listed: Vec<String> = fingerprint(store).into_iter().map(|(k, _)| k).collect();
    listed.retain(|k| tricky.contains(&k.as_str()));
    assert_eq!(listed.len(), tricky.len(), "{listed:?}");
    for bad in [
        "../x",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\\b",
        "a\u{0}b",
        "",
    ] {
        assert!(KitPath::new(bad).is_err(), "{bad:?} accepted as a key");
    }
}
