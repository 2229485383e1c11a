//! Seeding: putting a kit's seed objects into a store idempotently, once, confirmed.
//!
//! [`plan`] compares each seed with the store — absent, present with the same bytes, or present
//! with different bytes — by reading present objects back and hashing them. [`seed`] then puts the
//! absent ones (create-only: an object that appeared meanwhile is never overwritten), in parallel,
//! streaming each from its file through a [`super::stream::VerifyingReader`], and confirms every
//! put by reading the object back and comparing its SHA-256. A different object at a seed's key is
//! a conflict: seeding stops before any put and names the keys, unless
//! [`ConflictPolicy::Replace`] (`--replace-conflicting`) says to replace it. A dry run plans and
//! stops there. The outcome of every object, with bytes and durations, is a [`SeedReport`].
//!
//! Failpoints (see [`crate::failpoint`]), with `KEY` the object key:
//! `seed-put:KEY` before a put starts, `seed-put-streaming:KEY` once half of the object was handed
//! to the driver (a crash there interrupts the put itself), `seed-committed:KEY` after the put was
//! confirmed by read-back.

use std::path::PathBuf;

use crate::exit::{Exit, ExitCoded};
use crate::kit::path::KitPath;
use crate::report::progress::{Progress, ProgressMode};

use super::{Store, StoreError};

mod plan;
mod report;
mod run;

pub use plan::{PlanEntry, SeedPlan, SeedState, plan};
pub use report::{Action, ObjectReport, Outcome, SeedMode, SeedReport, SeedTotals};

/// One object to seed: a file on local disk (e.g. inside an extracted, verified kit) and what it
/// must contain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedObject {
    /// The object's key in the store.
    pub key: KitPath,
    /// The local file holding its bytes.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type (e.g. `application/json`).
    pub media_type: String,
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
            SeedError::Conflicts { report, .. } | SeedError::Failed { report, .. } => Some(report),
            _ => None,
        }
    }
}

impl ExitCoded for SeedError {
    fn exit(&self) -> Exit {
        match self {
            SeedError::InvalidSeed { .. } => Exit::Usage,
            SeedError::Store(e) | SeedError::Sync(e) => e.exit(),
            _ => Exit::Store,
        }
    }
}

/// Seeds `seeds` into `store` (or only plans, for [`SeedMode::DryRun`]); see the module docs.
///
/// `Ok` means every seed is now in the store with its exact bytes (or, for a dry run, that a real
/// run would not stop on a conflict).
pub fn seed(
    store: &dyn Store,
    seeds: &[SeedObject],
    opts: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    let progress = Progress::new("Seeding", seeds.len() as u64, opts.progress);
    let result = seed_with(store, seeds, opts, &progress);
    progress.finish();
    result
}

/// [`seed`] reporting to a caller's [`Progress`] (e.g. one that `offkit apply` shows for a whole
/// kit; `opts.progress` is then ignored). Counts one item per seed; does not finish it.
pub fn seed_with(
    store: &dyn Store,
    seeds: &[SeedObject],
    opts: &SeedOptions,
    progress: &Progress,
) -> Result<SeedReport, SeedError> {
    run::run(store, seeds, opts, progress)
}

/// Checks a seed's digest text and returns it lowercased.
pub(crate) fn normalized_sha(s: &SeedObject) -> Result<String, SeedError> {
    let sha = s.sha256.to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SeedError::InvalidSeed {
            key: s.key.to_string(),
            reason: format!("sha256 {:?} is not 64 hex digits", s.sha256),
        });
    }
    Ok(sha)
}
