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

/// A sink that hashes and counts what is written to it (and, when asked, computes its MD5 from
/// the same bytes).
#[derive(Default)]
pub struct HashingWriter {
    hasher: Sha256,
    md5: Option<md5::Md5>,
    size: u64,
}

impl HashingWriter {
    /// A fresh sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh sink that also computes the MD5.
    pub fn with_md5() -> Self {
        HashingWriter {
            md5: Some(md5::Md5::new()),
            ..Self::default()
        }
    }

    /// The digest of everything written.
    pub fn finish(self) -> ObjectDigest {
        self.finish_with_md5().0
    }

    /// The digest of everything written, and its MD5 if the sink was made [`with_md5`](Self::with_md5).
    pub fn finish_with_md5(self) -> (ObjectDigest, Option<[u8; 16]>) {
        let digest = ObjectDigest {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        };
        (digest, self.md5.map(|m| m.finalize().into()))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        if let Some(m) = &mut self.md5 {
            m.update(buf);
        }
        self.size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes a whole reader (a seed's source file) without holding it in memory.
pub fn digest_of(r: impl Read) -> io::Result<ObjectDigest> {
    Ok(digest_and_md5(r, false)?.0)
}

/// [`digest_of`], with the MD5 of the same bytes when `md5` is set.
pub fn digest_and_md5(mut r: impl Read, md5: bool) -> io::Result<(ObjectDigest, Option<[u8; 16]>)> {
    let mut w = if md5 {
        HashingWriter::with_md5()
    } else {
        HashingWriter::new()
    };
    io::copy(&mut r, &mut w)?;
    Ok(w.finish_with_md5())
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
