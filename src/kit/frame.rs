//! zstd frames of a kit: how one is compressed, how the header frame is written, and where the
//! first frame ends.
//!
//! The header entries (everything up to and including `manifest.dsse.json`) are one frame of
//! their own, always at [`HEADER_LEVEL`], so that `offkit sign` can rewrite that frame alone and
//! copy the payload frames byte for byte. [`header_frame`] is the one writer of that frame, used
//! by `build` and by `sign`.

use std::io::{self, Read};

use crate::kit::layout::{self, DSSE, FORMAT_MARKER, LAYOUT, MANIFEST, SUMS, SUMS_SIG};
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
    /// `manifest.json`.
    pub manifest: &'a [u8],
    /// `SHA256SUMS`.
    pub sums: &'a [u8],
    /// `SHA256SUMS.sig`.
    pub sums_sig: &'a [u8],
    /// `SHA256SUMS.<keyid>.sig` of co-signers, sorted by keyid.
    pub cosigner_sigs: &'a [(String, Vec<u8>)],
    /// `manifest.dsse.json`.
    pub dsse: &'a [u8],
}

/// Writes the header frame: `offkit-layout`, `manifest.json`, `SHA256SUMS`, `SHA256SUMS.sig`,
/// the co-signers' detached signatures, `manifest.dsse.json`, all with mtime `mtime`, compressed
/// at [`HEADER_LEVEL`]. Returns the frame and the uncompressed header size.
pub fn header_frame(h: &HeaderEntries<'_>, mtime: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut tar = Vec::new();
    append_entry(&mut tar, LAYOUT, FORMAT_MARKER.as_bytes(), mtime);
    append_entry(&mut tar, MANIFEST, h.manifest, mtime);
    append_entry(&mut tar, SUMS, h.sums, mtime);
    append_entry(&mut tar, SUMS_SIG, h.sums_sig, mtime);
    for (keyid, sig) in h.cosigner_sigs {
        append_entry(&mut tar, &layout::cosigner_sig_name(keyid), sig, mtime);
    }
    append_entry(&mut tar, DSSE, h.dsse, mtime);
    let frame = compress_frame(&mut new_compressor(HEADER_LEVEL)?, &tar)?;
    Ok((frame, tar.len() as u64))
}

/// Size of the first zstd frame of `file` (of `total` bytes), reading as much as it needs.
pub fn first_frame_len(file: &mut impl Read, total: u64) -> io::Result<usize> {
    let mut buf = Vec::new();
    let mut want: u64 = 1 << 20;
    loop {
        let target = usize::try_from(want.min(total)).unwrap_or(usize::MAX);
        if buf.len() < target {
            let start = buf.len();
            buf.resize(target, 0);
            file.read_exact(&mut buf[start..])?;
        }
        match zstd::zstd_safe::find_frame_compressed_size(&buf) {
            Ok(n) => return Ok(n),
            Err(_) if (buf.len() as u64) < total => want = want.saturating_mul(4),
            Err(code) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "no complete zstd frame at the start ({})",
                        zstd::zstd_safe::get_error_name(code)
                    ),
                ));
            }
        }
    }
}
