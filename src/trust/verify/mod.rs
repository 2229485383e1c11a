//! The verifier: the only way to obtain a [`VerifiedKit`].
//!
//! Two steps over one streaming read of the kit file. [`authenticate`] reads the header (bounded,
//! nothing else before it; keeping only the envelope and the signatures, hashing the rest) and
//! authenticates it completely: DSSE signatures over the in-toto statement (a threshold of
//! distinct trusted keys, [`signatures`]) — then, authenticated, reads the header a second time
//! keeping `manifest.json` and `SHA256SUMS`, each with the digest the first read found — the
//! detached signatures over
//! SHA256SUMS, the agreement of SHA256SUMS, the statement's subjects and the manifest
//! (`agreement`), the manifest's own rules, and expiry. The [`AuthenticatedKit`] it returns lets
//! a caller check cheap things against the signed manifest (the target database, the channel's
//! sequence) before the expensive part. [`AuthenticatedKit::verify`] then streams the payload,
//! hashing each entry as it passes and comparing it with the signed digest (`payload`), keeping
//! what the caller asked to [`Retain`]. Nothing else is held in memory but the current buffer.

mod agreement;
mod payload;
pub mod provenance;
pub mod signatures;

pub use payload::PayloadSink;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::Sha256Hex;
use crate::kit::dsse::{EnvelopeRef, EnvelopeSignature, Statement};
use crate::kit::layout::{self, DSSE, Limits, MANIFEST, MANIFEST_SCHEMA, SUMS_SIG};
use crate::kit::manifest::{FileEntry, Manifest, SeedEntry};
use crate::kit::names::Timestamp;
use crate::kit::path::KitPath;
use crate::kit::reader::{Keep, KitReader, RawHeader, ReadError};
use crate::kit::sums;
use crate::trust::content::{Content, ContentError, Retain};
use crate::trust::failure::{Failure, FailureKind as K};
use crate::trust::keys::KeyId;
use crate::trust::policy::TrustPolicy;
use crate::trust::sigstore::{self, Attestation, SigstorePolicy};

/// Whether an expired kit is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Refuse kits whose `expires` has passed (the default).
    Enforce,
    /// Accept them (`--allow-expired`); the report says so.
    UnsafeAllowExpired,
}

/// When trusted keys' validity windows are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyTime {
    /// At this machine's clock (the default).
    #[default]
    Clock,
    /// At the kit's signed creation time (`--key-validity signing-time`, RAUC's
    /// `use-bundle-signing-time`): for sites whose clocks cannot be trusted. The report says so.
    SigningTime,
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// This machine's clock: expiry is judged at it, and key windows unless `key_time` says
    /// otherwise.
    pub now: OffsetDateTime,
    /// Expiry handling.
    pub expiry: ExpiryPolicy,
    /// When key validity windows are judged.
    pub key_time: KeyTime,
    /// Reader bounds.
    pub limits: Limits,
    /// Threads decompressing the payload's frames (`--jobs`); 1 decodes the kit as one stream.
    /// A kit without a frame index is always decoded as one stream.
    pub jobs: usize,
}

static JOBS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Sets the process's [`default_jobs`] (`--jobs`); the first call wins.
pub fn set_jobs(n: usize) {
    let _ = JOBS.set(n.max(1));
}

/// Most threads [`default_jobs`] picks without `--jobs`: each holds about two frames (16 MiB as
/// built), and two keep verify within 96 MiB (docs/BENCHMARKS.md).
pub const DEFAULT_MAX_JOBS: usize = 2;

/// The default of [`VerifyOptions::jobs`]: what `--jobs` said, else the machine's cores up to
/// [`DEFAULT_MAX_JOBS`] (one decompression stream on a single core).
pub fn default_jobs() -> usize {
    *JOBS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, DEFAULT_MAX_JOBS)
    })
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            now: OffsetDateTime::now_utc(),
            expiry: ExpiryPolicy::Enforce,
            key_time: KeyTime::Clock,
            limits: Limits::default(),
            jobs: default_jobs(),
        }
    }
}

/// A key whose signature counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    /// Its keyid.
    pub keyid: KeyId,
    /// Its name in the trust policy.
    pub name: String,
}

/// What authentication established; shared by [`AuthenticatedKit`] and [`VerifiedKit`].
#[derive(Debug, Clone)]
struct Authenticated {
    path: PathBuf,
    manifest: Manifest,
    signers: Vec<Signer>,
    warnings: Vec<String>,
    accepted_expired: Option<Timestamp>,
    key_validity: KeyValidity,
    provenance: Option<provenance::Provenance>,
    header: RawHeader,
    sigstore: Option<Arc<SigstorePolicy>>,
}

/// When the signers' keys were judged valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValidity {
    /// On what basis.
    pub basis: KeyTime,
    /// The time they were judged at.
    pub judged_at: Timestamp,
}

/// A kit whose header is authenticated: the manifest is the one the trusted keys signed. Its
/// payload has not been read; [`AuthenticatedKit::verify`] reads and checks it.
pub struct AuthenticatedKit {
    auth: Authenticated,
    reader: KitReader,
}

/// The label of the payload pass's progress (`--progress`).
const PROGRESS_LABEL: &str = "verify";

impl std::fmt::Debug for AuthenticatedKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatedKit")
            .field("path", &self.auth.path)
            .finish_non_exhaustive()
    }
}

/// A kit that passed verification, with the payload files it was asked to retain. Only the
/// verifier constructs it.
#[derive(Debug)]
pub struct VerifiedKit {
    auth: Authenticated,
    kit_sha256: Sha256Hex,
    kit_size: u64,
    content: Content,
    attestations: Vec<Attestation>,
    /// Where each payload file's data starts in the uncompressed stream.
    data_offsets: payload::Offsets,
}

macro_rules! authenticated_accessors {
    () => {
        /// The authenticated manifest.
        pub fn manifest(&self) -> &Manifest {
            &self.auth.manifest
        }
        /// SHA-256 of manifest.json: the kit's signed identity.
        pub fn manifest_sha256(&self) -> &Sha256Hex {
            &self.auth.header.manifest.sha256
        }
        /// The trusted keys whose signatures counted.
        pub fn signers(&self) -> &[Signer] {
            &self.auth.signers
        }
        /// Things the operator should know that did not fail verification.
        pub fn warnings(&self) -> &[String] {
            &self.auth.warnings
        }
        /// When the signers' keys were judged valid (the clock, or the kit's creation time).
        pub fn key_validity(&self) -> &KeyValidity {
            &self.auth.key_validity
        }
        /// The expiry that had passed when the kit was accepted under `--allow-expired`.
        pub fn accepted_expired(&self) -> Option<&Timestamp> {
            self.auth.accepted_expired.as_ref()
        }
        /// The kit's verified SLSA provenance, when it carries one.
        pub fn provenance(&self) -> Option<&provenance::Provenance> {
            self.auth.provenance.as_ref()
        }
        /// The authenticated header entries.
        pub fn header(&self) -> &RawHeader {
            &self.auth.header
        }
        /// The kit file.
        pub fn path(&self) -> &Path {
            &self.auth.path
        }
    };
}

impl AuthenticatedKit {
    authenticated_accessors!();

    /// Streams the payload, verifying every file against the signed manifest, keeping what
    /// `retain` says. Refused unless every file is present, in order, of the signed size and
    /// digest, and nothing else is in the archive.
    pub fn verify(self, retain: Retain) -> Result<VerifiedKit, VerifyFailure> {
        let AuthenticatedKit { auth, mut reader } = self;
        let fail = |failures: Vec<Failure>| VerifyFailure { failures };
        let bound = payload::decompressed_bound(
            &auth.manifest,
            auth.header.header_bytes,
            reader.limits().trailing_zero_bytes,
        )
        .map_err(|f| fail(vec![f]))?;
        reader.set_total_limit(bound);
        let inner = retain
            .sink(&auth.manifest)
            .map_err(|e| fail(vec![e.failure()]))?;
        let mut sink = BundleTap::new(&auth.manifest, inner);
        sink.progress = Some(crate::report::progress::ByteProgress::new(
            PROGRESS_LABEL,
            auth.manifest.payload.bytes,
        ));
        let mut failures = Vec::new();
        let data_offsets = payload::stream(&mut reader, &auth.manifest, &mut sink, &mut failures);
        let end = if failures.iter().any(|f| !payload::is_recoverable(f.kind)) {
            None
        } else {
            match reader.finish() {
                Ok(end) => Some(end),
                Err(e) => {
                    failures.push(e.into());
                    None
                }
            }
        };
        match end {
            Some(end) if failures.is_empty() => {
                // Every byte matched its signed digest: the bundles can be judged. Nothing retained
                // is kept when one fails (the sink is dropped unfinished).
                let BundleTap {
                    inner,
                    bundles,
                    progress,
                    ..
                } = sink;
                drop(progress);
                let mut auth = auth;
                let attestations =
                    sigstore::check(&auth.manifest, &bundles, auth.sigstore.as_deref())
                        .map_err(fail)?;
                if attestations.iter().any(|a| a.verdict == "not-checked") {
                    auth.warnings.push(format!(
                        "the kit carries {} Sigstore bundle(s) that were not checked: the trust policy pins no Sigstore trusted root ([sigstore] in a policy file)",
                        attestations.len()
                    ));
                }
                let content = inner
                    .finish(&auth.manifest)
                    .map_err(|e| fail(vec![e.failure()]))?;
                Ok(VerifiedKit {
                    auth,
                    kit_sha256: end.sha256,
                    kit_size: end.compressed,
                    content,
                    attestations,
                    data_offsets,
                })
            }
            _ => Err(fail(failures)),
        }
    }
}

/// The seeds of a verified kit, a page at a time ([`VerifiedKit::seed_pages`]).
pub struct SeedPages<'k> {
    kit: &'k VerifiedKit,
    /// The number of each page's first seed.
    first: Vec<u64>,
    /// Where the payload files start (the pages, read again; an `offkit/v1` kit's seeds).
    offsets: HashMap<&'k str, u64>,
    frames: Option<crate::kit::random::FrameFile>,
}

/// One page of a kit's seeds.
#[derive(Debug, Clone)]
pub struct SeedPage {
    /// The seeds, in key order.
    pub seeds: Vec<SeedEntry>,
    /// Where each seed's data starts in the kit's uncompressed stream (`u64::MAX`: not in the
    /// payload).
    pub offsets: Vec<u64>,
}

impl SeedPages<'_> {
    /// How many pages there are (an `offkit/v1` kit has one).
    pub fn len(&self) -> usize {
        if self.kit.manifest().is_paged() {
            self.first.len()
        } else {
            1
        }
    }

    /// Whether there is no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many seeds the pages list together.
    pub fn seeds(&self) -> u64 {
        let m = self.kit.manifest();
        if m.is_paged() {
            m.pages.iter().map(|p| p.files).fold(0, u64::saturating_add)
        } else {
            m.seeds.len() as u64
        }
    }

    /// How many seeds page `i` lists and the sum of their sizes, as the signed manifest says.
    pub fn counts(&self, i: usize) -> (u64, u64) {
        let m = self.kit.manifest();
        if !m.is_paged() {
            let bytes = m
                .seeds
                .iter()
                .map(|s| s.file.size)
                .fold(0, u64::saturating_add);
            return (m.seeds.len() as u64, bytes);
        }
        m.pages.get(i).map_or((0, 0), |p| (p.files, p.bytes))
    }

    /// Page `i`: its bytes read again and checked against their signed digest. A seed's size is
    /// the one its signed digest was verified over; its media type is derived from its key as
    /// `build` does.
    pub fn page(&mut self, i: usize) -> Result<SeedPage, ContentError> {
        let kit = self.kit;
        let manifest = kit.manifest();
        if !manifest.is_paged() {
            return Ok(SeedPage {
                offsets: manifest
                    .seeds
                    .iter()
                    .map(|s| {
                        self.offsets
                            .get(s.file.path.as_str())
                            .copied()
                            .unwrap_or(u64::MAX)
                    })
                    .collect(),
                seeds: manifest.seeds.clone(),
            });
        }
        let (Some(page), Some(&first)) = (manifest.pages.get(i), self.first.get(i)) else {
            return Err(ContentError::Io {
                path: crate::kit::pages::PAGE_DIR.to_owned(),
                source: std::io::Error::other(format!("the kit has no seed page {}", i + 1)),
            });
        };
        let io = |what: &str| ContentError::Io {
            path: page.file.path.to_string(),
            source: std::io::Error::other(what.to_owned()),
        };
        let bytes = kit.read_small(&page.file, &self.offsets, &mut self.frames)?;
        // Verified bytes: the page rules held when the kit was verified.
        let lines = crate::kit::sums::parse(&bytes).map_err(|e| io(&e.to_string()))?;
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        let met = kit
            .data_offsets
            .seeds
            .get(first..first.saturating_add(lines.len()))
            .ok_or_else(|| io("more seeds than the verifying pass met"))?;
        let mut seeds = Vec::with_capacity(lines.len());
        for (line, (_, size)) in lines.into_iter().zip(met) {
            let key = line
                .path
                .as_str()
                .strip_prefix(crate::kit::pages::SEED_DIR)
                .and_then(|k| k.strip_prefix('/'))
                .and_then(|k| KitPath::new(k).ok())
                .ok_or_else(|| io("a page lists a path outside seeds/"))?;
            seeds.push(SeedEntry {
                media_type: crate::kit::manifest::media_type_for(key.as_str()).to_owned(),
                key,
                file: FileEntry {
                    path: line.path,
                    sha256: line.sha256,
                    size: *size,
                },
            });
        }
        Ok(SeedPage {
            seeds,
            offsets: met.iter().map(|(at, _)| *at).collect(),
        })
    }
}

impl VerifiedKit {
    authenticated_accessors!();

    /// The Sigstore bundles the kit declares, each with its verdict (all verified, or all not
    /// checked when the site's policy pins no Sigstore trusted root).
    pub fn attestations(&self) -> &[Attestation] {
        &self.attestations
    }

    /// Where the data of each payload file starts in the kit's uncompressed stream, by path, as
    /// the verifying pass found it (with [`crate::kit::random::FrameFile`], a file can be read
    /// again from the kit itself).
    pub fn data_offsets(&self) -> std::collections::HashMap<&str, u64> {
        payload::sorted_paths(&self.auth.manifest)
            .into_iter()
            .zip(self.data_offsets.files.iter().copied())
            .collect()
    }

    /// The kit's payload frames, to read files again from the kit file (or its parts) through
    /// the signed frame index: each frame checked against its signed SHA-256 before it is
    /// decompressed.
    pub fn frames(&self) -> std::io::Result<crate::kit::random::FrameFile> {
        let files = match crate::kit::parts::find(self.path()).map_err(std::io::Error::other)? {
            Some(parts) => parts.files,
            None => vec![self.path().to_path_buf()],
        };
        let header_frame =
            crate::kit::frame::header_frame_len(&mut std::fs::File::open(&files[0])?)?;
        crate::kit::random::FrameFile::open(&files, header_frame, &self.manifest().payload.frames)
    }

    /// The verified bytes of a small payload file (a page), read again from the folder it was
    /// retained in, else from the kit through its frame index (`frames`, opened on first use and
    /// kept for the next file), and checked against its signed size and digest.
    fn read_small(
        &self,
        entry: &FileEntry,
        offsets: &HashMap<&str, u64>,
        frames: &mut Option<crate::kit::random::FrameFile>,
    ) -> Result<Vec<u8>, ContentError> {
        if let Some(read) = self.content.read_from_folder(entry) {
            return read;
        }
        let at = *offsets
            .get(entry.path.as_str())
            .ok_or_else(|| ContentError::NotRetained {
                path: entry.path.clone(),
            })?;
        let frames = match frames {
            Some(f) => f,
            None => frames.insert(self.frames().map_err(|source| ContentError::Io {
                path: entry.path.to_string(),
                source,
            })?),
        };
        crate::trust::content::checked(frames.reader(at, entry.size), entry)
    }

    /// The kit's seeds, in key order: the signed manifest's list (`offkit/v1`), or the seeds the
    /// signed pages list (`offkit/v2`), each page read again and checked against its signed
    /// digest ([`VerifiedKit::seed_pages`], all pages at once).
    pub fn seeds(&self) -> Result<Vec<SeedEntry>, ContentError> {
        let mut pages = self.seed_pages();
        let mut seeds = Vec::new();
        for i in 0..pages.len() {
            seeds.extend(pages.page(i)?.seeds);
        }
        Ok(seeds)
    }

    /// The kit's seeds a page at a time, in key order (an `offkit/v1` kit's manifest list is
    /// one page): what a command that handles every seed holds at once, whatever the number of
    /// seeds.
    pub fn seed_pages(&self) -> SeedPages<'_> {
        let manifest = self.manifest();
        let mut first = Vec::with_capacity(manifest.pages.len());
        let mut n = 0u64;
        for page in &manifest.pages {
            first.push(n);
            n = n.saturating_add(page.files);
        }
        SeedPages {
            kit: self,
            first,
            offsets: self.data_offsets(),
            frames: None,
        }
    }

    /// The authenticated manifest with its `seeds` listed (in an `offkit/v2` kit, read from its
    /// pages, [`VerifiedKit::seeds`]): for showing and comparing kits, never for checking one.
    pub fn listed_manifest(&self) -> Result<Manifest, ContentError> {
        let mut m = self.manifest().clone();
        if m.is_paged() {
            m.seeds = self.seeds()?;
        }
        Ok(m)
    }

    /// SHA-256 of the kit file.
    pub fn kit_sha256(&self) -> &Sha256Hex {
        &self.kit_sha256
    }

    /// Size of the kit file.
    pub fn kit_size(&self) -> u64 {
        self.kit_size
    }

    /// The verified bytes of a migration or rollback file, read through the digest-checking
    /// reader against the signed manifest. A file changed, replaced or removed since verification
    /// is refused with its name. Kept in memory, the bytes are moved out (held once).
    pub fn take_sql(&mut self, path: &KitPath) -> Result<Vec<u8>, ContentError> {
        self.content.take_sql(path)
    }

    /// The folder the payload files were retained in, when they were written to disk (apply's
    /// work folder, an extraction).
    pub fn folder(&self) -> Option<&Path> {
        self.content.folder()
    }

    /// Checks that nothing was added to the retained folder since verification: every file in
    /// it is one of the kit's. (Files are never listed from the folder; this makes an addition
    /// loud instead of merely ignored.)
    pub fn check_folder(&self) -> Result<(), ContentError> {
        let seeds = if self.manifest().is_paged() && self.folder().is_some() {
            self.seeds()?
        } else {
            Vec::new()
        };
        self.content.check_folder(&self.auth.manifest, &seeds)
    }

    /// The retained content (extraction relocates it).
    pub(crate) fn content_mut(&mut self) -> &mut Content {
        &mut self.content
    }
}

/// A sink that keeps a copy of each declared Sigstore bundle (each at most
/// [`crate::kit::manifest::MAX_SIGSTORE_BUNDLE_BYTES`], checked on the signed manifest) on its way
/// to the caller's sink.
struct BundleTap<'m, S: ?Sized> {
    declared: std::collections::HashSet<&'m KitPath>,
    current: Option<(KitPath, Vec<u8>)>,
    bundles: HashMap<KitPath, Vec<u8>>,
    /// The pass's progress, in payload bytes.
    progress: Option<crate::report::progress::ByteProgress>,
    inner: Box<S>,
}

impl<'m, S: ?Sized> BundleTap<'m, S> {
    fn new(manifest: &'m Manifest, inner: Box<S>) -> Self {
        BundleTap {
            declared: manifest.sigstore.iter().map(|s| &s.bundle).collect(),
            current: None,
            bundles: HashMap::new(),
            progress: None,
            inner,
        }
    }
}

impl<S: PayloadSink + ?Sized> PayloadSink for BundleTap<'_, S> {
    fn begin(&mut self, path: &KitPath, size: u64) -> std::io::Result<()> {
        self.current = self.declared.contains(path).then(|| {
            let cap = size.min(crate::kit::manifest::MAX_SIGSTORE_BUNDLE_BYTES) as usize;
            (path.clone(), Vec::with_capacity(cap))
        });
        self.inner.begin(path, size)
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(p) = &self.progress {
            p.add(data.len() as u64);
        }
        if let Some((_, buf)) = &mut self.current {
            // The entry's size was checked against the signed one before its data; this bound
            // holds whatever the reader does.
            if (buf.len() + data.len()) as u64 <= crate::kit::manifest::MAX_SIGSTORE_BUNDLE_BYTES {
                buf.extend_from_slice(data);
            }
        }
        self.inner.write(data)
    }

    fn end(&mut self) -> std::io::Result<()> {
        if let Some((path, buf)) = self.current.take() {
            self.bundles.insert(path, buf);
        }
        self.inner.end()
    }
}

/// Why a kit was refused: every failure found, with what could be learnt of the kit.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyFailure {
    /// The failures, first found first.
    pub failures: Vec<Failure>,
}

impl VerifyFailure {
    /// A refusal for one reason.
    pub fn one(f: Failure) -> VerifyFailure {
        VerifyFailure { failures: vec![f] }
    }
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A kit is refused for what it is; reading or writing failing says nothing of the kit.
        let what = match self.failures.first().map(|f| f.kind) {
            Some(K::WriteError) => "could not write the kit's files (the kit was not judged)",
            Some(K::IoError) => "could not read the kit (it was not judged)",
            _ => "kit refused",
        };
        match self.failures.first() {
            Some(first) => write!(f, "{what}: {first}")?,
            None => write!(f, "{what}")?,
        }
        if self.failures.len() > 1 {
            write!(f, " (and {} more)", self.failures.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyFailure {}

impl ExitCoded for VerifyFailure {
    fn exit(&self) -> Exit {
        match self.failures.first().map(|f| f.kind) {
            Some(K::IoError | K::WriteError) => Exit::Io,
            Some(K::Internal) => Exit::Internal,
            _ => Exit::Verification,
        }
    }
}

/// Verifies the kit at `path` against `policy`, keeping nothing (`offkit verify`).
pub fn verify_kit(
    path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
) -> Result<VerifiedKit, VerifyFailure> {
    authenticate(path, policy, opts)?.verify(Retain::Nothing)
}

/// Reads and authenticates the kit's header; the payload is left unread.
pub fn authenticate(
    path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
) -> Result<AuthenticatedKit, VerifyFailure> {
    let mut reader =
        KitReader::open(path, opts.limits).map_err(|e| VerifyFailure::one(e.into()))?;
    let header = reader
        .read_header(Keep::Envelope)
        .map_err(|e| VerifyFailure::one(e.into()))?;
    let mut auth = authenticate_header(path, header, policy, opts).map_err(VerifyFailure::one)?;
    // A split kit: the header came from part 1; the payload is read from every part, each
    // checked against the frame index the header just authenticated.
    let parts =
        crate::kit::parts::find(path).map_err(|e| VerifyFailure::one(ReadError::from(e).into()))?;
    if let Some(parts) = parts {
        drop(reader);
        let (r, header) =
            open_parts(parts, &auth, opts).map_err(|e| VerifyFailure::one(e.into()))?;
        reader = r;
        auth.header = header;
    } else if opts.jobs > 1 && !auth.manifest.payload.frames.is_empty() {
        // The signed frame index cuts the payload into frames: decompress them on every core.
        drop(reader);
        let (r, header) =
            open_indexed(path, &auth, opts).map_err(|e| VerifyFailure::one(e.into()))?;
        reader = r;
        auth.header = header;
    }
    Ok(AuthenticatedKit { auth, reader })
}

/// The reader of a kit whose frames are decompressed in parallel, cut by the authenticated frame
/// index.
fn open_indexed(
    path: &Path,
    auth: &Authenticated,
    opts: &VerifyOptions,
) -> Result<(KitReader, RawHeader), ReadError> {
    let io = |e: std::io::Error| ReadError::Io(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let header_frame = crate::kit::frame::header_frame_len(&mut file).map_err(io)?;
    KitReader::open_frames(
        Box::new(file),
        header_frame,
        &auth.manifest.payload.frames,
        opts.jobs,
        opts.limits,
        &auth.header,
    )
}

/// The reader of a split kit's payload, its parts planned against the authenticated frame index.
fn open_parts(
    parts: crate::kit::parts::Parts,
    auth: &Authenticated,
    opts: &VerifyOptions,
) -> Result<(KitReader, RawHeader), ReadError> {
    let first = &parts.files[0];
    let header_frame = std::fs::File::open(first)
        .and_then(|mut f| crate::kit::frame::header_frame_len(&mut f))
        .map_err(|e| ReadError::Io(format!("{}: {e}", first.display())))?;
    let plan = parts.plan(header_frame, &auth.manifest.payload.frames)?;
    if opts.jobs > 1 {
        return KitReader::open_frames(
            Box::new(plan.reader()),
            header_frame,
            &auth.manifest.payload.frames,
            opts.jobs,
            opts.limits,
            &auth.header,
        );
    }
    KitReader::open_parts(&plan, opts.limits, &auth.header)
}

/// Authenticates the header: signatures first, then parsing, then agreement of the three lists,
/// the manifest's rules and expiry.
fn authenticate_header(
    path: &Path,
    header: RawHeader,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
) -> Result<Authenticated, Failure> {
    let mut envelope: EnvelopeRef<'_> = serde_json::from_slice(&header.dsse.bytes)
        .map_err(|e| Failure::at(K::MalformedJson, DSSE, format!("{DSSE}: {e}")))?;
    if !envelope.is_canonical(&header.dsse.bytes) {
        return Err(Failure::at(
            K::NonCanonicalSignature,
            DSSE,
            format!(
                "{DSSE} is not in the form offkit writes (an unknown field, or other formatting)"
            ),
        ));
    }
    // DSSE protocol, "Verification": reject unless payloadType is the one expected.
    if envelope.payload_type != layout::PAYLOAD_TYPE {
        return Err(Failure::at(
            K::UnknownFormat,
            DSSE,
            format!(
                "payloadType {:?} is not {:?}",
                envelope.payload_type.chars().take(80).collect::<String>(),
                layout::PAYLOAD_TYPE
            ),
        ));
    }
    // The PAE is computed once, with the payload decoded into it: the one copy held.
    let (message, start) = envelope.pae().ok_or_else(|| {
        Failure::at(
            K::MalformedJson,
            DSSE,
            "payload is not standard padded Base64",
        )
    })?;
    // A rotation the kit carries is walked from the site's trust store first (each version is
    // signed by the one before it, so none of this trusts the kit); the kit is then judged by the
    // newest version's keys.
    let rotated = policy.with_carried(&header.trust_versions).map_err(|e| {
        let entry = match &e {
            crate::trust::policy::PolicyError::Store(s) => s.origin().unwrap_or(DSSE),
            _ => DSSE,
        }
        .to_owned();
        Failure::at(K::UntrustedRotation, entry, e.to_string())
    })?;
    let mut warnings = Vec::new();
    let policy = match &rotated {
        Some((p, walked)) => {
            warnings.push(format!(
                "trust version(s) {} carried by the kit were accepted in memory after the site's trust store; the kit is judged by version {} (offkit extract, apply or verify --record adds them to the store)",
                crate::util::comma_list(walked),
                walked.last().copied().unwrap_or_default()
            ));
            p
        }
        None => policy,
    };
    let checked = signatures::check(&envelope.signatures, &message, policy)?;
    // Key windows at the clock now; at the kit's signed creation time once the statement is read
    // (it is authenticated by trusted keys whatever their windows, enough of them to count).
    let signers_at_clock = match opts.key_time {
        KeyTime::Clock => Some(checked.judge(policy, opts.now)?),
        KeyTime::SigningTime => {
            if checked.distinct_keys() < policy.threshold().get() {
                checked.judge(policy, opts.now)?;
            }
            None
        }
    };
    let envelope_signatures = std::mem::take(&mut envelope.signatures);
    // Authenticated: now read `manifest.json` and `SHA256SUMS`, which the first read only hashed,
    // checking the kit file still holds the same header.
    crate::failpoint::hit("verify:envelope-authenticated");
    let first = header;
    let header = KitReader::reread_header(path, opts.limits, &first).map_err(Failure::from)?;
    drop(first);
    check_detached(
        &header,
        &envelope_signatures,
        &checked.verified,
        policy,
        &mut warnings,
    )?;
    let payload = &message[start..];

    // Only now, with the payload authenticated, parse it: the type fields and the predicate's
    // schema first, so that another statement, predicate or manifest schema is "unknown", not
    // "malformed".
    #[derive(serde::Deserialize)]
    struct SchemaOnly {
        schema: Option<String>,
    }
    let head: Statement<SchemaOnly> = serde_json::from_slice(payload)
        .map_err(|e| Failure::at(K::MalformedJson, DSSE, format!("in-toto statement: {e}")))?;
    if head.type_ != layout::STATEMENT_TYPE || head.predicate_type != layout::PREDICATE_TYPE {
        return Err(Failure::at(
            K::UnknownFormat,
            DSSE,
            format!(
                "statement type {:?} / predicate type {:?} unknown",
                head.type_.chars().take(80).collect::<String>(),
                head.predicate_type.chars().take(80).collect::<String>()
            ),
        ));
    }
    // The layout marker was read unsigned; the signed schema must be the one it goes with.
    let expected_schema = layout::FORMATS
        .iter()
        .find(|(marker, _)| header.layout.bytes == marker.as_bytes())
        .map_or(MANIFEST_SCHEMA, |(_, schema)| *schema);
    if let Some(schema) = head.predicate.schema
        && schema != expected_schema
    {
        return Err(Failure::at(
            K::UnknownFormat,
            MANIFEST,
            format!(
                "manifest schema {:?} is not the {expected_schema:?} its layout entry {:?} goes with",
                schema.chars().take(80).collect::<String>(),
                String::from_utf8_lossy(&header.layout.bytes).trim_end()
            ),
        ));
    }
    // Typed, not as JSON value trees: a manifest of 100,000 files parsed as trees would cost more
    // memory than the whole verification otherwise needs.
    let Statement {
        subject, predicate, ..
    } = serde_json::from_slice::<Statement<Manifest>>(payload)
        .map_err(|e| manifest_failure(DSSE, "the signed statement's manifest", e))?;
    drop(message);
    // SHA256SUMS is authenticated by its detached signature or, whoever signed that, by equality
    // with the signed subjects; `manifest.json` only once its digest is that SHA256SUMS line.
    let sum_lines = sums::parse(&header.sums.bytes).map_err(agreement::sums_failure)?;
    agreement::sums_match_subjects(&subject, &sum_lines)?;
    drop(subject);
    agreement::header_digests(&header, &sum_lines)?;
    let manifest: Manifest = serde_json::from_slice(&header.manifest.bytes)
        .map_err(|e| manifest_failure(MANIFEST, MANIFEST, e))?;
    if predicate != manifest {
        return Err(Failure::at(
            K::ManifestMismatch,
            MANIFEST,
            "manifest.json differs from the manifest in the signed statement",
        ));
    }
    drop(predicate);
    agreement::manifest_matches_sums(&manifest, &sum_lines)?;
    manifest
        .check()
        .map_err(|e| Failure::at(K::InvalidManifest, MANIFEST, e.0))?;
    // Every tar header carries the kit's creation time (checked equal across entries by the
    // reader); now that the manifest is authenticated, that time must be its `created`.
    let created = stored_mtime(manifest.created.unix_seconds());
    if header.mtime != created {
        return Err(Failure::at(
            K::NonCanonicalEntry,
            layout::LAYOUT,
            format!(
                "the tar headers carry modification time {}, not the kit's creation time {created}",
                header.mtime
            ),
        ));
    }

    let created = manifest.created.at();
    if opts.now < created {
        warnings.push(format!(
            "this machine's clock ({}) is earlier than the kit's signed creation time ({}): check the clock; expiry{} was judged at the clock",
            Timestamp::utc(opts.now),
            manifest.created,
            if opts.key_time == KeyTime::Clock {
                " and key validity"
            } else {
                ""
            }
        ));
    }
    let (signers, key_validity) = match signers_at_clock {
        Some(signers) => (
            signers,
            KeyValidity {
                basis: KeyTime::Clock,
                judged_at: Timestamp::utc(opts.now),
            },
        ),
        None => {
            let signers = checked.judge(policy, created).map_err(|mut f| {
                f.message.push_str(&format!(
                    " (keys judged at the kit's signed creation time {})",
                    manifest.created
                ));
                f
            })?;
            warnings.push(format!(
                "key validity judged at the kit's signed creation time {}, not at this machine's clock (--key-validity signing-time)",
                manifest.created
            ));
            (
                signers,
                KeyValidity {
                    basis: KeyTime::SigningTime,
                    judged_at: manifest.created.clone(),
                },
            )
        }
    };
    let mut accepted_expired = None;
    if let Some(expires) = &manifest.expires
        && opts.now > expires.at()
    {
        match opts.expiry {
            ExpiryPolicy::Enforce => {
                return Err(Failure::kit(
                    K::Expired,
                    format!(
                        "the kit expired at {expires}; ask the release team for a fresh kit (or --allow-expired, recorded in reports)"
                    ),
                ));
            }
            ExpiryPolicy::UnsafeAllowExpired => {
                warnings.push(format!(
                    "kit expired at {expires}; accepted because of --allow-expired"
                ));
                accepted_expired = Some(expires.clone());
            }
        }
    }
    // The provenance, if the kit carries one, about exactly this manifest and signed by a key
    // that counted for the kit.
    let provenance = header
        .provenance
        .as_deref()
        .map(|p| provenance::check_provenance(p, policy, &header.manifest.sha256, &signers))
        .transpose()?;
    Ok(Authenticated {
        path: path.to_path_buf(),
        manifest,
        signers,
        warnings,
        accepted_expired,
        key_validity,
        provenance,
        header,
        sigstore: policy.sigstore().cloned(),
    })
}

/// A manifest that does not parse is malformed JSON; one that parses but breaks a value's rule
/// (a bad name, path, digest or time, an unknown field) is an invalid manifest.
fn manifest_failure(entry: &str, what: &str, e: serde_json::Error) -> Failure {
    let kind = match e.classify() {
        serde_json::error::Category::Data => K::InvalidManifest,
        _ => K::MalformedJson,
    };
    Failure::at(kind, entry, format!("{what}: {e}"))
}

/// The detached signatures over SHA256SUMS (docs/FORMAT.md, "Signatures"): `SHA256SUMS.sig`
/// belongs to the envelope's first signature, `SHA256SUMS.<keyid>.sig` to the signature by that
/// key. Every envelope signature that verified under a trusted key must have its detached
/// signature, and it must verify (so the openssl recipe works for every key that counted). A
/// detached signature must belong to a key that signed the envelope; one by a key this site does
/// not trust cannot be checked, and is reported as such.
fn check_detached(
    header: &RawHeader,
    signatures: &[EnvelopeSignature],
    verified: &[(usize, KeyId)],
    policy: &TrustPolicy,
    warnings: &mut Vec<String>,
) -> Result<(), Failure> {
    let cosigner = |keyid: &str| {
        header
            .cosigner_sigs
            .binary_search_by(|(k, _)| k.as_str().cmp(keyid))
            .ok()
            .map(|i| &header.cosigner_sigs[i].1)
    };
    for (i, keyid) in verified {
        let (entry, sig) = if *i == 0 {
            (SUMS_SIG.to_owned(), Some(&header.sums_sig))
        } else {
            (
                layout::cosigner_sig_name(keyid.as_str()),
                cosigner(keyid.as_str()),
            )
        };
        let Some(sig) = sig else {
            return Err(Failure::at(
                K::MissingSignature,
                &entry,
                format!(
                    "trusted key {keyid} signed the envelope but the kit carries no {entry}, its signature over SHA256SUMS"
                ),
            ));
        };
        let key = policy.key(keyid).map(|k| k.key());
        if !key.is_some_and(|k| k.verify(&header.sums.bytes, sig)) {
            return Err(Failure::at(
                K::BadSignature,
                &entry,
                format!(
                    "{entry} does not verify SHA256SUMS under key {keyid}: SHA256SUMS was altered"
                ),
            ));
        }
    }
    let by_verified = |keyid: &str| verified.iter().any(|(_, k)| k.as_str() == keyid);
    let hinted = |keyid: &str| signatures.iter().any(|s| s.keyid == keyid);
    for (keyid, _) in &header.cosigner_sigs {
        let entry = layout::cosigner_sig_name(keyid);
        if by_verified(keyid) {
            continue;
        }
        let trusted = KeyId::exact(keyid).is_some_and(|id| policy.key(&id).is_some());
        if trusted || !hinted(keyid) {
            return Err(Failure::at(
                K::BadSignature,
                &entry,
                format!(
                    "{entry} is by key {keyid}, which did not sign the envelope{}",
                    if trusted { " (it is trusted here)" } else { "" }
                ),
            ));
        }
        warnings.push(format!(
            "{entry} is by a key this site does not trust; it was not checked"
        ));
    }
    if !verified.iter().any(|(i, _)| *i == 0) {
        warnings.push(format!(
            "{SUMS_SIG} is by the envelope's first signer, a key this site does not trust; it was not checked"
        ));
    }
    Ok(())
}

/// The modification time a tar header can carry for `seconds` (its 11 octal digits).
fn stored_mtime(seconds: u64) -> u64 {
    seconds.min(0o77_777_777_777)
}

#[cfg(test)]
mod tests {
    /// Without `--jobs` (no unit test calls `set_jobs`), verify decodes on the machine's cores,
    /// at most two: the default docs/BENCHMARKS.md measured within 96 MiB.
    #[test]
    fn the_default_jobs_are_the_cores_up_to_two() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(super::default_jobs(), cores.clamp(1, 2));
        assert_eq!(super::DEFAULT_MAX_JOBS, 2);
    }
}
