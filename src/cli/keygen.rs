//! `offkit keygen`: a new Ed25519 signing key pair.

use std::path::PathBuf;

use serde::Serialize;

use super::{CliResult, Global, io_error, print_json};
use crate::trust::keys::SecretKey;

/// Arguments of `offkit keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Writes OUT.key (PKCS#8 PEM, mode 0600) and OUT.pub (SPKI PEM); refuses to overwrite.
    #[arg(long, value_name = "DIR/NAME")]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Report {
    keyid: String,
    private_key: String,
    public_key: String,
}

/// Runs `offkit keygen`.
pub fn run(args: Args, global: &Global) -> CliResult {
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
    }
    let key = SecretKey::generate()?;
    let (private_key, public_key) = key.write_pair(&args.out)?;
    let report = Report {
        keyid: key.keyid().to_string(),
        private_key: private_key.display().to_string(),
        public_key: public_key.display().to_string(),
    };
    if global.json {
        return print_json(&report);
    }
    println!("keyid {}", report.keyid);
    println!(
        "private key {} (keep it secret; mode 0600)",
        report.private_key
    );
    println!(
        "public key  {} (give it to sites as --trust)",
        report.public_key
    );
    Ok(())
}
