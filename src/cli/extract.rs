//! `offkit extract`: verify, then write the kit's files into a folder (all or nothing).

use std::path::PathBuf;
use std::time::Instant;

use super::common::TrustArgs;
use super::kitview::KitReport;
use super::{CliResult, Global, print_json};
use crate::trust::extract::extract_kit;

/// Arguments of `offkit extract`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit file.
    pub kit: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Target folder: created, or an existing empty folder.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

/// Runs `offkit extract`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let policy = args.trust.policy()?;
    let started = Instant::now();
    let extracted = extract_kit(&args.kit, &policy, &args.trust.options(), &args.to)?;
    let report = KitReport::verified(
        &args.kit.display().to_string(),
        &extracted,
        started.elapsed().as_millis() as u64,
    );
    if global.json {
        return print_json(&report);
    }
    report.print_human();
    println!("extracted into {}", args.to.display());
    Ok(())
}
