//! `offkit apply`: a verified kit into the database and the object store — in order, once, on
//! record.
//!
//! The pipeline takes an [`ExtractedKit`], which only the verifier can make, so applying an
//! unverified kit does not compile. With the migration lock held for the whole apply: check the
//! kit fits the site ([`compat`]), record the attempt in the ledger ([`ledger`]), run the
//! migrations (startup and seed, release when asked, then data migrations), seed the objects,
//! and record the outcome with the digest of the report. Every step is idempotent, so after a
//! crash at any point the next apply finishes the job; the ledger shows both attempts.

pub mod compat;
pub mod ledger;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::exit::{Exit, ExitCoded};
use crate::failpoint;
use crate::migrate::runner::{OnError, ReleaseGate, RunMode, RunOptions};
use crate::migrate::{Category, MigrateError, MigrationSet, RunFailure, Session};
use crate::report::progress::ProgressMode;
use crate::store::seed::SeedMode;
use crate::store::{ConflictPolicy, SeedError, SeedObject, SeedOptions, Store};
use crate::trust::extract::ExtractedKit;

pub use compat::{DowngradePolicy, Incompatible};
pub use report::{ApplyReport, StepOutcome};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Migration categories (default: startup, seed, data; release only when asked).
    pub categories: BTreeSet<Category>,
    /// The release gate (`--force`).
    pub release: ReleaseGate,
    /// Apply, or only print the plan (`--dry-run`).
    pub mode: RunMode,
    /// Data-migration batch failures.
    pub on_error: OnError,
    /// `:batch_size`.
    pub batch_size: u32,
    /// How long to wait for the migration lock.
    pub lock_timeout: Duration,
    /// Older sequences.
    pub downgrade: DowngradePolicy,
    /// Seed conflicts.
    pub conflicts: ConflictPolicy,
    /// Seed puts at once (`None`: the store's default).
    pub parallelism: Option<usize>,
    /// Progress display.
    pub progress: ProgressMode,
    /// `applied_by` in history and ledger rows.
    pub applied_by: String,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        let mut categories = crate::migrate::runner::automatic_categories();
        categories.insert(Category::Data);
        let run = RunOptions::default();
        ApplyOptions {
            categories,
            release: ReleaseGate::Refuse,
            mode: RunMode::Apply,
            on_error: OnError::Continue,
            batch_size: run.batch_size,
            lock_timeout: Duration::from_secs(60),
            downgrade: DowngradePolicy::Refuse,
            conflicts: ConflictPolicy::Stop,
            parallelism: None,
            progress: ProgressMode::Auto,
            applied_by: run.applied_by,
        }
    }
}

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The kit does not fit this site.
    #[error(transparent)]
    Incompatible(#[from] Incompatible),
    /// An extracted migration file differs from the signed manifest (changed on disk after
    /// verification).
    #[error(
        "{path}: differs from the verified kit (sha256 {actual}, signed {expected}); the extracted files were changed after verification"
    )]
    Tampered {
        /// The file.
        path: String,
        /// What it is now.
        actual: String,
        /// What was signed.
        expected: String,
    },
    /// Loading the kit's migrations failed.
    #[error("loading the kit's migrations: {0}")]
    Load(#[from] crate::migrate::source::SourceError),
    /// The database, the lock or a migration failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A migration failed (the report says what was applied before).
    #[error(transparent)]
    Run(#[from] RunFailure),
    /// Seeding failed or conflicts.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Data-migration batches failed; everything else was done.
    #[error(
        "{failed} data-migration batch failure(s) were recorded; the rest of the kit was applied. See the report, fix the data, and run apply again"
    )]
    DataBatches {
        /// Failed data migrations.
        failed: usize,
    },
    /// The ledger could not be written.
    #[error("writing the ledger offkit.kit_applications: {0}")]
    Ledger(crate::migrate::DbError),
}

impl ExitCoded for ApplyError {
    fn exit(&self) -> Exit {
        match self {
            ApplyError::Incompatible(_) => Exit::Incompatible,
            ApplyError::Tampered { .. } => Exit::Verification,
            ApplyError::Load(_) => Exit::InvalidSource,
            ApplyError::Migrate(e) => e.exit(),
            ApplyError::Run(e) => e.exit(),
            ApplyError::Seed(e) => e.exit(),
            ApplyError::DataBatches { .. } => Exit::PartialFailure,
            ApplyError::Ledger(_) => Exit::Database,
        }
    }
}

/// An apply that stopped, with the report of what it did.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ApplyFailure {
    /// Why it stopped.
    #[source]
    pub error: ApplyError,
    /// What was done.
    pub report: Box<ApplyReport>,
}

impl ExitCoded for ApplyFailure {
    fn exit(&self) -> Exit {
        self.error.exit()
    }
}

/// The kit's migrations, loaded from its extracted files and checked against the signed
/// manifest.
pub fn kit_migrations(kit: &ExtractedKit) -> Result<MigrationSet, ApplyError> {
    let manifest = kit.kit().manifest();
    let schemas: BTreeMap<String, String> = manifest
        .modules
        .iter()
        .map(|m| (m.name.clone(), m.schema.clone()))
        .collect();
    let set = MigrationSet::load(kit.root(), &schemas)?;
    for (module, entry) in manifest.migrations() {
        let loaded = set.module(&module.name).and_then(|m| m.get(&entry.name));
        let actual = loaded.map(|m| m.checksum.clone()).unwrap_or_default();
        if actual != entry.file.sha256 {
            return Err(ApplyError::Tampered {
                path: entry.file.path.to_string(),
                actual,
                expected: entry.file.sha256.clone(),
            });
        }
    }
    Ok(set)
}

/// The kit's seed objects, as files of the extracted kit.
pub fn kit_seeds(kit: &ExtractedKit) -> Vec<SeedObject> {
    kit.kit()
        .manifest()
        .seeds
        .iter()
        .filter_map(|s| {
            Some(SeedObject {
                key: crate::kit::KitPath::new(&s.key).ok()?,
                path: kit.file(&s.file.path),
                sha256: s.file.sha256.clone(),
                size: s.file.size,
                media_type: s.media_type.clone(),
            })
        })
        .collect()
}

/// Applies `kit` to the database of `session` and to `store`.
pub fn apply(
    kit: &ExtractedKit,
    session: &mut Session,
    store: &dyn Store,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyFailure> {
    let started = Instant::now();
    let mut report = ApplyReport::new(kit, session, store, opts);
    let fail = |error: ApplyError, mut report: ApplyReport| {
        report.finish(started, Some(&error));
        ApplyFailure {
            error,
            report: Box::new(report),
        }
    };
    let t = Instant::now();
    let set = match compat::check_target(kit.kit().manifest(), session.dialect())
        .map_err(ApplyError::from)
        .and_then(|()| kit_migrations(kit))
    {
        Ok(set) => set,
        Err(e) => return Err(fail(e, report)),
    };
    let seeds = kit_seeds(kit);
    report.step(
        "load",
        StepOutcome::Done,
        t,
        format!(
            "{} module(s), {} seed object(s)",
            set.modules.len(),
            seeds.len()
        ),
    );

    let t = Instant::now();
    let mut locked = match session.lock(opts.lock_timeout) {
        Ok(l) => l,
        Err(e) => return Err(fail(e.into(), report)),
    };
    report.step(
        "lock",
        StepOutcome::Done,
        t,
        "migration lock held".to_owned(),
    );
    failpoint::hit("apply:locked");

    let dry_run = opts.mode == RunMode::DryRun;
    let t = Instant::now();
    let driver = locked.driver();
    let history = if dry_run {
        match ledger::exists(driver) {
            Ok(true) => ledger::list(driver, None),
            Ok(false) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    } else {
        ledger::ensure(driver).and_then(|()| ledger::list(driver, None))
    };
    let history = match history {
        Ok(h) => h,
        Err(e) => return Err(fail(ApplyError::Ledger(e), report)),
    };
    let manifest_sha = kit.kit().manifest_sha256().to_owned();
    if let Err(e) = compat::check_history(
        kit.kit().manifest(),
        &manifest_sha,
        &history,
        opts.downgrade,
    ) {
        return Err(fail(e.into(), report));
    }
    report.step("compatibility", StepOutcome::Done, t, compat_note(opts));

    let ledger_id = if dry_run {
        None
    } else {
        let driver = locked.driver();
        let overrides = report.overrides.join(",");
        let signers = report
            .kit
            .signers
            .iter()
            .map(|s| s.keyid.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let started_row = ledger::mark_interrupted(driver).and_then(|interrupted| {
            report.interrupted_attempts = interrupted;
            ledger::start(
                driver,
                &ledger::NewRow {
                    kit_name: &report.kit.name,
                    kit_version: &report.kit.version,
                    channel: &report.kit.channel,
                    sequence: report.kit.sequence,
                    manifest_sha256: &manifest_sha,
                    kit_sha256: &report.kit.kit_sha256,
                    signer_keyids: &signers,
                    applied_by: &opts.applied_by,
                    store: &report.store,
                    overrides: &overrides,
                },
            )
        });
        match started_row {
            Ok(id) => Some(id),
            Err(e) => return Err(fail(ApplyError::Ledger(e), report)),
        }
    };
    report.ledger_id = ledger_id;
    failpoint::hit("apply:ledger-started");

    // Migrations: schema migrations per module in order, then data migrations. Backfills are
    // written against the release schema, so while release migrations wait for the operator the
    // data migrations wait with them.
    let t = Instant::now();
    let mut categories = opts.categories.clone();
    if categories.contains(&Category::Data) && !categories.contains(&Category::Release) {
        let pending_release = match locked.status(&set, &crate::migrate::ModuleFilter::All) {
            Ok(status) => status.pending(&BTreeSet::from([Category::Release])).len(),
            Err(e) => {
                return Err(finish_failed(
                    &mut locked,
                    ledger_id,
                    e.into(),
                    report,
                    started,
                ));
            }
        };
        if pending_release > 0 {
            categories.remove(&Category::Data);
            report.warnings.push(format!(
                "data migrations deferred: {pending_release} release migration(s) are pending; review with --dry-run --category release, then apply --category release"
            ));
        }
    }
    let run_opts = RunOptions {
        categories,
        release: opts.release,
        mode: opts.mode,
        on_error: opts.on_error,
        batch_size: opts.batch_size,
        applied_by: opts.applied_by.clone(),
        ..RunOptions::default()
    };
    let mut pending_error = None;
    match locked.run(&set, &run_opts) {
        Ok(run) => {
            let failed = run.counts.failed;
            report.step(
                "migrations",
                if failed > 0 {
                    StepOutcome::Failed
                } else {
                    StepOutcome::Done
                },
                t,
                format!(
                    "{} applied, {} already applied, {} failed",
                    run.counts.applied, run.counts.already_applied, failed
                ),
            );
            report.migrations = Some(run);
            if failed > 0 {
                pending_error = Some(ApplyError::DataBatches { failed });
            }
        }
        Err(failure) => {
            report.step(
                "migrations",
                StepOutcome::Failed,
                t,
                failure.error.to_string(),
            );
            report.migrations = Some((*failure.report).clone());
            return Err(finish_failed(
                &mut locked,
                ledger_id,
                failure.into(),
                report,
                started,
            ));
        }
    }
    failpoint::hit("apply:migrations-done");

    // Seed objects, streamed from the extracted kit.
    let t = Instant::now();
    let seed_opts = SeedOptions {
        mode: if dry_run {
            SeedMode::DryRun
        } else {
            SeedMode::Apply
        },
        conflicts: opts.conflicts,
        parallelism: opts.parallelism,
        progress: opts.progress,
    };
    match crate::store::seed(store, &seeds, &seed_opts) {
        Ok(seeded) => {
            let n = &seeded.totals;
            let detail = format!(
                "{} put, {} skipped (same digest), {} replaced, {} conflicts",
                n.put, n.skipped, n.replaced, n.conflicts
            );
            report.step("seeds", StepOutcome::Done, t, detail);
            report.seeds = Some(seeded);
        }
        Err(e) => {
            report.step("seeds", StepOutcome::Failed, t, e.to_string());
            report.seeds = e.report().cloned();
            return Err(finish_failed(
                &mut locked,
                ledger_id,
                e.into(),
                report,
                started,
            ));
        }
    }
    failpoint::hit("apply:seeds-done");

    if let Some(error) = pending_error {
        return Err(finish_failed(
            &mut locked,
            ledger_id,
            error,
            report,
            started,
        ));
    }
    report.finish(started, None);
    if let Some(id) = ledger_id {
        let digest = report.digest();
        failpoint::hit("apply:before-ledger-finish");
        if let Err(e) = ledger::finish(
            locked.driver(),
            id,
            ledger::Outcome::Succeeded,
            &digest,
            None,
        ) {
            return Err(fail(ApplyError::Ledger(e), report));
        }
    }
    let _ = locked.unlock();
    Ok(report)
}

fn compat_note(opts: &ApplyOptions) -> String {
    match opts.downgrade {
        DowngradePolicy::Refuse => "target, requires and channel sequence ok".to_owned(),
        DowngradePolicy::UnsafeAllow => {
            "target and requires ok; sequence not checked (--allow-downgrade)".to_owned()
        }
    }
}

/// Records a failed attempt in the ledger (best effort: the original error wins).
fn finish_failed(
    locked: &mut crate::migrate::Locked<'_>,
    ledger_id: Option<i64>,
    error: ApplyError,
    mut report: ApplyReport,
    started: Instant,
) -> ApplyFailure {
    report.finish(started, Some(&error));
    if let Some(id) = ledger_id {
        let digest = report.digest();
        let message = error.to_string();
        if let Err(e) = ledger::finish(
            locked.driver(),
            id,
            ledger::Outcome::Failed,
            &digest,
            Some(&message),
        ) {
            report.warnings.push(format!(
                "the failure could not be recorded in the ledger: {e}"
            ));
        }
    }
    ApplyFailure {
        error,
        report: Box::new(report),
    }
}
