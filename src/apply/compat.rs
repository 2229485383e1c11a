//! Does this kit fit this site? Target database kind, `requires`, and the channel's sequence
//! (anti-rollback in the spirit of TUF §5.4: a site that applied sequence N refuses N-1, and
//! refuses a different kit claiming an already applied sequence, unless the operator says
//! `--allow-downgrade`, which every report then shows).

use std::cmp::Ordering;

use crate::apply::ledger::{Outcome, Row};
use crate::kit::digest::Sha256Hex;
use crate::kit::manifest::{Manifest, Target};
use crate::kit::names::Version;
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
        "channel {channel} sequence {sequence} was already applied or accepted here from a different kit ({other_version}, manifest {other_manifest}); refusing a second kit with the same sequence (--allow-downgrade to force)"
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

impl crate::exit::ExitCoded for Incompatible {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Incompatible
    }
}

/// Checks a kit's target against the database kind.
pub fn check_target(target: Target, dialect: Dialect) -> Result<(), Incompatible> {
    let db = match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
    };
    match (target, dialect) {
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
    manifest_sha256: &Sha256Hex,
    ledger: &[Row],
    downgrade: DowngradePolicy,
) -> Result<(), Incompatible> {
    let succeeded: Vec<&Row> = ledger
        .iter()
        .filter(|r| r.outcome == Outcome::Succeeded)
        .collect();
    for req in &manifest.requires {
        // A ledger version that is not a valid version (written by hand) never satisfies.
        let applied: Vec<Version> = succeeded
            .iter()
            .filter(|r| r.kit_name == req.name.as_str())
            .filter_map(|r| Version::new(&r.kit_version).ok())
            .collect();
        if !applied
            .iter()
            .any(|v| v.compare(&req.min_version) != Ordering::Less)
        {
            return Err(Incompatible::Requires {
                name: req.name.to_string(),
                min_version: req.min_version.to_string(),
                found: applied
                    .iter()
                    .max_by(|a, b| a.compare(b))
                    .map(ToString::to_string),
            });
        }
    }
    if downgrade == DowngradePolicy::UnsafeAllow {
        return Ok(());
    }
    check_sequence(
        manifest,
        manifest_sha256,
        succeeded
            .iter()
            .filter(|r| r.channel == manifest.channel.as_str())
            .map(|r| Accepted {
                sequence: r.sequence,
                manifest_sha256: &r.manifest_sha256,
                kit_version: &r.kit_version,
            }),
    )
}

/// A kit a site accepted on a channel (applied, or verified and recorded).
#[derive(Debug, Clone, Copy)]
pub struct Accepted<'a> {
    /// Its sequence.
    pub sequence: i64,
    /// Its manifest's SHA-256.
    pub manifest_sha256: &'a str,
    /// Its version.
    pub kit_version: &'a str,
}

/// Anti-rollback on one channel: refuses a kit whose sequence is lower than the highest
/// `accepted` one, or equal to an accepted one of another kit. The one rule behind `apply`'s
/// ledger and the verify-only record.
pub fn check_sequence<'a>(
    manifest: &Manifest,
    manifest_sha256: &Sha256Hex,
    accepted: impl Iterator<Item = Accepted<'a>> + Clone,
) -> Result<(), Incompatible> {
    let kit_sequence = i64::try_from(manifest.sequence).unwrap_or(i64::MAX);
    if let Some(top) = accepted.clone().map(|a| a.sequence).max()
        && top > kit_sequence
    {
        return Err(Incompatible::Downgrade {
            channel: manifest.channel.to_string(),
            applied: top,
            kit: manifest.sequence,
        });
    }
    if let Some(other) = accepted
        .filter(|a| a.sequence == kit_sequence)
        .find(|a| manifest_sha256.as_str() != a.manifest_sha256)
    {
        return Err(Incompatible::SequenceReused {
            channel: manifest.channel.to_string(),
            sequence: manifest.sequence,
            other_version: other.kit_version.to_owned(),
            other_manifest: other.manifest_sha256.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::ledger::Override;

    fn manifest() -> Manifest {
        crate::kit::manifest::tests::sample()
    }

    fn row(id: i64, name: &str, version: &str, seq: i64, outcome: Outcome, sha: &str) -> Row {
        Row {
            id,
            kit_name: name.into(),
            kit_version: version.into(),
            channel: name.into(),
            sequence: seq,
            manifest_sha256: sha.into(),
            kit_sha256: "k".into(),
            signer_keyids: vec![],
            applied_by: "t@h".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            outcome,
            store: "file://x".into(),
            overrides: vec![Override::AllowDowngrade],
            report_sha256: None,
            error: None,
        }
    }

    fn sha(c: char) -> Sha256Hex {
        Sha256Hex::new(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn target_must_fit_the_database() {
        let mut m = manifest();
        for (t, d, ok) in [
            (Target::Any, Dialect::Sqlite, true),
            (Target::Any, Dialect::Postgres, true),
            (Target::Postgres, Dialect::Postgres, true),
            (Target::Postgres, Dialect::Sqlite, false),
            (Target::Sqlite, Dialect::Postgres, false),
        ] {
            m.target.database = t;
            assert_eq!(
                check_target(m.target.database, d).is_ok(),
                ok,
                "{t:?} on {d:?}"
            );
        }
    }

    #[test]
    fn requires_needs_a_succeeded_application_at_or_above_the_version() {
        let mut m = manifest();
        m.requires = vec![crate::kit::manifest::RequirementEntry {
            name: crate::kit::names::KitName::new("base").unwrap(),
            min_version: Version::new("2.1").unwrap(),
        }];
        let refuse = DowngradePolicy::Refuse;
        let a = sha('a').to_string();
        assert!(matches!(
            check_history(&m, &sha('b'), &[], refuse),
            Err(Incompatible::Requires { found: None, .. })
        ));
        let low = [row(1, "base", "2.0.9", 1, Outcome::Succeeded, &a)];
        assert!(matches!(
            check_history(&m, &sha('b'), &low, refuse),
            Err(Incompatible::Requires { found: Some(v), .. }) if v == "2.0.9"
        ));
        let failed = [row(1, "base", "3.0", 1, Outcome::Failed, &a)];
        assert!(check_history(&m, &sha('b'), &failed, refuse).is_err());
        let ok = [row(1, "base", "2.1.0", 1, Outcome::Succeeded, &a)];
        assert!(check_history(&m, &sha('b'), &ok, refuse).is_ok());
        // --allow-downgrade does not waive requires.
        assert!(check_history(&m, &sha('b'), &low, DowngradePolicy::UnsafeAllow).is_err());
    }

    #[test]
    fn the_channel_sequence_only_moves_forward() {
        let m = manifest(); // channel demo, sequence 1
        let mine = sha('d');
        let refuse = DowngradePolicy::Refuse;
        let higher = [row(1, "demo", "2.0", 2, Outcome::Succeeded, "x")];
        assert!(matches!(
            check_history(&m, &mine, &higher, refuse),
            Err(Incompatible::Downgrade {
                applied: 2,
                kit: 1,
                ..
            })
        ));
        assert!(check_history(&m, &mine, &higher, DowngradePolicy::UnsafeAllow).is_ok());
        // A failed or interrupted higher attempt does not count.
        let failed = [row(1, "demo", "2.0", 2, Outcome::Interrupted, "x")];
        assert!(check_history(&m, &mine, &failed, refuse).is_ok());
        // The same sequence from another kit is refused; from this kit it is a re-apply.
        let other = [row(
            1,
            "demo",
            "1.0",
            1,
            Outcome::Succeeded,
            sha('e').as_str(),
        )];
        assert!(matches!(
            check_history(&m, &mine, &other, refuse),
            Err(Incompatible::SequenceReused { .. })
        ));
        let same = [row(1, "demo", "1.0", 1, Outcome::Succeeded, mine.as_str())];
        assert!(check_history(&m, &mine, &same, refuse).is_ok());
    }
}
