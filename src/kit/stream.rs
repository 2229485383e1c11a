//! Decompression on its own thread, overlapped with whatever consumes the data.
//!
//! A producer thread reads the kit file, hashes the compressed bytes (the kit's SHA-256), and
//! decompresses into 1 MiB buffers sent over a bounded channel; [`DecodedStream`] hands those
//! buffers to the consumer as a `BufRead` without copying and sends them back for reuse. Memory is
//! a few buffers plus the zstd window, which is capped ([`MAX_WINDOW_LOG`]). A cap on the total
//! decompressed size turns a decompression bomb into an error instead of work.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::kit::layout::MAX_WINDOW_LOG;

const CHUNK: usize = 1 << 20;
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
    /// Reading the kit file failed.
    #[error("reading the kit file: {0}")]
    Io(String),
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
    End { sha256: String, compressed: u64 },
    Fail(DecodeFailure),
}

/// What the producer learnt once the whole file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// SHA-256 of the kit file (compressed bytes).
    pub sha256: String,
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
        let file = File::open(path)?;
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (recycle_tx, recycle_rx) = sync_channel(IN_FLIGHT + 2);
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

/// Hashes and counts the compressed bytes; remembers I/O errors of the file itself.
struct Source {
    file: File,
    hasher: Sha256,
    count: u64,
    io_error: Option<String>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.io_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

fn produce(file: File, tx: SyncSender<Msg>, recycle: Receiver<Vec<u8>>) {
    let source = Source {
        file,
        hasher: Sha256::new(),
        count: 0,
        io_error: None,
    };
    let mut decoder = match zstd::stream::read::Decoder::new(source) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Msg::Fail(DecodeFailure::Io(e.to_string())));
            return;
        }
    };
    if let Err(e) = decoder.window_log_max(MAX_WINDOW_LOG) {
        let _ = tx.send(Msg::Fail(DecodeFailure::Io(e.to_string())));
        return;
    }
    loop {
        let mut buf = recycle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let failure = loop {
            match decoder.read(&mut buf[filled..]) {
                Ok(0) => break None,
                Ok(n) => {
                    filled += n;
                    if filled == CHUNK {
                        break None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let src = decoder.get_ref().get_ref();
                    break Some(match &src.io_error {
                        Some(m) => DecodeFailure::Io(m.clone()),
                        None if e.kind() == io::ErrorKind::UnexpectedEof => {
                            DecodeFailure::Truncated
                        }
                        None if e.to_string().contains("incomplete frame") => {
                            DecodeFailure::Truncated
                        }
                        None => DecodeFailure::Corrupt(e.to_string()),
                    });
                }
            }
        };
        buf.truncate(filled);
        let at_end = filled < CHUNK;
        if filled > 0 && tx.send(Msg::Data(buf)).is_err() {
            return;
        }
        if let Some(f) = failure {
            let _ = tx.send(Msg::Fail(f));
            return;
        }
        if at_end {
            let src = decoder.finish().into_inner();
            let (hasher, count) = (src.hasher, src.count);
            let _ = tx.send(Msg::End {
                sha256: hex::encode(hasher.finalize()),
                compressed: count,
            });
            return;
        }
    }
}
