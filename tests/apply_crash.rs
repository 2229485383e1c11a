//! Crash safety of `offkit apply`: the process is SIGKILLed at each step boundary (a failpoint
//! names the step), `apply` is run again, and the database, the ledger and the object store must
//! end exactly as after an uninterrupted apply — every migration applied once, every batch once,
//! every object once — with the ledger showing both attempts.

mod common;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_cli.rs"]
mod store_cli;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestDb, Workspace, outcome};

/// Every step boundary of an apply of the example PostgreSQL kit. No-transaction migrations are
/// the one designed exception (see `no_transaction_crash_needs_the_operator` below).
const FAILPOINTS: &[&str] = &[
    "lock-acquired",
    "apply:locked",
    "apply:ledger-started",
    "migration-committed:001_advisory_raw",
    "migration-committed:100_lnm_shards_ttl",
    "migration-committed:S002_demo_linksets",
    "data-batch-executed:DM001_backfill_linkset_expiry:2",
    "data-batch-committed:DM001_backfill_linkset_expiry:3",
    "migration-committed:DM001_backfill_linkset_expiry",
    "apply:migrations-done",
    "seed-put:*",
    "seed-put-streaming:*",
    "seed-committed:*",
    "apply:seeds-done",
    "apply:before-ledger-finish",
];

struct Target {
    db: TestDb,
    store: String,
    store_dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

fn apply_cmd(ws: &Workspace, kit: &Path, public: &Path, t: &Target) -> Command {
    let mut c = store_cli::offkit();
    c.args([
        "apply",
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
    ])
    .args(["--db", &t.db.url(), "--store", &t.store])
    .args([
        "--category",
        "release",
        "--batch-size",
        "400",
        "--progress",
        "off",
    ])
    .arg("--work-dir")
    .arg(ws.dir.path())
    .envs(t.env.clone());
    c
}

/// Schema, data, migration history and store content: what must not depend on a crash.
fn fingerprint(t: &Target) -> String {
    let db = &t.db;
    let mut s = db.fingerprint("concelier");
    for q in [
        "SELECT migration_name || ' ' || checksum FROM concelier.schema_migrations ORDER BY 1",
        "SELECT count(*) || ' ' || count(expires_at) || ' ' || min(id) || ' ' || max(id) FROM concelier.advisory_linksets",
        "SELECT string_agg(source || ':' || shard || ':' || ttl_days, ',' ORDER BY source) FROM concelier.lnm_shard_map",
        "SELECT md5(string_agg(id || ':' || coalesce(expires_at::text, '-'), ',' ORDER BY id)) FROM concelier.advisory_linksets",
    ] {
        for row in db.rows(q) {
            s.push('\n');
            s.push_str(&row.join(" "));
        }
    }
    let mut objects: Vec<String> = walkdir::WalkDir::new(&t.store_dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            format!(
                "{} {}",
                e.path().strip_prefix(&t.store_dir).unwrap().display(),
                offkit::util::sha256_file(e.path()).unwrap()
            )
        })
        .collect();
    objects.sort();
    s.push('\n');
    s.push_str(&objects.join("\n"));
    s
}

fn crash_at_each_step(make_target: &dyn Fn(&str) -> Target) {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&key]);

    let reference = make_target("reference");
    let (code, out, err) = outcome(&apply_cmd(&ws, &kit, &public, &reference).output().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    let expected = fingerprint(&reference);
    assert!(
        expected.contains("DM001_backfill_linkset_expiry"),
        "{expected}"
    );
    assert!(
        expected.contains("seeds") || expected.contains(".json"),
        "{expected}"
    );

    for (i, point) in FAILPOINTS.iter().enumerate() {
        let t = make_target(&format!("crash{i}"));
        let reached =
            store_cli::kill_at_failpoint(&mut apply_cmd(&ws, &kit, &public, &t), point, |_| {});
        let (code, out, err) = outcome(&apply_cmd(&ws, &kit, &public, &t).output().unwrap());
        assert_eq!(code, 0, "rerun after a kill at {reached}: {out}{err}");
        assert_eq!(
            fingerprint(&t),
            expected,
            "state after a kill at {reached} differs"
        );

        // Every migration once; the ledger shows both attempts when the first got to record one.
        assert_eq!(
            t.db.int("SELECT count(*) FROM concelier.schema_migrations"),
            8,
            "at {reached}"
        );
        let ledger: Vec<String> =
            t.db.rows("SELECT outcome FROM offkit.kit_applications ORDER BY id")
                .into_iter()
                .map(|r| r[0].clone())
                .collect();
        let started_ledger = FAILPOINTS
            .iter()
            .position(|p| *p == "apply:ledger-started")
            .unwrap();
        if i >= started_ledger {
            assert_eq!(
                ledger,
                ["interrupted", "succeeded"],
                "ledger after a kill at {reached}"
            );
        } else {
            assert_eq!(ledger, ["succeeded"], "ledger after a kill at {reached}");
        }
        // No half-written objects or temporary files are left in the store.
        let names: Vec<String> = walkdir::WalkDir::new(&t.store_dir)
            .into_iter()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(".offkit")),
            "temporary files left at {reached}: {names:?}"
        );
    }
}

#[test]
fn postgres_and_file_store_survive_a_kill_at_every_step() {
    let root = tempfile::tempdir().unwrap();
    crash_at_each_step(&|name| {
        let dir = root.path().join(name);
        Target {
            db: TestDb::pg(),
            store: format!("file://{}", dir.display()),
            store_dir: dir,
            env: Vec::new(),
        }
    });
}

#[test]
fn postgres_and_s3_survive_a_kill_at_every_step() {
    let server = s3::S3Server::start();
    crash_at_each_step(&|name| {
        let bucket = server.bucket(&name.to_lowercase());
        Target {
            db: TestDb::pg(),
            store: server.url(&bucket, ""),
            store_dir: server.bucket_dir(&bucket),
            env: server.env(),
        }
    });
}

/// A kill while a no-transaction migration runs leaves it "in progress": nobody can know whether
/// `CREATE INDEX CONCURRENTLY` finished, so apply refuses (exit 9) and says what to check, and
/// after `migrations resolve` the next apply finishes the job.
#[test]
fn no_transaction_crash_needs_the_operator() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&key]);
    let root = tempfile::tempdir().unwrap();
    let t = Target {
        db: TestDb::pg(),
        store: format!("file://{}", root.path().display()),
        store_dir: root.path().to_path_buf(),
        env: Vec::new(),
    };
    store_cli::kill_at_failpoint(
        &mut apply_cmd(&ws, &kit, &public, &t),
        "no-transaction-executed:101_lnm_linkset_expiry_index",
        |_| {},
    );
    let (code, out, err) = outcome(&apply_cmd(&ws, &kit, &public, &t).output().unwrap());
    assert_eq!(code, 9, "{out}{err}");
    assert!(
        err.contains("in progress") && err.contains("migrations resolve"),
        "{err}"
    );
    let (code, out, err) = outcome(
        &store_cli::offkit()
            .args([
                "migrations",
                "resolve",
                "101_lnm_linkset_expiry_index",
                "--module",
                "concelier",
                "--applied",
            ])
            .args([
                "--db",
                &t.db.url(),
                "--kit",
                kit.to_str().unwrap(),
                "--trust",
                public.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = outcome(&apply_cmd(&ws, &kit, &public, &t).output().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        t.db.int("SELECT count(*) FROM concelier.schema_migrations"),
        8
    );
    let ledger: Vec<String> =
        t.db.rows("SELECT outcome FROM offkit.kit_applications ORDER BY id")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
    assert_eq!(ledger, ["interrupted", "failed", "succeeded"]);
}
