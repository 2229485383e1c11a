//! Crash safety of seeding, for each driver: `offkit store put-dir` is SIGKILLed at each seeding
//! step boundary (a named failpoint), the store is inspected — every object in it complete and
//! correct, the interrupted one absent or whole — then the command is run again, and the store
//! must end identical to an uninterrupted seeding (same sorted key + SHA-256 list; for the file
//! store, also no stray file on disk). A third run must change nothing.

#[path = "common/store_cli.rs"]
mod cli;
#[path = "common/store_pg.rs"]
mod pg;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_suite.rs"]
mod suite;

use std::path::Path;

use offkit::kit::path::KitPath;
use offkit::store::open_str;

/// Failpoints to kill at, and whether the object they name must exist right after the kill.
const KILL_POINTS: &[(&str, Option<bool>)] = &[
    ("seed-put:set/01/obj-005.json", Some(false)),
    ("seed-put-streaming:set/00/obj-004.json", Some(false)),
    ("seed-put-streaming:set/large/blob.bin", Some(false)),
    ("seed-committed:set/large/blob.bin", Some(true)),
    ("seed-committed:*", None),
];

/// Runs the whole scenario against stores made by `url_for(round)`.
fn crash_and_resume(
    env: &[(&'static str, String)],
    url_for: &mut dyn FnMut(&str) -> String,
    on_disk: Option<&dyn Fn(&str) -> std::path::PathBuf>,
) {
    let src = tempfile::tempdir().unwrap();
    suite::seed_folder(src.path(), 24, 20 << 20);
    let put_dir = |url: &str| {
        let mut c = cli::offkit();
        c.args([
            "store",
            "put-dir",
            "--parallelism",
            "2",
            "--progress",
            "lines",
            url,
        ])
        .arg(src.path())
        .envs(env.iter().cloned());
        c
    };
    let fingerprint = |url: &str| {
        let store = open_str(&with_env(url, env)).unwrap();
        suite::fingerprint(store.as_ref())
    };
    let reference_url = url_for("reference");
    let (out, stdout, stderr) = cli::run(&mut put_dir(&reference_url));
    assert!(out.status.success(), "{stdout}{stderr}");
    let reference = fingerprint(&reference_url);
    assert_eq!(reference.len(), 25);

    for (i, (point, exists)) in KILL_POINTS.iter().enumerate() {
        let round = format!("round{i}");
        let url = url_for(&round);
        let reached = cli::kill_at_failpoint(&mut put_dir(&url), point, |_| {});
        // Right after the kill: only complete, correct objects.
        let partial = fingerprint(&url);
        for entry in &partial {
            assert!(
                reference.contains(entry),
                "{point}: partial or wrong object {entry:?}"
            );
        }
        if let Some(expected) = exists {
            let key = reached.split_once(':').unwrap().1;
            let store = open_str(&with_env(&url, env)).unwrap();
            let present = store.stat(&KitPath::new(key).unwrap()).unwrap().is_some();
            assert_eq!(
                present, *expected,
                "{point}: object {key} present={present}"
            );
        }
        // Rerun: finishes, and the store is exactly the uninterrupted one.
        let (out, stdout, stderr) = cli::run(&mut put_dir(&url));
        assert!(
            out.status.success(),
            "{point}: rerun failed\n{stdout}{stderr}"
        );
        assert_eq!(
            fingerprint(&url),
            reference,
            "{point}: store differs after rerun"
        );
        assert!(stderr.contains("Progress: 25/25 (100.0%)"), "{stderr}");
        if let Some(dir) = on_disk {
            assert_eq!(
                files_on_disk(&dir(&round)),
                files_on_disk(&dir("reference")),
                "{point}"
            );
        }
        // And a third run changes nothing.
        let (out, stdout, _) = cli::run(put_dir(&url).arg("--json"));
        assert!(out.status.success());
        let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(r["totals"]["skipped"], 25, "{point}: {stdout}");
    }
}

/// Credentials given to the binary through the environment are given to the library in the URL.
fn with_env(url: &str, env: &[(&'static str, String)]) -> String {
    let mut u = url.to_owned();
    for (k, v) in env {
        match *k {
            "AWS_ACCESS_KEY_ID" => u.push_str(&format!("&access_key_id={v}")),
            "AWS_SECRET_ACCESS_KEY" => u.push_str(&format!("&secret_access_key={v}")),
            _ => {}
        }
    }
    u
}

/// Every file under `dir`, relative, sorted, with its size: strays would show here.
fn files_on_disk(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, e.metadata().unwrap().len())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn file_store_crash_at_each_step_then_resume() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().to_path_buf();
    let dir = move |round: &str| base.join(round);
    let dir2 = dir.clone();
    crash_and_resume(
        &[],
        &mut |round| format!("file://{}", dir(round).display()),
        Some(&dir2),
    );
}

#[test]
fn s3_store_crash_at_each_step_then_resume() {
    let server = s3::S3Server::start();
    let env = server.env();
    crash_and_resume(
        &env,
        &mut |round| {
            server.bucket(round);
            server.url(round, "kit")
        },
        None,
    );
}

#[test]
fn postgres_store_crash_at_each_step_then_resume() {
    let db = pg::TestDb::create("crash");
    crash_and_resume(
        &[],
        &mut |round| db.store_url(&format!("seeds.{round}")),
        None,
    );
}
