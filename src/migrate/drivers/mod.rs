//! The driver trait: the few primitives the runner needs from a database, and the SQL dialect
//! differences between PostgreSQL and SQLite. All runner logic (planning, history, data batches,
//! rollback, legacy import) lives once in [`crate::migrate`] and talks to a `dyn Driver`.
//!
//! A driver owns one connection. It does not decide what to run.

use std::fmt;

use crate::migrate::safety::StepTimeouts;
use crate::sql::quote_ident;

pub mod postgres;
pub mod sqlite;

/// A value bound to a statement parameter or read from a row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (PostgreSQL int2/int4/int8 or boolean as 0/1; SQLite INTEGER).
    Int(i64),
    /// Text.
    Text(String),
}

impl Value {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Appends `values` to a statement's `params` and returns their placeholders, comma-separated
/// (`$4, $5, $6` after three): for statements of many rows, each row's values bound in turn.
pub fn bind(params: &mut Vec<Value>, values: impl IntoIterator<Item = Value>) -> String {
    let first = params.len();
    params.extend(values);
    (first + 1..=params.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One result row.
pub type Row = Vec<Value>;

/// A database error, with what the server said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    /// The message, with detail and hint when the server gave them.
    pub message: String,
    /// The SQLSTATE code (PostgreSQL) when known.
    pub sqlstate: Option<String>,
    /// 1-based character position in the statement text (PostgreSQL), when known.
    pub position: Option<u32>,
}

impl DbError {
    /// An error with only a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        DbError {
            message: message.to_string(),
            sqlstate: None,
            position: None,
        }
    }

    /// True when the connection is gone: closed by the server (`pg_terminate_backend`, a restart,
    /// a failover, a session timeout) or by the network. Nothing more can run on it, the
    /// session's advisory lock went with it, and a transaction that was in flight committed whole
    /// or not at all. Drivers report this as SQLSTATE class `08` (connection exception).
    pub fn connection_lost(&self) -> bool {
        self.sqlstate
            .as_deref()
            .is_some_and(|s| s.starts_with("08"))
    }
}

/// Who holds the migration lock, as far as the database can tell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockHolder {
    /// The holder's process id (PostgreSQL backend pid, or the offkit process for SQLite).
    pub pid: i64,
    /// When the holder took the lock (or, failing that, when its session started), RFC 3339.
    pub since: Option<String>,
    /// Anything else known (application name, client address).
    pub detail: Option<String>,
}

/// The SQL dialect of a driver: the only place where the runner's SQL differs by database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// PostgreSQL: schemas are namespaces.
    Postgres,
    /// SQLite: one namespace; `<schema>_<table>`.
    Sqlite,
}

impl Dialect {
    /// The quoted name of `table` in `schema`: `"schema"."table"` or `"schema_table"`.
    pub fn table(self, schema: &str, table: &str) -> String {
        match self {
            Dialect::Postgres => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            Dialect::Sqlite => quote_ident(&format!("{schema}_{table}")),
        }
    }

    /// The column definition of an auto-numbered primary key `id`.
    pub fn id_column(self) -> &'static str {
        match self {
            Dialect::Postgres => "id BIGSERIAL PRIMARY KEY",
            Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        }
    }

    /// The column type used for timestamps.
    pub fn timestamp_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "timestamptz",
            Dialect::Sqlite => "TEXT",
        }
    }

    /// An expression for the current time.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "now()",
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ','now')",
        }
    }

    /// An expression that renders timestamp column `col` as RFC 3339 UTC text (PostgreSQL
    /// sessions run with `TimeZone = UTC`, so `timestamp` and text columns convert as UTC too).
    pub fn timestamp_text(self, col: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("to_char(CAST({col} AS timestamptz), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
            }
            Dialect::Sqlite => col.to_owned(),
        }
    }

    /// A parameter `$n` holding RFC 3339 text, as a timestamp value.
    pub fn timestamp_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("CAST(CAST(${n} AS text) AS timestamptz)"),
            Dialect::Sqlite => format!("${n}"),
        }
    }

    /// What `:batch_size` in a data migration becomes: parameter `$1` as a bigint.
    pub fn batch_param(self) -> &'static str {
        match self {
            Dialect::Postgres => "CAST($1 AS bigint)",
            Dialect::Sqlite => "$1",
        }
    }

    /// The statement that creates `schema` if absent (PostgreSQL only).
    pub fn create_schema(self, schema: &str) -> Option<String> {
        match self {
            Dialect::Postgres => Some(format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(schema)
            )),
            Dialect::Sqlite => None,
        }
    }

    /// Statements that make the module's migrations resolve unqualified names in `schema`, for use
    /// inside a transaction (PostgreSQL: `SET LOCAL search_path`).
    pub fn local_search_path(self, schema: &str) -> Option<String> {
        match self {
            Dialect::Postgres => Some(format!("SET LOCAL search_path TO {}", quote_ident(schema))),
            Dialect::Sqlite => None,
        }
    }

    /// `SET [LOCAL] lock_timeout …; SET [LOCAL] statement_timeout …` for PostgreSQL (SQLite
    /// drivers enforce the values themselves). Values are whole milliseconds; PostgreSQL's
    /// largest is `i32::MAX` ms (about 24 days), and larger values are clamped to it.
    pub fn timeouts(self, t: &StepTimeouts, local: bool) -> Option<String> {
        match self {
            Dialect::Postgres => {
                let scope = if local { "LOCAL " } else { "" };
                Some(format!(
                    "SET {scope}lock_timeout TO {}; SET {scope}statement_timeout TO {}",
                    pg_millis(t.lock_timeout.duration()),
                    pg_millis(t.statement_timeout.duration())
                ))
            }
            Dialect::Sqlite => None,
        }
    }

    /// The same for a whole session (used around no-transaction migrations).
    pub fn session_search_path(self, schema: &str) -> Option<String> {
        match self {
            Dialect::Postgres => Some(format!("SET search_path TO {}", quote_ident(schema))),
            Dialect::Sqlite => None,
        }
    }
}

/// A duration as PostgreSQL's millisecond setting value (0 disables the timeout).
pub fn pg_millis(d: std::time::Duration) -> u64 {
    crate::util::millis(d).min(i32::MAX as u64)
}

/// A lock on a relation, as `pg_locks` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct RelationLock {
    /// `schema.relation` (or what is known of a relation dropped since).
    pub relation: String,
    /// The lock mode (`AccessExclusiveLock`, `RowExclusiveLock`, …).
    pub mode: String,
}

/// A history row to write, ready for a driver's fast path.
#[derive(Debug, Clone)]
pub struct NewHistoryRow<'a> {
    /// The quoted history table.
    pub table: &'a str,
    /// The module's schema.
    pub schema: &'a str,
    /// `migration_name`.
    pub name: &'a str,
    /// `category`.
    pub category: &'a str,
    /// `checksum`.
    pub checksum: &'a str,
    /// `applied_by`.
    pub applied_by: &'a str,
}

/// What the runner needs from a database connection.
pub trait Driver: Send {
    /// The SQL dialect.
    fn dialect(&self) -> Dialect;

    /// Runs one or more statements without parameters (simple query protocol where available).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;

    /// Runs one statement with bound parameters (`$1`, `$2`, …); returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;

    /// Runs one query with bound parameters and returns all rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;

    /// Tries once to take the run-wide migration lock; `Ok(false)` when someone else holds it.
    fn try_lock(&mut self) -> Result<bool, DbError>;

    /// Who holds the lock, when it can be found out.
    fn lock_holder(&mut self) -> Result<Option<LockHolder>, DbError>;

    /// Releases the lock taken by [`Driver::try_lock`].
    fn unlock(&mut self) -> Result<(), DbError>;

    /// Lets the driver prepare the run's history rows ahead of time (PostgreSQL binds the run's
    /// `applied_by` once, so that each migration then needs one round trip). The default does
    /// nothing.
    fn stage(&mut self, _rows: &[NewHistoryRow<'_>]) -> Result<(), DbError> {
        Ok(())
    }

    /// Sets the session's safety settings, which stay until changed: the timeouts of the runner's
    /// own statements and of no-transaction migrations, and (when given) the
    /// `idle_in_transaction_session_timeout`. An inherited role or database setting is
    /// overridden for this session only.
    fn set_session_timeouts(
        &mut self,
        t: &StepTimeouts,
        idle_in_transaction: Option<std::time::Duration>,
    ) -> Result<(), DbError>;

    /// Makes the rest of the open transaction resolve names in `schema` and run under `t`
    /// (PostgreSQL `SET LOCAL`, which ends with the transaction).
    fn set_transaction_settings(&mut self, schema: &str, t: &StepTimeouts) -> Result<(), DbError> {
        let d = self.dialect();
        let sets: Vec<String> = [d.local_search_path(schema), d.timeouts(t, true)]
            .into_iter()
            .flatten()
            .collect();
        if sets.is_empty() {
            return Ok(());
        }
        self.batch(&sets.join("; "))
    }

    /// Opens a transaction whose statements resolve names in `schema` and run under `t`.
    fn begin(&mut self, schema: &str, t: &StepTimeouts) -> Result<(), DbError> {
        self.batch("BEGIN")?;
        let set = self.set_transaction_settings(schema, t);
        if set.is_err() {
            self.rollback();
        }
        set
    }

    /// Commits the transaction opened by [`Driver::begin`].
    fn commit(&mut self) -> Result<(), DbError> {
        self.batch("COMMIT")
    }

    /// Rolls back the transaction opened by [`Driver::begin`] (best effort: a failed rollback
    /// leaves nothing committed either).
    fn rollback(&mut self) {
        let _ = self.batch("ROLLBACK");
    }

    /// Runs a transactional migration under `t` and inserts its history row, in one
    /// transaction; on error the transaction is rolled back. The default takes a few round
    /// trips; drivers may do it in one (the row was passed to [`Driver::stage`] first).
    fn apply_in_transaction(
        &mut self,
        sql: &str,
        row: &NewHistoryRow<'_>,
        t: &StepTimeouts,
    ) -> Result<(), DbError> {
        let dialect = self.dialect();
        let started = std::time::Instant::now();
        self.begin(row.schema, t)?;
        let result = (|| {
            self.batch(sql)?;
            let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let insert = crate::migrate::history::insert_sql(row.table, dialect.now(), "$5");
            self.execute(
                &insert,
                &[
                    row.name.into(),
                    row.category.into(),
                    row.checksum.into(),
                    row.applied_by.into(),
                    duration.into(),
                ],
            )?;
            self.commit()
        })();
        if result.is_err() {
            self.rollback();
        }
        result
    }

    /// Runs statements like [`Driver::batch`] and returns the rows they inserted, updated or
    /// deleted (rows a query returned do not count).
    fn batch_rows(&mut self, sql: &str) -> Result<u64, DbError>;

    /// The table-level locks this session holds (relation and mode), for a rehearsal's report.
    fn relation_locks(&mut self) -> Result<Vec<RelationLock>, DbError>;

    /// Waits until every commit made so far is durable. The default does nothing (commits are
    /// synchronous).
    fn durable_barrier(&mut self) -> Result<(), DbError> {
        Ok(())
    }

    /// Character offset of the migration text inside what the last
    /// [`Driver::apply_in_transaction`] sent, so that an error position can be turned into a
    /// line of the file.
    fn migration_offset(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, bind};

    #[test]
    fn bind_numbers_each_row_s_placeholders_after_the_parameters_bound_before() {
        let mut params: Vec<Value> = vec![7i64.into()];
        assert_eq!(bind(&mut params, ["a".into(), 1i64.into()]), "$2, $3");
        assert_eq!(bind(&mut params, ["b".into(), 2i64.into()]), "$4, $5");
        assert_eq!(params.len(), 5);
        assert_eq!(params[3], Value::from("b"));
        assert_eq!(bind(&mut params, []), "");
    }
}
