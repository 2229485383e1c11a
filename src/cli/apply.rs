//! `offkit apply`: verify a kit, then apply it to the database and the object store, once, on
//! record. Also `offkit history` (the ledger) and `offkit status` (this kit against a site).
//!
//! Each command checks the cheap things first: the URLs are parsed, the kit's header is
//! authenticated, the database is reached (and, for apply, the lock taken) before the payload is
//! read.

use std::path::{Path, PathBuf};

use super::common::{DbArgs, LockArgs, SafetyArgs, SeedArgs, TrustArgs, connect, connect_existing};
use super::migrations::CategoryArg;
use super::{CliError, CliResult, Global, io_error, print_json};
use crate::apply::ledger::{self, Row};
use crate::apply::status::KitStatus;
use crate::apply::{ApplyOptions, DowngradePolicy, KitFile, apply};
use crate::exit::Exit;
use crate::migrate::runner::{OnError, ReleaseGate, RunMode, automatic_categories};
use crate::migrate::{Category, Session};
use crate::store::{Store, StoreUrl};

pub use super::common::DEFAULT_DB;
/// The embedded default object store.
pub const DEFAULT_STORE: &str = "file://./offkit-store";

/// The kit's trust, and the site: database, object store, where to keep the kit while working.
#[derive(Debug, clap::Args)]
pub struct SiteArgs {
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    /// Object store URL: `file://DIR`, `s3://BUCKET/PREFIX?endpoint=…`,
    /// `postgres://…?table=SCHEMA.TABLE` (default: file://./offkit-store; for status, the store
    /// the ledger recorded for the kit).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Where to keep the verified files of a kit without a frame index while working (default:
    /// the system temp folder). A kit with one, as `build` writes them, needs no copy.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// A store URL from the command line.
fn parse_store(url: &str) -> Result<StoreUrl, CliError> {
    Ok(StoreUrl::parse(url).map_err(crate::store::StoreError::from)?)
}

/// The site's database session and store.
struct Site {
    session: Session,
    store: Box<dyn Store>,
}

impl SiteArgs {
    /// Parses the URLs (no I/O), connects, opens the store. The kit is not read yet. With
    /// `read_only`, a SQLite database that does not exist is read as empty, not created.
    fn open(&self, read_only: bool) -> Result<Site, CliError> {
        let store_url = parse_store(self.store.as_deref().unwrap_or(DEFAULT_STORE))?;
        let session = self.connect(read_only)?;
        let store = crate::store::open(&store_url)?;
        Ok(Site { session, store })
    }

    fn connect(&self, read_only: bool) -> Result<Session, CliError> {
        let db_url = self.db.url()?;
        if read_only {
            connect_existing(&db_url)
        } else {
            connect(&db_url)
        }
    }
}

/// Arguments of `offkit apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit file.
    pub kit: PathBuf,
    #[command(flatten)]
    pub site: SiteArgs,
    /// Also run this category (repeatable). Startup, seed and data always run; `release` opens
    /// the release gate (review with --dry-run first).
    #[arg(long, value_enum, value_name = "CATEGORY")]
    pub category: Vec<CategoryArg>,
    /// Print the whole plan (migrations in order, data migrations, seed puts/skips/conflicts);
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the migrations in one transaction that is rolled back, and report time, rows and
    /// locks per migration; seeds are only planned. Takes the real run's locks while it lasts.
    /// Recorded in the ledger as a rehearsal.
    #[arg(long, conflicts_with = "dry_run")]
    pub rehearse: bool,
    /// Rows per data-migration batch (bound to :batch_size).
    #[arg(long, default_value_t = crate::migrate::runner::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Stop at the first failing data-migration batch (default: record it, go on, exit 13).
    #[arg(long)]
    pub stop_on_error: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
    /// Run this destructive migration that the kit declares (module/name or name; repeatable;
    /// `all` for every declared one). Recorded in the ledger. Review the plan (--dry-run) first.
    #[arg(long, value_name = "NAME|all")]
    pub allow_destructive: Vec<String>,
    /// UNSAFE: apply a kit whose channel sequence is below (or equal to, with other content) the
    /// last one applied here. Recorded in the ledger and the report.
    #[arg(long)]
    pub allow_downgrade: bool,
    #[command(flatten)]
    pub seeding: SeedArgs,
    /// Also write the JSON report here (its SHA-256 is recorded in the ledger).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Sign a receipt of this apply with the site's key (PKCS#8 PEM, mode 0600): a DSSE
    /// envelope over the ledger entry and the report, for the vendor (`offkit receipt verify`).
    #[arg(long, value_name = "KEY", requires = "receipt")]
    pub receipt_key: Option<PathBuf>,
    /// Where to write the receipt (with `--receipt-key`).
    #[arg(long, value_name = "FILE", requires = "receipt_key")]
    pub receipt: Option<PathBuf>,
}

/// Runs `offkit apply`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let opts = options(&args);
    if args.rehearse {
        eprintln!("offkit: note: {}", crate::migrate::rehearse::WARNING);
    }
    let policy = args.site.trust.policy()?;
    let verify = args.site.trust.options();
    let receipt_key = args
        .receipt_key
        .as_deref()
        .map(crate::trust::keys::SecretKey::load)
        .transpose()?;
    let Site { mut session, store } = args.site.open(args.dry_run)?;
    let kit = KitFile {
        path: &args.kit,
        policy: &policy,
        options: &verify,
    };
    let result = apply(kit, &mut session, store.as_ref(), &opts);
    let (report, failure) = match result {
        Ok(r) => (r, None),
        Err(f) => ((*f.report).clone(), Some(f)),
    };
    // Refused before anything was written: recorded in the site's ledger when it has one (for
    // auditors: lock busy, wrong target, kit refused), and a database file this run created
    // goes again.
    if let Some(f) = &failure
        && report.ledger_id.is_none()
        && !args.dry_run
        && !args.rehearse
    {
        let error = report.error.clone().unwrap_or_else(|| f.error.to_string());
        record_refusal(&mut session, &report, &args.kit, &error);
    }
    let session = if failure.is_some() && report.ledger_id.is_none() {
        session.close_discarding_unused();
        None
    } else {
        Some(session)
    };
    if let Some(path) = &args.report {
        crate::util::write_atomic_with(path, 0o644, true, |w| report.write_json(w))
            .map_err(|e| io_error(format!("writing the report {}", path.display()), e))?;
    }
    if let (Some(key), Some(out), Some(id), Some(mut session)) =
        (&receipt_key, &args.receipt, report.ledger_id, session)
    {
        write_receipt(&mut session, id, &report, key, out)?;
    }
    if global.json {
        print_json(&report)?;
    } else {
        println!("{report}");
    }
    match failure {
        None if args.dry_run || args.rehearse => Ok(()),
        None => {
            // The kit verified and was applied: a rotation its authenticated header carries joins
            // the trust store (each version is checked against the store anyway).
            super::common::persist_rotation(&policy, &report.carried_trust)
        }
        Some(f) => Err(CliError::new(crate::exit::ExitCoded::exit(&f), f.error)),
    }
}

/// Writes the ledger row of an apply refused before it changed anything; best effort (another
/// apply holding a SQLite database's lock keeps it from being written): the refusal itself is
/// what the command reports.
fn record_refusal(
    session: &mut Session,
    report: &crate::apply::report::ApplyReport,
    kit: &Path,
    error: &str,
) {
    let file = kit
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (name, version, channel, sequence, manifest, kit_sha, signers) = match &report.kit {
        Some(k) => (
            k.name.clone(),
            k.version.clone(),
            k.channel.clone(),
            k.sequence,
            k.manifest_sha256.to_string(),
            k.kit_sha256
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            k.signers.iter().map(|s| s.keyid.to_string()).collect(),
        ),
        // Not authenticated: nothing of the kit is known but the file given.
        None => (
            crate::util::escape_controls(&file),
            String::new(),
            String::new(),
            0,
            String::new(),
            String::new(),
            Vec::new(),
        ),
    };
    let row = ledger::NewRow {
        kit_name: &name,
        kit_version: &version,
        channel: &channel,
        sequence,
        manifest_sha256: &manifest,
        kit_sha256: &kit_sha,
        signer_keyids: &signers,
        applied_by: &report.applied_by,
        store: &report.store,
        overrides: &report.overrides,
    };
    if let Err(e) = ledger::record_refused(session.driver(), &row, error) {
        super::warn(&format!(
            "the refusal could not be recorded in the ledger: {e}"
        ));
    }
}

fn options(args: &Args) -> ApplyOptions {
    let mut categories = automatic_categories();
    categories.insert(Category::Data);
    for c in &args.category {
        categories.extend(c.categories());
    }
    let release = if categories.contains(&Category::Release) {
        ReleaseGate::Force
    } else {
        ReleaseGate::Refuse
    };
    ApplyOptions {
        categories,
        release,
        mode: if args.dry_run {
            RunMode::DryRun
        } else if args.rehearse {
            RunMode::Rehearse
        } else {
            RunMode::Apply
        },
        on_error: if args.stop_on_error {
            OnError::StopOnError
        } else {
            OnError::Continue
        },
        batch_size: args.batch_size,
        lock_timeout: args.lock.lock_timeout,
        safety: args.safety.safety(),
        destructive: crate::migrate::AllowDestructive::from_args(&args.allow_destructive),
        downgrade: if args.allow_downgrade {
            DowngradePolicy::UnsafeAllow
        } else {
            DowngradePolicy::Refuse
        },
        conflicts: args.seeding.conflicts(),
        parallelism: args.seeding.parallelism,
        progress: crate::report::progress::mode(),
        work_dir: args.site.work_dir.clone(),
        ..ApplyOptions::default()
    }
}

/// Arguments of `offkit history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this kit (by name).
    #[arg(long, value_name = "NAME")]
    pub kit: Option<String>,
    /// Which records: kit applications (`apply`), the migrations commands that changed the
    /// database (`migrations`: run, rollback, resolve, import-legacy), seeding (`store`: put-dir),
    /// or all.
    #[arg(long, value_enum, default_value_t = HistoryKind::All)]
    pub kind: HistoryKind,
    /// Only what started at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<time::OffsetDateTime>,
}

/// The records `history` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryKind {
    /// Both.
    All,
    /// Kit applications (the ledger).
    Apply,
    /// `migrations run|rollback|resolve|import-legacy` (the operations journal).
    Migrations,
    /// `store put-dir` (the operations journal).
    Store,
}

impl HistoryKind {
    /// Whether a journal row of `command` is of this kind.
    fn includes(self, command: &str) -> bool {
        match self {
            HistoryKind::All => true,
            HistoryKind::Apply => false,
            HistoryKind::Migrations => command.starts_with("migrations "),
            HistoryKind::Store => command.starts_with("store "),
        }
    }
}

fn parse_since(s: &str) -> Result<time::OffsetDateTime, String> {
    crate::kit::names::parse_time(s).ok_or_else(|| format!("{s:?} is not an RFC 3339 time"))
}

/// Runs `offkit history`: the ledger of kit applications and the journal of the other commands
/// that changed the database. A row still `running` while nobody holds the migration lock is
/// shown `interrupted` (its process died; the next command that takes the lock records it so).
pub fn history(args: HistoryArgs, global: &Global) -> CliResult {
    let mut session = args.db.connect_existing()?;
    let since = |t: &str| {
        args.since
            .is_none_or(|s| crate::kit::names::parse_time(t).is_none_or(|t| t >= s))
    };
    let mut rows = if matches!(args.kind, HistoryKind::Migrations | HistoryKind::Store) {
        Vec::new()
    } else {
        ledger_rows(&mut session, args.kit.as_deref())?
    };
    rows.retain(|r| since(&r.started_at));
    let mut operations = if args.kind == HistoryKind::Apply {
        Vec::new()
    } else {
        journal_rows(&mut session)?
    };
    operations.retain(|o| {
        since(&o.started_at)
            && args.kind.includes(&o.command)
            && args
                .kit
                .as_ref()
                .is_none_or(|k| o.subject.starts_with(&format!("{k} ")))
    });
    let running = rows.iter().any(|r| r.outcome == ledger::Outcome::Running)
        || operations
            .iter()
            .any(|o| o.outcome == ledger::Outcome::Running);
    if running && session.lock(std::time::Duration::ZERO).is_ok() {
        const DEAD: &str = "interrupted: still recorded as running, but no process holds the migration lock (the next apply or migrations command records it)";
        for r in rows
            .iter_mut()
            .filter(|r| r.outcome == ledger::Outcome::Running)
        {
            r.outcome = ledger::Outcome::Interrupted;
            r.error = Some(DEAD.to_owned());
        }
        for o in operations
            .iter_mut()
            .filter(|o| o.outcome == ledger::Outcome::Running)
        {
            o.outcome = ledger::Outcome::Interrupted;
            o.error = Some(DEAD.to_owned());
        }
    }
    if global.json {
        return print_json(&serde_json::json!({ "entries": rows, "operations": operations }));
    }
    println!("Database: {}", session.url().redacted());
    if rows.is_empty() && operations.is_empty() {
        println!("  nothing recorded");
    }
    // One timeline, oldest first.
    let mut lines: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let mut text = format!(
            "#{:<4} {:<11} apply {} {} (channel {}, seq {})  {} → {}  by {}\n      manifest {}  kit {}\n      signers {}  store {}",
            r.id,
            r.outcome.as_str(),
            r.kit_name,
            r.kit_version,
            r.channel,
            r.sequence,
            r.started_at,
            r.finished_at.as_deref().unwrap_or("…"),
            r.applied_by,
            r.manifest_sha256,
            r.kit_sha256,
            r.signer_keyids.join(", "),
            r.store
        );
        if let Some(d) = &r.report_sha256 {
            text.push_str(&format!("\n      report sha256 {d}"));
        }
        for o in &r.overrides {
            let label = if o.is_unsafe() {
                "UNSAFE override"
            } else {
                "override"
            };
            text.push_str(&format!("\n      {label}: {}", o.flag()));
        }
        if let Some(e) = &r.error {
            text.push_str(&format!("\n      error: {e}"));
        }
        lines.push((r.started_at.clone(), text));
    }
    for o in &operations {
        let mut text = format!(
            "op{:<3} {:<11} {} from {}  {} → {}  by {}",
            o.id,
            o.outcome.as_str(),
            o.command,
            o.subject,
            o.started_at,
            o.finished_at.as_deref().unwrap_or("…"),
            o.actor
        );
        if !o.overrides.is_empty() {
            text.push_str(&format!("\n      options: {}", o.overrides.join(" ")));
        }
        if let Some(d) = &o.report_sha256 {
            text.push_str(&format!("\n      report sha256 {d}"));
        }
        if let Some(e) = &o.error {
            text.push_str(&format!("\n      error: {e}"));
        }
        lines.push((o.started_at.clone(), text));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, text) in lines {
        println!("{}", crate::kit::path::printable_text(&text));
    }
    Ok(())
}

/// The operations journal's rows (none when the site has no journal).
fn journal_rows(session: &mut Session) -> Result<Vec<crate::apply::journal::Operation>, CliError> {
    let db_err = |e| {
        CliError::new(
            Exit::Database,
            anyhow::anyhow!("reading the operations journal: {e}"),
        )
    };
    let driver = session.driver();
    if !crate::apply::journal::exists(driver).map_err(db_err)? {
        return Ok(Vec::new());
    }
    crate::apply::journal::list(driver).map_err(db_err)
}

pub fn ledger_rows(session: &mut Session, kit: Option<&str>) -> Result<Vec<Row>, CliError> {
    let db_err = |e| CliError::new(Exit::Database, anyhow::anyhow!("reading the ledger: {e}"));
    let driver = session.driver();
    if !ledger::exists(driver).map_err(db_err)? {
        return Ok(Vec::new());
    }
    ledger::list(driver, kit).map_err(db_err)
}

/// Signs and writes the receipt of ledger entry `id`, whose report is `report`.
fn write_receipt(
    session: &mut Session,
    id: i64,
    report: &crate::apply::report::ApplyReport,
    key: &crate::trust::keys::SecretKey,
    out: &std::path::Path,
) -> CliResult {
    let row = ledger_row(session, id)?;
    let report_json: serde_json::Value =
        serde_json::from_slice(&report.to_json()).map_err(|e| CliError::new(Exit::Internal, e))?;
    let database = session.url().redacted();
    let bytes = crate::apply::receipt::issue(
        &row,
        &database,
        Some(&report_json),
        std::slice::from_ref(key),
    );
    crate::util::write_atomic(out, &bytes, 0o644, true)
        .map_err(|e| io_error(format!("writing the receipt {}", out.display()), e))?;
    eprintln!(
        "offkit: receipt of ledger entry #{id} signed by {} written to {}",
        key.keyid(),
        out.display()
    );
    Ok(())
}

/// Ledger entry `id`.
pub fn ledger_row(session: &mut Session, id: i64) -> Result<Row, CliError> {
    ledger_rows(session, None)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| CliError::msg(Exit::Usage, format!("the ledger has no entry #{id}")))
}

/// Arguments of `offkit status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The kit file (as in every command that reads a kit).
    #[arg(value_name = "KIT", required_unless_present = "kit_flag")]
    pub kit: Option<PathBuf>,
    /// The kit file, as earlier offkit versions took it.
    #[arg(long = "kit", value_name = "KIT", hide = true, conflicts_with = "kit")]
    pub kit_flag: Option<PathBuf>,
    #[command(flatten)]
    pub site: SiteArgs,
}

/// Runs `offkit status`: what of this kit is applied, pending or conflicting at this site. Only
/// the SQL is kept from the verifying pass; seeds are compared by their signed digests, in the
/// store given, else the one the ledger recorded for this kit. Exits 0 when the kit is complete
/// here, 10 when something is pending (the report names the `apply` that finishes it), 9 on
/// problems apply would refuse (drift, …; 12 when only seeds conflict).
pub fn status(args: StatusArgs, global: &Global) -> CliResult {
    let kit_path = args
        .kit
        .or(args.kit_flag)
        .ok_or_else(|| CliError::msg(Exit::Usage, "give the kit file"))?;
    let given = args.site.store.as_deref().map(parse_store).transpose()?;
    let mut session = args.site.connect(true)?;
    let kit = args.site.trust.authenticate(&kit_path)?;
    let (store_url, recorded) = match given {
        Some(url) => (url, None),
        None => match crate::apply::status::recorded_store(&mut session, &kit)? {
            Some((url, id)) => (parse_store(&url)?, Some(id)),
            None => (parse_store(DEFAULT_STORE)?, None),
        },
    };
    if let Some(id) = recorded {
        eprintln!(
            "offkit: note: comparing seeds with {}, the store apply #{id} recorded for this kit (--store to choose another)",
            store_url.redacted()
        );
    }
    let store = crate::store::open(&store_url)?;
    let report = crate::apply::status::status(kit, &mut session, store.as_ref())?;
    for w in &report.warnings {
        super::warn(w);
    }
    let advice = advice(&report, &kit_path, &args.site, &store_url);
    if global.json {
        print_json(&StatusOut {
            report: &report,
            next: advice.as_deref(),
        })?;
    } else {
        print_status(&report, advice.as_deref());
    }
    match report.verdict {
        "complete" => Ok(()),
        "incomplete" => Err(CliError::msg(
            Exit::Pending,
            format!(
                "the kit is not complete here; {}",
                advice.unwrap_or_default()
            ),
        )),
        _ => {
            let seeds_only = report
                .migrations
                .entries
                .iter()
                .all(|e| !e.state.is_problem());
            Err(CliError::msg(
                if seeds_only {
                    Exit::Store
                } else {
                    Exit::MigrationState
                },
                format!(
                    "apply would refuse this kit here: {}",
                    report.problems.join("; ")
                ),
            ))
        }
    }
}

/// `status --json`: the report and the command that would finish the kit.
#[derive(serde::Serialize)]
struct StatusOut<'a> {
    #[serde(flatten)]
    report: &'a KitStatus,
    next: Option<&'a str>,
}

/// The `offkit apply` command line that would finish an incomplete kit (no secrets: URLs are
/// shown redacted).
fn advice(r: &KitStatus, kit: &Path, site: &SiteArgs, store: &StoreUrl) -> Option<String> {
    if r.verdict != "incomplete" {
        return None;
    }
    let mut cmd = format!("run offkit apply {}", kit.display());
    for t in &site.trust.trust {
        cmd.push_str(&format!(" --trust {}", t.display()));
    }
    cmd.push_str(&format!(
        " --db {} --store {}",
        r.database,
        store.redacted()
    ));
    for f in &r.apply_flags {
        cmd.push(' ');
        cmd.push_str(f);
    }
    Some(cmd)
}

fn print_status(r: &KitStatus, next: Option<&str>) {
    println!(
        "Kit:      {} {} (VERIFIED; manifest {})",
        r.kit.name, r.kit.version, r.kit.manifest_sha256
    );
    println!("Database: {}", r.database);
    println!("Store:    {}", r.store);
    println!("Migrations:");
    for e in &r.migrations.entries {
        println!(
            "  {:<28} {:<8} {}",
            format!("{}/{}", e.module, e.name),
            e.category.as_str(),
            state_text(&e.state)
        );
        // A data migration's checkpoint: how far its batches got, and whether they finished.
        if let Some(p) = &e.progress {
            println!(
                "      checkpoint: {} batch(es), {} row(s){}, started {}{}",
                p.batches_done,
                p.rows_done,
                if p.failed_batches > 0 {
                    format!(", {} failed batch(es)", p.failed_batches)
                } else {
                    String::new()
                },
                p.started_at,
                p.finished_at.as_deref().map_or_else(
                    || ", not finished".to_owned(),
                    |f| format!(", finished {f}")
                )
            );
            if let Some(err) = &p.last_error {
                println!("      last batch error: {err}");
            }
        }
    }
    let conflicts: Vec<String> = r
        .seeds
        .entries
        .iter()
        .filter(|e| matches!(e.state, crate::store::SeedState::Different { .. }))
        .map(|e| crate::kit::path::printable(&e.key))
        .collect();
    let t = &r.seeds.totals;
    let unlisted = t.conflicting.saturating_sub(conflicts.len() as u64);
    println!(
        "Seeds: {} present, {} pending, {} conflicting{}{}",
        t.present,
        t.pending,
        t.conflicting,
        if conflicts.is_empty() {
            String::new()
        } else {
            format!(": {}", conflicts.join(", "))
        },
        if unlisted > 0 {
            format!(" and {unlisted} more")
        } else {
            String::new()
        }
    );
    println!("Applications of this kit: {}", r.applications.len());
    for a in &r.applications {
        println!(
            "  #{} {} {} → {}",
            a.id,
            a.outcome,
            a.started_at,
            a.finished_at.as_deref().unwrap_or("…")
        );
    }
    match r.verdict {
        "complete" => println!("COMPLETE: everything in this kit is applied here"),
        "incomplete" => println!("INCOMPLETE: {}", next.unwrap_or("run offkit apply")),
        _ => {
            println!("PROBLEMS: apply would refuse this kit here");
            for p in &r.problems {
                println!("  {p}");
            }
        }
    }
}

fn state_text(s: &crate::migrate::State) -> String {
    match s {
        crate::migrate::State::Applied { applied_at, .. } => format!("applied {applied_at}"),
        crate::migrate::State::Pending => "pending".to_owned(),
        other => other.name().to_uppercase(),
    }
}
