//! The SQLite driver (`rusqlite`, bundled): the embedded default.
//!
//! SQLite has one namespace, so a module's tables are `<schema>_<table>` and migrations use
//! unqualified names in the main database. The run-wide lock is SQLite's own exclusive lock: the
//! connection runs `BEGIN EXCLUSIVE` and, holding it, switches to `locking_mode = EXCLUSIVE`,
//! after which it keeps the file lock across its own commits until it is released or the process ends (the
//! operating system drops the lock of a killed process). Because a waiting process cannot read a
//! locked database, the holder writes its pid and start time to `<db>.offkit-lock` beside it.
//!
//! Timeouts: SQLite has no server settings, so the driver enforces them. `lock_timeout` is the
//! busy timeout (how long a statement waits for another connection's lock; a wait that runs out
//! is reported as SQLSTATE `55P03`, like PostgreSQL's). `statement_timeout` is a deadline armed at
//! the start of each call (a migration file's text is one call) and checked by a progress
//! handler every few thousand virtual-machine steps; a call past it is interrupted and reported
//! as `57014`, PostgreSQL's `query_canceled`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};

use super::{DbError, Dialect, Driver, LockHolder, RelationLock, Row, Value};
use crate::migrate::safety::StepTimeouts;

/// How many virtual-machine steps pass between two checks of the deadline.
const DEADLINE_CHECK_STEPS: i32 = 4096;

/// A SQLite database file.
pub struct Sqlite {
    conn: Connection,
    /// Where the lock holder is named (`None`: an in-memory database nobody else can open).
    holder_file: Option<PathBuf>,
    /// The statement deadline, in nanoseconds after `epoch`; 0 when none is armed.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    /// The session's timeouts, and the current transaction's when it set its own.
    session: Option<StepTimeouts>,
    local: Option<StepTimeouts>,
}

fn db_error(e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(ErrorCode::OperationInterrupted) => DbError {
            message: "canceling statement due to statement timeout".to_owned(),
            sqlstate: Some("57014".to_owned()),
            position: None,
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbError {
            message: format!("could not obtain lock: {e}"),
            sqlstate: Some("55P03".to_owned()),
            position: None,
        },
        _ => DbError::msg(e),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl Sqlite {
    /// Opens (creating if absent) the database file.
    pub fn open(path: &Path) -> Result<Sqlite, DbError> {
        let conn = Connection::open(path).map_err(|e| {
            DbError::msg(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        })?;
        let mut holder = path.as_os_str().to_owned();
        holder.push(".offkit-lock");
        Self::with_connection(conn, Some(PathBuf::from(holder)))
    }

    /// An empty database in memory: what a database file that does not exist holds, for commands
    /// that only read (nothing is created on disk).
    pub fn empty_in_memory() -> Result<Sqlite, DbError> {
        let conn = Connection::open_in_memory().map_err(db_error)?;
        Self::with_connection(conn, None)
    }

    fn with_connection(conn: Connection, holder_file: Option<PathBuf>) -> Result<Sqlite, DbError> {
        let mut db = Sqlite {
            conn,
            holder_file,
            deadline: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            session: None,
            local: None,
        };
        let (deadline, epoch) = (Arc::clone(&db.deadline), db.epoch);
        db.conn
            .progress_handler(
                DEADLINE_CHECK_STEPS,
                Some(move || {
                    let at = deadline.load(Ordering::Relaxed);
                    at != 0 && nanos_since(epoch) > at
                }),
            )
            .map_err(db_error)?;
        Ok(db)
    }

    /// The timeouts in force: the transaction's, else the session's.
    fn timeouts(&self) -> Option<&StepTimeouts> {
        self.local.as_ref().or(self.session.as_ref())
    }

    /// Arms the statement deadline for the call about to start (none when no timeout is set,
    /// or it is zero: disabled, as in PostgreSQL).
    fn arm(&self) {
        let limit = self
            .timeouts()
            .map(|t| t.statement_timeout.duration())
            .filter(|d| !d.is_zero());
        let at = limit.map_or(0, |d| {
            nanos_since(self.epoch).saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        });
        self.deadline.store(at, Ordering::Relaxed);
    }

    fn set_busy_timeout(&self) -> Result<(), DbError> {
        let wait = self
            .timeouts()
            .map_or(Duration::ZERO, |t| t.lock_timeout.duration());
        self.conn.busy_timeout(wait).map_err(db_error)
    }

    fn prepared<'c>(
        conn: &'c Connection,
        sql: &str,
        params: &[Value],
    ) -> Result<rusqlite::CachedStatement<'c>, DbError> {
        let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
        for (i, v) in params.iter().enumerate() {
            let name = format!("${}", i + 1);
            let Some(idx) = stmt.parameter_index(&name).map_err(db_error)? else {
                return Err(DbError::msg(format!("statement has no parameter {name}")));
            };
            let bound = match v {
                Value::Null => stmt.raw_bind_parameter(idx, rusqlite::types::Null),
                Value::Int(n) => stmt.raw_bind_parameter(idx, n),
                Value::Text(s) => stmt.raw_bind_parameter(idx, s),
            };
            bound.map_err(db_error)?;
        }
        Ok(stmt)
    }
}

impl Sqlite {
    /// The transaction ended: the session's timeouts are back in force.
    fn end_local(&mut self) {
        self.local = None;
        let _ = self.set_busy_timeout();
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

impl Driver for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.arm();
        self.conn.execute_batch(sql).map_err(db_error)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.arm();
        let mut stmt = Self::prepared(&self.conn, sql, params)?;
        let readonly = stmt.readonly();
        let mut rows = stmt.raw_query();
        while rows.next().map_err(db_error)?.is_some() {}
        drop(rows);
        Ok(if readonly { 0 } else { self.conn.changes() })
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.arm();
        let mut stmt = Self::prepared(&self.conn, sql, params)?;
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(db_error)? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(value(r.get_ref(i).map_err(db_error)?));
            }
            out.push(row);
        }
        Ok(out)
    }

    fn try_lock(&mut self) -> Result<bool, DbError> {
        self.conn
            .busy_timeout(std::time::Duration::ZERO)
            .map_err(db_error)?;
        // Take the EXCLUSIVE lock in normal locking mode (a failed attempt then releases every
        // partial lock), and only then switch to exclusive locking mode, in which SQLite keeps
        // the lock across this connection's later commits.
        match self.conn.execute_batch("BEGIN EXCLUSIVE") {
            Ok(()) => {}
            Err(e) if is_busy(&e) => return Ok(false),
            Err(e) => return Err(db_error(e)),
        }
        self.batch("PRAGMA locking_mode = EXCLUSIVE; COMMIT")?;
        let since = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let text = format!("pid={}\nsince={since}\n", std::process::id());
        // Best effort: the lock itself is the database file's, this only names the holder.
        if let Some(holder) = &self.holder_file {
            let _ = std::fs::write(holder, text);
        }
        Ok(true)
    }

    fn lock_holder(&mut self) -> Result<Option<LockHolder>, DbError> {
        let Some(text) = self
            .holder_file
            .as_ref()
            .and_then(|h| std::fs::read_to_string(h).ok())
        else {
            return Ok(None);
        };
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let Some(pid) = field("pid").and_then(|p| p.parse::<i64>().ok()) else {
            return Ok(None);
        };
        // A holder record of a process that is gone is stale (the lock died with it).
        let proc = Path::new("/proc");
        if proc.is_dir() && !proc.join(pid.to_string()).exists() {
            return Ok(None);
        }
        Ok(Some(LockHolder {
            pid,
            since: field("since"),
            detail: Some(format!(
                "offkit runner (per {})",
                self.holder_file
                    .as_deref()
                    .map_or_else(String::new, |h| h.display().to_string())
            )),
        }))
    }

    fn set_session_timeouts(
        &mut self,
        t: &StepTimeouts,
        _idle_in_transaction: Option<Duration>,
    ) -> Result<(), DbError> {
        // A SQLite transaction is this process's own; nothing leaves it idle.
        self.session = Some(*t);
        self.set_busy_timeout()
    }

    fn set_transaction_settings(&mut self, _schema: &str, t: &StepTimeouts) -> Result<(), DbError> {
        self.local = Some(*t);
        self.set_busy_timeout()
    }

    fn batch_rows(&mut self, sql: &str) -> Result<u64, DbError> {
        let before = self.conn.total_changes();
        self.batch(sql)?;
        Ok(self.conn.total_changes().saturating_sub(before))
    }

    fn relation_locks(&mut self) -> Result<Vec<RelationLock>, DbError> {
        // SQLite locks the database file, not tables; the runner holds it exclusively.
        Ok(vec![RelationLock {
            relation: "(the whole database file)".to_owned(),
            mode: "EXCLUSIVE".to_owned(),
        }])
    }

    fn commit(&mut self) -> Result<(), DbError> {
        let done = self.batch("COMMIT");
        if done.is_ok() {
            self.end_local();
        }
        done
    }

    fn rollback(&mut self) {
        let _ = self.batch("ROLLBACK");
        self.end_local();
    }

    fn unlock(&mut self) -> Result<(), DbError> {
        if let Some(holder) = &self.holder_file {
            let _ = std::fs::remove_file(holder);
        }
        // Leaving exclusive locking mode takes effect at the next access of the file.
        self.batch("PRAGMA locking_mode = NORMAL; SELECT count(*) FROM sqlite_master;")
    }
}
