//! Object stores: one small synchronous trait, [`Store`], and three drivers — a local folder
//! ([`file`](mod@file), the embedded default), any S3-compatible bucket ([`s3`]) and a PostgreSQL table
//! ([`postgres`]) — opened from a [`StoreUrl`] by [`open`].
//!
//! Drivers only move bytes: stat, get into a sink, put from a reader (atomically: an interrupted
//! put leaves no object), delete, list. Everything that must behave the same on every driver lives
//! once above them: the verifying put body ([`stream`]), idempotent seeding with conflict detection
//! and read-back confirmation ([`seed`](mod@seed)), seeding a folder ([`dir`]) and the probe of
//! `offkit store check` ([`check`]). The apply pipeline and its ledger are not here.

use std::io::{Read, Write};
use std::ops::ControlFlow;

use crate::kit::path::KitPath;

pub mod check;
pub mod dir;
pub mod error;
pub mod file;
pub mod postgres;
pub mod s3;
pub mod seed;
pub mod stream;
pub mod url;

pub use error::StoreError;
pub use seed::{
    Comparison, ConflictPolicy, FolderSource, SeedError, SeedObject, SeedOptions, SeedPlan,
    SeedReport, SeedSource, SeedState, look_up, seed, seed_looked_up,
};
pub use stream::ObjectDigest;
pub use url::{Secret, StoreUrl, UrlError};

/// What a put does when an object already exists at the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteMode {
    /// Fail with [`StoreError::AlreadyExists`] and leave the existing object untouched.
    CreateNew,
    /// Replace the existing object atomically (readers see the old or the new one).
    Replace,
}

/// How the seeding planner best learns which keys already exist in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// Ask about each key (cheap local calls).
    PerKey,
    /// List the keys' common folder first (one request per page instead of one per key).
    Listing,
}

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectInfo {
    /// The key, relative to the store's root or prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The store's own checksum tag, where it has one (the S3 `ETag`, unquoted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// What a put stores: where, how big, what type, and whether it may replace.
#[derive(Debug, Clone, Copy)]
pub struct PutRequest<'a> {
    /// The key.
    pub key: &'a KitPath,
    /// The exact number of bytes the body delivers.
    pub size: u64,
    /// The media type (`Content-Type` on S3, a column in PostgreSQL; not kept by the file store).
    pub media_type: &'a str,
    /// Whether an existing object may be replaced.
    pub mode: WriteMode,
}

/// The local side of [`Store::checksum_confirms`]: the bytes an object should hold.
pub struct LocalBytes<'a> {
    /// Their size.
    pub size: u64,
    /// Their lowercase hex MD5, when known in advance — computed in the same read as the SHA-256
    /// `bytes` is checked against, so it is the MD5 of exactly those bytes.
    pub md5: Option<&'a str>,
    /// The bytes, through a digest-checking reader: read only when the known MD5 cannot settle
    /// the question (for instance a multipart ETag).
    pub bytes: &'a mut dyn Read,
}

/// An object store driver. Implementations are shared between worker threads.
///
/// Contract for [`Store::put`]: read `body` to its end (a read that returns 0) *before* the object
/// becomes visible, and make it visible atomically — an error or a crash at any point leaves either
/// no object (or the previous one, for [`WriteMode::Replace`]) or the complete new one; durable
/// at the latest after [`Store::sync`]. The body
/// is a [`stream::DigestReader`] whose final read fails if the bytes were not the promised
/// ones, so honouring the contract means a mismatching source is never stored.
pub trait Store: Send + Sync {
    /// The URL this store was opened from (display it with [`StoreUrl::redacted`]).
    fn url(&self) -> &StoreUrl;

    /// The size of the object at `key`, or `None` if there is none.
    fn stat(&self, key: &KitPath) -> Result<Option<u64>, StoreError>;

    /// Streams the object at `key` into `sink`; returns its size, or `None` if there is none.
    fn get(&self, key: &KitPath, sink: &mut dyn Write) -> Result<Option<u64>, StoreError>;

    /// Stores `req.size` bytes read from `body` at `req.key` (see the trait's contract).
    fn put(&self, req: &PutRequest<'_>, body: &mut dyn Read) -> Result<(), StoreError>;

    /// Deletes the object at `key`; returns whether there was one.
    fn delete(&self, key: &KitPath) -> Result<bool, StoreError>;

    /// Calls `visit` for every object under the folder `under` (all objects when `None`), in no
    /// particular order, until it returns `Break`.
    fn list(
        &self,
        under: Option<&KitPath>,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// [`Store::list`] restricted to the keys that sort after `after` (byte order): a store
    /// that [lists in order](Store::lists_in_order) starts its listing there (S3's
    /// `start-after`), so a run of keys can be listed without listing the ones before it. The
    /// default lists everything and leaves the earlier keys out.
    fn list_after(
        &self,
        under: Option<&KitPath>,
        after: Option<&KitPath>,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let Some(after) = after else {
            return self.list(under, visit);
        };
        self.list(under, &mut |info| {
            if info.key.as_bytes() <= after.as_str().as_bytes() {
                return ControlFlow::Continue(());
            }
            visit(info)
        })
    }

    /// Makes every put this handle has done durable (for the file store: fsyncs the folders that
    /// received new entries, which puts defer so that thousands of puts into one folder share one
    /// folder fsync). A crash before `sync` may lose puts, never leave a partial object. Seeding
    /// calls it before reporting success; a no-op for stores whose puts are durable on return.
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How many puts to run at once by default.
    fn default_parallelism(&self) -> usize;

    /// How the seeding planner should look keys up.
    fn lookup(&self) -> Lookup;

    /// Whether this store can confirm objects by its own checksum
    /// ([`Store::checksum_confirms`]); `false` by default, `true` for S3 unless its URL says
    /// `confirm=read-back`.
    fn confirms_by_checksum(&self) -> bool {
        false
    }

    /// Whether the store's own checksum proves that the object at `key` holds exactly the bytes
    /// `local` describes, so that reading it back can be spared. `listed` is the object as a
    /// listing showed it, if at hand. `false` means "read it back". Called only when
    /// [`Store::confirms_by_checksum`] is true.
    fn checksum_confirms(
        &self,
        _key: &KitPath,
        _local: LocalBytes<'_>,
        _listed: Option<&ObjectInfo>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Whether [`Store::list`] visits keys in byte order (S3's `ListObjectsV2` does), so that a
    /// store migration may start on the first keys before the listing ends. `false` by default.
    fn lists_in_order(&self) -> bool {
        false
    }

    /// The MD5 of a listed object's bytes, when this store is trusted to vouch for it (S3 with
    /// a plain-MD5 ETag, unless its URL says `confirm=read-back`); `None` otherwise (the default).
    /// Lets a store migration judge an object already in place without reading it.
    fn listed_md5(&self, _info: &ObjectInfo) -> Option<String> {
        None
    }

    /// Reads the object back and returns its size and SHA-256 (`None` if there is none). This is
    /// how seeding confirms a put and recognises an object it may skip: by the bytes the store
    /// returns, not by metadata anyone could have written.
    fn digest(&self, key: &KitPath) -> Result<Option<ObjectDigest>, StoreError> {
        let mut sink = stream::HashingWriter::new();
        Ok(self.get(key, &mut sink)?.map(|_| sink.finish()))
    }
}

/// Opens the store a URL names. Nothing is created yet: the file store makes its folder on the
/// first put, the PostgreSQL store its table on first use; an S3 bucket must exist.
pub fn open(url: &StoreUrl) -> Result<Box<dyn Store>, StoreError> {
    Ok(match url {
        StoreUrl::File(f) => Box::new(file::FileStore::new(url.clone(), f)),
        StoreUrl::S3(s) => Box::new(s3::S3Store::open(url.clone(), s)?),
        StoreUrl::Postgres(p) => Box::new(postgres::PgStore::open(url.clone(), p)?),
    })
}

/// Parses `url` and opens the store it names.
pub fn open_str(url: &str) -> Result<Box<dyn Store>, StoreError> {
    open(&StoreUrl::parse(url)?)
}
