//! `offkit split` and `offkit join`: a kit cut into parts for removable media and put back
//! together ([`crate::kit::parts`]).

use std::path::PathBuf;

use super::{CliError, CliResult, Global, print_json};
use crate::exit::Exit;
use crate::kit::parts::{join, parse_size, split};

/// Arguments of `offkit split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// The kit file.
    pub kit: PathBuf,
    /// Largest part: bytes, or with K, M, G, T (binary), or `fat32` (4 GiB − 1 byte).
    #[arg(long, value_name = "SIZE", value_parser = part_size)]
    pub max_part_size: u64,
    /// Folder for the parts (default: the kit's folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Arguments of `offkit join`.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The first part (`NAME.kit.tar.zst.001`) or the folder holding the parts.
    pub parts: PathBuf,
    /// The kit file to write (refuses to overwrite).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `--max-part-size`'s parser.
pub fn part_size(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| format!("{s:?} is not a size (e.g. 700M, 4G, fat32)"))
}

/// Splits `kit` and prints the parts; shared with `build --max-part-size`.
pub fn split_and_report(
    kit: &std::path::Path,
    max: u64,
    out: &std::path::Path,
    global: &Global,
) -> Result<Vec<PathBuf>, CliError> {
    let parts = split(kit, max, out)?;
    if global.json {
        print_json(&serde_json::json!({
            "kit": kit.display().to_string(),
            "max_part_size": max,
            "parts": parts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        for p in &parts {
            let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            println!("{}  {}", p.display(), super::common::human_bytes(size));
        }
        println!(
            "{} parts; give sites the first part or the folder (offkit verify/extract/apply check each part), or `cat` them in order to get the kit back",
            parts.len()
        );
    }
    Ok(parts)
}

/// Runs `offkit split`.
pub fn run_split(args: SplitArgs, global: &Global) -> CliResult {
    let out = match &args.out {
        Some(d) => d.clone(),
        None => args
            .kit
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    if !args.kit.is_file() {
        return Err(CliError::msg(
            Exit::Io,
            format!("{}: no such kit file", args.kit.display()),
        ));
    }
    // As keygen and build: a missing output folder is made.
    std::fs::create_dir_all(&out)
        .map_err(|e| super::io_error(format!("creating {}", out.display()), e))?;
    split_and_report(&args.kit, args.max_part_size, &out, global)?;
    Ok(())
}

/// Runs `offkit join`.
pub fn run_join(args: JoinArgs, global: &Global) -> CliResult {
    let (count, size) = join(&args.parts, &args.out)?;
    if global.json {
        return print_json(&serde_json::json!({
            "kit": args.out.display().to_string(),
            "parts": count,
            "size": size,
        }));
    }
    println!(
        "{} ({count} parts, {}); each part matched the kit's frame index — verify the kit before use",
        args.out.display(),
        super::common::human_bytes(size)
    );
    Ok(())
}
