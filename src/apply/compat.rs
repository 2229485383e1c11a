//! Does this kit fit this site? Target database kind, `requires`, and the channel's sequence
//! (anti-rollback in the spirit of TUF §5.4: a site that applied sequence N refuses N-1, and
//! refuses a different kit claiming an already applied sequence, unless the operator says
//! `--allow-downgrade`, which every report then shows).

use crate::apply::ledger::{Outcome, Row};
use crate::kit::config::{Target, compare_versions};
use crate::kit::manifest::Manifest;
use crate::migrate::Dialect;

/// Whether an older (or conflicting) sequence may be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DowngradePolicy {
    /// Refuse (the default).
    #[default]
    Refuse,
    /// Apply anyway (`--allow-downgrade`); recorded in the ledger and the report.
    UnsafeAllow,
}

/// Why a kit does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Incompatible {
    /// The kit's migrations are for another database kind.
    #[error("the kit targets {kit}, but --db is {db}")]
    Target {
        /// The kit's target.
        kit: &'static str,
        /// The database kind.
        db: &'static str,
    },
    /// A required kit has not been applied.
    #[error("the kit requires {name} >= {min_version}, which has not been applied here{}", found.as_ref().map(|v| format!(" (latest applied: {v})")).unwrap_or_default())]
    Requires {
        /// Required kit.
        name: String,
        /// Lowest version.
        min_version: String,
        /// The highest applied version, if any.
        found: Option<String>,
    },
    /// An older sequence than the last one applied on the channel.
    #[error(
        "downgrade refused: channel {channel} is at sequence {applied} here, the kit is sequence {kit} (--allow-downgrade to force)"
    )]
    Downgrade {
        /// Channel.
        channel: String,
        /// Applied sequence.
        applied: i64,
        /// The kit's.
        kit: u64,
    },
    /// Another kit already claimed this sequence.
    #[error(
        "channel {channel} sequence {sequence} was already applied from a different kit ({other_version}, manifest {other_manifest}); refusing a second kit with the same sequence (--allow-downgrade to force)"
    )]
    SequenceReused {
        /// Channel.
        channel: String,
        /// Sequence.
        sequence: u64,
        /// The other kit's version.
        other_version: String,
        /// The other kit's manifest digest.
        other_manifest: String,
    },
}

/// Checks the kit's target against the database kind (before connecting is fine).
pub fn check_target(manifest: &Manifest, dialect: Dialect) -> Result<(), Incompatible> {
    let db = match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
    };
    match (manifest.target.database, dialect) {
        (Target::Any, _)
        | (Target::Postgres, Dialect::Postgres)
        | (Target::Sqlite, Dialect::Sqlite) => Ok(()),
        (t, _) => Err(Incompatible::Target {
            kit: t.as_str(),
            db,
        }),
    }
}

/// Checks `requires` and the channel sequence against the ledger's succeeded rows.
pub fn check_history(
    manifest: &Manifest,
    manifest_sha256: &str,
    ledger: &[Row],
    downgrade: DowngradePolicy,
) -> Result<(), Incompatible> {
    let succeeded: Vec<&Row> = ledger
        .iter()
        .filter(|r| r.outcome == Outcome::Succeeded.as_str())
        .collect();
    for req in &manifest.requires {
        let applied: Vec<&str> = succeeded
            .iter()
            .filter(|r| r.kit_name == req.name)
            .map(|r| r.kit_version.as_str())
            .collect();
        let ok = applied.iter().any(|v| {
            compare_versions(v, &req.min_version).is_some_and(|o| o != std::cmp::Ordering::Less)
        });
        if !ok {
            let found = applied
                .iter()
                .copied()
                .max_by(|a, b| compare_versions(a, b).unwrap_or(std::cmp::Ordering::Equal))
                .map(str::to_owned);
            return Err(Incompatible::Requires {
                name: req.name.clone(),
                min_version: req.min_version.clone(),
                found,
            });
        }
    }
    if downgrade == DowngradePolicy::UnsafeAllow {
        return Ok(());
    }
    let on_channel = succeeded.iter().filter(|r| r.channel == manifest.channel);
    let kit_sequence = i64::try_from(manifest.sequence).unwrap_or(i64::MAX);
    if let Some(top) = on_channel.clone().map(|r| r.sequence).max()
        && top > kit_sequence
    {
        return Err(Incompatible::Downgrade {
            channel: manifest.channel.clone(),
            applied: top,
            kit: manifest.sequence,
        });
    }
    if let Some(other) = on_channel
        .filter(|r| r.sequence == kit_sequence)
        .find(|r| r.manifest_sha256 != manifest_sha256)
    {
        return Err(Incompatible::SequenceReused {
            channel: manifest.channel.clone(),
            sequence: manifest.sequence,
            other_version: other.kit_version.clone(),
            other_manifest: other.manifest_sha256.clone(),
        });
    }
    Ok(())
}
