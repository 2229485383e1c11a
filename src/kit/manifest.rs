//! `manifest.json`: what a kit contains, as signed. The structs serialise in a fixed field order,
//! so the same kit source gives the same bytes; unknown fields are refused when reading.
//!
//! Every payload file appears exactly once across `modules[].migrations[]` (and their
//! `rollback`), `seeds`, `sboms` and `attestations`; [`Manifest::files`] lists them all.

use serde::{Deserialize, Serialize};

use crate::kit::config::Target;
use crate::kit::path::KitPath;
use crate::migrate::name::Category;

/// A payload file: where it is in the kit, its SHA-256 (lowercase hex) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Archive path.
    pub path: KitPath,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A migration of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationEntry {
    /// The migration name (file stem), e.g. `100_lnm_shards_ttl`.
    pub name: String,
    /// The category from the name's prefix.
    pub category: Category,
    /// The migration file.
    #[serde(flatten)]
    pub file: FileEntry,
    /// False when the first line is `-- offkit:no-transaction`.
    pub transactional: bool,
    /// The rollback file of the same name, if shipped.
    pub rollback: Option<FileEntry>,
}

/// A module: a folder under `migrations/` and the schema its migrations run in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    /// Module name (the folder name).
    pub name: String,
    /// Database schema.
    pub schema: String,
    /// Migrations in application order (category, then number).
    pub migrations: Vec<MigrationEntry>,
}

/// An object to put into the site's object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedEntry {
    /// The object key (the path under `seeds/`).
    pub key: String,
    /// The file.
    #[serde(flatten)]
    pub file: FileEntry,
    /// IANA media type guessed from the extension.
    pub media_type: String,
}

/// A kit this one requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequirementEntry {
    /// Kit name.
    pub name: String,
    /// Lowest version that must have been applied.
    pub min_version: String,
}

/// The database the kit's migrations are written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    /// Database kind.
    pub database: Target,
}

/// Totals that bound what a reader must accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadSummary {
    /// Number of payload files.
    pub files: u64,
    /// Sum of payload file sizes.
    pub bytes: u64,
}

/// The tool that built the kit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    /// Always `offkit`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The kit manifest (`manifest.json`, schema `offkit/manifest/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// `offkit/manifest/v1`.
    pub schema: String,
    /// Kit name.
    pub name: String,
    /// Kit version.
    pub version: String,
    /// Anti-downgrade channel.
    pub channel: String,
    /// Monotonic sequence within the channel.
    pub sequence: u64,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339 creation time (from `SOURCE_DATE_EPOCH`).
    pub created: String,
    /// RFC 3339 expiry time, if any.
    pub expires: Option<String>,
    /// Kits that must have been applied first.
    pub requires: Vec<RequirementEntry>,
    /// Target database.
    pub target: TargetEntry,
    /// Modules with their migrations.
    pub modules: Vec<ModuleEntry>,
    /// Seed objects.
    pub seeds: Vec<SeedEntry>,
    /// SBOMs, the kit's own (`sboms/kit.spdx.json`) included.
    pub sboms: Vec<FileEntry>,
    /// Further signed statements shipped with the release.
    pub attestations: Vec<FileEntry>,
    /// Totals.
    pub payload: PayloadSummary,
    /// The building tool.
    pub tool: ToolEntry,
}

impl Manifest {
    /// Every payload file the manifest describes, in no particular order.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        let migrations = self.modules.iter().flat_map(|m| {
            m.migrations
                .iter()
                .flat_map(|mig| std::iter::once(&mig.file).chain(mig.rollback.as_ref()))
        });
        migrations
            .chain(self.seeds.iter().map(|s| &s.file))
            .chain(self.sboms.iter())
            .chain(self.attestations.iter())
    }

    /// All migrations with their module, in application order per module.
    pub fn migrations(&self) -> impl Iterator<Item = (&ModuleEntry, &MigrationEntry)> {
        self.modules
            .iter()
            .flat_map(|m| m.migrations.iter().map(move |mig| (m, mig)))
    }

    /// The manifest as written into a kit: pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Media type of a seed object from its file name (IANA names; unknown → octet-stream).
pub fn media_type_for(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or("");
    match ext {
        "json" => "application/json",
        "ndjson" | "jsonl" => "application/x-ndjson",
        "txt" | "md" => "text/plain",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "html" | "htm" => "text/html",
        "gz" | "tgz" => "application/gzip",
        "zst" => "application/zstd",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "sql" => "application/sql",
        _ => "application/octet-stream",
    }
}
