//! Apply uses only what was verified. A kit with a frame index (every kit `build` writes) is
//! applied without a copy: migrations are held in memory from the verifying pass, seeds read again
//! from the kit frame by frame, each frame checked against the signed index first — a kit file
//! changed between verification and seeding is refused at the changed frame, naming the seed, and
//! nothing of it is stored. A kit without an index is copied to a work folder: a file added to,
//! changed in or removed from it between verification and use is refused with its name and its
//! own failure kind, and nothing after it runs. The apply is paused at the `apply:verified`
//! failpoint (right after the payload pass), the test changes the kit or the folder, and the apply
//! goes on.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Workspace;

struct Site {
    ws: Workspace,
    kit: PathBuf,
    public: PathBuf,
    db: PathBuf,
    store: PathBuf,
    work: PathBuf,
}

/// A site applying a kit without a frame index (copied to a work folder).
fn site() -> Site {
    let s = indexed_site();
    common::forge::without_frame_index(&s.kit, &s.ws.key("release").0);
    s
}

/// A site applying a kit as `build` writes it (with its frame index).
fn indexed_site() -> Site {
    indexed_site_with(|_| {})
}

/// A site applying a kit of 9,000 small seeds more than the quickstart's: three seed pages.
fn paged_site() -> Site {
    indexed_site_with(|src| {
        for i in 0..9000 {
            common::write(
                &src.join(format!("seeds/bulk/{:03}/{i:06}.json", i % 97)),
                format!("{{\"n\":{i}}}\n"),
            );
        }
    })
}

/// A site applying a kit built from the quickstart's source after `add` changed it.
fn indexed_site_with(add: impl FnOnce(&Path)) -> Site {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    add(&src);
    let kit = ws.build(&src, &[&key]);
    let (db, store, work) = (ws.path("site.db"), ws.path("store"), ws.path("work"));
    std::fs::create_dir_all(&work).unwrap();
    Site {
        ws,
        kit,
        public,
        db,
        store,
        work,
    }
}

impl Site {
    fn apply(&self) -> Command {
        let mut c = common::cmd();
        c.arg("apply")
            .arg(&self.kit)
            .arg("--trust")
            .arg(&self.public)
            .arg("--db")
            .arg(format!("sqlite://{}", self.db.display()))
            .arg("--store")
            .arg(format!("file://{}", self.store.display()))
            .arg("--work-dir")
            .arg(&self.work)
            .args(["--progress", "off", "--json"]);
        c
    }

    /// Runs apply paused at `apply:verified`, lets `tamper` change the kit's work folder, resumes;
    /// returns the exit code and the JSON report.
    fn apply_tampered(&self, tamper: impl FnOnce(&Path)) -> (i32, serde_json::Value) {
        self.apply_paused(|work| {
            let folders: Vec<PathBuf> = std::fs::read_dir(work)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(folders.len(), 1, "one private work folder: {folders:?}");
            tamper(&folders[0]);
        })
    }

    /// Runs apply paused at `apply:verified`, runs `meanwhile` with the work folder given, resumes;
    /// returns the exit code and the JSON report.
    fn apply_paused(&self, meanwhile: impl FnOnce(&Path)) -> (i32, serde_json::Value) {
        self.apply_paused_at("apply:verified", &[], meanwhile)
    }

    /// Runs apply (with `args` more) paused at `failpoint`, runs `meanwhile` with the work
    /// folder given, resumes; returns the exit code and the JSON report.
    fn apply_paused_at(
        &self,
        failpoint: &str,
        args: &[&str],
        meanwhile: impl FnOnce(&Path),
    ) -> (i32, serde_json::Value) {
        let resume = self.ws.path("resume");
        let mut child = self
            .apply()
            .args(args)
            .env("OFFKIT_FAILPOINT", failpoint)
            .env("OFFKIT_FAILPOINT_RESUME", &resume)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "apply ended early"
            );
            if line.contains(&format!("offkit-failpoint: {failpoint}")) {
                break;
            }
        }
        meanwhile(&self.work);
        std::fs::write(&resume, b"").unwrap();
        let out = child.wait_with_output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code().unwrap_or(-1), report)
    }

    /// Rows of `sql` on the site database, each as its columns joined by `|`.
    fn query(&self, sql: &str) -> Vec<String> {
        let out = Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 print('\\n'.join('|'.join(str(v) for v in r) for r in c.execute(sys.argv[2])))",
            )
            .arg(&self.db)
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Tables in the site database (none means nothing was applied and no ledger written).
    fn tables(&self) -> Vec<String> {
        self.query("select name from sqlite_master where type='table' order by 1")
    }
}

fn assert_refused(report: &serde_json::Value, code: i32, kind: &str, entry: &str) {
    let error = report["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["outcome"], "failed");
    assert!(error.contains(&format!("[{kind}]")), "{error}");
    assert!(error.contains(entry), "{error}");
}

#[test]
fn a_migration_added_after_verification_is_refused_and_nothing_runs() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        common::write(
            &w.join("migrations/inventory/099_extra.sql"),
            "CREATE TABLE intruder (x int);",
        )
    });
    assert_refused(
        &report,
        code,
        "added-after-verification",
        "migrations/inventory/099_extra.sql",
    );
    assert!(s.tables().is_empty(), "tables: {:?}", s.tables());
    assert!(common::tree(&s.store).is_empty());
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["lock", "authenticate", "compatibility", "verify", "load"]
    );
}

#[test]
fn a_migration_changed_after_verification_is_refused_and_nothing_runs() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        std::fs::write(
            w.join("migrations/inventory/002_create_stock.sql"),
            "CREATE TABLE stock (x int); CREATE TABLE intruder (y int);",
        )
        .unwrap()
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "migrations/inventory/002_create_stock.sql",
    );
    assert!(s.tables().is_empty(), "tables: {:?}", s.tables());
}

#[test]
fn a_rollback_changed_after_verification_is_refused() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        std::fs::write(
            w.join("rollback/inventory/002_create_stock.sql"),
            "DROP TABLE items;",
        )
        .unwrap()
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "rollback/inventory/002_create_stock.sql",
    );
    assert!(s.tables().is_empty());
}

#[test]
fn a_migration_replaced_by_a_link_is_refused() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        let m = w.join("migrations/inventory/001_create_items.sql");
        // Outside the kit's folder, with the same bytes: still not the verified file.
        let copy = w.parent().unwrap().join("elsewhere.sql");
        std::fs::rename(&m, &copy).unwrap();
        std::os::unix::fs::symlink(&copy, &m).unwrap();
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "migrations/inventory/001_create_items.sql",
    );
    assert!(s.tables().is_empty());
}

#[test]
fn a_migration_replaced_by_a_fifo_is_refused_without_hanging() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        let m = w.join("migrations/inventory/001_create_items.sql");
        std::fs::remove_file(&m).unwrap();
        let made = Command::new("mkfifo").arg(&m).status().unwrap();
        assert!(made.success());
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "migrations/inventory/001_create_items.sql",
    );
    assert!(s.tables().is_empty());
}

#[test]
fn a_seed_replaced_by_a_fifo_is_refused_without_hanging() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        let seed = w.join("seeds/catalog/items.json");
        std::fs::remove_file(&seed).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(&seed)
                .status()
                .unwrap()
                .success()
        );
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "seeds/catalog/items.json",
    );
}

#[test]
fn a_file_removed_after_verification_is_refused() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        std::fs::remove_file(w.join("migrations/inventory/S001_items.sql")).unwrap()
    });
    assert_refused(
        &report,
        code,
        "removed-after-verification",
        "migrations/inventory/S001_items.sql",
    );
    assert!(s.tables().is_empty());
}

#[test]
fn a_seed_changed_after_verification_is_refused_and_never_stored() {
    let s = site();
    let (code, report) = s.apply_tampered(|w| {
        std::fs::write(w.join("seeds/catalog/items.json"), "[\"forged\"]").unwrap()
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "seeds/catalog/items.json",
    );
    // Migrations (verified and unchanged) ran before seeding; the changed seed was never stored,
    // and the ledger records the refused attempt.
    let stored: Vec<String> = common::tree(&s.store);
    assert!(
        !stored.iter().any(|k| k.ends_with("items.json")),
        "{stored:?}"
    );
    assert!(s.tables().iter().any(|t| t == "offkit_kit_applications"));
    // A clean rerun finishes the job from the kit itself.
    let out = s.apply().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        common::tree(&s.store)
            .iter()
            .any(|k| k.ends_with("items.json"))
    );
}

#[test]
fn a_seed_removed_after_verification_is_refused() {
    let s = site();
    let (code, report) =
        s.apply_tampered(|w| std::fs::remove_file(w.join("seeds/catalog/README.txt")).unwrap());
    assert_refused(
        &report,
        code,
        "removed-after-verification",
        "seeds/catalog/README.txt",
    );
}

#[test]
fn the_work_folder_is_removed_after_an_apply() {
    let s = site();
    let out = s.apply().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        common::tree(&s.work).is_empty(),
        "{:?}",
        common::tree(&s.work)
    );
}

#[test]
fn a_kit_with_a_frame_index_is_applied_without_a_copy() {
    let s = indexed_site();
    let (code, report) = s.apply_paused(|work| {
        assert!(
            common::tree(work).is_empty(),
            "verified, and nothing written to the work folder: {:?}",
            common::tree(work)
        );
    });
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["seeds"]["totals"]["put"], 2, "{report:#}");
    assert!(common::tree(&s.work).is_empty());
    assert!(
        common::tree(&s.store)
            .iter()
            .any(|k| k.ends_with("catalog/items.json"))
    );
}

#[test]
fn a_kit_changed_between_verification_and_seeding_is_refused_at_the_changed_frame() {
    let s = indexed_site();
    let header =
        offkit::kit::frame::header_frame_len(&mut std::fs::File::open(&s.kit).unwrap()).unwrap();
    let manifest = common::forge::manifest(&common::forge::read(&s.kit));
    let sizes: Vec<u64> = manifest["payload"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .collect();
    let (code, report) = s.apply_paused(|_| {
        // One byte in the middle of the last payload frame (the seeds sort last: it holds them).
        let mut bytes = std::fs::read(&s.kit).unwrap();
        let last = sizes.last().unwrap();
        let at = (header + sizes.iter().sum::<u64>() - last / 2) as usize;
        bytes[at] ^= 0x55;
        std::fs::write(&s.kit, &bytes).unwrap();
    });
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "seeds/catalog/",
    );
    let error = report["error"]["message"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "the kit changed after it was verified: payload frame {}",
            sizes.len()
        )),
        "{error}"
    );
    // Nothing of the changed kit reached the store (no object; a folder at most).
    let stored = common::tree(&s.store);
    assert!(!stored.iter().any(|k| k.contains('.')), "{stored:?}");
}

/// A paged kit changed while it is being seeded (paused at its first put, one put at a time),
/// in the frames of its first and second pages' seeds: the apply stops at the first changed
/// seed, naming it and its frame, and starts no put after it. Nothing of the kit is stored, the
/// report counts every seed, and the ledger records that seed `failed` and every other
/// `not-run`, none left `planned`.
#[test]
fn a_paged_kit_changed_while_it_is_seeded_stops_at_its_first_changed_seed() {
    let s = paged_site();
    let mut bytes = std::fs::read(&s.kit).unwrap();
    let header = offkit::kit::frame::header_frame_len(&mut std::fs::File::open(&s.kit).unwrap())
        .unwrap() as usize;
    let manifest = common::forge::manifest(&common::forge::read(&s.kit));
    let mut frames = Vec::new(); // (start, size, the first 512 bytes it decompresses to)
    let mut at = header;
    for f in manifest["payload"]["frames"].as_array().unwrap() {
        let size = f["size"].as_u64().unwrap() as usize;
        let plain = zstd::stream::decode_all(&bytes[at..at + size]).unwrap();
        frames.push((at, size, plain[..512.min(plain.len())].to_vec()));
        at += size;
    }
    // Each page is a frame of its own, its seeds' frames right after it.
    let page_frame = |n: u32| {
        let name = format!("index/seeds/{n:08}.sha256");
        frames
            .iter()
            .position(|(_, _, head)| head.starts_with(name.as_bytes()))
            .unwrap_or_else(|| panic!("no frame starts with {name}"))
    };
    let (first, second) = (page_frame(1), page_frame(2));
    for i in [first + 1, second + 1] {
        let (start, size, _) = frames[i];
        bytes[start + size / 2] ^= 0x55;
    }
    let (code, report) = s.apply_paused_at(
        "seed-put:bulk/000/000000.json",
        &["--parallelism", "1"],
        |_| std::fs::write(&s.kit, &bytes).unwrap(),
    );
    assert_refused(
        &report,
        code,
        "changed-after-verification",
        "seeds/bulk/000/000000.json",
    );
    let error = report["error"]["message"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "the kit changed after it was verified: payload frame {}",
            first + 2
        )),
        "{error}"
    );
    let stored = common::tree(&s.store);
    assert!(!stored.iter().any(|k| k.contains('.')), "{stored:?}");
    let outcomes = s.query(
        "SELECT outcome, count(*) FROM offkit_kit_application_objects GROUP BY outcome ORDER BY 1",
    );
    assert_eq!(outcomes, ["failed|1", "not-run|9001"]);
    let seeds = &report["seeds"]["totals"];
    assert_eq!(
        seeds["objects"].as_u64(),
        seeds["failed"]
            .as_u64()
            .zip(seeds["not_run"].as_u64())
            .map(|(f, n)| f + n),
        "{seeds:#}"
    );
    assert_eq!(seeds["objects"].as_u64(), Some(9000 + 2), "{seeds:#}");
}

/// The work folder of a run that was killed (its process gone) is removed by the next apply,
/// whether that one needs a work folder (a kit without a frame index) or not; one whose process is
/// alive is left alone.
#[test]
fn work_folders_of_killed_runs_are_removed_by_the_next_apply() {
    for s in [site(), indexed_site()] {
        killed_run_folder_is_removed(&s);
    }
}

fn killed_run_folder_is_removed(s: &Site) {
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = s.work.join(format!(".offkit-kit-{dead}-AbCdEf"));
    std::fs::create_dir_all(stale.join("seeds/catalog")).unwrap();
    std::fs::write(
        stale.join("seeds/catalog/items.json"),
        "left by a killed run",
    )
    .unwrap();
    let alive = s
        .work
        .join(format!(".offkit-kit-{}-GhIjKl", std::process::id()));
    std::fs::create_dir_all(&alive).unwrap();
    let out = s.apply().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stale.exists(), "the dead run's folder is removed");
    assert!(alive.exists(), "a live process's folder stays");
}
