//! `offkit store migrate | migrations | rollback | compare | report`: store migration runs.
//! Cheap first: URLs are parsed and the stores opened, then the database is reached and its lock
//! taken, then the work starts.

use std::path::{Path, PathBuf};

use super::common::{DbArgs, LockArgs};
use super::store::{parse_url, raw_url};
use super::{CliError, CliResult, Global, io_error, print_json};
use crate::exit::Exit;
use crate::store::{self, Secret, Store};
use crate::transfer::layout::Layout;
use crate::transfer::{self as tr, Ledger, MigrateOptions, record};

/// `--from`, `--to`, `--layout`, filters and workers: what `migrate` and `compare` share.
#[derive(Debug, Clone, clap::Args)]
pub struct Scope {
    /// The source store URL.
    #[arg(long, value_parser = raw_url, value_name = "URL")]
    from: Secret,
    /// The destination store URL.
    #[arg(long, value_parser = raw_url, value_name = "URL")]
    to: Secret,
    /// How keys map: a preset (identity, legacy-tenant-bundles, legacy-attest-dsse,
    /// legacy-format-digest, legacy) or a layout file (docs/STORES.md).
    #[arg(long, default_value = "identity", value_name = "PRESET|FILE")]
    layout: String,
    /// Only objects of this tenant (the layout's {tenantId}).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// Only source keys starting with this text.
    #[arg(long, value_name = "PREFIX")]
    source_filter: Option<String>,
    /// Objects handled at once (default: cores × 4 when a store is S3, else the destination's).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    parallelism: Option<usize>,
}

/// Arguments of `offkit store migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    scope: Scope,
    /// Only plan: read both stores, write the full plan (with --output), change nothing anywhere.
    #[arg(long)]
    dry_run: bool,
    /// Keys per checkpoint.
    #[arg(long, value_name = "N", default_value_t = tr::DEFAULT_BATCH_SIZE, value_parser = parse_positive)]
    batch_size: usize,
    /// Stop after the batch in which the first object failed (default: count it and go on).
    #[arg(long)]
    stop_on_error: bool,
    /// Delete each source object once its copy is confirmed by digest and indexed.
    #[arg(long)]
    delete_source: bool,
    /// Continue this run (same stores, layout and filters).
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<i64>,
    /// Write the JSON report (a dry run's full plan) to this file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    lock: LockArgs,
}

/// Arguments of `offkit store migrations`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArgs,
}

/// Arguments of `offkit store rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The store migration run to roll back.
    #[arg(
        required_unless_present = "application",
        conflicts_with = "application"
    )]
    run_id: Option<i64>,
    /// Instead: remove the seed objects this apply (ledger entry, `offkit history`) put.
    #[arg(long, value_name = "N")]
    application: Option<i64>,
    /// The apply's store (default: as recorded in the ledger, when it holds no secret).
    #[arg(long, value_parser = raw_url, value_name = "URL", requires = "application")]
    store: Option<Secret>,
    /// The source store (default: as recorded, when the recorded URL holds no secret).
    #[arg(long, value_parser = raw_url, value_name = "URL")]
    from: Option<Secret>,
    /// The destination store (default: as recorded, when the recorded URL holds no secret).
    #[arg(long, value_parser = raw_url, value_name = "URL")]
    to: Option<Secret>,
    /// Objects handled at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = parse_positive)]
    parallelism: usize,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    lock: LockArgs,
}

/// Arguments of `offkit store compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    scope: Scope,
    /// Write the JSON comparison to this file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `offkit store report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run.
    run_id: i64,
    #[command(flatten)]
    db: DbArgs,
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of at least 1")),
    }
}

/// A scope's stores, opened, and its options.
struct Opened {
    src: Box<dyn Store>,
    dst: Box<dyn Store>,
    opts: MigrateOptions,
}

/// The stores and options of a scope.
fn open_scope(scope: &Scope) -> Result<Opened, CliError> {
    let from = parse_url(&scope.from)?;
    let to = parse_url(&scope.to)?;
    let layout = Layout::load(&scope.layout).map_err(|e| CliError::new(Exit::Usage, e))?;
    let src = store::open(&from)?;
    let dst = store::open(&to)?;
    let s3 = from.driver() == "s3" || to.driver() == "s3";
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parallelism = scope.parallelism.unwrap_or(if s3 {
        cores * 4
    } else {
        dst.default_parallelism()
    });
    let opts = MigrateOptions {
        layout,
        dry_run: false,
        parallelism,
        batch_size: tr::DEFAULT_BATCH_SIZE,
        tenant: scope.tenant.clone(),
        source_filter: scope.source_filter.clone(),
        stop_on_error: false,
        delete_source: false,
        resume: None,
        progress: crate::report::progress::mode(),
        started_by: crate::migrate::runner::default_applied_by(),
    };
    Ok(Opened { src, dst, opts })
}

/// Prints a report: JSON with `--json`, else its text.
fn show(
    report: &impl serde::Serialize,
    text: impl FnOnce() -> String,
    global: &Global,
) -> CliResult {
    if global.json {
        print_json(report)
    } else {
        print!("{}", text());
        Ok(())
    }
}

/// Success, or the exit code and message of a job left incomplete.
fn done_if(ok: bool, exit: Exit, message: impl FnOnce() -> String) -> CliResult {
    if ok {
        Ok(())
    } else {
        Err(CliError::msg(exit, message()))
    }
}

fn write_output(path: &Path, bytes: &[u8]) -> CliResult {
    crate::util::write_atomic(path, bytes, 0o644, true)
        .map_err(|e| io_error(format!("writing {}", path.display()), e))
}

/// `offkit store migrate`.
pub fn migrate(a: MigrateArgs, global: &Global) -> CliResult {
    let Opened {
        src,
        dst,
        opts: base,
    } = open_scope(&a.scope)?;
    let opts = MigrateOptions {
        dry_run: a.dry_run,
        batch_size: a.batch_size,
        stop_on_error: a.stop_on_error,
        delete_source: a.delete_source,
        resume: a.resume,
        ..base
    };
    if a.dry_run && a.resume.is_some() {
        return Err(CliError::msg(
            Exit::Usage,
            "--dry-run plans a new run; it cannot be combined with --resume",
        ));
    }
    let result = if a.dry_run {
        tr::migrate(src.as_ref(), dst.as_ref(), None, &opts)
    } else {
        let mut session = a.db.connect()?;
        let mut locked = session.lock(a.lock.lock_timeout)?;
        tr::prepare(&mut locked)?;
        tr::migrate(
            src.as_ref(),
            dst.as_ref(),
            Some(Ledger {
                driver: locked.driver(),
            }),
            &opts,
        )
    };
    let report = match &result {
        Ok(r) => Some(r),
        Err(e) => e.report(),
    };
    if let Some(r) = report {
        if let Some(path) = &a.output {
            write_output(path, &r.to_json())?;
        }
        show(r, || r.render_text(), global)?;
    }
    result.map(|_| ()).map_err(CliError::from)
}

/// `offkit store migrations`.
pub fn list(a: ListArgs, global: &Global) -> CliResult {
    let mut session = a.db.connect_existing()?;
    let driver = session.driver();
    let runs = if record::exists(driver).map_err(db)? {
        record::list(driver).map_err(db)?
    } else {
        Vec::new()
    };
    if global.json {
        return print_json(&serde_json::json!({ "runs": runs }));
    }
    if runs.is_empty() {
        println!("no store migration runs recorded");
    }
    for r in &runs {
        println!(
            "{:>4}  {:<11}  {}  {} -> {}  layout {}  total {} copied {} skipped {} failed {} sources deleted {}{}",
            r.id,
            r.state.as_str(),
            r.started_at,
            r.from_store,
            r.to_store,
            crate::util::escape_controls(&r.layout),
            r.total,
            r.copied,
            r.skipped,
            r.failed,
            r.deleted_sources,
            r.error
                .as_deref()
                .map(|e| format!("  ({})", crate::util::escape_controls(e)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn db(e: crate::migrate::DbError) -> CliError {
    CliError::from(tr::TransferError::from(e))
}

/// The store a rollback works on: the given URL, or the recorded one when it is usable as is.
fn recorded_or_given(
    given: Option<&Secret>,
    recorded: &str,
    flag: &str,
) -> Result<Box<dyn Store>, CliError> {
    let url = match given {
        Some(g) => parse_url(g)?,
        None => store::StoreUrl::parse_recorded(recorded).ok_or_else(|| {
            CliError::msg(
                Exit::Usage,
                format!("the recorded store {recorded} cannot be opened as recorded (secrets are not kept); give it with {flag}"),
            )
        })?,
    };
    Ok(store::open(&url)?)
}

/// `offkit store rollback`.
pub fn rollback(a: RollbackArgs, global: &Global) -> CliResult {
    let mut session = a.db.connect()?;
    let mut locked = session.lock(a.lock.lock_timeout)?;
    let Some(run_id) = a.run_id else {
        let id = a.application.unwrap_or_default();
        return seed_rollback(locked.driver(), id, a.store.as_ref(), global);
    };
    tr::prepare(&mut locked)?;
    let run = record::get(locked.driver(), run_id)
        .map_err(db)?
        .ok_or(tr::TransferError::UnknownRun(run_id))?;
    let src = recorded_or_given(a.from.as_ref(), &run.from_store, "--from")?;
    let dst = recorded_or_given(a.to.as_ref(), &run.to_store, "--to")?;
    let report = tr::rollback::rollback(
        src.as_ref(),
        dst.as_ref(),
        Ledger {
            driver: locked.driver(),
        },
        run_id,
        a.parallelism,
    )?;
    show(&report, || report.render_text(), global)?;
    done_if(report.complete(), Exit::PartialFailure, || {
        format!(
            "rollback of run {run_id} incomplete: {} copies kept (changed since the run), {} failed",
            report.kept_changed.len(),
            report.failures.len()
        )
    })
}

/// `offkit store rollback --application N`: the seeds one apply put.
fn seed_rollback(
    driver: &mut dyn crate::migrate::Driver,
    id: i64,
    given: Option<&Secret>,
    global: &Global,
) -> CliResult {
    use crate::apply::seeds;
    let recorded = seeds::application_store(driver, id)
        .map_err(db)?
        .ok_or_else(|| {
            CliError::msg(
                Exit::Usage,
                format!("no apply #{id} is recorded in this database (offkit history lists them)"),
            )
        })?;
    let store = recorded_or_given(given, &recorded, "--store")?;
    if store.url().redacted() != recorded {
        return Err(CliError::msg(
            Exit::Usage,
            format!(
                "apply #{id} seeded {recorded}, not {}",
                store.url().redacted()
            ),
        ));
    }
    let by = crate::migrate::runner::default_applied_by();
    let report = seeds::rollback(driver, store.as_ref(), id, &by).map_err(db)?;
    show(&report, || report.render_text(), global)?;
    done_if(report.complete(), Exit::PartialFailure, || {
        format!(
            "seed rollback of apply #{id} incomplete: {} kept, {} failed",
            report.kept.len(),
            report.failures.len()
        )
    })
}

/// `offkit store compare`.
pub fn compare(a: CompareArgs, global: &Global) -> CliResult {
    let Opened { src, dst, opts } = open_scope(&a.scope)?;
    let c = tr::compare::compare(src.as_ref(), dst.as_ref(), &opts)?;
    if let Some(path) = &a.output {
        let mut bytes =
            serde_json::to_vec_pretty(&c).map_err(|e| CliError::new(Exit::Internal, e))?;
        bytes.push(b'\n');
        write_output(path, &bytes)?;
    }
    show(&c, || c.render_text(), global)?;
    done_if(c.equal(), Exit::Different, || {
        format!(
            "the stores differ: {} missing, {} different, {} unreadable, {} only in the destination",
            c.missing.len(),
            c.different.len(),
            c.unreadable.len(),
            c.only_in_destination.len()
        )
    })
}

#[derive(serde::Serialize)]
struct RunReport {
    run: record::RunRow,
    figures: record::Figures,
}

/// `offkit store report`.
pub fn report(a: ReportArgs, global: &Global) -> CliResult {
    let mut session = a.db.connect_existing()?;
    let driver = session.driver();
    if !record::exists(driver).map_err(db)? {
        return Err(tr::TransferError::UnknownRun(a.run_id).into());
    }
    let run = record::get(driver, a.run_id)
        .map_err(db)?
        .ok_or(tr::TransferError::UnknownRun(a.run_id))?;
    let index_ready =
        crate::migrate::history::table_exists(driver, record::INDEX_SCHEMA, record::INDEX)
            .map_err(db)?;
    let figures = record::figures(driver, a.run_id, index_ready).map_err(db)?;
    if global.json {
        return print_json(&RunReport { run, figures });
    }
    println!(
        "store migration run {} ({}): {} -> {}, layout {}",
        run.id,
        run.state.as_str(),
        run.from_store,
        run.to_store,
        crate::util::escape_controls(&run.layout)
    );
    println!(
        "  objects {}: copied {}, skipped {}, failed {}, sources deleted {}",
        run.total, run.copied, run.skipped, run.failed, run.deleted_sources
    );
    println!(
        "  indexed {}, synthetic bom-refs {}",
        figures.indexed, figures.synthetic_bom_refs
    );
    for (layout, n) in &figures.per_layout {
        println!(
            "  source layout {}: {n}",
            crate::util::escape_controls(layout)
        );
    }
    for (tenant, n) in &figures.per_tenant {
        let t = if tenant.is_empty() { "(none)" } else { tenant };
        println!("  tenant {}: {n}", crate::util::escape_controls(t));
    }
    for (key, e) in &figures.failures {
        println!(
            "  failed {}: {}",
            crate::kit::path::printable(key),
            crate::util::escape_controls(e)
        );
    }
    Ok(())
}
