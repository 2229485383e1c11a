//! What a store migration keeps in the database (`--db`), on the connection that holds the
//! runner's lock:
//!
//! - `offkit.store_migrations` (SQLite `offkit_store_migrations`): one row per run — stores
//!   (redacted), layout, options, state, counts, times, the report's SHA-256, the error;
//! - `offkit.store_migration_objects`: one row per source object of a run — the checkpoint. A
//!   batch's rows are written as `pending` (with the destination key, the digest and whether the
//!   destination already had the key) before its first put, and with their outcome after its
//!   last confirmation, each in one transaction;
//! - `artifact_store.artifacts` (SQLite `artifact_store_artifacts`): the index of every object
//!   a run copied or found already in place, created by offkit's own migration runner (module
//!   `artifact_store`), written in the same transaction as the outcomes.

use std::collections::HashMap;

use crate::migrate::{
    Category, DbError, Dialect, Driver, Migration, MigrationSet, Module, Value, bind,
};

/// Schema of offkit's own tables.
pub const SCHEMA: &str = "offkit";
/// The runs.
pub const RUNS: &str = "store_migrations";
/// The per-object checkpoint.
pub const OBJECTS: &str = "store_migration_objects";
/// Schema (PostgreSQL) or prefix (SQLite) of the index.
pub const INDEX_SCHEMA: &str = "artifact_store";
/// The index table.
pub const INDEX: &str = "artifacts";

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 200;

/// How a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Under way (or died: the next run marks it interrupted).
    Running,
    /// Every object copied or already in place.
    Succeeded,
    /// Finished with failed objects, or stopped by an error.
    Failed,
    /// The process stopped; `--resume` continues it.
    Interrupted,
    /// `store rollback` removed its copies.
    RolledBack,
}

impl RunState {
    const ALL: [RunState; 5] = [
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Interrupted,
        RunState::RolledBack,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::RolledBack => "rolled-back",
        }
    }

    fn parse(s: &str) -> Option<RunState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where one source object stands in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectState {
    /// Its batch started; the outcome is not recorded yet.
    Pending,
    /// Copied by this run and confirmed by digest.
    Copied,
    /// Already at the destination with the same digest.
    Skipped,
    /// Not copied (a different object at the destination, an unreadable source, a bad key…).
    Failed,
    /// Its copy was removed by `store rollback`.
    RolledBack,
}

impl ObjectState {
    const ALL: [ObjectState; 5] = [
        ObjectState::Pending,
        ObjectState::Copied,
        ObjectState::Skipped,
        ObjectState::Failed,
        ObjectState::RolledBack,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Pending => "pending",
            ObjectState::Copied => "copied",
            ObjectState::Skipped => "skipped",
            ObjectState::Failed => "failed",
            ObjectState::RolledBack => "rolled-back",
        }
    }

    fn parse(s: &str) -> Option<ObjectState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    /// The run id (`--resume`, `store rollback`).
    pub id: i64,
    /// The source store, redacted.
    pub from_store: String,
    /// The destination store, redacted.
    pub to_store: String,
    /// The layout (preset name or file).
    pub layout: String,
    /// SHA-256 of the layout's text.
    pub layout_sha256: String,
    /// The options that decide which objects belong to the run (JSON).
    pub options: String,
    /// How it stands.
    pub state: RunState,
    /// Source objects in the run.
    pub total: i64,
    /// Copied by the run.
    pub copied: i64,
    /// Already in place.
    pub skipped: i64,
    /// Failed.
    pub failed: i64,
    /// Source objects deleted (`--delete-source`).
    pub deleted_sources: i64,
    /// `user@host`.
    pub started_by: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// SHA-256 of the last report.
    pub report_sha256: Option<String>,
    /// What stopped it.
    pub error: Option<String>,
}

/// One source object of a run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectRow {
    /// The source key.
    pub source_key: String,
    /// The destination key (none when it could not be decided).
    pub dest_key: Option<String>,
    /// SHA-256 of the bytes.
    pub sha256: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Whether the destination already had the key when the batch started.
    pub dest_existed: bool,
    /// Where it stands.
    pub state: ObjectState,
    /// Whether the source object was deleted.
    pub source_deleted: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// One index row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexRow {
    /// The destination key.
    pub storage_key: String,
    /// The bom-ref (synthetic `sha256:<digest>` when the document has none).
    pub bom_ref: Option<String>,
    /// `document` or `synthetic` (none for layouts that do not read documents).
    pub bom_ref_source: Option<&'static str>,
    /// The serial number.
    pub serial_number: Option<String>,
    /// The artifact id (the content's SHA-256).
    pub artifact_id: String,
    /// SHA-256.
    pub sha256: String,
    /// Size.
    pub size: i64,
    /// The layout rule that routed it.
    pub source_layout: String,
    /// The source key.
    pub source_key: String,
    /// The tenant, when the layout captures one.
    pub tenant: Option<String>,
    /// The MD5 of the bytes, when known (a store that vouches for MD5s was involved).
    pub md5: Option<String>,
}

fn runs(d: Dialect) -> String {
    d.table(SCHEMA, RUNS)
}
fn objects(d: Dialect) -> String {
    d.table(SCHEMA, OBJECTS)
}
/// The index table's quoted name.
pub fn index(d: Dialect) -> String {
    d.table(INDEX_SCHEMA, INDEX)
}

/// The index's migration set (module `artifact_store`), for the runner.
pub fn index_migrations(d: Dialect) -> Result<MigrationSet, DbError> {
    let (table, ts, now) = match d {
        Dialect::Postgres => ("artifacts", "timestamptz", "now()"),
        Dialect::Sqlite => (
            "artifact_store_artifacts",
            "TEXT",
            "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
        ),
    };
    let sql = format!(
        "-- The unified artifact store's index (offkit store migrate).\n\
         CREATE TABLE {table} (\n  store TEXT NOT NULL,\n  storage_key TEXT NOT NULL,\n  \
         bom_ref TEXT,\n  bom_ref_source TEXT,\n  serial_number TEXT,\n  artifact_id TEXT NOT NULL,\n  \
         sha256 TEXT NOT NULL,\n  size BIGINT NOT NULL,\n  source_layout TEXT NOT NULL,\n  \
         source_key TEXT NOT NULL,\n  tenant TEXT,\n  md5 TEXT,\n  run_id BIGINT NOT NULL,\n  \
         migrated_at {ts} NOT NULL DEFAULT {now},\n  PRIMARY KEY (store, storage_key)\n);\n\
         CREATE INDEX {table}_bom_ref ON {table} (bom_ref);\n\
         CREATE INDEX {table}_run ON {table} (run_id);\n"
    );
    let name = crate::kit::migration_name::MigrationName::parse("001_artifacts")
        .map_err(|e| DbError::msg(e.to_string()))?;
    debug_assert_eq!(name.category(), Category::Startup);
    let m = Migration::from_bytes(
        name,
        "offkit:artifact_store/001_artifacts.sql",
        sql.into_bytes(),
    )
    .map_err(|e| DbError::msg(e.to_string()))?;
    MigrationSet::new(vec![Module {
        name: INDEX_SCHEMA.to_owned(),
        schema: INDEX_SCHEMA.to_owned(),
        migrations: vec![m],
    }])
    .map_err(|e| DbError::msg(e.to_string()))
}

/// Creates offkit's run and checkpoint tables if absent.
pub fn ensure(driver: &mut dyn Driver) -> Result<(), DbError> {
    let d = driver.dialect();
    if let Some(sql) = d.create_schema(SCHEMA) {
        driver.batch(&sql)?;
    }
    let id = d.id_column();
    let ts = d.timestamp_type();
    driver.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({id}, from_store TEXT NOT NULL, to_store TEXT NOT NULL, \
         layout TEXT NOT NULL, layout_sha256 TEXT NOT NULL, options TEXT NOT NULL, \
         state TEXT NOT NULL, total BIGINT NOT NULL DEFAULT 0, copied BIGINT NOT NULL DEFAULT 0, \
         skipped BIGINT NOT NULL DEFAULT 0, failed BIGINT NOT NULL DEFAULT 0, \
         deleted_sources BIGINT NOT NULL DEFAULT 0, started_by TEXT NOT NULL, \
         started_at {ts} NOT NULL, finished_at {ts}, report_sha256 TEXT, error TEXT)",
        runs(d)
    ))?;
    driver.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (run_id BIGINT NOT NULL, source_key TEXT NOT NULL, \
         dest_key TEXT, sha256 TEXT, size BIGINT, dest_existed BIGINT NOT NULL DEFAULT 0, \
         state TEXT NOT NULL, source_deleted BIGINT NOT NULL DEFAULT 0, error TEXT, \
         PRIMARY KEY (run_id, source_key))",
        objects(d)
    ))
}

/// True when the run table exists (reads only).
pub fn exists(driver: &mut dyn Driver) -> Result<bool, DbError> {
    crate::migrate::history::table_exists(driver, SCHEMA, RUNS)
}

/// Marks runs left `running` by dead processes as `interrupted`. Call with the lock held.
pub fn mark_interrupted(driver: &mut dyn Driver) -> Result<u64, DbError> {
    let d = driver.dialect();
    driver.execute(
        &format!(
            "UPDATE {} SET state = $1, finished_at = {}, error = $2 WHERE state = $3",
            runs(d),
            d.now()
        ),
        &[
            RunState::Interrupted.as_str().into(),
            "the process stopped before the run finished (found by the next run); --resume continues it".into(),
            RunState::Running.as_str().into(),
        ],
    )
}

/// What a new run records.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// Source, redacted.
    pub from_store: &'a str,
    /// Destination, redacted.
    pub to_store: &'a str,
    /// Layout origin.
    pub layout: &'a str,
    /// Layout SHA-256.
    pub layout_sha256: &'a str,
    /// Options (JSON).
    pub options: &'a str,
    /// `user@host`.
    pub started_by: &'a str,
}

/// Inserts a `running` run and returns its id.
pub fn start(driver: &mut dyn Driver, run: &NewRun<'_>) -> Result<i64, DbError> {
    let d = driver.dialect();
    let rows = driver.query(
        &format!(
            "INSERT INTO {} (from_store, to_store, layout, layout_sha256, options, state, \
             started_by, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, {}) RETURNING id",
            runs(d),
            d.now()
        ),
        &[
            run.from_store.into(),
            run.to_store.into(),
            run.layout.into(),
            run.layout_sha256.into(),
            run.options.into(),
            RunState::Running.as_str().into(),
            run.started_by.into(),
        ],
    )?;
    rows.first()
        .and_then(|r| r.first())
        .and_then(Value::as_int)
        .ok_or_else(|| DbError::msg("the run insert returned no id"))
}

/// Sets a run's state (and clears its end) when it is resumed or rolled back.
pub fn set_state(
    driver: &mut dyn Driver,
    id: i64,
    state: RunState,
    error: Option<&str>,
) -> Result<(), DbError> {
    let d = driver.dialect();
    let end = if state == RunState::Running {
        "NULL".to_owned()
    } else {
        d.now().to_owned()
    };
    driver.execute(
        &format!(
            "UPDATE {} SET state = $1, finished_at = {end}, error = $2 WHERE id = $3",
            runs(d)
        ),
        &[
            state.as_str().into(),
            error.map_or(Value::Null, Value::from),
            id.into(),
        ],
    )?;
    Ok(())
}

/// Counts a run's objects by state and stores the counts, the state, the report's SHA-256 and
/// the error.
pub fn finish(
    driver: &mut dyn Driver,
    id: i64,
    state: RunState,
    report_sha256: &str,
    error: Option<&str>,
) -> Result<(), DbError> {
    let d = driver.dialect();
    // One pass over the run's rows counts them all (PostgreSQL sums bigints as numeric: cast).
    let counts = driver.query(
        &format!(
            "SELECT COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN state = 'copied' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN state = 'skipped' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(source_deleted), 0) AS BIGINT) FROM {} WHERE run_id = $1",
            objects(d)
        ),
        &[id.into()],
    )?;
    let row = counts
        .first()
        .ok_or_else(|| DbError::msg("counting a run's objects returned no row"))?;
    let count = |i: usize| -> Result<i64, DbError> { Cols(row).int(i) };
    driver.execute(
        &format!(
            "UPDATE {} SET state = $1, finished_at = {}, report_sha256 = $2, error = $3, \
             total = $4, copied = $5, skipped = $6, failed = $7, deleted_sources = $8 WHERE id = $9",
            runs(d),
            d.now()
        ),
        &[
            state.as_str().into(),
            report_sha256.into(),
            error.map_or(Value::Null, Value::from),
            count(0)?.into(),
            count(1)?.into(),
            count(2)?.into(),
            count(3)?.into(),
            count(4)?.into(),
            id.into(),
        ],
    )?;
    Ok(())
}

const RUN_COLS: &str = "id, from_store, to_store, layout, layout_sha256, options, state, total, \
    copied, skipped, failed, deleted_sources, started_by";

/// Every run, oldest first.
pub fn list(driver: &mut dyn Driver) -> Result<Vec<RunRow>, DbError> {
    select_runs(driver, "", &[])
}

/// One run.
pub fn get(driver: &mut dyn Driver, id: i64) -> Result<Option<RunRow>, DbError> {
    Ok(select_runs(driver, " WHERE id = $1", &[id.into()])?
        .into_iter()
        .next())
}

fn select_runs(
    driver: &mut dyn Driver,
    filter: &str,
    params: &[Value],
) -> Result<Vec<RunRow>, DbError> {
    let d = driver.dialect();
    let sql = format!(
        "SELECT {RUN_COLS}, {}, {}, report_sha256, error FROM {}{filter} ORDER BY id",
        d.timestamp_text("started_at"),
        d.timestamp_text("finished_at"),
        runs(d)
    );
    driver
        .query(&sql, params)?
        .into_iter()
        .map(|r| {
            let c = Cols(&r);
            let state = c.text(6)?;
            Ok(RunRow {
                id: c.int(0)?,
                from_store: c.text(1)?,
                to_store: c.text(2)?,
                layout: c.text(3)?,
                layout_sha256: c.text(4)?,
                options: c.text(5)?,
                state: RunState::parse(&state)
                    .ok_or_else(|| DbError::msg(format!("unknown run state {state:?}")))?,
                total: c.int(7)?,
                copied: c.int(8)?,
                skipped: c.int(9)?,
                failed: c.int(10)?,
                deleted_sources: c.int(11)?,
                started_by: c.text(12)?,
                started_at: c.text(13)?,
                finished_at: c.opt(14),
                report_sha256: c.opt(15),
                error: c.opt(16),
            })
        })
        .collect()
}

struct Cols<'a>(&'a [Value]);

impl Cols<'_> {
    fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt(i)
            .ok_or_else(|| DbError::msg(format!("column {i} is not text")))
    }
    fn opt(&self, i: usize) -> Option<String> {
        self.0.get(i).and_then(|v| v.as_text().map(str::to_owned))
    }
    fn int(&self, i: usize) -> Result<i64, DbError> {
        self.0
            .get(i)
            .and_then(Value::as_int)
            .ok_or_else(|| DbError::msg(format!("column {i} is not an integer")))
    }
}

/// Every object row of a run, by source key.
pub fn objects_of(
    driver: &mut dyn Driver,
    run: i64,
) -> Result<HashMap<String, ObjectRow>, DbError> {
    let d = driver.dialect();
    let rows = driver.query(
        &format!(
            "SELECT source_key, dest_key, sha256, size, dest_existed, state, source_deleted, error \
             FROM {} WHERE run_id = $1",
            objects(d)
        ),
        &[run.into()],
    )?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let c = Cols(&r);
        let state = c.text(5)?;
        let row = ObjectRow {
            source_key: c.text(0)?,
            dest_key: c.opt(1),
            sha256: c.opt(2),
            size: r.get(3).and_then(Value::as_int),
            dest_existed: c.int(4)? != 0,
            state: ObjectState::parse(&state)
                .ok_or_else(|| DbError::msg(format!("unknown object state {state:?}")))?,
            source_deleted: c.int(6)? != 0,
            error: c.opt(7),
        };
        out.insert(row.source_key.clone(), row);
    }
    Ok(out)
}

/// Writes (inserts or replaces) object rows of a run.
pub fn put_objects(driver: &mut dyn Driver, run: i64, rows: &[ObjectRow]) -> Result<(), DbError> {
    let d = driver.dialect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len());
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
        for r in chunk {
            let row = bind(
                &mut params,
                [
                    run.into(),
                    r.source_key.as_str().into(),
                    r.dest_key.clone().into(),
                    r.sha256.clone().into(),
                    r.size.into(),
                    i64::from(r.dest_existed).into(),
                    r.state.as_str().into(),
                    i64::from(r.source_deleted).into(),
                    r.error.clone().into(),
                ],
            );
            values.push(format!("({row})"));
        }
        driver.execute(
            &format!(
                "INSERT INTO {} (run_id, source_key, dest_key, sha256, size, dest_existed, state, \
                 source_deleted, error) VALUES {} ON CONFLICT (run_id, source_key) DO UPDATE SET \
                 dest_key = excluded.dest_key, sha256 = excluded.sha256, size = excluded.size, \
                 dest_existed = excluded.dest_existed, state = excluded.state, \
                 source_deleted = excluded.source_deleted, error = excluded.error",
                objects(d),
                values.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Inserts index rows (a row already there for the same store and key is kept).
pub fn put_index(
    driver: &mut dyn Driver,
    store: &str,
    run: i64,
    rows: &[IndexRow],
) -> Result<(), DbError> {
    let d = driver.dialect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len());
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 13);
        for r in chunk {
            let row = bind(
                &mut params,
                [
                    store.into(),
                    r.storage_key.as_str().into(),
                    r.bom_ref.clone().into(),
                    r.bom_ref_source.into(),
                    r.serial_number.clone().into(),
                    r.artifact_id.as_str().into(),
                    r.sha256.as_str().into(),
                    r.size.into(),
                    r.source_layout.as_str().into(),
                    r.source_key.as_str().into(),
                    r.tenant.clone().into(),
                    r.md5.clone().into(),
                    run.into(),
                ],
            );
            values.push(format!("({row}, {})", d.now()));
        }
        driver.execute(
            &format!(
                "INSERT INTO {} (store, storage_key, bom_ref, bom_ref_source, serial_number, \
                 artifact_id, sha256, size, source_layout, source_key, tenant, md5, run_id, migrated_at) \
                 VALUES {} ON CONFLICT (store, storage_key) DO NOTHING",
                index(d),
                values.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// What the index knows of an object's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    /// SHA-256.
    pub sha256: String,
    /// Size.
    pub size: i64,
    /// MD5, when a store vouched for it.
    pub md5: Option<String>,
}

/// What the index knows of every object indexed in `store`, by storage key (for judging objects
/// in place from trusted listings without reading them).
pub fn index_digests(
    driver: &mut dyn Driver,
    store: &str,
) -> Result<HashMap<String, Indexed>, DbError> {
    let d = driver.dialect();
    let rows = driver.query(
        &format!(
            "SELECT storage_key, sha256, size, md5 FROM {} WHERE store = $1",
            index(d)
        ),
        &[store.into()],
    )?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let c = Cols(&r);
        out.insert(
            c.text(0)?,
            Indexed {
                sha256: c.text(1)?,
                size: c.int(2)?,
                md5: c.opt(3),
            },
        );
    }
    Ok(out)
}

/// Removes the index rows a run wrote for these keys.
pub fn delete_index(
    driver: &mut dyn Driver,
    store: &str,
    run: i64,
    keys: &[String],
) -> Result<(), DbError> {
    let d = driver.dialect();
    for k in keys {
        driver.execute(
            &format!(
                "DELETE FROM {} WHERE store = $1 AND storage_key = $2 AND run_id = $3",
                index(d)
            ),
            &[store.into(), k.as_str().into(), run.into()],
        )?;
    }
    Ok(())
}

/// Runs `f` in one transaction (committed when it returns `Ok`, rolled back otherwise).
pub fn in_transaction<T>(
    driver: &mut dyn Driver,
    f: impl FnOnce(&mut dyn Driver) -> Result<T, DbError>,
) -> Result<T, DbError> {
    driver.batch("BEGIN")?;
    match f(driver) {
        Ok(v) => {
            driver.batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            // The error that stopped the work is the one to report.
            let _ = driver.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The validation figures of `store report`: rows per source layout, synthetic bom-refs,
/// failures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    /// Index rows per source layout rule.
    pub per_layout: Vec<(String, i64)>,
    /// Index rows per tenant (rows without a tenant under `""`).
    pub per_tenant: Vec<(String, i64)>,
    /// Index rows whose bom-ref is synthetic.
    pub synthetic_bom_refs: i64,
    /// Index rows of the run.
    pub indexed: i64,
    /// Failed objects: source key and error.
    pub failures: Vec<(String, String)>,
}

/// Reads the figures of one run.
pub fn figures(driver: &mut dyn Driver, run: i64, index_ready: bool) -> Result<Figures, DbError> {
    let d = driver.dialect();
    let mut f = Figures::default();
    if index_ready {
        let ix = index(d);
        let pairs = |driver: &mut dyn Driver, sql: String| -> Result<Vec<(String, i64)>, DbError> {
            driver
                .query(&sql, &[run.into()])?
                .into_iter()
                .map(|r| {
                    let c = Cols(&r);
                    Ok((c.opt(0).unwrap_or_default(), c.int(1)?))
                })
                .collect()
        };
        f.per_layout = pairs(
            driver,
            format!(
                "SELECT source_layout, COUNT(*) FROM {ix} WHERE run_id = $1 GROUP BY source_layout ORDER BY source_layout"
            ),
        )?;
        f.per_tenant = pairs(
            driver,
            format!(
                "SELECT tenant, COUNT(*) FROM {ix} WHERE run_id = $1 GROUP BY tenant ORDER BY tenant"
            ),
        )?;
        let one = |driver: &mut dyn Driver, sql: String| -> Result<i64, DbError> {
            Ok(driver
                .query(&sql, &[run.into()])?
                .first()
                .and_then(|r| r.first())
                .and_then(Value::as_int)
                .unwrap_or(0))
        };
        f.synthetic_bom_refs = one(
            driver,
            format!("SELECT COUNT(*) FROM {ix} WHERE run_id = $1 AND bom_ref_source = 'synthetic'"),
        )?;
        f.indexed = one(
            driver,
            format!("SELECT COUNT(*) FROM {ix} WHERE run_id = $1"),
        )?;
    }
    f.failures = driver
        .query(
            &format!(
                "SELECT source_key, error FROM {} WHERE run_id = $1 AND state = 'failed' ORDER BY source_key",
                objects(d)
            ),
            &[run.into()],
        )?
        .into_iter()
        .map(|r| {
            let c = Cols(&r);
            (c.opt(0).unwrap_or_default(), c.opt(1).unwrap_or_default())
        })
        .collect();
    Ok(f)
}
