//! The operations besides `run`: status (read-only), rollback, and resolving an in-progress
//! no-transaction migration.

use std::time::Instant;

use crate::kit::migration_name::MigrationName;
use crate::kit::migration_name::TxMode;
use crate::migrate::drivers::{DbError, Driver};
use crate::migrate::error::{FailedMigration, FailedStep, MigrateError};
use crate::migrate::history::{
    self, DATA_PROGRESS_TABLE, HISTORY_TABLE, IN_PROGRESS_TABLE, STATE_SCHEMA,
};
use crate::migrate::lock::{Locked, Session, now_rfc3339};
use crate::migrate::plan::{self, ModuleFilter, State, Status};
use crate::migrate::report::Outcome;
use crate::migrate::runner::{RunMode, select_modules};
use crate::migrate::safety::{self, Safety};
use crate::migrate::source::{MigrationSet, Module};
use crate::migrate::sqltext;

impl Session {
    /// The status of every migration of the selected modules. Reads only; creates nothing.
    pub fn status(
        &mut self,
        set: &MigrationSet,
        filter: &ModuleFilter,
    ) -> Result<Status, MigrateError> {
        let modules = select_modules(set, filter)?;
        let schemas: Vec<&str> = modules.iter().map(|m| m.schema.as_str()).collect();
        let history = history::read(self.driver(), &schemas)
            .map_err(|e| MigrateError::db("reading the migration history", e))?;
        Ok(plan::status(&modules, &history))
    }
}

/// How far to roll back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RollbackTarget {
    /// Only the most recently applied migration (default).
    #[default]
    Last,
    /// Every migration applied after this one; it stays applied (`--to NAME`).
    To(String),
}

/// Options of a rollback.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The module (rollback works on one module at a time).
    pub module: String,
    /// How far.
    pub target: RollbackTarget,
    /// Apply or dry run.
    pub mode: RunMode,
    /// Timeouts (the rollback file's own hints apply) and lock retries.
    pub safety: Safety,
}

/// One rolled-back migration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackStep {
    /// The migration.
    pub name: String,
    /// The rollback file's checksum.
    pub rollback_checksum: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// What a rollback did (or, in a dry run, would do), in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackReport {
    /// The database (password redacted).
    pub database: String,
    /// True for a dry run.
    pub dry_run: bool,
    /// The module.
    pub module: String,
    /// Steps in execution (reverse application) order.
    pub steps: Vec<RollbackStep>,
}

/// The operator's verdict on an in-progress no-transaction migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// It completed (or was completed by hand): record it as applied.
    Applied,
    /// It did not take effect (or was undone by hand): forget the attempt so `run` retries it.
    NotApplied,
}

fn one_module<'a>(set: &'a MigrationSet, name: &str) -> Result<&'a Module, MigrateError> {
    Ok(select_modules(set, &ModuleFilter::One(name.to_owned()))?[0])
}

fn in_tx(
    driver: &mut dyn Driver,
    f: impl FnOnce(&mut dyn Driver) -> Result<(), DbError>,
) -> Result<(), DbError> {
    driver.batch("BEGIN")?;
    let r = f(driver).and_then(|()| driver.batch("COMMIT"));
    if r.is_err() {
        let _ = driver.batch("ROLLBACK");
    }
    r
}

impl Locked<'_> {
    /// Rolls back applied migrations of one module in reverse order of application, each
    /// together with the removal of its history row. Refuses before touching anything when a
    /// migration to undo has no rollback file or the module's history has problems.
    pub fn rollback(
        &mut self,
        set: &MigrationSet,
        opts: &RollbackOptions,
    ) -> Result<RollbackReport, MigrateError> {
        let module = one_module(set, &opts.module)?;
        let status = self.status(set, &ModuleFilter::One(module.name.clone()))?;
        let problems = status.problems();
        if !problems.is_empty() {
            return Err(MigrateError::State { problems });
        }
        let mut applied: Vec<_> = status
            .entries
            .iter()
            .filter_map(|e| match &e.state {
                State::Applied { applied_at, .. } => {
                    let order = MigrationName::parse(&e.name).ok()?.order_key();
                    Some((applied_at.clone(), order, e.name.clone()))
                }
                _ => None,
            })
            .collect();
        applied.sort();
        applied.reverse();
        let targets: Vec<String> = match &opts.target {
            RollbackTarget::Last => applied.iter().take(1).map(|a| a.2.clone()).collect(),
            RollbackTarget::To(stop) => {
                let Some(pos) = applied.iter().position(|a| &a.2 == stop) else {
                    return Err(MigrateError::Refused(format!(
                        "--to {stop}: {stop} is not an applied migration of module {}",
                        module.name
                    )));
                };
                applied[..pos].iter().map(|a| a.2.clone()).collect()
            }
        };
        let missing: Vec<String> = targets
            .iter()
            .filter(|n| module.get(n).is_none_or(|m| m.rollback.is_none()))
            .map(|n| format!("{}/{n}", module.name))
            .collect();
        if !missing.is_empty() {
            return Err(MigrateError::RollbackMissing { names: missing });
        }
        let mut report = RollbackReport {
            database: self.url().redacted(),
            dry_run: opts.mode == RunMode::DryRun,
            module: module.name.clone(),
            steps: Vec::new(),
        };
        for name in &targets {
            let Some(rb) = module.get(name).and_then(|m| m.rollback.as_ref()) else {
                continue;
            };
            report.steps.push(RollbackStep {
                name: name.clone(),
                rollback_checksum: rb.checksum.clone(),
                outcome: Outcome::Planned,
                duration_ms: None,
            });
        }
        if opts.mode.apply_or_dry_run("a rollback")? == RunMode::DryRun {
            return Ok(report);
        }
        let driver = self.driver();
        let d = driver.dialect();
        let schema = module.schema.as_str();
        let safety = &opts.safety;
        let session = safety.session();
        driver
            .set_session_timeouts(&session, Some(safety.idle_in_transaction_timeout))
            .map_err(|e| MigrateError::db("setting the session's timeouts", e))?;
        let delete_history = format!(
            "DELETE FROM {} WHERE migration_name = $1",
            d.table(schema, HISTORY_TABLE)
        );
        let delete_progress = format!(
            "DELETE FROM {} WHERE schema_name = $1 AND migration_name = $2",
            d.table(STATE_SCHEMA, DATA_PROGRESS_TABLE)
        );
        for step in &mut report.steps {
            let Some(m) = module.get(&step.name) else {
                continue;
            };
            let Some(rb) = m.rollback.as_ref() else {
                continue;
            };
            let t = Instant::now();
            let timeouts = safety.for_migration(&rb.hints);
            let forget = |driver: &mut dyn Driver| -> Result<(), DbError> {
                driver.execute(&delete_history, &[m.name.as_str().into()])?;
                driver.execute(&delete_progress, &[schema.into(), m.name.as_str().into()])?;
                Ok(())
            };
            let result = match rb.tx {
                TxMode::Transaction => {
                    let attempt = || {
                        driver.begin(schema, &timeouts)?;
                        let done = driver
                            .batch(&rb.sql)
                            .and_then(|()| forget(driver))
                            .and_then(|()| driver.commit());
                        if done.is_err() {
                            driver.rollback();
                        }
                        done
                    };
                    safety::with_lock_retries(safety, &timeouts, attempt, |e| e).0
                }
                TxMode::NoTransaction => {
                    let ran = (|| {
                        driver.set_session_timeouts(&timeouts, None)?;
                        if let Some(sp) = d.session_search_path(schema) {
                            driver.batch(&sp)?;
                        }
                        for (_, stmt) in sqltext::split_statements(&rb.sql) {
                            driver.batch(stmt)?;
                        }
                        Ok(())
                    })()
                    .map_err(|mut e| {
                        safety::explain(&mut e, &timeouts, 0);
                        e
                    });
                    if d.session_search_path(schema).is_some() {
                        let _ = driver.batch("SET search_path TO DEFAULT");
                    }
                    let restored = driver.set_session_timeouts(&session, None);
                    ran.and(restored).and_then(|()| in_tx(driver, forget))
                }
            };
            step.duration_ms = Some(crate::util::millis(t.elapsed()));
            if let Err(e) = result {
                step.outcome = Outcome::Failed;
                let done = report
                    .steps
                    .iter()
                    .filter(|s| s.outcome == Outcome::Applied)
                    .map(|s| s.name.clone())
                    .collect();
                let failure = FailedMigration {
                    module: module.name.clone(),
                    name: format!("{} (rollback)", m.name),
                    origin: rb.origin.clone(),
                    line: None,
                    source: e,
                    no_transaction: rb.tx == TxMode::NoTransaction,
                    step: FailedStep::Whole,
                };
                return Err(MigrateError::RollbackFailed {
                    failure: Box::new(failure),
                    done,
                });
            }
            step.outcome = Outcome::Applied;
            crate::failpoint::hit(&format!("rollback-committed:{}", step.name));
        }
        Ok(report)
    }

    /// Records the outcome of an in-progress no-transaction migration, after the operator has
    /// checked the database by hand.
    pub fn resolve(
        &mut self,
        set: &MigrationSet,
        module: &str,
        name: &str,
        resolution: Resolution,
        applied_by: &str,
    ) -> Result<String, MigrateError> {
        let module = one_module(set, module)?;
        let schema = module.schema.clone();
        let history = history::read(self.driver(), &[schema.as_str()])
            .map_err(|e| MigrateError::db("reading the migration history", e))?;
        let Some(ip) = history.in_progress(&schema, name) else {
            return Err(MigrateError::Refused(format!(
                "{}/{name} is not in progress: nothing to resolve (see `offkit migrations status`)",
                module.name
            )));
        };
        let driver = self.driver();
        let d = driver.dialect();
        let delete = format!(
            "DELETE FROM {} WHERE schema_name = $1 AND migration_name = $2",
            d.table(STATE_SCHEMA, IN_PROGRESS_TABLE)
        );
        let key = [schema.as_str().into(), name.into()];
        let result = match resolution {
            Resolution::NotApplied => in_tx(driver, |drv| drv.execute(&delete, &key).map(|_| ())),
            Resolution::Applied => {
                let Some(m) = module.get(name) else {
                    return Err(MigrateError::Refused(format!(
                        "{}/{name} is not in the kit, so it cannot be recorded as applied",
                        module.name
                    )));
                };
                if ip.checksum != m.checksum {
                    return Err(MigrateError::Refused(format!(
                        "{}/{name} was started from a file with checksum {}, but the kit's file now has {}: \
                         record it with the kit it was started from",
                        module.name, ip.checksum, m.checksum
                    )));
                }
                let insert = history::insert_sql(&d.table(&schema, HISTORY_TABLE), d.now(), "NULL");
                let by = format!(
                    "{applied_by} (resolved; started {} by {})",
                    ip.started_at, ip.started_by
                );
                in_tx(driver, |drv| {
                    drv.execute(
                        &insert,
                        &[
                            name.into(),
                            m.category().as_str().into(),
                            m.checksum.as_str().into(),
                            by.into(),
                        ],
                    )?;
                    drv.execute(&delete, &key).map(|_| ())
                })
            }
        };
        result.map_err(|e| MigrateError::db(format!("resolving {name}"), e))?;
        Ok(format!(
            "{}/{name} resolved as {} at {}",
            module.name,
            match resolution {
                Resolution::Applied => "applied",
                Resolution::NotApplied => "not applied (run will retry it)",
            },
            now_rfc3339()
        ))
    }
}
