//! Arguments and formatting shared by several commands.

use std::path::PathBuf;

use crate::exit::Exit;
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::{ExpiryPolicy, VerifyOptions};

use super::CliError;

/// `--trust`, `--threshold`, `--allow-expired`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// A trusted public key (`.pub`, SPKI PEM) or a trust policy (TOML). Repeatable.
    #[arg(long = "trust", value_name = "PUB|POLICY", required = true)]
    pub trust: Vec<PathBuf>,
    /// Distinct trusted keys that must have signed (may only raise the policy's threshold).
    #[arg(long, value_name = "K")]
    pub threshold: Option<usize>,
    /// UNSAFE: accept a kit whose `expires` time has passed (shown in every report).
    #[arg(long)]
    pub allow_expired: bool,
}

impl TrustArgs {
    /// Loads the trust policy.
    pub fn policy(&self) -> Result<TrustPolicy, CliError> {
        Ok(TrustPolicy::load(&self.trust, self.threshold)?)
    }

    /// Verification options for now.
    pub fn options(&self) -> VerifyOptions {
        VerifyOptions {
            expiry: if self.allow_expired {
                ExpiryPolicy::UnsafeAllowExpired
            } else {
                ExpiryPolicy::Enforce
            },
            ..VerifyOptions::default()
        }
    }
}

/// Reads `SOURCE_DATE_EPOCH` (reproducible-builds.org): seconds since 1970, UTC.
pub fn source_date_epoch() -> Result<Option<i64>, CliError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            CliError::msg(
                Exit::Usage,
                format!("SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"),
            )
        }),
        Err(_) => Ok(None),
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
