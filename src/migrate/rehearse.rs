//! Rehearsal (`--rehearse`): every transactional migration and data migration of the plan runs,
//! with the run's timeouts, inside one transaction that is rolled back at the end. Each runs in
//! a savepoint, so that a failure is reported and (for data migrations) the rehearsal goes on as
//! the real run would. Per migration it reports time, rows changed and the table-level locks it
//! took (from `pg_locks`). No-transaction migrations cannot be rolled back: they are listed as
//! not rehearsable and not run.
//!
//! Nothing is written: no history row, no checkpoint, no state table. While it lasts, the
//! rehearsal holds every lock the migrations take, all of them until the final rollback (a real
//! run holds each only until its migration commits); operators are told so before it starts,
//! and rehearsing against a restored copy of the database is the safer habit.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::kit::migration_name::{Category, TxMode};
use crate::migrate::drivers::{DbError, Driver, RelationLock};
use crate::migrate::error::{FailedStep, MigrateError};
use crate::migrate::history::History;
use crate::migrate::report::{DataStats, Outcome, Rehearsed, RunReport};
use crate::migrate::runner::{OnError, RunOptions, migration_failed};
use crate::migrate::safety::{self, StepTimeouts};
use crate::migrate::source::{BATCH_SIZE_PARAM, Migration, Module};
use crate::migrate::sqltext;

/// What operators are told before a rehearsal starts.
pub const WARNING: &str = "a rehearsal runs the migrations in one transaction that is rolled back \
at the end; while it lasts it takes the same locks as the real run and holds them all until it \
ends. Rehearse against a restored copy of the database where you can.";

const SAVEPOINT: &str = "offkit_rehearsal";

/// Runs `steps` (the report's steps, in order) as a rehearsal; fills in the report.
pub(crate) fn rehearse(
    driver: &mut dyn Driver,
    steps: &[(&Module, &Migration)],
    history: &History,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), MigrateError> {
    driver
        .batch("BEGIN")
        .map_err(|e| MigrateError::db("starting the rehearsal's transaction", e))?;
    // The real run creates the modules' schemas first; so does the rehearsal, rolled back too.
    let d = driver.dialect();
    let schemas: BTreeSet<&str> = steps.iter().map(|(md, _)| md.schema.as_str()).collect();
    let mut result = Ok(());
    for create in schemas.iter().filter_map(|s| d.create_schema(s)) {
        if let Err(e) = driver.batch(&create) {
            result = Err(MigrateError::db("creating the modules' schemas", e));
            break;
        }
    }
    let result = result.and_then(|()| rehearse_steps(driver, steps, history, opts, report));
    driver.rollback();
    result
}

fn rehearse_steps(
    driver: &mut dyn Driver,
    steps: &[(&Module, &Migration)],
    history: &History,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), MigrateError> {
    let mut failed = Vec::new();
    for (i, (md, m)) in steps.iter().enumerate() {
        if m.tx == TxMode::NoTransaction {
            report.steps[i].outcome = Outcome::NotRehearsable;
            continue;
        }
        let timeouts = report.steps[i].timeouts;
        let started = Instant::now();
        let mut stats = (m.category() == Category::Data).then(|| {
            let done = history.data(&md.schema, m.name.as_str());
            DataStats {
                batch_size: i64::from(opts.batch_size),
                resumed_after_batches: done.map_or(0, |p| p.batches_done),
                total_batches: done.map_or(0, |p| p.batches_done),
                total_rows: done.map_or(0, |p| p.rows_done),
                ..DataStats::default()
            }
        });
        let outcome = rehearse_one(driver, md, m, &timeouts, opts, stats.as_mut());
        let step = &mut report.steps[i];
        step.duration_ms = Some(crate::util::millis(started.elapsed()));
        match outcome {
            Ok((rehearsed, retries)) => {
                step.outcome = Outcome::Rehearsed;
                step.lock_retries = retries;
                step.rehearsal = Some(rehearsed);
                step.data = stats;
            }
            Err(e) => {
                let at = e.position.map(|p| p as usize);
                let err = migration_failed(md, m, e.clone(), at, FailedStep::Whole);
                step.outcome = Outcome::Failed;
                step.error = Some(err.to_string());
                step.data = stats;
                if m.category() != Category::Data {
                    return Err(err);
                }
                failed.push(format!("{}/{}: {err}", md.name, m.name));
                if opts.on_error == OnError::StopOnError {
                    break;
                }
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::DataBatchesFailed { failed })
    }
}

/// One migration in a savepoint, retried after a lock timeout like the real run.
fn rehearse_one(
    driver: &mut dyn Driver,
    md: &Module,
    m: &Migration,
    timeouts: &StepTimeouts,
    opts: &RunOptions,
    stats: Option<&mut DataStats>,
) -> Result<(Rehearsed, u32), DbError> {
    let before: BTreeSet<RelationLock> = driver.relation_locks()?.into_iter().collect();
    let d = driver.dialect();
    let batched = sqltext::replace_placeholder(&m.sql, BATCH_SIZE_PARAM, d.batch_param());
    let attempt = || -> Result<(u64, u64), DbError> {
        driver.batch(&format!("SAVEPOINT {SAVEPOINT}"))?;
        let ran = (|| {
            driver.set_transaction_settings(&md.schema, timeouts)?;
            if m.category() != Category::Data {
                return Ok((driver.batch_rows(&m.sql)?, 0));
            }
            let (mut rows, mut batches) = (0u64, 0u64);
            loop {
                let n = driver.execute(&batched, &[i64::from(opts.batch_size).into()])?;
                if n == 0 {
                    return Ok((rows, batches));
                }
                rows = rows.saturating_add(n);
                batches += 1;
            }
        })();
        if ran.is_err() {
            let _ = driver.batch(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"));
        }
        let _ = driver.batch(&format!("RELEASE SAVEPOINT {SAVEPOINT}"));
        ran
    };
    let (result, retries) = safety::with_lock_retries(&opts.safety, timeouts, attempt, |e| e);
    let (rows, batches) = result?;
    if let Some(s) = stats {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        s.batches = n(batches);
        s.rows = n(rows);
        s.total_batches += n(batches);
        s.total_rows += n(rows);
        s.lock_retries = retries;
    }
    let locks = driver
        .relation_locks()?
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    Ok((Rehearsed { rows, locks }, retries))
}
