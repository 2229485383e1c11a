//! The operations journal `offkit.operations` (SQLite: `offkit_operations`): one row per run of a
//! command other than `apply` that changes a database or a store — `migrations run`, `rollback`,
//! `resolve`, `import-legacy`, `store put-dir` — beside the apply ledger ([`super::ledger`]), on the same connection, so that
//! nothing is rolled back or re-applied between two ledger entries without a trace.
//!
//! A row is inserted as `running` once the command holds the migration lock and updated when it
//! ends. Dry runs and rehearsals change nothing and write no row. A row still `running` when the
//! next command takes the lock belongs to a run that died; it is marked `interrupted`.

use serde::Serialize;

use super::ledger::{Outcome, SCHEMA};
use crate::migrate::{DbError, Dialect, Driver, Value};

/// Table name within [`SCHEMA`].
pub const TABLE: &str = "operations";

/// One journal row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// Row number.
    pub id: i64,
    /// The command (`migrations run`).
    pub command: String,
    /// What it worked from: `KIT_NAME VERSION (manifest SHA-256)`, or `source DIR (unsigned)`.
    pub subject: String,
    /// `user@host`.
    pub actor: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// How it ended (or that it is running).
    pub outcome: Outcome,
    /// The options that widened what it did (`--category release`, `--force`, …).
    pub overrides: Vec<String>,
    /// SHA-256 of its JSON report, when it made one.
    pub report_sha256: Option<String>,
    /// The error that stopped it.
    pub error: Option<String>,
}

fn table(d: Dialect) -> String {
    d.table(SCHEMA, TABLE)
}

/// Creates the journal if absent.
pub fn ensure(driver: &mut dyn Driver) -> Result<(), DbError> {
    let d = driver.dialect();
    if let Some(sql) = d.create_schema(SCHEMA) {
        driver.batch(&sql)?;
    }
    // SQLite: a rowid key, not AUTOINCREMENT, whose `sqlite_sequence` table could not be taken
    // back by [`forget`]; rows are never deleted but by it, so ids still only grow.
    let id = match d {
        Dialect::Postgres => d.id_column(),
        Dialect::Sqlite => "id INTEGER PRIMARY KEY",
    };
    let ts = d.timestamp_type();
    driver.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({id}, command TEXT NOT NULL, subject TEXT NOT NULL, \
         actor TEXT NOT NULL, started_at {ts} NOT NULL, finished_at {ts}, outcome TEXT NOT NULL, \
         overrides TEXT NOT NULL, report_sha256 TEXT, error TEXT)",
        table(d)
    ))
}

/// True when the journal table exists (reads only).
pub fn exists(driver: &mut dyn Driver) -> Result<bool, DbError> {
    crate::migrate::history::table_exists(driver, SCHEMA, TABLE)
}

/// Marks rows left `running` by dead runs as `interrupted`. Call with the lock held.
pub fn mark_interrupted(driver: &mut dyn Driver) -> Result<u64, DbError> {
    let table = table(driver.dialect());
    super::ledger::interrupt_running(
        driver,
        &table,
        "the process stopped before the command finished (found by the next one)",
    )
}

/// Inserts a `running` row (creating the journal when needed, marking dead runs interrupted)
/// and returns its id. Call with the lock held.
pub fn start(
    driver: &mut dyn Driver,
    command: &str,
    subject: &str,
    actor: &str,
    overrides: &[String],
) -> Result<i64, DbError> {
    ensure(driver)?;
    mark_interrupted(driver)?;
    // The lock is held: an apply still recorded as running died too.
    if super::ledger::exists(driver)? {
        super::ledger::mark_interrupted(driver)?;
    }
    let d = driver.dialect();
    let rows = driver.query(
        &format!(
            "INSERT INTO {} (command, subject, actor, started_at, outcome, overrides) \
             VALUES ($1, $2, $3, {}, $4, $5) RETURNING id",
            table(d),
            d.now()
        ),
        &[
            command.into(),
            subject.into(),
            actor.into(),
            Outcome::Running.as_str().into(),
            serde_json::to_string(overrides)
                .unwrap_or_else(|_| "[]".into())
                .into(),
        ],
    )?;
    rows.first()
        .and_then(|r| r.first())
        .and_then(Value::as_int)
        .ok_or_else(|| DbError::msg("the journal insert returned no id"))
}

/// Records how a run ended.
pub fn finish(
    driver: &mut dyn Driver,
    id: i64,
    outcome: Outcome,
    report_sha256: Option<&str>,
    error: Option<&str>,
) -> Result<(), DbError> {
    let d = driver.dialect();
    driver.execute(
        &format!(
            "UPDATE {} SET outcome = $1, finished_at = {}, report_sha256 = $2, error = $3 WHERE id = $4",
            table(d),
            d.now()
        ),
        &[
            outcome.as_str().into(),
            report_sha256.map_or(Value::Null, Value::from),
            error.map_or(Value::Null, Value::from),
            id.into(),
        ],
    )?;
    Ok(())
}

/// What [`start`] created besides its row, so that a refusal can take it back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Created {
    /// The journal table did not exist.
    pub table: bool,
    /// Its schema did not exist (PostgreSQL).
    pub schema: bool,
}

/// What the journal needs that does not exist yet (reads only).
pub fn missing(driver: &mut dyn Driver) -> Result<Created, DbError> {
    let table = !exists(driver)?;
    let schema = match driver.dialect() {
        Dialect::Postgres => {
            let rows = driver.query(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[SCHEMA.into()],
            )?;
            rows.first().and_then(|r| r.first()).and_then(Value::as_int) == Some(0)
        }
        Dialect::Sqlite => false,
    };
    Ok(Created { table, schema })
}

/// Takes back the row of a command that was refused before it changed anything, and the table
/// and schema [`start`] created for it: a refusal leaves the database as it found it.
pub fn forget(driver: &mut dyn Driver, id: i64, created: Created) -> Result<(), DbError> {
    let d = driver.dialect();
    driver.execute(
        &format!("DELETE FROM {} WHERE id = $1", table(d)),
        &[id.into()],
    )?;
    if created.table {
        driver.batch(&format!("DROP TABLE {}", table(d)))?;
    }
    if created.schema {
        // Only when nothing else of offkit's lives there (no CASCADE).
        let _ = driver.batch(&format!("DROP SCHEMA {}", crate::sql::quote_ident(SCHEMA)));
    }
    Ok(())
}

/// Every row, oldest first.
pub fn list(driver: &mut dyn Driver) -> Result<Vec<Operation>, DbError> {
    let d = driver.dialect();
    let rows = driver.query(
        &format!(
            "SELECT id, command, subject, actor, {}, {}, outcome, overrides, report_sha256, error \
             FROM {} ORDER BY id",
            d.timestamp_text("started_at"),
            d.timestamp_text("finished_at"),
            table(d)
        ),
        &[],
    )?;
    rows.into_iter()
        .map(|r| {
            let text = |i: usize| -> Result<String, DbError> {
                r.get(i)
                    .and_then(|v| v.as_text().map(str::to_owned))
                    .ok_or_else(|| DbError::msg(format!("journal column {i} is not text")))
            };
            let opt = |i: usize| r.get(i).and_then(|v| v.as_text().map(str::to_owned));
            let id = r
                .first()
                .and_then(Value::as_int)
                .ok_or_else(|| DbError::msg("journal id is not an integer"))?;
            let outcome = text(6)?;
            let outcome = Outcome::parse(&outcome).ok_or_else(|| {
                DbError::msg(format!("journal row {id}: unknown outcome {outcome:?}"))
            })?;
            let overrides: Vec<String> = serde_json::from_str(&text(7)?).map_err(|e| {
                DbError::msg(format!(
                    "journal row {id}: overrides are not a JSON list: {e}"
                ))
            })?;
            Ok(Operation {
                id,
                command: text(1)?,
                subject: text(2)?,
                actor: text(3)?,
                started_at: text(4)?,
                finished_at: opt(5),
                outcome,
                overrides,
                report_sha256: opt(8),
                error: opt(9),
            })
        })
        .collect()
}
