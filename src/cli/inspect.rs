//! `offkit inspect`: what a kit contains and who signed it. Without `--trust` only the header is
//! read and everything shown is labelled NOT VERIFIED.

use std::path::PathBuf;
use std::time::Instant;

use super::common::{KeyValidityArg, TrustArgs};
use super::kitview::{KitReport, SignerView};
use super::{CliError, CliResult, Global, print_json};
use crate::exit::Exit;
use crate::kit::dsse::Envelope;
use crate::kit::layout::Limits;
use crate::kit::manifest::Manifest;
use crate::kit::reader::{Keep, KitReader};
use crate::trust::failure::Failure;
use crate::trust::verify::verify_kit;

/// Arguments of `offkit inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit file.
    pub kit: PathBuf,
    /// Verify against these trusted keys / policy before showing anything.
    #[arg(long = "trust", value_name = "PUB|POLICY")]
    pub trust: Vec<PathBuf>,
    /// With --trust: distinct trusted keys that must have signed.
    #[arg(long, value_name = "K", requires = "trust")]
    pub threshold: Option<usize>,
    /// With --trust: UNSAFE, accept an expired kit.
    #[arg(long, requires = "trust")]
    pub allow_expired: bool,
    /// With --trust: judge key validity at the clock or at the kit's signed creation time.
    #[arg(
        long,
        value_enum,
        value_name = "AT",
        default_value = "clock",
        requires = "trust"
    )]
    pub key_validity: KeyValidityArg,
}

/// Runs `offkit inspect`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let started = Instant::now();
    let shown = args.kit.display().to_string();
    let report = if args.trust.is_empty() {
        unverified(&args, &shown, started)?
    } else {
        let trust = TrustArgs {
            trust: args.trust.clone(),
            threshold: args.threshold,
            allow_expired: args.allow_expired,
            key_validity: args.key_validity,
        };
        let policy = trust.policy()?;
        let v = verify_kit(&args.kit, &policy, &trust.options())?;
        KitReport::verified(&shown, &v, started.elapsed().as_millis() as u64)
    };
    if global.json {
        return print_json(&report);
    }
    report.print_human();
    if !report.verified {
        println!("NOT VERIFIED: nothing above is authenticated; pass --trust KEY.pub to verify");
    }
    Ok(())
}

fn unverified(args: &Args, shown: &str, started: Instant) -> Result<KitReport, CliError> {
    let mut reader = KitReader::open(&args.kit, Limits::default()).map_err(|e| {
        let f = Failure::from(e);
        CliError::msg(Exit::Io, f.message)
    })?;
    let header = reader.read_header(Keep::All).map_err(|e| {
        let f = Failure::from(e);
        CliError::msg(
            Exit::Verification,
            format!("cannot read the kit header: {f}"),
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&header.manifest.bytes).map_err(|e| {
        CliError::msg(
            Exit::Verification,
            format!("manifest.json is malformed: {e}"),
        )
    })?;
    // Unauthenticated: keyids are shown only when well formed, never as raw text.
    let signers = serde_json::from_slice::<Envelope>(&header.dsse.bytes)
        .map(|env| {
            env.signatures
                .into_iter()
                .map(|s| match crate::trust::KeyId::exact(&s.keyid) {
                    Some(k) => k.to_string(),
                    None => "(malformed keyid)".to_owned(),
                })
                .map(|keyid| SignerView {
                    keyid,
                    name: String::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(KitReport {
        kit: shown.to_owned(),
        status: "NOT VERIFIED",
        verified: false,
        kit_sha256: None,
        manifest_sha256: Some(header.manifest.sha256.to_string()),
        signers,
        failures: Vec::new(),
        warnings: Vec::new(),
        key_validity: None,
        manifest: Some(manifest),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
