//! Fault injection: real faults, made by the test, at the worst moments — a disk that fills up
//! (a small tmpfs the test mounts) during `extract`, `build`, apply's work folder and file-store
//! seeding; the database connection terminated by the server (`pg_terminate_backend`) in the
//! middle of a migration and of a data-migration batch; the S3 server killed mid-seed and
//! restarted; an S3 server that stops answering, or accepting. Each must end in a clear error
//! (what failed, where, why), leave nothing half-done (no partial file or object, no half-applied
//! migration or batch, a ledger that says what happened), and a rerun of the same command must
//! complete the job.

mod common;
#[path = "common/fault_kit.rs"]
mod fault_kit;
#[path = "common/paused.rs"]
mod paused;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_cli.rs"]
mod store_cli;
#[path = "common/tmpfs.rs"]
mod tmpfs;

use std::path::Path;
use std::process::Command;

use common::{TestDb, Workspace, outcome, tree};
use fault_kit::{Seed, Target};
use tmpfs::Tmpfs;

/// `offkit apply KIT` onto `db` and `store`, JSON report on stdout, batches of 10.
fn apply(kit: &Path, public: &Path, db: &TestDb, store: &str) -> Command {
    let mut c = store_cli::offkit();
    c.arg("apply")
        .arg(kit)
        .arg("--trust")
        .arg(public)
        .args(["--db", &db.url(), "--store", store])
        .args(["--progress", "off", "--batch-size", "10", "--json"]);
    c
}

fn run(cmd: &mut Command) -> (i32, serde_json::Value, String) {
    let (code, out, err) = outcome(&cmd.output().expect("offkit runs"));
    let report = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, report, err)
}

/// Keys of the report's seed objects with outcome `what`.
fn seeds_with(report: &serde_json::Value, what: &str) -> Vec<String> {
    report["seeds"]["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["outcome"] == what)
                .map(|o| o["key"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn blobs(n: usize, size: usize) -> Vec<Seed> {
    (1..=n)
        .map(|i| Seed::noise(&format!("blobs/b{i}.bin"), size))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Disk full

/// `offkit extract` into a 2 MiB file system of a 4 MiB kit: the write that fails is named, and
/// nothing of the kit remains (not even the folder extract created); with space, the same command
/// extracts the whole kit.
#[test]
fn disk_full_during_extract_leaves_nothing_and_a_rerun_extracts() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let disk = Tmpfs::mount("2m");
    let to = disk.join("kit");
    let extract = || {
        let mut c = store_cli::offkit();
        c.arg("extract")
            .arg(&kit)
            .arg("--trust")
            .arg(&public)
            .arg("--to")
            .arg(&to);
        outcome(&c.output().unwrap())
    };

    let (code, out, err) = extract();
    assert_eq!(code, 6, "an I/O error, not a refused kit: {out}{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("seeds/blobs/b"), "names the file: {err}");
    assert_eq!(
        tree(disk.path()),
        Vec::<String>::new(),
        "nothing left behind"
    );

    disk.resize("16m");
    let (code, out, err) = extract();
    assert_eq!(code, 0, "{out}{err}");
    for s in &seeds {
        let path = to.join("seeds").join(&s.key);
        assert_eq!(std::fs::read(&path).unwrap(), s.bytes, "{}", path.display());
    }
    assert!(
        !tree(&to).iter().any(|f| f.contains(".offkit")),
        "{:?}",
        tree(&to)
    );
}

/// `offkit build` into a 2 MiB file system: an I/O error that says the disk is full, no kit file
/// and no temporary file in the output folder; with space, the same command writes the same kit
/// a build on a roomy disk writes, byte for byte.
#[test]
fn disk_full_during_build_leaves_no_kit_and_a_rerun_builds_the_same_kit() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = fault_kit::source(&ws, Target::Any, &blobs(6, 700_000));
    let reference = ws.build(&src, &[&key]);
    let disk = Tmpfs::mount("2m");
    let out_dir = disk.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let build = || {
        let mut c = common::cmd();
        c.arg("build")
            .arg(&src)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&out_dir);
        outcome(&c.output().unwrap())
    };

    let (code, out, err) = build();
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(tree(&out_dir), Vec::<String>::new(), "no partial kit");

    disk.resize("16m");
    let (code, out, err) = build();
    assert_eq!(code, 0, "{out}{err}");
    let built = out_dir.join(reference.file_name().unwrap());
    assert_eq!(
        tree(&out_dir),
        [built.file_name().unwrap().to_str().unwrap()]
    );
    assert_eq!(
        std::fs::read(&built).unwrap(),
        std::fs::read(&reference).unwrap()
    );
}

/// Apply's work folder (where the verified kit is kept while applying) on a full disk: the verify
/// step fails as an I/O error before anything is applied — no ledger entry, no table, nothing in
/// the store, no work folder left; with space, the same apply completes.
#[test]
fn disk_full_in_the_work_folder_applies_nothing_and_a_rerun_applies() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let store_dir = ws.path("store");
    let store = format!("file://{}", store_dir.display());
    let disk = Tmpfs::mount("2m");

    let (code, report, err) = run(apply(&kit, &public, &db, &store)
        .arg("--work-dir")
        .arg(disk.path()));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let failed_step = report["steps"]
        .as_array()
        .and_then(|s| s.last())
        .map(|s| s["step"].clone());
    assert_eq!(failed_step, Some("verify".into()), "{report}");
    assert_eq!(
        tree(disk.path()),
        Vec::<String>::new(),
        "work folder removed"
    );
    assert_eq!(
        db.rows("SELECT name FROM sqlite_master"),
        Vec::<Vec<String>>::new(),
        "no ledger, no migration"
    );
    assert_eq!(fault_kit::files(&store_dir), []);

    disk.resize("16m");
    let (code, _, err) = run(apply(&kit, &public, &db, &store)
        .arg("--work-dir")
        .arg(disk.path()));
    assert_eq!(code, 0, "{err}");
    fault_kit::assert_applied_once(&db, Target::Any);
    assert_eq!(fault_kit::files(&store_dir), fault_kit::expected(&seeds));
    assert_eq!(fault_kit::outcomes(&db), ["succeeded"]);
    assert_eq!(tree(disk.path()), Vec::<String>::new());
}

/// A folder store on a 2 MiB file system, seeded with 4 MiB one object at a time: the objects
/// that fit are put whole, each one that does not is a named failure, no temporary file is left,
/// the ledger records the failure and which object was put and which failed; with space, the same
/// apply puts exactly the missing ones, and the ledger shows both attempts.
#[test]
fn disk_full_while_seeding_a_folder_store_keeps_only_whole_objects_and_a_rerun_completes() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let disk = Tmpfs::mount("2m");
    let store_dir = disk.join("store");
    let store = format!("file://{}", store_dir.display());

    let (code, report, err) = run(apply(&kit, &public, &db, &store).args(["--parallelism", "1"]));
    assert_eq!(code, 12, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let put = seeds_with(&report, "put");
    let failed = seeds_with(&report, "failed");
    assert!(!put.is_empty() && !failed.is_empty(), "{report}");
    assert_eq!(put.len() + failed.len(), seeds.len(), "{report}");
    assert!(err.contains(&failed[0]), "names the object: {err}");
    // Only whole, correct objects: exactly those reported put, and no temporary file.
    let want = fault_kit::expected(&seeds);
    let have = fault_kit::files(&store_dir);
    assert_eq!(
        have,
        want.iter()
            .filter(|(k, _)| put.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
        "the store holds exactly the objects reported put"
    );
    // The migrations ran (once) before the seeds; the ledger says what happened.
    fault_kit::assert_applied_once(&db, Target::Any);
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].0, "failed");
    assert!(
        ledger[0].1.contains("No space left on device"),
        "{ledger:?}"
    );
    for (key, recorded) in fault_kit::seed_outcomes(&db, 1) {
        let expected = if put.contains(&key) { "put" } else { "failed" };
        assert_eq!(recorded, expected, "{key}");
    }

    disk.resize("16m");
    let (code, report, err) = run(apply(&kit, &public, &db, &store).args(["--parallelism", "1"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(fault_kit::files(&store_dir), want);
    let mut put_now = seeds_with(&report, "put");
    put_now.sort();
    let mut missing = failed.clone();
    missing.sort();
    assert_eq!(
        put_now, missing,
        "the rerun puts exactly the missing objects"
    );
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
    fault_kit::assert_applied_once(&db, Target::Any);
}
