//! Runner scenarios through the library API, each on a fresh PostgreSQL database and on a fresh
//! SQLite file: install, upgrade determinism, re-run, drift, missing, out of order, failures,
//! release gate, dry run, data migrations, rollback, and no-transaction migrations.

mod common;

use std::time::Duration;

use common::{Kit, TestDb};
use offkit::migrate::ops::{Resolution, RollbackOptions, RollbackTarget};
use offkit::migrate::report::Outcome;
use offkit::migrate::{
    Category, MigrateError, Missing, ModuleFilter, OnError, OutOfOrder, ReleaseGate, RunFailure,
    RunMode, RunOptions, RunReport, State,
};

fn run(db: &TestDb, kit: &Kit, opts: &RunOptions) -> Result<RunReport, RunFailure> {
    let mut s = db.session();
    let mut locked = s.lock(Duration::from_secs(10)).expect("lock");
    locked.run(&kit.set(), opts)
}

fn everything() -> RunOptions {
    RunOptions {
        categories: Category::ALL.into_iter().collect(),
        release: ReleaseGate::Force,
        ..RunOptions::default()
    }
}

fn applied_by_run(r: &RunReport) -> Vec<String> {
    r.applied_names()
}

fn base_kit() -> Kit {
    let kit = Kit::new();
    kit.mig("core", "001_init", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);")
        .mig("core", "002_tags", "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);\nCREATE INDEX tags_label ON tags (label);")
        .mig("core", "S001_items", "INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b');")
        .mig("core", "100_note", "ALTER TABLE items ADD COLUMN note TEXT;");
    kit
}

fn clean_install_then_rerun_is_noop(db: &TestDb) {
    let kit = base_kit();
    let first = run(db, &kit, &RunOptions::default()).unwrap();
    assert_eq!(
        applied_by_run(&first),
        ["core/001_init", "core/002_tags", "core/S001_items"]
    );
    assert_eq!(first.counts.not_selected, 1, "release is gated: {first}");
    let all = format!(
        "SELECT migration_name, category, checksum, CAST(applied_at AS TEXT), applied_by, duration_ms \
         FROM {} ORDER BY migration_name",
        db.history("core")
    );
    let history = db.rows(&all);
    assert_eq!(history.len(), 3);
    assert_eq!(
        history[2][..2],
        ["S001_items".to_owned(), "seed".to_owned()]
    );
    let second = run(db, &kit, &RunOptions::default()).unwrap();
    assert!(applied_by_run(&second).is_empty(), "{second}");
    assert_eq!(second.counts.already_applied, 3);
    let again = db.rows(&all);
    assert_eq!(history, again, "a re-run must not touch the history");
    assert_eq!(
        db.int(&format!(
            "SELECT count(*) FROM {}",
            db.table("core", "items")
        )),
        2
    );
}

fn upgrade_in_steps_matches_clean_install(db: &TestDb) {
    let other = if db.is_pg() {
        TestDb::pg()
    } else {
        TestDb::sqlite()
    };
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_init",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
    )
    .mig(
        "core",
        "S001_items",
        "INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    run(db, &kit, &everything()).unwrap();
    kit.mig(
        "core",
        "002_tags",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items (id));",
    )
    .mig(
        "core",
        "100_done",
        "ALTER TABLE items ADD COLUMN done INTEGER NOT NULL DEFAULT 0;",
    );
    run(db, &kit, &everything()).unwrap();
    kit.mig("core", "003_idx", "CREATE INDEX items_name ON items (name);")
        .mig("core", "S002_more", "INSERT INTO items (id, name) VALUES (4, 'd');")
        .mig(
            "core",
            "DM001_done",
            "UPDATE items SET done = 1 WHERE id IN (SELECT id FROM items WHERE done = 0 ORDER BY id LIMIT :batch_size)",
        );
    run(db, &kit, &everything()).unwrap();
    let clean = run(&other, &kit, &everything()).unwrap();
    assert_eq!(clean.counts.applied, 7, "{clean}");
    assert_eq!(db.fingerprint("core"), other.fingerprint("core"));
    assert!(db.fingerprint("core").contains("items_name"));
    assert_eq!(db.applied("core"), other.applied("core"));
    let data = |d: &TestDb| {
        d.rows(&format!(
            "SELECT id, name, done FROM {} ORDER BY id",
            d.table("core", "items")
        ))
    };
    assert_eq!(data(db), data(&other));
}

fn drift_is_refused(db: &TestDb) {
    let kit = base_kit();
    run(db, &kit, &RunOptions::default()).unwrap();
    kit.mig(
        "core",
        "002_tags",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT, extra TEXT);",
    )
    .mig("core", "003_next", "CREATE TABLE next_one (id INTEGER);");
    let status = db.session().status(&kit.set(), &ModuleFilter::All).unwrap();
    assert!(
        status
            .entries
            .iter()
            .any(|e| e.name == "002_tags" && matches!(e.state, State::Drift { .. }))
    );
    let err = run(db, &kit, &RunOptions::default()).unwrap_err();
    assert!(
        matches!(&err.error, MigrateError::State { problems } if problems.len() == 1),
        "{err}"
    );
    assert!(err.to_string().contains("drift"), "{err}");
    assert!(
        !db.applied("core").contains(&"003_next".to_owned()),
        "nothing runs past drift"
    );
}

fn missing_is_reported(db: &TestDb) {
    let kit = base_kit();
    run(db, &kit, &RunOptions::default()).unwrap();
    kit.remove("migrations/core/002_tags.sql");
    let err = run(db, &kit, &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("002_tags: missing"), "{err}");
    let ok = run(
        db,
        &kit,
        &RunOptions {
            missing: Missing::Allow,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ok.allowed_problems.len(), 1);
    assert!(matches!(
        ok.allowed_problems[0].state,
        State::Missing { .. }
    ));
}

fn out_of_order_refused_then_allowed(db: &TestDb) {
    let kit = Kit::new();
    kit.mig("core", "001_a", "CREATE TABLE a (x INTEGER);").mig(
        "core",
        "003_c",
        "CREATE TABLE c (x INTEGER);",
    );
    run(db, &kit, &RunOptions::default()).unwrap();
    kit.mig("core", "002_b", "CREATE TABLE b (x INTEGER);");
    let err = run(db, &kit, &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("002_b: out of order"), "{err}");
    assert_eq!(db.applied("core"), ["001_a", "003_c"]);
    let opts = RunOptions {
        out_of_order: OutOfOrder::Allow,
        ..RunOptions::default()
    };
    let ok = run(db, &kit, &opts).unwrap();
    assert_eq!(applied_by_run(&ok), ["core/002_b"]);
}

fn failing_migration_rolls_back_with_history_row(db: &TestDb) {
    let kit = Kit::new();
    kit.mig("core", "001_a", "CREATE TABLE a (x INTEGER);")
        .mig(
            "core",
            "002_bad",
            "CREATE TABLE partial (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
        )
        .mig("core", "003_c", "CREATE TABLE c (x INTEGER);");
    let err = run(db, &kit, &RunOptions::default()).unwrap_err();
    let MigrateError::MigrationFailed(failed) = &err.error else {
        panic!("unexpected error {err}");
    };
    assert_eq!(failed.name, "002_bad");
    assert!(!failed.no_transaction);
    if db.is_pg() {
        assert_eq!(
            failed.line,
            Some(2),
            "PostgreSQL points at the failing line"
        );
    }
    assert_eq!(err.report.applied_names(), ["core/001_a"]);
    assert!(
        err.to_string()
            .contains("Applied by this run before the failure (1): core/001_a"),
        "{err}"
    );
    assert_eq!(err.report.steps[2].outcome, Outcome::NotRun);
    assert_eq!(db.applied("core"), ["001_a"]);
    let partial = if db.is_pg() {
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'partial'"
    } else {
        "SELECT count(*) FROM sqlite_master WHERE name = 'partial'"
    };
    assert_eq!(
        db.int(partial),
        0,
        "the failed migration's table was rolled back"
    );
}

fn release_gate_and_dry_run(db: &TestDb) {
    let kit = base_kit();
    // A plan needs no lock and is a dry run whatever the options say.
    let plan = db.session().plan(&kit.set(), &everything()).unwrap();
    assert!(plan.dry_run);
    let names: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.outcome))
        .collect();
    assert_eq!(
        names,
        [
            ("001_init", Outcome::Planned),
            ("002_tags", Outcome::Planned),
            ("100_note", Outcome::Planned),
            ("S001_items", Outcome::Planned)
        ]
    );
    assert!(plan.steps.iter().all(|s| s.checksum.len() == 64));
    let tables = if db.is_pg() {
        "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('core', 'offkit')"
    } else {
        "SELECT count(*) FROM sqlite_master"
    };
    assert_eq!(db.int(tables), 0, "a dry run creates nothing");
    let gated = RunOptions {
        release: ReleaseGate::Refuse,
        ..everything()
    };
    let err = run(db, &kit, &gated).unwrap_err();
    assert!(
        matches!(err.error, MigrateError::ReleaseGate { .. }),
        "{err}"
    );
    assert!(
        err.report
            .steps
            .iter()
            .all(|s| s.outcome == Outcome::Planned),
        "the refused plan is shown"
    );
    assert_eq!(
        db.int(tables),
        0,
        "the gate refuses before anything runs or is created"
    );
    run(db, &kit, &everything()).unwrap();
    assert_eq!(db.applied("core").len(), 4);
}

fn data_kit() -> Kit {
    let kit = Kit::new();
    let values: Vec<String> = (1..=10).map(|i| format!("({i}, 'n{i}')")).collect();
    kit.mig("core", "001_items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, done INTEGER NOT NULL DEFAULT 0, n INTEGER);")
        .mig("core", "S001_items", &format!("INSERT INTO items (id, name) VALUES {};", values.join(", ")))
        .mig(
            "core",
            "DM001_done",
            "-- marks items done, a batch at a time\nUPDATE items SET done = 1 WHERE id IN (SELECT id FROM items WHERE done = 0 ORDER BY id LIMIT :batch_size);",
        )
        .mig("core", "DM002_bad", "UPDATE items SET no_such_column = 1 WHERE id IN (SELECT id FROM items LIMIT :batch_size)")
        .mig("core", "DM003_n", "UPDATE items SET n = id WHERE id IN (SELECT id FROM items WHERE n IS NULL LIMIT :batch_size)");
    kit
}

fn data_migrations_batch_and_record_failures(db: &TestDb) {
    let kit = data_kit();
    let opts = RunOptions {
        batch_size: 3,
        ..everything()
    };
    let err = run(db, &kit, &opts).unwrap_err();
    assert!(
        matches!(err.error, MigrateError::DataBatchesFailed { .. }),
        "{err}"
    );
    assert_eq!(offkit::exit::ExitCoded::exit(&err).code(), 13);
    let step = |n: &str| {
        err.report
            .steps
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .clone()
    };
    let dm1 = step("DM001_done");
    assert_eq!(dm1.outcome, Outcome::Applied);
    let d = dm1.data.unwrap();
    assert_eq!(
        (d.batches, d.rows, d.batch_size),
        (4, 10, 3),
        "3+3+3+1 rows, then an empty batch"
    );
    assert_eq!(step("DM002_bad").outcome, Outcome::Failed);
    assert_eq!(
        step("DM003_n").outcome,
        Outcome::Applied,
        "the run goes on after a failed data migration"
    );
    let status = db.session().status(&kit.set(), &ModuleFilter::All).unwrap();
    let bad = status
        .entries
        .iter()
        .find(|e| e.name == "DM002_bad")
        .unwrap();
    assert_eq!(bad.state, State::Pending);
    assert_eq!(bad.progress.as_ref().unwrap().failed_batches, 1);
    assert_eq!(
        db.int(&format!(
            "SELECT count(*) FROM {} WHERE done = 1 AND n = id",
            db.table("core", "items")
        )),
        10
    );
}

fn stop_on_error_stops_at_first_failing_batch(db: &TestDb) {
    let kit = data_kit();
    let opts = RunOptions {
        batch_size: 4,
        on_error: OnError::StopOnError,
        ..everything()
    };
    let err = run(db, &kit, &opts).unwrap_err();
    let outcomes: Vec<_> = err
        .report
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.outcome))
        .collect();
    assert_eq!(
        &outcomes[2..],
        [
            ("DM001_done", Outcome::Applied),
            ("DM002_bad", Outcome::Failed),
            ("DM003_n", Outcome::NotRun)
        ]
    );
}

fn rollback_reverse_order_to_and_missing_file(db: &TestDb) {
    let kit = Kit::new();
    for (i, t) in ["a", "b", "c", "d"].iter().enumerate() {
        kit.mig(
            "core",
            &format!("00{}_{t}", i + 1),
            &format!("CREATE TABLE {t} (x INTEGER);"),
        );
        if *t != "d" {
            kit.rollback(
                "core",
                &format!("00{}_{t}", i + 1),
                &format!("DROP TABLE {t};"),
            );
        }
    }
    run(db, &kit, &RunOptions::default()).unwrap();
    let rollback = |target: RollbackTarget, mode: RunMode| {
        let mut s = db.session();
        let mut l = s.lock(Duration::from_secs(5)).unwrap();
        l.rollback(
            &kit.set(),
            &RollbackOptions {
                module: "core".into(),
                target,
                mode,
                safety: Default::default(),
            },
        )
    };
    let err = rollback(RollbackTarget::Last, RunMode::Apply).unwrap_err();
    assert!(
        matches!(&err, MigrateError::RollbackMissing { names } if names == &["core/004_d"]),
        "{err}"
    );
    assert_eq!(
        db.applied("core").len(),
        4,
        "a refused rollback changes nothing"
    );
    kit.rollback("core", "004_d", "DROP TABLE no_such_table;");
    let err = rollback(RollbackTarget::Last, RunMode::Apply).unwrap_err();
    assert!(
        matches!(&err, MigrateError::RollbackFailed { done, .. } if done.is_empty()),
        "{err}"
    );
    assert_eq!(offkit::exit::ExitCoded::exit(&err).code(), 8);
    assert_eq!(
        db.applied("core").len(),
        4,
        "a failed rollback keeps its history row"
    );
    kit.rollback("core", "004_d", "DROP TABLE d;");
    let r = rollback(RollbackTarget::Last, RunMode::Apply).unwrap();
    assert_eq!(
        r.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["004_d"]
    );
    let plan = rollback(RollbackTarget::To("001_a".into()), RunMode::DryRun).unwrap();
    assert_eq!(
        plan.steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["003_c", "002_b"]
    );
    assert_eq!(db.applied("core").len(), 3, "dry run");
    rollback(RollbackTarget::To("001_a".into()), RunMode::Apply).unwrap();
    assert_eq!(db.applied("core"), ["001_a"]);
    let err = db
        .session()
        .driver()
        .query(&format!("SELECT * FROM {}", db.table("core", "b")), &[]);
    assert!(err.is_err(), "table b was dropped by its rollback");
    let again = run(db, &kit, &RunOptions::default()).unwrap();
    assert_eq!(
        again.counts.applied, 3,
        "rolled-back migrations are pending again"
    );
}

fn no_transaction_failure_needs_resolve(db: &TestDb) {
    let kit = Kit::new();
    kit.mig("core", "001_a", "CREATE TABLE a (x INTEGER);").mig(
        "core",
        "002_nt",
        "-- offkit:no-transaction\nCREATE TABLE nt (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
    );
    let err = run(db, &kit, &RunOptions::default()).unwrap_err();
    assert!(
        matches!(&err.error, MigrateError::MigrationFailed(f) if f.no_transaction),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("migrations resolve 002_nt --module core"),
        "{err}"
    );
    let status = db.session().status(&kit.set(), &ModuleFilter::All).unwrap();
    let nt = status.entries.iter().find(|e| e.name == "002_nt").unwrap();
    assert!(
        matches!(
            &nt.state,
            State::InProgress {
                last_error: Some(_),
                ..
            }
        ),
        "{:?}",
        nt.state
    );
    let refused = run(db, &kit, &RunOptions::default()).unwrap_err();
    assert!(
        matches!(refused.error, MigrateError::State { .. }),
        "{refused}"
    );
    // The operator drops what was half done, fixes the file, records "not applied", re-runs.
    db.exec(&format!("DROP TABLE {}", db.table("core", "nt")));
    kit.mig(
        "core",
        "002_nt",
        "-- offkit:no-transaction\nCREATE TABLE nt (x INTEGER);\n",
    );
    let mut s = db.session();
    let mut l = s.lock(Duration::from_secs(5)).unwrap();
    let err = l
        .resolve(&kit.set(), "core", "002_nt", Resolution::Applied, "test")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("was started from a file with checksum"),
        "{err}"
    );
    l.resolve(&kit.set(), "core", "002_nt", Resolution::NotApplied, "test")
        .unwrap();
    drop(l);
    let ok = run(db, &kit, &RunOptions::default()).unwrap();
    assert_eq!(applied_by_run(&ok), ["core/002_nt"]);
    let mut l = s.lock(Duration::from_secs(5)).unwrap();
    let err = l
        .resolve(&kit.set(), "core", "002_nt", Resolution::Applied, "test")
        .unwrap_err();
    assert!(err.to_string().contains("not in progress"), "{err}");
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod pg {
            $( #[test] fn $name() { super::$name(&super::TestDb::pg()) } )*
        }
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::TestDb::sqlite()) } )*
        }
    };
}

on_both!(
    clean_install_then_rerun_is_noop,
    upgrade_in_steps_matches_clean_install,
    drift_is_refused,
    missing_is_reported,
    out_of_order_refused_then_allowed,
    failing_migration_rolls_back_with_history_row,
    release_gate_and_dry_run,
    data_migrations_batch_and_record_failures,
    stop_on_error_stops_at_first_failing_batch,
    rollback_reverse_order_to_and_missing_file,
    no_transaction_failure_needs_resolve,
);

#[test]
fn pg_create_index_concurrently_runs_under_the_lock() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
    )
    .mig(
        "core",
        "S001_items",
        "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 1000) g;",
    )
    .mig(
        "core",
        "002_idx",
        "-- offkit:no-transaction\nCREATE INDEX CONCURRENTLY items_name ON items (name);\n",
    );
    let mut s = db.session();
    let mut locked = s.lock(Duration::from_secs(5)).unwrap();
    let report = locked.run(&kit.set(), &RunOptions::default()).unwrap();
    assert_eq!(report.counts.applied, 3, "{report}");
    assert_eq!(
        db.int("SELECT count(*) FROM pg_index WHERE indexrelid = 'core.items_name'::regclass AND indisvalid"),
        1
    );
    // The lock is still held by this session while the index was built.
    assert_eq!(
        db.int(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = {} \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            offkit::migrate::lock::LOCK_KEY as u64 & 0xffff_ffff
        )),
        1
    );
    assert!(
        db.rows("SELECT 1 FROM offkit.migration_in_progress")
            .is_empty()
    );
}
