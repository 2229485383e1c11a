//! SHA-256 digests and the one reader that checks bytes against a promised digest.
//!
//! [`Sha256Hex`] is a digest as the manifest and SHA256SUMS write it (64 lowercase hex digits);
//! its only constructors check that shape. [`DigestReader`] wraps a byte source that must deliver
//! exactly a promised size and SHA-256 (in the manner of tough's `DigestAdapter`): it counts and
//! hashes what passes and fails the read that would exceed the size, and the final read, if the
//! bytes were not the promised ones. Everything offkit uses after verification — migrations,
//! rollbacks, seed objects — and every body a store driver stores passes through it, so no caller
//! can forget the check.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Hex(String);

/// Text that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 digest (64 lowercase hex digits)")]
pub struct DigestError(pub String);

impl Sha256Hex {
    /// Validates digest text: exactly 64 lowercase hex digits.
    pub fn new(s: &str) -> Result<Self, DigestError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256Hex(s.to_owned()))
        } else {
            Err(DigestError(s.chars().take(80).collect()))
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Hex(hex::encode(Sha256::digest(bytes)))
    }

    /// The digest of everything `r` yields.
    pub fn of_reader(mut r: impl Read) -> io::Result<Self> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = crate::util::read_full(&mut r, &mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Self::from_hasher(h))
    }

    /// The digest of a file's content.
    pub fn of_file(path: &std::path::Path) -> io::Result<Self> {
        Self::of_reader(std::fs::File::open(path)?)
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(h: Sha256) -> Self {
        Sha256Hex(hex::encode(h.finalize()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex text, moved out.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Sha256Hex {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Sha256Hex {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Sha256Hex {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Sha256Hex {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

crate::kit::names::serde_as_text!(Sha256Hex, Sha256Hex::new);

/// A SHA-256 digest held as its 32 bytes, for what is kept per object when there may be a million
/// objects (a [`Sha256Hex`] keeps 64 digits on the heap). Shown and serialised as 64 lowercase
/// hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Bytes([u8; 32]);

impl Sha256Bytes {
    /// From 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(Sha256Bytes(bytes))
    }
}

impl fmt::Display for Sha256Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 64];
        // 32 bytes always fit 64 digits.
        let _ = hex::encode_to_slice(self.0, &mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl PartialEq<str> for Sha256Bytes {
    /// Whether `other` is this digest's hex text (either case).
    fn eq(&self, other: &str) -> bool {
        Sha256Bytes::from_hex(other) == Some(*self)
    }
}

impl PartialEq<String> for Sha256Bytes {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

impl serde::Serialize for Sha256Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a stream turned out to hold when it was not what was promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The promised size.
    pub expected_size: u64,
    /// The promised SHA-256.
    pub expected_sha256: String,
    /// Bytes delivered (up to and including the one that broke the promise).
    pub actual_size: u64,
    /// SHA-256 of the bytes delivered.
    pub actual_sha256: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes with sha256 {}; expected {} bytes with sha256 {}",
            self.actual_size, self.actual_sha256, self.expected_size, self.expected_sha256
        )
    }
}

/// A reader that fails unless its source delivers exactly `size` bytes with SHA-256 `sha256`.
/// Reading past the promised size fails at once; a short or different stream fails on the read
/// that returns its end. The error is [`io::ErrorKind::InvalidData`] and
/// [`DigestReader::mismatch`] says what was found.
pub struct DigestReader<R> {
    inner: R,
    label: String,
    expected_size: u64,
    expected_sha256: String,
    read: u64,
    hasher: Sha256,
    /// Failpoint reached once half of the bytes were delivered (crash tests cut puts mid-stream).
    failpoint: Option<(String, u64)>,
    mismatch: Option<Mismatch>,
    /// The source's own read error, when it failed (kept so that a consumer's failure can be
    /// told apart from its source's).
    source_error: Option<(io::ErrorKind, String)>,
    complete: bool,
}

impl<R: Read> DigestReader<R> {
    /// Wraps `inner`, which must deliver `size` bytes with digest `sha256`; `label` (a kit path or
    /// an object key) names the bytes in errors.
    pub fn new(inner: R, label: &str, size: u64, sha256: &str) -> Self {
        DigestReader {
            inner,
            label: label.to_owned(),
            expected_size: size,
            expected_sha256: sha256.to_ascii_lowercase(),
            read: 0,
            hasher: Sha256::new(),
            failpoint: None,
            mismatch: None,
            source_error: None,
            complete: false,
        }
    }

    /// The error the source itself returned, if a read of it failed (a consumer that stopped
    /// because of it reports its own error; this says the cause was the source).
    pub fn source_error(&self) -> Option<io::Error> {
        self.source_error
            .as_ref()
            .map(|(kind, message)| io::Error::new(*kind, message.clone()))
    }

    /// Arms the failpoint `name` (see [`crate::failpoint`]), reached when a consumer asks for
    /// more after half the bytes.
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

    /// What the stream turned out to be, if it broke its promise.
    pub fn mismatch(&self) -> Option<&Mismatch> {
        self.mismatch.as_ref()
    }

    fn fail(&mut self) -> io::Error {
        let mismatch = self.mismatch.get_or_insert_with(|| Mismatch {
            expected_size: self.expected_size,
            expected_sha256: self.expected_sha256.clone(),
            actual_size: self.read,
            actual_sha256: hex::encode(self.hasher.clone().finalize()),
        });
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {mismatch}", self.label),
        )
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((name, threshold)) = &self.failpoint
            && self.read >= *threshold
        {
            crate::failpoint::hit(name);
            self.failpoint = None;
        }
        if self.mismatch.is_some() {
            return Err(self.fail());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.source_error = Some((e.kind(), e.to_string()));
                return Err(e);
            }
        };
        if n == 0 {
            let actual = hex::encode(self.hasher.clone().finalize());
            if self.read != self.expected_size || actual != self.expected_sha256 {
                return Err(self.fail());
            }
            self.complete = true;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.expected_size {
            return Err(self.fail());
        }
        Ok(n)
    }
}

/// Reads all of `inner`, which must be exactly `size` bytes with SHA-256 `sha256`; `label` names
/// it in errors. Memory is bounded by `size` (a longer source fails at `size + 1` bytes).
pub fn read_checked(
    inner: impl Read,
    label: &str,
    size: u64,
    sha256: &str,
) -> Result<Vec<u8>, CheckedReadError> {
    let mut r = DigestReader::new(inner, label, size, sha256);
    let mut out = Vec::with_capacity(usize::try_from(size.min(64 << 20)).unwrap_or(0));
    match r.read_to_end(&mut out) {
        Ok(_) if r.is_complete() => Ok(out),
        Ok(_) => Err(CheckedReadError::Io(io::Error::other(
            "stream ended unchecked",
        ))),
        Err(e) => Err(match r.mismatch() {
            Some(m) => CheckedReadError::Mismatch(m.clone()),
            None => CheckedReadError::Io(e),
        }),
    }
}

/// Why [`read_checked`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckedReadError {
    /// The bytes are not the promised ones.
    #[error("{0}")]
    Mismatch(Mismatch),
    /// Reading failed.
    #[error(transparent)]
    Io(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_digest_held_as_bytes_shows_and_serialises_as_lowercase_hex() {
        let d = Sha256Bytes::from_hex(&HELLO_SHA.to_uppercase()).unwrap();
        assert_eq!(d.to_string(), HELLO_SHA);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{HELLO_SHA}\"")
        );
        assert!(d == *HELLO_SHA && d == HELLO_SHA.to_uppercase());
        assert!(Sha256Bytes::from_hex(&HELLO_SHA[1..]).is_none());
        assert!(Sha256Bytes::from_hex(&HELLO_SHA.replace('c', "g")).is_none());
    }

    #[test]
    fn digest_text_is_strict() {
        assert!(Sha256Hex::new(HELLO_SHA).is_ok());
        assert!(Sha256Hex::new(&HELLO_SHA.to_uppercase()).is_err());
        assert!(Sha256Hex::new(&HELLO_SHA[1..]).is_err());
        assert!(Sha256Hex::new(&format!("{HELLO_SHA} ")).is_err());
        assert_eq!(Sha256Hex::of(b"hello"), HELLO_SHA);
    }

    #[test]
    fn accepts_the_exact_stream() {
        let mut r = DigestReader::new(&b"hello"[..], "k", 5, HELLO_SHA);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert!(r.is_complete());
        assert!(r.mismatch().is_none());
        assert_eq!(
            read_checked(&b"hello"[..], "k", 5, HELLO_SHA).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn refuses_changed_longer_and_shorter_streams() {
        for (data, size) in [(&b"hellO"[..], 5), (b"hello!", 5), (b"hell", 5)] {
            let mut r = DigestReader::new(data, "k", size, HELLO_SHA);
            let mut out = Vec::new();
            let err = r.read_to_end(&mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(!r.is_complete());
            assert_eq!(r.mismatch().unwrap().expected_size, 5);
            assert!(matches!(
                read_checked(data, "k", size, HELLO_SHA),
                Err(CheckedReadError::Mismatch(_))
            ));
        }
    }
}
