//! Seeding: putting a kit's seed objects into a store idempotently, once, confirmed.
//!
//! Planning compares each seed with the store — absent, present with the same bytes, or present
//! with different bytes — by reading present objects back and hashing them. [`seed`] then puts the
//! absent ones (create-only: an object that appeared meanwhile is never overwritten), in parallel,
//! streaming each from its [`SeedSource`] through a [`crate::kit::digest::DigestReader`], and
//! confirms every put by reading the object back and comparing its SHA-256. A source whose bytes
//! are not the promised ones (changed or removed since they were hashed or verified) stops the
//! seeding: no put starts after it is found ([`SeedError::SourceChanged`]). A different object at a seed's key is
//! a conflict: seeding stops before any put and names the keys, unless
//! [`ConflictPolicy::Replace`] (`--replace-conflicting`) says to replace it. A dry run plans and
//! stops there. The outcome of every object, with bytes and durations, is a [`SeedReport`].
//!
//! Failpoints (see [`crate::failpoint`]), with `KEY` the object key:
//! `seed-put:KEY` before a put starts, `seed-put-streaming:KEY` once half of the object was handed
//! to the driver (a crash there interrupts the put itself), `seed-committed:KEY` after the put was
//! confirmed (by read-back, or by the store's own checksum where it offers one).

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;

use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::{DigestReader, Sha256Bytes};
use crate::kit::path::KitPath;
use crate::report::progress::ProgressMode;

use super::{Store, StoreError};

mod plan;
mod report;
mod run;

pub use plan::{Comparison, LookedUp, PlanEntry, PlanTotals, SeedPlan, SeedState, look_up};
pub use report::{Action, ObjectReport, ObjectsListed, Outcome, SeedMode, SeedReport, SeedTotals};
pub use run::{ATTENTION_LISTED, Seeding};

/// One object to seed: its key and what it must contain. Its bytes come from a [`SeedSource`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedObject {
    /// The object's key in the store.
    pub key: KitPath,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type (e.g. `application/json`).
    pub media_type: String,
}

/// Where seeding reads each seed's bytes. Seeding checks what it reads against the seed's size
/// and SHA-256, so a source need not.
pub trait SeedSource: Sync {
    /// Opens the bytes of `seed`.
    fn open(&self, seed: &SeedObject) -> io::Result<Box<dyn Read + Send + '_>>;

    /// The MD5 of `seed`'s bytes, when the source computed it in the same read as the seed's
    /// SHA-256 (so it is the MD5 of exactly the seed's bytes): lets a store that vouches for MD5s
    /// judge an object without the source being read again. `None` by default.
    fn md5(&self, _seed: &SeedObject) -> Option<[u8; 16]> {
        None
    }
}

/// Seeds stored as files of a folder: the seed with key `K` is the file `root/K`, or, with a
/// `prefix`, the seed `prefix/K` is `root/K` (`offkit store put-dir --prefix`).
#[derive(Debug, Clone)]
pub struct FolderSource {
    root: PathBuf,
    prefix: Option<KitPath>,
    md5s: HashMap<KitPath, [u8; 16]>,
}

impl FolderSource {
    /// Seeds at their keys under `root`.
    pub fn new(root: PathBuf) -> FolderSource {
        FolderSource::with_prefix(root, None)
    }

    /// Seeds whose keys are `prefix/` and their path under `root`.
    pub fn with_prefix(root: PathBuf, prefix: Option<KitPath>) -> FolderSource {
        FolderSource {
            root,
            prefix,
            md5s: HashMap::new(),
        }
    }

    /// The same source, knowing the MD5s of its seeds, each computed in the same read as the
    /// seed's SHA-256 ([`crate::store::dir::hash_files`]); see [`SeedSource::md5`].
    pub fn with_md5s(self, md5s: HashMap<KitPath, [u8; 16]>) -> FolderSource {
        FolderSource { md5s, ..self }
    }

    fn file(&self, key: &KitPath) -> io::Result<PathBuf> {
        let rel = match &self.prefix {
            None => key.clone(),
            Some(p) => key
                .as_str()
                .strip_prefix(p.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .and_then(|r| KitPath::new(r).ok())
                .ok_or_else(|| io::Error::other(format!("key {key} is not under {p}")))?,
        };
        Ok(rel.under(&self.root))
    }
}

impl SeedSource for FolderSource {
    fn open(&self, seed: &SeedObject) -> io::Result<Box<dyn Read + Send + '_>> {
        // A regular file only: a seed replaced by a link, a FIFO or a device is not the seed
        // (and opening a FIFO must not hang the seeding).
        let file = crate::util::open_regular(&self.file(&seed.key)?)?;
        let buffer = usize::try_from(seed.size.saturating_add(1))
            .unwrap_or(usize::MAX)
            .clamp(512, 256 * 1024);
        Ok(Box::new(io::BufReader::with_capacity(buffer, file)))
    }

    fn md5(&self, seed: &SeedObject) -> Option<[u8; 16]> {
        self.md5s.get(&seed.key).copied()
    }
}

/// What to do when a different object already sits at a seed's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConflictPolicy {
    /// Stop before any put and report the conflicting keys (the default; nothing is overwritten).
    #[default]
    Stop,
    /// Replace the conflicting objects (`--replace-conflicting`); shown in the report.
    Replace,
}

/// How to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedOptions {
    /// Apply, or only plan (`--dry-run`).
    pub mode: SeedMode,
    /// What a conflict does.
    pub conflicts: ConflictPolicy,
    /// Objects handled at once; `None` uses the store's default.
    pub parallelism: Option<usize>,
    /// How progress is shown.
    pub progress: ProgressMode,
}

impl SeedOptions {
    fn threads(&self, store: &dyn Store) -> usize {
        self.parallelism
            .unwrap_or_else(|| store.default_parallelism())
            .clamp(1, 256)
    }
}

/// Why seeding did not complete. Every variant that ran carries the report of what was done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// A seed is malformed (bad digest text, duplicate key).
    #[error("seed {key:?}: {reason}")]
    InvalidSeed {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Seeding was asked to put objects without a source for their bytes (a caller's bug).
    #[error("seeding needs the seeds' bytes; only a dry run can do without")]
    NoSource,
    /// The store could not be read while planning.
    #[error("planning the seeding: {0}")]
    Store(StoreError),
    /// The puts could not be made durable (`Store::sync`).
    #[error("making the seeded objects durable: {0}")]
    Sync(StoreError),
    /// Objects at seed keys differ from the seeds; nothing was overwritten.
    #[error(
        "{count} seed object(s) conflict with {store}: {first} holds different bytes (sha256 {existing}; the seed has {expected}); nothing was overwritten. Check the store, or re-run with --replace-conflicting to replace them"
    )]
    Conflicts {
        /// How many keys conflict.
        count: usize,
        /// The store, redacted.
        store: String,
        /// The first conflicting key.
        first: String,
        /// What the store holds there.
        existing: String,
        /// What the seed holds.
        expected: String,
        /// What was done (and what not).
        report: Box<SeedReport>,
    },
    /// A seed's bytes were not the promised ones, or could not be read: its source changed since
    /// it was hashed or verified. No put started after this was found; puts already under way
    /// finished and were confirmed.
    #[error("seeding stopped: {error}. The seed source changed; nothing was stored for {key}")]
    SourceChanged {
        /// The seed.
        key: String,
        /// What was found.
        error: Box<StoreError>,
        /// What was done.
        report: Box<SeedReport>,
    },
    /// Some puts failed; the others were done and confirmed.
    #[error(
        "{count} seed object(s) failed in {store}; first: {first}: {error}. The other objects were put and confirmed; fix the cause and re-run (done objects are skipped)"
    )]
    Failed {
        /// How many objects failed.
        count: usize,
        /// The store, redacted.
        store: String,
        /// The first failed key.
        first: String,
        /// Its error.
        error: String,
        /// What was done.
        report: Box<SeedReport>,
    },
}

impl From<StoreError> for SeedError {
    fn from(e: StoreError) -> Self {
        SeedError::Store(e)
    }
}

impl SeedError {
    /// The report of what was done, when seeding got that far.
    pub fn report(&self) -> Option<&SeedReport> {
        match self {
            SeedError::Conflicts { report, .. }
            | SeedError::Failed { report, .. }
            | SeedError::SourceChanged { report, .. } => Some(report),
            _ => None,
        }
    }
}

impl ExitCoded for SeedError {
    fn exit(&self) -> Exit {
        match self {
            SeedError::InvalidSeed { .. } => Exit::Usage,
            SeedError::NoSource => Exit::Internal,
            SeedError::Store(e) | SeedError::Sync(e) => e.exit(),
            SeedError::SourceChanged { .. } => Exit::Io,
            _ => Exit::Store,
        }
    }
}

/// Seeds `seeds` into `store` (or only plans, for [`SeedMode::DryRun`]); see the module docs.
///
/// `Ok` means every seed is now in the store with its exact bytes (or, for a dry run, that a real
/// run would not stop on a conflict).
///
/// `source` may be `None` only for a dry run (which plans without reading any seed).
pub fn seed(
    store: &dyn Store,
    seeds: &[SeedObject],
    source: Option<&dyn SeedSource>,
    opts: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    seed_looked_up(store, seeds, source, opts, None)
}

/// [`seed`] with what the store held at the seeds' keys looked up ahead ([`look_up`], made
/// while the seeds were being prepared); a lookup made for other keys is ignored.
pub fn seed_looked_up(
    store: &dyn Store,
    seeds: &[SeedObject],
    source: Option<&dyn SeedSource>,
    opts: &SeedOptions,
    ahead: Option<LookedUp>,
) -> Result<SeedReport, SeedError> {
    run::run(store, seeds, source, opts, ahead)
}

/// The seed's bytes from `source`, through the digest-checking reader (its final read fails
/// unless they are exactly the seed's size and SHA-256).
pub(crate) fn open_checked<'a>(
    source: &'a dyn SeedSource,
    s: &SeedObject,
) -> Result<DigestReader<Box<dyn Read + Send + 'a>>, StoreError> {
    let raw = source
        .open(s)
        .map_err(|cause| StoreError::SourceUnavailable {
            key: s.key.to_string(),
            cause,
        })?;
    Ok(DigestReader::new(raw, s.key.as_str(), s.size, &s.sha256))
}

/// Whether the store's own checksum confirms that the object at `s.key` holds the seed's bytes:
/// the MD5 the source computed with the seed's SHA-256, or, when that cannot settle it, the bytes
/// read from `source` through a digest-checking reader (so a checksum is only ever compared
/// with the promised bytes). `Ok(false)` when the store cannot tell or no source is at hand.
pub(crate) fn confirmed_by_checksum(
    store: &dyn Store,
    s: &SeedObject,
    source: Option<&dyn SeedSource>,
    listed: Option<&super::ObjectInfo>,
) -> Result<bool, StoreError> {
    let Some(source) = source.filter(|_| store.confirms_by_checksum()) else {
        return Ok(false);
    };
    let md5 = source.md5(s).map(hex::encode);
    let mut body = LazyBody {
        source,
        seed: s,
        body: None,
        open_error: None,
    };
    let local = super::LocalBytes {
        size: s.size,
        md5: md5.as_deref(),
        bytes: &mut body,
    };
    let result = store.checksum_confirms(&s.key, local, listed);
    if let Some(e) = body.open_error {
        return Err(e);
    }
    match body.body.as_ref().and_then(|b| b.mismatch()) {
        Some(m) => Err(StoreError::source_mismatch(s.key.as_str(), m)),
        None => result,
    }
}

/// A seed's bytes through the digest-checking reader, opened on the first read (a known MD5
/// often spares opening the source at all).
struct LazyBody<'a> {
    source: &'a dyn SeedSource,
    seed: &'a SeedObject,
    body: Option<DigestReader<Box<dyn Read + Send + 'a>>>,
    open_error: Option<StoreError>,
}

impl Read for LazyBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let body = match &mut self.body {
            Some(b) => b,
            None => match open_checked(self.source, self.seed) {
                Ok(b) => self.body.insert(b),
                Err(e) => {
                    let shown = io::Error::other(e.to_string());
                    self.open_error = Some(e);
                    return Err(shown);
                }
            },
        };
        body.read(buf)
    }
}

/// A seed's digest: its text must be 64 hex digits (either case).
pub(crate) fn check_sha(s: &SeedObject) -> Result<Sha256Bytes, SeedError> {
    Sha256Bytes::from_hex(&s.sha256).ok_or_else(|| SeedError::InvalidSeed {
        key: s.key.to_string(),
        reason: format!("sha256 {:?} is not 64 hex digits", s.sha256),
    })
}
