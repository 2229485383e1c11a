//! `offkit verify`: authenticate a kit in one streaming pass; writes nothing.

use std::path::PathBuf;
use std::time::Instant;

use super::common::TrustArgs;
use super::kitview::KitReport;
use super::{CliError, CliResult, Global, print_json};
use crate::exit::ExitCoded;
use crate::trust::verify::verify_kit;

/// Arguments of `offkit verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit file.
    pub kit: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Runs `offkit verify`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let policy = args.trust.policy()?;
    let started = Instant::now();
    let shown = args.kit.display().to_string();
    match verify_kit(&args.kit, &policy, &args.trust.options()) {
        Ok(v) => {
            let report = KitReport::verified(&shown, &v, started.elapsed().as_millis() as u64);
            if global.json {
                print_json(&report)
            } else {
                report.print_human();
                Ok(())
            }
        }
        Err(failure) => {
            let report = KitReport {
                kit: shown,
                status: "REFUSED",
                verified: false,
                kit_sha256: None,
                manifest_sha256: None,
                signers: Vec::new(),
                failures: failure.failures.clone(),
                warnings: Vec::new(),
                key_validity: None,
                manifest: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            if global.json {
                print_json(&report)?;
            } else {
                report.print_human();
            }
            Err(CliError::new(failure.exit(), failure))
        }
    }
}
