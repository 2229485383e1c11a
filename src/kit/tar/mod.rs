//! The tar subset of offkit/v1 (docs/FORMAT.md, "Archive"): POSIX ustar headers, pax extended
//! headers (`x`) for long or non-ASCII paths and sizes of 8 GiB and more, regular files only.
//!
//! The writer is deterministic by construction (mode 0644, uid/gid 0, empty user and group
//! names, one fixed mtime, no atime/ctime records). The reader is strict: it checks header
//! checksums, classifies every type flag so that links, devices, FIFOs, sparse files and GNU
//! extensions are reported as what they are, and hands data to the caller without copying.
//! Neither side knows what a kit contains; that is [`crate::kit::layout`].

mod read;
mod write;

pub use read::{EntryKind, RawEntry, TarError, TarReader};
pub use write::{END_OF_ARCHIVE, header_bytes, header_difference, padding};

/// Size of a tar block.
pub const BLOCK: usize = 512;
