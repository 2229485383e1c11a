//! Validated archive paths. A [`KitPath`] can only be built through [`KitPath::new`] or
//! [`KitPath::from_bytes`], which enforce the offkit/v1 path rules (docs/FORMAT.md, "Paths"), so a
//! path that reached the rest of the code is safe to join under an extraction root.
//!
//! This module owns the rules; it does not know which paths a kit may contain (that is the layout).

use std::fmt;

/// Longest accepted path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The name is not valid UTF-8 (shown as hex).
    #[error("name is not valid UTF-8 (bytes: {hex})")]
    NonUtf8 {
        /// The raw name, hex encoded.
        hex: String,
    },
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// The path starts with `/`.
    #[error("absolute path {0:?}")]
    Absolute(String),
    /// A component is `..`.
    #[error("path {0:?} contains a '..' component")]
    Traversal(String),
    /// A component is `.` or empty (`a//b`, trailing `/`).
    #[error("path {0:?} contains an empty or '.' component")]
    DotOrEmptyComponent(String),
    /// The path contains a backslash (a Windows separator).
    #[error("path {0:?} contains a backslash")]
    Backslash(String),
    /// The path contains NUL or another control character.
    #[error("path {0:?} contains a control character")]
    ControlChar(String),
    /// The path or one of its components is too long.
    #[error(
        "path {0:?} is too long (max {MAX_PATH_BYTES} bytes, {MAX_COMPONENT_BYTES} per component)"
    )]
    TooLong(String),
}

impl PathError {
    /// True when the refusal is about the encoding rather than the path's shape.
    pub fn is_non_utf8(&self) -> bool {
        matches!(self, PathError::NonUtf8 { .. })
    }
}

/// A relative, `/`-separated, UTF-8 archive path that passed every offkit/v1 path rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KitPath(String);

impl KitPath {
    /// Validates `s` as an archive path.
    pub fn new(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute(s.to_owned()));
        }
        if s.contains('\\') {
            return Err(PathError::Backslash(s.to_owned()));
        }
        if s.chars().any(char::is_control) {
            return Err(PathError::ControlChar(s.to_owned()));
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong(s.to_owned()));
        }
        for component in s.split('/') {
            match component {
                ".." => return Err(PathError::Traversal(s.to_owned())),
                "" | "." => return Err(PathError::DotOrEmptyComponent(s.to_owned())),
                c if c.len() > MAX_COMPONENT_BYTES => return Err(PathError::TooLong(s.to_owned())),
                _ => {}
            }
        }
        Ok(KitPath(s.to_owned()))
    }

    /// Validates raw bytes (as found in a tar header) as an archive path.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PathError> {
        let s = std::str::from_utf8(bytes).map_err(|_| PathError::NonUtf8 {
            hex: hex::encode(bytes),
        })?;
        Self::new(s)
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used to detect names that collide on case-insensitive file systems.
    pub fn case_fold(&self) -> String {
        self.0.to_lowercase()
    }

    /// The first component (`migrations`, `seeds`, …).
    pub fn top(&self) -> &str {
        self.0.split('/').next().unwrap_or("")
    }

    /// The components of the path.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// Joins the path under `root` (safe: the path is relative with no `..`).
    pub fn under(&self, root: &std::path::Path) -> std::path::PathBuf {
        let mut p = root.to_path_buf();
        for c in self.components() {
            p.push(c);
        }
        p
    }
}

/// `s` with control characters escaped (`\u{1b}` for ESC and so on), for showing names taken
/// from a kit or a folder on a terminal.
pub fn printable(s: &str) -> String {
    crate::util::escape_controls(s)
}

/// `text` with control characters other than line feeds and tabs escaped: for multi-line
/// messages (errors) that may quote a kit's or a file's bytes.
pub fn printable_text(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(printable)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl fmt::Display for KitPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for KitPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

crate::kit::names::serde_as_text!(KitPath, KitPath::new);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "a",
            "migrations/concelier/001_init.sql",
            "seeds/a b/ü.json",
            "x/.hidden",
        ] {
            assert!(KitPath::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_each_unsafe_shape() {
        assert_eq!(KitPath::new(""), Err(PathError::Empty));
        assert!(matches!(
            KitPath::new("/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            KitPath::new("a/../../b"),
            Err(PathError::Traversal(_))
        ));
        assert!(matches!(KitPath::new(".."), Err(PathError::Traversal(_))));
        assert!(matches!(
            KitPath::new("a//b"),
            Err(PathError::DotOrEmptyComponent(_))
        ));
        assert!(matches!(
            KitPath::new("a/./b"),
            Err(PathError::DotOrEmptyComponent(_))
        ));
        assert!(matches!(
            KitPath::new("a/"),
            Err(PathError::DotOrEmptyComponent(_))
        ));
        assert!(matches!(
            KitPath::new("..\\x"),
            Err(PathError::Backslash(_))
        ));
        assert!(matches!(
            KitPath::new("a\nb"),
            Err(PathError::ControlChar(_))
        ));
        assert!(matches!(
            KitPath::new("a\0b"),
            Err(PathError::ControlChar(_))
        ));
        assert!(matches!(
            KitPath::new(&"a".repeat(256)),
            Err(PathError::TooLong(_))
        ));
        assert!(
            KitPath::from_bytes(b"a/\xff.sql")
                .unwrap_err()
                .is_non_utf8()
        );
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("a/b.json"), "a/b.json");
        assert_eq!(printable("x\u{1b}[32mOK"), "x\\u{1b}[32mOK");
        assert_eq!(printable_text("a\n\tb\u{1b}c\r"), "a\n\tb\\u{1b}c\\u{d}");
    }

    #[test]
    fn case_fold_detects_collisions() {
        let a = KitPath::new("seeds/Readme.md").unwrap();
        let b = KitPath::new("seeds/README.md").unwrap();
        assert_eq!(a.case_fold(), b.case_fold());
    }
}
