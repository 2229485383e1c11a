//! `offkit build`: a kit source folder → a signed, reproducible kit.

use std::path::PathBuf;

use super::common::{human_bytes, source_date_epoch};
use super::{CliError, CliResult, Global, io_error, print_json};
use crate::build::{BuildOptions, KitSource, Overwrite, build};
use crate::exit::Exit;
use crate::trust::keys::SecretKey;

/// Arguments of `offkit build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit source folder (kit.toml, migrations/, rollback/, seeds/, sboms/, attestations/).
    pub source: PathBuf,
    /// A private signing key (PKCS#8 PEM, mode 0600). Repeat for several signers; each also signs
    /// SHA256SUMS (the first as `SHA256SUMS.sig`, the others as `SHA256SUMS.<keyid>.sig`).
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<PathBuf>,
    /// Output folder; the kit is written as OUT/NAME-VERSION.kit.tar.zst.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// zstd compression level.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub level: i32,
    /// Compression threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace an existing kit file with different content.
    #[arg(long)]
    pub force: bool,
    /// The channel's previous kit: refuse to build if a migration it shipped was changed or
    /// removed (unless kit.toml `[realign]` declares the change).
    #[arg(long, value_name = "KIT")]
    pub previous: Option<PathBuf>,
    /// Also cut the kit into parts of at most SIZE for removable media (as `offkit split`; the
    /// whole kit stays beside them): bytes, or with K, M, G, T (binary), or `fat32`.
    #[arg(long, value_name = "SIZE", value_parser = super::parts::part_size)]
    pub max_part_size: Option<u64>,
}

/// Runs `offkit build`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let epoch = source_date_epoch()?;
    let keys = args
        .keys
        .iter()
        .map(|k| SecretKey::load(k))
        .collect::<Result<Vec<_>, _>>()?;
    let source = KitSource::scan(&args.source)?;
    // As keygen and split: a missing output folder is made, once the source passed its checks.
    std::fs::create_dir_all(&args.out).map_err(|e| {
        io_error(
            format!("creating the output folder {}", args.out.display()),
            e,
        )
    })?;
    let mut opts = BuildOptions {
        level: args.level,
        source_date_epoch: epoch,
        overwrite: if args.force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        },
        previous: args.previous.clone(),
        ..BuildOptions::default()
    };
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    let out = build(&source, &keys, &args.out, &opts)?;
    if global.json {
        let Some(max) = args.max_part_size else {
            return print_json(&out);
        };
        let parts = crate::kit::parts::split(&out.path, max, &args.out)?;
        let mut v = serde_json::to_value(&out).map_err(|e| CliError::new(Exit::Internal, e))?;
        v["parts"] = parts
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .into();
        return print_json(&v);
    }
    println!("{}", out.path.display());
    println!("sha256 {}", out.sha256);
    let m = &out.manifest;
    println!(
        "{} {} · {} files, {} payload, kit {} · signed by {}",
        m.name,
        m.version,
        m.payload.files,
        human_bytes(m.payload.bytes),
        human_bytes(out.size),
        out.signers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !out.written {
        println!("(an identical kit was already there; left unchanged)");
    }
    if !out.reproducible {
        eprintln!(
            "note: SOURCE_DATE_EPOCH is not set and kit.toml has no `created`: the kit records the current time and is not reproducible"
        );
    }
    if let Some(max) = args.max_part_size {
        super::parts::split_and_report(&out.path, max, &args.out, global)?;
    }
    Ok(())
}
