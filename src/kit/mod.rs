//! The kit format, and only the format: the layout (names, order, bounds), archive paths, the
//! typed manifest and its rules, validated names, digests and the digest-checking reader, the
//! migration naming standard, the tar subset, zstd frames, the SHA256SUMS and DSSE encodings, and
//! the strict streaming reader. Nothing here decides trust (the `trust` module), reads a kit
//! source (the `build` module) or touches a database or a store.

pub mod digest;
pub mod dsse;
pub mod frame;
pub mod layout;
pub mod manifest;
pub mod migration_name;
pub mod names;
pub mod pages;
pub mod parts;
pub mod path;
pub mod random;
pub mod reader;
pub mod stream;
pub mod sums;
pub mod tar;

pub use digest::Sha256Hex;
pub use manifest::Manifest;
pub use path::KitPath;
