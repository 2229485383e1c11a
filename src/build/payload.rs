//! The payload pass of a build: read each source file once, hash it, and pack it (tar header,
//! data, padding) into parallel-compressed frames. The frames end at the kit SBOM's place in the
//! path order so the SBOM, made after this pass, can be slotted in between.

use std::fs::File;
use std::io::{self, Read};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::frames::{Finished, FrameWriter};
use super::source::{Role, SourceFile};
use super::{BuildError, BuildOptions};
use crate::kit::digest::Sha256Hex;
use crate::kit::layout::KIT_SBOM;
use crate::kit::manifest::FrameEntry;
use crate::kit::migration_name::TxMode;
use crate::kit::tar::{header_bytes, padding};

/// Largest migration file accepted (migrations are read whole to check they are UTF-8).
const MAX_MIGRATION_BYTES: u64 = 256 << 20;

/// What the pass learnt about one file.
#[derive(Debug, Clone)]
pub struct FileFacts {
    /// SHA-256 of the bytes packed.
    pub sha256: Sha256Hex,
    /// Lowercase hex SHA-1 (for the SPDX SBOM).
    pub sha1: String,
    /// Bytes packed.
    pub size: u64,
    /// For migrations: how they run (the no-transaction marker).
    pub tx: TxMode,
    /// For migrations: their destructive statements, classified from the bytes packed.
    pub findings: Vec<crate::migrate::destructive::Finding>,
}

/// The payload frames and what they hold.
pub(super) struct Packed {
    /// Facts per source file, in the source's (path) order.
    pub facts: Vec<FileFacts>,
    /// The payload frames, by compressed size and SHA-256.
    pub frames: Vec<FrameEntry>,
    /// Where frames are slotted in, in order: the kit SBOM's place, then (a paged kit) each
    /// page's, just before its first seed. Each is an offset in the payload frames and the
    /// number of frames before it.
    pub slots: Vec<(u64, usize)>,
}

/// Packs `files` (in path order), ending a frame at the kit SBOM's place and before each file
/// whose index is in `page_starts` (ascending: the first seed of each page).
pub(super) fn pack(
    files: &[SourceFile],
    page_starts: &[usize],
    mtime: u64,
    opts: &BuildOptions,
    out: File,
    shown: &str,
) -> Result<Packed, BuildError> {
    let write_error = pipeline_error(shown);
    let mut w = FrameWriter::new(
        io::BufWriter::with_capacity(1 << 20, out),
        opts.level,
        opts.threads,
    )
    .map_err(write_error)?;
    let mut facts = Vec::with_capacity(files.len());
    let mut marked = false;
    let mut result = Ok(());
    let mut page_starts = page_starts.iter().peekable();
    for (i, f) in files.iter().enumerate() {
        if !marked && f.path.as_str() > KIT_SBOM {
            marked = true;
            if let Err(e) = w.mark() {
                result = Err(write_error(e));
                break;
            }
        }
        if page_starts.next_if_eq(&&i).is_some()
            && let Err(e) = w.mark()
        {
            result = Err(write_error(e));
            break;
        }
        match pack_file(&mut w, f, mtime, shown) {
            Ok(fact) => facts.push(fact),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() && !marked {
        result = w.mark().map_err(write_error);
    }
    if result.is_ok() {
        result = w.write_all(super::end_of_archive()).map_err(write_error);
    }
    // Always stop the threads; a writer failure is the more precise error.
    let finished = w.finish();
    let Finished { marks, frames, .. } = match (result, finished) {
        (_, Err(source)) => return Err(write_error(source)),
        (Err(e), _) => return Err(e),
        (Ok(()), Ok(done)) => done,
    };
    Ok(Packed {
        facts,
        frames,
        slots: marks,
    })
}

/// A failure of the compression pipeline, writing into `shown`.
fn pipeline_error(shown: &str) -> impl Fn(io::Error) -> BuildError + Copy + '_ {
    move |source| BuildError::Write {
        path: shown.to_owned(),
        source,
    }
}

fn pack_file(
    w: &mut FrameWriter,
    f: &SourceFile,
    mtime: u64,
    shown: &str,
) -> Result<FileFacts, BuildError> {
    let src_err = |message: String| BuildError::Source {
        path: f.path.to_string(),
        message,
    };
    let mut file = File::open(&f.disk).map_err(|e| src_err(e.to_string()))?;
    let size = file.metadata().map_err(|e| src_err(e.to_string()))?.len();
    let (mut sha256, mut sha1) = (Sha256::new(), Sha1::new());
    w.write_all(&header_bytes(f.path.as_str(), size, mtime))
        .map_err(pipeline_error(shown))?;
    let mut tx = TxMode::Transaction;
    let mut findings = Vec::new();
    if matches!(f.role, Role::Migration { .. } | Role::Rollback { .. }) {
        if size > MAX_MIGRATION_BYTES {
            return Err(src_err(format!(
                "migration larger than {MAX_MIGRATION_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| src_err(e.to_string()))?;
        if bytes.len() as u64 != size {
            return Err(src_err("file changed while the kit was being built".into()));
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Err(BuildError::NotUtf8 {
                path: f.path.to_string(),
            });
        };
        if matches!(f.role, Role::Migration { .. }) {
            findings = crate::migrate::destructive::classify(text);
        }
        tx = TxMode::of(&bytes);
        sha256.update(&bytes);
        sha1.update(&bytes);
        w.write_all(&bytes).map_err(pipeline_error(shown))?;
    } else {
        let mut remaining = size;
        while remaining > 0 {
            let max = usize::try_from(remaining).unwrap_or(usize::MAX);
            let mut read_err = None;
            let n = w
                .fill_with(max, |buf| {
                    crate::util::read_full(&mut file, buf).map_err(|e| {
                        read_err = Some(e.to_string());
                        io::Error::other("read failed")
                    })
                })
                .map_err(|e| match read_err.take() {
                    Some(m) => src_err(m),
                    None => pipeline_error(shown)(e),
                })?;
            if n == 0 {
                return Err(src_err("file shrank while the kit was being built".into()));
            }
            let chunk = w.tail(n);
            sha256.update(chunk);
            sha1.update(chunk);
            remaining -= n as u64;
        }
        let mut probe = [0u8; 1];
        if file.read(&mut probe).map_err(|e| src_err(e.to_string()))? != 0 {
            return Err(src_err("file grew while the kit was being built".into()));
        }
    }
    w.write_all(&[0u8; 512][..padding(size)])
        .map_err(pipeline_error(shown))?;
    Ok(FileFacts {
        sha256: Sha256Hex::from_hasher(sha256),
        sha1: hex::encode(sha1.finalize()),
        size,
        tx,
        findings,
    })
}
