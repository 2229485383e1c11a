//! Random access to a verified kit's payload, by uncompressed offset, without a copy: the signed
//! frame index (docs/FORMAT.md §4 `payload.frames`) says where each zstd frame lies in the kit
//! file (or its parts); a frame is read, its compressed bytes checked against their signed
//! SHA-256 before anything is decompressed, and decompressed whole. So `apply` seeds a store
//! straight from the kit it verified, and a kit whose bytes changed after verification is refused
//! at the first changed frame, before a byte of it is used.
//!
//! Memory: the last [`CACHED_FRAMES`] decompressed frames are kept (seeds are handed out in kit
//! order, so neighbouring seeds share a frame), each decoded once however many readers want it
//! at the same time; a frame larger than [`MAX_CACHED_FRAME`] (never
//! written by `offkit build`, whose frames hold 8 MiB) is decoded as a stream instead.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::kit::manifest::FrameEntry;

/// Decompressed frames kept.
pub const CACHED_FRAMES: usize = 4;

/// Largest frame (decompressed) kept whole in memory.
pub const MAX_CACHED_FRAME: u64 = 16 << 20;

/// Bytes of a zstd frame header that always hold its content size.
const FRAME_HEADER_MAX: usize = 18;

/// One part of the kit's bytes: a file and where it starts in the kit.
#[derive(Debug)]
struct Segment {
    file: File,
    start: u64,
    len: u64,
}

/// One payload frame: where it is, what it must hash to, and what it decompresses to.
#[derive(Debug, Clone)]
struct Frame {
    offset: u64,
    size: u64,
    sha256: String,
    start: u64,
    len: u64,
}

/// Random access to the payload of a kit file or of its parts.
#[derive(Debug)]
pub struct FrameFile {
    segments: Vec<Segment>,
    frames: Vec<Frame>,
    cache: Mutex<VecDeque<(usize, Slot)>>,
    /// Decompressed frames dropped from the cache, decoded into again once no reader holds them
    /// ([`FrameFile::buffer`]): an apply allocates a frame's 8 MiB a few times, not once per
    /// frame on whichever put thread decodes it (each such thread's heap would keep the peak).
    retired: Mutex<Vec<Arc<Vec<u8>>>>,
    /// Frames decompressed whole so far (each once while it stays cached).
    decoded: std::sync::atomic::AtomicU64,
    /// Buffers allocated to decode into (the others were retired frames).
    buffers: std::sync::atomic::AtomicU64,
}

/// A cached frame: decoded once, by the first reader that wants it, while the others that want
/// it meanwhile wait for that decoding instead of repeating it.
type Slot = Arc<std::sync::OnceLock<Result<Arc<Vec<u8>>, (io::ErrorKind, String)>>>;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl FrameFile {
    /// Opens the kit (`files`: the kit file, or its parts in order) whose header frame is
    /// `header_frame` compressed bytes and whose payload frames the signed `index` lists. Each
    /// frame's decompressed size is read from its zstd frame header, so that uncompressed offsets
    /// (counted from the start of the header frame's content) map to frames.
    pub fn open(files: &[PathBuf], header_frame: u64, index: &[FrameEntry]) -> io::Result<Self> {
        let mut segments = Vec::with_capacity(files.len());
        let mut start = 0u64;
        for path in files {
            let file = File::open(path)?;
            let len = file.metadata()?.len();
            segments.push(Segment { file, start, len });
            start += len;
        }
        let mut ff = FrameFile {
            segments,
            frames: Vec::with_capacity(index.len()),
            cache: Mutex::new(VecDeque::new()),
            retired: Mutex::new(Vec::new()),
            decoded: Default::default(),
            buffers: Default::default(),
        };
        let mut uncompressed = ff.content_size(0, header_frame)?;
        let mut offset = header_frame;
        for (i, f) in index.iter().enumerate() {
            let len = ff.content_size(offset, f.size).map_err(|e| {
                invalid(format!(
                    "payload frame {} (kit offset {offset}): {e}",
                    i + 1
                ))
            })?;
            ff.frames.push(Frame {
                offset,
                size: f.size,
                sha256: f.sha256.to_string(),
                start: uncompressed,
                len,
            });
            offset += f.size;
            uncompressed += len;
        }
        if offset != start {
            return Err(invalid(format!(
                "the kit is {start} bytes; its header and signed frame index account for {offset}"
            )));
        }
        Ok(ff)
    }

    /// The decompressed size a frame's header declares (frames without one are refused by the
    /// verifying pass, so this only fails for a kit changed since).
    fn content_size(&self, offset: u64, size: u64) -> io::Result<u64> {
        let mut head = [0u8; FRAME_HEADER_MAX];
        let n = usize::try_from(size).unwrap_or(usize::MAX).min(head.len());
        self.read_at(offset, &mut head[..n])?;
        match zstd::zstd_safe::get_frame_content_size(&head[..n]) {
            Ok(Some(len)) => Ok(len),
            _ => Err(invalid(
                "its frame header declares no content size (the kit changed after it was verified?)"
                    .into(),
            )),
        }
    }

    /// Reads exactly `buf.len()` bytes at kit offset `offset`, across parts.
    fn read_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let seg = self
                .segments
                .iter()
                .find(|s| offset >= s.start && offset < s.start + s.len)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the kit ends before offset {offset}"),
                    )
                })?;
            let within = offset - seg.start;
            let n = usize::try_from(seg.len - within)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            seg.file.read_exact_at(&mut buf[..n], within)?;
            offset += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// The compressed bytes of payload frame `i`, checked against the signed index.
    fn compressed(&self, i: usize) -> io::Result<Vec<u8>> {
        let f = &self.frames[i];
        let size = usize::try_from(f.size).map_err(|_| invalid("frame too large".into()))?;
        let mut bytes = vec![0u8; size];
        self.read_at(f.offset, &mut bytes)?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != f.sha256 {
            return Err(invalid(format!(
                "the kit changed after it was verified: payload frame {} (kit bytes {}..{}) has SHA-256 {actual}, the signed frame index says {}",
                i + 1,
                f.offset,
                f.offset + f.size,
                f.sha256
            )));
        }
        Ok(bytes)
    }

    /// Payload frame `i`, decompressed (from the cache when it is there; decoded once however
    /// many readers want it at the same time).
    fn frame(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.iter().find(|(k, _)| *k == i) {
                Some((_, slot)) => Arc::clone(slot),
                None => {
                    if cache.len() == CACHED_FRAMES
                        && let Some((_, old)) = cache.pop_front()
                        && let Some(Ok(bytes)) = old.get()
                    {
                        self.retire(Arc::clone(bytes));
                    }
                    let slot = Slot::default();
                    cache.push_back((i, Arc::clone(&slot)));
                    slot
                }
            }
        };
        slot.get_or_init(|| {
            self.decode(i)
                .map(Arc::new)
                .map_err(|e| (e.kind(), e.to_string()))
        })
        .clone()
        .map_err(|(kind, message)| io::Error::new(kind, message))
    }

    /// Keeps a frame dropped from the cache to be decoded into again (at most
    /// [`CACHED_FRAMES`] of them: readers hold a dropped frame only while they finish a seed).
    fn retire(&self, bytes: Arc<Vec<u8>>) {
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        if retired.len() == CACHED_FRAMES {
            retired.remove(0);
        }
        retired.push(bytes);
    }

    /// A buffer to decode a frame into: a retired frame no reader holds any more, else a new one.
    fn buffer(&self) -> Vec<u8> {
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        // Only this list can hand out a retired frame, so a count of one stays one.
        match retired.iter().position(|b| Arc::strong_count(b) == 1) {
            Some(i) => Arc::try_unwrap(retired.swap_remove(i)).unwrap_or_default(),
            None => {
                self.buffers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Vec::new()
            }
        }
    }

    /// How many frames were decompressed whole so far.
    pub fn frames_decoded(&self) -> u64 {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Payload frame `i`, read, checked and decompressed.
    fn decode(&self, i: usize) -> io::Result<Vec<u8>> {
        self.decoded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let f = &self.frames[i];
        let compressed = self.compressed(i)?;
        let len = usize::try_from(f.len).map_err(|_| invalid("frame too large".into()))?;
        let mut bytes = self.buffer();
        bytes.clear();
        bytes.reserve(len);
        zstd::bulk::Decompressor::new()?.decompress_to_buffer(&compressed, &mut bytes)?;
        if bytes.len() as u64 != f.len {
            return Err(invalid(format!(
                "payload frame {} decompresses to {} bytes; its header says {}",
                i + 1,
                bytes.len(),
                f.len
            )));
        }
        Ok(bytes)
    }

    /// The payload frame holding uncompressed offset `at`.
    fn frame_at(&self, at: u64) -> Option<usize> {
        let i = self.frames.partition_point(|f| f.start + f.len <= at);
        (i < self.frames.len() && self.frames[i].start <= at).then_some(i)
    }

    /// A reader of `len` payload bytes from uncompressed offset `at` (a file's data, as the
    /// verifying pass found it).
    pub fn reader(&self, at: u64, len: u64) -> Range<'_> {
        Range {
            ff: self,
            pos: at,
            end: at.saturating_add(len),
            current: None,
        }
    }
}

/// What [`FrameFile::reader`] returns.
pub struct Range<'a> {
    ff: &'a FrameFile,
    pos: u64,
    end: u64,
    current: Option<Current>,
}

enum Current {
    /// A whole decompressed frame and its start.
    Cached(Arc<Vec<u8>>, u64),
    /// A large frame, decoded as a stream; the uncompressed offset it has reached.
    Streaming(
        Box<zstd::stream::read::Decoder<'static, io::BufReader<io::Cursor<Vec<u8>>>>>,
        u64,
    ),
}

impl Read for Range<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.end - self.pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        loop {
            match &mut self.current {
                Some(Current::Cached(bytes, start))
                    if self.pos >= *start && self.pos < *start + bytes.len() as u64 =>
                {
                    let from = (self.pos - *start) as usize;
                    let n = want.min(bytes.len() - from);
                    buf[..n].copy_from_slice(&bytes[from..from + n]);
                    self.pos += n as u64;
                    return Ok(n);
                }
                Some(Current::Streaming(decoder, reached)) if *reached == self.pos => {
                    let n = decoder.read(&mut buf[..want])?;
                    if n == 0 {
                        // The frame ended: the next read opens the next one.
                        self.current = None;
                        continue;
                    }
                    *reached += n as u64;
                    self.pos += n as u64;
                    return Ok(n);
                }
                _ => {}
            }
            let i = self.ff.frame_at(self.pos).ok_or_else(|| {
                invalid(format!(
                    "uncompressed offset {} is beyond the kit's frames",
                    self.pos
                ))
            })?;
            let f = &self.ff.frames[i];
            if f.len <= MAX_CACHED_FRAME {
                self.current = Some(Current::Cached(self.ff.frame(i)?, f.start));
            } else {
                let compressed = self.ff.compressed(i)?;
                let mut decoder = zstd::stream::read::Decoder::new(io::Cursor::new(compressed))?;
                io::copy(
                    &mut (&mut decoder).take(self.pos - f.start),
                    &mut io::sink(),
                )?;
                self.current = Some(Current::Streaming(Box::new(decoder), self.pos));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> (Vec<u8>, FrameEntry) {
        let c = crate::kit::frame::compress_frame(
            &mut crate::kit::frame::new_compressor(3).unwrap(),
            data,
        )
        .unwrap();
        let e = FrameEntry {
            size: c.len() as u64,
            sha256: crate::kit::digest::Sha256Hex::of(&c),
        };
        (c, e)
    }

    #[test]
    fn ranges_cross_frames_and_parts_and_a_changed_frame_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = frame(b"header");
        let a: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..7000u32).map(|i| (i % 13) as u8).collect();
        let (fa, ea) = frame(&a);
        let (fb, eb) = frame(&b);
        let mut kit = h.clone();
        kit.extend(&fa);
        kit.extend(&fb);
        // In two parts, cut inside the second frame's bytes on purpose (read_at crosses parts).
        let cut = h.len() + fa.len() + 3;
        let p1 = dir.path().join("k.001");
        let p2 = dir.path().join("k.002");
        std::fs::write(&p1, &kit[..cut]).unwrap();
        std::fs::write(&p2, &kit[cut..]).unwrap();
        let index = [ea, eb];
        let ff = FrameFile::open(&[p1.clone(), p2.clone()], h.len() as u64, &index).unwrap();
        let whole: Vec<u8> = b"header".iter().copied().chain(a).chain(b).collect();
        for (at, len) in [
            (6u64, 5000u64),
            (4000, 3000),
            (6, 12000),
            (11000, 1006),
            (12005, 1),
        ] {
            let mut got = Vec::new();
            ff.reader(at, len).read_to_end(&mut got).unwrap();
            assert_eq!(got, &whole[at as usize..(at + len) as usize], "{at}+{len}");
        }
        // A byte of the second frame changes after opening (it is not cached: the cache holds
        // what was read above, so empty it): refused, naming the frame.
        ff.cache.lock().unwrap().clear();
        let mut changed = std::fs::read(&p2).unwrap();
        let last = changed.len() - 2;
        changed[last] ^= 1;
        std::fs::write(&p2, &changed).unwrap();
        let err = ff
            .reader(6000, 10)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("changed after it was verified: payload frame 2"),
            "{err}"
        );
    }

    #[test]
    fn frames_dropped_from_the_cache_are_decoded_into_again() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = frame(b"h");
        // Frames of different sizes and bytes: a smaller frame decoded into a larger frame's
        // buffer must come out whole and alone.
        let datas: Vec<Vec<u8>> = (0..12u32)
            .map(|k| {
                (0..(40_000 + (k % 3) * 30_000))
                    .map(|i| (i * (k + 1) % 251) as u8)
                    .collect()
            })
            .collect();
        let mut kit = h.clone();
        let mut index = Vec::new();
        for d in &datas {
            let (f, e) = frame(d);
            kit.extend(f);
            index.push(e);
        }
        let path = dir.path().join("k");
        std::fs::write(&path, &kit).unwrap();
        let ff = FrameFile::open(&[path], h.len() as u64, &index).unwrap();
        let whole: Vec<u8> = b"h".iter().copied().chain(datas.concat()).collect();
        let mut starts = vec![1u64];
        for d in &datas {
            starts.push(starts.last().unwrap() + d.len() as u64);
        }
        // Forwards, then backwards: every frame decoded twice, evicting the others.
        let order: Vec<usize> = (0..datas.len()).chain((0..datas.len()).rev()).collect();
        for &k in &order {
            let (at, len) = (starts[k], datas[k].len() as u64);
            let mut got = Vec::new();
            ff.reader(at, len).read_to_end(&mut got).unwrap();
            assert_eq!(got, &whole[at as usize..(at + len) as usize], "frame {k}");
        }
        assert_eq!(
            ff.frames_decoded(),
            24 - CACHED_FRAMES as u64,
            "the turn finds the last frames cached"
        );
        let fresh = ff.buffers.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            fresh <= CACHED_FRAMES as u64 + 1,
            "{fresh} buffers allocated for 20 decodings"
        );
        assert!(ff.retired.lock().unwrap().len() <= CACHED_FRAMES);
    }

    #[test]
    fn readers_of_one_frame_at_the_same_time_decode_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = frame(b"h");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (f1, e1) = frame(&data);
        let path = dir.path().join("k");
        std::fs::write(&path, [h.clone(), f1].concat()).unwrap();
        let ff = FrameFile::open(&[path], h.len() as u64, &[e1]).unwrap();
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (ff, barrier, data) = (&ff, &barrier, &data);
                s.spawn(move || {
                    barrier.wait();
                    let at = 1 + t * 1000;
                    let mut got = Vec::new();
                    ff.reader(at, 500).read_to_end(&mut got).unwrap();
                    assert_eq!(got, &data[(at - 1) as usize..(at + 499) as usize]);
                });
            }
        });
        assert_eq!(ff.frames_decoded(), 1, "eight readers, one decoding");
    }

    #[test]
    fn a_frame_too_large_to_cache_is_read_as_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = frame(b"h");
        let big: Vec<u8> = (0..(MAX_CACHED_FRAME + 4096))
            .map(|i| (i % 97) as u8)
            .collect();
        let (fb, eb) = frame(&big);
        let path = dir.path().join("k");
        std::fs::write(&path, [h.clone(), fb].concat()).unwrap();
        let ff = FrameFile::open(&[path], h.len() as u64, &[eb]).unwrap();
        let at = 1 + MAX_CACHED_FRAME - 10;
        let mut got = Vec::new();
        ff.reader(at, 3000).read_to_end(&mut got).unwrap();
        let from = (at - 1) as usize;
        assert_eq!(got, &big[from..from + 3000]);
        assert!(ff.cache.lock().unwrap().is_empty(), "not cached");
    }
}
