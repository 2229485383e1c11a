//! zstd frames of a kit: how one is compressed, how the header frame is written, and where the
//! first frame ends.
//!
//! The header entries (everything up to and including `manifest.dsse.json`) are one frame of
//! their own, always at [`HEADER_LEVEL`], so that `offkit sign` can rewrite that frame alone and
//! copy the payload frames byte for byte. [`header_frame`] is the one writer of that frame, used
//! by `build` and by `sign`.

use std::io::{self, Read};

use crate::kit::layout::{
    self, DSSE, LAYOUT, MANIFEST, MAX_ENVELOPE_BYTES, MAX_HEADER_BYTES, MAX_HEADER_FRAME_BYTES,
    MAX_SIGNATURES, SUMS, SUMS_SIG,
};
use crate::kit::tar::{header_bytes, padding};

/// zstd level of the header frame, whatever `--level` says: the header is small, and a fixed
/// level lets `offkit sign` rewrite it the same way.
pub const HEADER_LEVEL: i32 = 19;

/// A zstd compressor configured the offkit way for `level`: each frame carries its content size
/// and a checksum.
pub fn new_compressor(level: i32) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_checksum(true)?;
    c.include_contentsize(true)?;
    Ok(c)
}

/// Compresses one block into a single frame.
pub fn compress_frame(
    compressor: &mut zstd::bulk::Compressor<'_>,
    block: &[u8],
) -> io::Result<Vec<u8>> {
    compressor.compress(block)
}

/// Appends one tar entry (header, data, padding) to `out`.
pub fn append_entry(out: &mut Vec<u8>, name: &str, bytes: &[u8], mtime: u64) {
    out.extend(header_bytes(name, bytes.len() as u64, mtime));
    out.extend_from_slice(bytes);
    out.resize(out.len() + padding(bytes.len() as u64), 0);
}

/// The signed header's entries, as they go into the header frame.
#[derive(Debug, Clone)]
pub struct HeaderEntries<'a> {
    /// `offkit-layout`: the format marker ([`layout::FORMATS`]).
    pub layout: &'a [u8],
    /// `manifest.json`.
    pub manifest: &'a [u8],
    /// `SHA256SUMS`.
    pub sums: &'a [u8],
    /// `SHA256SUMS.sig`.
    pub sums_sig: &'a [u8],
    /// `SHA256SUMS.<keyid>.sig` of co-signers, sorted by keyid.
    pub cosigner_sigs: &'a [(String, Vec<u8>)],
    /// `trust/N.root.json`: trust versions the kit carries, consecutive.
    pub trust_versions: &'a [(u64, Vec<u8>)],
    /// `provenance.dsse.json`, when the kit carries its provenance.
    pub provenance: Option<&'a [u8]>,
    /// `manifest.dsse.json`.
    pub dsse: &'a [u8],
}

/// A header larger than any verifier reads, or with more signatures than a kit may carry
/// (docs/FORMAT.md, "Limits"): `build` and `sign` refuse to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderLimit {
    /// The header's uncompressed size passes [`MAX_HEADER_BYTES`].
    #[error(
        "the signed header would take {bytes} bytes, above the {MAX_HEADER_BYTES} bytes a verifier reads before authenticating it; the kit lists too many files (split the source into several kits)"
    )]
    TooLarge {
        /// The header's size.
        bytes: u64,
    },
    /// The DSSE envelope passes [`MAX_ENVELOPE_BYTES`].
    #[error(
        "the signed statement's envelope would take {bytes} bytes, above the {MAX_ENVELOPE_BYTES} bytes a verifier holds before authenticating it; the kit lists too many files (split the source into several kits)"
    )]
    EnvelopeTooLarge {
        /// The envelope's size.
        bytes: u64,
    },
    /// The payload files alone would take the envelope past [`MAX_ENVELOPE_BYTES`]: refused
    /// before any payload file is hashed ([`envelope_floor`]).
    #[error(
        "the signed statement's envelope would take at least {floor} bytes for these {files} files, above the {MAX_ENVELOPE_BYTES} bytes a verifier holds before authenticating it; refused before hashing them: the kit lists too many files (split the source into several kits)"
    )]
    TooManyFiles {
        /// How many payload files.
        files: u64,
        /// The fewest bytes their envelope can take.
        floor: u64,
    },
    /// More trust versions, or more of their bytes, than a kit carries.
    #[error(
        "{count} trust versions of {bytes} bytes; a kit carries at most {} of at most {} bytes each, {} bytes in all",
        layout::MAX_TRUST_VERSIONS,
        layout::MAX_TRUST_VERSION_BYTES,
        layout::MAX_TRUST_BYTES
    )]
    TrustVersions {
        /// How many.
        count: usize,
        /// Their bytes.
        bytes: u64,
    },
    /// A provenance larger than a verifier reads.
    #[error(
        "the provenance would take {bytes} bytes; a kit carries at most {}",
        layout::MAX_PROVENANCE_BYTES
    )]
    Provenance {
        /// Its size.
        bytes: u64,
    },
    /// More signatures than [`MAX_SIGNATURES`].
    #[error("{count} signatures; a kit carries at most {MAX_SIGNATURES}")]
    TooManySignatures {
        /// How many there would be.
        count: usize,
    },
}

/// The fewest bytes the DSSE envelope of a kit with these payload files can take, from their
/// paths alone (`true` for a seed): each file is a subject of the statement
/// (`{"name":…,"digest":{"sha256":…}}`, 96 bytes and the path) and an entry of the manifest in
/// its predicate (`{"path":…,"sha256":…,"size":…}`, at least 96 bytes and the path; a seed's also
/// has its key, the path less `seeds/`, and a media type of at least 8 bytes: 26 bytes and the
/// key more), all of it Base64-encoded (4 bytes for 3). JSON escaping only lengthens a path, and
/// everything else in the statement is left out, so the envelope is never smaller. `build` checks
/// it before hashing any payload file, so a source far past the limit is refused in seconds, not after
/// every file was hashed and compressed.
pub fn envelope_floor<'a>(files: impl IntoIterator<Item = (&'a str, bool)>) -> u64 {
    let statement: u64 = files
        .into_iter()
        .map(|(path, seed)| {
            let p = path.len() as u64;
            let entry = 96 + p + if seed { 26 + p.saturating_sub(6) } else { 0 };
            96 + p + entry
        })
        .sum();
    statement / 3 * 4
}

/// Refuses payload files whose envelope would pass [`MAX_ENVELOPE_BYTES`] ([`envelope_floor`]).
pub fn check_file_count<'a>(
    files: impl IntoIterator<Item = (&'a str, bool)>,
) -> Result<(), HeaderLimit> {
    let mut count = 0u64;
    let floor = envelope_floor(files.into_iter().inspect(|_| count += 1));
    if floor > MAX_ENVELOPE_BYTES {
        return Err(HeaderLimit::TooManyFiles {
            files: count,
            floor,
        });
    }
    Ok(())
}

/// The header entries as tar bytes: `offkit-layout`, `manifest.json`, `SHA256SUMS`,
/// `SHA256SUMS.sig`, the co-signers' detached signatures, the trust versions carried,
/// `manifest.dsse.json`, all with mtime
/// `mtime`. Refused when the header passes the limits a verifier enforces.
pub fn header_tar(h: &HeaderEntries<'_>, mtime: u64) -> Result<Vec<u8>, HeaderLimit> {
    let count = 1 + h.cosigner_sigs.len();
    if count > MAX_SIGNATURES {
        return Err(HeaderLimit::TooManySignatures { count });
    }
    let trust_bytes: u64 = h.trust_versions.iter().map(|(_, b)| b.len() as u64).sum();
    if h.trust_versions.len() > layout::MAX_TRUST_VERSIONS
        || trust_bytes > layout::MAX_TRUST_BYTES
        || h.trust_versions
            .iter()
            .any(|(_, b)| b.len() as u64 > layout::MAX_TRUST_VERSION_BYTES)
    {
        return Err(HeaderLimit::TrustVersions {
            count: h.trust_versions.len(),
            bytes: trust_bytes,
        });
    }
    if let Some(p) = h.provenance
        && p.len() as u64 > layout::MAX_PROVENANCE_BYTES
    {
        return Err(HeaderLimit::Provenance {
            bytes: p.len() as u64,
        });
    }
    let envelope = h.dsse.len() as u64;
    if envelope > MAX_ENVELOPE_BYTES {
        return Err(HeaderLimit::EnvelopeTooLarge { bytes: envelope });
    }
    let mut tar = Vec::new();
    append_entry(&mut tar, LAYOUT, h.layout, mtime);
    append_entry(&mut tar, MANIFEST, h.manifest, mtime);
    append_entry(&mut tar, SUMS, h.sums, mtime);
    append_entry(&mut tar, SUMS_SIG, h.sums_sig, mtime);
    for (keyid, sig) in h.cosigner_sigs {
        append_entry(&mut tar, &layout::cosigner_sig_name(keyid), sig, mtime);
    }
    for (n, bytes) in h.trust_versions {
        append_entry(&mut tar, &layout::trust_version_name(*n), bytes, mtime);
    }
    if let Some(p) = h.provenance {
        append_entry(&mut tar, layout::PROVENANCE, p, mtime);
    }
    append_entry(&mut tar, DSSE, h.dsse, mtime);
    let bytes = tar.len() as u64;
    if bytes > MAX_HEADER_BYTES {
        return Err(HeaderLimit::TooLarge { bytes });
    }
    Ok(tar)
}

/// Compresses [`header_tar`]'s bytes into the header frame, at [`HEADER_LEVEL`].
pub fn header_frame(tar: &[u8]) -> io::Result<Vec<u8>> {
    compress_frame(&mut new_compressor(HEADER_LEVEL)?, tar)
}

/// Size of the header frame of the kit file (or first part) `file`, which is left at its start
/// again ([`first_frame_len`] over the file's length).
pub fn header_frame_len(file: &mut std::fs::File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let total = file.metadata()?.len();
    let len = first_frame_len(file, total)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(len as u64)
}

/// Size of the first zstd frame of `file` (of `total` bytes), found by walking its block headers
/// ([`FrameWalker`], which also refuses frames `offkit build` never writes) in 64 KiB reads:
/// memory is fixed, and no header frame larger than [`MAX_HEADER_FRAME_BYTES`] is looked through.
pub fn first_frame_len(file: &mut impl Read, total: u64) -> io::Result<usize> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut walker = FrameWalker::default();
    let mut buf = vec![0u8; 64 << 10];
    let limit = total.min(MAX_HEADER_FRAME_BYTES);
    let mut read = 0u64;
    loop {
        if let Some(end) = walker.first_end {
            return usize::try_from(end).map_err(|_| invalid("frame too large".into()));
        }
        if read >= limit {
            return Err(invalid(format!(
                "no complete zstd frame in the first {limit} bytes (a header frame is at most {MAX_HEADER_FRAME_BYTES})"
            )));
        }
        let want = usize::try_from(limit - read)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ends inside its first zstd frame",
            ));
        }
        walker.feed(&buf[..n]).map_err(|e| invalid(e.to_string()))?;
        read += n as u64;
    }
}

/// Why the compressed layer is not what `offkit build` writes (docs/FORMAT.md, "Compression").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameShapeError {
    /// A skippable frame: data no decoder looks at and no signature covers.
    #[error("skippable zstd frame at byte {offset} of the kit (offkit writes none)")]
    Skippable {
        /// Offset of the frame in the kit file.
        offset: u64,
    },
    /// A frame whose header lacks what every offkit frame carries, or uses a dictionary.
    #[error("zstd frame at byte {offset} of the kit {reason}")]
    Header {
        /// Offset of the frame in the kit file.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// zstd magic number of a frame (RFC 8878 §3.1.1), little-endian.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

#[derive(Debug, Clone, Copy)]
enum WalkState {
    /// Collecting the 4-byte magic number.
    Magic,
    /// Collecting the frame header descriptor byte.
    Descriptor,
    /// Collecting a 3-byte block header.
    BlockHeader,
    /// Skipping `left` bytes (the rest of a frame header, a block's content, the checksum),
    /// then going on with `then`.
    Skip { left: u64, then: AfterSkip },
}

#[derive(Debug, Clone, Copy)]
enum AfterSkip {
    /// A block header follows.
    BlockHeader,
    /// The 4-byte content checksum follows (the last block ended).
    Checksum,
    /// The next frame follows.
    Magic,
}

/// Walks the compressed bytes of a kit alongside the decoder, checking the structure every
/// `offkit build` frame has (RFC 8878 §3.1.1): zstd frames only (no skippable frames), each
/// declaring its content size and carrying a content checksum, none using a dictionary. Block
/// contents are skipped, not inspected: the decoder checks them. Linear and allocation-free.
#[derive(Debug)]
pub struct FrameWalker {
    state: WalkState,
    /// Bytes collected for the field being read (magic, block header).
    field: [u8; 4],
    filled: usize,
    /// Offset in the kit file of the next byte fed.
    offset: u64,
    /// Offset of the current frame.
    frame_start: u64,
    /// Where the first frame ended, once it has.
    first_end: Option<u64>,
}

impl Default for FrameWalker {
    fn default() -> Self {
        FrameWalker {
            state: WalkState::Magic,
            field: [0; 4],
            filled: 0,
            offset: 0,
            frame_start: 0,
            first_end: None,
        }
    }
}

impl FrameWalker {
    /// Feeds the next compressed bytes.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), FrameShapeError> {
        while !data.is_empty() {
            let used = match self.state {
                WalkState::Magic => {
                    if self.filled == 0 {
                        self.frame_start = self.offset;
                    }
                    let n = self.collect(data, 4);
                    if self.filled == 4 {
                        self.filled = 0;
                        let magic = u32::from_le_bytes(self.field);
                        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
                            return Err(FrameShapeError::Skippable {
                                offset: self.frame_start,
                            });
                        }
                        if magic != ZSTD_MAGIC {
                            return Err(
                                self.header_error("does not start with the zstd magic number")
                            );
                        }
                        self.state = WalkState::Descriptor;
                    }
                    n
                }
                WalkState::Descriptor => {
                    let d = data[0];
                    let fcs_flag = d >> 6;
                    let single_segment = d & 0x20 != 0;
                    if d & 0x08 != 0 {
                        return Err(self.header_error("sets the reserved descriptor bit"));
                    }
                    if d & 0x04 == 0 {
                        return Err(self.header_error("carries no content checksum"));
                    }
                    if d & 0x03 != 0 {
                        return Err(self.header_error("names a dictionary"));
                    }
                    if fcs_flag == 0 && !single_segment {
                        return Err(self.header_error("does not declare its content size"));
                    }
                    let fcs = match fcs_flag {
                        0 => 1,
                        1 => 2,
                        2 => 4,
                        _ => 8,
                    };
                    let window = if single_segment { 0 } else { 1 };
                    self.state = WalkState::Skip {
                        left: window + fcs,
                        then: AfterSkip::BlockHeader,
                    };
                    1
                }
                WalkState::BlockHeader => {
                    let n = self.collect(data, 3);
                    if self.filled == 3 {
                        self.filled = 0;
                        let h = u32::from(self.field[0])
                            | u32::from(self.field[1]) << 8
                            | u32::from(self.field[2]) << 16;
                        if h >> 3 == 0 && h & 1 == 0 {
                            // Input that yields nothing and is not the end: an encoder never
                            // writes it, and millions of them would make a reader work for
                            // nothing.
                            return Err(self.header_error("has an empty block before its last"));
                        }
                        let left = match (h >> 1) & 3 {
                            1 => 1, // RLE: one byte repeated Block_Size times
                            3 => return Err(self.header_error("has a reserved block type")),
                            _ => u64::from(h >> 3),
                        };
                        let then = if h & 1 != 0 {
                            AfterSkip::Checksum
                        } else {
                            AfterSkip::BlockHeader
                        };
                        self.state = WalkState::Skip { left, then };
                        self.settle();
                    }
                    n
                }
                WalkState::Skip { left, then } => {
                    let n = skip(data, left);
                    self.state = WalkState::Skip {
                        left: left - n as u64,
                        then,
                    };
                    self.settle();
                    n
                }
            };
            self.offset += used as u64;
            data = &data[used..];
            if self.first_end.is_none() && self.at_frame_boundary() && self.offset > 0 {
                self.first_end = Some(self.offset);
            }
        }
        Ok(())
    }

    /// True between frames (the stream may end here).
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, WalkState::Magic) && self.filled == 0
    }

    /// Leaves a finished skip for what follows it.
    fn settle(&mut self) {
        while let WalkState::Skip { left: 0, then } = self.state {
            self.state = match then {
                AfterSkip::BlockHeader => WalkState::BlockHeader,
                AfterSkip::Checksum => WalkState::Skip {
                    left: 4,
                    then: AfterSkip::Magic,
                },
                AfterSkip::Magic => WalkState::Magic,
            };
        }
    }

    fn collect(&mut self, data: &[u8], want: usize) -> usize {
        let n = (want - self.filled).min(data.len());
        self.field[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        n
    }

    fn header_error(&self, reason: &'static str) -> FrameShapeError {
        FrameShapeError::Header {
            offset: self.frame_start,
            reason,
        }
    }
}

fn skip(data: &[u8], left: u64) -> usize {
    usize::try_from(left).unwrap_or(usize::MAX).min(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::layout::FORMAT_MARKER;

    fn walk_in_pieces(bytes: &[u8], piece: usize) -> Result<bool, FrameShapeError> {
        let mut w = FrameWalker::default();
        for chunk in bytes.chunks(piece) {
            w.feed(chunk)?;
        }
        Ok(w.at_frame_boundary())
    }

    #[test]
    fn offkit_frames_pass_in_any_chunking() {
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut c = new_compressor(3).unwrap();
        let mut bytes = compress_frame(&mut c, &a).unwrap();
        bytes.extend(compress_frame(&mut c, &[0u8; 100_000]).unwrap()); // RLE blocks
        bytes.extend(compress_frame(&mut c, b"").unwrap());
        for piece in [1, 2, 3, 7, 4096, bytes.len()] {
            assert_eq!(walk_in_pieces(&bytes, piece), Ok(true), "piece {piece}");
        }
        // A cut inside a frame is not a boundary.
        assert_eq!(walk_in_pieces(&bytes[..bytes.len() - 2], 5), Ok(false));
    }

    /// Whatever `build` and `sign` may write, a verifier reads: the header limit is one number,
    /// enforced by [`header_tar`] and by the reader alike.
    #[test]
    fn a_header_at_the_limit_is_written_and_read_one_byte_more_is_not() {
        use crate::kit::layout::Limits;
        use crate::kit::reader::KitReader;
        use crate::kit::tar::END_OF_ARCHIVE;

        let sig = [9u8; 64];
        let cosigners = vec![("a".repeat(64), sig.to_vec())];
        let entries = |manifest: &'static [u8]| HeaderEntries {
            layout: FORMAT_MARKER.as_bytes(),
            manifest,
            sums: b"sums",
            sums_sig: &sig,
            cosigner_sigs: &cosigners,
            trust_versions: &[],
            provenance: None,
            dsse: b"{}",
        };
        let fixed = header_tar(&entries(b""), 7).unwrap().len() as u64;
        let fill = usize::try_from(MAX_HEADER_BYTES - fixed).unwrap();
        let at_limit: &'static [u8] = vec![b' '; fill].leak();
        let tar = header_tar(&entries(at_limit), 7).unwrap();
        assert_eq!(tar.len() as u64, MAX_HEADER_BYTES);
        let over: &'static [u8] = vec![b' '; fill + 1].leak();
        assert!(matches!(
            header_tar(&entries(over), 7),
            Err(HeaderLimit::TooLarge { .. })
        ));

        let mut kit = compress_frame(&mut new_compressor(1).unwrap(), &tar).unwrap();
        kit.extend(compress_frame(&mut new_compressor(1).unwrap(), &END_OF_ARCHIVE).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.kit.tar.zst");
        std::fs::write(&path, kit).unwrap();
        let header = KitReader::open(&path, Limits::default())
            .unwrap()
            .read_header(crate::kit::reader::Keep::All)
            .unwrap();
        assert_eq!(header.header_bytes, MAX_HEADER_BYTES);
        assert_eq!(header.manifest.bytes.len(), fill);

        let envelope: &'static [u8] = vec![b' '; MAX_ENVELOPE_BYTES as usize + 1].leak();
        assert!(matches!(
            header_tar(
                &HeaderEntries {
                    dsse: envelope,
                    ..entries(b"")
                },
                7
            ),
            Err(HeaderLimit::EnvelopeTooLarge { .. })
        ));

        let many: Vec<(String, Vec<u8>)> = (0..MAX_SIGNATURES)
            .map(|i| (format!("{i:064x}"), sig.to_vec()))
            .collect();
        let too_many = HeaderEntries {
            cosigner_sigs: &many,
            ..entries(b"")
        };
        assert!(matches!(
            header_tar(&too_many, 7),
            Err(HeaderLimit::TooManySignatures { count: 65 })
        ));
    }

    #[test]
    fn trust_versions_are_read_consecutive_and_within_their_limits() {
        use crate::kit::layout::{Limits, MAX_TRUST_VERSION_BYTES};
        use crate::kit::reader::{Keep, KitReader, ReadError};
        use crate::kit::tar::END_OF_ARCHIVE;

        let sig = [9u8; 64];
        let read = |versions: &[(u64, Vec<u8>)]| {
            let tar = header_tar(
                &HeaderEntries {
                    layout: FORMAT_MARKER.as_bytes(),
                    manifest: b"m",
                    sums: b"s",
                    sums_sig: &sig,
                    cosigner_sigs: &[],
                    trust_versions: versions,
                    provenance: None,
                    dsse: b"{}",
                },
                7,
            )
            .unwrap();
            let mut kit = compress_frame(&mut new_compressor(1).unwrap(), &tar).unwrap();
            kit.extend(compress_frame(&mut new_compressor(1).unwrap(), &END_OF_ARCHIVE).unwrap());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("k.kit.tar.zst");
            std::fs::write(&path, kit).unwrap();
            KitReader::open(&path, Limits::default())
                .unwrap()
                .read_header(Keep::Envelope)
        };
        let two = vec![(4, b"four".to_vec()), (5, b"five".to_vec())];
        assert_eq!(read(&two).unwrap().trust_versions, two);
        let gap = vec![(4, b"four".to_vec()), (6, b"six".to_vec())];
        match read(&gap) {
            Err(ReadError::NonCanonicalEntry { entry, what }) => {
                assert_eq!(entry, "trust/6.root.json");
                assert!(what.contains("not the one after version 4"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        let big = vec![(1, vec![b' '; MAX_TRUST_VERSION_BYTES as usize + 1])];
        assert!(matches!(
            header_tar(
                &HeaderEntries {
                    layout: FORMAT_MARKER.as_bytes(),
                    manifest: b"m",
                    sums: b"s",
                    sums_sig: &sig,
                    cosigner_sigs: &[],
                    trust_versions: &big,
                    provenance: None,
                    dsse: b"{}",
                },
                7
            ),
            Err(HeaderLimit::TrustVersions { count: 1, .. })
        ));
    }

    #[test]
    fn skippable_and_underspecified_frames_are_refused() {
        let mut c = new_compressor(3).unwrap();
        let good = compress_frame(&mut c, b"hello").unwrap();
        let mut skippable = good.clone();
        skippable.extend([0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        skippable.extend(&good);
        assert_eq!(
            walk_in_pieces(&skippable, 3),
            Err(FrameShapeError::Skippable {
                offset: good.len() as u64
            })
        );
        // The stock streaming encoder writes neither a checksum nor (here) a content size.
        let plain = zstd::stream::encode_all(&b"hello"[..], 3).unwrap();
        assert!(matches!(
            walk_in_pieces(&plain, 1),
            Err(FrameShapeError::Header { offset: 0, .. })
        ));
        assert!(matches!(
            walk_in_pieces(b"PK\x03\x04", 4),
            Err(FrameShapeError::Header { offset: 0, .. })
        ));
    }

    #[test]
    fn empty_blocks_before_the_last_are_refused_and_the_first_frame_is_found_in_fixed_memory() {
        let mut c = new_compressor(3).unwrap();
        let good = compress_frame(&mut c, b"hello").unwrap();
        // The frame header of `good`: magic, descriptor (single segment, checksum, 1-byte
        // content size), content size; then an empty raw block that is not the last, then the
        // rest of `good`'s blocks and checksum.
        let header_len = 4 + 1 + 1;
        assert_eq!(
            good[4], 0x24,
            "single segment, checksum, one-byte content size"
        );
        let mut padded = good[..header_len].to_vec();
        padded.extend([0, 0, 0]); // raw block, size 0, not last
        padded.extend(&good[header_len..]);
        assert_eq!(
            walk_in_pieces(&padded, 7),
            Err(FrameShapeError::Header {
                offset: 0,
                reason: "has an empty block before its last"
            })
        );
        let mut two = good.clone();
        two.extend(&good);
        assert_eq!(
            first_frame_len(&mut &two[..], two.len() as u64).unwrap(),
            good.len()
        );
        assert!(first_frame_len(&mut &good[..good.len() - 1], good.len() as u64).is_err());
    }
}
