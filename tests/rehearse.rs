//! `--rehearse` against a real PostgreSQL and SQLite: the plan runs in one transaction that is
//! rolled back; the report says per migration how long it took, the rows it changed and the
//! locks it took; no-transaction migrations are listed as not rehearsable; and a full dump of
//! the database (schema, data, history, checkpoints) and the store are unchanged. `apply
//! --rehearse` records the rehearsal in the ledger with its report's SHA-256.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Kit, TestDb, Workspace, outcome};
use offkit::migrate::report::Outcome;
use offkit::migrate::{Category, ReleaseGate, RunFailure, RunMode, RunOptions, RunReport, Safety};

/// Everything in the database, as the ecosystem's own tools dump it (`pg_dump`; Python's
/// `sqlite3.iterdump`), except the apply ledger's rows when `ledger` is false.
fn dump(db: &TestDb, ledger: bool) -> String {
    let out = if db.is_pg() {
        let mut c = Command::new("pg_dump");
        c.args(["--no-owner", "--no-privileges", "--dbname", &db.url()]);
        if !ledger {
            c.arg("--exclude-table-data=offkit.kit_applications");
        }
        c.output().expect("pg_dump")
    } else {
        let path = db.url().trim_start_matches("sqlite://").to_owned();
        let skip = if ledger {
            ""
        } else {
            "offkit_kit_applications"
        };
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 [print(l) for l in c.iterdump() if not (sys.argv[2] and l.startswith('INSERT INTO \"'+sys.argv[2]+'\"'))]",
                &path,
                skip,
            ])
            .output()
            .expect("python3")
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // pg_dump brackets its output with a random \restrict key.
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts two dumps are equal, printing only the lines that differ.
fn assert_same(after: &str, before: &str, what: &str) {
    if after != before {
        let b: Vec<&str> = before.lines().collect();
        let a: Vec<&str> = after.lines().collect();
        let gone: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
        let new: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
        panic!("{what}: the dump changed\n  gone: {gone:?}\n  new: {new:?}");
    }
}

fn opts(mode: RunMode) -> RunOptions {
    RunOptions {
        categories: Category::ALL.into_iter().collect(),
        release: ReleaseGate::Force,
        mode,
        batch_size: 4,
        ..RunOptions::default()
    }
}

fn run(db: &TestDb, kit: &Kit, o: &RunOptions) -> Result<RunReport, RunFailure> {
    let mut s = db.session();
    let mut locked = s.lock(Duration::from_secs(10)).expect("lock");
    locked.run(&kit.set(), o)
}

/// A database with one applied migration and ten rows, and a kit with more to do.
fn scenario(db: &TestDb) -> Kit {
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER);\n\
         INSERT INTO items (id, name) VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e'),(6,'f'),(7,'g'),(8,'h'),(9,'i'),(10,'j');",
    );
    run(db, &kit, &opts(RunMode::Apply)).unwrap();
    let index = if db.is_pg() {
        "-- offkit:no-transaction\nCREATE INDEX CONCURRENTLY items_name ON items (name);"
    } else {
        "-- offkit:no-transaction\nCREATE INDEX items_name ON items (name);"
    };
    kit.mig("core", "002_note", "ALTER TABLE items ADD COLUMN note TEXT;")
        .mig("core", "003_rename", "UPDATE items SET name = upper(name) WHERE id <= 7;")
        .mig("core", "004_index", index)
        .mig(
            "core",
            "DM001_score",
            "UPDATE items SET score = id * 10 WHERE id IN (SELECT id FROM items WHERE score IS NULL ORDER BY id LIMIT :batch_size);",
        );
    kit
}

fn step<'a>(r: &'a RunReport, name: &str) -> &'a offkit::migrate::report::Step {
    r.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} in {r}"))
}

fn rehearsal_changes_nothing_and_reports_rows_and_locks(db: &TestDb) {
    let kit = scenario(db);
    let before = dump(db, true);
    let r = run(db, &kit, &opts(RunMode::Rehearse)).unwrap();
    assert!(r.rehearsal, "{r}");
    assert_same(&dump(db, true), &before, "a rehearsal leaves no trace");

    let alter = step(&r, "002_note");
    assert_eq!(alter.outcome, Outcome::Rehearsed, "{r}");
    assert!(alter.duration_ms.is_some());
    let update = step(&r, "003_rename");
    assert_eq!(update.rehearsal.as_ref().unwrap().rows, 7, "{r}");
    assert_eq!(step(&r, "004_index").outcome, Outcome::NotRehearsable);
    let data = step(&r, "DM001_score");
    assert_eq!(data.rehearsal.as_ref().unwrap().rows, 10, "{r}");
    assert_eq!(data.data.as_ref().unwrap().batches, 3, "batches of 4: {r}");
    assert_eq!(r.counts.rehearsed, 3);
    assert_eq!(r.counts.not_rehearsable, 1);
    assert_eq!(r.counts.applied, 0);
    let text = r.to_string();
    assert!(
        text.contains("Rehearsal (one transaction, rolled back"),
        "{text}"
    );
    assert!(text.contains("NOT REHEARSABLE core/004_index"), "{text}");

    let locks: Vec<(String, String)> = alter
        .rehearsal
        .as_ref()
        .unwrap()
        .locks
        .iter()
        .map(|l| (l.relation.clone(), l.mode.clone()))
        .collect();
    if db.is_pg() {
        assert!(
            locks.contains(&("core.items".to_owned(), "AccessExclusiveLock".to_owned())),
            "{locks:?}"
        );
        let update_locks = &update.rehearsal.as_ref().unwrap().locks;
        // The ALTER's exclusive lock is already held: the UPDATE adds only its row lock mode.
        assert!(
            update_locks
                .iter()
                .all(|l| l.relation != "core.items" || l.mode == "RowExclusiveLock"),
            "{update_locks:?}"
        );
    } else {
        // The runner already holds the whole file exclusively: a migration takes nothing more.
        assert_eq!(locks, []);
    }

    // The real run afterwards applies what the rehearsal showed.
    let real = run(db, &kit, &opts(RunMode::Apply)).unwrap();
    assert_eq!(real.counts.applied, 4, "{real}");
    assert_eq!(
        db.int(&format!(
            "SELECT count(*) FROM {} WHERE score = id * 10",
            db.table("core", "items")
        )),
        10
    );
}

#[test]
fn pg_rehearsal_changes_nothing_and_reports_rows_and_locks() {
    rehearsal_changes_nothing_and_reports_rows_and_locks(&TestDb::pg());
}

#[test]
fn sqlite_rehearsal_changes_nothing_and_reports_rows() {
    rehearsal_changes_nothing_and_reports_rows_and_locks(&TestDb::sqlite());
}

#[test]
fn a_rehearsal_reports_failures_lock_timeouts_and_own_commits_and_still_changes_nothing() {
    let db = TestDb::pg();
    let kit = scenario(&db);
    kit.mig(
        "core",
        "005_broken",
        "ALTER TABLE items ADD COLUMN nope nosuchtype;",
    );
    let before = dump(&db, true);
    let f = run(&db, &kit, &opts(RunMode::Rehearse)).unwrap_err();
    assert_eq!(step(&f.report, "005_broken").outcome, Outcome::Failed);
    assert_eq!(step(&f.report, "002_note").outcome, Outcome::Rehearsed);
    assert!(f.to_string().contains("nosuchtype"), "{f}");
    assert_same(&dump(&db, true), &before, "rehearsal");

    // Another session holds the table: the rehearsal gives up after lock_timeout and retries.
    std::fs::remove_file(kit.path().join("migrations/core/005_broken.sql")).unwrap();
    let mut holder = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE core.items IN ACCESS SHARE MODE")
        .unwrap();
    let mut o = opts(RunMode::Rehearse);
    o.safety = Safety {
        lock_timeout: Some(Duration::from_millis(100)),
        lock_retries: 1,
        retry_pause: Duration::from_millis(10),
        ..Safety::default()
    };
    let f = run(&db, &kit, &o).unwrap_err();
    let alter = step(&f.report, "002_note");
    assert_eq!(alter.outcome, Outcome::Failed, "{}", f.report);
    assert!(
        f.to_string()
            .contains("lock_timeout 100ms from this run's option; gave up after 2 attempts"),
        "{f}"
    );
    holder.batch_execute("COMMIT").unwrap();
    assert_same(&dump(&db, true), &before, "rehearsal");

    // A file that commits by itself would end the rehearsal's transaction (and split a real
    // run's): refused when the migrations are loaded, before anything runs.
    kit.mig(
        "core",
        "002_note",
        "BEGIN;\nALTER TABLE items ADD COLUMN note TEXT;\nCOMMIT;",
    );
    let err = offkit::migrate::MigrationSet::load(kit.path(), &Default::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("002_note.sql:1: a migration must not end or open its own transaction"),
        "{err}"
    );
}

fn apply(ws: &Workspace, kit: &Path, public: &Path, db: &TestDb, extra: &[&str]) -> Command {
    let mut c = common::cmd();
    c.args(["apply", kit.to_str().unwrap(), "--trust"])
        .arg(public)
        .args(["--db", &db.url(), "--store"])
        .arg(format!("file://{}", ws.path("store").display()))
        .args(["--progress", "off", "--category", "release"])
        .args(extra);
    c
}

#[test]
fn apply_rehearse_is_recorded_in_the_ledger_and_changes_nothing_else() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("concelier-lnm"), &[&key]);
    let db = TestDb::pg();
    // The ledger exists once anything was applied; start from a site that has applied nothing
    // but has the ledger, so that only the rehearsal's own row may differ.
    let before = dump(&db, false);
    let report = ws.path("rehearsal.json");
    let o = apply(&ws, &kit, &public, &db, &["--rehearse", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("takes the same locks as the real run"),
        "warned before it starts: {err}"
    );
    assert!(
        out.contains("REHEARSED (rehearsal: rolled back, nothing changed)"),
        "{out}"
    );
    assert!(out.contains("rehearsed"), "{out}");
    assert!(
        common::tree(&ws.path("store")).is_empty(),
        "seeds were only planned"
    );
    let after = dump(&db, false);
    // Only the ledger table itself may have appeared.
    let strip = |d: &str| {
        d.lines()
            .filter(|l| !l.contains("kit_applications") && !l.contains("CREATE SCHEMA offkit"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        !after.contains("concelier.schema_migrations") && !after.contains("advisory_linksets"),
        "no migration persisted"
    );
    assert_eq!(
        strip(&after)
            .lines()
            .filter(|l| l.starts_with("CREATE TABLE"))
            .count(),
        strip(&before)
            .lines()
            .filter(|l| l.starts_with("CREATE TABLE"))
            .count()
    );
    let rows = db.rows("SELECT outcome, report_sha256 FROM offkit.kit_applications");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "rehearsed");
    assert_eq!(
        rows[0][1],
        offkit::util::sha256_hex(&std::fs::read(&report).unwrap()),
        "the ledger names the report"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["rehearsal"], true);
    assert_eq!(json["outcome"], "rehearsed");
    let steps = json["migrations"]["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["outcome"] == "rehearsed"
            && !s["rehearsal"]["locks"].as_array().unwrap().is_empty())
    );

    // A rehearsal is not an application: the real apply runs everything.
    let (code, out, err) = outcome(&apply(&ws, &kit, &public, &db, &[]).output().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    assert!(db.int("SELECT count(*) FROM concelier.schema_migrations") > 0);
}
