//! `offkit apply`: a verified kit into the database and the object store — in order, once, on
//! record.
//!
//! The pipeline takes a [`KitFile`] — a kit file and the trust to judge it by — and gets the kit's
//! contents only through the verifier: [`crate::trust::authenticate`] for the header, then
//! [`AuthenticatedKit::verify`] for the payload; everything after works on the resulting
//! [`VerifiedKit`], which nothing else can make. Cheap steps come first, so a busy lock or a kit
//! that does not fit the site is refused before a byte of the payload is read. With the migration
//! lock held for the whole apply, the named steps ([`StepName`]) run in order:
//!
//! 1. `lock` — the migration runner's lock;
//! 2. `authenticate` — the kit's header: signatures, the signed manifest and its rules, expiry;
//! 3. `compatibility` — target, `requires` and the channel sequence against the ledger
//!    ([`compat`]);
//! 4. `verify` — the payload pass: every file checked against the signed manifest and kept in a
//!    private work folder (a dry run keeps only the SQL, in memory);
//! 5. `load` — the migrations and seeds from the signed manifest, each migration and rollback
//!    read through the digest-checking reader ([`load`]); a file added to the work folder since is
//!    refused;
//! 6. `ledger` — the attempt recorded as `running` ([`ledger`]);
//! 7. `migrations` — startup and seed, release when asked, then data migrations;
//! 8. `seeds` — the objects into the store, each read through the digest-checking reader.
//!
//! `Pipeline::step` is the one place that times a step, records it in the report and turns
//! its failure into the apply's outcome; `Pipeline::finish` records that outcome in the ledger
//! with the digest of the report. Every step is idempotent, so after a crash at any point the
//! next apply finishes the job; the ledger shows both attempts.

pub mod accepted;
pub mod compat;
pub mod journal;
pub mod ledger;
pub mod load;
pub mod receipt;
pub mod report;
pub mod seeds;
pub mod status;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exit::{Exit, ExitCoded};
use crate::failpoint;
use crate::migrate::runner::{AllowDestructive, OnError, ReleaseGate, RunMode, RunOptions};
use crate::migrate::{Category, Locked, MigrateError, ModuleFilter, RunFailure, Session};
use crate::report::progress::ProgressMode;
use crate::store::seed::{ObjectsListed, SeedMode, Seeding};
use crate::store::{
    ConflictPolicy, FolderSource, SeedError, SeedOptions, SeedSource, Store, StoreError,
};
use crate::trust::content::Retain;
use crate::trust::failure::{Failure, FailureKind};
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::{AuthenticatedKit, VerifiedKit, VerifyFailure, VerifyOptions};

/// The kit to apply: a file, and the trust and options it is verified with once the pipeline
/// holds the lock.
#[derive(Debug, Clone, Copy)]
pub struct KitFile<'a> {
    /// The kit file.
    pub path: &'a Path,
    /// The site's trust policy.
    pub policy: &'a TrustPolicy,
    /// Verification options (time, expiry handling, reader bounds).
    pub options: &'a VerifyOptions,
}

pub use compat::{DowngradePolicy, Incompatible};
pub use ledger::Override;
pub use load::{KitSeeds, LoadError};
pub use report::{ApplyReport, KitInfo, StepName, StepOutcome};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Migration categories (default: startup, seed, data; release only when asked).
    pub categories: BTreeSet<Category>,
    /// The release gate.
    pub release: ReleaseGate,
    /// Apply, or only print the plan (`--dry-run`).
    pub mode: RunMode,
    /// Data-migration batch failures.
    pub on_error: OnError,
    /// `:batch_size`.
    pub batch_size: u32,
    /// How long to wait for the migration lock.
    pub lock_timeout: Duration,
    /// Timeouts and lock retries of the migrations.
    pub safety: crate::migrate::Safety,
    /// Which destructive migrations (declared by the kit) may run.
    pub destructive: AllowDestructive,
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
    /// Where the private work folder is made (default: the system's temporary folder).
    pub work_dir: Option<PathBuf>,
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
            safety: run.safety,
            destructive: AllowDestructive::None,
            downgrade: DowngradePolicy::Refuse,
            conflicts: ConflictPolicy::Stop,
            parallelism: None,
            progress: ProgressMode::Auto,
            applied_by: run.applied_by,
            work_dir: None,
        }
    }
}

impl ApplyOptions {
    /// The overrides these options put in effect (`--allow-expired` is added when the kit was
    /// accepted because of it).
    fn overrides(&self) -> Vec<Override> {
        let mut o = Vec::new();
        if self.downgrade == DowngradePolicy::UnsafeAllow {
            o.push(Override::AllowDowngrade);
        }
        if self.conflicts == ConflictPolicy::Replace {
            o.push(Override::ReplaceConflicting);
        }
        if self.categories.contains(&Category::Release) {
            o.push(Override::CategoryRelease);
        }
        o
    }
}

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The kit's payload failed verification; nothing was changed.
    #[error(transparent)]
    Verify(VerifyFailure),
    /// A verified file was changed, added or removed before it was used; nothing after it ran.
    #[error("kit refused: {0}")]
    Tampered(Box<Failure>),
    /// The kit does not fit this site.
    #[error(transparent)]
    Incompatible(#[from] Incompatible),
    /// The kit's migrations cannot be used.
    #[error("loading the kit's migrations: {0}")]
    Load(Box<LoadError>),
    /// The database, the lock or a migration failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A migration failed (the report says what was applied before).
    #[error(transparent)]
    Run(#[from] RunFailure),
    /// Seeding failed or conflicts.
    #[error(transparent)]
    Seed(SeedError),
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

impl From<LoadError> for ApplyError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Content(c) if load::content_exit(&c) == Exit::Verification => {
                ApplyError::Tampered(Box::new(c.failure()))
            }
            other => ApplyError::Load(Box::new(other)),
        }
    }
}

impl From<SeedError> for ApplyError {
    /// A seed whose bytes changed or vanished since verification is tampering, named as such.
    fn from(e: SeedError) -> Self {
        let source_problem = match &e {
            SeedError::SourceChanged { key, error, .. } => Some((key.clone(), error.as_ref())),
            SeedError::Store(error) if error.is_source_problem() => {
                Some((error.key().unwrap_or_default().to_owned(), error))
            }
            _ => None,
        };
        match source_problem {
            Some((key, error)) => {
                let kind = match error {
                    StoreError::SourceUnavailable { cause, .. }
                        if cause.kind() == std::io::ErrorKind::NotFound =>
                    {
                        FailureKind::RemovedAfterVerification
                    }
                    _ => FailureKind::ChangedAfterVerification,
                };
                let path = format!("{}/{key}", crate::kit::layout::SEEDS_DIR);
                let message = format!("{path}: {error}; no seed was put after it");
                ApplyError::Tampered(Box::new(Failure::at(kind, path, message)))
            }
            None => ApplyError::Seed(e),
        }
    }
}

impl ExitCoded for ApplyError {
    fn exit(&self) -> Exit {
        match self {
            ApplyError::Verify(v) => v.exit(),
            ApplyError::Tampered(_) => Exit::Verification,
            ApplyError::Incompatible(_) => Exit::Incompatible,
            ApplyError::Load(e) => e.exit(),
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

/// Applies `kit` to the database of `session` and to `store` (see the module docs).
pub fn apply(
    kit: KitFile<'_>,
    session: &mut Session,
    store: &dyn Store,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyFailure> {
    let started = Instant::now();
    let mut p = Pipeline {
        report: ApplyReport::new(
            kit.path.display().to_string(),
            session.url().redacted(),
            store.url().redacted(),
            opts.mode,
            opts.overrides(),
            opts.applied_by.clone(),
        ),
        ledger_id: None,
        started,
    };
    let lock = p.step(StepName::Lock, |_| {
        Ok((
            session.lock(opts.lock_timeout)?,
            "migration lock held".to_owned(),
        ))
    });
    let mut locked = match lock {
        Ok(l) => l,
        Err(e) => return Err(p.failed(None, e)),
    };
    failpoint::hit("apply:locked");
    let result = p.run(&mut locked, kit, store, opts);
    let outcome = p.finish(&mut locked, result);
    let _ = locked.unlock();
    outcome
}

/// One apply in progress: its report and ledger row.
struct Pipeline {
    report: ApplyReport,
    ledger_id: Option<i64>,
    started: Instant,
}

impl Pipeline {
    /// Runs one step: times it, records it in the report (with `f`'s one-line detail, or the
    /// error), and passes its result on. `f` may add its own report to `r`.
    fn step<T>(
        &mut self,
        name: StepName,
        f: impl FnOnce(&mut ApplyReport) -> Result<(T, String), ApplyError>,
    ) -> Result<T, ApplyError> {
        let t = Instant::now();
        match f(&mut self.report) {
            Ok((value, detail)) => {
                self.report.step(name, StepOutcome::Done, t, detail);
                Ok(value)
            }
            Err(e) => {
                self.report
                    .step(name, StepOutcome::Failed, t, e.to_string());
                Err(e)
            }
        }
    }

    /// The steps after the lock; an error ends the apply (see [`Pipeline::finish`]).
    fn run(
        &mut self,
        locked: &mut Locked<'_>,
        file: KitFile<'_>,
        store: &dyn Store,
        opts: &ApplyOptions,
    ) -> Result<(), ApplyError> {
        let dry_run = opts.mode == RunMode::DryRun;
        let writes = opts.mode == RunMode::Apply;
        let kit: AuthenticatedKit = self.step(StepName::Authenticate, |r| {
            let kit = crate::trust::authenticate(file.path, file.policy, file.options)
                .map_err(ApplyError::Verify)?;
            r.kit = Some(KitInfo::of(&kit));
            r.carried_trust = kit.header().trust_versions.clone();
            r.warnings.extend(kit.warnings().iter().cloned());
            if kit.accepted_expired().is_some() {
                r.overrides.push(Override::AllowExpired);
                r.overrides.sort();
            }
            let detail = format!(
                "header signed by {} trusted key(s), manifest checked",
                kit.signers().len()
            );
            Ok((kit, detail))
        })?;
        self.step(StepName::Compatibility, |_| {
            compat::check_target(kit.manifest().target.database, locked.dialect())?;
            let driver = locked.driver();
            let history = if ledger::exists(driver).map_err(ApplyError::Ledger)? {
                ledger::list(driver, None).map_err(ApplyError::Ledger)?
            } else {
                Vec::new()
            };
            compat::check_history(
                kit.manifest(),
                kit.manifest_sha256(),
                &history,
                opts.downgrade,
            )?;
            Ok(((), compat_note(opts)))
        })?;

        // Seeds are read again from the kit itself, frame by frame against the signed frame
        // index (no scratch copy); only a kit without a frame index is copied to a work folder.
        // Work folders of runs killed before this version needed none are removed too.
        if writes {
            crate::trust::content::remove_dead_work_folders(
                &opts.work_dir.clone().unwrap_or_else(std::env::temp_dir),
            );
        }
        let retain = if !writes || !kit.manifest().payload.frames.is_empty() {
            Retain::Sql
        } else {
            Retain::TempFiles {
                work_dir: opts.work_dir.clone(),
            }
        };
        let mut kit = self.step(StepName::Verify, |r| {
            let m = kit.manifest().payload.clone();
            let v = kit.verify(retain).map_err(ApplyError::Verify)?;
            if let Some(info) = &mut r.kit {
                info.kit_sha256 = Some(v.kit_sha256().clone());
            }
            let detail = format!(
                "{} file(s), {} byte(s) checked against the signed manifest",
                m.files, m.bytes
            );
            Ok((v, detail))
        })?;
        failpoint::hit("apply:verified");

        let set = self.step(StepName::Load, |_| {
            kit.check_folder()
                .map_err(|e| ApplyError::from(LoadError::Content(e)))?;
            let set = load::migration_set(&mut kit)?;
            let detail = format!(
                "{} module(s), {} seed object(s), from the signed manifest",
                set.modules.len(),
                kit.seed_pages().seeds()
            );
            Ok((set, detail))
        })?;

        // The destructive migrations this apply is allowed to run, by name, for the ledger.
        let allowed = allowed_destructive(locked, &set, opts)?;
        if !allowed.is_empty() {
            self.report.overrides.extend(allowed);
            self.report.overrides.sort();
        }

        if !dry_run {
            let id = self.step(StepName::Ledger, |r| {
                let id = start_ledger_row(locked, &kit, r, opts).map_err(ApplyError::Ledger)?;
                Ok((id, format!("entry #{id} running")))
            })?;
            self.ledger_id = Some(id);
            self.report.ledger_id = Some(id);
        }
        failpoint::hit("apply:ledger-started");

        let failed_batches = self.step(StepName::Migrations, |r| {
            run_migrations(locked, &set, opts, r)
        })?;
        failpoint::hit("apply:migrations-done");

        // Which objects this apply puts is on record, so `store rollback --application` can
        // take exactly those back: planned before the first put, each page's outcomes once its
        // puts are durable.
        let record = matches!(opts.mode, RunMode::Apply)
            .then_some(self.ledger_id)
            .flatten()
            .map(|id| (locked.driver(), id));
        self.step(StepName::Seeds, |r| seed(store, &kit, opts, record, r))?;
        failpoint::hit("apply:seeds-done");
        match failed_batches {
            0 => Ok(()),
            failed => Err(ApplyError::DataBatches { failed }),
        }
    }

    /// Ends the apply: the report's outcome and, when a ledger row was started, the row's outcome
    /// with the report's digest.
    fn finish(
        mut self,
        locked: &mut Locked<'_>,
        result: Result<(), ApplyError>,
    ) -> Result<ApplyReport, ApplyFailure> {
        match result {
            Ok(()) => {
                self.report.finish(self.started, None);
                if let Some(id) = self.ledger_id {
                    let digest = self.report.digest();
                    failpoint::hit("apply:before-ledger-finish");
                    if let Err(e) = ledger::finish(
                        locked.driver(),
                        id,
                        if self.report.rehearsal {
                            ledger::Outcome::Rehearsed
                        } else {
                            ledger::Outcome::Succeeded
                        },
                        &digest,
                        None,
                    ) {
                        return Err(self.failed(None, ApplyError::Ledger(e)));
                    }
                }
                Ok(self.report)
            }
            Err(error) => Err(self.failed(Some(locked), error)),
        }
    }

    /// The failure of the apply; recorded in the ledger when a row was started (best effort:
    /// the original error wins).
    fn failed(mut self, locked: Option<&mut Locked<'_>>, error: ApplyError) -> ApplyFailure {
        self.report.finish(self.started, Some(&error));
        if let (Some(id), Some(locked)) = (self.ledger_id, locked) {
            let digest = self.report.digest();
            let message = error.to_string();
            let outcome = if self.report.rehearsal {
                ledger::Outcome::RehearsalFailed
            } else {
                ledger::Outcome::Failed
            };
            let recorded =
                match ledger::finish(locked.driver(), id, outcome, &digest, Some(&message)) {
                    // The connection was terminated (by a DBA, a restart, a failover) or broke: record
                    // the failure over a new one, or the entry would stay `running` until the next
                    // apply calls it `interrupted` with no word of what happened. This updates only
                    // this attempt's own row, so it needs no lock (the lock went with the connection).
                    Err(e) if e.connection_lost() => Session::connect(locked.url())
                        .map_err(|c| c.to_string())
                        .and_then(|mut s| {
                            ledger::finish(s.driver(), id, outcome, &digest, Some(&message))
                                .map_err(|f| f.to_string())
                        })
                        .map_err(|again| format!("{e}; then, on a new connection: {again}")),
                    other => other.map_err(|e| e.to_string()),
                };
            if let Err(e) = recorded {
                self.report.warnings.push(format!(
                    "the failure could not be recorded in the ledger: {e}"
                ));
            }
        }
        ApplyFailure {
            error,
            report: Box::new(self.report),
        }
    }
}

/// `allow-destructive=module/name` for each pending migration the kit declares destructive
/// and the operator allowed.
fn allowed_destructive(
    locked: &mut Locked<'_>,
    set: &crate::migrate::MigrationSet,
    opts: &ApplyOptions,
) -> Result<Vec<Override>, ApplyError> {
    if opts.destructive == AllowDestructive::None {
        return Ok(Vec::new());
    }
    let status = locked.status(set, &ModuleFilter::All)?;
    let pending: BTreeSet<(&str, &str)> = status
        .pending(&opts.categories)
        .into_iter()
        .map(|e| (e.module.as_str(), e.name.as_str()))
        .collect();
    Ok(set
        .modules
        .iter()
        .flat_map(|md| md.migrations.iter().map(move |m| (md, m)))
        .filter(|(md, m)| {
            m.declared.is_some()
                && pending.contains(&(md.name.as_str(), m.name.as_str()))
                && opts.destructive.allows(&md.name, m.name.as_str())
        })
        .map(|(md, m)| Override::AllowDestructive(format!("{}/{}", md.name, m.name)))
        .collect())
}

fn compat_note(opts: &ApplyOptions) -> String {
    match opts.downgrade {
        DowngradePolicy::Refuse => "target, requires and channel sequence ok".to_owned(),
        DowngradePolicy::UnsafeAllow => {
            "target and requires ok; sequence not checked (--allow-downgrade)".to_owned()
        }
    }
}

/// Creates the ledger if needed, marks dead attempts interrupted, inserts this attempt.
fn start_ledger_row(
    locked: &mut Locked<'_>,
    kit: &VerifiedKit,
    r: &mut ApplyReport,
    opts: &ApplyOptions,
) -> Result<i64, crate::migrate::DbError> {
    let driver = locked.driver();
    ledger::ensure(driver)?;
    r.interrupted_attempts = ledger::mark_interrupted(driver)?;
    // The lock is held: a migrations command still recorded as running died too.
    if journal::exists(driver)? {
        journal::mark_interrupted(driver)?;
    }
    let signers: Vec<String> = kit.signers().iter().map(|s| s.keyid.to_string()).collect();
    let m = kit.manifest();
    ledger::start(
        driver,
        &ledger::NewRow {
            kit_name: m.name.as_str(),
            kit_version: m.version.as_str(),
            channel: m.channel.as_str(),
            sequence: m.sequence,
            manifest_sha256: kit.manifest_sha256().as_str(),
            kit_sha256: kit.kit_sha256().as_str(),
            signer_keyids: &signers,
            applied_by: &opts.applied_by,
            store: &r.store,
            overrides: &r.overrides,
        },
    )
}

/// Schema migrations per module in order, then data migrations; returns how many data
/// migrations had failing batches. Backfills are written against the release schema, so while
/// release migrations wait for the operator the data migrations wait with them.
fn run_migrations(
    locked: &mut Locked<'_>,
    set: &crate::migrate::MigrationSet,
    opts: &ApplyOptions,
    r: &mut ApplyReport,
) -> Result<(usize, String), ApplyError> {
    let mut categories = opts.categories.clone();
    if categories.contains(&Category::Data) && !categories.contains(&Category::Release) {
        let status = locked.status(set, &ModuleFilter::All)?;
        let pending_release = status.pending(&BTreeSet::from([Category::Release])).len();
        if pending_release > 0 {
            categories.remove(&Category::Data);
            r.warnings.push(format!(
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
        safety: opts.safety.clone(),
        destructive: opts.destructive.clone(),
        ..RunOptions::default()
    };
    match locked.run(set, &run_opts) {
        Ok(run) => {
            let c = &run.counts;
            let detail = format!(
                "{} applied, {} already applied, {} failed",
                c.applied, c.already_applied, c.failed
            );
            let failed = c.failed;
            r.migrations = Some(run);
            Ok((failed, detail))
        }
        Err(failure) => {
            r.migrations = Some((*failure.report).clone());
            Err(failure.into())
        }
    }
}

/// The seed objects into the store (a dry run only plans), a page of seeds at a time — every
/// page planned before the first put, then put — each read again from the kit (or the work
/// folder of a kit without a frame index) and checked as it is read. With `record`, the objects
/// are on record in the ledger: each page as planned before the first put, then with its
/// outcomes once its puts are durable. What the seeding holds does not grow with the number of
/// seeds but by one byte a seed ([`Seeding`]); the report lists the objects that need
/// attention, the ledger every object.
fn seed(
    store: &dyn Store,
    kit: &VerifiedKit,
    opts: &ApplyOptions,
    mut record: Option<(&mut dyn crate::migrate::Driver, i64)>,
    r: &mut ApplyReport,
) -> Result<((), String), ApplyError> {
    let seed_opts = SeedOptions {
        mode: match opts.mode {
            RunMode::DryRun | RunMode::Rehearse => SeedMode::DryRun,
            RunMode::Apply => SeedMode::Apply,
        },
        conflicts: opts.conflicts,
        parallelism: opts.parallelism,
        progress: opts.progress,
    };
    // The seeds' bytes: the work folder a kit without a frame index was kept in, else the kit
    // itself through its signed frame index (none for a dry run of such a kit: it reads no seed).
    let folder = kit
        .folder()
        .map(|root| FolderSource::new(root.join(crate::kit::layout::SEEDS_DIR)));
    let frames = match folder {
        None if !kit.manifest().payload.frames.is_empty() => {
            Some(kit.frames().map_err(|e| kit_unreadable(kit, &e))?)
        }
        _ => None,
    };
    let mut pages = kit.seed_pages();
    let mut seeding = Seeding::new(
        store,
        pages.seeds(),
        &seed_opts,
        ObjectsListed::NeedingAttention,
    )
    .map_err(ApplyError::Seed)?;
    let mut passes = || -> Result<(), ApplyError> {
        for put in [false, true] {
            for i in 0..pages.len() {
                if put && seeding.source_failed() {
                    // The kit changed since it was verified: the first seed found changed is the
                    // one named; its later pages are not read again.
                    let (n, bytes) = pages.counts(i);
                    seeding.not_run(n, bytes);
                    continue;
                }
                let page = pages.page(i).map_err(LoadError::Content)?;
                let seeds = load::objects(page.seeds);
                let in_kit = frames
                    .as_ref()
                    .map(|f| KitSeeds::new(f, &seeds, &page.offsets));
                let source: Option<&dyn SeedSource> = match (&folder, &in_kit) {
                    (Some(f), _) => Some(f),
                    (None, Some(k)) => Some(k),
                    (None, None) => None,
                };
                if !put {
                    seeding.plan(&seeds, source, None)?;
                    if let Some((driver, id)) = &mut record {
                        seeds::record_planned(*driver, *id, &seeds).map_err(ApplyError::Ledger)?;
                    }
                    continue;
                }
                let outcomes = seeding.put(&seeds, source)?;
                if let Some((driver, id)) = &mut record {
                    seeds::record_outcomes(*driver, *id, &seeds, &outcomes)
                        .map_err(ApplyError::Ledger)?;
                }
            }
        }
        match &mut record {
            Some((driver, id)) if seeding.source_failed() => {
                seeds::record_rest_not_run(*driver, *id).map_err(ApplyError::Ledger)
            }
            _ => Ok(()),
        }
    };
    if let Err(e) = passes() {
        r.seeds = match &e {
            ApplyError::Seed(s) => s.report().cloned(),
            _ => Some(seeding.report()),
        };
        return Err(e);
    }
    match seeding.finish() {
        Ok(seeded) => {
            let n = &seeded.totals;
            let detail = format!(
                "{} put, {} skipped (same digest), {} replaced, {} conflicts",
                n.put, n.skipped, n.replaced, n.conflicts
            );
            r.seeds = Some(seeded);
            Ok(((), detail))
        }
        Err(e) => {
            r.seeds = e.report().cloned();
            Err(e.into())
        }
    }
}

/// The kit file could not be opened again to read its seeds: changed or removed since it was
/// verified.
fn kit_unreadable(kit: &VerifiedKit, e: &std::io::Error) -> ApplyError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        FailureKind::RemovedAfterVerification
    } else {
        FailureKind::ChangedAfterVerification
    };
    ApplyError::Tampered(Box::new(Failure::at(
        kind,
        kit.path().display().to_string(),
        format!("{}: {e}", kit.path().display()),
    )))
}
