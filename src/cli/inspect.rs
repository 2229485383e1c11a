//! `offkit inspect`: what a kit contains and who signed it. Without `--trust` only the header is
//! read and everything shown is labelled NOT VERIFIED.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::common::OptionalTrustArgs;
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
    #[command(flatten)]
    pub trust: OptionalTrustArgs,
}

/// Runs `offkit inspect`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let started = Instant::now();
    let shown = args.kit.display().to_string();
    let report = if let Some(trust) = args.trust.given() {
        let policy = trust.policy()?;
        let v = verify_kit(&args.kit, &policy, &trust.options())?;
        KitReport::verified(&shown, &v, crate::util::millis(started.elapsed()))
    } else {
        unverified(&args, &shown, started)?
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
    let header = read_unverified(&args.kit)?;
    Ok(KitReport {
        kit: shown.to_owned(),
        status: "NOT VERIFIED",
        verified: false,
        kit_sha256: None,
        manifest_sha256: Some(header.manifest_sha256),
        signers: header
            .keyids
            .into_iter()
            .map(|keyid| SignerView {
                keyid,
                name: String::new(),
            })
            .collect(),
        failures: Vec::new(),
        warnings: Vec::new(),
        key_validity: None,
        provenance: None,
        attestations: Vec::new(),
        manifest: Some(header.manifest),
        duration_ms: crate::util::millis(started.elapsed()),
    })
}

/// What a kit's header says, read without authenticating it (`inspect` and `diff` without
/// `--trust`): to be shown as NOT VERIFIED.
pub struct UnverifiedHeader {
    /// The manifest as written.
    pub manifest: Manifest,
    /// Its SHA-256.
    pub manifest_sha256: String,
    /// The envelope's keyids, shown only when well formed.
    pub keyids: Vec<String>,
}

/// Reads a kit's header without authenticating it.
pub fn read_unverified(kit: &Path) -> Result<UnverifiedHeader, CliError> {
    let mut reader = KitReader::open(kit, Limits::default()).map_err(|e| {
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
    let keyids = serde_json::from_slice::<Envelope>(&header.dsse.bytes)
        .map(|env| {
            env.signatures
                .into_iter()
                .map(|s| match crate::trust::KeyId::exact(&s.keyid) {
                    Some(k) => k.to_string(),
                    None => "(malformed keyid)".to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(UnverifiedHeader {
        manifest,
        manifest_sha256: header.manifest.sha256.to_string(),
        keyids,
    })
}
