//! offkit builds, signs, verifies and applies offline kits: one `.kit.tar.zst` file that carries a
//! release's database migrations, rollback SQL, object-store seed objects and SBOMs to sites with
//! no network.
//!
//! The library owns all behaviour; `src/main.rs` only parses arguments and maps errors to exit
//! codes. The folders are the architecture:
//!
//! - [`kit`]: kit sources (`kit.toml`), the manifest, archive path rules, the deterministic builder
//!   and the strict streaming reader.
//! - [`trust`]: keys, `SHA256SUMS`, DSSE envelopes and in-toto statements, trust policies, and the
//!   verifier, the only way to obtain a [`trust::VerifiedKit`].
//! - [`sbom`]: the kit's own SPDX 2.3 document.
//! - [`migrate`]: the embedded migration runner (PostgreSQL and SQLite drivers).
//! - [`store`]: object stores (folder, S3, PostgreSQL table) and idempotent seeding.
//! - [`apply`]: a verified kit into the database and the store, once, on record (the ledger).
//! - [`report`]: progress display shared by long operations.
//! - [`cli`]: one file per command group.
//! - [`exit`]: the documented exit-code table; [`failpoint`]: named crash points for tests.
#![forbid(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod exit;
pub mod failpoint;
pub mod kit;
pub mod migrate;
pub mod report;
pub mod sbom;
pub mod store;
pub mod trust;
pub mod util;
