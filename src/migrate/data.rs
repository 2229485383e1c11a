//! Data migrations (`DMnnn_*.sql`): one statement run again and again with `:batch_size` bound
//! until it changes no row. Each batch commits in its own transaction together with the
//! checkpoint in `offkit.data_migration_progress`, so a crash loses at most the uncommitted batch
//! and a rerun resumes after the last committed one; no batch is lost or counted twice. The
//! statement must be written to make progress (e.g. `… WHERE id IN (SELECT id … WHERE NOT done
//! LIMIT :batch_size)`), which is also what makes resuming correct.

use std::time::Instant;

use crate::failpoint;
use crate::migrate::drivers::{DbError, Driver};
use crate::migrate::error::{FailedStep, MigrateError};
use crate::migrate::history::{
    self, DATA_PROGRESS_TABLE, DataProgress, HISTORY_TABLE, STATE_SCHEMA,
};
use crate::migrate::report::DataStats;
use crate::migrate::runner::{RunOptions, migration_failed};
use crate::migrate::safety::{self, StepTimeouts};
use crate::migrate::source::{BATCH_SIZE_PARAM, Migration, Module};
use crate::migrate::sqltext;

/// Runs one data migration to completion or to its first failing batch. Returns the counts in
/// both cases. `on_batch` hears the counts after each committed batch (for progress).
pub fn run_data_migration(
    driver: &mut dyn Driver,
    module: &Module,
    m: &Migration,
    progress: Option<&DataProgress>,
    opts: &RunOptions,
    timeouts: &StepTimeouts,
    on_batch: &dyn Fn(&DataStats),
) -> (DataStats, Result<(), MigrateError>) {
    let mut stats = DataStats {
        batch_size: i64::from(opts.batch_size),
        resumed_after_batches: progress.map_or(0, |p| p.batches_done),
        total_batches: progress.map_or(0, |p| p.batches_done),
        total_rows: progress.map_or(0, |p| p.rows_done),
        ..DataStats::default()
    };
    let result = match progress {
        Some(_) => Ok(()),
        None => start_checkpoint(driver, module, m),
    }
    .and_then(|()| batches(driver, module, m, opts, timeouts, &mut stats, on_batch));
    (stats, result)
}

/// The checkpoint row of a data migration that has none yet.
fn start_checkpoint(
    driver: &mut dyn Driver,
    module: &Module,
    m: &Migration,
) -> Result<(), MigrateError> {
    let d = driver.dialect();
    let progress = d.table(STATE_SCHEMA, DATA_PROGRESS_TABLE);
    let now = d.now();
    let name = m.name.as_str();
    driver
        .execute(
            &format!(
                "INSERT INTO {progress} (schema_name, migration_name, checksum, started_at, updated_at) \
                 VALUES ($1, $2, $3, {now}, {now})"
            ),
            &[module.schema.as_str().into(), name.into(), m.checksum.as_str().into()],
        )
        .map_err(|e| MigrateError::db(format!("creating the checkpoint of {name}"), e))?;
    Ok(())
}

fn batches(
    driver: &mut dyn Driver,
    module: &Module,
    m: &Migration,
    opts: &RunOptions,
    timeouts: &StepTimeouts,
    stats: &mut DataStats,
    on_batch: &dyn Fn(&DataStats),
) -> Result<(), MigrateError> {
    let d = driver.dialect();
    let name = m.name.as_str();
    let schema = module.schema.as_str();
    let progress = d.table(STATE_SCHEMA, DATA_PROGRESS_TABLE);
    let now = d.now();
    let key = [schema.into(), name.into()];
    let stmt = sqltext::replace_placeholder(&m.sql, BATCH_SIZE_PARAM, d.batch_param());
    let advance = format!(
        "UPDATE {progress} SET batches_done = batches_done + 1, rows_done = rows_done + $3, \
         updated_at = {now} WHERE schema_name = $1 AND migration_name = $2"
    );
    let finish_history = history::insert_sql(&d.table(schema, HISTORY_TABLE), now, "$5");
    let finish_progress = format!(
        "UPDATE {progress} SET finished_at = {now}, updated_at = {now}, last_error = NULL \
         WHERE schema_name = $1 AND migration_name = $2"
    );
    let started = Instant::now();
    loop {
        let stats_batches = stats.total_batches;
        let batch = |driver: &mut dyn Driver| -> Result<(u64, bool), (DbError, bool)> {
            driver.begin(schema, timeouts).map_err(|e| (e, false))?;
            let n = driver
                .execute(&stmt, &[i64::from(opts.batch_size).into()])
                .map_err(|e| (e, true))?;
            let rows = i64::try_from(n).unwrap_or(i64::MAX);
            let finished = n == 0;
            if !finished {
                failpoint::hit(&format!("data-batch-executed:{name}:{}", stats_batches + 1));
            }
            let runner_err = |e| (e, false);
            if finished {
                let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                driver
                    .execute(
                        &finish_history,
                        &[
                            name.into(),
                            m.category().as_str().into(),
                            m.checksum.as_str().into(),
                            opts.applied_by.as_str().into(),
                            ms.into(),
                        ],
                    )
                    .map_err(runner_err)?;
                driver.execute(&finish_progress, &key).map_err(runner_err)?;
            } else {
                driver
                    .execute(&advance, &[schema.into(), name.into(), rows.into()])
                    .map_err(runner_err)?;
            }
            driver.commit().map_err(runner_err)?;
            Ok((n, finished))
        };
        // A batch is one transaction: after a lock timeout or deadlock it is retried whole.
        let (result, retries) = safety::with_lock_retries(
            &opts.safety,
            timeouts,
            || batch(driver).inspect_err(|_| driver.rollback()),
            |e| &mut e.0,
        );
        stats.lock_retries += retries;
        match result {
            Ok((_, true)) => {
                failpoint::hit(&format!("migration-committed:{name}"));
                return Ok(());
            }
            Ok((n, false)) => {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                stats.batches += 1;
                stats.rows += n;
                stats.total_batches += 1;
                stats.total_rows += n;
                on_batch(stats);
                failpoint::hit(&format!(
                    "data-batch-committed:{name}:{}",
                    stats.total_batches
                ));
            }
            Err((e, from_statement)) => {
                let _ = driver.execute(
                    &format!(
                        "UPDATE {progress} SET failed_batches = failed_batches + 1, last_error = $3, \
                         updated_at = {now} WHERE schema_name = $1 AND migration_name = $2"
                    ),
                    &[schema.into(), name.into(), e.message.clone().into()],
                );
                return Err(if from_statement {
                    migration_failed(module, m, e, None, FailedStep::DataBatch)
                } else {
                    MigrateError::db(format!("checkpointing data migration {name}"), e)
                });
            }
        }
    }
}
