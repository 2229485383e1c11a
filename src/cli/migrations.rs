//! `offkit migrations …`: status, verify, run, check, rollback, import-legacy, resolve.
//!
//! Each subcommand parses its arguments, loads the migrations from the source, connects, and
//! calls [`crate::migrate`]. Human output goes to stdout; with `--json` stdout carries one JSON
//! document instead. Errors carry their exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::common::{DbArgs, KeyValidityArg, LockArgs, SafetyArgs, TrustArgs};
use super::journaled::Journaled;
use super::{CliError, CliResult, Global, print_json};
use crate::build::KitConfig;
use crate::exit::Exit;
use crate::migrate::ops::{Resolution, RollbackOptions, RollbackTarget};
use crate::migrate::plan::{Missing, ModuleFilter, OutOfOrder, Status};
use crate::migrate::runner::{self, OnError, ReleaseGate, RunMode, RunOptions};
use crate::migrate::{Category, Dialect, MigrationSet};
use crate::trust::content::Retain;

/// `offkit migrations` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show every migration: applied, pending, drifted, missing, out of order, in progress.
    Status(TargetArgs),
    /// Like status, but exit non-zero (9) on drift, missing, out-of-order or in-progress.
    Verify(TargetArgs),
    /// Apply pending migrations (startup and seed; more with --category).
    Run(RunArgs),
    /// Print the SQL that `run` would execute (PostgreSQL), each migration with its history
    /// row, for a DBA team that applies by hand with psql.
    Script(ScriptArgs),
    /// For service start-up: exit 10 while release or data migrations are pending, 9 on problems.
    Check(TargetArgs),
    /// Roll back applied migrations of one module in reverse order.
    Rollback(RollbackArgs),
    /// Import legacy history tables into the canonical schema_migrations.
    ImportLegacy(ImportArgs),
    /// Record the outcome of an interrupted no-transaction migration.
    Resolve(ResolveArgs),
}

/// Where the migrations come from: a verified kit (`--kit KIT --trust PUB|POLICY`), or an
/// unsigned kit source folder (`--source DIR`) for release engineers rehearsing.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// A kit file, verified against --trust before anything is read from it.
    #[arg(
        long,
        value_name = "KIT",
        conflicts_with = "source",
        requires = "trust"
    )]
    pub kit: Option<PathBuf>,
    /// A kit source folder (kit.toml, migrations/, rollback/). UNSIGNED: nothing is verified.
    #[arg(long, value_name = "DIR", required_unless_present = "kit")]
    pub source: Option<PathBuf>,
    /// With --kit: a trusted public key or trust policy (repeatable).
    #[arg(long = "trust", value_name = "PUB|POLICY", requires = "kit")]
    pub trust: Vec<PathBuf>,
    /// With --kit: distinct trusted keys that must have signed.
    #[arg(long, value_name = "K", requires = "kit")]
    pub threshold: Option<usize>,
    /// With --kit: UNSAFE, accept an expired kit.
    #[arg(long, requires = "kit")]
    pub allow_expired: bool,
    /// With --kit: judge key validity at the clock or at the kit's signed creation time.
    #[arg(
        long,
        value_enum,
        value_name = "AT",
        default_value = "clock",
        requires = "kit"
    )]
    pub key_validity: KeyValidityArg,
}

/// A loaded source and how to label it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceLabel {
    /// A kit source folder: not verified.
    UnsignedSource {
        /// The folder.
        path: PathBuf,
    },
    /// A kit that passed verification.
    VerifiedKit {
        /// The kit file.
        kit_file: PathBuf,
        /// The kit, as every report names it (name, version, channel, digests, signers).
        kit: Box<crate::apply::report::KitInfo>,
        /// What the verifier accepted with a remark (also printed on stderr).
        warnings: Vec<String>,
    },
}

impl std::fmt::Display for SourceLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceLabel::UnsignedSource { path } => write!(
                f,
                "{} (UNSIGNED source folder: not verified; for rehearsal)",
                path.display()
            ),
            SourceLabel::VerifiedKit { kit_file, kit, .. } => write!(
                f,
                "{} ({} {}, VERIFIED, signed by {})",
                kit_file.display(),
                kit.name,
                kit.version,
                kit.signers
                    .iter()
                    .map(|s| s.keyid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl SourceArgs {
    /// Loads the migrations for a database of kind `dialect`: a kit is authenticated, its target
    /// checked, then its payload verified keeping only its SQL (seeds are never written
    /// anywhere); a source folder is read as it is, its `kit.toml` target checked. Commands
    /// connect (and take the lock) before calling this, so that a wrong URL or a busy lock is
    /// reported before a pass over a large kit.
    pub fn load(&self, dialect: Dialect) -> Result<(MigrationSet, SourceLabel), CliError> {
        if let Some(kit) = &self.kit {
            let trust = TrustArgs {
                trust: self.trust.clone(),
                threshold: self.threshold,
                allow_expired: self.allow_expired,
                key_validity: self.key_validity,
            };
            let authenticated = trust.authenticate(kit)?;
            check_target(authenticated.manifest().target.database, dialect)?;
            let mut verified = authenticated.verify(Retain::Sql)?;
            let set = crate::apply::load::migration_set(&mut verified)?;
            for w in verified.warnings() {
                super::warn(w);
            }
            let label = SourceLabel::VerifiedKit {
                kit_file: kit.clone(),
                kit: Box::new(crate::apply::report::KitInfo::of_verified(&verified)),
                warnings: verified.warnings().to_vec(),
            };
            return Ok((set, label));
        }
        let Some(dir) = &self.source else {
            return Err(CliError::msg(
                Exit::Usage,
                "give --kit KIT --trust PUB, or --source DIR",
            ));
        };
        let config = KitConfig::load(dir).map_err(|e| CliError::new(Exit::InvalidSource, e))?;
        check_target(config.target, dialect)?;
        let schemas: BTreeMap<String, String> = config
            .configured_modules()
            .map(|m| (m.to_string(), config.schema_of(m).to_string()))
            .collect();
        let mut set = MigrationSet::load(dir, &schemas)?;
        let declarations: Vec<(String, &str)> = config.declarations().collect();
        set.declare(declarations.iter().map(|(k, r)| (k.as_str(), *r)))
            .map_err(crate::migrate::MigrateError::from)?;
        Ok((set, SourceLabel::UnsignedSource { path: dir.clone() }))
    }
}

/// Refuses migrations written for another kind of database (exit 11), as `apply` does.
fn check_target(target: crate::kit::manifest::Target, dialect: Dialect) -> Result<(), CliError> {
    Ok(crate::apply::compat::check_target(target, dialect)?)
}

/// The database and modules a command works on.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    /// `all` or one module name.
    #[arg(long, value_name = "all|NAME", default_value = "all")]
    pub module: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,
}

/// A category flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CategoryArg {
    /// 001-099 (always run).
    Startup,
    /// 100+ (manual gate: needs --force).
    Release,
    /// S001-S999 (always run).
    Seed,
    /// DM001-DM999 batched data migrations.
    Data,
    /// All four.
    All,
}

impl CategoryArg {
    /// The categories this value stands for.
    pub fn categories(self) -> &'static [Category] {
        match self {
            CategoryArg::Startup => &[Category::Startup],
            CategoryArg::Release => &[Category::Release],
            CategoryArg::Seed => &[Category::Seed],
            CategoryArg::Data => &[Category::Data],
            CategoryArg::All => &Category::ALL,
        }
    }
}

/// What a run plans: the migrations, the database, the gates and the limits (shared by `run`
/// and `script`).
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
    /// Also run this category (repeatable): release, data, or all. Startup and seed always run.
    #[arg(long, value_enum, value_name = "CATEGORY")]
    pub category: Vec<CategoryArg>,
    /// Run release migrations (after reviewing --dry-run).
    #[arg(long)]
    pub force: bool,
    /// Rows per data-migration batch (bound to :batch_size).
    #[arg(long, default_value_t = runner::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Apply pending migrations numbered below applied ones.
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Run although migrations applied in the database are missing from the kit.
    #[arg(long)]
    pub allow_missing: bool,
    /// Run this destructive migration that the kit declares (module/name or name; repeatable;
    /// `all` for every declared one). Review the plan (--dry-run) first.
    #[arg(long, value_name = "NAME|all")]
    pub allow_destructive: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub safety: SafetyArgs,
}

/// `migrations run` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub plan: PlanArgs,
    /// Print the exact ordered plan with checksums; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the plan in one transaction that is rolled back; report time, rows and locks per
    /// migration. Takes the real run's locks while it lasts.
    #[arg(long, conflicts_with = "dry_run")]
    pub rehearse: bool,
    /// Stop at the first failing data-migration batch (default: record it and go on).
    #[arg(long)]
    pub stop_on_error: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lock: LockArgs,
}

/// `migrations script` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ScriptArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub plan: PlanArgs,
    /// Write the script to FILE (created; refused if it exists) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// `migrations rollback` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    /// The module to roll back.
    #[arg(long, value_name = "NAME")]
    pub module: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,
    /// Roll back every migration applied after NAME (NAME stays applied). Default: the last one.
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// Print what would be rolled back; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lock: LockArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub safety: SafetyArgs,
}

/// `migrations import-legacy` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
    /// Print what would be imported; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lock: LockArgs,
}

/// `migrations resolve` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ResolveArgs {
    /// The in-progress migration.
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    /// Its module.
    #[arg(long, value_name = "NAME")]
    pub module: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub outcome: ResolveOutcome,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub lock: LockArgs,
}

/// `--applied` or `--not-applied`.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ResolveOutcome {
    /// It completed (or you completed it by hand): record it as applied.
    #[arg(long)]
    pub applied: bool,
    /// It did not take effect (or you undid it): forget the attempt; run retries it.
    #[arg(long)]
    pub not_applied: bool,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    source: &'a SourceLabel,
    database: String,
    #[serde(flatten)]
    status: &'a Status,
    problems: Vec<crate::migrate::plan::Problem>,
}

/// Runs a `migrations` subcommand.
pub fn run(cmd: Command, global: &Global) -> CliResult {
    match cmd {
        Command::Status(t) => status(t, global, false),
        Command::Verify(t) => status(t, global, true),
        Command::Check(t) => check(t, global),
        Command::Run(a) => run_cmd(a, global),
        Command::Script(a) => {
            if a.out.is_none() {
                super::data_on_stdout(global, "migrations script without --out")?;
            }
            script_cmd(a)
        }
        Command::Rollback(a) => rollback(a, global),
        Command::ImportLegacy(a) => import_legacy(a, global),
        Command::Resolve(a) => resolve(a, global),
    }
}

fn status(t: TargetArgs, global: &Global, verify: bool) -> CliResult {
    let filter = ModuleFilter::parse(&t.module);
    let mut session = t.db.connect_existing()?;
    let (set, label) = t.source.load(session.dialect())?;
    let status = session.status(&set, &filter)?;
    let problems = status.problems();
    if global.json {
        print_json(&StatusOut {
            source: &label,
            database: session.url().redacted(),
            status: &status,
            problems: problems.clone(),
        })?;
    } else {
        println!("Source:   {label}");
        println!("Database: {}", session.url().redacted());
        print!("{status}");
    }
    if verify && !problems.is_empty() {
        return Err(CliError::msg(
            Exit::MigrationState,
            format!(
                "verify: {} problem(s) in the migration history",
                problems.len()
            ),
        ));
    }
    Ok(())
}

fn check(t: TargetArgs, global: &Global) -> CliResult {
    let filter = ModuleFilter::parse(&t.module);
    let mut session = t.db.connect_existing()?;
    let (set, label) = t.source.load(session.dialect())?;
    let status = session.status(&set, &filter)?;
    let problems = status.problems();
    let gated: Vec<String> = status
        .pending(&BTreeSet::from([Category::Release, Category::Data]))
        .iter()
        .map(|e| format!("{}/{}", e.module, e.name))
        .collect();
    let automatic: Vec<String> = status
        .pending(&runner::automatic_categories())
        .iter()
        .map(|e| format!("{}/{}", e.module, e.name))
        .collect();
    if global.json {
        #[derive(Serialize)]
        struct CheckOut<'a> {
            source: &'a SourceLabel,
            database: String,
            ready: bool,
            pending_release_or_data: &'a [String],
            pending_automatic: &'a [String],
            problems: &'a [crate::migrate::plan::Problem],
        }
        print_json(&CheckOut {
            source: &label,
            database: session.url().redacted(),
            ready: problems.is_empty() && gated.is_empty(),
            pending_release_or_data: &gated,
            pending_automatic: &automatic,
            problems: &problems,
        })?;
    } else {
        println!("Source:   {label}");
        println!("Database: {}", session.url().redacted());
        for p in &problems {
            println!("Problem: {p}");
        }
        for g in &gated {
            println!("Pending (release/data): {g}");
        }
        for a in &automatic {
            println!("Pending (startup/seed, applied by `run`): {a}");
        }
        if problems.is_empty() && gated.is_empty() {
            println!("Ready: no release or data migrations pending");
        }
    }
    if !problems.is_empty() {
        return Err(CliError::msg(
            Exit::MigrationState,
            format!(
                "check: {} problem(s) in the migration history",
                problems.len()
            ),
        ));
    }
    if !gated.is_empty() {
        return Err(CliError::msg(
            Exit::Pending,
            format!(
                "check: {} release or data migration(s) pending",
                gated.len()
            ),
        ));
    }
    Ok(())
}

fn run_options(a: &PlanArgs, mode: RunMode, on_error: OnError) -> RunOptions {
    let mut categories = runner::automatic_categories();
    for c in &a.category {
        categories.extend(c.categories());
    }
    RunOptions {
        modules: ModuleFilter::parse(&a.target.module),
        categories,
        release: if a.force {
            ReleaseGate::Force
        } else {
            ReleaseGate::Refuse
        },
        mode,
        on_error,
        batch_size: a.batch_size,
        out_of_order: if a.allow_out_of_order {
            OutOfOrder::Allow
        } else {
            OutOfOrder::Refuse
        },
        missing: if a.allow_missing {
            Missing::Allow
        } else {
            Missing::Refuse
        },
        applied_by: runner::default_applied_by(),
        safety: a.safety.safety(),
        destructive: runner::AllowDestructive::from_args(&a.allow_destructive),
    }
}

#[derive(Serialize)]
struct Labelled<'a, T: Serialize> {
    source: &'a SourceLabel,
    #[serde(flatten)]
    report: &'a T,
}

/// Prints a report with its source label: JSON with `--json`, else its human form.
fn print_labelled<T: Serialize + std::fmt::Display>(
    label: &SourceLabel,
    report: &T,
    global: &Global,
) -> CliResult {
    if global.json {
        return print_json(&Labelled {
            source: label,
            report,
        });
    }
    println!("Source: {label}");
    println!("{}", report.to_string().trim_end());
    Ok(())
}

fn mode(dry_run: bool) -> RunMode {
    if dry_run {
        RunMode::DryRun
    } else {
        RunMode::Apply
    }
}

fn script_cmd(a: ScriptArgs) -> CliResult {
    let opts = run_options(&a.plan, RunMode::Apply, OnError::Continue);
    let target = &a.plan.target;
    let mut session = target.db.connect_existing()?;
    let (set, label) = target.source.load(session.dialect())?;
    let script = session.script(&set, &opts, &label.to_string())?;
    match &a.out {
        Some(path) => {
            crate::util::write_atomic(path, script.sql.as_bytes(), 0o644, false).map_err(|e| {
                CliError::msg(
                    Exit::Io,
                    format!("writing the script {}: {e}", path.display()),
                )
            })?;
            eprintln!(
                "offkit: wrote {} ({} migration(s))",
                path.display(),
                script.report.steps.len()
            );
        }
        None => print!("{}", script.sql),
    }
    Ok(())
}

impl SourceLabel {
    /// What a journal row says the command worked from.
    fn subject(&self) -> String {
        match self {
            SourceLabel::UnsignedSource { path } => {
                format!("source {} (unsigned)", path.display())
            }
            SourceLabel::VerifiedKit { kit_file, kit, .. } => {
                format!("{} {} ({})", kit.name, kit.version, kit_file.display())
            }
        }
    }
}

impl SourceArgs {
    /// What a journal row says a command worked from when its source could not be loaded.
    fn subject(&self) -> String {
        match (&self.kit, &self.source) {
            (Some(kit), _) => format!("{} (not loaded)", kit.display()),
            (None, Some(dir)) => format!("source {} (not loaded)", dir.display()),
            (None, None) => "no source given".to_owned(),
        }
    }
}

impl PlanArgs {
    /// The options that widen what a run does, as a journal row records them.
    fn overrides(&self) -> Vec<String> {
        use clap::ValueEnum;
        let mut out: Vec<String> = self
            .category
            .iter()
            .filter_map(|c| c.to_possible_value())
            .map(|v| format!("--category {}", v.get_name()))
            .collect();
        for (on, flag) in [
            (self.force, "--force"),
            (self.allow_out_of_order, "--allow-out-of-order"),
            (self.allow_missing, "--allow-missing"),
        ] {
            if on {
                out.push(flag.to_owned());
            }
        }
        out.extend(
            self.allow_destructive
                .iter()
                .map(|d| format!("--allow-destructive {d}")),
        );
        out
    }
}

/// A journaled command's outcome from its report (printed) or its error. An error without a report
/// is counted as a change: whether a step ran before it is not known, so its row is kept.
fn reported<R: Serialize + std::fmt::Display>(
    label: &SourceLabel,
    report: Result<R, crate::migrate::MigrateError>,
    global: &Global,
) -> Journaled<()> {
    match report {
        Ok(r) => Journaled {
            report: serde_json::to_vec(&r).ok(),
            changed: true,
            result: print_labelled(label, &r, global),
        },
        Err(e) => Journaled {
            report: None,
            changed: true,
            result: Err(CliError::from(e)),
        },
    }
}

/// Runs `f` — a command that changes the database, holding its lock — on the migrations `source`
/// loads, recorded in the operations journal ([`super::journaled::record`]). With `changes` false
/// (a dry run, a rehearsal) nothing is recorded. A kit refused at load is recorded `refused` (when
/// the site already has a journal), naming the file it was given.
fn journaled<T>(
    locked: &mut crate::migrate::Locked<'_>,
    source: &SourceArgs,
    command: &str,
    overrides: &[String],
    changes: bool,
    f: impl FnOnce(&mut crate::migrate::Locked<'_>, MigrationSet, SourceLabel) -> Journaled<T>,
) -> Result<T, CliError> {
    let load = |locked: &mut crate::migrate::Locked<'_>| {
        source.load(locked.dialect()).map(|(set, label)| {
            let subject = label.subject();
            ((set, label), subject)
        })
    };
    if !changes {
        let ((set, label), _) = load(locked)?;
        return f(locked, set, label).result;
    }
    super::journaled::record(
        locked,
        command,
        overrides,
        &source.subject(),
        load,
        |locked, (set, label)| f(locked, set, label),
    )
}

fn run_cmd(a: RunArgs, global: &Global) -> CliResult {
    let mode = if a.rehearse {
        RunMode::Rehearse
    } else {
        mode(a.dry_run)
    };
    let on_error = if a.stop_on_error {
        OnError::StopOnError
    } else {
        OnError::Continue
    };
    let opts = run_options(&a.plan, mode, on_error);
    if a.rehearse {
        eprintln!("offkit: note: {}", crate::migrate::rehearse::WARNING);
    }
    let target = &a.plan.target;
    let mut session = target.db.connect()?;
    let mut locked = session.lock(a.lock.lock_timeout)?;
    let changes = !(a.dry_run || a.rehearse);
    journaled(
        &mut locked,
        &target.source,
        "migrations run",
        &a.plan.overrides(),
        changes,
        |locked, set, label| {
            let result = locked.run(&set, &opts);
            let report = match &result {
                Ok(r) => r,
                Err(f) => f.report.as_ref(),
            };
            let json = serde_json::to_vec(report).ok();
            let changed = report.counts.applied + report.counts.failed > 0;
            let printed = print_labelled(&label, report, global);
            Journaled {
                report: json,
                changed,
                result: printed.and(result.map(|_| ()).map_err(CliError::from)),
            }
        },
    )
}

fn rollback(a: RollbackArgs, global: &Global) -> CliResult {
    let mut session = a.db.connect()?;
    let mut locked = session.lock(a.lock.lock_timeout)?;
    let overrides: Vec<String> = std::iter::once(format!("--module {}", a.module))
        .chain(a.to.iter().map(|t| format!("--to {t}")))
        .collect();
    journaled(
        &mut locked,
        &a.source,
        "migrations rollback",
        &overrides,
        !a.dry_run,
        |locked, set, label| {
            let report = locked.rollback(
                &set,
                &RollbackOptions {
                    module: a.module.clone(),
                    target: a
                        .to
                        .clone()
                        .map_or(RollbackTarget::Last, RollbackTarget::To),
                    mode: mode(a.dry_run),
                    safety: a.safety.safety(),
                },
            );
            reported(&label, report, global)
        },
    )
}

fn import_legacy(a: ImportArgs, global: &Global) -> CliResult {
    let filter = ModuleFilter::parse(&a.target.module);
    let mut session = a.target.db.connect()?;
    let mut locked = session.lock(a.lock.lock_timeout)?;
    journaled(
        &mut locked,
        &a.target.source,
        "migrations import-legacy",
        &[format!("--module {}", a.target.module)],
        !a.dry_run,
        |locked, set, label| {
            reported(
                &label,
                locked.import_legacy(&set, &filter, mode(a.dry_run)),
                global,
            )
        },
    )
}

fn resolve(a: ResolveArgs, global: &Global) -> CliResult {
    let mut session = a.db.connect()?;
    let mut locked = session.lock(a.lock.lock_timeout)?;
    let resolution = if a.outcome.applied {
        Resolution::Applied
    } else {
        Resolution::NotApplied
    };
    let overrides = [format!(
        "{}/{} {}",
        a.module,
        a.name,
        if a.outcome.applied {
            "--applied"
        } else {
            "--not-applied"
        }
    )];
    let message = journaled(
        &mut locked,
        &a.source,
        "migrations resolve",
        &overrides,
        true,
        |locked, set, _label| {
            let r = locked
                .resolve(
                    &set,
                    &a.module,
                    &a.name,
                    resolution,
                    &runner::default_applied_by(),
                )
                .map_err(CliError::from);
            // A resolve either records its one row or is refused before writing anything.
            Journaled {
                report: None,
                changed: r.is_ok(),
                result: r,
            }
        },
    )?;
    if global.json {
        #[derive(Serialize)]
        struct Out<'a> {
            module: &'a str,
            migration: &'a str,
            resolution: Resolution,
            message: &'a str,
        }
        return print_json(&Out {
            module: &a.module,
            migration: &a.name,
            resolution,
            message: &message,
        });
    }
    println!("{message}");
    Ok(())
}
