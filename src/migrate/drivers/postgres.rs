//! The PostgreSQL driver (sync `postgres` crate).
//!
//! Locking is a session-level advisory lock (see [`crate::migrate::lock`] for the key), so that
//! `CREATE INDEX CONCURRENTLY` can run while it is held. A transactional migration and its history
//! row go to the server as one simple-query message (`BEGIN; …; INSERT …; COMMIT`): one round
//! trip per migration. The simple-query protocol has no parameters, so that message carries the
//! history row's values as literals — only machine-checked tokens (a name that passed the naming
//! standard, the category, a hex checksum) through [`token_literal`], which refuses anything else;
//! the one free-text value, `applied_by`, is bound as a parameter once per run
//! ([`Driver::stage`]) into a session setting that the insert reads.

use postgres::types::{ToSql, Type};
use postgres::{Client, SimpleQueryMessage};

use super::{
    DbError, Dialect, Driver, LockHolder, NewHistoryRow, RelationLock, Row, Value, pg_millis,
};
use crate::migrate::lock::{LOCK_KEY, LOCK_TAG_PREFIX, lock_tag};
use crate::migrate::safety::StepTimeouts;
use crate::migrate::sqltext::token_literal;

/// A PostgreSQL connection.
pub struct Postgres {
    client: Client,
    /// The `applied_by` bound for this run by [`Driver::stage`].
    staged_by: Option<String>,
    /// Characters before the migration text in the last one-round-trip message.
    offset: u32,
}

/// What offkit says before the server's own words when the connection is gone (see
/// [`DbError::connection_lost`]).
const CONNECTION_LOST: &str = "the connection to the database was lost";
/// SQLSTATE `connection_failure`, given to every error that ended the session.
const SESSION_ENDED: &str = "08006";

fn db_error(e: postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => {
            let mut message = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            let position = match db.position() {
                Some(postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            };
            let code = db.code().code();
            // A FATAL (or PANIC) error ends the session: whatever its own code (57P01 for
            // pg_terminate_backend, 25P03 for an idle-in-transaction timeout, …), the connection
            // is gone, which is what the runner needs to know.
            if matches!(db.severity(), "FATAL" | "PANIC") {
                return DbError {
                    message: format!("{CONNECTION_LOST}: {message} (SQLSTATE {code})"),
                    sqlstate: Some(SESSION_ENDED.to_owned()),
                    position: None,
                };
            }
            DbError {
                message,
                sqlstate: Some(code.to_owned()),
                position,
            }
        }
        // Closed (the server's FATAL message may or may not have arrived first: a race in the
        // protocol) or broken (an I/O error on the socket): the connection is gone either way.
        None if e.is_closed() || io_cause(&e) => DbError {
            message: format!("{CONNECTION_LOST} ({e:#})"),
            sqlstate: Some(SESSION_ENDED.to_owned()),
            position: None,
        },
        None => DbError::msg(format!("{e:#}")),
    }
}

/// True when the error comes from the socket (reset, broken pipe, end of stream).
fn io_cause(e: &postgres::Error) -> bool {
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if cause.is::<std::io::Error>() {
            return true;
        }
        next = cause.source();
    }
    false
}

impl Postgres {
    /// The driver over a connection made by [`crate::pg::connect`].
    pub fn from_client(mut client: Client) -> Result<Postgres, DbError> {
        client
            .batch_execute("SET TimeZone TO 'UTC'")
            .map_err(db_error)?;
        Ok(Postgres {
            client,
            staged_by: None,
            offset: 0,
        })
    }

    fn bind(params: &[Value], types: &[Type]) -> Result<Vec<Box<dyn ToSql + Sync>>, DbError> {
        params
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (v, ty))| -> Result<Box<dyn ToSql + Sync>, DbError> {
                let bad = || DbError::msg(format!("parameter ${} does not fit type {ty}", i + 1));
                Ok(match (v, ty) {
                    (Value::Null, _) => Box::new(Option::<String>::None),
                    (Value::Int(n), &Type::INT2) => Box::new(i16::try_from(*n).map_err(|_| bad())?),
                    (Value::Int(n), &Type::INT4) => Box::new(i32::try_from(*n).map_err(|_| bad())?),
                    (Value::Int(n), &Type::INT8) => Box::new(*n),
                    (
                        Value::Text(s),
                        &Type::TEXT | &Type::VARCHAR | &Type::NAME | &Type::BPCHAR,
                    ) => Box::new(s.clone()),
                    _ => return Err(bad()),
                })
            })
            .collect()
    }

    fn column(row: &postgres::Row, i: usize) -> Result<Value, DbError> {
        let ty = row.columns()[i].type_().clone();
        let get_err = |e: postgres::Error| DbError::msg(format!("reading column {i}: {e}"));
        Ok(match ty {
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(get_err)?
                .map(i64::from)
                .into(),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(get_err)?
                .map(i64::from)
                .into(),
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(get_err)?.into(),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(get_err)?
                .map(i64::from)
                .into(),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
                row.try_get::<_, Option<String>>(i).map_err(get_err)?.into()
            }
            other => {
                return Err(DbError::msg(format!(
                    "column {i} has type {other}; cast it to text or bigint in the query"
                )));
            }
        })
    }
}

impl Driver for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.client.batch_execute(sql).map_err(db_error)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let stmt = self.client.prepare(sql).map_err(db_error)?;
        let bound = Self::bind(params, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref()).collect();
        self.client.execute(&stmt, &refs).map_err(db_error)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let stmt = self.client.prepare(sql).map_err(db_error)?;
        let bound = Self::bind(params, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(&stmt, &refs).map_err(db_error)?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| Self::column(r, i)).collect())
            .collect()
    }

    fn try_lock(&mut self) -> Result<bool, DbError> {
        let rows = self.query("SELECT pg_try_advisory_lock($1)", &[LOCK_KEY.into()])?;
        let got = rows.first().and_then(|r| r.first()).and_then(Value::as_int) == Some(1);
        if got {
            // Visible in pg_stat_activity: lets a waiting runner (and a DBA) say since when.
            self.execute(
                "SELECT set_config('application_name', $1, false)",
                &[lock_tag().into()],
            )?;
        }
        Ok(got)
    }

    fn lock_holder(&mut self) -> Result<Option<LockHolder>, DbError> {
        let key = LOCK_KEY as u64;
        let rows = self.query(
            "SELECT CAST(l.pid AS bigint), CAST(a.application_name AS text), \
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    CAST(COALESCE(host(a.client_addr), 'local socket') AS text) \
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND CAST(l.classid AS bigint) = $1 AND CAST(l.objid AS bigint) = $2",
            &[
                ((key >> 32) as i64).into(),
                ((key & 0xffff_ffff) as i64).into(),
            ],
        )?;
        Ok(rows.into_iter().next().map(|r| {
            let pid = r.first().and_then(Value::as_int).unwrap_or(0);
            let app = r.get(1).and_then(Value::as_text).unwrap_or("").to_owned();
            let started = r.get(2).and_then(Value::as_text).map(str::to_owned);
            let client = r.get(3).and_then(Value::as_text).unwrap_or("").to_owned();
            let since = app.strip_prefix(LOCK_TAG_PREFIX).map(str::to_owned);
            let detail = match since {
                Some(_) => format!("offkit runner from {client}"),
                None => format!(
                    "application {app:?} from {client}, session started {}",
                    started.as_deref().unwrap_or("?")
                ),
            };
            LockHolder {
                pid,
                since: since.or(started),
                detail: Some(detail),
            }
        }))
    }

    fn unlock(&mut self) -> Result<(), DbError> {
        self.execute("SELECT pg_advisory_unlock($1)", &[LOCK_KEY.into()])?;
        self.batch("SET application_name TO offkit")
    }

    fn stage(&mut self, rows: &[NewHistoryRow<'_>]) -> Result<(), DbError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        if rows.iter().any(|r| r.applied_by != first.applied_by) {
            return Err(DbError::msg("internal: one applied_by per run"));
        }
        // The one free-text value of the history row, bound as a parameter once per run.
        self.execute(
            "SELECT set_config('offkit.applied_by', $1, false)",
            &[first.applied_by.into()],
        )?;
        self.staged_by = Some(first.applied_by.to_owned());
        Ok(())
    }

    fn begin(&mut self, schema: &str, t: &StepTimeouts) -> Result<(), DbError> {
        // One round trip.
        let d = Dialect::Postgres;
        self.batch(&format!(
            "BEGIN; {}; {}",
            d.local_search_path(schema).unwrap_or_default(),
            d.timeouts(t, true).unwrap_or_default()
        ))
    }

    fn batch_rows(&mut self, sql: &str) -> Result<u64, DbError> {
        let msgs = self.client.simple_query(sql).map_err(db_error)?;
        let mut rows = 0u64;
        let mut returned_rows = false;
        for m in msgs {
            match m {
                SimpleQueryMessage::CommandComplete(n) => {
                    if !returned_rows {
                        rows = rows.saturating_add(n);
                    }
                    returned_rows = false;
                }
                SimpleQueryMessage::RowDescription(_) | SimpleQueryMessage::Row(_) => {
                    returned_rows = true;
                }
                _ => {}
            }
        }
        Ok(rows)
    }

    fn relation_locks(&mut self) -> Result<Vec<RelationLock>, DbError> {
        let rows = self.query(
            "SELECT CAST(COALESCE(n.nspname || '.' || c.relname,                                   'relation ' || l.relation || ' (dropped since)') AS text),                     CAST(l.mode AS text)              FROM pg_locks l              LEFT JOIN pg_class c ON c.oid = l.relation              LEFT JOIN pg_namespace n ON n.oid = c.relnamespace              WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted                AND COALESCE(n.nspname, '') NOT IN ('pg_catalog', 'information_schema', 'pg_toast')              ORDER BY 1, 2",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| RelationLock {
                relation: r.first().and_then(Value::as_text).unwrap_or("").to_owned(),
                mode: r.get(1).and_then(Value::as_text).unwrap_or("").to_owned(),
            })
            .collect())
    }

    fn set_session_timeouts(
        &mut self,
        t: &StepTimeouts,
        idle_in_transaction: Option<std::time::Duration>,
    ) -> Result<(), DbError> {
        let mut sql = Dialect::Postgres.timeouts(t, false).unwrap_or_default();
        if let Some(idle) = idle_in_transaction {
            sql.push_str(&format!(
                "; SET idle_in_transaction_session_timeout TO {}",
                pg_millis(idle)
            ));
        }
        self.batch(&sql)
    }

    fn apply_in_transaction(
        &mut self,
        sql: &str,
        row: &NewHistoryRow<'_>,
        t: &StepTimeouts,
    ) -> Result<(), DbError> {
        if self.staged_by.as_deref() != Some(row.applied_by) {
            return Err(DbError::msg(format!(
                "internal: history row {} was not staged before its migration",
                row.name
            )));
        }
        let literal = |what: &str, v: &str| {
            token_literal(v)
                .ok_or_else(|| DbError::msg(format!("internal: {what} {v:?} is not a plain token")))
        };
        let (name, category, checksum) = (
            literal("migration name", row.name)?,
            literal("category", row.category)?,
            literal("checksum", row.checksum)?,
        );
        // Commits inside a run are asynchronous; `durable_barrier` at the end of the run (and
        // before any report) waits for the WAL flush that covers all of them. A server crash can
        // only lose whole migrations together with their history rows.
        let prelude = Self::prelude(row.schema, t);
        self.offset = u32::try_from(prelude.chars().count() + 1).unwrap_or(u32::MAX);
        let text = format!(
            "{prelude}\n{sql}\n;\n\
             INSERT INTO {} (migration_name, category, checksum, applied_at, applied_by, duration_ms) \
             VALUES ({name}, {category}, {checksum}, now(), current_setting('offkit.applied_by'), \
             CAST(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000 AS bigint));\n\
             COMMIT;",
            row.table,
        );
        match self.client.simple_query(&text) {
            Ok(msgs) => {
                let inserted = msgs
                    .iter()
                    .rev()
                    .nth(1)
                    .is_some_and(|m| matches!(m, SimpleQueryMessage::CommandComplete(1)));
                if inserted {
                    Ok(())
                } else {
                    Err(DbError::msg(format!(
                        "history row of {} was not written: the migration probably ends its own \
                         transaction (COMMIT/ROLLBACK inside a migration file is not allowed)",
                        row.name
                    )))
                }
            }
            Err(e) => {
                let err = db_error(e);
                let _ = self.client.batch_execute("ROLLBACK");
                Err(err)
            }
        }
    }

    /// A transaction that has an XID and commits with `synchronous_commit = on` flushes the WAL
    /// up to its own commit record, which covers all earlier asynchronous commits.
    fn durable_barrier(&mut self) -> Result<(), DbError> {
        self.batch("BEGIN; SELECT txid_current(); COMMIT;")
    }

    fn migration_offset(&self) -> u32 {
        self.offset
    }
}

impl Postgres {
    /// What opens the one-round-trip message of a migration: its transaction, asynchronous
    /// commit, the module's search path and the migration's timeouts.
    fn prelude(schema: &str, t: &StepTimeouts) -> String {
        let d = Dialect::Postgres;
        format!(
            "BEGIN; SET LOCAL synchronous_commit TO off; {}; {};",
            d.local_search_path(schema).unwrap_or_default(),
            d.timeouts(t, true).unwrap_or_default()
        )
    }
}
