//! `SHA256SUMS`: one line `"<64 lowercase hex>  <path>\n"` per file, sorted by path bytes, the
//! format `sha256sum -c --strict` reads. The parser is strict: anything `sha256sum` would not
//! have written for these files is refused.

use crate::kit::digest::Sha256Hex;
use crate::kit::path::{KitPath, PathError};

/// One line of SHA256SUMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    /// The file.
    pub path: KitPath,
    /// Its SHA-256.
    pub sha256: Sha256Hex,
}

/// Why a SHA256SUMS file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SumsError {
    /// A line is not `<64 hex>  <path>`.
    #[error("SHA256SUMS line {line}: expected '<64 lowercase hex>  <path>'")]
    Malformed {
        /// 1-based line number.
        line: usize,
    },
    /// A path is unsafe.
    #[error("SHA256SUMS line {line}: {source}")]
    BadPath {
        /// 1-based line number.
        line: usize,
        /// The rule broken.
        source: PathError,
    },
    /// A path is listed twice.
    #[error("SHA256SUMS line {line}: {path} is listed twice")]
    Duplicate {
        /// 1-based line number.
        line: usize,
        /// The path.
        path: String,
    },
    /// Lines are not sorted by path.
    #[error("SHA256SUMS line {line}: {path} is out of order (lines must be sorted by path)")]
    Unsorted {
        /// 1-based line number.
        line: usize,
        /// The path.
        path: String,
    },
}

/// Formats lines (sorted here, so callers need not).
pub fn format(lines: &[SumLine]) -> Vec<u8> {
    let mut sorted: Vec<&SumLine> = lines.iter().collect();
    sorted.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    let mut out = Vec::new();
    for l in sorted {
        out.extend_from_slice(l.sha256.as_str().as_bytes());
        out.extend_from_slice(b"  ");
        out.extend_from_slice(l.path.as_str().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Parses SHA256SUMS strictly.
pub fn parse(bytes: &[u8]) -> Result<Vec<SumLine>, SumsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SumsError::Malformed { line: 1 })?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(SumsError::Malformed {
            line: text.lines().count(),
        });
    }
    let mut out: Vec<SumLine> = Vec::new();
    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        let (hash, path) = line
            .split_at_checked(64)
            .ok_or(SumsError::Malformed { line: n })?;
        let path = path
            .strip_prefix("  ")
            .ok_or(SumsError::Malformed { line: n })?;
        let sha256 = Sha256Hex::new(hash).map_err(|_| SumsError::Malformed { line: n })?;
        let path = KitPath::new(path).map_err(|source| SumsError::BadPath { line: n, source })?;
        if let Some(prev) = out.last() {
            match prev.path.as_str().as_bytes().cmp(path.as_str().as_bytes()) {
                std::cmp::Ordering::Equal => {
                    return Err(SumsError::Duplicate {
                        line: n,
                        path: path.to_string(),
                    });
                }
                std::cmp::Ordering::Greater => {
                    return Err(SumsError::Unsorted {
                        line: n,
                        path: path.to_string(),
                    });
                }
                std::cmp::Ordering::Less => {}
            }
        }
        out.push(SumLine { path, sha256 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str, c: char) -> SumLine {
        SumLine {
            path: KitPath::new(p).unwrap(),
            sha256: Sha256Hex::new(&c.to_string().repeat(64)).unwrap(),
        }
    }

    #[test]
    fn round_trip_sorted() {
        let bytes = format(&[line("b", 'b'), line("a/x", 'a')]);
        assert_eq!(
            bytes,
            format!("{}  a/x\n{}  b\n", "a".repeat(64), "b".repeat(64)).into_bytes()
        );
        assert_eq!(
            parse(&bytes).unwrap(),
            vec![line("a/x", 'a'), line("b", 'b')]
        );
    }

    #[test]
    fn strictness() {
        let h = "a".repeat(64);
        assert!(matches!(
            parse(format!("{h} a\n").as_bytes()),
            Err(SumsError::Malformed { .. })
        ));
        assert!(matches!(
            parse(format!("{h}  a").as_bytes()),
            Err(SumsError::Malformed { .. })
        ));
        assert!(matches!(
            parse(format!("{}  a\n", "A".repeat(64)).as_bytes()),
            Err(SumsError::Malformed { .. })
        ));
        assert!(matches!(
            parse(format!("{h}  ../a\n").as_bytes()),
            Err(SumsError::BadPath { .. })
        ));
        assert!(matches!(
            parse(format!("{h}  a\n{h}  a\n").as_bytes()),
            Err(SumsError::Duplicate { .. })
        ));
        assert!(matches!(
            parse(format!("{h}  b\n{h}  a\n").as_bytes()),
            Err(SumsError::Unsorted { .. })
        ));
    }
}
