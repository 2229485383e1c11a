//! The payload pass: each entry, in SHA256SUMS order, hashed as it streams past and compared with
//! the signed digest, its data handed to a [`PayloadSink`] (which may keep it). The decompressed
//! size is bounded by what the authenticated manifest declares, so a decompression bomb is an
//! error, not work.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::kit::layout;
use crate::kit::manifest::Manifest;
use crate::kit::path::KitPath;
use crate::kit::reader::KitReader;
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

/// Streams every payload entry through `sink`, collecting failures. Returns where each file's
/// data starts in the uncompressed stream, in [`sorted_paths`] order (for reading a file again
/// from the kit through its frame index, [`crate::kit::random`]).
pub(super) fn stream(
    reader: &mut KitReader,
    manifest: &Manifest,
    sink: &mut dyn PayloadSink,
    failures: &mut Vec<Failure>,
) -> Vec<u64> {
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
    let mut offsets = vec![u64::MAX; sorted.len()];
    let mut last_index: Option<usize> = None;
    let push = |failures: &mut Vec<Failure>, f: Failure| {
        if failures.len() < MAX_FAILURES {
            failures.push(f);
        }
    };
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
        } else if entry.size != exp.size {
            Some(Failure::at(
                K::SizeMismatch,
                &name,
                format!(
                    "{name} is {} bytes; the manifest says {}",
                    entry.size, exp.size
                ),
            ))
        } else {
            None
        };
        if let Some(f) = refused {
            push(failures, f);
            return offsets;
        }
        exp.seen = true;
        offsets[exp.index] = reader.offset();
        last_index = Some(exp.index);
        let mut hasher = Sha256::new();
        let result = sink
            .begin(&entry.path, entry.size)
            .map_err(|e| sink_failure(&name, e))
            .and_then(|()| {
                reader
                    .read_data(|chunk| {
                        hasher.update(chunk);
                        sink.write(chunk)
                    })
                    .map_err(Failure::from)
            });
        if let Err(f) = result.and_then(|()| sink.end().map_err(|e| sink_failure(&name, e))) {
            push(failures, f);
            return offsets;
        }
        let actual = hex::encode(hasher.finalize());
        if actual != exp.sha256 {
            push(
                failures,
                Failure::at(
                    K::DigestMismatch,
                    &name,
                    format!(
                        "{name}: SHA-256 {actual} does not match the signed {}",
                        exp.sha256
                    ),
                ),
            );
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
    offsets
}

fn sink_failure(entry: &str, e: std::io::Error) -> Failure {
    Failure::at(K::WriteError, entry, format!("{entry}: {e}"))
}
