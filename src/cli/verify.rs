//! `offkit verify`: authenticate a kit in one streaming pass; writes nothing.

use std::path::PathBuf;
use std::time::Instant;

use super::common::{RecordArgs, TrustArgs, persist_rotation};
use super::kitview::KitReport;
use super::{CliError, CliResult, Global, print_json};
use crate::exit::ExitCoded;
use crate::trust::Retain;
use crate::trust::verify::authenticate;

/// Arguments of `offkit verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit file.
    pub kit: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Check the kit against the record of accepted kits (refusing a rollback of its channel) and
    /// record it; plain `verify` reads and writes no record.
    #[arg(long)]
    pub record: bool,
    #[command(flatten)]
    pub state: RecordArgs,
}

/// Runs `offkit verify`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let policy = args.trust.policy()?;
    let started = Instant::now();
    let shown = args.kit.display().to_string();
    let mut record = if args.record {
        Some(args.state.open()?)
    } else {
        None
    };
    // With --record, a rollback of the kit's channel is refused before the payload is read.
    let mut downgraded = None;
    let verified = match authenticate(&args.kit, &policy, &args.trust.options()) {
        Err(f) => Err(f),
        Ok(a) => {
            if let Some(r) = &record {
                downgraded = args.state.check(r, &a)?;
            }
            a.verify(Retain::Nothing)
        }
    };
    if let (Ok(v), Some(r)) = (&verified, &mut record) {
        args.state.record(r, v, "verify --record")?;
        persist_rotation(&policy, &v.header().trust_versions)?;
    }
    match verified {
        Ok(v) => {
            let mut report =
                KitReport::verified(&shown, &v, crate::util::millis(started.elapsed()));
            report.warnings.extend(downgraded);
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
                provenance: None,
                attestations: Vec::new(),
                manifest: None,
                duration_ms: crate::util::millis(started.elapsed()),
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
