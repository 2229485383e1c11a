//! Database URLs: `postgres://…` (or `postgresql://…`) and `sqlite://PATH`.
//!
//! This module parses the scheme and keeps the URL; it does not connect. Passwords must never be
//! printed, so [`DbUrl`] has no `Display` of the raw text: use [`DbUrl::redacted`] in messages and
//! reports.

use std::fmt;
use std::path::PathBuf;

/// A database URL whose scheme offkit knows.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbUrl {
    /// A PostgreSQL connection URL (passed as is to the `postgres` crate).
    Postgres(String),
    /// A SQLite database file; a relative path is relative to the working folder.
    Sqlite(PathBuf),
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not one offkit knows.
    #[error(
        "unsupported database URL {redacted:?}: use postgres://USER@HOST:PORT/DB or sqlite://PATH"
    )]
    Scheme {
        /// The URL with any password replaced.
        redacted: String,
    },
    /// `sqlite://` without a path.
    #[error("sqlite:// needs a file path, e.g. sqlite://./offkit.db")]
    EmptySqlitePath,
}

impl DbUrl {
    /// Parses a URL by its scheme.
    pub fn parse(url: &str) -> Result<DbUrl, UrlError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(UrlError::EmptySqlitePath);
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(path)));
        }
        Err(UrlError::Scheme {
            redacted: redact(url),
        })
    }

    /// The URL with any password replaced by `***`, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            DbUrl::Postgres(url) => redact(url),
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

/// Replaces the password of `scheme://user:password@host…` and any `password=` query or
/// key-value parameter by `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    // Query parameters (`?password=…&…`) and libpq key-value strings (`password=… host=…`).
    let lower = out.to_ascii_lowercase();
    if let Some(i) = lower.find("password=") {
        let start = i + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |j| start + j);
        out.replace_range(start..end, "***");
    }
    out
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
        assert_eq!(
            DbUrl::parse("sqlite://./offkit.db"),
            Ok(DbUrl::Sqlite(PathBuf::from("./offkit.db")))
        );
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/offkit.db"),
            Ok(DbUrl::Sqlite(PathBuf::from("/var/lib/offkit.db")))
        );
        assert_eq!(DbUrl::parse("sqlite://"), Err(UrlError::EmptySqlitePath));
        assert!(matches!(
            DbUrl::parse("mysql://root:hunter2@h/db"),
            Err(UrlError::Scheme { redacted }) if !redacted.contains("hunter2")
        ));
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
        let q = DbUrl::parse("postgres://db.local/app?user=a&password=hunter2&x=1").unwrap();
        assert_eq!(
            q.redacted(),
            "postgres://db.local/app?user=a&password=***&x=1"
        );
        let plain = DbUrl::parse("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        assert_eq!(
            plain.redacted(),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }
}
