//! Digests of stored objects: [`HashingWriter`] is the sink used to read an object back and learn
//! its size and SHA-256. The body of every put is a [`DigestReader`] (the kit layer's one
//! digest-checking reader), re-exported here for drivers and their tests.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

pub use crate::kit::digest::DigestReader;

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

pub use crate::util::read_full;

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn hashing_writer_digests() {
        let d = digest_of(&b"hello"[..]).unwrap();
        assert_eq!(d.size, 5);
        assert_eq!(d.sha256, HELLO_SHA);
    }
}
