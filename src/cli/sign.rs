//! `offkit sign`: add a co-signer's signature to a built kit (rewrites only the header frame).

use std::path::PathBuf;

use super::common::TrustArgs;
use super::{CliResult, Global, print_json};
use crate::build::cosign::add_signature;
use crate::trust::keys::SecretKey;

/// Arguments of `offkit sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit file.
    pub kit: PathBuf,
    /// The co-signer's private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Write the signed kit here instead of replacing KIT (atomically) in place.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs `offkit sign`.
pub fn run(args: Args, global: &Global) -> CliResult {
    let key = SecretKey::load(&args.key)?;
    let policy = args.trust.policy()?;
    let out = args.out.clone().unwrap_or_else(|| args.kit.clone());
    let signed = add_signature(&args.kit, &key, &policy, &args.trust.options(), &out)?;
    if global.json {
        return print_json(&signed);
    }
    println!("{}", signed.path.display());
    println!("sha256 {}", signed.sha256);
    println!(
        "signed by {} (added {})",
        signed.signatures.join(", "),
        signed.added
    );
    Ok(())
}
