//! Legacy history import: the four legacy shapes on PostgreSQL (evidence_schema_version,
//! export_schema_version, a `schema_migrations(name, applied_at)`, plugin_migrations), order and
//! timestamps preserved, checksums from the kit's files, idempotent, dry run; and on SQLite.

mod common;

use std::time::Duration;

use common::{Kit, TestDb};
use offkit::migrate::legacy::{LegacyAction, LegacyReport};
use offkit::migrate::{ModuleFilter, RunMode, RunOptions};

const MODULES: [&str; 4] = ["evidence_locker", "export_center", "binaries", "plugins"];

fn kit() -> Kit {
    let kit = Kit::new();
    for m in MODULES {
        kit.mig(m, "001_init", "CREATE TABLE t1 (id INTEGER PRIMARY KEY);")
            .mig(m, "002_more", "CREATE TABLE t2 (id INTEGER PRIMARY KEY);")
            .mig(m, "003_new", "CREATE TABLE t3 (id INTEGER PRIMARY KEY);");
    }
    kit
}

fn import(
    db: &TestDb,
    kit: &Kit,
    mode: RunMode,
) -> Result<LegacyReport, offkit::migrate::MigrateError> {
    let mut s = db.session();
    let mut l = s.lock(Duration::from_secs(5)).unwrap();
    l.import_legacy(&kit.set(), &ModuleFilter::All, mode)
}

fn pg_legacy_database() -> TestDb {
    let db = TestDb::pg();
    let mut sql = String::new();
    for m in MODULES {
        sql.push_str(&format!(
            "CREATE SCHEMA {m}; CREATE TABLE {m}.t1 (id INTEGER PRIMARY KEY); CREATE TABLE {m}.t2 (id INTEGER PRIMARY KEY);\n"
        ));
    }
    sql.push_str(
        "CREATE TABLE evidence_locker.evidence_schema_version \
           (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL, description TEXT);\n\
         INSERT INTO evidence_locker.evidence_schema_version VALUES \
           (2, '2024-02-01 09:30:00+00', 'more'), (1, '2024-01-01 10:00:00+00', 'init');\n\
         CREATE TABLE export_center.export_schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL);\n\
         INSERT INTO export_center.export_schema_version VALUES (1, '2024-03-01 00:00:00+00'), (2, '2024-03-02 00:00:00+00');\n\
         CREATE TABLE binaries.schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());\n\
         INSERT INTO binaries.schema_migrations VALUES ('001_init.sql', '2023-12-24 12:00:00+00'), ('002_more.sql', '2023-12-25 12:00:00+00');\n\
         CREATE TABLE plugins.plugin_migrations (id SERIAL PRIMARY KEY, migration_name TEXT NOT NULL, \
           applied_at TIMESTAMP NOT NULL, checksum TEXT);\n\
         INSERT INTO plugins.plugin_migrations (migration_name, applied_at, checksum) VALUES \
           ('001_init', '2022-06-01 08:00:00', 'legacy-md5'), ('002_more', '2022-06-02 08:00:00', NULL);\n",
    );
    db.exec(&sql);
    db
}

fn history(db: &TestDb, schema: &str) -> Vec<Vec<String>> {
    db.rows(&format!(
        "SELECT migration_name, category, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), \
         applied_by, CAST(duration_ms AS TEXT) FROM {}.schema_migrations ORDER BY applied_at",
        schema
    ))
}

#[test]
fn pg_imports_the_four_legacy_shapes_idempotently() {
    let db = pg_legacy_database();
    let kit = kit();
    let set = kit.set();

    let plan = import(&db, &kit, RunMode::DryRun).unwrap();
    assert_eq!(plan.tables.len(), 4, "{plan:?}");
    assert!(
        plan.tables
            .iter()
            .all(|t| t.rows.len() == 2 && t.rows.iter().all(|r| r.action == LegacyAction::Import))
    );
    assert_eq!(
        db.int("SELECT count(*) FROM information_schema.columns WHERE table_name = 'schema_migrations' AND column_name = 'migration_name'"),
        0,
        "a dry run changes nothing"
    );

    let report = import(&db, &kit, RunMode::Apply).unwrap();
    let binaries = report
        .tables
        .iter()
        .find(|t| t.module == "binaries")
        .unwrap();
    assert_eq!(
        binaries.renamed_to.as_deref(),
        Some("\"binaries\".\"schema_migrations_legacy\"")
    );
    let sum = |m: &str, n: &str| set.module(m).unwrap().get(n).unwrap().checksum.clone();
    let row = |name: &str, module: &str, at: &str, table: &str| {
        vec![
            name.to_owned(),
            "startup".to_owned(),
            sum(module, name),
            at.to_owned(),
            format!("legacy-import:\"{module}\".\"{table}\""),
            "NULL".to_owned(),
        ]
    };
    assert_eq!(
        history(&db, "evidence_locker"),
        [
            row(
                "001_init",
                "evidence_locker",
                "2024-01-01 10:00",
                "evidence_schema_version"
            ),
            row(
                "002_more",
                "evidence_locker",
                "2024-02-01 09:30",
                "evidence_schema_version"
            ),
        ]
    );
    assert_eq!(
        history(&db, "export_center"),
        [
            row(
                "001_init",
                "export_center",
                "2024-03-01 00:00",
                "export_schema_version"
            ),
            row(
                "002_more",
                "export_center",
                "2024-03-02 00:00",
                "export_schema_version"
            ),
        ]
    );
    assert_eq!(
        history(&db, "binaries"),
        [
            row(
                "001_init",
                "binaries",
                "2023-12-24 12:00",
                "schema_migrations"
            ),
            row(
                "002_more",
                "binaries",
                "2023-12-25 12:00",
                "schema_migrations"
            ),
        ]
    );
    assert_eq!(
        history(&db, "plugins"),
        [
            row(
                "001_init",
                "plugins",
                "2022-06-01 08:00",
                "plugin_migrations"
            ),
            row(
                "002_more",
                "plugins",
                "2022-06-02 08:00",
                "plugin_migrations"
            ),
        ]
    );
    assert_eq!(
        db.int("SELECT count(*) FROM binaries.schema_migrations_legacy"),
        2,
        "legacy rows are kept"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM evidence_locker.evidence_schema_version"),
        2
    );

    let before: Vec<_> = MODULES.iter().map(|m| history(&db, m)).collect();
    let again = import(&db, &kit, RunMode::Apply).unwrap();
    assert!(
        again
            .tables
            .iter()
            .flat_map(|t| &t.rows)
            .all(|r| r.action == LegacyAction::AlreadyImported)
    );
    let after: Vec<_> = MODULES.iter().map(|m| history(&db, m)).collect();
    assert_eq!(before, after, "a second import changes nothing");

    let mut s = db.session();
    let run = s
        .lock(Duration::from_secs(5))
        .unwrap()
        .run(&set, &RunOptions::default())
        .unwrap();
    assert_eq!(run.applied_names().len(), 4, "{run}");
    assert!(run.applied_names().iter().all(|n| n.ends_with("/003_new")));
    drop(s);
    assert!(
        db.session()
            .status(&set, &ModuleFilter::All)
            .unwrap()
            .problems()
            .is_empty()
    );
}

#[test]
fn pg_unknown_legacy_entry_stops_the_import() {
    let db = pg_legacy_database();
    db.exec(
        "INSERT INTO evidence_locker.evidence_schema_version VALUES (7, now(), 'not in the kit')",
    );
    let err = import(&db, &kit(), RunMode::Apply).unwrap_err();
    assert!(
        err.to_string().contains("evidence_schema_version\": 7"),
        "{err}"
    );
    assert_eq!(db.int("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'evidence_locker' AND table_name = 'schema_migrations'"), 0);
}

#[test]
fn sqlite_imports_legacy_schema_migrations_and_plugin_migrations() {
    let db = TestDb::sqlite();
    db.exec(
        "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n\
         CREATE TABLE binaries_schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);\n\
         INSERT INTO binaries_schema_migrations VALUES ('001_init.sql', '2023-12-24T12:00:00Z');\n\
         CREATE TABLE plugins_plugin_migrations (name TEXT, applied_at TEXT);\n\
         INSERT INTO plugins_plugin_migrations VALUES ('002_more', '2022-06-02T08:00:00Z'), ('001_init', '2022-06-01T08:00:00Z');",
    );
    let kit = Kit::new();
    for m in ["binaries", "plugins"] {
        kit.mig(m, "001_init", "SELECT 1;")
            .mig(m, "002_more", "SELECT 2;");
    }
    import(&db, &kit, RunMode::Apply).unwrap();
    let rows = |t: &str| {
        db.rows(&format!(
            "SELECT migration_name, applied_at FROM \"{t}\" ORDER BY applied_at"
        ))
    };
    assert_eq!(
        rows("binaries_schema_migrations"),
        [["001_init", "2023-12-24T12:00:00Z"]]
    );
    assert_eq!(
        rows("plugins_schema_migrations"),
        [
            ["001_init", "2022-06-01T08:00:00Z"],
            ["002_more", "2022-06-02T08:00:00Z"]
        ]
    );
    assert_eq!(
        db.int("SELECT count(*) FROM binaries_schema_migrations_legacy"),
        1
    );
    let again = import(&db, &kit, RunMode::Apply).unwrap();
    assert!(
        again
            .tables
            .iter()
            .flat_map(|t| &t.rows)
            .all(|r| r.action == LegacyAction::AlreadyImported)
    );
}
