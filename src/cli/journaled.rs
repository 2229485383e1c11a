//! Recording a command that changes a database or a store in the operations journal
//! ([`crate::apply::journal`]): `migrations run|rollback|resolve|import-legacy` and
//! `store put-dir`. (`apply` has its own ledger; `store migrate` its run tables.)

use super::CliError;
use crate::apply::journal;
use crate::apply::ledger::Outcome;
use crate::exit::Exit;
use crate::migrate::Locked;
use crate::migrate::runner;

/// What a journaled command did: its report (as JSON, for the digest), whether it changed
/// anything (a refusal changed nothing), and its result.
pub(super) struct Journaled<T> {
    /// The report, serialised (its SHA-256 goes into the row).
    pub report: Option<Vec<u8>>,
    /// Whether the command changed anything before it ended.
    pub changed: bool,
    /// How it ended.
    pub result: Result<T, CliError>,
}

/// Runs a command holding the migration lock, on record: `load` prepares what it works from
/// (and names it for the row); then a `running` row is inserted, `f` runs, and the row gets its
/// outcome, report digest and error. When `load` fails the row says `refused`, with `unloaded`
/// as its subject. A command refused before it changed anything is kept on record when the site
/// already has a journal, and otherwise leaves the database as it was (the journal it would have
/// started is taken back).
pub(super) fn record<S, T>(
    locked: &mut Locked<'_>,
    command: &str,
    overrides: &[String],
    unloaded: &str,
    load: impl FnOnce(&mut Locked<'_>) -> Result<(S, String), CliError>,
    f: impl FnOnce(&mut Locked<'_>, S) -> Journaled<T>,
) -> Result<T, CliError> {
    let db = |e: crate::migrate::DbError| {
        CliError::msg(
            Exit::Database,
            format!("cannot write the operations journal: {e}"),
        )
    };
    let actor = runner::default_applied_by();
    let created = journal::missing(locked.driver()).map_err(db)?;
    let (id, done) = match load(locked) {
        Ok((loaded, subject)) => {
            let id = journal::start(locked.driver(), command, &subject, &actor, overrides)
                .map_err(db)?;
            (id, f(locked, loaded))
        }
        Err(e) => {
            let id = journal::start(locked.driver(), command, unloaded, &actor, overrides)
                .map_err(db)?;
            let refused = Journaled {
                report: None,
                changed: false,
                result: Err(e),
            };
            (id, refused)
        }
    };
    let Journaled {
        report,
        changed,
        result,
    } = done;
    if result.is_err() && !changed && (created.table || created.schema) {
        journal::forget(locked.driver(), id, created).map_err(db)?;
        return result;
    }
    let digest = report.map(|r| crate::util::sha256_hex(&r));
    let (outcome, error) = match &result {
        Ok(_) => (Outcome::Succeeded, None),
        Err(e) if !changed => (Outcome::Refused, Some(super::chain_text(&e.error))),
        Err(e) => (Outcome::Failed, Some(super::chain_text(&e.error))),
    };
    if let Err(e) = journal::finish(
        locked.driver(),
        id,
        outcome,
        digest.as_deref(),
        error.as_deref(),
    ) {
        super::warn(&format!(
            "the operations journal row #{id} was not finished: {e}"
        ));
    }
    result
}
