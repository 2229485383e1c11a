//! `offkit extract`: verify, then write the kit's files into a folder (all or nothing).

use std::path::PathBuf;
use std::time::Instant;

use super::common::{RecordArgs, TrustArgs, persist_rotation};
use super::kitview::KitReport;
use super::{CliResult, Global, print_json};
use crate::trust::extract::extract_authenticated;
use crate::trust::verify::authenticate;

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
    #[command(flatten)]
    pub record: RecordArgs,
}

/// Runs `offkit extract`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let policy = args.trust.policy()?;
    let started = Instant::now();
    // The channel's sequence is checked against what this site accepted before anything is
    // written; the kit is recorded once it is extracted.
    let mut record = args.record.open()?;
    let authenticated = authenticate(&args.kit, &policy, &args.trust.options())?;
    let downgraded = args.record.check(&record, &authenticated)?;
    let extracted = extract_authenticated(authenticated, &args.to)?;
    args.record.record(&mut record, &extracted, "extract")?;
    persist_rotation(&policy, &extracted.header().trust_versions)?;
    let mut report = KitReport::verified(
        &args.kit.display().to_string(),
        &extracted,
        crate::util::millis(started.elapsed()),
    );
    report.warnings.extend(downgraded);
    if global.json {
        return print_json(&report);
    }
    report.print_human();
    println!("extracted into {}", args.to.display());
    Ok(())
}
