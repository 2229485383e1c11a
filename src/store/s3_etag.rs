//! S3 `ETag`s as MD5 checksums (`confirm=etag-md5`, the default).
//!
//! For an object stored by a single `PutObject`, AWS, MinIO and Ceph (without SSE-KMS/SSE-C) give
//! the hex MD5 of the bytes as ETag; for a multipart upload, the MD5 of the concatenated binary
//! MD5s of the parts, then `-` and the part count. Some servers (rclone) give the plain MD5 in both
//! cases. Anything else is not an MD5 and never matches, so the caller reads the object back.

use std::io::{self, Read};

use md5::{Digest, Md5};

use super::super::stream::read_full;

/// The ETags a faithful server could give for a file: the plain MD5, and the multipart form for
/// `part_size` parts (only when the file takes more than one part).
#[derive(Debug)]
pub struct LocalEtags {
    plain: String,
    multipart: Option<String>,
}

/// Computes both forms from bytes given in order (for a put, the bytes as they are sent).
pub struct EtagHasher {
    part_size: usize,
    whole: Md5,
    parts: Md5,
    part: Md5,
    in_part: usize,
    count: usize,
}

impl EtagHasher {
    /// A hasher for parts of `part_size` bytes.
    pub fn new(part_size: usize) -> Self {
        EtagHasher {
            part_size: part_size.max(1),
            whole: Md5::new(),
            parts: Md5::new(),
            part: Md5::new(),
            in_part: 0,
            count: 0,
        }
    }

    /// Adds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = data.len().min(self.part_size - self.in_part);
            self.whole.update(&data[..n]);
            self.part.update(&data[..n]);
            self.in_part += n;
            if self.in_part == self.part_size {
                self.parts.update(std::mem::take(&mut self.part).finalize());
                self.count += 1;
                self.in_part = 0;
            }
            data = &data[n..];
        }
    }

    /// Both forms of everything added.
    pub fn finish(mut self) -> LocalEtags {
        if self.in_part > 0 {
            self.parts.update(self.part.finalize());
            self.count += 1;
        }
        let count = self.count;
        LocalEtags {
            plain: hex::encode(self.whole.finalize()),
            multipart: (count > 1)
                .then(|| format!("{}-{count}", hex::encode(self.parts.finalize()))),
        }
    }
}

/// Reads `r` (of `expected` bytes) once and computes both forms. The buffer is no larger than the
/// object needs: a zeroed 1 MiB buffer per small object cost more than hashing it.
pub fn md5_etags(mut r: impl Read, expected: u64, part_size: usize) -> io::Result<LocalEtags> {
    let len = usize::try_from(expected.saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; len.clamp(1, 1 << 20)];
    let mut hasher = EtagHasher::new(part_size);
    loop {
        let n = read_full(&mut r, &mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

impl LocalEtags {
    /// The forms of bytes sent in one part, whose MD5 is `md5`.
    pub fn of_md5(md5: [u8; 16]) -> Self {
        LocalEtags {
            plain: hex::encode(md5),
            multipart: None,
        }
    }
}

/// Whether a server's ETag (quotes allowed) is one of the local forms.
pub fn matches(etag: &str, local: &LocalEtags) -> bool {
    let etag = etag.trim_matches('"').to_ascii_lowercase();
    etag == local.plain || local.multipart.as_deref() == Some(etag.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_multipart_forms() {
        let data = vec![7u8; 25];
        let e = md5_etags(&data[..], data.len() as u64, 10).unwrap();
        assert_eq!(e.plain, hex::encode(Md5::digest(&data)));
        let mut parts = Vec::new();
        for chunk in data.chunks(10) {
            parts.extend_from_slice(&Md5::digest(chunk));
        }
        let expected = format!("{}-3", hex::encode(Md5::digest(&parts)));
        assert_eq!(e.multipart.as_deref(), Some(expected.as_str()));
        assert!(matches(&format!("\"{expected}\""), &e));
        assert!(matches(&e.plain.to_uppercase(), &e));
        assert!(!matches("0123", &e));
        let small = md5_etags(&b"hi"[..], 2, 10).unwrap();
        assert!(small.multipart.is_none());
    }

    #[test]
    fn the_hasher_gives_the_same_forms_whatever_the_chunks() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for total in [0, 1, 99, 100, 101, 300, 1000] {
            let expected = md5_etags(&data[..total], total as u64, 100).unwrap();
            for chunk in [1, 7, 100, 333] {
                let mut h = EtagHasher::new(100);
                data[..total].chunks(chunk).for_each(|c| h.update(c));
                let got = h.finish();
                assert_eq!(
                    (got.plain, got.multipart),
                    (expected.plain.clone(), expected.multipart.clone())
                );
            }
        }
        // Exactly two parts: the multipart form counts 2.
        let two = md5_etags(&data[..200], 200, 100).unwrap();
        assert!(two.multipart.unwrap().ends_with("-2"));
    }
}
