//! Errors of the object-store drivers. Every variant names the store by its redacted URL (never a
//! secret) and, where there is one, the object key; all map to exit code 12 (`Exit::Store`),
//! except a bad URL, which is a usage error.

use crate::exit::{Exit, ExitCoded};

use super::url::UrlError;

/// An object-store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL was refused.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A local file-system operation failed (file driver, or reading a seed's source file).
    #[error("{op} {key:?} in {store}: {}", describe(.cause))]
    Io {
        /// What was being done (`put`, `get`, `list`, …).
        op: &'static str,
        /// The store, redacted.
        store: String,
        /// The object key (empty when not about one object).
        key: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// The S3 client or server failed.
    #[error("{op} {key:?} in {store}: {}", describe(.cause.as_ref()))]
    S3 {
        /// What was being done.
        op: &'static str,
        /// The store, redacted.
        store: String,
        /// The object key (empty when not about one object).
        key: String,
        /// The cause.
        cause: Box<object_store::Error>,
    },
    /// The S3 server did not accept a connection, or did not answer, within a time limit; the
    /// message names the limit, its value and how to change it.
    #[error("{op} {key:?} in {store}: {limit}: {}", describe(.cause.as_ref()))]
    S3Timeout {
        /// What was being done.
        op: &'static str,
        /// The store, redacted.
        store: String,
        /// The object key (empty when not about one object).
        key: String,
        /// The limit that fired, its value and where it was set, in words.
        limit: String,
        /// The cause.
        cause: Box<object_store::Error>,
    },
    /// The PostgreSQL server failed or refused a statement.
    #[error("{op} {key:?} in {store}: {}", describe(.cause.as_ref()))]
    Postgres {
        /// What was being done.
        op: &'static str,
        /// The store, redacted.
        store: String,
        /// The object key (empty when not about one object).
        key: String,
        /// The cause.
        cause: Box<postgres::Error>,
    },
    /// Connecting to the PostgreSQL store failed (refused, not found, timeout, authentication,
    /// TLS, database missing).
    #[error("cannot connect to {store}")]
    PgConnect {
        /// The store, redacted.
        store: String,
        /// What happened.
        source: Box<crate::pg::ConnectError>,
    },
    /// A put in create-only mode found an object already there; nothing was overwritten.
    #[error("object {key:?} already exists in {store}; it was not overwritten")]
    AlreadyExists {
        /// The store, redacted.
        store: String,
        /// The object key.
        key: String,
    },
    /// The key cannot be stored safely here (reserved name, a file where a folder must be, a
    /// symbolic link on the way).
    #[error("unsafe key {key:?} for {store}: {reason}")]
    UnsafeKey {
        /// The store, redacted.
        store: String,
        /// The object key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The bytes offered for a put were not what the caller promised (size or SHA-256); the put
    /// was abandoned before the object became visible.
    #[error(
        "source for {key:?} is not what was promised: expected {expected_size} bytes with sha256 {expected_sha256}, got {actual_size} bytes with sha256 {actual_sha256}; nothing was stored"
    )]
    SourceMismatch {
        /// The object key.
        key: String,
        /// The promised size.
        expected_size: u64,
        /// The promised digest.
        expected_sha256: String,
        /// The size actually read (may stop early when it exceeded the promise).
        actual_size: u64,
        /// The digest of what was read.
        actual_sha256: String,
    },
    /// The bytes for a put could not be read at all (the seed's source file is gone, or was
    /// replaced by a link); nothing was stored.
    #[error("source for {key:?} cannot be read: {}; nothing was stored", describe(.cause))]
    SourceUnavailable {
        /// The object key.
        key: String,
        /// Why.
        cause: std::io::Error,
    },
    /// What the store holds is inconsistent (e.g. a PostgreSQL object row whose chunks do not add
    /// up to its size).
    #[error("object {key:?} in {store} is corrupt: {reason}")]
    Corrupt {
        /// The store, redacted.
        store: String,
        /// The object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The store cannot be used as configured (e.g. no credentials where some are needed).
    #[error("{store}: {reason}")]
    Misconfigured {
        /// The store, redacted.
        store: String,
        /// What is missing or wrong, and what to do.
        reason: String,
    },
    /// The driver's runtime could not be started.
    #[error("starting the {driver} client: {}", describe(.cause))]
    Runtime {
        /// The driver.
        driver: &'static str,
        /// The cause.
        cause: std::io::Error,
    },
}

/// The cause and its sources as one line, without the repetition of libraries whose messages
/// already include their sources. Store errors carry their cause in their message (and expose no
/// `source()`), so `{:#}` printing does not repeat it either.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = s.source();
    }
    text
}

impl StoreError {
    /// The error for a put body that broke its promise.
    pub fn source_mismatch(key: &str, m: &crate::kit::digest::Mismatch) -> StoreError {
        StoreError::SourceMismatch {
            key: key.to_owned(),
            expected_size: m.expected_size,
            expected_sha256: m.expected_sha256.clone(),
            actual_size: m.actual_size,
            actual_sha256: m.actual_sha256.clone(),
        }
    }

    /// True when the bytes offered for a put were not the promised ones or could not be read:
    /// the source changed, not the store.
    pub fn is_source_problem(&self) -> bool {
        matches!(
            self,
            StoreError::SourceMismatch { .. } | StoreError::SourceUnavailable { .. }
        )
    }

    /// The key this error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            StoreError::Io { key, .. }
            | StoreError::S3 { key, .. }
            | StoreError::S3Timeout { key, .. }
            | StoreError::Postgres { key, .. }
            | StoreError::AlreadyExists { key, .. }
            | StoreError::UnsafeKey { key, .. }
            | StoreError::Corrupt { key, .. }
            | StoreError::SourceMismatch { key, .. }
            | StoreError::SourceUnavailable { key, .. } => Some(key).filter(|k| !k.is_empty()),
            StoreError::Url(_)
            | StoreError::Runtime { .. }
            | StoreError::Misconfigured { .. }
            | StoreError::PgConnect { .. } => None,
        }
        .map(String::as_str)
    }
}

impl ExitCoded for StoreError {
    fn exit(&self) -> Exit {
        match self {
            StoreError::Url(_) => Exit::Usage,
            _ => Exit::Store,
        }
    }
}

impl ExitCoded for UrlError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}
