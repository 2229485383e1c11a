//! Database URLs: PostgreSQL connection strings — `postgres://…` / `postgresql://…` URLs and
//! libpq keyword/value strings (`host=db dbname=app sslmode=verify-full`), read by
//! [`crate::pg::ConnInfo`] with the `PG*` environment — and `sqlite://PATH`.
//!
//! This module parses; it does not connect. Passwords must never be printed, so [`DbUrl`] has no
//! `Display` of the raw text: [`DbUrl::redacted`] is rebuilt from the parsed value without them.

use std::fmt;
use std::path::PathBuf;

use crate::pg::{ConnInfo, ConnInfoError};

/// A database URL whose scheme offkit knows.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbUrl {
    /// A PostgreSQL connection.
    Postgres(Box<ConnInfo>),
    /// A SQLite database file; a relative path is relative to the working folder.
    Sqlite(PathBuf),
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Neither a PostgreSQL connection string nor a SQLite URL.
    #[error(
        "unsupported database URL: use postgres://USER@HOST:PORT/DB, a key=value connection string (host=… dbname=…), or sqlite://PATH"
    )]
    Scheme,
    /// An object-store URL given as a database.
    #[error(
        "{0} is an object-store URL (it goes to --store); a database URL is postgres://USER@HOST:PORT/DB or sqlite://PATH"
    )]
    StoreUrl(&'static str),
    /// `sqlite://` without a path.
    #[error("sqlite:// needs a file path, e.g. sqlite://./offkit.db")]
    EmptySqlitePath,
    /// A PostgreSQL connection string that cannot be used.
    #[error(transparent)]
    Postgres(#[from] ConnInfoError),
}

/// True when `text` reads as a libpq keyword/value string (`keyword=value …`).
fn is_keyword_string(text: &str) -> bool {
    text.split_whitespace().next().is_some_and(|first| {
        first.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    })
}

impl DbUrl {
    /// Parses a URL by its scheme (PostgreSQL strings through [`ConnInfo::parse`]).
    pub fn parse(url: &str) -> Result<DbUrl, UrlError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(UrlError::EmptySqlitePath);
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || is_keyword_string(url)
        {
            return Ok(DbUrl::Postgres(Box::new(ConnInfo::parse(url)?)));
        }
        for scheme in ["file://", "s3://"] {
            if url.starts_with(scheme) {
                return Err(UrlError::StoreUrl(scheme));
            }
        }
        Err(UrlError::Scheme)
    }

    /// The URL without secrets, safe to print, log and record.
    pub fn redacted(&self) -> String {
        match self {
            DbUrl::Postgres(c) => c.redacted(),
            DbUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }

    /// The driver name: `postgres` or `sqlite`.
    pub fn kind(&self) -> &'static str {
        match self {
            DbUrl::Postgres(_) => "postgres",
            DbUrl::Sqlite(_) => "sqlite",
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert!(matches!(
            DbUrl::parse("postgres://u@h/db"),
            Ok(DbUrl::Postgres(_))
        ));
        assert!(matches!(
            DbUrl::parse("postgresql://u@h/db"),
            Ok(DbUrl::Postgres(_))
        ));
        assert!(matches!(
            DbUrl::parse("host=h dbname=db sslmode=require"),
            Ok(DbUrl::Postgres(_))
        ));
        assert_eq!(
            DbUrl::parse("sqlite://./offkit.db"),
            Ok(DbUrl::Sqlite(PathBuf::from("./offkit.db")))
        );
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/offkit.db"),
            Ok(DbUrl::Sqlite(PathBuf::from("/var/lib/offkit.db")))
        );
        assert_eq!(DbUrl::parse("sqlite://"), Err(UrlError::EmptySqlitePath));
        let e = DbUrl::parse("mysql://root:hunter2@h/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn passwords_never_shown() {
        let u =
            DbUrl::parse("postgres://admin:s3cr%40t@db.local:5432/app?sslmode=disable").unwrap();
        assert_eq!(
            u.redacted(),
            "postgres://admin:***@db.local:5432/app?sslmode=disable"
        );
        assert!(!format!("{u} {u:?}").contains("s3cr"));
        let q = DbUrl::parse("postgres://db.local/app?user=a&password=hunter2").unwrap();
        assert_eq!(q.redacted(), "postgres://a:***@db.local:5432/app");
        let plain = DbUrl::parse("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        assert_eq!(
            plain.redacted(),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }
}
