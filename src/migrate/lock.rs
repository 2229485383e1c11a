//! Sessions and the run-wide migration lock.
//!
//! A [`Session`] is one database connection. Operations that change migration state (run,
//! rollback, resolve, legacy import) are methods of [`Locked`], which only [`Session::lock`]
//! returns: "changing migrations without the lock" does not compile. The lock is released when
//! the `Locked` guard is dropped (and, at worst, when the connection or the process ends).
//!
//! PostgreSQL key: a session-level advisory lock on the bigint [`LOCK_KEY`], the first eight bytes
//! (big-endian, signed) of SHA-256(`offkit/migrate/lock/v1`). Advisory locks are scoped to the
//! current database, so this is one lock per database. In `pg_locks` it shows as
//! `locktype = 'advisory'`, `classid` = high 32 bits, `objid` = low 32 bits, `objsubid = 1`.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::migrate::drivers::{self, Dialect, Driver};
use crate::migrate::error::MigrateError;
use crate::migrate::url::DbUrl;

/// The advisory-lock key: SHA-256(`offkit/migrate/lock/v1`)[0..8] as a big-endian i64.
pub const LOCK_KEY: i64 = 0x2072_c399_19cb_ee1b;

/// Prefix of the `application_name` a PostgreSQL lock holder sets, followed by the time it took
/// the lock.
pub const LOCK_TAG_PREFIX: &str = "offkit: migration lock since ";

/// The `application_name` a holder sets right after taking the lock.
pub fn lock_tag() -> String {
    format!("{LOCK_TAG_PREFIX}{}", now_rfc3339())
}

/// The current time as RFC 3339 UTC text (seconds precision).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One connection to a migration target.
pub struct Session {
    url: DbUrl,
    driver: Box<dyn Driver>,
    warnings: Vec<String>,
    /// The SQLite file this session created by opening it (it did not exist before).
    created: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("url", &self.url).finish()
    }
}

impl Session {
    /// Connects to `url` for a command that only reads: as [`Session::connect`], except that a
    /// SQLite file that does not exist is not created — it is read as the empty database it would
    /// be (in memory), and a warning says so.
    pub fn connect_existing(url: &DbUrl) -> Result<Session, MigrateError> {
        if let DbUrl::Sqlite(p) = url
            && !p.exists()
        {
            let driver = drivers::sqlite::Sqlite::empty_in_memory().map_err(|source| {
                MigrateError::Connect {
                    url: url.redacted(),
                    source,
                }
            })?;
            return Ok(Session {
                url: url.clone(),
                driver: Box::new(driver),
                created: None,
                warnings: vec![format!(
                    "{} does not exist: read as an empty database (nothing was created)",
                    url.redacted()
                )],
            });
        }
        Self::connect(url)
    }

    /// Connects to `url` (PostgreSQL) or opens it (SQLite, created if absent).
    pub fn connect(url: &DbUrl) -> Result<Session, MigrateError> {
        let created = match url {
            DbUrl::Sqlite(p) if !p.exists() => Some(p.clone()),
            _ => None,
        };
        let (driver, warnings): (Box<dyn Driver>, Vec<String>) = match url {
            DbUrl::Postgres(info) => {
                let connected =
                    crate::pg::connect(info).map_err(|source| MigrateError::PgConnect {
                        url: url.redacted(),
                        source,
                    })?;
                let warnings = connected.warnings.clone();
                let driver = drivers::postgres::Postgres::from_client(connected.client).map_err(
                    |source| MigrateError::Connect {
                        url: url.redacted(),
                        source,
                    },
                )?;
                (Box::new(driver), warnings)
            }
            DbUrl::Sqlite(p) => (
                Box::new(drivers::sqlite::Sqlite::open(p).map_err(|source| {
                    MigrateError::Connect {
                        url: url.redacted(),
                        source,
                    }
                })?),
                Vec::new(),
            ),
        };
        Ok(Session {
            url: url.clone(),
            driver,
            warnings,
            created,
        })
    }

    /// Closes the session; when it created its SQLite file and nothing was written in it (no
    /// table), removes the file, so that a refused command leaves no empty database behind.
    /// Returns whether it did.
    pub fn close_discarding_unused(mut self) -> bool {
        let Some(path) = self.created.take() else {
            return false;
        };
        let empty = self
            .driver
            .query("SELECT count(*) FROM sqlite_master", &[])
            .ok()
            .and_then(|rows| rows.first().and_then(|r| r.first().cloned()))
            .is_some_and(|v| v == drivers::Value::Int(0));
        drop(self);
        if !empty {
            return false;
        }
        for suffix in ["", "-journal", "-wal", "-shm", ".offkit-lock"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        true
    }

    /// Remarks from connecting that the operator should see (an ignored password file).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The URL this session is connected to (print it with `redacted()`).
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// The SQL dialect.
    pub fn dialect(&self) -> Dialect {
        self.driver.dialect()
    }

    /// The connection's primitive surface (`batch`, `execute`, `query`), for callers that keep
    /// their own tables on the same connection (e.g. `offkit apply`'s ledger).
    pub fn driver(&mut self) -> &mut dyn Driver {
        self.driver.as_mut()
    }

    /// Takes the run-wide lock, retrying with backoff until `timeout` has passed; then fails
    /// naming the holder.
    pub fn lock(&mut self, timeout: Duration) -> Result<Locked<'_>, MigrateError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let got = self
                .driver
                .try_lock()
                .map_err(|e| MigrateError::db("taking the migration lock", e))?;
            if got {
                crate::failpoint::hit("lock-acquired");
                return Ok(Locked {
                    session: self,
                    released: false,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                let holder = self.driver.lock_holder().ok().flatten();
                return Err(MigrateError::LockTimeout {
                    waited: started.elapsed(),
                    holder,
                });
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// A session that holds the migration lock. Dereferences to [`Session`].
pub struct Locked<'s> {
    session: &'s mut Session,
    released: bool,
}

impl std::fmt::Debug for Locked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked")
            .field("session", &self.session)
            .finish()
    }
}

impl Locked<'_> {
    /// Releases the lock now (dropping the guard does the same, ignoring errors).
    pub fn unlock(mut self) -> Result<(), MigrateError> {
        self.released = true;
        self.session
            .driver
            .unlock()
            .map_err(|e| MigrateError::db("releasing the migration lock", e))
    }
}

impl Deref for Locked<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.session.driver.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn lock_key_is_derived_as_documented() {
        let h = Sha256::digest(b"offkit/migrate/lock/v1");
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        assert_eq!(LOCK_KEY, i64::from_be_bytes(first));
    }
}
