//! `offkit store rollback RUN_ID`: removing exactly the copies a run made.
//!
//! Each copy the run recorded as `copied` is read back first: a copy whose bytes changed since the
//! run is reported and kept; one that is already gone is noted. Rows of an interrupted batch
//! (`pending`, or `failed` after their put) whose destination key was free count as the run's when
//! the object there has their digest. When the run recorded a source deletion (recorded before it
//! is made), the source is looked up and, if gone, put back first (create-only, confirmed by
//! digest); only then is the copy removed, so a rollback never loses the last copy of anything. The run's
//! index rows for removed copies and for the objects it only found in place are deleted; each
//! object's new state and the run's are recorded.

use rayon::prelude::*;

use super::record::{self, ObjectRow, ObjectState, RunState};
use super::{Ledger, TransferError, stream_copy};
use crate::kit::path::KitPath;
use crate::store::{PutRequest, Store, StoreError, WriteMode};

/// What a rollback did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RollbackReport {
    /// The run.
    pub run_id: i64,
    /// Copies removed.
    pub removed: u64,
    /// Source objects put back before their copy was removed.
    pub restored_sources: u64,
    /// Copies already gone.
    pub already_gone: u64,
    /// Copies kept because their bytes changed since the run: destination key → what is there.
    pub kept_changed: Vec<(String, String)>,
    /// Copies that could not be rolled back: source key → error.
    pub failures: Vec<(String, String)>,
    /// Index rows removed.
    pub index_rows_removed: u64,
}

impl RollbackReport {
    /// Text for a terminal.
    pub fn render_text(&self) -> String {
        use crate::kit::path::printable;
        let mut s = format!(
            "rollback of store migration run {}: {} copies removed, {} sources restored, {} already gone, {} kept (changed since the run), {} failed; {} index rows removed\n",
            self.run_id,
            self.removed,
            self.restored_sources,
            self.already_gone,
            self.kept_changed.len(),
            self.failures.len(),
            self.index_rows_removed
        );
        for (k, why) in &self.kept_changed {
            s.push_str(&format!("  kept {}: {why}\n", printable(k)));
        }
        for (k, e) in &self.failures {
            s.push_str(&format!(
                "  failed {}: {}\n",
                printable(k),
                crate::util::escape_controls(e)
            ));
        }
        s
    }

    /// Whether everything the run copied is gone again.
    pub fn complete(&self) -> bool {
        self.kept_changed.is_empty() && self.failures.is_empty()
    }
}

enum Undo {
    Removed {
        restored: bool,
    },
    /// An interrupted row whose put never happened (nothing of the run's is there).
    NotMade,
    Gone,
    Kept(String),
    Failed(String),
}

fn undo(src: &dyn Store, dst: &dyn Store, row: &ObjectRow) -> Undo {
    let (Some(dest), Some(sha), Some(size)) = (&row.dest_key, &row.sha256, row.size) else {
        return Undo::Failed("the run's record of this object is incomplete".into());
    };
    let size = u64::try_from(size).unwrap_or(0);
    let (Ok(dest), Ok(source)) = (KitPath::new(dest), KitPath::new(&row.source_key)) else {
        return Undo::Failed("the recorded keys are not valid keys".into());
    };
    // An interrupted batch's row (`pending`, or `failed` after its put) whose key was free: a
    // copy there with its digest is this run's.
    let certain = row.state == ObjectState::Copied;
    // The copy's digest decides; a deleted source is restored from the copy, streamed.
    match dst.digest(&dest) {
        Ok(None) if !certain => return Undo::NotMade,
        Ok(Some(d)) if !certain && (d.sha256 != *sha || d.size != size) => return Undo::NotMade,
        Ok(None) if row.source_deleted => {
            // Moved back since (e.g. by the reverse migration)? Then nothing is missing.
            return match src.digest(&source) {
                Ok(Some(d)) if d.sha256 == *sha && d.size == size => Undo::Gone,
                _ => Undo::Failed(
                    "the copy is gone and the run deleted the source: nothing to restore from"
                        .into(),
                ),
            };
        }
        Ok(None) => return Undo::Gone,
        Err(e) => return Undo::Failed(format!("reading the copy: {e}")),
        Ok(Some(d)) if d.sha256 != *sha || d.size != size => {
            return Undo::Kept(format!(
                "{} bytes with sha256 {} now; the run copied {size} bytes with sha256 {sha}",
                d.size, d.sha256
            ));
        }
        Ok(Some(_)) => {}
    }
    let mut restored = false;
    // The deletion is recorded before it is made: whether the source is really gone is looked up.
    let source_there = !row.source_deleted
        || match src.digest(&source) {
            Ok(Some(d)) if d.sha256 == *sha && d.size == size => true,
            Ok(None) => false,
            Ok(Some(_)) => {
                return Undo::Failed(
                    "another object is at the source key; the copy is kept".into(),
                );
            }
            Err(e) => return Undo::Failed(format!("looking up the source: {e}")),
        };
    if !source_there {
        let req = PutRequest {
            key: &source,
            size,
            media_type: super::MEDIA_TYPE,
            mode: WriteMode::CreateNew,
        };
        match stream_copy(dst, &dest, src, &req, sha) {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Undo::Failed(format!("restoring the source: {e}")),
        }
        match src.digest(&source) {
            Ok(Some(d)) if d.sha256 == *sha => restored = true,
            Ok(_) => {
                return Undo::Failed(
                    "another object is at the source key; the copy is kept".into(),
                );
            }
            Err(e) => return Undo::Failed(format!("confirming the restored source: {e}")),
        }
        if let Err(e) = src.sync() {
            return Undo::Failed(format!("making the restored source durable: {e}"));
        }
    }
    crate::failpoint::hit(&format!("transfer-rollback:{}", row.source_key));
    match dst.delete(&dest) {
        Ok(_) => Undo::Removed { restored },
        Err(e) => Undo::Failed(format!("deleting the copy: {e}")),
    }
}

/// Rolls back run `run_id` (see the module's documentation). Call with the runner's lock held.
pub fn rollback(
    src: &dyn Store,
    dst: &dyn Store,
    ledger: Ledger<'_>,
    run_id: i64,
    parallelism: usize,
) -> Result<RollbackReport, TransferError> {
    let driver = ledger.driver;
    let run = record::get(driver, run_id)?.ok_or(TransferError::UnknownRun(run_id))?;
    for (what, recorded, given) in [
        ("source", &run.from_store, src.url().redacted()),
        ("destination", &run.to_store, dst.url().redacted()),
    ] {
        if *recorded != given {
            return Err(TransferError::ResumeMismatch {
                run: run_id,
                what,
                recorded: recorded.clone(),
                given,
            });
        }
    }
    let rows: Vec<ObjectRow> = record::objects_of(driver, run_id)?.into_values().collect();
    let copies: Vec<&ObjectRow> = rows
        .iter()
        .filter(|r| {
            r.state == ObjectState::Copied
                || (matches!(r.state, ObjectState::Pending | ObjectState::Failed)
                    && !r.dest_existed
                    && r.sha256.is_some())
        })
        .collect();
    let pool = super::pool(parallelism)?;
    let results: Vec<Undo> =
        pool.install(|| copies.par_iter().map(|r| undo(src, dst, r)).collect());
    dst.sync()?;
    let mut report = RollbackReport {
        run_id,
        ..RollbackReport::default()
    };
    let mut updated = Vec::new();
    let mut unindex: Vec<String> = rows
        .iter()
        .filter(|r| r.state == ObjectState::Skipped)
        .filter_map(|r| r.dest_key.clone())
        .collect();
    for (row, result) in copies.into_iter().zip(results) {
        let mut row = row.clone();
        match result {
            Undo::Removed { restored } => {
                report.removed += 1;
                report.restored_sources += u64::from(restored);
            }
            Undo::Gone => report.already_gone += 1,
            Undo::NotMade => {}
            Undo::Kept(why) => {
                report
                    .kept_changed
                    .push((row.dest_key.clone().unwrap_or_default(), why));
                continue;
            }
            Undo::Failed(e) => {
                report.failures.push((row.source_key.clone(), e));
                continue;
            }
        }
        row.state = ObjectState::RolledBack;
        row.source_deleted = false;
        unindex.extend(row.dest_key.clone());
        updated.push(row);
    }
    report.index_rows_removed = unindex.len() as u64;
    let store = dst.url().redacted();
    let complete = report.complete();
    record::in_transaction(driver, |d| {
        record::put_objects(d, run_id, &updated)?;
        record::delete_index(d, &store, run_id, &unindex)?;
        if complete {
            record::set_state(d, run_id, RunState::RolledBack, None)
        } else {
            record::set_state(
                d,
                run_id,
                run.state,
                Some(&format!(
                    "rollback incomplete: {} copies kept (changed since the run), {} failed",
                    report.kept_changed.len(),
                    report.failures.len()
                )),
            )
        }
    })?;
    Ok(report)
}
