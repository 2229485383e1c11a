//! Decompression on its own thread, overlapped with whatever consumes the data.
//!
//! A producer thread reads the kit file, hashes the compressed bytes (the kit's SHA-256), checks
//! the frames' structure ([`FrameWalker`]) and decompresses into 1 MiB buffers sent over a
//! bounded channel; [`DecodedStream`] hands those
//! buffers to the consumer as a `BufRead` without copying and sends them back for reuse. Memory is
//! a dozen 512 KiB buffers plus the zstd window, which is capped ([`MAX_WINDOW_LOG`]). A cap on the total
//! decompressed size turns a decompression bomb into an error instead of work.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::kit::digest::Sha256Hex;
use crate::kit::frame::{FrameShapeError, FrameWalker};
use crate::kit::layout::MAX_WINDOW_LOG;

/// Decompressed bytes per buffer handed to the consumer.
const CHUNK: usize = 512 << 10;
/// Buffers in flight between two threads.
const IN_FLIGHT: usize = 4;

/// Why decoding stopped; carried inside the `io::Error`s the stream returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeFailure {
    /// The compressed stream ends inside a frame.
    #[error("the kit is truncated (the zstd stream ends inside a frame)")]
    Truncated,
    /// The compressed data is not valid zstd (or fails its checksum).
    #[error("the kit is not a valid zstd stream: {0}")]
    Corrupt(String),
    /// More decompressed data than the signed manifest allows.
    #[error("decompressed data exceeds the {limit} bytes the kit declares (decompression bomb)")]
    LimitExceeded {
        /// The bound that was passed.
        limit: u64,
    },
    /// The compressed layer is not what `offkit build` writes.
    #[error("{0}")]
    FrameShape(#[from] FrameShapeError),
    /// Reading the kit file failed.
    #[error("reading the kit file: {0}")]
    Io(String),
    /// A part of a split kit is missing, cut wrong, or not the kit's.
    #[error("{0}")]
    Part(#[from] crate::kit::parts::PartError),
}

impl DecodeFailure {
    /// The failure inside an `io::Error` returned by [`DecodedStream`], if any.
    pub fn of(e: &io::Error) -> Option<&DecodeFailure> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<DecodeFailure>())
    }

    fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

enum Msg {
    Data(Vec<u8>),
    End { sha256: Sha256Hex, compressed: u64 },
    Fail(DecodeFailure),
}

/// What the producer learnt once the whole file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// SHA-256 of the kit file (compressed bytes).
    pub sha256: Sha256Hex,
    /// Size of the kit file.
    pub compressed: u64,
}

/// The decompressed kit as a `BufRead`.
pub struct DecodedStream {
    rx: Receiver<Msg>,
    recycle: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    delivered: u64,
    limit: u64,
    end: Option<StreamEnd>,
    failed: Option<DecodeFailure>,
    handle: Option<JoinHandle<()>>,
}

impl DecodedStream {
    /// Opens `path` and starts decompressing it on a new thread. At most `limit` decompressed
    /// bytes are delivered before [`DecodeFailure::LimitExceeded`].
    pub fn open(path: &Path, limit: u64) -> io::Result<DecodedStream> {
        Self::open_reader(Box::new(File::open(path)?), limit)
    }

    /// As [`DecodedStream::open`], over the compressed bytes `input` gives (the parts of a split
    /// kit, [`crate::kit::parts::PartsReader`]).
    pub fn open_reader(input: Box<dyn Read + Send>, limit: u64) -> io::Result<DecodedStream> {
        let file = input;
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (recycle_tx, recycle_rx) = sync_channel(2);
        let handle = std::thread::Builder::new()
            .name("offkit-decompress".into())
            .spawn(move || produce(file, tx, recycle_rx))?;
        Ok(Self::fed_by(rx, recycle_tx, handle, limit))
    }

    /// The consumer side of a producer thread `handle` sending on `rx`.
    fn fed_by(
        rx: Receiver<Msg>,
        recycle: SyncSender<Vec<u8>>,
        handle: JoinHandle<()>,
        limit: u64,
    ) -> DecodedStream {
        DecodedStream {
            rx,
            recycle,
            cur: Vec::new(),
            pos: 0,
            delivered: 0,
            limit,
            end: None,
            failed: None,
            handle: Some(handle),
        }
    }

    /// Changes the cap on decompressed bytes (counted from the start of the stream).
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Decompressed bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The kit file's SHA-256 and size, once the stream has been read to its end.
    pub fn end(&self) -> Option<&StreamEnd> {
        self.end.as_ref()
    }
}

impl Drop for DecodedStream {
    fn drop(&mut self) {
        // Unblock the producer (its next send fails) and let it exit on its own.
        let (_tx, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Read for DecodedStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for DecodedStream {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if let Some(f) = &self.failed {
            return Err(f.clone().into_io());
        }
        while self.pos == self.cur.len() && self.end.is_none() {
            let msg = self.rx.recv().unwrap_or(Msg::Fail(DecodeFailure::Io(
                "decompression thread stopped".into(),
            )));
            match msg {
                Msg::Data(v) => {
                    let old = std::mem::replace(&mut self.cur, v);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Msg::End { sha256, compressed } => {
                    self.end = Some(StreamEnd { sha256, compressed })
                }
                Msg::Fail(f) => {
                    self.failed = Some(f.clone());
                    return Err(f.into_io());
                }
            }
        }
        let available = &self.cur[self.pos..];
        let allowed = self.limit.saturating_sub(self.delivered);
        if !available.is_empty() && allowed == 0 {
            let f = DecodeFailure::LimitExceeded { limit: self.limit };
            self.failed = Some(f.clone());
            return Err(f.into_io());
        }
        let n = available
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        Ok(&available[..n])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
        self.delivered += amt as u64;
    }
}

/// The thread that hashes the compressed bytes (the kit file's SHA-256, of exactly the bytes
/// decompressed), sending each buffer back on `back` for reuse when it is the last holder.
fn spawn_hasher(
    back: Option<SyncSender<Vec<u8>>>,
    in_flight: usize,
) -> (SyncSender<Chunk>, JoinHandle<(Sha256Hex, u64)>) {
    let (hash_tx, hash_rx) = sync_channel::<Chunk>(in_flight);
    let hasher = std::thread::spawn(move || {
        let mut h = Sha256::new();
        let mut n = 0u64;
        for chunk in hash_rx {
            h.update(&chunk[..]);
            n += chunk.len() as u64;
            if let (Some(back), Ok(buf)) = (&back, std::sync::Arc::try_unwrap(chunk)) {
                let _ = back.try_send(buf);
            }
        }
        (Sha256Hex::from_hasher(h), n)
    });
    (hash_tx, hasher)
}

/// Compressed bytes read from the kit file per step.
const IN_CHUNK: usize = 512 << 10;

/// The decompression thread. Compressed chunks go to a third thread that hashes them (the kit
/// file's SHA-256, of exactly the bytes decompressed), so neither hashing pass slows the other.
fn produce(mut file: Box<dyn Read + Send>, tx: SyncSender<Msg>, recycle: Receiver<Vec<u8>>) {
    use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};
    // Input buffers go back to the reader once hashed, so memory stays a few fixed buffers.
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(2);
    let (hash_tx, hasher) = spawn_hasher(Some(back_tx), IN_FLIGHT);
    let fail = |f: DecodeFailure| {
        let _ = tx.send(Msg::Fail(f));
    };
    let mut decoder = match Decoder::new().and_then(|mut d| {
        d.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))?;
        Ok(d)
    }) {
        Ok(d) => d,
        Err(e) => return fail(DecodeFailure::Io(e.to_string())),
    };
    let next_out = |recycle: &Receiver<Vec<u8>>| {
        let mut b = recycle.try_recv().unwrap_or_default();
        b.resize(CHUNK, 0);
        b
    };
    let mut out = next_out(&recycle);
    let mut out_pos = 0;
    // True between frames: at the end of the file a frame must not be half decoded.
    let mut frame_done = true;
    // The frames' structure is checked before their content is decoded.
    let mut walker = FrameWalker::default();
    loop {
        let mut input = back_rx.try_recv().unwrap_or_default();
        input.resize(IN_CHUNK, 0);
        let n = match crate::util::read_full(&mut file, &mut input) {
            Ok(n) => n,
            Err(e) => {
                return fail(match crate::kit::parts::PartError::of(&e) {
                    Some(p) => DecodeFailure::Part(p.clone()),
                    None => DecodeFailure::Io(e.to_string()),
                });
            }
        };
        if n == 0 {
            break;
        }
        input.truncate(n);
        if let Err(e) = walker.feed(&input) {
            return fail(DecodeFailure::FrameShape(e));
        }
        let input = std::sync::Arc::new(input);
        if hash_tx.send(std::sync::Arc::clone(&input)).is_err() {
            return fail(DecodeFailure::Io("hashing thread stopped".into()));
        }
        let mut inb = InBuffer::around(&input[..]);
        loop {
            let mut outb = OutBuffer::around_pos(&mut out[..], out_pos);
            let hint = match decoder.run(&mut inb, &mut outb) {
                Ok(h) => h,
                Err(e) => return fail(DecodeFailure::Corrupt(e.to_string())),
            };
            let produced = outb.pos() - out_pos;
            out_pos = outb.pos();
            frame_done = hint == 0;
            if out_pos == CHUNK {
                let full = std::mem::replace(&mut out, next_out(&recycle));
                out_pos = 0;
                if tx.send(Msg::Data(full)).is_err() {
                    return;
                }
            } else if inb.pos() == n && produced == 0 {
                break;
            } else if inb.pos() == n && out_pos < CHUNK {
                // Input used up and room left: the decoder has nothing more for now.
                break;
            }
        }
    }
    if out_pos > 0 {
        out.truncate(out_pos);
        if tx.send(Msg::Data(out)).is_err() {
            return;
        }
    }
    if !frame_done || !walker.at_frame_boundary() {
        return fail(DecodeFailure::Truncated);
    }
    drop(hash_tx);
    match hasher.join() {
        Ok((sha256, compressed)) => {
            let _ = tx.send(Msg::End { sha256, compressed });
        }
        Err(_) => fail(DecodeFailure::Io("hashing thread panicked".into())),
    }
}

/// Most decompressed bytes of one frame decoded whole by a worker of [`DecodedStream::open_frames`];
/// a larger frame (never written by `offkit build`, whose frames hold 8 MiB) is decoded as a stream
/// by the reading thread, in order.
pub const MAX_PARALLEL_FRAME: u64 = 16 << 20;

/// Compressed bytes shared by the reading, hashing and decoding threads.
type Chunk = std::sync::Arc<Vec<u8>>;

/// A frame for a worker: its number in the stream, its compressed bytes, its content size.
type Job = (u64, std::sync::Arc<Vec<u8>>, usize);

/// One piece of the decompressed stream, in order.
enum Piece {
    Data(Vec<u8>),
    Fail(DecodeFailure),
    End(StreamEnd),
}

impl DecodedStream {
    /// As [`DecodedStream::open_reader`], decompressing the frames on `workers` threads: `sizes`
    /// are the compressed sizes of the file's frames (the header frame's, then the signed frame
    /// index's), which cut the file into frames without decoding it. The frames' structure is
    /// still walked and the file hashed as it is read; each frame is decompressed whole (its
    /// content size, from its own header, at most [`MAX_PARALLEL_FRAME`]) and delivered in order.
    /// Bytes after the listed frames, and frames too large, are decoded on the reading thread.
    /// Memory: about `workers + 2` decompressed frames (8 MiB each as built, reused from frame to
    /// frame) and `workers + 4` compressed ones in flight.
    pub fn open_frames(
        input: Box<dyn Read + Send>,
        sizes: Vec<u64>,
        workers: usize,
        limit: u64,
    ) -> io::Result<DecodedStream> {
        // A rendezvous: the ordering thread hands each frame over as the consumer asks for it.
        let (tx, rx) = sync_channel(0);
        let workers = workers.max(1);
        // Decoded frames the consumer is done with go back to the workers: a frame's pages are
        // written once, not faulted in afresh for every frame.
        let (recycle_tx, recycle_rx) = sync_channel(workers + 1);
        let handle = std::thread::Builder::new()
            .name("offkit-read-frames".into())
            .spawn(move || produce_frames(input, sizes, workers, tx, recycle_rx))?;
        Ok(Self::fed_by(rx, recycle_tx, handle, limit))
    }
}

/// Numbers the pieces of [`produce_frames`] and bounds them: a token is taken per piece and given
/// back when the piece is delivered.
struct Emitter {
    seq: u64,
    tokens: Receiver<()>,
    pieces: SyncSender<(u64, Piece)>,
}

impl Emitter {
    /// Takes a token and the next number; `None` once the consumer is gone.
    fn next(&mut self) -> Option<u64> {
        self.tokens.recv().ok()?;
        self.seq += 1;
        Some(self.seq - 1)
    }

    /// Sends a piece decoded here; false once the consumer is gone.
    fn emit(&mut self, piece: Piece) -> bool {
        match self.next() {
            Some(seq) => self.pieces.send((seq, piece)).is_ok(),
            None => false,
        }
    }
}

/// The compressed bytes after the listed frames, walked and hashed as they are read.
struct Tap<'a> {
    inner: &'a mut dyn Read,
    walker: &'a mut FrameWalker,
    hash: &'a SyncSender<Chunk>,
    read: u64,
}

impl Read for Tap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.walker
            .feed(&buf[..n])
            .map_err(|e| DecodeFailure::FrameShape(e).into_io())?;
        let _ = self.hash.send(std::sync::Arc::new(buf[..n].to_vec()));
        self.read += n as u64;
        Ok(n)
    }
}

/// The reading thread of [`DecodedStream::open_frames`]: frames go to the workers, pieces come
/// back numbered and an ordering thread hands them to the consumer in order.
fn produce_frames(
    mut file: Box<dyn Read + Send>,
    sizes: Vec<u64>,
    workers: usize,
    tx: SyncSender<Msg>,
    spare: Receiver<Vec<u8>>,
) {
    use std::sync::{Arc, Mutex};
    let tokens = workers + 1;
    let (tok_tx, tok_rx) = sync_channel::<()>(tokens);
    for _ in 0..tokens {
        let _ = tok_tx.send(());
    }
    let (piece_tx, piece_rx) = sync_channel::<(u64, Piece)>(tokens);
    let orderer = std::thread::spawn(move || order(piece_rx, tx, tok_tx));
    let (job_tx, job_rx) = sync_channel::<Job>(1);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let spare = Arc::new(Mutex::new(spare));
    // Compressed frames go back to this thread once hashed and decoded (by whichever of the
    // two lets go last).
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(workers + 2);
    let pool: Vec<_> = (0..workers)
        .map(|_| {
            let jobs = Arc::clone(&job_rx);
            let spare = Arc::clone(&spare);
            let out = piece_tx.clone();
            let back = back_tx.clone();
            std::thread::spawn(move || decode_jobs(&jobs, &spare, &back, &out))
        })
        .collect();
    let mut emitter = Emitter {
        seq: 0,
        tokens: tok_rx,
        pieces: piece_tx,
    };
    // One whole frame waits to be hashed beside the one being hashed: frames are large.
    let (hash_tx, hasher) = spawn_hasher(Some(back_tx), 1);
    let mut walker = FrameWalker::default();
    let mut compressed = 0u64;
    let failed = (|| -> Result<(), DecodeFailure> {
        // A chunk the index cut that is not exactly one frame (a kit whose frames are not the
        // ones its index lists: a reader accepts any frames) ends the parallel part.
        let mut carry: Option<Vec<u8>> = None;
        for size in &sizes {
            // A frame the index says is larger than a whole frame of MAX_PARALLEL_FRAME could
            // compress to is not read whole: the rest is decoded as a stream.
            let Some(size) = usize::try_from(*size)
                .ok()
                .filter(|s| *s as u64 <= MAX_PARALLEL_FRAME + (MAX_PARALLEL_FRAME >> 7) + 1024)
            else {
                break;
            };
            // A recycled buffer is only zeroed where it grows.
            let mut bytes = back_rx.try_recv().unwrap_or_default();
            bytes.resize(size, 0);
            let n = crate::util::read_full(&mut file, &mut bytes).map_err(|e| read_failure(&e))?;
            bytes.truncate(n);
            walker.feed(&bytes).map_err(DecodeFailure::FrameShape)?;
            compressed += n as u64;
            let bytes = Arc::new(bytes);
            hash_tx
                .send(Arc::clone(&bytes))
                .map_err(|_| DecodeFailure::Io("hashing thread stopped".into()))?;
            let whole = zstd::zstd_safe::find_frame_compressed_size(&bytes) == Ok(bytes.len());
            let len = zstd::zstd_safe::get_frame_content_size(&bytes)
                .ok()
                .flatten()
                .filter(|l| *l <= MAX_PARALLEL_FRAME);
            match len {
                Some(len) if whole => {
                    let Some(seq) = emitter.next() else {
                        return Ok(());
                    };
                    if job_tx.send((seq, bytes, len as usize)).is_err() {
                        return Ok(());
                    }
                }
                _ if whole => stream_decode(&mut io::Cursor::new(&bytes[..]), &mut emitter)?,
                _ => {
                    carry = Some(Arc::unwrap_or_clone(bytes));
                    break;
                }
            }
        }
        // What is left — bytes after the listed frames (none in a kit as built), or everything
        // from a chunk that was not one frame — is decoded here, in order.
        let mut tap = Tap {
            inner: &mut *file,
            walker: &mut walker,
            hash: &hash_tx,
            read: 0,
        };
        let mut first = carry.unwrap_or_default();
        if first.is_empty() {
            first.resize(IN_CHUNK, 0);
            let n = crate::util::read_full(&mut tap, &mut first).map_err(|e| {
                DecodeFailure::of(&e)
                    .cloned()
                    .unwrap_or_else(|| read_failure(&e))
            })?;
            first.truncate(n);
        }
        let decoded = if first.is_empty() {
            Ok(())
        } else {
            stream_decode(&mut io::Cursor::new(first).chain(&mut tap), &mut emitter)
        };
        compressed += tap.read;
        if !walker.at_frame_boundary() {
            return Err(DecodeFailure::Truncated);
        }
        decoded
    })()
    .err();
    drop(job_tx);
    drop(hash_tx);
    let last = match (failed, hasher.join()) {
        (Some(f), _) => Piece::Fail(f),
        (None, Ok((sha256, n))) if n == compressed => Piece::End(StreamEnd { sha256, compressed }),
        (None, _) => Piece::Fail(DecodeFailure::Io("hashing thread failed".into())),
    };
    emitter.emit(last);
    drop(emitter);
    for w in pool {
        let _ = w.join();
    }
    let _ = orderer.join();
}

/// A worker: decompresses whole frames of known content size, into a buffer the consumer gave
/// back when there is one (`spare`), handing the compressed frame `back` when it holds it last.
fn decode_jobs(
    jobs: &std::sync::Mutex<Receiver<Job>>,
    spare: &std::sync::Mutex<Receiver<Vec<u8>>>,
    back: &SyncSender<Vec<u8>>,
    out: &SyncSender<(u64, Piece)>,
) {
    let mut d = None;
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((seq, bytes, len)) = job else { return };
        let d = match &mut d {
            Some(d) => d,
            None => match zstd::bulk::Decompressor::new() {
                Ok(n) => d.insert(n),
                Err(e) => {
                    let _ = out.send((seq, Piece::Fail(DecodeFailure::Io(e.to_string()))));
                    return;
                }
            },
        };
        let mut v = spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_recv()
            .unwrap_or_default();
        v.clear();
        v.reserve_exact(len);
        let piece = match d.decompress_to_buffer(&bytes, &mut v) {
            Ok(n) if n == len => Piece::Data(v),
            Ok(n) => Piece::Fail(DecodeFailure::Corrupt(format!(
                "a frame decodes to {n} bytes; its header says {len}"
            ))),
            Err(e) => Piece::Fail(DecodeFailure::Corrupt(e.to_string())),
        };
        if let Ok(b) = std::sync::Arc::try_unwrap(bytes) {
            let _ = back.try_send(b);
        }
        if out.send((seq, piece)).is_err() {
            return;
        }
    }
}

/// Decodes whole frames from `input` as a stream into pieces of at most [`CHUNK`] bytes.
fn stream_decode(input: &mut dyn Read, emitter: &mut Emitter) -> Result<(), DecodeFailure> {
    let mut d =
        zstd::stream::read::Decoder::new(input).map_err(|e| DecodeFailure::Io(e.to_string()))?;
    d.window_log_max(MAX_WINDOW_LOG)
        .map_err(|e| DecodeFailure::Io(e.to_string()))?;
    loop {
        let mut out = vec![0u8; CHUNK];
        let n = crate::util::read_full(&mut d, &mut out).map_err(|e| {
            DecodeFailure::of(&e)
                .cloned()
                .unwrap_or_else(|| DecodeFailure::Corrupt(e.to_string()))
        })?;
        if n == 0 {
            return Ok(());
        }
        out.truncate(n);
        if !emitter.emit(Piece::Data(out)) {
            return Ok(());
        }
    }
}

fn read_failure(e: &io::Error) -> DecodeFailure {
    match crate::kit::parts::PartError::of(e) {
        Some(p) => DecodeFailure::Part(p.clone()),
        None => DecodeFailure::Io(e.to_string()),
    }
}

/// Hands the pieces to the consumer in their order, giving a token back for each.
fn order(pieces: Receiver<(u64, Piece)>, tx: SyncSender<Msg>, tokens: SyncSender<()>) {
    let mut pending = std::collections::BTreeMap::new();
    let mut next = 0u64;
    for (seq, piece) in pieces {
        pending.insert(seq, piece);
        while let Some(piece) = pending.remove(&next) {
            next += 1;
            let (msg, last) = match piece {
                Piece::Data(v) => (Msg::Data(v), false),
                Piece::Fail(f) => (Msg::Fail(f), true),
                Piece::End(e) => (
                    Msg::End {
                        sha256: e.sha256,
                        compressed: e.compressed,
                    },
                    true,
                ),
            };
            if tx.send(msg).is_err() || last {
                return;
            }
            let _ = tokens.try_send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut DecodedStream) -> Result<Vec<u8>, io::Error> {
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn frames_decode_in_order_and_the_file_digest_is_of_the_exact_bytes() {
        let a: Vec<u8> = (0..3_000_000u32).map(|i| (i % 97) as u8).collect();
        let b: Vec<u8> = (0..2_500_000u32).map(|i| (i / 7 % 251) as u8).collect();
        let mut c = crate::kit::frame::new_compressor(3).unwrap();
        let mut file = c.compress(&a).unwrap();
        file.extend(c.compress(&b).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.zst");
        std::fs::write(&path, &file).unwrap();

        let mut s = DecodedStream::open(&path, u64::MAX).unwrap();
        let out = drain(&mut s).unwrap();
        assert!(out == [a.clone(), b].concat());
        let end = s.end().unwrap();
        assert_eq!(end.sha256, Sha256Hex::of(&file));
        assert_eq!(end.compressed, file.len() as u64);

        // Cut inside the second frame: truncated, not silently short.
        std::fs::write(&path, &file[..file.len() - 10]).unwrap();
        let mut s = DecodedStream::open(&path, u64::MAX).unwrap();
        let err = drain(&mut s).unwrap_err();
        assert_eq!(DecodeFailure::of(&err), Some(&DecodeFailure::Truncated));

        // A limit stops a stream that grows past it.
        std::fs::write(&path, &file).unwrap();
        let mut s = DecodedStream::open(&path, 1_000_000).unwrap();
        let err = drain(&mut s).unwrap_err();
        assert_eq!(
            DecodeFailure::of(&err),
            Some(&DecodeFailure::LimitExceeded { limit: 1_000_000 })
        );

        // A frame without a checksum is refused before it is decoded.
        let mut plain = file.clone();
        plain.extend(zstd::bulk::compress(b"unsigned", 3).unwrap());
        std::fs::write(&path, &plain).unwrap();
        let mut s = DecodedStream::open(&path, u64::MAX).unwrap();
        let err = drain(&mut s).unwrap_err();
        assert!(matches!(
            DecodeFailure::of(&err),
            Some(DecodeFailure::FrameShape(_))
        ));
    }

    #[test]
    fn frames_decoded_in_parallel_arrive_in_order_whatever_the_index_says() {
        let mut c = crate::kit::frame::new_compressor(3).unwrap();
        let parts: Vec<Vec<u8>> = (0..7u32)
            .map(|k| {
                (0..400_000u32)
                    .map(|i| ((i * (k + 3)) % 251) as u8)
                    .collect()
            })
            .collect();
        let frames: Vec<Vec<u8>> = parts.iter().map(|p| c.compress(p).unwrap()).collect();
        let file = frames.concat();
        let whole = parts.concat();
        let sizes: Vec<u64> = frames.iter().map(|f| f.len() as u64).collect();
        let open = |bytes: &[u8], sizes: Vec<u64>, limit| {
            DecodedStream::open_frames(Box::new(io::Cursor::new(bytes.to_vec())), sizes, 3, limit)
                .unwrap()
        };
        // As listed: in order, and the digest is of the exact bytes.
        let mut s = open(&file, sizes.clone(), u64::MAX);
        assert!(drain(&mut s).unwrap() == whole);
        assert_eq!(s.end().unwrap().sha256, Sha256Hex::of(&file));
        // Frames the index does not list, or an index that cuts inside frames: still the same
        // bytes (decoded as a stream from where the index stops describing the file).
        for sizes in [
            sizes[..3].to_vec(),
            vec![sizes[0] + 5, 10, 10],
            vec![sizes[0], u64::MAX],
        ] {
            let mut s = open(&file, sizes, u64::MAX);
            assert!(drain(&mut s).unwrap() == whole);
            assert_eq!(s.end().unwrap().compressed, file.len() as u64);
        }
        // Cut inside the last frame: truncated.
        let cut = &file[..file.len() - 10];
        let mut s = open(cut, sizes.clone(), u64::MAX);
        let err = drain(&mut s).unwrap_err();
        assert_eq!(DecodeFailure::of(&err), Some(&DecodeFailure::Truncated));
        // The limit holds.
        let mut s = open(&file, sizes.clone(), 1_000_000);
        let err = drain(&mut s).unwrap_err();
        assert_eq!(
            DecodeFailure::of(&err),
            Some(&DecodeFailure::LimitExceeded { limit: 1_000_000 })
        );
        // A damaged frame is an error, after the frames before it were delivered.
        let mut bad = file.clone();
        let mid = sizes[0] as usize + sizes[1] as usize / 2;
        bad[mid] ^= 0xff;
        let mut s = open(&bad, sizes, u64::MAX);
        let mut got = Vec::new();
        assert!(s.read_to_end(&mut got).is_err());
        assert!(got.len() >= parts[0].len() && got[..parts[0].len()] == parts[0][..]);
    }
}
