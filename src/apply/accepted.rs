//! Anti-rollback for sites that only verify or extract: a local record (SQLite) of the kits
//! `verify --record` and `extract` accepted, per channel. A kit with a lower sequence than the
//! highest accepted one on its channel, or the same sequence as an accepted kit with another
//! manifest, is refused ([`crate::apply::compat::check_sequence`], the rule `apply` enforces from
//! its ledger) unless the operator says `--allow-downgrade`, which the record keeps.
//!
//! The record lives at `--state PATH`, else `$OFFKIT_STATE`, else
//! `$XDG_STATE_HOME/offkit/accepted.sqlite`, else `~/.local/state/offkit/accepted.sqlite`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior, params};

use crate::apply::compat::{Accepted, DowngradePolicy, Incompatible, check_sequence};
use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::Sha256Hex;
use crate::kit::manifest::Manifest;
use crate::kit::names::Timestamp;

/// Why the record could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptedError {
    /// The kit does not fit what was accepted before.
    #[error(transparent)]
    Refused(#[from] Incompatible),
    /// The record could not be opened, read or written.
    #[error("the record of accepted kits at {path}: {message}")]
    Record {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// No path for the record could be found.
    #[error(
        "no place for the record of accepted kits: set --state PATH, OFFKIT_STATE, XDG_STATE_HOME or HOME"
    )]
    NoPath,
}

impl ExitCoded for AcceptedError {
    fn exit(&self) -> Exit {
        match self {
            AcceptedError::Refused(i) => i.exit(),
            AcceptedError::Record { .. } | AcceptedError::NoPath => Exit::Io,
        }
    }
}

/// The record's default path (see the module docs).
pub fn default_path() -> Result<PathBuf, AcceptedError> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("OFFKIT_STATE") {
        return Ok(PathBuf::from(p));
    }
    let base = match (var("XDG_STATE_HOME"), var("HOME")) {
        (Some(x), _) => PathBuf::from(x),
        (None, Some(h)) => PathBuf::from(h).join(".local/state"),
        (None, None) => return Err(AcceptedError::NoPath),
    };
    Ok(base.join("offkit").join("accepted.sqlite"))
}

/// What is recorded of an accepted kit.
#[derive(Debug, Clone)]
pub struct Acceptance<'a> {
    /// The authenticated manifest.
    pub manifest: &'a Manifest,
    /// Its SHA-256.
    pub manifest_sha256: &'a Sha256Hex,
    /// The kit file's SHA-256.
    pub kit_sha256: &'a Sha256Hex,
    /// The keys whose signatures counted.
    pub signer_keyids: Vec<String>,
    /// `verify --record` or `extract`.
    pub command: &'a str,
    /// Whether `--allow-downgrade` was given.
    pub downgrade: DowngradePolicy,
}

/// The record of accepted kits.
pub struct AcceptedRecord {
    conn: Connection,
    path: PathBuf,
}

impl AcceptedRecord {
    /// Opens (creating it and its folder when absent) the record at `path`.
    pub fn open(path: &Path) -> Result<AcceptedRecord, AcceptedError> {
        let fail = |message: String| AcceptedError::Record {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .and_then(|()| {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS accepted_kits (
                        id INTEGER PRIMARY KEY,
                        channel TEXT NOT NULL,
                        sequence INTEGER NOT NULL,
                        kit_name TEXT NOT NULL,
                        kit_version TEXT NOT NULL,
                        manifest_sha256 TEXT NOT NULL,
                        kit_sha256 TEXT NOT NULL,
                        signer_keyids TEXT NOT NULL,
                        command TEXT NOT NULL,
                        allowed_downgrade INTEGER NOT NULL,
                        accepted_at TEXT NOT NULL
                    );
                    CREATE INDEX IF NOT EXISTS accepted_kits_channel
                        ON accepted_kits (channel, sequence);",
                )
            })
            .map_err(|e| fail(e.to_string()))?;
        Ok(AcceptedRecord {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn fail(&self, e: rusqlite::Error) -> AcceptedError {
        AcceptedError::Record {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Refuses `manifest` when it would roll its channel back (see the module docs).
    pub fn check(
        &self,
        manifest: &Manifest,
        manifest_sha256: &Sha256Hex,
        downgrade: DowngradePolicy,
    ) -> Result<(), AcceptedError> {
        check_against(&self.conn, manifest, manifest_sha256, downgrade).map_err(|e| match e {
            Checked::Refused(i) => AcceptedError::Refused(i),
            Checked::Db(e) => self.fail(e),
        })
    }

    /// Records an accepted kit, checking again inside the write transaction (two sites' commands
    /// racing cannot both record conflicting kits).
    pub fn record(&mut self, a: &Acceptance<'_>) -> Result<(), AcceptedError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| AcceptedError::Record {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        let result = check_against(&tx, a.manifest, a.manifest_sha256, a.downgrade)
            .map_err(|e| match e {
                Checked::Refused(i) => AcceptedError::Refused(i),
                Checked::Db(e) => AcceptedError::Record {
                    path: self.path.display().to_string(),
                    message: e.to_string(),
                },
            })
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO accepted_kits (channel, sequence, kit_name, kit_version,
                        manifest_sha256, kit_sha256, signer_keyids, command, allowed_downgrade,
                        accepted_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        a.manifest.channel.as_str(),
                        i64::try_from(a.manifest.sequence).unwrap_or(i64::MAX),
                        a.manifest.name.as_str(),
                        a.manifest.version.to_string(),
                        a.manifest_sha256.as_str(),
                        a.kit_sha256.as_str(),
                        serde_json::to_string(&a.signer_keyids).unwrap_or_default(),
                        a.command,
                        a.downgrade == DowngradePolicy::UnsafeAllow,
                        Timestamp::utc(time::OffsetDateTime::now_utc()).to_string(),
                    ],
                )
                .map_err(|e| AcceptedError::Record {
                    path: self.path.display().to_string(),
                    message: e.to_string(),
                })
            });
        result?;
        tx.commit().map_err(|e| self.fail(e))
    }
}

enum Checked {
    Refused(Incompatible),
    Db(rusqlite::Error),
}

fn check_against(
    conn: &Connection,
    manifest: &Manifest,
    manifest_sha256: &Sha256Hex,
    downgrade: DowngradePolicy,
) -> Result<(), Checked> {
    if downgrade == DowngradePolicy::UnsafeAllow {
        return Ok(());
    }
    let rows: Vec<(i64, String, String)> = conn
        .prepare(
            "SELECT sequence, manifest_sha256, kit_version FROM accepted_kits WHERE channel = ?1",
        )
        .and_then(|mut st| {
            st.query_map([manifest.channel.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(Checked::Db)?;
    check_sequence(
        manifest,
        manifest_sha256,
        rows.iter().map(|(sequence, sha, version)| Accepted {
            sequence: *sequence,
            manifest_sha256: sha,
            kit_version: version,
        }),
    )
    .map_err(Checked::Refused)
}
