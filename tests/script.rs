//! `offkit migrations script` against a real PostgreSQL, applied with the real `psql -f`: the
//! database it leaves is one that `offkit migrations verify` and `status` find fully applied with
//! equal checksums, and a later `apply` of the same kit runs no migration.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Kit, TestDb, Workspace, outcome};

struct Site {
    ws: Workspace,
    kit: PathBuf,
    public: PathBuf,
}

fn site() -> Site {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&key]);
    Site { ws, kit, public }
}

impl Site {
    fn migrations(&self, cmd: &str, db: &TestDb, extra: &[&str]) -> (i32, String, String) {
        let o = common::cmd()
            .args(["migrations", cmd, "--kit"])
            .arg(&self.kit)
            .arg("--trust")
            .arg(&self.public)
            .args(["--db", &db.url()])
            .args(extra)
            .output()
            .unwrap();
        outcome(&o)
    }
}

fn psql(db: &TestDb, file: &Path) -> (i32, String, String) {
    outcome(
        &Command::new("psql")
            .args(["-X", "-q", "-d", &db.url(), "-f"])
            .arg(file)
            .output()
            .expect("psql"),
    )
}

const EVERYTHING: [&str; 5] = ["--category", "release", "--category", "data", "--force"];

#[test]
fn a_script_applied_with_psql_leaves_what_offkit_would_have() {
    let s = site();
    let db = TestDb::pg();
    let file = s.ws.path("upgrade.sql");
    let mut args = EVERYTHING.to_vec();
    args.extend(["--out", file.to_str().unwrap(), "--batch-size", "3"]);
    let (code, out, err) = s.migrations("script", &db, &args);
    assert_eq!(code, 0, "{out}{err}");
    let sql = std::fs::read_to_string(&file).unwrap();
    assert!(sql.starts_with("-- offkit "), "{sql}");
    assert!(sql.contains("\\set ON_ERROR_STOP on"));
    assert!(
        sql.contains("-- [8/8] concelier/DM001_backfill_linkset_expiry (data)"),
        "{sql}"
    );
    assert!(sql.contains("CREATE INDEX CONCURRENTLY"), "{sql}");
    // Writing the script read the database only.
    assert_eq!(
        db.int("SELECT count(*) FROM information_schema.schemata WHERE schema_name IN ('concelier', 'offkit')"),
        0
    );

    let (code, out, err) = psql(&db, &file);
    assert_eq!(code, 0, "psql: {out}{err}");

    let (code, out, err) = s.migrations("verify", &db, &[]);
    assert_eq!(code, 0, "verify: {out}{err}");
    let (code, out, err) = s.migrations("status", &db, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = status["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 8, "{out}");
    assert!(entries.iter().all(|e| e["state"] == "applied"), "{out}");
    // The checksums recorded are the kit's.
    let manifest = common::forge::manifest(&common::forge::read(&s.kit));
    for m in manifest["modules"][0]["migrations"].as_array().unwrap() {
        let recorded = db.rows(&format!(
            "SELECT checksum, applied_by FROM concelier.schema_migrations WHERE migration_name = '{}'",
            m["name"].as_str().unwrap()
        ));
        assert_eq!(recorded[0][0], m["sha256"].as_str().unwrap());
        assert!(recorded[0][1].ends_with(" (psql script)"), "{recorded:?}");
    }
    // What the migrations did is there: every linkset has its expiry, the index is valid.
    assert_eq!(
        db.int("SELECT count(*) FROM concelier.advisory_linksets WHERE expires_at IS NULL"),
        0
    );
    assert!(db.int("SELECT count(*) FROM concelier.advisory_linksets") > 3);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_index WHERE indexrelid = 'concelier.advisory_linksets_expires_at'::regclass AND indisvalid"),
        1
    );
    assert_eq!(
        db.rows("SELECT CAST(finished_at IS NOT NULL AS int) || ' ' || batches_done FROM offkit.data_migration_progress"),
        [[format!("1 {}", db.int("SELECT (count(*) + 2) / 3 FROM concelier.advisory_linksets"))]],
        "the checkpoint is finished, batches of 3"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM offkit.migration_in_progress"),
        0
    );

    // A later script has nothing to do, and apply runs no migration.
    let (code, out, err) = s.migrations("script", &db, &EVERYTHING);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 migration(s) pending"), "{out}");
    let o = common::cmd()
        .arg("apply")
        .arg(&s.kit)
        .arg("--trust")
        .arg(&s.public)
        .args(["--db", &db.url(), "--store"])
        .arg(format!("file://{}", s.ws.path("store").display()))
        .args(["--category", "release", "--progress", "off", "--json"])
        .output()
        .unwrap();
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["migrations"]["counts"]["applied"], 0, "{out}");
    assert_eq!(
        report["migrations"]["counts"]["already_applied"], 8,
        "{out}"
    );
}

#[test]
fn the_script_refuses_what_a_run_would_and_what_psql_would_misread() {
    let s = site();
    let db = TestDb::pg();
    // Release migrations are a manual gate, as for run.
    let (code, _, err) = s.migrations("script", &db, &["--category", "release"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("release migrations are a manual gate"),
        "{err}"
    );
    // A SQLite database is offkit's own.
    let kit = Kit::new();
    kit.mig("core", "001_t", "CREATE TABLE t (a int);");
    let lite = TestDb::sqlite();
    let o = common::cmd()
        .args(["migrations", "script", "--source"])
        .arg(kit.path())
        .args(["--db", &lite.url()])
        .output()
        .unwrap();
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("writes PostgreSQL SQL for psql"), "{err}");

    // A backslash outside quotes would be a psql meta-command (\! runs a shell command).
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_t",
        "CREATE TABLE t (a text DEFAULT '\\\\ok');\n\\! touch /tmp/offkit-pwned\n",
    );
    let o = common::cmd()
        .args(["migrations", "script", "--source"])
        .arg(kit.path())
        .args(["--db", &db.url()])
        .output()
        .unwrap();
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("core/001_t") && err.contains(":2): a backslash outside quotes"),
        "{err}"
    );
    assert!(out.is_empty(), "no script was printed: {out}");
}
