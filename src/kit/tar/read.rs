//! Strict streaming tar reader over a `BufRead`: checks every header, classifies every entry
//! type, and passes file data to the caller in the reader's own buffers (no extra copy).

use std::io::{self, BufRead};

use super::{BLOCK, padding};

/// Largest pax extended header accepted.
const MAX_PAX_BYTES: u64 = 1 << 20;

/// What a tar entry is, as its type flag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// `0` or NUL: a regular file.
    Regular,
    /// `5`: a directory.
    Directory,
    /// `2`: a symbolic link.
    Symlink,
    /// `1`: a hard link.
    HardLink,
    /// `3`: a character device.
    CharDevice,
    /// `4`: a block device.
    BlockDevice,
    /// `6`: a FIFO.
    Fifo,
    /// GNU `S` or pax `GNU.sparse.*`: a sparse file.
    Sparse,
    /// GNU `L`/`K`: long name or long link name extension.
    GnuLongName,
    /// Any other type flag (global pax headers, contiguous files, vendor extensions).
    Other(u8),
}

/// One entry's header, with pax records applied.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The path exactly as stored (pax `path`, or ustar prefix + name), not yet validated.
    pub path: Vec<u8>,
    /// The entry type.
    pub kind: EntryKind,
    /// Data size in bytes.
    pub size: u64,
    /// Link target for links.
    pub link: Vec<u8>,
    /// Offset of the entry's first header block in the uncompressed stream.
    pub offset: u64,
    /// Modification time, as the ustar header says.
    pub mtime: u64,
    /// Every byte of the entry's header as stored: a pax extended header (its header block,
    /// records and padding) when there is one, then the ustar block. Lets a caller require the
    /// exact bytes a writer would produce.
    pub header: Vec<u8>,
}

/// Why the tar stream was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    /// The underlying (decompressed) stream failed.
    #[error("reading the archive: {0}")]
    Stream(#[source] io::Error),
    /// The stream ended inside a header, a file or before the end-of-archive marker.
    #[error("archive truncated at offset {offset}")]
    Truncated {
        /// Uncompressed offset where data was missing.
        offset: u64,
    },
    /// A header is malformed.
    #[error("malformed tar header at offset {offset}: {reason}")]
    BadHeader {
        /// Uncompressed offset of the header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Non-zero data follows the end-of-archive marker.
    #[error("unexpected data after the end-of-archive marker at offset {offset}")]
    TrailingData {
        /// Uncompressed offset of the first unexpected byte.
        offset: u64,
    },
    /// More zero padding after the end-of-archive marker than any tar writer adds: a
    /// decompression bomb (zeros compress to almost nothing).
    #[error(
        "more than {max} bytes of padding after the end-of-archive marker (decompression bomb)"
    )]
    ExcessPadding {
        /// The allowance that was passed.
        max: u64,
    },
    /// The zero padding after an entry's data holds another byte: unsigned bytes no writer puts
    /// there.
    #[error("non-zero byte in the padding after an entry's data at offset {offset}")]
    NonZeroPadding {
        /// Uncompressed offset of the byte.
        offset: u64,
    },
    /// The consumer of an entry's data failed (e.g. a write during extraction).
    #[error("{0}")]
    Sink(#[source] io::Error),
}

/// A strict tar reader.
pub struct TarReader<R> {
    inner: R,
    offset: u64,
    /// Data bytes of the current entry not yet read, plus its padding.
    pending: Option<(u64, usize)>,
}

impl<R: BufRead> TarReader<R> {
    /// Wraps a buffered (decompressed) stream.
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            offset: 0,
            pending: None,
        }
    }

    /// The wrapped stream.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes of the uncompressed stream consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next entry's header, or `None` at the end-of-archive marker. The previous entry's
    /// data must have been read or skipped.
    pub fn next_entry(&mut self) -> Result<Option<RawEntry>, TarError> {
        if self.pending.is_some() {
            self.skip_data()?;
        }
        let mut pax: Option<PaxOverrides> = None;
        let mut header = Vec::with_capacity(BLOCK);
        let first = self.offset;
        loop {
            let offset = self.offset;
            let Some(block) = self.read_block()? else {
                return Err(TarError::Truncated { offset });
            };
            if block.iter().all(|&b| b == 0) {
                if pax.is_some() {
                    return Err(bad(offset, "a pax extended header describes no entry"));
                }
                // End of archive: a second zero block must follow.
                match self.read_block()? {
                    Some(b) if b.iter().all(|&x| x == 0) => return Ok(None),
                    Some(_) => {
                        return Err(bad(offset, "a single zero block inside the archive"));
                    }
                    None => {
                        return Err(TarError::Truncated {
                            offset: self.offset,
                        });
                    }
                }
            }
            check_checksum(&block, offset)?;
            let gnu = &block[257..265] == b"ustar  \0";
            if !gnu && &block[257..263] != b"ustar\0" {
                return Err(bad(offset, "not a ustar header (bad magic)"));
            }
            let size =
                parse_number(&block[124..136]).ok_or_else(|| bad(offset, "bad size field"))?;
            let typeflag = block[156];
            if typeflag == b'x' {
                if pax.is_some() {
                    return Err(bad(offset, "two pax headers in a row"));
                }
                if size > MAX_PAX_BYTES {
                    return Err(bad(offset, "pax header larger than 1 MiB"));
                }
                let mut data = Vec::with_capacity(size as usize);
                self.pending = Some((size, padding(size)));
                self.read_data(|chunk| {
                    data.extend_from_slice(chunk);
                    Ok(())
                })?;
                pax = Some(parse_pax(&data).map_err(|reason| bad(offset, reason))?);
                header.extend_from_slice(&block);
                header.extend_from_slice(&data);
                header.resize(header.len() + padding(size), 0);
                continue;
            }
            let mut path = cstr(&block[..100]).to_vec();
            let prefix = cstr(&block[345..500]);
            if !gnu && !prefix.is_empty() {
                let mut p = prefix.to_vec();
                p.push(b'/');
                p.extend_from_slice(&path);
                path = p;
            }
            let mtime =
                parse_number(&block[136..148]).ok_or_else(|| bad(offset, "bad mtime field"))?;
            header.extend_from_slice(&block);
            let mut entry = RawEntry {
                path,
                kind: classify(typeflag),
                size,
                link: cstr(&block[157..257]).to_vec(),
                offset: first,
                mtime,
                header,
            };
            if let Some(p) = pax.take() {
                if let Some(path) = p.path {
                    entry.path = path;
                }
                if let Some(size) = p.size {
                    entry.size = size;
                }
                if let Some(link) = p.link {
                    entry.link = link;
                }
                if p.sparse {
                    entry.kind = EntryKind::Sparse;
                }
            }
            self.pending = Some((entry.size, padding(entry.size)));
            return Ok(Some(entry));
        }
    }

    /// Passes the current entry's data to `sink` chunk by chunk, then consumes the padding.
    pub fn read_data(
        &mut self,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), TarError> {
        let Some((mut remaining, pad)) = self.pending.take() else {
            return Ok(());
        };
        while remaining > 0 {
            let buf = self.inner.fill_buf().map_err(TarError::Stream)?;
            if buf.is_empty() {
                return Err(TarError::Truncated {
                    offset: self.offset,
                });
            }
            let n = buf
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            sink(&buf[..n]).map_err(TarError::Sink)?;
            self.inner.consume(n);
            self.offset += n as u64;
            remaining -= n as u64;
        }
        let mut padbuf = [0u8; BLOCK];
        let at = self.offset;
        self.read_exact_or_truncated(&mut padbuf[..pad])?;
        match padbuf[..pad].iter().position(|&b| b != 0) {
            Some(i) => Err(TarError::NonZeroPadding {
                offset: at + i as u64,
            }),
            None => Ok(()),
        }
    }

    /// Skips the current entry's data.
    pub fn skip_data(&mut self) -> Result<(), TarError> {
        self.read_data(|_| Ok(()))
    }

    /// After the end-of-archive marker: the stream must end. Any byte there is refused —
    /// [`TarError::TrailingData`] at its offset, or [`TarError::ExcessPadding`] once more than
    /// `max_zeros` zero bytes were read (zeros compress to almost nothing: a decompression bomb).
    pub fn finish(&mut self, max_zeros: u64) -> Result<(), TarError> {
        let start = self.offset;
        loop {
            let buf = self.inner.fill_buf().map_err(TarError::Stream)?;
            if buf.is_empty() {
                return if self.offset == start {
                    Ok(())
                } else {
                    Err(TarError::TrailingData { offset: start })
                };
            }
            if let Some(i) = buf.iter().position(|&b| b != 0) {
                return Err(TarError::TrailingData {
                    offset: start.min(self.offset + i as u64),
                });
            }
            let n = buf.len();
            self.inner.consume(n);
            self.offset += n as u64;
            if self.offset - start > max_zeros {
                return Err(TarError::ExcessPadding { max: max_zeros });
            }
        }
    }

    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            let buf = self.inner.fill_buf().map_err(TarError::Stream)?;
            if buf.is_empty() {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(TarError::Truncated {
                    offset: self.offset,
                });
            }
            let n = buf.len().min(BLOCK - filled);
            block[filled..filled + n].copy_from_slice(&buf[..n]);
            self.inner.consume(n);
            self.offset += n as u64;
            filled += n;
        }
        Ok(Some(block))
    }

    fn read_exact_or_truncated(&mut self, out: &mut [u8]) -> Result<(), TarError> {
        let mut filled = 0;
        while filled < out.len() {
            let buf = self.inner.fill_buf().map_err(TarError::Stream)?;
            if buf.is_empty() {
                return Err(TarError::Truncated {
                    offset: self.offset,
                });
            }
            let n = buf.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&buf[..n]);
            self.inner.consume(n);
            self.offset += n as u64;
            filled += n;
        }
        Ok(())
    }
}

fn bad(offset: u64, reason: impl Into<String>) -> TarError {
    TarError::BadHeader {
        offset,
        reason: reason.into(),
    }
}

fn classify(typeflag: u8) -> EntryKind {
    match typeflag {
        b'0' | 0 => EntryKind::Regular,
        b'1' => EntryKind::HardLink,
        b'2' => EntryKind::Symlink,
        b'3' => EntryKind::CharDevice,
        b'4' => EntryKind::BlockDevice,
        b'5' => EntryKind::Directory,
        b'6' => EntryKind::Fifo,
        b'S' => EntryKind::Sparse,
        b'L' | b'K' => EntryKind::GnuLongName,
        other => EntryKind::Other(other),
    }
}

/// The bytes of a NUL-terminated field.
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Octal (leading spaces allowed, NUL or space terminated) or GNU base-256 numbers.
fn parse_number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        if field[0] != 0x80 || field[1..4].iter().any(|&b| b != 0) {
            return None; // negative or wider than 64 bits
        }
        return Some(
            field[4..]
                .iter()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b)),
        );
    }
    let s = cstr(field);
    let s = std::str::from_utf8(s).ok()?.trim_matches(' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn check_checksum(block: &[u8; BLOCK], offset: u64) -> Result<(), TarError> {
    let stored = parse_number(&block[148..156]).ok_or_else(|| bad(offset, "bad checksum field"))?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).ok() == Some(signed) {
        Ok(())
    } else {
        Err(bad(offset, "header checksum mismatch"))
    }
}

#[derive(Default)]
struct PaxOverrides {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    link: Option<Vec<u8>>,
    sparse: bool,
}

/// Parses pax records `"<len> <key>=<value>\n"`. Unknown keys are ignored, as POSIX asks.
fn parse_pax(mut data: &[u8]) -> Result<PaxOverrides, &'static str> {
    let mut out = PaxOverrides::default();
    while !data.is_empty() {
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("pax record without length")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("bad pax record length")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("bad pax record length");
        }
        let record = &data[sp + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("pax record without '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => out.path = Some(value.to_vec()),
            b"linkpath" => out.link = Some(value.to_vec()),
            b"size" => {
                let v = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad pax size")?;
                out.size = Some(v);
            }
            k if k.starts_with(b"GNU.sparse.") => out.sparse = true,
            _ => {}
        }
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{END_OF_ARCHIVE, header_bytes};
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, data) in files {
            out.extend(header_bytes(path, data.len() as u64, 0));
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64), 0);
        }
        out.extend_from_slice(&END_OF_ARCHIVE);
        out
    }

    #[test]
    fn round_trip_with_long_and_unicode_paths() {
        let long = format!("seeds/{}/ü.json", "x".repeat(150));
        let bytes = archive(&[("a.txt", b"hello"), (&long, b"{}")]);
        let mut r = TarReader::new(&bytes[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.path.as_slice(), e.kind, e.size),
            (&b"a.txt"[..], EntryKind::Regular, 5)
        );
        let mut data = Vec::new();
        r.read_data(|c| {
            data.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(data, b"hello");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, long.as_bytes());
        assert!(r.next_entry().unwrap().is_none());
        r.finish(0).unwrap();
    }

    #[test]
    fn truncation_and_trailing_data_are_errors() {
        let bytes = archive(&[("a.txt", b"hello")]);
        let mut r = TarReader::new(&bytes[..600]);
        r.next_entry().unwrap();
        assert!(matches!(r.skip_data(), Err(TarError::Truncated { .. })));

        let mut with_tail = bytes.clone();
        with_tail.extend_from_slice(b"junk");
        let mut r = TarReader::new(&with_tail[..]);
        r.next_entry().unwrap();
        assert!(r.next_entry().unwrap().is_none());
        assert!(matches!(
            r.finish(1 << 20),
            Err(TarError::TrailingData { .. })
        ));

        // Zero padding after the marker is not what the writer writes either.
        let mut padded = bytes.clone();
        padded.resize(bytes.len() + 2048, 0);
        let mut r = TarReader::new(&padded[..]);
        r.next_entry().unwrap();
        assert!(r.next_entry().unwrap().is_none());
        assert!(matches!(
            r.finish(1 << 20),
            Err(TarError::TrailingData { offset }) if offset == bytes.len() as u64
        ));
        let mut r = TarReader::new(&padded[..]);
        r.next_entry().unwrap();
        assert!(r.next_entry().unwrap().is_none());
        assert!(matches!(
            r.finish(1024),
            Err(TarError::ExcessPadding { .. })
        ));
    }

    #[test]
    fn a_pax_header_must_describe_an_entry() {
        let long = format!("seeds/{}", "y".repeat(150));
        let mut bytes = header_bytes(&long, 0, 0);
        bytes.truncate(bytes.len() - BLOCK); // drop the ustar block the pax header describes
        bytes.extend_from_slice(&END_OF_ARCHIVE);
        let mut r = TarReader::new(&bytes[..]);
        assert!(matches!(r.next_entry(), Err(TarError::BadHeader { .. })));
    }

    #[test]
    fn padding_after_data_must_be_zero() {
        let mut bytes = archive(&[("a.txt", b"hello")]);
        bytes[512 + 5] = 0x09; // the first padding byte after the 5 data bytes
        let mut r = TarReader::new(&bytes[..]);
        r.next_entry().unwrap();
        assert!(matches!(
            r.skip_data(),
            Err(TarError::NonZeroPadding { offset: 517 })
        ));
    }

    #[test]
    fn corrupted_header_fails_checksum() {
        let mut bytes = archive(&[("a.txt", b"hello")]);
        bytes[0] = b'b';
        let mut r = TarReader::new(&bytes[..]);
        assert!(matches!(r.next_entry(), Err(TarError::BadHeader { .. })));
    }
}
