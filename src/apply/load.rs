//! What a site command takes from a verified kit: its migration set and its seed objects, both
//! from the signed manifest — never from a listing of a folder — with every migration and rollback
//! read through the digest-checking reader against its signed digest
//! ([`VerifiedKit::take_sql`]); and where `apply` reads the seeds' bytes from: the kit itself,
//! through its signed frame index ([`KitSeeds`]). Used by `apply`, `status` and
//! `migrations … --kit`.

use std::io::Read;

use crate::kit::manifest::{MigrationEntry, SeedEntry};
use crate::kit::random::FrameFile;
use crate::migrate::source::SourceError;
use crate::migrate::{Migration, MigrationSet, Module, Rollback};
use crate::store::{SeedObject, SeedSource};
use crate::trust::content::ContentError;
use crate::trust::verify::VerifiedKit;

/// Why a verified kit's migrations cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file changed, was replaced or removed since verification (or was not retained).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The signed bytes break a migration rule the builder enforces (not UTF-8, a data migration
    /// that is not one batched statement, …).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The signed manifest says something else about a file than its signed bytes do.
    #[error("{path}: the signed manifest says {manifest}, its signed bytes say {bytes}")]
    Inconsistent {
        /// The file.
        path: String,
        /// What the manifest says.
        manifest: &'static str,
        /// What the file says.
        bytes: &'static str,
    },
}

impl crate::exit::ExitCoded for LoadError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            LoadError::Content(e) => content_exit(e),
            // Signed bytes that break a rule the builder enforces: not a kit offkit built.
            LoadError::Source(_) => crate::exit::Exit::Verification,
            LoadError::Inconsistent { .. } => crate::exit::Exit::Verification,
        }
    }
}

/// The exit code of a content refusal: tampering is a verification failure.
pub(crate) fn content_exit(e: &ContentError) -> crate::exit::Exit {
    match e {
        ContentError::Io { .. } => crate::exit::Exit::Io,
        ContentError::NotSql { .. } | ContentError::NotRetained { .. } => {
            crate::exit::Exit::Internal
        }
        _ => crate::exit::Exit::Verification,
    }
}

fn migration(kit: &mut VerifiedKit, entry: &MigrationEntry) -> Result<Migration, LoadError> {
    let path = entry.file.path.as_str();
    let mut m = Migration::from_bytes(entry.name.clone(), path, kit.take_sql(&entry.file.path)?)?;
    if m.tx != entry.tx {
        return Err(LoadError::Inconsistent {
            path: path.to_owned(),
            manifest: tx_text(entry.tx),
            bytes: tx_text(m.tx),
        });
    }
    m.declared = entry.destructive.as_ref().map(|d| d.reason.to_string());
    m.realigned_from = entry.realign.as_ref().map(|r| r.from.to_string());
    if let Some(r) = &entry.rollback {
        m.rollback = Some(Rollback::from_bytes(
            r.path.as_str(),
            kit.take_sql(&r.path)?,
        )?);
    }
    Ok(m)
}

fn tx_text(tx: crate::migrate::TxMode) -> &'static str {
    match tx {
        crate::migrate::TxMode::Transaction => "transactional",
        crate::migrate::TxMode::NoTransaction => "no-transaction",
    }
}

/// The kit's migrations, in the manifest's order, each read and checked against its signed
/// digest (and moved out of the kit when it was kept in memory: call this once). A file changed,
/// replaced or removed since verification stops the load with its name.
pub fn migration_set(kit: &mut VerifiedKit) -> Result<MigrationSet, LoadError> {
    let modules = kit.manifest().modules.clone();
    let modules = modules
        .iter()
        .map(|m| {
            Ok(Module {
                name: m.name.to_string(),
                schema: m.schema.to_string(),
                migrations: m
                    .migrations
                    .iter()
                    .map(|e| migration(kit, e))
                    .collect::<Result<_, LoadError>>()?,
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    Ok(MigrationSet::new(modules)?)
}

/// The kit's seed objects, from the signed manifest or the signed pages it lists
/// ([`VerifiedKit::seeds`]), all at once.
pub fn seed_objects(kit: &VerifiedKit) -> Result<Vec<SeedObject>, ContentError> {
    Ok(objects(kit.seeds()?))
}

/// Seed objects of the seeds a signed list names.
pub fn objects(seeds: Vec<SeedEntry>) -> Vec<SeedObject> {
    seeds
        .into_iter()
        .map(|s| SeedObject {
            key: s.key,
            sha256: s.file.sha256.into_string(),
            size: s.file.size,
            media_type: s.media_type,
        })
        .collect()
}

/// The seeds of a verified kit, read again from the kit file (or its parts) through the signed
/// frame index ([`FrameFile`]), a page of seeds at a time: each frame's compressed bytes are
/// checked against their signed SHA-256 before they are decompressed, and each seed against its
/// own as it streams. Nothing is copied to disk.
pub struct KitSeeds<'s> {
    frames: &'s FrameFile,
    /// The page's seeds, in the manifest's order.
    seeds: &'s [SeedObject],
    /// Where each seed's data starts in the uncompressed stream, by position in `seeds`
    /// (`u64::MAX`: not in the payload).
    at: &'s [u64],
}

impl<'s> KitSeeds<'s> {
    /// The page `seeds`, whose data starts at `at` (in the same order), in the kit `frames`
    /// reads ([`VerifiedKit::frames`]).
    pub fn new(frames: &'s FrameFile, seeds: &'s [SeedObject], at: &'s [u64]) -> KitSeeds<'s> {
        KitSeeds { frames, seeds, at }
    }

    /// Where `seed`'s data starts.
    fn offset(&self, seed: &SeedObject) -> Option<u64> {
        let i = position(self.seeds, seed)?;
        self.at.get(i).copied().filter(|at| *at != u64::MAX)
    }
}

/// The place of `seed` in `seeds`: found from its address when it is one of them (as seeding
/// passes them: no lookup, no map), else by its key.
fn position(seeds: &[SeedObject], seed: &SeedObject) -> Option<usize> {
    let size = std::mem::size_of::<SeedObject>();
    let from_start = (seed as *const SeedObject as usize).wrapping_sub(seeds.as_ptr() as usize);
    let i = from_start / size;
    if from_start.is_multiple_of(size) && seeds.get(i).is_some_and(|s| std::ptr::eq(s, seed)) {
        return Some(i);
    }
    seeds.iter().position(|s| s.key == seed.key)
}

impl SeedSource for KitSeeds<'_> {
    fn open(&self, seed: &SeedObject) -> std::io::Result<Box<dyn Read + Send + '_>> {
        let at = self.offset(seed).ok_or_else(|| {
            std::io::Error::other(format!("{} is not a seed of this kit", seed.key))
        })?;
        Ok(Box::new(self.frames.reader(at, seed.size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_is_found_by_its_place_or_else_by_its_key() {
        let seed = |k: &str| SeedObject {
            key: crate::kit::path::KitPath::new(k).unwrap(),
            sha256: "0".repeat(64),
            size: 1,
            media_type: "text/plain".into(),
        };
        let seeds: Vec<SeedObject> = ["a", "b", "c"].into_iter().map(seed).collect();
        for (i, s) in seeds.iter().enumerate() {
            assert_eq!(position(&seeds, s), Some(i));
        }
        // A copy is not one of them by address: found by its key.
        assert_eq!(position(&seeds, &seeds[2].clone()), Some(2));
        assert_eq!(position(&seeds[1..], &seeds[2]), Some(1));
        assert_eq!(position(&seeds[..2], &seeds[2]), None);
        assert_eq!(position(&seeds, &seed("d")), None);
    }
}
