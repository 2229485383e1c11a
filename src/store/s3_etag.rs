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
pub struct LocalEtags {
    plain: String,
    multipart: Option<String>,
}

/// Reads `r` (of `expected` bytes) once and computes both forms. The buffer is no larger than the
/// object needs: a zeroed 1 MiB buffer per small object cost more than hashing it.
pub fn md5_etags(mut r: impl Read, expected: u64, part_size: usize) -> io::Result<LocalEtags> {
    let mut whole = Md5::new();
    let mut parts = Md5::new();
    let mut count = 0usize;
    let len = usize::try_from(expected.saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; len.clamp(1, part_size.clamp(1, 1 << 20))];
    let mut part = Md5::new();
    let mut in_part = 0usize;
    loop {
        let want = buf.len().min(part_size - in_part);
        let n = read_full(&mut r, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        part.update(&buf[..n]);
        in_part += n;
        if in_part == part_size {
            parts.update(std::mem::take(&mut part).finalize());
            count += 1;
            in_part = 0;
        }
    }
    if in_part > 0 {
        parts.update(part.finalize());
        count += 1;
    }
    Ok(LocalEtags {
        plain: hex::encode(whole.finalize()),
        multipart: (count > 1).then(|| format!("{}-{count}", hex::encode(parts.finalize()))),
    })
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
}
