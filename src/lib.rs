//! offkit builds, signs, verifies and applies offline kits: one `.kit.tar.zst` file that carries a
//! release's database migrations, rollback SQL, object-store seed objects and SBOMs to sites with
//! no network.
//!
//! The library owns all behaviour; `src/main.rs` only parses arguments and maps errors to exit
//! codes. The folders are the architecture:
//!
//! From the bottom (docs/ARCHITECTURE.md; a module imports only modules below it):
//!
//! - leaves: [`exit`] (the exit-code table), [`failpoint`] (named crash points for tests),
//!   [`util`], [`confine`] (a folder held open, everything below it done through the handle),
//!   [`sql`] (identifier quoting), [`report`] (progress), [`sbom`] (the kit's SPDX 2.3
//!   document), [`pg`] (PostgreSQL connections the libpq way: connection strings, `PG*`
//!   variables, `.pgpass`, TLS, several hosts).
//! - [`kit`]: the format only — layout, paths, the typed manifest and its rules, names and
//!   digests, the digest-checking reader, migration naming, tar, zstd frames, SHA256SUMS and DSSE
//!   encodings, the strict streaming reader.
//! - [`trust`] (keys, policies, signing, the verifier — the only way to obtain a
//!   [`trust::VerifiedKit`] — and what it retains), [`migrate`] (the embedded migration runner,
//!   PostgreSQL and SQLite), [`store`] (object stores and idempotent seeding).
//! - [`build`] (kit source → signed kit; co-signing), [`apply`] (verified kit → site, once, on
//!   record; status; the record of accepted kits) and [`diff`] (what changed between two kits).
//! - [`cli`]: one file per command group, thin.
#![forbid(unsafe_code)]

pub mod apply;
pub mod build;
pub mod cli;
pub mod confine;
pub mod diff;
pub mod exit;
pub mod failpoint;
#[doc(hidden)]
pub mod fuzzing;
pub mod kit;
pub mod migrate;
pub mod pg;
pub mod report;
pub mod sbom;
pub mod sql;
pub mod store;
pub mod transfer;
pub mod trust;
pub mod util;
