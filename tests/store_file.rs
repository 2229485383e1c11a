//! The `file://` store: the shared driver suite through the library, and the `offkit store`
//! commands through the real binary.

#[path = "common/store_cli.rs"]
mod cli;
#[path = "common/store_suite.rs"]
mod suite;

use offkit::store::{Store, open_str};

fn store(dir: &std::path::Path) -> Box<dyn Store> {
    open_str(&format!("file://{}", dir.display())).unwrap()
}

fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let (st, src) = (t.path().join("store"), t.path().join("src"));
    (t, st, src)
}

#[test]
fn put_get_skip() {
    let (_t, st, src) = dirs();
    suite::put_get_skip(store(&st).as_ref(), &src);
}

#[test]
fn conflict_stops_and_replace_conflicting() {
    let (_t, st, src) = dirs();
    suite::conflict_stops(store(&st).as_ref(), &src);
}

#[test]
fn dry_run_changes_nothing() {
    let (_t, st, src) = dirs();
    suite::dry_run_changes_nothing(store(&st).as_ref(), &src);
}

#[test]
fn source_mismatch_stores_nothing() {
    let (_t, st, src) = dirs();
    suite::source_mismatch_stores_nothing(store(&st).as_ref(), &src);
}

#[test]
fn large_object_streams() {
    let (_t, st, src) = dirs();
    let s = suite::large_object(store(&st).as_ref(), &src, 64 << 20);
    assert_eq!(
        std::fs::metadata(st.join("big/blob.bin")).unwrap().len(),
        s.size
    );
}

#[test]
fn check_passes() {
    let (_t, st, _src) = dirs();
    suite::check_passes(store(&st).as_ref());
}

#[test]
fn cli_put_dir_ls_get_and_progress_lines() {
    let (t, st, src) = dirs();
    suite::seed_folder(&src, 12, 0);
    let url = format!("file://{}", st.display());
    let (out, stdout, stderr) = cli::run(cli::offkit().args(["store", "put-dir", &url]).arg(&src));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("put 12, skipped 0"), "{stdout}");
    assert!(
        stderr.contains("Progress: 12/12 (100.0%) - Success: 12, Failed: 0, Skipped: 0"),
        "{stderr}"
    );
    let report = t.path().join("report.json");
    let (out, stdout, _) = cli::run(
        cli::offkit()
            .args([
                "store",
                "put-dir",
                "--json",
                "--progress",
                "off",
                "--report",
            ])
            .arg(&report)
            .arg(&url)
            .arg(&src),
    );
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["totals"]["skipped"], 12);
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // The report file is the report; stdout is that report in the JSON contract (its version and
    // the exit code added).
    let mut printed = json.clone();
    let printed = printed.as_object_mut().unwrap();
    assert_eq!(printed.remove("schema_version"), Some(1.into()));
    assert_eq!(printed.remove("exit_code"), Some(0.into()));
    assert_eq!(&file, &serde_json::Value::Object(printed.clone()));
    let (out, stdout, _) =
        cli::run(cli::offkit().args(["store", "ls", &url, "--prefix", "set/01/"]));
    assert!(out.status.success());
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let (out, stdout, _) =
        cli::run(cli::offkit().args(["store", "get", &url, "set/01/obj-005.json"]));
    assert!(out.status.success());
    assert_eq!(stdout, "{\"i\":5}");
    let (out, _, stderr) = cli::run(cli::offkit().args(["store", "get", &url, "set/nope.json"]));
    assert_eq!(out.status.code(), Some(12), "{stderr}");
}

#[test]
fn cli_conflict_exits_12_and_names_the_key() {
    let (_t, st, src) = dirs();
    suite::seed_folder(&src, 3, 0);
    let url = format!("file://{}", st.display());
    assert!(
        cli::run(cli::offkit().args(["store", "put-dir", &url]).arg(&src))
            .0
            .status
            .success()
    );
    std::fs::write(src.join("set/01/obj-001.json"), b"different").unwrap();
    let (out, stdout, stderr) = cli::run(cli::offkit().args(["store", "put-dir", &url]).arg(&src));
    assert_eq!(out.status.code(), Some(12), "{stdout}{stderr}");
    assert!(stderr.contains("set/01/obj-001.json"), "{stderr}");
    assert!(stdout.contains("conflict: set/01/obj-001.json"), "{stdout}");
    assert_eq!(
        std::fs::read(st.join("set/01/obj-001.json")).unwrap(),
        b"{\"i\":1}"
    );
    let (out, stdout, _) = cli::run(
        cli::offkit()
            .args(["store", "put-dir", "--replace-conflicting", &url])
            .arg(&src),
    );
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("replaced 1"), "{stdout}");
    assert_eq!(
        std::fs::read(st.join("set/01/obj-001.json")).unwrap(),
        b"different"
    );
}

#[test]
fn cli_refuses_links_in_the_source_and_bad_keys() {
    let (t, st, src) = dirs();
    suite::seed_folder(&src, 2, 0);
    std::os::unix::fs::symlink("/etc/passwd", src.join("set/passwd")).unwrap();
    let url = format!("file://{}", st.display());
    let (out, _, stderr) = cli::run(cli::offkit().args(["store", "put-dir", &url]).arg(&src));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("set/passwd"), "{stderr}");
    assert!(!st.exists(), "nothing was written");
    let (out, _, _) = cli::run(cli::offkit().args(["store", "get", &url, "../etc/passwd"]));
    assert_eq!(out.status.code(), Some(2));
    let (out, _, _) = cli::run(
        cli::offkit()
            .args(["store", "put-dir", "--prefix", "a/../b", &url])
            .arg(t.path()),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_check_reports_each_step() {
    let (_t, st, _) = dirs();
    let url = format!("file://{}", st.display());
    let (out, stdout, stderr) = cli::run(cli::offkit().args(["store", "check", "--json", &url]));
    assert!(out.status.success(), "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ok"], true);
    let steps: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "list",
            "write",
            "stat",
            "read-back",
            "no-clobber",
            "delete",
            "gone"
        ]
    );
    // A store folder that cannot be written fails the check with exit code 12.
    std::fs::write(st.join("x"), b"").unwrap();
    let blocked = format!("file://{}/x/sub", st.display());
    let (out, stdout, _) = cli::run(cli::offkit().args(["store", "check", &blocked]));
    assert_eq!(out.status.code(), Some(12), "{stdout}");
    assert!(stdout.contains("write        failed"), "{stdout}");
}

#[test]
fn key_safety() {
    let (t, st, src) = dirs();
    suite::key_safety(store(&st).as_ref(), &src);
    // Nothing landed outside the store folder.
    let mut outside: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    outside.sort();
    assert_eq!(outside, ["src", "store"]);
}

#[test]
fn concurrent_seedings_put_each_object_once() {
    let (_t, st, src) = dirs();
    suite::seed_folder(&src, 300, 0);
    let url = format!("file://{}", st.display());
    let (puts, skips) = cli::concurrent_put_dirs(&url, &src, &[]);
    assert_eq!(
        (puts, skips),
        (300, 300),
        "each object is put by exactly one of the two"
    );
    let fp = suite::fingerprint(store(&st).as_ref());
    assert_eq!(fp.len(), 300);
}

/// A real file store with another writer that gets in first: on the first put, it stores
/// `bytes` at the same key (between the plan, which found nothing, and the put).
struct RacedStore {
    inner: Box<dyn Store>,
    bytes: Vec<u8>,
    raced: std::sync::atomic::AtomicBool,
}

impl Store for RacedStore {
    fn url(&self) -> &offkit::store::StoreUrl {
        self.inner.url()
    }
    fn stat(
        &self,
        key: &offkit::kit::path::KitPath,
    ) -> Result<Option<u64>, offkit::store::StoreError> {
        self.inner.stat(key)
    }
    fn get(
        &self,
        key: &offkit::kit::path::KitPath,
        sink: &mut dyn std::io::Write,
    ) -> Result<Option<u64>, offkit::store::StoreError> {
        self.inner.get(key, sink)
    }
    fn put(
        &self,
        req: &offkit::store::PutRequest<'_>,
        body: &mut dyn std::io::Read,
    ) -> Result<(), offkit::store::StoreError> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let sha = offkit::store::stream::digest_of(&self.bytes[..])
                .unwrap()
                .sha256;
            let mut other = offkit::store::stream::DigestReader::new(
                &self.bytes[..],
                req.key.as_str(),
                self.bytes.len() as u64,
                &sha,
            );
            let first = offkit::store::PutRequest {
                size: self.bytes.len() as u64,
                mode: offkit::store::WriteMode::CreateNew,
                ..*req
            };
            self.inner.put(&first, &mut other)?;
        }
        self.inner.put(req, body)
    }
    fn delete(&self, key: &offkit::kit::path::KitPath) -> Result<bool, offkit::store::StoreError> {
        self.inner.delete(key)
    }
    fn list(
        &self,
        under: Option<&offkit::kit::path::KitPath>,
        visit: &mut dyn FnMut(offkit::store::ObjectInfo) -> std::ops::ControlFlow<()>,
    ) -> Result<(), offkit::store::StoreError> {
        self.inner.list(under, visit)
    }
    fn sync(&self) -> Result<(), offkit::store::StoreError> {
        self.inner.sync()
    }
    fn default_parallelism(&self) -> usize {
        1
    }
    fn lookup(&self) -> offkit::store::Lookup {
        self.inner.lookup()
    }
}

#[test]
fn a_writer_between_plan_and_put_is_never_overwritten() {
    use offkit::store::seed::Outcome;
    use offkit::store::{ConflictPolicy, SeedError, SeedOptions};
    let (_t, st, src) = dirs();
    let seeds = [suite::seed_file(&src, "r/a.json", b"ours")];
    let raced = |bytes: &[u8], dir: &str| RacedStore {
        inner: store(&st.join(dir)),
        bytes: bytes.to_vec(),
        raced: Default::default(),
    };
    // The other writer put the same bytes: skipped.
    let s = raced(b"ours", "same");
    let r = suite::seed_from(&s, &src, &seeds, &SeedOptions::default()).unwrap();
    assert_eq!(r.objects[0].outcome, Some(Outcome::Skipped));
    // Different bytes: a conflict, and theirs stay.
    let s = raced(b"theirs", "different");
    let err = suite::seed_from(&s, &src, &seeds, &SeedOptions::default()).unwrap_err();
    assert!(matches!(err, SeedError::Conflicts { .. }), "{err}");
    assert_eq!(
        std::fs::read(st.join("different/r/a.json")).unwrap(),
        b"theirs"
    );
    // Different bytes with --replace-conflicting: replaced, and reported so.
    let s = raced(b"theirs", "replace");
    let opts = SeedOptions {
        conflicts: ConflictPolicy::Replace,
        ..SeedOptions::default()
    };
    let r = suite::seed_from(&s, &src, &seeds, &opts).unwrap();
    assert_eq!(r.objects[0].outcome, Some(Outcome::Replaced));
    assert_eq!(std::fs::read(st.join("replace/r/a.json")).unwrap(), b"ours");
}
