//! The strict streaming kit reader: entry safety and the header's shape, nothing about trust.
//!
//! [`KitReader::read_header`] reads the header entries in their fixed order (and nothing else
//! before them), bounded in size, keeping their bytes for the verifier — before authentication
//! only the envelope's and the signatures' ([`Keep::Envelope`]); [`KitReader::reread_header`]
//! reads the rest once the envelope is authenticated. [`KitReader::next_payload`]
//! then yields payload entries one at a time, each already checked to be a regular file with a
//! safe path; its data is passed to a sink without being held in memory. Every refusal is a
//! [`ReadError`] naming the entry.

use std::io::{self, Read};
use std::path::Path;

use sha2::Digest;

use crate::kit::digest::Sha256Hex;
use crate::kit::layout::{
    self, DSSE, FORMAT_MARKER, LAYOUT, Limits, MANIFEST, MAX_SIGNATURES, SIGNATURE_BYTES, SUMS,
    SUMS_SIG,
};
use crate::kit::parts::{PartError, PartsPlan};
use crate::kit::path::{KitPath, PathError};
use crate::kit::stream::{DecodeFailure, DecodedStream, StreamEnd};
use crate::kit::tar::{EntryKind, RawEntry, TarError, TarReader, header_bytes, header_difference};

/// A structural reason to refuse a kit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// `offkit-layout` names a format this offkit does not know.
    #[error("unknown kit format {found:?} (this offkit reads offkit/v1 and offkit/v2)")]
    UnknownFormat {
        /// What the layout entry says (truncated).
        found: String,
    },
    /// A payload entry comes before the signed header is complete.
    #[error("{entry}: payload entry before the signed header (expected {expected})")]
    PayloadBeforeHeader {
        /// The entry.
        entry: String,
        /// The header entry expected at this place.
        expected: &'static str,
    },
    /// A header entry is out of its fixed order or repeated.
    #[error("{entry}: header entry out of order (expected {expected})")]
    HeaderOrder {
        /// The entry.
        entry: String,
        /// The header entry expected at this place.
        expected: &'static str,
    },
    /// The detached signature entry is absent.
    #[error("SHA256SUMS.sig is missing: the kit is not signed")]
    MissingSignature,
    /// A path that could escape the extraction folder or is otherwise unsafe.
    #[error("{entry}: unsafe path: {reason}")]
    UnsafePath {
        /// The path (lossy).
        entry: String,
        /// The rule broken.
        reason: PathError,
    },
    /// A name that is not UTF-8.
    #[error("entry name is not valid UTF-8 ({reason})")]
    NonUtf8Path {
        /// The rule broken (carries the hex bytes).
        reason: PathError,
    },
    /// A symbolic link entry.
    #[error("{entry}: symbolic link to {target:?}; kits contain regular files only")]
    Symlink {
        /// The entry.
        entry: String,
        /// Its target.
        target: String,
    },
    /// A hard link entry.
    #[error("{entry}: hard link to {target:?}; kits contain regular files only")]
    HardLink {
        /// The entry.
        entry: String,
        /// Its target.
        target: String,
    },
    /// A device or FIFO entry.
    #[error("{entry}: {what} entry; kits contain regular files only")]
    SpecialFile {
        /// The entry.
        entry: String,
        /// "character device", "block device" or "FIFO".
        what: &'static str,
    },
    /// A directory, sparse file, GNU extension or unknown type.
    #[error("{entry}: unsupported entry type ({what}); kits contain regular files only")]
    UnsupportedEntry {
        /// The entry.
        entry: String,
        /// What it is.
        what: String,
    },
    /// An entry larger than the reader accepts.
    #[error("{entry}: {size} bytes is larger than the {limit}-byte limit for this entry")]
    OversizedEntry {
        /// The entry.
        entry: String,
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The archive ends early.
    #[error("the kit is truncated{}", at.map(|o| format!(" (uncompressed offset {o})")).unwrap_or_default())]
    Truncated {
        /// Uncompressed offset, when known.
        at: Option<u64>,
    },
    /// The compression layer is valid zstd but not what `offkit build` writes.
    #[error("non-canonical compression: {message}")]
    NonCanonicalCompression {
        /// What is wrong.
        message: String,
    },
    /// An entry's tar header (or the padding after its data) is not what `offkit build` writes.
    #[error("{entry}: {what} differs from what offkit build writes")]
    NonCanonicalEntry {
        /// The entry.
        entry: String,
        /// What differs: the first header field, or the padding.
        what: String,
    },
    /// A signature entry is not in its canonical form.
    #[error("{entry}: {reason}")]
    NonCanonicalSignature {
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The compression layer is invalid.
    #[error("corrupt compression: {message}")]
    CorruptCompression {
        /// Decoder message.
        message: String,
    },
    /// More data than declared.
    #[error("decompressed data exceeds the {limit} bytes the kit declares (decompression bomb)")]
    DecompressionBomb {
        /// The bound.
        limit: u64,
    },
    /// Data after the end of the archive.
    #[error("unexpected data after the end of the archive (uncompressed offset {offset})")]
    TrailingData {
        /// Where it starts.
        offset: u64,
    },
    /// A malformed tar header.
    #[error("malformed archive at uncompressed offset {offset}: {reason}")]
    MalformedTar {
        /// Where.
        offset: u64,
        /// What.
        reason: String,
    },
    /// The kit file could not be read.
    #[error("cannot read the kit: {0}")]
    Io(String),
    /// A part of a split kit is missing, cut wrong, or not the kit's.
    #[error(transparent)]
    Part(#[from] PartError),
    /// The kit file read a second time is not what the first read found.
    #[error("{entry}: the kit file changed while it was being verified")]
    ChangedWhileReading {
        /// The first header entry that differs.
        entry: String,
    },
    /// The consumer of an entry's data failed (e.g. writing during extraction).
    #[error("{entry}: {source}")]
    Sink {
        /// The entry.
        entry: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ReadError {
    fn from_tar(e: TarError, entry: Option<&str>) -> ReadError {
        match e {
            TarError::Stream(io) => match DecodeFailure::of(&io) {
                Some(DecodeFailure::Truncated) => ReadError::Truncated { at: None },
                Some(DecodeFailure::Corrupt(m)) => {
                    ReadError::CorruptCompression { message: m.clone() }
                }
                Some(DecodeFailure::LimitExceeded { limit }) => {
                    ReadError::DecompressionBomb { limit: *limit }
                }
                Some(DecodeFailure::FrameShape(e)) => ReadError::NonCanonicalCompression {
                    message: e.to_string(),
                },
                Some(DecodeFailure::Io(m)) => ReadError::Io(m.clone()),
                Some(DecodeFailure::Part(p)) => ReadError::Part(p.clone()),
                None => ReadError::Io(io.to_string()),
            },
            TarError::Truncated { offset } => ReadError::Truncated { at: Some(offset) },
            TarError::BadHeader { offset, reason } => ReadError::MalformedTar { offset, reason },
            TarError::TrailingData { offset } => ReadError::TrailingData { offset },
            TarError::ExcessPadding { max } => ReadError::DecompressionBomb { limit: max },
            TarError::NonZeroPadding { offset } => ReadError::NonCanonicalEntry {
                entry: entry.unwrap_or("").to_owned(),
                what: format!(
                    "the zero padding after its data (a non-zero byte at offset {offset})"
                ),
            },
            TarError::Sink(source) => ReadError::Sink {
                entry: entry.unwrap_or("").to_owned(),
                source,
            },
        }
    }
}

/// A header entry's bytes and digest.
#[derive(Debug, Clone)]
pub struct HeaderEntry {
    /// The bytes (empty when the entry was only hashed: [`Keep::Envelope`]).
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub sha256: Sha256Hex,
}

/// What [`KitReader::read_header`] keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every header entry (after authentication, or to show an unauthenticated kit).
    All,
    /// The envelope and the signatures; `manifest.json` and `SHA256SUMS` are hashed, not kept
    /// (before authentication: [`KitReader::reread_header`] reads them once it has passed).
    Envelope,
}

/// The header entries, as read (not yet authenticated).
#[derive(Debug, Clone)]
pub struct RawHeader {
    /// `offkit-layout`.
    pub layout: HeaderEntry,
    /// `manifest.json`.
    pub manifest: HeaderEntry,
    /// `SHA256SUMS`.
    pub sums: HeaderEntry,
    /// `SHA256SUMS.sig`.
    pub sums_sig: Vec<u8>,
    /// `SHA256SUMS.<keyid>.sig` of co-signers.
    pub cosigner_sigs: Vec<(String, Vec<u8>)>,
    /// `trust/N.root.json`: the trust versions the kit carries (version, bytes), consecutive.
    pub trust_versions: Vec<(u64, Vec<u8>)>,
    /// `provenance.dsse.json`: the kit's SLSA provenance, when it carries one.
    pub provenance: Option<Vec<u8>>,
    /// `manifest.dsse.json`.
    pub dsse: HeaderEntry,
    /// Uncompressed bytes of the header.
    pub header_bytes: u64,
    /// The modification time every entry's tar header carries (the manifest's `created`, once
    /// authenticated).
    pub mtime: u64,
}

/// A payload entry about to be read.
#[derive(Debug, Clone)]
pub struct PayloadEntry {
    /// Its (safe) path.
    pub path: KitPath,
    /// Its size.
    pub size: u64,
}

/// Reads a kit file.
pub struct KitReader {
    tar: TarReader<DecodedStream>,
    limits: Limits,
    current: Option<String>,
    /// The first entry's mtime, which every entry must carry.
    mtime: Option<u64>,
}

impl KitReader {
    /// Opens a kit file; decompression starts on a background thread.
    ///
    /// `path` may name the parts of a split kit ([`crate::kit::parts::find`]): the reader then
    /// reads part 1 alone, which holds the header; [`KitReader::open_parts`] reads the whole kit
    /// from its parts once the header's frame index is authenticated.
    pub fn open(path: &Path, limits: Limits) -> Result<KitReader, ReadError> {
        let file = match crate::kit::parts::find(path)? {
            Some(parts) => parts.files[0].clone(),
            None if path.is_dir() => {
                let what = if path.join("kit.toml").is_file() {
                    "a kit source folder, not a kit: build it first (offkit build DIR --key KEY --out OUT) and give the .kit.tar.zst file"
                } else {
                    "a folder with no kit in it (give the .kit.tar.zst file, the first part of a split kit, or the folder of its parts)"
                };
                return Err(ReadError::Io(format!("{} is {what}", path.display())));
            }
            None => path.to_path_buf(),
        };
        let stream = DecodedStream::open(&file, Self::initial_limit(&limits))
            .map_err(|e| ReadError::Io(format!("{}: {e}", file.display())))?;
        Ok(Self::over(stream, limits))
    }

    /// Opens the whole kit from its parts, each checked against the signed frame index before
    /// it is used ([`PartsPlan`]), and reads its header again: it must be `first`, the header
    /// authenticated from part 1 (else [`ReadError::ChangedWhileReading`]). The reader is left
    /// at the first payload entry.
    pub fn open_parts(
        plan: &PartsPlan,
        limits: Limits,
        first: &RawHeader,
    ) -> Result<(KitReader, RawHeader), ReadError> {
        let stream =
            DecodedStream::open_reader(Box::new(plan.reader()), Self::initial_limit(&limits))
                .map_err(|e| ReadError::Io(format!("{}: {e}", plan.parts().first_name())))?;
        let mut reader = Self::over(stream, limits);
        let again = reader.read_header(Keep::All)?;
        same_header(first, &again)?;
        Ok((reader, again))
    }

    /// Opens the whole kit again — `files`, the kit file or its parts in order, as one stream —
    /// decompressing its frames on `workers` threads ([`DecodedStream::open_frames`]): the header
    /// frame is `header_frame` compressed bytes, the payload frames are the signed `index`. The
    /// header is read again and must be `first`, the one authenticated (else
    /// [`ReadError::ChangedWhileReading`]); the reader is left at the first payload entry.
    pub fn open_frames(
        input: Box<dyn Read + Send>,
        header_frame: u64,
        index: &[crate::kit::manifest::FrameEntry],
        workers: usize,
        limits: Limits,
        first: &RawHeader,
    ) -> Result<(KitReader, RawHeader), ReadError> {
        let sizes = std::iter::once(header_frame)
            .chain(index.iter().map(|f| f.size))
            .collect();
        let stream =
            DecodedStream::open_frames(input, sizes, workers, Self::initial_limit(&limits))
                .map_err(|e| ReadError::Io(e.to_string()))?;
        let mut reader = Self::over(stream, limits);
        let again = reader.read_header(Keep::All)?;
        same_header(first, &again)?;
        Ok((reader, again))
    }

    /// A block more than the header budget: room for the first payload entry's header.
    fn initial_limit(limits: &Limits) -> u64 {
        limits.header_bytes.saturating_add(2 * 512)
    }

    fn over(stream: DecodedStream, limits: Limits) -> KitReader {
        KitReader {
            tar: TarReader::new(stream),
            limits,
            current: None,
            mtime: None,
        }
    }

    /// The bounds this reader enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sets the cap on the total decompressed size (from the start of the stream).
    pub fn set_total_limit(&mut self, limit: u64) {
        self.tar_stream_mut().set_limit(limit);
    }

    /// Uncompressed bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.tar.offset()
    }

    fn tar_stream_mut(&mut self) -> &mut DecodedStream {
        self.tar.inner_mut()
    }

    /// Reads the header entries in their fixed order, keeping what `keep` says.
    pub fn read_header(&mut self, keep: Keep) -> Result<RawHeader, ReadError> {
        let layout = self.header_entry(LAYOUT, true)?;
        if !layout::FORMATS
            .iter()
            .any(|(marker, _)| layout.bytes == marker.as_bytes())
        {
            let shown: String = String::from_utf8_lossy(&layout.bytes)
                .chars()
                .take(64)
                .collect();
            return Err(ReadError::UnknownFormat {
                found: shown.trim_end().to_owned(),
            });
        }
        let manifest = self.header_entry(MANIFEST, keep == Keep::All)?;
        let sums = self.header_entry(SUMS, keep == Keep::All)?;
        let sums_sig = self.header_entry(SUMS_SIG, true)?.bytes;
        check_signature_size(SUMS_SIG, sums_sig.len() as u64)?;
        let mut cosigner_sigs: Vec<(String, Vec<u8>)> = Vec::new();
        let mut trust_versions: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut provenance: Option<Vec<u8>> = None;
        loop {
            let entry = self.next_checked()?;
            let name = entry.path.as_str().to_owned();
            if name == layout::PROVENANCE {
                if provenance.is_some() {
                    return Err(ReadError::HeaderOrder {
                        entry: name,
                        expected: DSSE,
                    });
                }
                if entry.size > layout::MAX_PROVENANCE_BYTES {
                    return Err(ReadError::OversizedEntry {
                        entry: name,
                        size: entry.size,
                        limit: layout::MAX_PROVENANCE_BYTES,
                    });
                }
                provenance = Some(self.read_small(&name, entry.size)?);
                continue;
            }
            if provenance.is_some() {
                // Only the envelope follows the provenance.
                self.check_expected(&name, DSSE)?;
            }
            if let Some(n) = layout::parse_trust_version_name(&name) {
                self.read_trust_version(&name, n, entry.size, &mut trust_versions)?;
                continue;
            }
            if let Some(keyid) = layout::parse_cosigner_sig_name(&name) {
                if !trust_versions.is_empty() {
                    return Err(ReadError::HeaderOrder {
                        entry: name,
                        expected: DSSE,
                    });
                }
                // Sorted by keyid, as `offkit sign` writes them: a repeat is out of order, found
                // in constant time.
                if cosigner_sigs
                    .last()
                    .is_some_and(|(k, _)| k.as_str() >= keyid)
                {
                    return Err(ReadError::NonCanonicalSignature {
                        entry: name,
                        reason: "co-signer signatures are repeated or not in keyid order".into(),
                    });
                }
                if cosigner_sigs.len() + 1 >= MAX_SIGNATURES {
                    return Err(ReadError::NonCanonicalSignature {
                        entry: name,
                        reason: format!(
                            "more than {MAX_SIGNATURES} detached signatures (the most a kit may carry)"
                        ),
                    });
                }
                check_signature_size(&name, entry.size)?;
                let keyid = keyid.to_owned();
                let bytes = self.read_small(&name, entry.size)?;
                cosigner_sigs.push((keyid, bytes));
                continue;
            }
            self.check_expected(&name, DSSE)?;
            if entry.size > self.limits.envelope_bytes {
                return Err(ReadError::OversizedEntry {
                    entry: name,
                    size: entry.size,
                    limit: self.limits.envelope_bytes,
                });
            }
            let bytes = self.read_small(&name, entry.size)?;
            let dsse = HeaderEntry {
                sha256: Sha256Hex::of(&bytes),
                bytes,
            };
            return Ok(RawHeader {
                layout,
                manifest,
                sums,
                sums_sig,
                cosigner_sigs,
                trust_versions,
                provenance,
                dsse,
                header_bytes: self.offset(),
                mtime: self.mtime.unwrap_or(0),
            });
        }
    }

    /// Reads the trust version entry `name` (version `n`, `size` bytes): consecutive versions,
    /// each and all together within their limits (docs/FORMAT.md, "Limits").
    fn read_trust_version(
        &mut self,
        name: &str,
        n: u64,
        size: u64,
        versions: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<(), ReadError> {
        if let Some((last, _)) = versions.last()
            && last.checked_add(1) != Some(n)
        {
            return Err(ReadError::NonCanonicalEntry {
                entry: name.to_owned(),
                what: format!("its version (not the one after version {last})"),
            });
        }
        if versions.len() >= layout::MAX_TRUST_VERSIONS {
            return Err(ReadError::NonCanonicalEntry {
                entry: name.to_owned(),
                what: format!(
                    "the number of trust versions (more than {})",
                    layout::MAX_TRUST_VERSIONS
                ),
            });
        }
        let held: u64 = versions.iter().map(|(_, b)| b.len() as u64).sum();
        let limit = layout::MAX_TRUST_VERSION_BYTES.min(layout::MAX_TRUST_BYTES - held);
        if size > limit {
            return Err(ReadError::OversizedEntry {
                entry: name.to_owned(),
                size,
                limit,
            });
        }
        let bytes = self.read_small(name, size)?;
        versions.push((n, bytes));
        Ok(())
    }

    /// Reads the header entry `expected`; with `keep` false, hashes it without keeping it.
    fn header_entry(
        &mut self,
        expected: &'static str,
        keep: bool,
    ) -> Result<HeaderEntry, ReadError> {
        let entry = self.next_checked()?;
        let name = entry.path.as_str().to_owned();
        self.check_expected(&name, expected)?;
        // Entries of a fixed size are refused by their declared size, before any byte is held.
        if expected == SUMS_SIG {
            check_signature_size(SUMS_SIG, entry.size)?;
        }
        if expected == LAYOUT && entry.size != FORMAT_MARKER.len() as u64 {
            return Err(ReadError::UnknownFormat {
                found: format!("an offkit-layout entry of {} bytes", entry.size),
            });
        }
        if keep {
            let bytes = self.read_small(&name, entry.size)?;
            return Ok(HeaderEntry {
                sha256: Sha256Hex::of(&bytes),
                bytes,
            });
        }
        self.check_budget(&name, entry.size)?;
        let mut h = sha2::Sha256::new();
        self.read_data(|c| {
            h.update(c);
            Ok(())
        })?;
        Ok(HeaderEntry {
            bytes: Vec::new(),
            sha256: Sha256Hex::from_hasher(h),
        })
    }

    /// Reads the header of the kit at `path` again, keeping every entry, and checks that it is
    /// the header `first` found entry for entry: how a header authenticated from its envelope and
    /// digests ([`Keep::Envelope`]) gets its `manifest.json` and `SHA256SUMS` bytes.
    pub fn reread_header(
        path: &Path,
        limits: Limits,
        first: &RawHeader,
    ) -> Result<RawHeader, ReadError> {
        let again = KitReader::open(path, limits)?.read_header(Keep::All)?;
        same_header(first, &again)?;
        Ok(again)
    }

    fn check_expected(&self, name: &str, expected: &'static str) -> Result<(), ReadError> {
        if name == expected {
            Ok(())
        } else if expected == SUMS_SIG
            && (name == DSSE
                || name == layout::PROVENANCE
                || layout::parse_trust_version_name(name).is_some()
                || layout::parse_cosigner_sig_name(name).is_some())
        {
            // A later header entry where the first detached signature belongs: it is missing.
            Err(ReadError::MissingSignature)
        } else if layout::is_header_name(name) {
            Err(ReadError::HeaderOrder {
                entry: name.to_owned(),
                expected,
            })
        } else {
            Err(ReadError::PayloadBeforeHeader {
                entry: name.to_owned(),
                expected,
            })
        }
    }

    /// Refuses a header entry of `size` bytes past what is left of the header budget.
    fn check_budget(&self, name: &str, size: u64) -> Result<(), ReadError> {
        let left = self.limits.header_bytes.saturating_sub(self.offset());
        if size > left {
            return Err(ReadError::OversizedEntry {
                entry: name.to_owned(),
                size,
                limit: left,
            });
        }
        Ok(())
    }

    /// Reads a header entry's data, within what is left of the header budget.
    fn read_small(&mut self, name: &str, size: u64) -> Result<Vec<u8>, ReadError> {
        self.check_budget(name, size)?;
        let mut bytes = Vec::with_capacity(size as usize);
        self.tar
            .read_data(|c| {
                bytes.extend_from_slice(c);
                Ok(())
            })
            .map_err(|e| ReadError::from_tar(e, Some(name)))?;
        Ok(bytes)
    }

    /// The next payload entry (checked: regular file, safe path, within the size limit), or
    /// `None` at the end-of-archive marker. The previous entry's data is skipped if unread.
    pub fn next_payload(&mut self) -> Result<Option<PayloadEntry>, ReadError> {
        match self.next_raw()? {
            None => Ok(None),
            Some(raw) => {
                let entry = self.check_entry(raw)?;
                if entry.size > self.limits.payload_entry_bytes {
                    return Err(ReadError::OversizedEntry {
                        entry: entry.path.to_string(),
                        size: entry.size,
                        limit: self.limits.payload_entry_bytes,
                    });
                }
                Ok(Some(entry))
            }
        }
    }

    /// Streams the current entry's data to `sink`.
    pub fn read_data(
        &mut self,
        sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ReadError> {
        let entry = self.current.clone();
        self.tar
            .read_data(sink)
            .map_err(|e| ReadError::from_tar(e, entry.as_deref()))
    }

    /// After the end-of-archive marker: checks nothing but zero padding follows, and returns the
    /// kit file's SHA-256 and size.
    pub fn finish(mut self) -> Result<StreamEnd, ReadError> {
        let max = self.limits.trailing_zero_bytes;
        self.tar
            .finish(max)
            .map_err(|e| ReadError::from_tar(e, None))?;
        self.tar
            .inner_mut()
            .end()
            .cloned()
            .ok_or_else(|| ReadError::Io("the decompression thread ended without a result".into()))
    }

    fn next_checked(&mut self) -> Result<PayloadEntry, ReadError> {
        match self.next_raw()? {
            Some(raw) => self.check_entry(raw),
            None => Err(ReadError::Truncated {
                at: Some(self.offset()),
            }),
        }
    }

    fn next_raw(&mut self) -> Result<Option<RawEntry>, ReadError> {
        let current = self.current.take();
        self.tar
            .next_entry()
            .map_err(|e| ReadError::from_tar(e, current.as_deref()))
    }

    fn check_entry(&mut self, raw: RawEntry) -> Result<PayloadEntry, ReadError> {
        let shown = String::from_utf8_lossy(&raw.path).into_owned();
        let target = String::from_utf8_lossy(&raw.link).into_owned();
        match raw.kind {
            EntryKind::Regular => {}
            EntryKind::Symlink => {
                return Err(ReadError::Symlink {
                    entry: shown,
                    target,
                });
            }
            EntryKind::HardLink => {
                return Err(ReadError::HardLink {
                    entry: shown,
                    target,
                });
            }
            EntryKind::CharDevice => {
                return Err(ReadError::SpecialFile {
                    entry: shown,
                    what: "character device",
                });
            }
            EntryKind::BlockDevice => {
                return Err(ReadError::SpecialFile {
                    entry: shown,
                    what: "block device",
                });
            }
            EntryKind::Fifo => {
                return Err(ReadError::SpecialFile {
                    entry: shown,
                    what: "FIFO",
                });
            }
            other => {
                let what = match other {
                    EntryKind::Directory => "directory".to_owned(),
                    EntryKind::Sparse => "sparse file".to_owned(),
                    EntryKind::GnuLongName => "GNU long-name extension".to_owned(),
                    EntryKind::Other(t) => format!("type flag {:?}", t as char),
                    _ => format!("{other:?}"),
                };
                return Err(ReadError::UnsupportedEntry { entry: shown, what });
            }
        }
        let path = KitPath::from_bytes(&raw.path).map_err(|reason| {
            if reason.is_non_utf8() {
                ReadError::NonUtf8Path { reason }
            } else {
                ReadError::UnsafePath {
                    entry: shown.clone(),
                    reason,
                }
            }
        })?;
        let mtime = *self.mtime.get_or_insert(raw.mtime);
        if let Some(field) =
            header_difference(&raw.header, &header_bytes(path.as_str(), raw.size, mtime))
        {
            return Err(ReadError::NonCanonicalEntry {
                entry: path.to_string(),
                what: format!("the tar header's {field}"),
            });
        }
        self.current = Some(path.to_string());
        Ok(PayloadEntry {
            path,
            size: raw.size,
        })
    }
}

/// Refuses `again` when it is not the header `first` (entry for entry, by digest).
fn same_header(first: &RawHeader, again: &RawHeader) -> Result<(), ReadError> {
    let differs = [
        (LAYOUT, again.layout.sha256 != first.layout.sha256),
        (MANIFEST, again.manifest.sha256 != first.manifest.sha256),
        (SUMS, again.sums.sha256 != first.sums.sha256),
        (SUMS_SIG, again.sums_sig != first.sums_sig),
        (DSSE, again.cosigner_sigs != first.cosigner_sigs),
        (DSSE, again.trust_versions != first.trust_versions),
        (layout::PROVENANCE, again.provenance != first.provenance),
        (DSSE, again.dsse.sha256 != first.dsse.sha256),
        (
            DSSE,
            (again.header_bytes, again.mtime) != (first.header_bytes, first.mtime),
        ),
    ];
    match differs.iter().find(|(_, d)| *d) {
        Some((entry, _)) => Err(ReadError::ChangedWhileReading {
            entry: (*entry).to_owned(),
        }),
        None => Ok(()),
    }
}

/// A detached signature entry is a raw Ed25519 signature: exactly [`SIGNATURE_BYTES`] bytes.
fn check_signature_size(entry: &str, size: u64) -> Result<(), ReadError> {
    if size == SIGNATURE_BYTES {
        return Ok(());
    }
    Err(ReadError::NonCanonicalSignature {
        entry: entry.to_owned(),
        reason: format!(
            "{size} bytes; a detached signature is a raw {SIGNATURE_BYTES}-byte Ed25519 signature"
        ),
    })
}
