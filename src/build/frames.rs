//! Parallel zstd frame compression with ordered output.
//!
//! The producer fills blocks of up to [`FRAME_BYTES`] uncompressed bytes; worker threads compress
//! each block into an independent zstd frame (with content size and checksum); one writer thread
//! writes frames in block order. Concatenated frames are one valid zstd stream, and the output is
//! the same bytes whatever the number of workers. Memory is bounded by the number of blocks in
//! flight (about four per worker).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::kit::digest::Sha256Hex;
use crate::kit::frame::{compress_frame, new_compressor};
use crate::kit::layout::FRAME_BYTES;
use crate::kit::manifest::FrameEntry;

/// What the writer thread wrote.
#[derive(Debug, Default)]
pub struct Finished {
    /// At each mark: the output offset and the number of frames before it.
    pub marks: Vec<(u64, usize)>,
    /// Every frame written, by compressed size and SHA-256, in order.
    pub frames: Vec<FrameEntry>,
    /// Total bytes written.
    pub written: u64,
}

type WriterResult = io::Result<Finished>;

enum Job {
    Block(u64, Vec<u8>),
    /// Records the output offset at this point in the sequence.
    Mark(u64),
}

enum Done {
    Frame(u64, io::Result<Vec<u8>>),
    Mark(u64),
}

/// The producer side of the pipeline.
pub struct FrameWriter {
    block: Vec<u8>,
    seq: u64,
    jobs: Option<SyncSender<Job>>,
    done: SyncSender<Done>,
    recycle: Receiver<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<WriterResult>>,
}

impl FrameWriter {
    /// Starts `workers` compression threads at `level` and a writer thread into `out`.
    pub fn new<W: Write + Send + 'static>(out: W, level: i32, workers: usize) -> io::Result<Self> {
        let workers = workers.max(1);
        let (job_tx, job_rx) = sync_channel::<Job>(workers * 2);
        let (done_tx, done_rx) = sync_channel::<Done>(workers * 2);
        let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(workers * 4);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut handles = Vec::new();
        for _ in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let recycle_tx = recycle_tx.clone();
            let mut compressor = new_compressor(level)?;
            handles.push(thread::spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let msg = match job {
                        Ok(Job::Block(seq, mut block)) => {
                            let frame = compress_frame(&mut compressor, &block);
                            block.clear();
                            let _ = recycle_tx.try_send(block);
                            Done::Frame(seq, frame)
                        }
                        Ok(Job::Mark(seq)) => Done::Mark(seq),
                        Err(_) => return,
                    };
                    if done_tx.send(msg).is_err() {
                        return;
                    }
                }
            }));
        }
        let writer = thread::spawn(move || write_in_order(out, done_rx));
        Ok(FrameWriter {
            block: Vec::with_capacity(FRAME_BYTES),
            seq: 0,
            jobs: Some(job_tx),
            done: done_tx,
            recycle: recycle_rx,
            workers: handles,
            writer: Some(writer),
        })
    }

    /// Room left in the current block.
    pub fn room(&self) -> usize {
        FRAME_BYTES - self.block.len()
    }

    /// Appends bytes, cutting frames at block boundaries.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.room() == 0 {
                self.flush_block()?;
            }
            let n = self.room().min(bytes.len());
            self.block.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Lets `fill` write directly into the block's tail (up to `max` bytes); returns what it
    /// wrote. `fill` gets a zeroed slice and returns how many bytes it filled.
    pub fn fill_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.room() == 0 {
            self.flush_block()?;
        }
        let n = self.room().min(max);
        let start = self.block.len();
        self.block.resize(start + n, 0);
        let got = fill(&mut self.block[start..])?;
        self.block.truncate(start + got);
        Ok(got)
    }

    /// The bytes most recently written by [`FrameWriter::fill_with`] (the block's tail).
    pub fn tail(&self, n: usize) -> &[u8] {
        &self.block[self.block.len() - n..]
    }

    /// Ends the current frame and records the output offset at this point (returned by
    /// [`FrameWriter::finish`] in order of marking).
    pub fn mark(&mut self) -> io::Result<()> {
        self.flush_block()?;
        let seq = self.next_seq();
        self.send(Job::Mark(seq))
    }

    /// Flushes the last frame, stops the threads; returns the marked offsets and the total
    /// number of bytes written.
    pub fn finish(mut self) -> WriterResult {
        self.flush_block()?;
        self.jobs = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        drop(self.done);
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(io::Error::other("frame writer thread panicked")),
        }
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let mut next = self
            .recycle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(FRAME_BYTES));
        next.clear();
        let block = std::mem::replace(&mut self.block, next);
        let seq = self.next_seq();
        self.send(Job::Block(seq, block))
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    fn send(&self, job: Job) -> io::Result<()> {
        let sent = self
            .jobs
            .as_ref()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer failed and the pipeline shut down; finish() reports why.
            Err(io::Error::other("compression pipeline stopped"))
        }
    }
}

fn write_in_order<W: Write>(mut out: W, done: Receiver<Done>) -> WriterResult {
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut done_so_far = Finished::default();
    for msg in done {
        let seq = match &msg {
            Done::Frame(s, _) | Done::Mark(s) => *s,
        };
        pending.insert(seq, msg);
        while let Some(msg) = pending.remove(&next) {
            match msg {
                Done::Frame(_, frame) => {
                    let frame = frame?;
                    out.write_all(&frame)?;
                    done_so_far.written += frame.len() as u64;
                    done_so_far.frames.push(FrameEntry {
                        size: frame.len() as u64,
                        sha256: Sha256Hex::of(&frame),
                    });
                }
                Done::Mark(_) => done_so_far
                    .marks
                    .push((done_so_far.written, done_so_far.frames.len())),
            }
            next += 1;
        }
    }
    out.flush()?;
    Ok(done_so_far)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(workers: usize, data: &[u8]) -> (Vec<u8>, Vec<u64>) {
        let sink = Shared::default();
        let mut w = FrameWriter::new(sink.clone(), 3, workers).unwrap();
        let (a, b) = data.split_at(data.len() / 3);
        w.write_all(a).unwrap();
        w.mark().unwrap();
        w.write_all(b).unwrap();
        let done = w.finish().unwrap();
        let bytes = sink.0.lock().unwrap().clone();
        assert_eq!(done.written as usize, bytes.len());
        let sizes: u64 = done.frames.iter().map(|f| f.size).sum();
        assert_eq!(sizes, done.written);
        (bytes, done.marks.iter().map(|m| m.0).collect())
    }

    #[test]
    fn output_is_identical_for_any_worker_count_and_decodes() {
        let data: Vec<u8> = (0..20_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let (one, m1) = run(1, &data);
        let (four, m4) = run(4, &data);
        assert_eq!(one, four);
        assert_eq!(m1, m4);
        let mut decoded = Vec::new();
        zstd::stream::read::Decoder::new(&one[..])
            .unwrap()
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, data);
    }
}
