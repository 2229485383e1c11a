//! The payload pass: each entry, in SHA256SUMS order (in an `offkit/v2` kit, the seed pages and
//! their seeds after every other file, walked in lockstep: docs/FORMAT.md §14), hashed as it
//! streams past and compared with the signed digest, its data handed to a [`PayloadSink`] (which
//! may keep it). The decompressed size is bounded by what the authenticated manifest declares, so
//! a decompression bomb is an error, not work.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::kit::layout;
use crate::kit::manifest::Manifest;
use crate::kit::pages::{Expect, PageCursor, PageError, is_page_path, is_seed_path};
use crate::kit::path::KitPath;
use crate::kit::reader::{KitReader, PayloadEntry};
use crate::trust::failure::{Failure, FailureKind as K};

/// Receives payload data as it is verified (e.g. to keep it). What it wrote must be thrown
/// away if verification fails.
pub trait PayloadSink {
    /// A payload file starts.
    fn begin(&mut self, path: &KitPath, size: u64) -> std::io::Result<()>;
    /// Its next bytes.
    fn write(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// It ended.
    fn end(&mut self) -> std::io::Result<()>;
}

/// Most failures kept in one report (digest mismatches can be many).
const MAX_FAILURES: usize = 1000;

/// Failures after which the pass goes on, to report every damaged file at once.
pub(super) fn is_recoverable(kind: K) -> bool {
    matches!(kind, K::DigestMismatch | K::MissingFile)
}

/// The most decompressed bytes a kit with this manifest can hold: its header, each file's tar
/// headers (pax records included), data and padding, the end marker and the allowed zero
/// padding. Checked arithmetic: a manifest whose sizes overflow is refused.
pub(super) fn decompressed_bound(
    manifest: &Manifest,
    header_bytes: u64,
    trailing_zero_bytes: u64,
) -> Result<u64, Failure> {
    let overflow = || {
        Failure::at(
            K::InvalidManifest,
            layout::MANIFEST,
            "the declared sizes overflow a 64-bit count",
        )
    };
    let mut total = header_bytes
        .checked_add(1024)
        .and_then(|t| t.checked_add(trailing_zero_bytes))
        .ok_or_else(overflow)?;
    for f in manifest.files() {
        let entry = (f.path.as_str().len() as u64)
            .checked_mul(2)
            .and_then(|n| n.checked_add(2048 + 511))
            .and_then(|n| n.checked_add(f.size))
            .ok_or_else(overflow)?;
        total = total.checked_add(entry).ok_or_else(overflow)?;
    }
    // The seeds a page lists: their paths' lengths add up to the page's size less the fixed part
    // of each line (digest, two spaces, newline).
    for p in &manifest.pages {
        let paths = p.file.size.saturating_sub(p.files.saturating_mul(67));
        let entries = paths
            .checked_mul(2)
            .and_then(|n| n.checked_add(p.files.checked_mul(2048 + 511)?))
            .and_then(|n| n.checked_add(p.bytes))
            .ok_or_else(overflow)?;
        total = total.checked_add(entries).ok_or_else(overflow)?;
    }
    Ok(total)
}

struct Expected<'a> {
    index: usize,
    sha256: &'a str,
    size: u64,
    seen: bool,
}

/// The payload files' paths in SHA256SUMS order (bytewise), the order of the offsets [`stream`]
/// returns.
pub(crate) fn sorted_paths(manifest: &Manifest) -> Vec<&str> {
    let mut paths: Vec<&str> = manifest.files().map(|f| f.path.as_str()).collect();
    paths.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    paths
}

/// Where each file's data starts in the uncompressed stream, as the payload pass found it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Offsets {
    /// The manifest's files (pages included), in [`sorted_paths`] order.
    pub files: Vec<u64>,
    /// The seeds the pages list (`offkit/v2`), in page order: where each one's data starts and
    /// its size (pinned by its signed digest once the pass succeeded).
    pub seeds: Vec<(u64, u64)>,
}

/// Streams every payload entry through `sink`, collecting failures. Returns where each file's
/// data starts in the uncompressed stream (for reading a file again from the kit through its
/// frame index, [`crate::kit::random`]).
///
/// Every file the manifest lists comes in path order; in an `offkit/v2` kit the pages and their
/// seeds follow, each page before the seeds it lists, walked in lockstep by a
/// [`PageCursor`] (one page held at a time).
pub(super) fn stream(
    reader: &mut KitReader,
    manifest: &Manifest,
    sink: &mut dyn PayloadSink,
    failures: &mut Vec<Failure>,
) -> Offsets {
    let mut sorted: Vec<(&str, &str, u64)> = manifest
        .files()
        .map(|f| (f.path.as_str(), f.sha256.as_str(), f.size))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut expected: HashMap<&str, Expected<'_>> = sorted
        .iter()
        .enumerate()
        .map(|(index, (p, h, s))| {
            (
                *p,
                Expected {
                    index,
                    sha256: h,
                    size: *s,
                    seen: false,
                },
            )
        })
        .collect();
    let folded: HashMap<String, &str> = sorted
        .iter()
        .map(|(p, _, _)| (p.to_lowercase(), *p))
        .collect();
    let mut offsets = Offsets {
        files: vec![u64::MAX; sorted.len()],
        seeds: Vec::new(),
    };
    let mut paged = match manifest
        .is_paged()
        .then(|| PageCursor::new(&manifest.pages))
    {
        None => None,
        Some(Ok(cursor)) => Some(Paged {
            cursor,
            folded: HashSet::new(),
            started: false,
        }),
        Some(Err(e)) => {
            failures.push(Failure::at(
                K::InvalidManifest,
                layout::MANIFEST,
                e.to_string(),
            ));
            return offsets;
        }
    };
    let mut last_index: Option<usize> = None;
    loop {
        let entry = match reader.next_payload() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                push(failures, e.into());
                return offsets;
            }
        };
        let name = entry.path.as_str().to_owned();
        if let Some(p) = paged.as_mut() {
            if is_page_path(&entry.path) || is_seed_path(&entry.path) {
                p.started = true;
                if let Err(f) = p.take(reader, &entry, &mut expected, sink, &mut offsets) {
                    let recoverable = is_recoverable(f.kind);
                    push(failures, f);
                    if !recoverable {
                        return offsets;
                    }
                }
                continue;
            }
            if p.started {
                push(
                    failures,
                    Failure::at(
                        K::EntryOrder,
                        &name,
                        format!(
                            "{name} comes after the seed pages (every other file comes before them)"
                        ),
                    ),
                );
                return offsets;
            }
        }
        let Some(exp) = expected.get_mut(name.as_str()) else {
            let f = if layout::is_header_name(&name) {
                Failure::at(
                    K::DuplicateEntry,
                    &name,
                    format!("{name} appears again after the header"),
                )
            } else if let Some(other) = folded.get(&entry.path.case_fold()) {
                Failure::at(
                    K::CaseCollision,
                    &name,
                    format!("{name} collides with {other} on case-insensitive file systems"),
                )
            } else {
                Failure::at(
                    K::ExtraFile,
                    &name,
                    format!("{name} is in the archive but not in SHA256SUMS"),
                )
            };
            push(failures, f);
            return offsets;
        };
        let refused = if exp.seen {
            Some(Failure::at(
                K::DuplicateEntry,
                &name,
                format!("{name} appears twice"),
            ))
        } else if last_index.is_some_and(|l| exp.index < l) {
            Some(Failure::at(
                K::EntryOrder,
                &name,
                format!("{name} is out of order (entries must follow SHA256SUMS order)"),
            ))
        } else {
            size_refusal(&name, entry.size, exp.size)
        };
        if let Some(f) = refused {
            push(failures, f);
            return offsets;
        }
        exp.seen = true;
        offsets.files[exp.index] = reader.offset();
        last_index = Some(exp.index);
        let digest = match pass_data(reader, &entry, sink, None) {
            Ok(d) => d,
            Err(f) => {
                push(failures, f);
                return offsets;
            }
        };
        if let Some(f) = digest_refusal(&name, &digest, exp.sha256) {
            push(failures, f);
        }
    }
    for (path, _, _) in &sorted {
        if expected.get(path).is_some_and(|e| !e.seen) {
            push(
                failures,
                Failure::at(
                    K::MissingFile,
                    *path,
                    format!("{path} is listed in SHA256SUMS but not in the archive"),
                ),
            );
        }
    }
    if let Some(p) = &paged
        && let Expect::Seed(line) = p.cursor.expect()
    {
        push(
            failures,
            Failure::at(
                K::MissingFile,
                line.path.as_str(),
                format!(
                    "{} is listed by a seed page but not in the archive",
                    line.path
                ),
            ),
        );
    }
    offsets
}

fn push(failures: &mut Vec<Failure>, f: Failure) {
    if failures.len() < MAX_FAILURES {
        failures.push(f);
    }
}

fn size_refusal(name: &str, size: u64, signed: u64) -> Option<Failure> {
    (size != signed).then(|| {
        Failure::at(
            K::SizeMismatch,
            name,
            format!("{name} is {size} bytes; the manifest says {signed}"),
        )
    })
}

fn digest_refusal(name: &str, actual: &str, signed: &str) -> Option<Failure> {
    (actual != signed).then(|| {
        Failure::at(
            K::DigestMismatch,
            name,
            format!("{name}: SHA-256 {actual} does not match the signed {signed}"),
        )
    })
}

/// Reads the entry's data through `sink`, hashing it (and keeping a copy in `keep`); returns
/// its SHA-256 in hex.
fn pass_data(
    reader: &mut KitReader,
    entry: &PayloadEntry,
    sink: &mut dyn PayloadSink,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<String, Failure> {
    let name = entry.path.as_str();
    let mut hasher = Sha256::new();
    sink.begin(&entry.path, entry.size)
        .map_err(|e| sink_failure(name, e))?;
    reader
        .read_data(|chunk| {
            hasher.update(chunk);
            if let Some(k) = keep.as_mut() {
                k.extend_from_slice(chunk);
            }
            sink.write(chunk)
        })
        .map_err(Failure::from)?;
    sink.end().map_err(|e| sink_failure(name, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The pages-and-seeds part of an `offkit/v2` payload walk.
struct Paged<'m> {
    cursor: PageCursor<'m>,
    /// A 128-bit digest of each seed's lower-cased path, for the case-collision rule (16 bytes
    /// a seed, not the path).
    folded: HashSet<u128>,
    /// Whether the first page or seed was met (every other file comes before).
    started: bool,
}

impl Paged<'_> {
    /// Takes the page or seed `entry`: checked against the cursor before its data is read, its
    /// data passed through `sink`.
    fn take(
        &mut self,
        reader: &mut KitReader,
        entry: &PayloadEntry,
        expected: &mut HashMap<&str, Expected<'_>>,
        sink: &mut dyn PayloadSink,
        offsets: &mut Offsets,
    ) -> Result<(), Failure> {
        let name = entry.path.as_str();
        if is_page_path(&entry.path) {
            let page = match self.cursor.expect() {
                Expect::Page(p) if p.file.path == entry.path => p,
                other => return Err(misplaced(name, other, expected.get(name))),
            };
            if let Some(f) = size_refusal(name, entry.size, page.file.size) {
                return Err(f);
            }
            let exp = expected
                .get_mut(name)
                .ok_or_else(|| Failure::at(K::Internal, name, "a signed page is not indexed"))?;
            exp.seen = true;
            offsets.files[exp.index] = reader.offset();
            // At most `MAX_PAGE_BYTES` (the signed size was bounded by the manifest's check).
            let mut bytes = Vec::with_capacity(entry.size as usize);
            pass_data(reader, entry, sink, Some(&mut bytes))?;
            return self.cursor.take_page(&bytes).map_err(page_failure);
        }
        if let Expect::Seed(line) = self.cursor.expect()
            && line.path != entry.path
        {
            // Not the seed listed next: the listed one is missing (the entry sorts after it),
            // or the entry is not listed here.
            return Err(if line.path.as_str().as_bytes() < name.as_bytes() {
                Failure::at(
                    K::MissingFile,
                    line.path.as_str(),
                    format!(
                        "{} is listed by a seed page but not in the archive (found {name})",
                        line.path
                    ),
                )
            } else {
                Failure::at(
                    K::ExtraFile,
                    name,
                    format!("{name} is in the archive but no seed page lists it there"),
                )
            });
        }
        if let Expect::Page(p) = self.cursor.expect() {
            return Err(Failure::at(
                K::EntryOrder,
                name,
                format!("{name} comes where the page {} should", p.file.path),
            ));
        }
        let signed = self
            .cursor
            .take_seed(&entry.path, entry.size)
            .map_err(|e| match e {
                PageError::SeedSize { entry, problem } => {
                    Failure::at(K::SizeMismatch, &entry, format!("{entry}: {problem}"))
                }
                PageError::Unexpected { entry, problem } => {
                    Failure::at(K::ExtraFile, &entry, format!("{entry}: {problem}"))
                }
                other => page_failure(other),
            })?;
        if !self.folded.insert(folded_digest(&entry.path)) {
            return Err(Failure::at(
                K::CaseCollision,
                name,
                format!("{name} collides with another seed on case-insensitive file systems"),
            ));
        }
        offsets.seeds.push((reader.offset(), entry.size));
        let digest = pass_data(reader, entry, sink, None)?;
        match digest_refusal(name, &digest, signed.as_str()) {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

/// A page met where the cursor expects `expect`.
fn misplaced(name: &str, expect: Expect<'_>, listed: Option<&Expected<'_>>) -> Failure {
    match (listed, expect) {
        (None, _) => Failure::at(
            K::ExtraFile,
            name,
            format!("{name} is in the archive but not in SHA256SUMS"),
        ),
        (Some(e), _) if e.seen => {
            Failure::at(K::DuplicateEntry, name, format!("{name} appears twice"))
        }
        (Some(_), Expect::Seed(line)) => Failure::at(
            K::EntryOrder,
            name,
            format!(
                "{name} comes before {}, a seed of the previous page",
                line.path
            ),
        ),
        (Some(_), Expect::Page(p)) => Failure::at(
            K::EntryOrder,
            name,
            format!("{name} comes where {} should", p.file.path),
        ),
        (Some(_), Expect::Done) => {
            Failure::at(K::EntryOrder, name, format!("{name} is out of order"))
        }
    }
}

fn page_failure(e: PageError) -> Failure {
    let entry = match &e {
        PageError::Changed { page, .. }
        | PageError::Malformed { page, .. }
        | PageError::Invalid { page, .. } => page.clone(),
        PageError::Unexpected { entry, .. } | PageError::SeedSize { entry, .. } => entry.clone(),
        PageError::List(_) => layout::MANIFEST.to_owned(),
    };
    Failure::at(K::BadPage, entry, e.to_string())
}

/// The first 128 bits of the SHA-256 of the lower-cased path.
fn folded_digest(path: &KitPath) -> u128 {
    let d = Sha256::digest(path.case_fold().as_bytes());
    u128::from_be_bytes(d[..16].try_into().unwrap_or([0; 16]))
}

fn sink_failure(entry: &str, e: std::io::Error) -> Failure {
    Failure::at(K::WriteError, entry, format!("{entry}: {e}"))
}
