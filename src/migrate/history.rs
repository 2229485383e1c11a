//! The state tables and reading them.
//!
//! Per module: the history table `<schema>.schema_migrations` (SQLite: `<schema>_schema_migrations`)
//! with exactly the columns `migration_name` (primary key), `category`, `checksum`, `applied_at`,
//! `applied_by`, `duration_ms`. Runner state that is not history lives in the `offkit` schema
//! (SQLite: `offkit_` prefix): `migration_in_progress` (a no-transaction migration that started
//! and has not been recorded as done) and `data_migration_progress` (data-migration checkpoints).
//!
//! Reading never creates anything (so `status` and `--dry-run` change nothing): absent tables
//! read as empty. Everything is read in a handful of queries per run, not per migration.

use std::collections::BTreeMap;

use crate::migrate::drivers::{DbError, Dialect, Driver, Value};

/// The history table's name within a module's schema.
pub const HISTORY_TABLE: &str = "schema_migrations";
/// The schema (SQLite: table prefix) of the runner's own state tables.
pub const STATE_SCHEMA: &str = "offkit";
/// No-transaction migrations that started and were not recorded as done.
pub const IN_PROGRESS_TABLE: &str = "migration_in_progress";
/// Data-migration checkpoints.
pub const DATA_PROGRESS_TABLE: &str = "data_migration_progress";

/// A row of a module's history table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedRow {
    /// `migration_name`.
    pub migration_name: String,
    /// `category`.
    pub category: String,
    /// `checksum`.
    pub checksum: String,
    /// `applied_at`, RFC 3339 UTC.
    pub applied_at: String,
    /// `applied_by`.
    pub applied_by: String,
    /// `duration_ms` (NULL for imported legacy rows and resolved migrations).
    pub duration_ms: Option<i64>,
}

/// A no-transaction migration that started and was not recorded as done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InProgress {
    /// The module's schema.
    pub schema: String,
    /// The migration.
    pub migration_name: String,
    /// Checksum of the file that was started.
    pub checksum: String,
    /// When it started.
    pub started_at: String,
    /// Who started it.
    pub started_by: String,
    /// The error it failed with, when it failed rather than crashed.
    pub last_error: Option<String>,
}

/// A data migration's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataProgress {
    /// The module's schema.
    pub schema: String,
    /// The migration.
    pub migration_name: String,
    /// Checksum of the file the batches ran.
    pub checksum: String,
    /// Committed batches that changed rows.
    pub batches_done: i64,
    /// Rows changed by those batches.
    pub rows_done: i64,
    /// Batches that failed (each rolled back).
    pub failed_batches: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the first batch started.
    pub started_at: String,
    /// When it finished (a batch changed no row), if it did.
    pub finished_at: Option<String>,
}

/// Everything the runner knows about the database's migration state, read once.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// History rows per schema.
    pub applied: BTreeMap<String, Vec<AppliedRow>>,
    /// In-progress records.
    pub in_progress: Vec<InProgress>,
    /// Data-migration checkpoints.
    pub data: Vec<DataProgress>,
}

impl History {
    /// The history row of `name` in `schema`.
    pub fn applied(&self, schema: &str, name: &str) -> Option<&AppliedRow> {
        self.applied
            .get(schema)?
            .iter()
            .find(|r| r.migration_name == name)
    }

    /// The in-progress record of `name` in `schema`.
    pub fn in_progress(&self, schema: &str, name: &str) -> Option<&InProgress> {
        self.in_progress
            .iter()
            .find(|r| r.schema == schema && r.migration_name == name)
    }

    /// The checkpoint of data migration `name` in `schema`.
    pub fn data(&self, schema: &str, name: &str) -> Option<&DataProgress> {
        self.data
            .iter()
            .find(|r| r.schema == schema && r.migration_name == name)
    }
}

/// The DDL of a module's history table.
pub fn history_ddl(dialect: Dialect, schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\
           migration_name TEXT PRIMARY KEY, category TEXT NOT NULL, checksum TEXT NOT NULL, \
           applied_at {ts} NOT NULL, applied_by TEXT NOT NULL, duration_ms BIGINT)",
        dialect.table(schema, HISTORY_TABLE),
        ts = dialect.timestamp_type()
    )
}

/// The INSERT of a history row into `table` (quoted): parameters `$1` name, `$2` category, `$3`
/// checksum, `$4` applied_by; `applied_at` and `duration_ms` are SQL expressions (e.g. the
/// dialect's `now()`, `$5`, `NULL`).
pub fn insert_sql(table: &str, applied_at: &str, duration_ms: &str) -> String {
    format!(
        "INSERT INTO {table} (migration_name, category, checksum, applied_at, applied_by, duration_ms) \
         VALUES ($1, $2, $3, {applied_at}, $4, {duration_ms})"
    )
}

/// Creates the modules' schemas and history tables and the runner's state tables, if absent.
pub fn ensure_tables(driver: &mut dyn Driver, schemas: &[&str]) -> Result<(), DbError> {
    let sql = ensure_tables_sql(driver.dialect(), schemas);
    driver.batch(&sql.join(";\n"))
}

/// The statements of [`ensure_tables`] (each `CREATE … IF NOT EXISTS`).
pub fn ensure_tables_sql(d: Dialect, schemas: &[&str]) -> Vec<String> {
    let ts = d.timestamp_type();
    let mut sql = Vec::new();
    for schema in schemas.iter().copied().chain([STATE_SCHEMA]) {
        sql.extend(d.create_schema(schema));
    }
    for schema in schemas {
        sql.push(history_ddl(d, schema));
    }
    sql.push(format!(
        "CREATE TABLE IF NOT EXISTS {} (\
           schema_name TEXT NOT NULL, migration_name TEXT NOT NULL, checksum TEXT NOT NULL, \
           started_at {ts} NOT NULL, started_by TEXT NOT NULL, last_error TEXT, \
           PRIMARY KEY (schema_name, migration_name))",
        d.table(STATE_SCHEMA, IN_PROGRESS_TABLE)
    ));
    sql.push(format!(
        "CREATE TABLE IF NOT EXISTS {} (\
           schema_name TEXT NOT NULL, migration_name TEXT NOT NULL, checksum TEXT NOT NULL, \
           batches_done BIGINT NOT NULL DEFAULT 0, rows_done BIGINT NOT NULL DEFAULT 0, \
           failed_batches BIGINT NOT NULL DEFAULT 0, last_error TEXT, \
           started_at {ts} NOT NULL, updated_at {ts} NOT NULL, finished_at {ts}, \
           PRIMARY KEY (schema_name, migration_name))",
        d.table(STATE_SCHEMA, DATA_PROGRESS_TABLE)
    ));
    sql
}

/// Whether `schema.table` (SQLite: `schema_table`) exists (reads only).
pub fn table_exists(driver: &mut dyn Driver, schema: &str, table: &str) -> Result<bool, DbError> {
    Ok(!table_columns(driver, &[(schema, table)])?.is_empty())
}

/// The columns of each table that exists, keyed by (schema, table); absent tables are absent.
pub fn table_columns(
    driver: &mut dyn Driver,
    tables: &[(&str, &str)],
) -> Result<BTreeMap<(String, String), Vec<String>>, DbError> {
    let mut out = BTreeMap::new();
    if tables.is_empty() {
        return Ok(out);
    }
    match driver.dialect() {
        Dialect::Postgres => {
            let pairs: Vec<String> = (0..tables.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "SELECT CAST(table_schema AS text), CAST(table_name AS text), CAST(column_name AS text) \
                 FROM information_schema.columns \
                 WHERE (CAST(table_schema AS text), CAST(table_name AS text)) IN ({}) \
                 ORDER BY 1, 2, ordinal_position",
                pairs.join(", ")
            );
            let params: Vec<Value> = tables
                .iter()
                .flat_map(|(s, t)| [Value::from(*s), Value::from(*t)])
                .collect();
            for row in driver.query(&sql, &params)? {
                if let [Value::Text(s), Value::Text(t), Value::Text(c)] = row.as_slice() {
                    out.entry((s.clone(), t.clone()))
                        .or_insert_with(Vec::new)
                        .push(c.clone());
                }
            }
        }
        Dialect::Sqlite => {
            for (s, t) in tables {
                let rows = driver.query(
                    "SELECT name FROM pragma_table_info($1) ORDER BY cid",
                    &[format!("{s}_{t}").into()],
                )?;
                let cols: Vec<String> = rows
                    .into_iter()
                    .filter_map(|r| {
                        r.into_iter()
                            .next()
                            .and_then(|v| v.as_text().map(str::to_owned))
                    })
                    .collect();
                if !cols.is_empty() {
                    out.insert((s.to_string(), t.to_string()), cols);
                }
            }
        }
    }
    Ok(out)
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Null => String::new(),
    }
}

fn opt_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        other => Some(text(other)),
    }
}

/// Reads the history of `schemas` and the runner state, without creating anything. A history
/// table that exists without the canonical columns (a legacy table of the same name) is an error
/// that points to `import-legacy`.
pub fn read(driver: &mut dyn Driver, schemas: &[&str]) -> Result<History, DbError> {
    let d = driver.dialect();
    let mut wanted: Vec<(&str, &str)> = schemas.iter().map(|s| (*s, HISTORY_TABLE)).collect();
    wanted.push((STATE_SCHEMA, IN_PROGRESS_TABLE));
    wanted.push((STATE_SCHEMA, DATA_PROGRESS_TABLE));
    let existing = table_columns(driver, &wanted)?;
    let exists = |s: &str, t: &str| existing.get(&(s.to_owned(), t.to_owned()));

    let mut history = History::default();
    let mut parts = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        let Some(cols) = exists(schema, HISTORY_TABLE) else {
            continue;
        };
        if !cols.iter().any(|c| c == "migration_name") {
            return Err(DbError::msg(format!(
                "{} exists but is not an offkit history table (columns: {}); if it is a legacy \
                 history table, run `offkit migrations import-legacy` first",
                d.table(schema, HISTORY_TABLE),
                cols.join(", ")
            )));
        }
        parts.push(format!(
            "SELECT {i}, migration_name, category, checksum, {}, applied_by, duration_ms FROM {}",
            d.timestamp_text("applied_at"),
            d.table(schema, HISTORY_TABLE)
        ));
    }
    if !parts.is_empty() {
        let sql = format!("{} ORDER BY 5, 2", parts.join(" UNION ALL "));
        for row in driver.query(&sql, &[])? {
            let [idx, name, cat, sum, at, by, dur] = row.as_slice() else {
                continue;
            };
            let Some(schema) = idx.as_int().and_then(|i| schemas.get(i as usize)) else {
                continue;
            };
            history
                .applied
                .entry((*schema).to_owned())
                .or_default()
                .push(AppliedRow {
                    migration_name: text(name),
                    category: text(cat),
                    checksum: text(sum),
                    applied_at: text(at),
                    applied_by: text(by),
                    duration_ms: dur.as_int(),
                });
        }
    }
    if exists(STATE_SCHEMA, IN_PROGRESS_TABLE).is_some() {
        let sql = format!(
            "SELECT schema_name, migration_name, checksum, {}, started_by, last_error FROM {} ORDER BY 4",
            d.timestamp_text("started_at"),
            d.table(STATE_SCHEMA, IN_PROGRESS_TABLE)
        );
        for row in driver.query(&sql, &[])? {
            if let [s, n, c, at, by, err] = row.as_slice() {
                history.in_progress.push(InProgress {
                    schema: text(s),
                    migration_name: text(n),
                    checksum: text(c),
                    started_at: text(at),
                    started_by: text(by),
                    last_error: opt_text(err),
                });
            }
        }
    }
    if exists(STATE_SCHEMA, DATA_PROGRESS_TABLE).is_some() {
        let sql = format!(
            "SELECT schema_name, migration_name, checksum, batches_done, rows_done, failed_batches, \
             last_error, {}, {} FROM {}",
            d.timestamp_text("started_at"),
            d.timestamp_text("finished_at"),
            d.table(STATE_SCHEMA, DATA_PROGRESS_TABLE)
        );
        for row in driver.query(&sql, &[])? {
            if let [s, n, c, b, r, f, err, at, fin] = row.as_slice() {
                history.data.push(DataProgress {
                    schema: text(s),
                    migration_name: text(n),
                    checksum: text(c),
                    batches_done: b.as_int().unwrap_or(0),
                    rows_done: r.as_int().unwrap_or(0),
                    failed_batches: f.as_int().unwrap_or(0),
                    last_error: opt_text(err),
                    started_at: text(at),
                    finished_at: opt_text(fin),
                });
            }
        }
    }
    Ok(history)
}
