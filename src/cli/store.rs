//! `offkit store …`: check a store, list and fetch objects, and seed a folder into it.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use super::journaled::Journaled;
use super::{CliError, CliResult, Global, io_error, print_json};
use crate::exit::Exit;
use crate::kit::path::KitPath;
use crate::store::seed::SeedMode;
use crate::store::{self, Secret, SeedError, SeedOptions, SeedReport, StoreUrl};

/// `offkit store` subcommands. URLs: `file://DIR`, `s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true`,
/// `postgres://USER@HOST/DB?table=SCHEMA.TABLE` (see docs/STORES.md).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write, stat, read back, re-write (must be refused), delete a probe object; report each step.
    Check {
        /// The store URL.
        #[arg(value_parser = raw_url)]
        url: Secret,
    },
    /// List objects: size and key (and SHA-256 with --sha256).
    Ls {
        /// The store URL.
        #[arg(value_parser = raw_url)]
        url: Secret,
        /// Only keys starting with this text.
        #[arg(long)]
        prefix: Option<String>,
        /// Read every listed object back and show its SHA-256.
        #[arg(long)]
        sha256: bool,
    },
    /// Write one object's bytes to stdout, or to a file (written atomically).
    Get {
        /// The store URL.
        #[arg(value_parser = raw_url)]
        url: Secret,
        /// The object key.
        #[arg(value_parser = parse_key)]
        key: KitPath,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Seed every file under DIR into the store (key = relative path): idempotent, create-only,
    /// confirmed by digest, resumable after a crash.
    PutDir(PutDirArgs),
    /// Copy (and re-lay out) every object of one store into another, confirmed by digest,
    /// checkpointed per batch in the database, resumable, on record (docs/STORES.md).
    Migrate(super::transfer::MigrateArgs),
    /// List the recorded store migration runs.
    #[command(alias = "list-migrations")]
    Migrations(super::transfer::ListArgs),
    /// Remove exactly the copies a store migration run made (digest-checked; deleted sources are
    /// put back first).
    Rollback(super::transfer::RollbackArgs),
    /// Compare two stores object by object, by digest (exit 15 when they differ).
    Compare(super::transfer::CompareArgs),
    /// The validation figures of a run: objects per source layout and tenant, synthetic bom-refs,
    /// failures.
    Report(super::transfer::ReportArgs),
}

/// Arguments of `offkit store put-dir`.
#[derive(Debug, clap::Args)]
pub struct PutDirArgs {
    /// The store URL.
    #[arg(value_parser = raw_url)]
    url: Secret,
    /// The folder to seed.
    dir: PathBuf,
    /// Put keys under this prefix (`PREFIX/relative/path`).
    #[arg(long, value_parser = parse_key)]
    prefix: Option<KitPath>,
    #[command(flatten)]
    seeding: super::common::SeedArgs,
    /// Only plan: show puts, skips and conflicts; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The database whose operations journal records the run (not touched by --dry-run).
    #[command(flatten)]
    db: super::common::DbArgs,
    #[command(flatten)]
    lock: super::common::LockArgs,
}

/// Store and database URLs are taken as secrets and parsed by offkit ([`StoreUrl::parse`],
/// `DbUrl::parse`), whose errors never quote them: a clap `value_parser` error would echo the raw
/// argument, password and all.
pub(super) fn raw_url(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

pub(super) fn parse_url(raw: &Secret) -> Result<StoreUrl, CliError> {
    Ok(StoreUrl::parse(raw.expose())?)
}

fn parse_key(s: &str) -> Result<KitPath, crate::kit::path::PathError> {
    KitPath::new(s)
}

/// Runs a `store` subcommand.
pub fn run(cmd: Command, global: &Global) -> CliResult {
    match cmd {
        Command::Check { url } => check(&parse_url(&url)?, global),
        Command::Ls {
            url,
            prefix,
            sha256,
        } => ls(&parse_url(&url)?, prefix.as_deref(), sha256, global),
        Command::Get { url, key, output } => {
            if output.is_none() {
                super::data_on_stdout(global, "store get without --out")?;
            }
            get(&parse_url(&url)?, &key, output)
        }
        Command::PutDir(args) => put_dir(args, global),
        Command::Migrate(args) => super::transfer::migrate(args, global),
        Command::Migrations(args) => super::transfer::list(args, global),
        Command::Rollback(args) => super::transfer::rollback(args, global),
        Command::Compare(args) => super::transfer::compare(args, global),
        Command::Report(args) => super::transfer::report(args, global),
    }
}

fn check(url: &StoreUrl, global: &Global) -> CliResult {
    let store = store::open(url)?;
    let report = store::check::check(store.as_ref());
    if global.json {
        print_json(&report)?;
    } else {
        print!("{}", report.render_text());
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::msg(
            Exit::Store,
            format!("store check failed for {}", report.store),
        ))
    }
}

#[derive(serde::Serialize)]
struct Listed {
    key: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

fn ls(url: &StoreUrl, prefix: Option<&str>, sha256: bool, global: &Global) -> CliResult {
    // A folder store that does not exist is a mistyped path, not an empty store (as `rclone lsf`
    // says "directory not found").
    if let StoreUrl::File(f) = url
        && !f.dir.is_dir()
    {
        return Err(CliError::msg(
            Exit::Store,
            format!("{}: no such store folder", url.redacted()),
        ));
    }
    let store = store::open(url)?;
    let prefix = prefix.unwrap_or("");
    // List the deepest folder the prefix names, then filter by the text prefix.
    let under = prefix
        .rsplit_once('/')
        .map(|(folder, _)| folder)
        .filter(|f| !f.is_empty())
        .and_then(|f| KitPath::new(f).ok());
    let mut items = Vec::new();
    store.list(under.as_ref(), &mut |info| {
        if info.key.starts_with(prefix) {
            items.push(Listed {
                key: info.key,
                size: info.size,
                sha256: None,
            });
        }
        ControlFlow::Continue(())
    })?;
    items.sort_by(|a, b| a.key.cmp(&b.key));
    if sha256 {
        for item in &mut items {
            if let Ok(key) = KitPath::new(&item.key) {
                item.sha256 = store.digest(&key)?.map(|d| d.sha256);
            }
        }
    }
    if global.json {
        return print_json(&serde_json::json!({ "objects": items }));
    }
    let mut out = std::io::stdout().lock();
    for i in &items {
        let line = match &i.sha256 {
            Some(s) => writeln!(out, "{:>12}  {s}  {}", i.size, i.key),
            None => writeln!(out, "{:>12}  {}", i.size, i.key),
        };
        line.map_err(|e| io_error("writing to stdout", e))?;
    }
    Ok(())
}

fn get(url: &StoreUrl, key: &KitPath, output: Option<PathBuf>) -> CliResult {
    let store = store::open(url)?;
    let missing = || CliError::msg(Exit::Store, format!("no object \"{key}\" in {url}"));
    let Some(path) = output else {
        let mut out = std::io::stdout().lock();
        store.get(key, &mut out)?.ok_or_else(missing)?;
        return out.flush().map_err(|e| io_error("writing to stdout", e));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let ctx = |e| io_error(format!("writing {}", path.display()), e);
    let mut tmp = tempfile::Builder::new()
        .prefix(".offkit-tmp-")
        .tempfile_in(&dir)
        .map_err(|e| ctx(crate::util::without_temp_path(e)))?;
    store.get(key, tmp.as_file_mut())?.ok_or_else(missing)?;
    tmp.as_file().sync_all().map_err(ctx)?;
    tmp.persist(&path).map_err(|e| ctx(e.error))?;
    crate::util::sync_dir(&dir).map_err(ctx)
}

/// `store put-dir`: a run that puts objects is recorded in the database's operations journal
/// (holding the migration lock, as `apply` does while seeding); a dry run touches no database.
fn put_dir(args: PutDirArgs, global: &Global) -> CliResult {
    let url = parse_url(&args.url)?;
    // A mistyped folder is refused before the database is touched (no file made for it).
    if !args.dir.is_dir() {
        return Err(CliError::msg(
            Exit::Io,
            format!("{} is not a folder", args.dir.display()),
        ));
    }
    if args.dry_run {
        return seed_dir(&args, &url, global).result;
    }
    let mut session = args.db.connect()?;
    let mut locked = session.lock(args.lock.lock_timeout)?;
    let subject = format!("folder {} into {}", args.dir.display(), url.redacted());
    let mut overrides: Vec<String> = args
        .prefix
        .iter()
        .map(|p| format!("--prefix {p}"))
        .collect();
    if args.seeding.replace_conflicting {
        overrides.push("--replace-conflicting".to_owned());
    }
    super::journaled::record(
        &mut locked,
        "store put-dir",
        &overrides,
        &subject,
        |_| Ok(((), subject.clone())),
        |_, ()| seed_dir(&args, &url, global),
    )
}

/// Seeds the folder (or plans it): what it did, for the journal.
fn seed_dir(args: &PutDirArgs, url: &StoreUrl, global: &Global) -> Journaled<()> {
    let refused = |e: CliError| Journaled {
        report: None,
        changed: false,
        result: Err(e),
    };
    let store = match store::open(url) {
        Ok(s) => s,
        Err(e) => return refused(e.into()),
    };
    let opts = SeedOptions {
        mode: if args.dry_run {
            SeedMode::DryRun
        } else {
            SeedMode::Apply
        },
        conflicts: args.seeding.conflicts(),
        parallelism: args.seeding.parallelism,
        progress: crate::report::progress::mode(),
    };
    let threads = args
        .seeding
        .parallelism
        .unwrap_or_else(|| store.default_parallelism());
    let files = match store::dir::files_of_dir(&args.dir, args.prefix.as_ref()) {
        Ok(f) => f,
        Err(e) => return refused(e.into()),
    };
    // The store is listed while the files are hashed (each read once, with its MD5 when the
    // store vouches for MD5s); a failed listing is left to seeding, which looks up again.
    let keys = files.iter().map(|(k, _)| k.clone()).collect();
    let md5 = store.confirms_by_checksum();
    let (hashed, ahead) = std::thread::scope(|s| {
        let ahead = s.spawn(|| store::look_up(store.as_ref(), keys).ok());
        let hashed = store::dir::hash_files(files, threads, md5);
        (hashed, ahead.join().ok().flatten())
    });
    let hashed = match hashed {
        Ok(h) => h,
        Err(e) => return refused(e.into()),
    };
    let source = store::FolderSource::with_prefix(args.dir.clone(), args.prefix.clone())
        .with_md5s(hashed.md5s);
    let result = store::seed_looked_up(store.as_ref(), &hashed.seeds, Some(&source), &opts, ahead);
    let report = match &result {
        Ok(r) => Some(r),
        Err(e) => e.report(),
    };
    // A seeding error without a report may have written; one with a report says.
    let changed = report.is_none_or(|r| {
        r.totals.put + r.totals.replaced + r.totals.failed > 0 || r.totals.bytes_written > 0
    });
    let shown = report.map_or(Ok(()), |r| show(r, args.report.as_deref(), global));
    Journaled {
        report: report.and_then(|r| serde_json::to_vec(r).ok()),
        changed,
        result: shown.and(result.map(|_| ()).map_err(|e: SeedError| e.into())),
    }
}

fn show(report: &SeedReport, file: Option<&std::path::Path>, global: &Global) -> CliResult {
    if let Some(path) = file {
        let bytes =
            serde_json::to_vec_pretty(report).map_err(|e| CliError::new(Exit::Internal, e))?;
        crate::util::write_atomic(path, &bytes, 0o644, true)
            .map_err(|e| io_error(format!("writing report {}", path.display()), e))?;
    }
    if global.json {
        print_json(report)
    } else {
        print!("{}", report.render_text());
        Ok(())
    }
}
