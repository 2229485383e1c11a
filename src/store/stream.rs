//! Readers and writers that check as data streams through them, so that no driver can forget to.
//!
//! [`VerifyingReader`] is the body of every put: it counts and hashes the bytes a driver pulls and,
//! at the end of the stream, fails the read if they are not exactly the promised size and SHA-256
//! (in the manner of tough's `DigestAdapter`). Drivers read the body to its end before making an
//! object visible, so a source that changed on disk can never become a stored object.
//! [`HashingWriter`] is the sink used to read an object back and learn its digest.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::error::StoreError;

/// The size and SHA-256 of an object's bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectDigest {
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// A sink that hashes and counts what is written to it.
#[derive(Default)]
pub struct HashingWriter {
    hasher: Sha256,
    size: u64,
}

impl HashingWriter {
    /// A fresh sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The digest of everything written.
    pub fn finish(self) -> ObjectDigest {
        ObjectDigest {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes a whole reader (a seed's source file) without holding it in memory.
pub fn digest_of(mut r: impl Read) -> io::Result<ObjectDigest> {
    let mut w = HashingWriter::new();
    io::copy(&mut r, &mut w)?;
    Ok(w.finish())
}

/// What the stream turned out to be, when it was not what was promised.
#[derive(Debug, Clone)]
struct Mismatch {
    actual_size: u64,
    actual_sha256: String,
}

/// A put body that fails at its end unless it delivered exactly `size` bytes with SHA-256
/// `sha256`. Reading past the promised size fails at once.
pub struct VerifyingReader<R> {
    inner: R,
    key: String,
    expected_size: u64,
    expected_sha256: String,
    read: u64,
    hasher: Sha256,
    /// Failpoint armed once half of the object was delivered (crash tests cut puts mid-stream).
    failpoint: Option<(String, u64)>,
    mismatch: Option<Mismatch>,
    complete: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must deliver `size` bytes with digest `sha256` for the object `key`.
    pub fn new(inner: R, key: &str, size: u64, sha256: &str) -> Self {
        VerifyingReader {
            inner,
            key: key.to_owned(),
            expected_size: size,
            expected_sha256: sha256.to_ascii_lowercase(),
            read: 0,
            hasher: Sha256::new(),
            failpoint: None,
            mismatch: None,
            complete: false,
        }
    }

    /// Arms the failpoint `name`, reached when a driver asks for more after half the bytes.
    pub fn with_failpoint(mut self, name: String) -> Self {
        let threshold = (self.expected_size / 2).max(1);
        self.failpoint = Some((name, threshold));
        self
    }

    /// True once the whole stream was read and matched the promise.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Bytes delivered so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The typed error describing a mismatch, if the stream turned out not to match.
    pub fn mismatch_error(&self) -> Option<StoreError> {
        self.mismatch.as_ref().map(|m| StoreError::SourceMismatch {
            key: self.key.clone(),
            expected_size: self.expected_size,
            expected_sha256: self.expected_sha256.clone(),
            actual_size: m.actual_size,
            actual_sha256: m.actual_sha256.clone(),
        })
    }

    fn fail(&mut self) -> io::Error {
        let actual_sha256 = hex::encode(self.hasher.clone().finalize());
        self.mismatch = Some(Mismatch {
            actual_size: self.read,
            actual_sha256,
        });
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "source for {:?} does not match its promised size and sha256",
                self.key
            ),
        )
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((name, threshold)) = &self.failpoint {
            if self.read >= *threshold {
                crate::failpoint::hit(name);
                self.failpoint = None;
            }
        }
        if self.mismatch.is_some() {
            return Err(self.fail());
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            let actual = hex::encode(self.hasher.clone().finalize());
            if self.read != self.expected_size || actual != self.expected_sha256 {
                return Err(self.fail());
            }
            self.complete = true;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.expected_size {
            return Err(self.fail());
        }
        Ok(n)
    }
}

pub use crate::util::read_full;

/// Reads to the end of `r`, which must yield no more bytes (the end check of a
/// [`VerifyingReader`] happens on that final read).
pub fn expect_end(r: &mut dyn Read) -> io::Result<()> {
    let mut probe = [0u8; 1];
    loop {
        match r.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "more bytes than promised",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn accepts_exact_stream() {
        let mut r = VerifyingReader::new(&b"hello"[..], "k", 5, HELLO_SHA);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert!(r.is_complete());
        assert!(r.mismatch_error().is_none());
    }

    #[test]
    fn refuses_changed_bytes_at_the_end() {
        let mut r = VerifyingReader::new(&b"hellO"[..], "k", 5, HELLO_SHA);
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(!r.is_complete());
        assert!(matches!(
            r.mismatch_error(),
            Some(StoreError::SourceMismatch { actual_size: 5, .. })
        ));
    }

    #[test]
    fn refuses_longer_and_shorter_streams() {
        let mut out = Vec::new();
        let mut r = VerifyingReader::new(&b"hello!"[..], "k", 5, HELLO_SHA);
        assert!(r.read_to_end(&mut out).is_err());
        let mut r = VerifyingReader::new(&b"hell"[..], "k", 5, HELLO_SHA);
        assert!(r.read_to_end(&mut out).is_err());
        assert!(!r.is_complete());
    }

    #[test]
    fn hashing_writer_digests() {
        let d = digest_of(&b"hello"[..]).unwrap();
        assert_eq!(d.size, 5);
        assert_eq!(d.sha256, HELLO_SHA);
    }
}
