//! `offkit migrations …`: status, verify, run, check, rollback, import-legacy, resolve.
//!
//! Each subcommand parses its arguments, loads the migrations from the source, connects, and
//! calls [`crate::migrate`]. Human output goes to stdout; with `--json` stdout carries one JSON
//! document instead. Errors carry their exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{CliError, CliResult, Global, print_json};
use crate::exit::Exit;
use crate::kit::KitConfig;
use crate::migrate::ops::{Resolution, RollbackOptions, RollbackTarget};
use crate::migrate::plan::{Missing, ModuleFilter, OutOfOrder, Status};
use crate::migrate::runner::{self, OnError, ReleaseGate, RunMode, RunOptions};
use crate::migrate::{Category, DbUrl, MigrationSet, Session};

/// `offkit migrations` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show every migration: applied, pending, drifted, missing, out of order, in progress.
    Status(TargetArgs),
    /// Like status, but exit non-zero (9) on drift, missing, out-of-order or in-progress.
    Verify(TargetArgs),
    /// Apply pending migrations (startup and seed; more with --category).
    Run(RunArgs),
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
    #[arg(long = "trust", value_name = "PUB|POLICY")]
    pub trust: Vec<PathBuf>,
    /// With --kit: distinct trusted keys that must have signed.
    #[arg(long, value_name = "K", requires = "kit")]
    pub threshold: Option<usize>,
    /// With --kit: UNSAFE, accept an expired kit.
    #[arg(long, requires = "kit")]
    pub allow_expired: bool,
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
        path: PathBuf,
        /// Kit name and version.
        kit: String,
        /// Keyids whose signatures counted.
        signers: Vec<String>,
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
            SourceLabel::VerifiedKit { path, kit, signers } => write!(
                f,
                "{} ({kit}, VERIFIED, signed by {})",
                path.display(),
                signers.join(", ")
            ),
        }
    }
}

impl SourceArgs {
    /// Loads the migrations (verifying the kit first for --kit).
    pub fn load(&self) -> Result<(MigrationSet, SourceLabel), CliError> {
        if let Some(kit) = &self.kit {
            let trust = super::common::TrustArgs {
                trust: self.trust.clone(),
                threshold: self.threshold,
                allow_expired: self.allow_expired,
            };
            let extracted =
                crate::trust::extract_to_temp(kit, &trust.policy()?, &trust.options(), None)?;
            let set = crate::apply::kit_migrations(&extracted)?;
            let m = extracted.kit().manifest();
            let label = SourceLabel::VerifiedKit {
                path: kit.clone(),
                kit: format!("{} {}", m.name, m.version),
                signers: extracted
                    .kit()
                    .signers()
                    .iter()
                    .map(|s| s.keyid.clone())
                    .collect(),
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
        let schemas: BTreeMap<String, String> = config
            .modules
            .keys()
            .map(|m| (m.clone(), config.schema_of(m)))
            .collect();
        let set = MigrationSet::load(dir, &schemas)?;
        Ok((set, SourceLabel::UnsignedSource { path: dir.clone() }))
    }
}

/// The database and modules a command works on.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Database URL: postgres://USER@HOST:PORT/DB or sqlite://PATH.
    #[arg(long, value_name = "URL", default_value = "sqlite://./offkit.db")]
    pub db: String,
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

/// `migrations run` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: TargetArgs,
    /// Also run this category (repeatable): release, data, or all. Startup and seed always run.
    #[arg(long, value_enum, value_name = "CATEGORY")]
    pub category: Vec<CategoryArg>,
    /// Print the exact ordered plan with checksums; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run release migrations (after reviewing --dry-run).
    #[arg(long)]
    pub force: bool,
    /// Rows per data-migration batch (bound to :batch_size).
    #[arg(long, default_value_t = runner::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Stop at the first failing data-migration batch (default: record it and go on).
    #[arg(long)]
    pub stop_on_error: bool,
    /// Apply pending migrations numbered below applied ones.
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Run although migrations applied in the database are missing from the kit.
    #[arg(long)]
    pub allow_missing: bool,
    /// How long to wait for another runner's lock: 30s, 5m, 500ms or seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

/// `migrations rollback` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    /// Database URL.
    #[arg(long, value_name = "URL", default_value = "sqlite://./offkit.db")]
    pub db: String,
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
    /// How long to wait for another runner's lock.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
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
    /// How long to wait for another runner's lock.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

/// `migrations resolve` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ResolveArgs {
    /// The in-progress migration.
    pub name: String,
    /// Database URL.
    #[arg(long, value_name = "URL", default_value = "sqlite://./offkit.db")]
    pub db: String,
    /// Its module.
    #[arg(long, value_name = "NAME")]
    pub module: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub outcome: ResolveOutcome,
    /// How long to wait for another runner's lock.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
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

/// Parses `500ms`, `30s`, `5m`, `1h` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

pub(crate) fn connect(db: &str) -> Result<Session, CliError> {
    let url = DbUrl::parse(db).map_err(crate::migrate::MigrateError::from)?;
    Ok(Session::connect(&url)?)
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
        Command::Rollback(a) => rollback(a, global),
        Command::ImportLegacy(a) => import_legacy(a, global),
        Command::Resolve(a) => resolve(a, global),
    }
}

fn status(t: TargetArgs, global: &Global, verify: bool) -> CliResult {
    let filter = ModuleFilter::parse(&t.module);
    let (set, label) = t.source.load()?;
    let mut session = connect(&t.db)?;
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
    let (set, label) = t.source.load()?;
    let mut session = connect(&t.db)?;
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

fn run_options(a: &RunArgs) -> RunOptions {
    let mut categories = runner::automatic_categories();
    for c in &a.category {
        match c {
            CategoryArg::Startup => categories.insert(Category::Startup),
            CategoryArg::Release => categories.insert(Category::Release),
            CategoryArg::Seed => categories.insert(Category::Seed),
            CategoryArg::Data => categories.insert(Category::Data),
            CategoryArg::All => {
                categories.extend(Category::ALL);
                true
            }
        };
    }
    RunOptions {
        modules: ModuleFilter::parse(&a.target.module),
        categories,
        release: if a.force {
            ReleaseGate::Force
        } else {
            ReleaseGate::Refuse
        },
        mode: mode(a.dry_run),
        on_error: if a.stop_on_error {
            OnError::StopOnError
        } else {
            OnError::Continue
        },
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

fn run_cmd(a: RunArgs, global: &Global) -> CliResult {
    let opts = run_options(&a);
    let (set, label) = a.target.source.load()?;
    let mut session = connect(&a.target.db)?;
    let mut locked = session.lock(a.lock_timeout)?;
    let result = locked.run(&set, &opts);
    let report = match &result {
        Ok(r) => r,
        Err(f) => f.report.as_ref(),
    };
    print_labelled(&label, report, global)?;
    result.map(|_| ()).map_err(CliError::from)
}

fn rollback(a: RollbackArgs, global: &Global) -> CliResult {
    let (set, label) = a.source.load()?;
    let mut session = connect(&a.db)?;
    let mut locked = session.lock(a.lock_timeout)?;
    let report = locked.rollback(
        &set,
        &RollbackOptions {
            module: a.module,
            target: a.to.map_or(RollbackTarget::Last, RollbackTarget::To),
            mode: mode(a.dry_run),
        },
    )?;
    print_labelled(&label, &report, global)
}

fn import_legacy(a: ImportArgs, global: &Global) -> CliResult {
    let filter = ModuleFilter::parse(&a.target.module);
    let (set, label) = a.target.source.load()?;
    let mut session = connect(&a.target.db)?;
    let mut locked = session.lock(a.lock_timeout)?;
    let report = locked.import_legacy(&set, &filter, mode(a.dry_run))?;
    print_labelled(&label, &report, global)
}

fn resolve(a: ResolveArgs, global: &Global) -> CliResult {
    let (set, _label) = a.source.load()?;
    let mut session = connect(&a.db)?;
    let mut locked = session.lock(a.lock_timeout)?;
    let resolution = if a.outcome.applied {
        Resolution::Applied
    } else {
        Resolution::NotApplied
    };
    let message = locked.resolve(
        &set,
        &a.module,
        &a.name,
        resolution,
        &runner::default_applied_by(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
