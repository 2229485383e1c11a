//! Night-run safety settings against a real PostgreSQL (and SQLite): a migration queued behind
//! another session's lock gives up after `lock_timeout`, is retried whole with pauses, and fails
//! without leaving anything half-applied; a signed per-migration hint lifts `statement_timeout`
//! over a value inherited from the database; the session's settings are what the docs say.

mod common;

use std::time::{Duration, Instant};

use common::{Kit, TestDb, outcome};
use offkit::migrate::report::Outcome;
use offkit::migrate::safety::Source;
use offkit::migrate::{
    Category, MigrateError, ReleaseGate, RunFailure, RunOptions, RunReport, Safety,
};

fn run(db: &TestDb, kit: &Kit, safety: Safety) -> Result<RunReport, RunFailure> {
    let mut s = db.session();
    let mut locked = s.lock(Duration::from_secs(10)).expect("lock");
    let opts = RunOptions {
        categories: Category::ALL.into_iter().collect(),
        release: ReleaseGate::Force,
        safety,
        ..RunOptions::default()
    };
    locked.run(&kit.set(), &opts)
}

fn quick_retries(lock: Duration, retries: u32) -> Safety {
    Safety {
        lock_timeout: Some(lock),
        lock_retries: retries,
        retry_pause: Duration::from_millis(50),
        ..Safety::default()
    }
}

/// Another application session that holds `ACCESS EXCLUSIVE` on `core.t` until dropped (or
/// released).
struct Holder(postgres::Client);

impl Holder {
    fn lock(db: &TestDb, sql: &str) -> Holder {
        let mut c = postgres::Client::connect(&db.url(), postgres::NoTls).expect("connect");
        c.batch_execute(&format!("BEGIN; {sql}"))
            .expect("take the lock");
        Holder(c)
    }

    fn release(mut self) {
        self.0.batch_execute("COMMIT").expect("release");
    }
}

fn failed_step(f: &RunFailure, name: &str) -> offkit::migrate::report::Step {
    f.report
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {}", f.report))
        .clone()
}

#[test]
fn a_lock_timeout_is_retried_then_fails_with_nothing_half_applied() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig("core", "001_init", "CREATE TABLE t (id int PRIMARY KEY);");
    run(&db, &kit, Safety::default()).unwrap();
    kit.mig(
        "core",
        "002_alter",
        "CREATE TABLE made_before_the_lock (x int);\nALTER TABLE t ADD COLUMN b int;",
    );
    let holder = Holder::lock(&db, "LOCK TABLE core.t IN ACCESS EXCLUSIVE MODE");
    let started = Instant::now();
    let f = run(&db, &kit, quick_retries(Duration::from_millis(200), 2)).unwrap_err();
    let took = started.elapsed();
    let MigrateError::MigrationFailed(m) = &f.error else {
        panic!("expected a failed migration: {f}");
    };
    assert_eq!(m.source.sqlstate.as_deref(), Some("55P03"), "{f}");
    let text = f.to_string();
    assert!(
        text.contains("lock_timeout 200ms from this run's option")
            && text.contains("gave up after 3 attempts"),
        "{text}"
    );
    let step = failed_step(&f, "002_alter");
    assert_eq!(step.outcome, Outcome::Failed);
    assert_eq!(step.lock_retries, 2);
    // Three waits of 200 ms and two pauses of 50 and 100 ms.
    assert!(took >= Duration::from_millis(750), "{took:?}");
    holder.release();
    assert_eq!(db.applied("core"), ["001_init"]);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_tables WHERE tablename = 'made_before_the_lock'"),
        0,
        "the failed transaction left nothing behind"
    );
}

#[test]
fn a_lock_released_during_the_retries_lets_the_migration_through() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig("core", "001_init", "CREATE TABLE t (id int PRIMARY KEY);");
    run(&db, &kit, Safety::default()).unwrap();
    kit.mig("core", "002_alter", "ALTER TABLE t ADD COLUMN b int;");
    let holder = Holder::lock(&db, "LOCK TABLE core.t IN ACCESS EXCLUSIVE MODE");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        holder.release();
    });
    let r = run(&db, &kit, quick_retries(Duration::from_millis(100), 8)).unwrap();
    releaser.join().unwrap();
    let step = &r.steps[0];
    assert_eq!(step.outcome, Outcome::Applied);
    assert!(step.lock_retries >= 1, "{r}");
    assert!(r.to_string().contains("lock retr"), "{r}");
    assert_eq!(db.applied("core"), ["001_init", "002_alter"]);
}

#[test]
fn a_data_batch_waiting_on_a_row_lock_is_retried() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_init",
        "CREATE TABLE t (id int PRIMARY KEY, done bool NOT NULL DEFAULT false);\n\
         INSERT INTO t (id) SELECT g FROM generate_series(1, 10) g;",
    );
    run(&db, &kit, Safety::default()).unwrap();
    kit.mig(
        "core",
        "DM001_fill",
        "UPDATE t SET done = true WHERE id IN (SELECT id FROM t WHERE NOT done ORDER BY id LIMIT :batch_size);",
    );
    let holder = Holder::lock(&db, "SELECT * FROM core.t WHERE id = 3 FOR UPDATE");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        holder.release();
    });
    let r = run(&db, &kit, quick_retries(Duration::from_millis(100), 8)).unwrap();
    releaser.join().unwrap();
    let data = r.steps[0].data.as_ref().unwrap();
    assert!(data.lock_retries >= 1, "{r}");
    assert_eq!(r.steps[0].lock_retries, data.lock_retries);
    assert_eq!(data.total_rows, 10);
    assert_eq!(db.int("SELECT count(*) FROM core.t WHERE done"), 10);
}

#[test]
fn a_kit_hint_lifts_an_inherited_statement_timeout_and_the_run_option_wins() {
    let db = TestDb::pg();
    let common::db::TestDb::Pg(pg) = &db else {
        unreachable!()
    };
    // What a site's DBA may have set for every session: it would kill a long migration.
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET statement_timeout = '100ms'",
        pg.name
    ));
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_slow",
        "-- offkit:statement-timeout 10s\n-- offkit:lock-timeout 30s\nCREATE TABLE t AS SELECT 1 AS x FROM pg_sleep(0.4);",
    );
    let plan = {
        let mut s = db.session();
        s.plan(&kit.set(), &RunOptions::default()).unwrap()
    };
    let t = plan.steps[0].timeouts;
    assert_eq!(
        (t.statement_timeout.source, t.statement_timeout.duration()),
        (Source::Kit, Duration::from_secs(10))
    );
    assert!(
        plan.to_string()
            .contains("[lock 30s (kit), statement 10s (kit)]"),
        "{plan}"
    );
    // The run option beats the kit's hint.
    let f = run(
        &db,
        &kit,
        Safety {
            statement_timeout: Some(Duration::from_millis(150)),
            ..Safety::default()
        },
    )
    .unwrap_err();
    let MigrateError::MigrationFailed(m) = &f.error else {
        panic!("{f}");
    };
    assert_eq!(m.source.sqlstate.as_deref(), Some("57014"), "{f}");
    assert!(
        f.to_string()
            .contains("statement_timeout 150ms from this run's option"),
        "{f}"
    );
    assert_eq!(failed_step(&f, "001_slow").lock_retries, 0, "not retried");
    assert!(db.applied("core").is_empty());
    // The hint alone: the inherited 100ms does not apply.
    let r = run(&db, &kit, Safety::default()).unwrap();
    assert_eq!(r.counts.applied, 1, "{r}");
}

#[test]
fn the_session_and_each_migration_see_the_documented_settings() {
    let db = TestDb::pg();
    let kit = Kit::new();
    let probe = "SELECT current_setting('lock_timeout') AS lock_t, \
                 current_setting('statement_timeout') AS stmt_t, \
                 current_setting('idle_in_transaction_session_timeout') AS idle_t";
    kit.mig(
        "core",
        "001_defaults",
        &format!("CREATE TABLE d AS {probe};"),
    )
    .mig(
        "core",
        "002_hinted",
        &format!("-- offkit:lock-timeout 45s\nCREATE TABLE h AS {probe};"),
    )
    .mig(
        "core",
        "003_outside",
        &format!(
            "-- offkit:no-transaction\n-- offkit:statement-timeout 2h\nCREATE TABLE n AS {probe};"
        ),
    )
    .mig("core", "004_after", &format!("CREATE TABLE a AS {probe};"));
    run(&db, &kit, Safety::default()).unwrap();
    let read =
        |t: &str| db.rows(&format!("SELECT lock_t, stmt_t, idle_t FROM core.{t}"))[0].clone();
    assert_eq!(read("d"), ["5s", "30min", "10min"]);
    assert_eq!(read("h"), ["45s", "30min", "10min"]);
    assert_eq!(read("n"), ["5s", "2h", "10min"]);
    assert_eq!(
        read("a"),
        ["5s", "30min", "10min"],
        "the no-transaction values did not leak"
    );
}

#[test]
fn sqlite_interrupts_a_migration_past_its_statement_timeout() {
    let db = TestDb::sqlite();
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_endless",
        "CREATE TABLE a (x INTEGER);\n\
         INSERT INTO a WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c;",
    );
    let started = Instant::now();
    let f = run(
        &db,
        &kit,
        Safety {
            statement_timeout: Some(Duration::from_millis(300)),
            ..Safety::default()
        },
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    let MigrateError::MigrationFailed(m) = &f.error else {
        panic!("{f}");
    };
    assert_eq!(m.source.sqlstate.as_deref(), Some("57014"), "{f}");
    assert!(f.to_string().contains("statement_timeout 300ms"), "{f}");
    assert!(db.applied("core").is_empty());
    assert_eq!(
        db.int("SELECT count(*) FROM sqlite_master WHERE name = 'a'"),
        0,
        "rolled back whole"
    );
    // The session's own statements after the failure are not cut short by a stale deadline.
    let r = run(&db, &Kit::new(), Safety::default()).unwrap();
    assert_eq!(r.counts.failed, 0);
}

#[test]
fn the_cli_takes_the_safety_options_and_names_the_setting_that_fired() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig("core", "001_init", "CREATE TABLE t (id int PRIMARY KEY);");
    run(&db, &kit, Safety::default()).unwrap();
    kit.mig("core", "002_alter", "ALTER TABLE t ADD COLUMN b int;");
    let source = kit.path().to_str().unwrap();
    let url = db.url();
    let plan = common::run(&[
        "migrations",
        "run",
        "--source",
        source,
        "--db",
        &url,
        "--dry-run",
        "--db-lock-timeout",
        "2s",
        "--statement-timeout",
        "90s",
    ]);
    let (code, out, err) = outcome(&plan);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[lock 2s (run), statement 90s (run)]"),
        "{out}"
    );
    assert!(
        out.contains("limits   lock_timeout 2s, statement_timeout 90s, idle_in_transaction_session_timeout 10m, 3 lock retries from 1s doubling"),
        "{out}"
    );
    let _holder = Holder::lock(&db, "LOCK TABLE core.t IN ACCESS EXCLUSIVE MODE");
    let o = common::run(&[
        "migrations",
        "run",
        "--source",
        source,
        "--db",
        &url,
        "--db-lock-timeout",
        "150ms",
        "--lock-retries",
        "1",
        "--lock-retry-pause",
        "10ms",
    ]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 8, "database error exit code: {err}");
    assert!(
        err.contains("lock_timeout 150ms from this run's option; gave up after 2 attempts"),
        "{err}"
    );
    assert!(err.contains("Its transaction was rolled back"), "{err}");
}

#[test]
fn malformed_hints_are_refused_when_the_migrations_are_loaded() {
    let kit = Kit::new();
    kit.mig("core", "001_x", "-- offkit:statement-timout 10m\nSELECT 1;");
    let err = offkit::migrate::MigrationSet::load(kit.path(), &Default::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("001_x.sql:line 1: unknown directive -- offkit:statement-timout"),
        "{text}"
    );
}
