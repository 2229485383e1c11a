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
        Ok(DecodedStream {
            rx,
            recycle: recycle_tx,
            cur: Vec::new(),
            pos: 0,
            delivered: 0,
            limit,
            end: None,
            failed: None,
            handle: Some(handle),
        })
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

/// Compressed bytes read from the kit file per step.
const IN_CHUNK: usize = 512 << 10;

/// The decompression thread. Compressed chunks go to a third thread that hashes them (the kit
/// file's SHA-256, of exactly the bytes decompressed), so neither hashing pass slows the other.
fn produce(mut file: Box<dyn Read + Send>, tx: SyncSender<Msg>, recycle: Receiver<Vec<u8>>) {
    use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};
    let (hash_tx, hash_rx) = sync_channel::<std::sync::Arc<Vec<u8>>>(IN_FLIGHT);
    // Input buffers go back to the reader once hashed, so memory stays a few fixed buffers.
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(2);
    let hasher = std::thread::spawn(move || {
        let mut h = Sha256::new();
        let mut n = 0u64;
        for chunk in hash_rx {
            h.update(&chunk[..]);
            n += chunk.len() as u64;
            if let Ok(buf) = std::sync::Arc::try_unwrap(chunk) {
                let _ = back_tx.try_send(buf);
            }
        }
        (Sha256Hex::from_hasher(h), n)
    });
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
}
