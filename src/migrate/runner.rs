//! Running migrations: options, module selection, and the run itself (schema migrations, then
//! data migrations), under the lock, reading the history once.
//!
//! A transactional migration commits together with its history row. A no-transaction migration
//! is bracketed by a durable in-progress record, so that a crash or failure inside it leaves a
//! state that `status` shows and `run` refuses to pass until `resolve`. Data migrations are in
//! [`crate::migrate::data`].

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::failpoint;
use crate::kit::migration_name::Category;
use crate::kit::migration_name::TxMode;
use crate::migrate::drivers::{DbError, Driver, NewHistoryRow};
use crate::migrate::error::{
    DestructiveRefusal, FailedMigration, FailedStep, MigrateError, RunFailure,
};
use crate::migrate::history::{self, HISTORY_TABLE, History, IN_PROGRESS_TABLE, STATE_SCHEMA};
use crate::migrate::lock::{Locked, Session, now_rfc3339};
use crate::migrate::plan::{self, Missing, ModuleFilter, OutOfOrder, State};
use crate::migrate::report::{NotSelected, Outcome, Realigned, RunReport, Step, StepDestructive};
use crate::migrate::safety::{self, Safety, StepTimeouts};
use crate::migrate::source::{Migration, MigrationSet, Module};
use crate::migrate::sqltext;

/// Whether pending release migrations may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReleaseGate {
    /// Print the plan and refuse (default: release migrations are a manual gate).
    #[default]
    Refuse,
    /// Run them (`--force`, after reviewing `--dry-run`).
    Force,
}

/// What a failing data-migration batch does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Record the failure, go on with the next data migration, exit non-zero at the end (default).
    #[default]
    Continue,
    /// Stop at the first failing batch (`--stop-on-error`).
    StopOnError,
}

/// Whether a run changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// Apply the plan.
    #[default]
    Apply,
    /// Print the exact ordered plan with checksums; change nothing (`--dry-run`).
    DryRun,
    /// Run the transactional migrations and data migrations in one transaction that is rolled
    /// back at the end, and report time, rows and locks per migration (`--rehearse`; runs only,
    /// not rollbacks or legacy imports).
    Rehearse,
}

impl RunMode {
    /// Refuses modes an operation other than a run does not have.
    pub fn apply_or_dry_run(self, what: &str) -> Result<RunMode, MigrateError> {
        if self == RunMode::Rehearse {
            return Err(MigrateError::Refused(format!(
                "{what} cannot be rehearsed; use --dry-run"
            )));
        }
        Ok(self)
    }
}

/// Options of a run. Schema-migration failures always stop the run; `on_error` is about data
/// migrations.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The modules to run.
    pub modules: ModuleFilter,
    /// The categories to run (default: startup and seed).
    pub categories: BTreeSet<Category>,
    /// The release gate.
    pub release: ReleaseGate,
    /// Apply or dry run.
    pub mode: RunMode,
    /// Data-migration batch failures.
    pub on_error: OnError,
    /// The value bound to `:batch_size` (default 500).
    pub batch_size: u32,
    /// Pending migrations numbered below applied ones.
    pub out_of_order: OutOfOrder,
    /// Applied migrations absent from the kit.
    pub missing: Missing,
    /// Recorded in `applied_by` (default `user@host`).
    pub applied_by: String,
    /// Timeouts and lock retries.
    pub safety: Safety,
    /// Which destructive migrations the operator allows.
    pub destructive: AllowDestructive,
}

/// Which destructive migrations (declared by the kit) the operator allows to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowDestructive {
    /// None (default): a pending destructive migration stops the run before anything runs.
    #[default]
    None,
    /// These, each `module/name` or a bare migration name (`--allow-destructive NAME`).
    Only(BTreeSet<String>),
    /// Every declared one (`--allow-destructive all`).
    All,
}

impl AllowDestructive {
    /// From the command line's values: `all`, or names.
    pub fn from_args(values: &[String]) -> AllowDestructive {
        if values.iter().any(|v| v == "all") {
            AllowDestructive::All
        } else if values.is_empty() {
            AllowDestructive::None
        } else {
            AllowDestructive::Only(values.iter().cloned().collect())
        }
    }

    /// True when migration `name` of `module` is allowed.
    pub fn allows(&self, module: &str, name: &str) -> bool {
        match self {
            AllowDestructive::None => false,
            AllowDestructive::All => true,
            AllowDestructive::Only(set) => {
                set.contains(name) || set.contains(&format!("{module}/{name}"))
            }
        }
    }
}

/// The default batch size of data migrations.
pub const DEFAULT_BATCH_SIZE: u32 = 500;

/// The categories a run applies unless asked for more.
pub fn automatic_categories() -> BTreeSet<Category> {
    BTreeSet::from([Category::Startup, Category::Seed])
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            modules: ModuleFilter::All,
            categories: automatic_categories(),
            release: ReleaseGate::default(),
            mode: RunMode::default(),
            on_error: OnError::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            out_of_order: OutOfOrder::default(),
            missing: Missing::default(),
            applied_by: default_applied_by(),
            safety: Safety::default(),
            destructive: AllowDestructive::default(),
        }
    }
}

/// `user@host` of this process, for `applied_by`.
pub fn default_applied_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host}")
}

/// The modules a filter selects.
pub fn select_modules<'a>(
    set: &'a MigrationSet,
    filter: &ModuleFilter,
) -> Result<Vec<&'a Module>, MigrateError> {
    match filter {
        ModuleFilter::All => Ok(set.modules.iter().collect()),
        ModuleFilter::One(name) => match set.module(name) {
            Some(m) => Ok(vec![m]),
            None => Err(MigrateError::UnknownModule {
                module: name.clone(),
                known: set.modules.iter().map(|m| m.name.clone()).collect(),
            }),
        },
    }
}

/// The 1-based line of `sql` at character offset `pos` (1-based, as PostgreSQL reports).
pub(crate) fn line_at(sql: &str, pos: usize) -> usize {
    sql.chars()
        .take(pos.saturating_sub(1))
        .filter(|&c| c == '\n')
        .count()
        + 1
}

/// Turns a migration's SQL error into [`MigrateError::MigrationFailed`].
pub(crate) fn migration_failed(
    module: &Module,
    m: &Migration,
    source: DbError,
    char_offset: Option<usize>,
    step: FailedStep,
) -> MigrateError {
    let line = char_offset.map(|off| line_at(&m.sql, off));
    MigrateError::MigrationFailed(Box::new(FailedMigration {
        module: module.name.clone(),
        name: m.name.as_str().to_owned(),
        origin: m.origin.clone(),
        line,
        source,
        no_transaction: m.tx == TxMode::NoTransaction,
        step,
    }))
}

fn ms_since(t: Instant) -> u64 {
    crate::util::millis(t.elapsed())
}

/// Runs a no-transaction migration between a durable in-progress record and its completion.
fn apply_no_transaction(
    driver: &mut dyn Driver,
    module: &Module,
    m: &Migration,
    opts: &RunOptions,
    t: &StepTimeouts,
) -> Result<(), MigrateError> {
    let applied_by = opts.applied_by.as_str();
    let d = driver.dialect();
    let name = m.name.as_str();
    let schema = module.schema.as_str();
    let state = d.table(STATE_SCHEMA, IN_PROGRESS_TABLE);
    driver
        .execute(
            &format!(
                "INSERT INTO {state} (schema_name, migration_name, checksum, started_at, started_by) \
                 VALUES ($1, $2, $3, {}, $4)",
                d.now()
            ),
            &[schema.into(), name.into(), m.checksum.as_str().into(), applied_by.into()],
        )
        .map_err(|e| MigrateError::db(format!("recording {name} as in progress"), e))?;
    failpoint::hit(&format!("no-transaction-recorded:{name}"));
    let started = Instant::now();
    // No retry here: a statement that timed out may follow others that took effect.
    let mut result = driver.set_session_timeouts(t, None).map_err(|e| (e, None));
    if let (Ok(()), Some(set)) = (&result, d.session_search_path(schema)) {
        result = driver.batch(&set).map_err(|e| (e, None));
    }
    if result.is_ok() {
        for (offset, stmt) in sqltext::split_statements(&m.sql) {
            if let Err(e) = driver.batch(stmt) {
                let chars_before = m.sql[..offset].chars().count();
                let at = e.position.map(|p| chars_before + p as usize);
                result = Err((e, at));
                break;
            }
        }
    }
    if d.session_search_path(schema).is_some() {
        let _ = driver.batch("SET search_path TO DEFAULT");
    }
    let restored = driver.set_session_timeouts(&opts.safety.session(), None);
    let result = result.map_err(|(mut e, at)| {
        safety::explain(&mut e, t, 0);
        (e, at)
    });
    if let Err((e, at)) = result {
        let _ = driver.execute(
            &format!(
                "UPDATE {state} SET last_error = $1 WHERE schema_name = $2 AND migration_name = $3"
            ),
            &[e.message.clone().into(), schema.into(), name.into()],
        );
        return Err(migration_failed(module, m, e, at, FailedStep::Whole));
    }
    if let Err(e) = restored {
        return Err(MigrateError::db(
            format!(
                "restoring the session's timeouts after {name} (it ran; its in-progress record remains)"
            ),
            e,
        ));
    }
    failpoint::hit(&format!("no-transaction-executed:{name}"));
    let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let insert = history::insert_sql(&d.table(schema, HISTORY_TABLE), d.now(), "$5");
    let delete = format!("DELETE FROM {state} WHERE schema_name = $1 AND migration_name = $2");
    let record = (|| {
        driver.batch("BEGIN")?;
        driver.execute(
            &insert,
            &[
                name.into(),
                m.category().as_str().into(),
                m.checksum.as_str().into(),
                applied_by.into(),
                duration.into(),
            ],
        )?;
        driver.execute(&delete, &[schema.into(), name.into()])?;
        driver.batch("COMMIT")
    })();
    if let Err(e) = record {
        let _ = driver.batch("ROLLBACK");
        return Err(MigrateError::db(
            format!("recording {name} as applied (it ran; its in-progress record remains)"),
            e,
        ));
    }
    Ok(())
}

fn step_of(module: &Module, m: &Migration, opts: &RunOptions) -> Step {
    let destructive = m.is_destructive().then(|| StepDestructive {
        findings: m.findings.clone(),
        declared: m.declared.clone(),
        allowed: m.declared.is_some() && opts.destructive.allows(&module.name, m.name.as_str()),
    });
    let safety = &opts.safety;
    Step {
        module: module.name.clone(),
        name: m.name.as_str().to_owned(),
        category: m.category(),
        checksum: m.checksum.clone(),
        tx: m.tx,
        timeouts: safety.for_migration(&m.hints),
        destructive,
        outcome: Outcome::Planned,
        rehearsal: None,
        lock_retries: 0,
        duration_ms: None,
        data: None,
        error: None,
    }
}

/// Ends a run with `error`. Steps still planned become "not run" once execution has begun; a
/// refusal before any step keeps them as the plan it refused.
fn fail(
    report: &mut RunReport,
    error: MigrateError,
    already: usize,
    started: Instant,
) -> RunFailure {
    let executed = report.steps.iter().any(|s| s.outcome != Outcome::Planned);
    for s in &mut report.steps {
        if executed && s.outcome == Outcome::Planned {
            s.outcome = Outcome::NotRun;
        }
    }
    report.duration_ms = ms_since(started);
    report.count(already);
    RunFailure {
        error,
        report: Box::new(report.clone()),
    }
}

impl Session {
    /// The exact ordered plan a run with these options would execute, with checksums: a dry run.
    /// Reads only (creates no table) and needs no lock. Refuses like a run would (drift, missing,
    /// out of order, in progress), with the plan in the failure's report.
    pub fn plan(&mut self, set: &MigrationSet, opts: &RunOptions) -> Result<RunReport, RunFailure> {
        let opts = RunOptions {
            mode: RunMode::DryRun,
            ..opts.clone()
        };
        run_or_plan(self, set, &opts)
    }
}

impl Locked<'_> {
    /// Runs the selected migrations: schema migrations (per module, in order), then data
    /// migrations. Reads the history once. The report says what was applied, also on failure.
    /// With [`RunMode::DryRun`] it is [`Session::plan`].
    pub fn run(&mut self, set: &MigrationSet, opts: &RunOptions) -> Result<RunReport, RunFailure> {
        run_or_plan(self, set, opts)
    }
}

/// A plan checked against the history: the report's steps and the migrations behind them.
pub(crate) struct Planned<'a> {
    /// The report, its steps planned.
    pub report: RunReport,
    /// Schema migrations in order, then data migrations: one per report step.
    pub steps: Vec<(&'a Module, &'a Migration)>,
    /// How many of `steps` are schema migrations.
    pub schema_steps: usize,
    /// The history read.
    pub history: History,
    /// Migrations already applied.
    pub already: usize,
    /// The selected modules' schemas.
    pub schemas: Vec<&'a str>,
    /// When planning started.
    pub started: Instant,
}

impl Planned<'_> {
    /// Ends the run with `error` (see [`fail`]).
    pub fn fail(&mut self, error: MigrateError) -> RunFailure {
        fail(&mut self.report, error, self.already, self.started)
    }
}

/// Records the kit's signed realignments: each history row still holding the shipped checksum
/// takes the kit's (one row, or the run stops: the history changed under the lock).
fn realign(
    driver: &mut dyn Driver,
    set: &MigrationSet,
    realigned: &mut [Realigned],
) -> Result<(), MigrateError> {
    for r in realigned.iter_mut() {
        let Some(module) = set.modules.iter().find(|m| m.name == r.module) else {
            continue;
        };
        let table = driver.dialect().table(&module.schema, HISTORY_TABLE);
        let sql =
            format!("UPDATE {table} SET checksum = $1 WHERE migration_name = $2 AND checksum = $3");
        let what = format!("realigning the checksum of {}/{}", r.module, r.name);
        let n = driver
            .execute(
                &sql,
                &[
                    r.to.as_str().into(),
                    r.name.as_str().into(),
                    r.from.as_str().into(),
                ],
            )
            .map_err(|e| MigrateError::db(what.clone(), e))?;
        if n != 1 {
            return Err(MigrateError::db(
                what,
                crate::migrate::DbError::msg(format!(
                    "{n} history rows held the shipped checksum, expected one"
                )),
            ));
        }
        r.done = true;
    }
    Ok(())
}

/// Reads the history once and plans the selected migrations; refuses (with the plan in the
/// report) when the history disagrees with the kit. Reads only.
pub(crate) fn prepare<'a>(
    session: &mut Session,
    set: &'a MigrationSet,
    opts: &RunOptions,
) -> Result<Planned<'a>, RunFailure> {
    let started = Instant::now();
    let modules = select_modules(set, &opts.modules)?;
    let schemas: Vec<&str> = modules.iter().map(|m| m.schema.as_str()).collect();
    let database = session.url().redacted();
    let driver = session.driver();
    let history = history::read(driver, &schemas)
        .map_err(|e| MigrateError::db("reading the migration history", e))?;
    let status = plan::status(&modules, &history);
    let blocking = plan::blocking_problems(&status, opts.out_of_order, opts.missing);
    let mut report = RunReport {
        database,
        dry_run: opts.mode == RunMode::DryRun,
        rehearsal: opts.mode == RunMode::Rehearse,
        categories: opts.categories.iter().copied().collect(),
        limits: crate::migrate::report::Limits::of(&opts.safety),
        started_at: now_rfc3339(),
        ..RunReport::default()
    };
    let already = status
        .entries
        .iter()
        .filter(|e| matches!(e.state, State::Applied { .. }))
        .count();
    if !blocking.is_empty() {
        let err = MigrateError::State { problems: blocking };
        return Err(fail(&mut report, err, already, started));
    }
    report.allowed_problems = status.problems();
    report.realigned = status
        .entries
        .iter()
        .filter_map(|e| match &e.state {
            State::Realign {
                applied_checksum, ..
            } => Some(Realigned {
                module: e.module.clone(),
                name: e.name.clone(),
                from: applied_checksum.clone(),
                to: e.checksum.clone().unwrap_or_default(),
                done: false,
            }),
            _ => None,
        })
        .collect();

    let all: BTreeSet<Category> = Category::ALL.into_iter().collect();
    let pending = status.pending(&all);
    let by_name: HashMap<(&str, &str), (&Module, &Migration)> = modules
        .iter()
        .flat_map(|md| {
            md.migrations
                .iter()
                .map(move |m| ((md.name.as_str(), m.name.as_str()), (*md, m)))
        })
        .collect();
    let find = |module: &str, name: &str| by_name.get(&(module, name)).copied();
    let mut schema_steps = Vec::new();
    let mut data_steps = Vec::new();
    for e in pending {
        let Some((md, m)) = find(&e.module, &e.name) else {
            continue;
        };
        if !opts.categories.contains(&e.category) {
            report.not_selected.push(NotSelected {
                module: e.module.clone(),
                name: e.name.clone(),
                category: e.category,
            });
        } else if e.category == Category::Data {
            data_steps.push((md, m));
        } else {
            schema_steps.push((md, m));
        }
    }
    let schema_count = schema_steps.len();
    let steps: Vec<_> = schema_steps.into_iter().chain(data_steps).collect();
    report.steps = steps.iter().map(|(md, m)| step_of(md, m, opts)).collect();
    report.count(already);
    Ok(Planned {
        report,
        steps,
        schema_steps: schema_count,
        history,
        already,
        schemas,
        started,
    })
}

/// The gates a run passes before anything runs: the release gate and the destructive gate.
pub(crate) fn check_gates(report: &RunReport, opts: &RunOptions) -> Result<(), MigrateError> {
    let gated: Vec<String> = report
        .steps
        .iter()
        .filter(|s| s.category == Category::Release)
        .map(|s| format!("{}/{}", s.module, s.name))
        .collect();
    if !gated.is_empty() && opts.release == ReleaseGate::Refuse {
        return Err(MigrateError::ReleaseGate { pending: gated });
    }
    let refused: Vec<DestructiveRefusal> = report
        .steps
        .iter()
        .filter_map(|s| {
            let d = s.destructive.as_ref().filter(|d| !d.allowed)?;
            Some(DestructiveRefusal {
                migration: format!("{}/{}", s.module, s.name),
                findings: d.findings.clone(),
                declared: d.declared.clone(),
            })
        })
        .collect();
    if !refused.is_empty() {
        return Err(MigrateError::Destructive { refused });
    }
    Ok(())
}

fn run_or_plan(
    session: &mut Session,
    set: &MigrationSet,
    opts: &RunOptions,
) -> Result<RunReport, RunFailure> {
    if opts.mode != RunMode::DryRun {
        let safety = &opts.safety;
        session
            .driver()
            .set_session_timeouts(&safety.session(), Some(safety.idle_in_transaction_timeout))
            .map_err(|e| MigrateError::db("setting the session's timeouts", e))?;
    }
    let mut p = prepare(session, set, opts)?;
    if opts.mode == RunMode::DryRun {
        p.report.duration_ms = ms_since(p.started);
        return Ok(p.report);
    }
    if let Err(err) = check_gates(&p.report, opts) {
        return Err(p.fail(err));
    }
    let driver = session.driver();
    if opts.mode == RunMode::Rehearse {
        let result =
            crate::migrate::rehearse::rehearse(driver, &p.steps, &p.history, opts, &mut p.report);
        p.report.duration_ms = ms_since(p.started);
        p.report.count(p.already);
        return match result {
            Ok(()) => Ok(p.report),
            Err(err) => Err(p.fail(err)),
        };
    }
    // Every refusal is behind us: only now is anything created.
    if let Err(e) = history::ensure_tables(driver, &p.schemas) {
        return Err(p.fail(MigrateError::db("creating the history and state tables", e)));
    }
    if let Err(e) = realign(driver, set, &mut p.report.realigned) {
        return Err(p.fail(e));
    }
    let (schema_steps, data_steps) = p.steps.split_at(p.schema_steps);
    let (history, already, started) = (&p.history, p.already, p.started);
    let report = &mut p.report;
    let driver = session.driver();

    let tables: Vec<String> = schema_steps
        .iter()
        .map(|(md, _)| driver.dialect().table(&md.schema, HISTORY_TABLE))
        .collect();
    let rows: Vec<NewHistoryRow<'_>> = schema_steps
        .iter()
        .zip(&tables)
        .map(|((md, m), table)| NewHistoryRow {
            table,
            schema: &md.schema,
            name: m.name.as_str(),
            category: m.category().as_str(),
            checksum: &m.checksum,
            applied_by: &opts.applied_by,
        })
        .collect();
    if let Err(e) = if rows.is_empty() {
        Ok(())
    } else {
        driver.stage(&rows)
    } {
        let err = MigrateError::db("staging history rows", e);
        return Err(fail(report, err, already, started));
    }
    let progress = crate::report::progress::Steps::new(
        "migration",
        (schema_steps.len() + data_steps.len()) as u64,
    );
    for (i, ((md, m), row)) in schema_steps.iter().zip(&rows).enumerate() {
        progress.start(i as u64, &format!("{}/{}", md.name, m.name));
        let t = Instant::now();
        let timeouts = report.steps[i].timeouts;
        let mut retries = 0;
        let result = match m.tx {
            TxMode::Transaction => {
                let (r, n) = safety::with_lock_retries(
                    &opts.safety,
                    &timeouts,
                    || driver.apply_in_transaction(&m.sql, row, &timeouts),
                    |e| e,
                );
                retries = n;
                r.map_err(|e| {
                    let offset = driver.migration_offset() as usize;
                    let at = e.position.map(|p| (p as usize).saturating_sub(offset));
                    migration_failed(md, m, e, at, FailedStep::Whole)
                })
            }
            TxMode::NoTransaction => apply_no_transaction(driver, md, m, opts, &timeouts),
        };
        let step = &mut report.steps[i];
        step.duration_ms = Some(ms_since(t));
        step.lock_retries = retries;
        if let Err(err) = result {
            step.outcome = Outcome::Failed;
            step.error = Some(err.to_string());
            let _ = driver.durable_barrier();
            return Err(fail(report, err, already, started));
        }
        step.outcome = Outcome::Applied;
        failpoint::hit(&format!("migration-committed:{}", m.name));
    }

    let mut failed = Vec::new();
    let base = schema_steps.len();
    for (k, (md, m)) in data_steps.iter().enumerate() {
        progress.start((base + k) as u64, &format!("{}/{}", md.name, m.name));
        let t = Instant::now();
        let timeouts = report.steps[base + k].timeouts;
        let (stats, result) = crate::migrate::data::run_data_migration(
            driver,
            md,
            m,
            history.data(&md.schema, m.name.as_str()),
            opts,
            &timeouts,
            &|s| progress.detail(&format!("batch {}, {} rows", s.total_batches, s.total_rows)),
        );
        let step = &mut report.steps[base + k];
        step.duration_ms = Some(ms_since(t));
        step.lock_retries = stats.lock_retries;
        step.data = Some(stats);
        match result {
            Ok(()) => step.outcome = Outcome::Applied,
            Err(e) => {
                step.outcome = Outcome::Failed;
                step.error = Some(e.to_string());
                // Without a connection nothing more can run, and this failure could not be
                // recorded in the checkpoint: it ends the run, as itself.
                if e.connection_lost() {
                    return Err(fail(report, e, already, started));
                }
                failed.push(format!("{}/{}: {e}", md.name, m.name));
                if opts.on_error == OnError::StopOnError {
                    break;
                }
            }
        }
    }
    if let Err(e) = driver.durable_barrier() {
        let err = MigrateError::db("waiting for the commits to be durable", e);
        return Err(fail(report, err, already, started));
    }
    if !failed.is_empty() {
        let err = MigrateError::DataBatchesFailed { failed };
        return Err(fail(report, err, already, started));
    }
    report.duration_ms = ms_since(started);
    report.count(already);
    Ok(p.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(line_at("a\nb\nc", 1), 1);
        assert_eq!(line_at("a\nb\nc", 3), 2);
        assert_eq!(line_at("a\nb\nc", 5), 3);
    }
}
