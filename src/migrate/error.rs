//! The runner's error type. Each variant says what was wrong, where, and what to do, and maps to
//! one exit code of the documented table.

use std::time::Duration;

use crate::exit::{Exit, ExitCoded};
use crate::migrate::destructive::Finding;
use crate::migrate::drivers::{DbError, LockHolder};
use crate::migrate::plan::Problem;
use crate::migrate::report::RunReport;
use crate::migrate::source::SourceError;
use crate::migrate::url::UrlError;

/// Why a runner operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database URL was refused.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The migration folder was refused.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Connecting failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL without its password.
        url: String,
        /// What the driver said.
        source: DbError,
    },
    /// Connecting to PostgreSQL failed: refused, host not found, timeout, authentication, TLS,
    /// database missing, or no host of the right kind. (The cause is the error's source: printed
    /// once, after this.)
    #[error("cannot connect to {url}")]
    PgConnect {
        /// The URL without its password.
        url: String,
        /// What happened.
        source: crate::pg::ConnectError,
    },
    /// A runner statement (not a migration's own SQL) failed.
    #[error("database error while {doing}: {source}")]
    Db {
        /// What the runner was doing.
        doing: String,
        /// What the database said.
        source: DbError,
    },
    /// Another runner held the lock until the timeout passed.
    #[error("{}", lock_message(.waited, .holder))]
    LockTimeout {
        /// How long this runner waited.
        waited: Duration,
        /// Who holds the lock, when known.
        holder: Option<LockHolder>,
    },
    /// `--module NAME` names no module of the kit.
    #[error("no module {module:?} in the kit (modules: {})", .known.join(", "))]
    UnknownModule {
        /// The name asked for.
        module: String,
        /// The modules the kit has.
        known: Vec<String>,
    },
    /// The history disagrees with the kit: drift, missing, out of order, in progress.
    #[error("migration history disagrees with the kit; nothing was run:\n{}", problems_text(.problems))]
    State {
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// Release migrations are pending and `--force` was not given.
    #[error(
        "release migrations are a manual gate: {} pending ({}); review the plan (--dry-run), then re-run with --force",
        .pending.len(), .pending.join(", ")
    )]
    ReleaseGate {
        /// `module/name` of each pending release migration.
        pending: Vec<String>,
    },
    /// A migration's own SQL failed.
    #[error("{0}")]
    MigrationFailed(Box<FailedMigration>),
    /// Data-migration batches failed (the run went on; see the report).
    #[error("data migrations had failing batches: {}; the failures are recorded and a re-run resumes from the checkpoint", .failed.join("; "))]
    DataBatchesFailed {
        /// `module/name: error` for each failed data migration.
        failed: Vec<String>,
    },
    /// A migration to roll back has no rollback file.
    #[error("cannot roll back: no rollback file for {} (expected rollback/<module>/<name>.sql); nothing was rolled back", .names.join(", "))]
    RollbackMissing {
        /// `module/name` of each migration without a rollback.
        names: Vec<String>,
    },
    /// A rollback file's SQL failed; its transaction was rolled back, earlier rollbacks stay.
    #[error(
        "{failure}\nRolled back before the failure: {}",
        if .done.is_empty() { "nothing".to_owned() } else { .done.join(", ") }
    )]
    RollbackFailed {
        /// The failing rollback.
        failure: Box<FailedMigration>,
        /// Migrations rolled back before it.
        done: Vec<String>,
    },
    /// Destructive migrations that the kit does not declare or the operator did not allow.
    #[error("{}", destructive_text(.refused))]
    Destructive {
        /// Each refused migration.
        refused: Vec<DestructiveRefusal>,
    },
    /// A request that does not fit the state of the database.
    #[error("{0}")]
    Refused(String),
}

fn lock_message(waited: &Duration, holder: &Option<LockHolder>) -> String {
    let who = match holder {
        Some(h) => format!(
            "held by pid {} since {}{}",
            h.pid,
            h.since.as_deref().unwrap_or("an unknown time"),
            h.detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        None => "held by another connection (holder unknown)".to_owned(),
    };
    format!(
        "migration lock busy after waiting {:.1}s: {who}; wait for it to finish or raise --lock-timeout",
        waited.as_secs_f64()
    )
}

/// A destructive migration the gate refused.
#[derive(Debug, Clone)]
pub struct DestructiveRefusal {
    /// `module/name`.
    pub migration: String,
    /// What was found in it.
    pub findings: Vec<Finding>,
    /// Why the kit declares it, when it does.
    pub declared: Option<String>,
}

fn destructive_text(refused: &[DestructiveRefusal]) -> String {
    let mut s = format!(
        "destructive migration(s) refused; nothing was run ({}):",
        refused.len()
    );
    for r in refused {
        match &r.declared {
            Some(why) => s.push_str(&format!(
                "\n  {}: declared by the kit ({}); review it, then allow it with --allow-destructive {}",
                r.migration,
                crate::util::escape_controls(why),
                r.migration
            )),
            None => s.push_str(&format!(
                "\n  {}: NOT declared by the kit; it cannot be allowed here (the release team must declare it in kit.toml [destructive] and rebuild)",
                r.migration
            )),
        }
        for f in &r.findings {
            s.push_str(&format!("\n    {f}"));
        }
    }
    s
}

fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A migration whose own SQL failed: where, and what the database said.
#[derive(Debug, Clone)]
pub struct FailedMigration {
    /// The module.
    pub module: String,
    /// The migration.
    pub name: String,
    /// The file (a kit path, or a file of a source folder).
    pub origin: String,
    /// The line of the file the server pointed at, when it did.
    pub line: Option<usize>,
    /// What the database said.
    pub source: DbError,
    /// True for a `-- offkit:no-transaction` migration (its effects may be partial).
    pub no_transaction: bool,
    /// What was running: the whole migration, or one batch of a data migration.
    pub step: FailedStep,
}

/// What a failed migration was running when it failed, which decides what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedStep {
    /// The migration (or its rollback, or its rehearsal) as one unit.
    Whole,
    /// One batch of a data migration: the batches committed before it stay.
    DataBatch,
}

impl std::fmt::Display for FailedMigration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (module, name) = (&self.module, &self.name);
        let at = self.line.map(|l| format!(":{l}")).unwrap_or_default();
        write!(
            f,
            "migration {module}/{name} failed ({}{at}): {}",
            self.origin, self.source
        )?;
        f.write_str(&next_steps(self))
    }
}

/// What is left of the failed migration, and what to do.
fn next_steps(failed: &FailedMigration) -> String {
    let (module, name) = (&failed.module, &failed.name);
    // With the connection gone, nobody heard whether the server committed what was in flight
    // (the COMMIT may have been the statement that was running): only atomicity can be promised.
    let lost = failed.source.connection_lost();
    let mut s = String::new();
    if failed.no_transaction {
        s.push_str(&format!(
            "\nIt ran outside a transaction, so part of it may have taken effect. Check what it \
             changed (for CREATE INDEX CONCURRENTLY: an INVALID index, `SELECT indexrelid::regclass \
             FROM pg_index WHERE NOT indisvalid`), undo or finish it by hand, then record the \
             outcome with `offkit migrations resolve {name} --module {module} --applied` or \
             `--not-applied` (then `run` retries it)."
        ));
    } else if failed.step == FailedStep::DataBatch && lost {
        s.push_str(
            "\nThe connection was lost before the server confirmed this batch: it committed whole, \
             with its checkpoint, or not at all. The batches committed before it stay; the next run \
             resumes after the last committed one.",
        );
    } else if failed.step == FailedStep::DataBatch {
        s.push_str(
            "\nThis batch's transaction was rolled back; the batches committed before it stay, \
             with their checkpoint, and the next run resumes after them.",
        );
    } else if lost {
        s.push_str(
            "\nThe connection was lost before the server confirmed the commit: the migration and \
             its history row were committed together or not at all; the next run sees which and \
             goes on from there.",
        );
    } else {
        s.push_str("\nIts transaction was rolled back together with its history row.");
    }
    s
}

impl MigrateError {
    /// Wraps a driver error with what the runner was doing.
    pub fn db(doing: impl Into<String>, source: DbError) -> Self {
        MigrateError::Db {
            doing: doing.into(),
            source,
        }
    }

    /// True when the database connection is gone (see [`DbError::connection_lost`]): nothing more
    /// can run on this session, and its lock is gone with it.
    pub fn connection_lost(&self) -> bool {
        match self {
            MigrateError::Db { source, .. } => source.connection_lost(),
            MigrateError::MigrationFailed(f) => f.source.connection_lost(),
            MigrateError::RollbackFailed { failure, .. } => failure.source.connection_lost(),
            _ => false,
        }
    }
}

impl ExitCoded for MigrateError {
    fn exit(&self) -> Exit {
        match self {
            MigrateError::Url(_) | MigrateError::UnknownModule { .. } => Exit::Usage,
            MigrateError::ReleaseGate { .. } | MigrateError::Refused(_) => Exit::Usage,
            MigrateError::Source(e) => e.exit(),
            MigrateError::Connect { .. }
            | MigrateError::PgConnect { .. }
            | MigrateError::Db { .. } => Exit::Database,
            MigrateError::MigrationFailed(_) | MigrateError::RollbackFailed { .. } => {
                Exit::Database
            }
            MigrateError::LockTimeout { .. } => Exit::LockBusy,
            MigrateError::State { .. } | MigrateError::RollbackMissing { .. } => {
                Exit::MigrationState
            }
            MigrateError::DataBatchesFailed { .. } => Exit::PartialFailure,
            MigrateError::Destructive { .. } => Exit::Destructive,
        }
    }
}

/// A failed run: the error, and the report of what was done before it.
#[derive(Debug, thiserror::Error)]
#[error("{error}\n{}", applied_before(.report))]
pub struct RunFailure {
    /// What stopped the run.
    pub error: MigrateError,
    /// What the run did before it stopped (applied migrations, data progress).
    pub report: Box<RunReport>,
}

fn applied_before(report: &RunReport) -> String {
    let applied = report.applied_names();
    if applied.is_empty() {
        "Applied by this run before the failure: nothing.".to_owned()
    } else {
        format!(
            "Applied by this run before the failure ({}): {}",
            applied.len(),
            applied.join(", ")
        )
    }
}

impl ExitCoded for RunFailure {
    fn exit(&self) -> Exit {
        self.error.exit()
    }
}

impl From<MigrateError> for RunFailure {
    fn from(error: MigrateError) -> Self {
        RunFailure {
            error,
            report: Box::default(),
        }
    }
}
