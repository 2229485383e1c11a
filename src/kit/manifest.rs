//! `manifest.json`: what a kit contains, as signed, and the rules a manifest must follow.
//!
//! The structs serialise in a fixed field order, so the same kit source gives the same bytes;
//! unknown fields are refused when reading. Every value is typed: paths are [`KitPath`]s,
//! digests [`Sha256Hex`], migration names [`MigrationName`]s (which carry their category),
//! module and schema names [`Identifier`]s, times [`Timestamp`]s; deserialising checks each.
//! [`Manifest::check`] then checks the rules that tie fields together (paths follow the layout,
//! migrations are in order, totals add up without overflow). A verified kit carries a manifest
//! that passed both, and every list a site command uses comes from it.
//!
//! Every payload file appears exactly once across `modules[].migrations[]` (and their
//! `rollback`), `seeds`, `sboms` and `attestations`; [`Manifest::files`] lists them all.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::kit::digest::Sha256Hex;
use crate::kit::layout::{KIT_SBOM, MANIFEST_SCHEMA, MANIFEST_SCHEMA_V2};
use crate::kit::migration_name::{Category, MigrationName, TxMode};
use crate::kit::names::{Identifier, KitName, Timestamp, Version};
use crate::kit::pages::PageEntry;
use crate::kit::path::KitPath;

/// The database kind a kit targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// PostgreSQL (what sites run).
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
    /// Portable SQL that runs on either driver.
    Any,
}

impl Target {
    /// The lowercase name used in kit.toml and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Postgres => "postgres",
            Target::Sqlite => "sqlite",
            Target::Any => "any",
        }
    }
}

/// A payload file: where it is in the kit, its SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Archive path.
    pub path: KitPath,
    /// SHA-256 of the file's bytes.
    pub sha256: Sha256Hex,
    /// Size in bytes.
    pub size: u64,
}

/// A Sigstore bundle the kit carries and what it vouches for: a file of the kit (`subject`) or an
/// artifact outside it named by digest (`digest`, with an optional `name` for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigstoreEntry {
    /// The bundle: a file listed under `attestations/`.
    pub bundle: KitPath,
    /// What kind of attestation it is (`sbom`, `image`, `provenance`…): the site's policy names
    /// the identities it accepts per kind.
    pub kind: KitName,
    /// The kit file the bundle is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<KitPath>,
    /// The SHA-256 of an artifact outside the kit the bundle is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Sha256Hex>,
    /// What that artifact is, for people (an image reference, a file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The largest Sigstore bundle a kit may carry (real ones are a few KiB; each is parsed in memory).
pub const MAX_SIGSTORE_BUNDLE_BYTES: u64 = 1 << 20;

/// The most Sigstore bundles a kit may declare.
pub const MAX_SIGSTORE_BUNDLES: usize = 1000;

/// A migration of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationEntry {
    /// The migration name (file stem), e.g. `100_lnm_shards_ttl`.
    pub name: MigrationName,
    /// The category; [`Manifest::check`] requires it to be the name's.
    pub category: Category,
    /// The migration file.
    #[serde(flatten)]
    pub file: FileEntry,
    /// How it runs; written as `"transactional": bool` (false when the first line is
    /// `-- offkit:no-transaction`).
    #[serde(rename = "transactional", with = "tx_flag")]
    pub tx: TxMode,
    /// The rollback file of the same name, if shipped.
    pub rollback: Option<FileEntry>,
    /// Present when the release team declared the migration destructive (kit.toml
    /// `[destructive]`); a site applies it only when its operator allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<DestructiveEntry>,
    /// Present when the release team declared that this already-shipped migration's checksum
    /// changed on purpose (kit.toml `[realign]`): a site whose history holds `from` records the
    /// new checksum instead of refusing the kit for drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realign: Option<RealignEntry>,
}

/// A declared checksum realignment: the checksum the migration was shipped with, and why it
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealignEntry {
    /// The checksum sites applied.
    pub from: Sha256Hex,
    /// Why it changed (from kit.toml), for operators and auditors.
    pub reason: crate::kit::names::Reason,
}

/// A migration declared destructive: why, and what the build's classifier found in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestructiveEntry {
    /// Why (from kit.toml), for operators and auditors.
    pub reason: crate::kit::names::Reason,
    /// The kinds of destructive statement the build found (`drop-table`, `rename`, …); may be
    /// empty when the release team declared a migration the classifier finds nothing in. A site
    /// classifies the verified SQL again and does not rely on this list.
    pub kinds: Vec<String>,
}

/// True for a classification kind as the manifest writes it: `[a-z][a-z-]*`, at most 40 bytes.
fn is_kind_name(s: &str) -> bool {
    s.len() <= 40
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

mod tx_flag {
    use super::TxMode;

    pub fn serialize<S: serde::Serializer>(tx: &TxMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*tx == TxMode::Transaction)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TxMode, D::Error> {
        Ok(if <bool as serde::Deserialize>::deserialize(d)? {
            TxMode::Transaction
        } else {
            TxMode::NoTransaction
        })
    }
}

/// A module: a folder under `migrations/` and the schema its migrations run in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    /// Module name (the folder name).
    pub name: Identifier,
    /// Database schema.
    pub schema: Identifier,
    /// Migrations in application order (category, then number).
    pub migrations: Vec<MigrationEntry>,
}

/// An object to put into the site's object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedEntry {
    /// The object key (the path under `seeds/`).
    pub key: KitPath,
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
    pub name: KitName,
    /// Lowest version that must have been applied.
    pub min_version: Version,
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
    /// The frame index: every zstd frame after the header frame, in file order, by compressed
    /// size and SHA-256 (docs/FORMAT.md, "The frame index"). Lets a kit be cut into parts at
    /// frame boundaries and each part checked on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameEntry>,
}

/// One compressed frame of the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameEntry {
    /// Compressed bytes.
    pub size: u64,
    /// SHA-256 of the compressed bytes.
    pub sha256: Sha256Hex,
}

/// Most frames a frame index may list (8 TiB of payload in 8 MiB frames).
pub const MAX_FRAMES: usize = 1 << 20;

/// The tool that built the kit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntry {
    /// Always `offkit`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The kit manifest (`manifest.json`, schema `offkit/manifest/v1` or `offkit/manifest/v2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// `offkit/manifest/v1`.
    pub schema: String,
    /// Kit name.
    pub name: KitName,
    /// Kit version.
    pub version: Version,
    /// Anti-downgrade channel.
    pub channel: KitName,
    /// Monotonic sequence within the channel.
    pub sequence: u64,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time (from `SOURCE_DATE_EPOCH`).
    pub created: Timestamp,
    /// Expiry time, if any.
    pub expires: Option<Timestamp>,
    /// Kits that must have been applied first.
    pub requires: Vec<RequirementEntry>,
    /// Target database.
    pub target: TargetEntry,
    /// Modules with their migrations.
    pub modules: Vec<ModuleEntry>,
    /// Seed objects (`offkit/manifest/v1`; always empty in v2, whose seeds the pages list).
    pub seeds: Vec<SeedEntry>,
    /// The seed pages (`offkit/manifest/v2`, docs/FORMAT.md "Seed pages"): each a payload file
    /// listing up to 4,096 seeds. Absent in v1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageEntry>,
    /// SBOMs, the kit's own (`sboms/kit.spdx.json`) included.
    pub sboms: Vec<FileEntry>,
    /// Further signed statements shipped with the release.
    pub attestations: Vec<FileEntry>,
    /// The Sigstore bundles among `attestations`, each bound to what it is about (docs/FORMAT.md,
    /// "Sigstore bundles"). Absent when the kit declares none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sigstore: Vec<SigstoreEntry>,
    /// Totals.
    pub payload: PayloadSummary,
    /// The building tool.
    pub tool: ToolEntry,
}

/// A manifest that breaks a rule of the format (docs/FORMAT.md, "manifest.json").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

/// The largest payload file count a manifest may declare. Bounds what the verifier allocates per
/// file (docs/FORMAT.md, "Limits").
pub const MAX_FILES: u64 = 10_000_000;

/// The most SQL (migrations and rollbacks together) a kit may carry: a site holds a kit's SQL in
/// memory once (the migration runner needs the text), so this bounds that memory. A release with
/// more SQL ships as several kits.
pub const MAX_SQL_BYTES: u64 = 1 << 30;

/// A media type as offkit writes and stores it (`type/subtype`, RFC 6838 restricted names, at
/// most 255 bytes): it becomes an S3 `Content-Type` and is shown on terminals.
pub fn is_media_type(s: &str) -> bool {
    let name = |p: &str| {
        !p.is_empty()
            && p.len() <= 127
            && p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    s.len() <= 255 && s.split_once('/').is_some_and(|(t, st)| name(t) && name(st))
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
            .chain(self.pages.iter().map(|p| &p.file))
            .chain(self.sboms.iter())
            .chain(self.attestations.iter())
    }

    /// The SQL files (migrations and rollbacks), in application order per module.
    pub fn sql_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.migrations()
            .flat_map(|(_, mig)| std::iter::once(&mig.file).chain(mig.rollback.as_ref()))
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

    /// Checks the rules that tie the manifest's fields together. A release key signing a manifest
    /// that puts a migration outside `migrations/<module>/` is still refused, because apply
    /// relies on these rules. `build` checks its manifest with this before signing it.
    pub fn check(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError(m));
        if i64::try_from(self.sequence).is_err() {
            return bad(format!(
                "sequence {} is above {} (databases store it as a signed 64-bit number)",
                self.sequence,
                i64::MAX
            ));
        }
        if self.schema != MANIFEST_SCHEMA && self.schema != MANIFEST_SCHEMA_V2 {
            return bad(format!(
                "manifest schema {:?} is not {MANIFEST_SCHEMA:?} or {MANIFEST_SCHEMA_V2:?}",
                self.schema
            ));
        }
        if self.is_paged() {
            if !self.seeds.is_empty() {
                return bad(format!(
                    "an {MANIFEST_SCHEMA_V2} manifest lists its seeds in pages, not in seeds"
                ));
            }
            crate::kit::pages::check_entries(&self.pages)
                .map_err(|e| ManifestError(e.to_string()))?;
        } else if !self.pages.is_empty() {
            return bad(format!("an {MANIFEST_SCHEMA} manifest has no pages"));
        }
        let mut modules = BTreeSet::new();
        let mut schemas = BTreeSet::new();
        for module in &self.modules {
            if !modules.insert(&module.name) || !schemas.insert(&module.schema) {
                return bad(format!(
                    "module {} (schema {}) repeats a module or schema name",
                    module.name, module.schema
                ));
            }
            let mut last = None;
            for mig in &module.migrations {
                if mig.name.category() != mig.category {
                    return bad(format!(
                        "{}: category {} does not match its name",
                        mig.name, mig.category
                    ));
                }
                let expect = format!("migrations/{}/{}.sql", module.name, mig.name);
                if mig.file.path.as_str() != expect {
                    return bad(format!(
                        "{}: path {} should be {expect}",
                        mig.name, mig.file.path
                    ));
                }
                if let Some(r) = &mig.rollback {
                    let expect = format!("rollback/{}/{}.sql", module.name, mig.name);
                    if r.path.as_str() != expect {
                        return bad(format!(
                            "{}: rollback path {} should be {expect}",
                            mig.name, r.path
                        ));
                    }
                }
                if last.is_some_and(|l| l >= mig.name.order_key()) {
                    return bad(format!(
                        "module {}: {} is out of order or repeats a number",
                        module.name, mig.name
                    ));
                }
                if let Some(d) = &mig.destructive {
                    if d.kinds.len() > 32 || !d.kinds.iter().all(|k| is_kind_name(k)) {
                        return bad(format!(
                            "{}: destructive kinds must be at most 32 names like drop-table",
                            mig.name
                        ));
                    }
                }
                if mig
                    .realign
                    .as_ref()
                    .is_some_and(|r| r.from == mig.file.sha256)
                {
                    return bad(format!(
                        "{}: a realignment must name the checksum the migration had, not its own",
                        mig.name
                    ));
                }
                if mig.category == Category::Data && mig.tx == TxMode::NoTransaction {
                    return bad(format!(
                        "{}: a data migration cannot be marked no-transaction",
                        mig.name
                    ));
                }
                last = Some(mig.name.order_key());
            }
        }
        for s in &self.seeds {
            if s.file.path.as_str() != format!("seeds/{}", s.key) {
                return bad(format!(
                    "seed {}: path {} should be seeds/{}",
                    s.key, s.file.path, s.key
                ));
            }
            if !is_media_type(&s.media_type) {
                return bad(format!(
                    "seed {}: media type {:?} is not type/subtype",
                    s.key,
                    crate::kit::path::printable(&s.media_type)
                ));
            }
        }
        for (files, dir) in [
            (&self.sboms, "sboms/"),
            (&self.attestations, "attestations/"),
        ] {
            if let Some(f) = files.iter().find(|f| !f.path.as_str().starts_with(dir)) {
                return bad(format!("{} should be under {dir}", f.path));
            }
        }
        self.check_sigstore()?;
        if !self.sboms.iter().any(|f| f.path.as_str() == KIT_SBOM) {
            return bad(format!("the kit's own SBOM {KIT_SBOM} is not listed"));
        }
        let (files, bytes) = self.totals()?;
        if self.payload.files != files || self.payload.bytes != bytes {
            return bad(format!(
                "payload totals say {} files / {} bytes; the manifest lists {files} / {bytes}",
                self.payload.files, self.payload.bytes
            ));
        }
        if files > MAX_FILES {
            return bad(format!(
                "{files} payload files is more than this offkit accepts ({MAX_FILES})"
            ));
        }
        if self.payload.frames.len() > MAX_FRAMES {
            return bad(format!(
                "the frame index lists {} frames, more than {MAX_FRAMES}",
                self.payload.frames.len()
            ));
        }
        if let Some(i) = self.payload.frames.iter().position(|f| f.size == 0) {
            return bad(format!("frame {} of the frame index has size 0", i + 1));
        }
        let sql = self.sql_bytes()?;
        if sql > MAX_SQL_BYTES {
            return bad(format!(
                "the migrations and rollbacks total {sql} bytes, more than a kit may carry ({MAX_SQL_BYTES}); ship the release as several kits"
            ));
        }
        Ok(())
    }

    /// The Sigstore declarations' rules: each names a bundle listed under `attestations/` (once,
    /// within [`MAX_SIGSTORE_BUNDLE_BYTES`]) and exactly one subject: another file of the kit, or
    /// a digest with an optional printable name.
    fn check_sigstore(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError(m));
        if self.sigstore.len() > MAX_SIGSTORE_BUNDLES {
            return bad(format!(
                "{} Sigstore bundles is more than a kit may declare ({MAX_SIGSTORE_BUNDLES})",
                self.sigstore.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        // Built once: a kit may list millions of files.
        let paths: std::collections::HashSet<&KitPath> = if self.sigstore.is_empty() {
            std::collections::HashSet::new()
        } else {
            self.files().map(|f| &f.path).collect()
        };
        for s in &self.sigstore {
            let Some(file) = self.attestations.iter().find(|f| f.path == s.bundle) else {
                return bad(format!(
                    "Sigstore bundle {} is not listed under attestations",
                    s.bundle
                ));
            };
            if !seen.insert(&s.bundle) {
                return bad(format!("Sigstore bundle {} is declared twice", s.bundle));
            }
            if file.size > MAX_SIGSTORE_BUNDLE_BYTES {
                return bad(format!(
                    "Sigstore bundle {} is {} bytes, more than a bundle may be ({MAX_SIGSTORE_BUNDLE_BYTES})",
                    s.bundle, file.size
                ));
            }
            match (&s.subject, &s.digest) {
                (Some(subject), None) => {
                    if s.name.is_some() {
                        return bad(format!(
                            "Sigstore bundle {}: a name goes with a digest, not a subject file",
                            s.bundle
                        ));
                    }
                    if subject == &s.bundle || !paths.contains(subject) {
                        return bad(format!(
                            "Sigstore bundle {}: its subject {subject} is not another file of the kit",
                            s.bundle
                        ));
                    }
                }
                (None, Some(_)) => {
                    if let Some(name) = &s.name
                        && (name.is_empty()
                            || name.len() > 512
                            || name.chars().any(char::is_control))
                    {
                        return bad(format!(
                            "Sigstore bundle {}: its name must be 1 to 512 bytes without control characters",
                            s.bundle
                        ));
                    }
                }
                _ => {
                    return bad(format!(
                        "Sigstore bundle {}: give exactly one of subject (a kit file) or digest",
                        s.bundle
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the seeds are listed in pages (`offkit/manifest/v2`) rather than in `seeds`.
    pub fn is_paged(&self) -> bool {
        self.schema == MANIFEST_SCHEMA_V2
    }

    /// How many seeds the kit carries (listed in `seeds` or in its pages).
    pub fn seed_count(&self) -> u64 {
        if self.is_paged() {
            self.pages.iter().map(|p| p.files).sum()
        } else {
            self.seeds.len() as u64
        }
    }

    /// The number of payload files and the sum of their sizes (the seeds the pages list
    /// included), refusing sums that overflow.
    pub fn totals(&self) -> Result<(u64, u64), ManifestError> {
        let mut files = 0u64;
        let mut bytes = 0u64;
        for p in &self.pages {
            files = files.saturating_add(p.files);
            bytes = bytes.checked_add(p.bytes).ok_or_else(|| {
                ManifestError(format!(
                    "{}: the sizes of the seeds overflow a 64-bit count",
                    p.file.path
                ))
            })?;
        }
        for f in self.files() {
            files += 1;
            bytes = bytes.checked_add(f.size).ok_or_else(|| {
                ManifestError(format!(
                    "{}: the sizes of the payload files overflow a 64-bit count",
                    f.path
                ))
            })?;
        }
        Ok((files, bytes))
    }

    /// The total of the SQL files' sizes (checked).
    pub fn sql_bytes(&self) -> Result<u64, ManifestError> {
        self.sql_files().try_fold(0u64, |sum, f| {
            sum.checked_add(f.size)
                .ok_or_else(|| ManifestError("the sizes of the SQL files overflow".into()))
        })
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn entry(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: KitPath::new(path).unwrap(),
            sha256: Sha256Hex::of(path.as_bytes()),
            size,
        }
    }

    fn migration(module: &str, name: &str) -> MigrationEntry {
        let name = MigrationName::parse(name).unwrap();
        MigrationEntry {
            category: name.category(),
            file: entry(&format!("migrations/{module}/{name}.sql"), 10),
            tx: TxMode::Transaction,
            rollback: None,
            destructive: None,
            realign: None,
            name,
        }
    }

    /// A small manifest that passes every rule.
    pub(crate) fn sample() -> Manifest {
        let mut m = Manifest {
            schema: MANIFEST_SCHEMA.to_owned(),
            name: KitName::new("demo").unwrap(),
            version: Version::new("1.0.0").unwrap(),
            channel: KitName::new("demo").unwrap(),
            sequence: 1,
            description: None,
            created: Timestamp::new("2026-01-01T00:00:00Z").unwrap(),
            expires: None,
            requires: Vec::new(),
            target: TargetEntry {
                database: Target::Any,
            },
            modules: vec![ModuleEntry {
                name: Identifier::new("core").unwrap(),
                schema: Identifier::new("core").unwrap(),
                migrations: vec![migration("core", "001_init"), migration("core", "100_rel")],
            }],
            pages: Vec::new(),
            seeds: vec![SeedEntry {
                key: KitPath::new("a/b.json").unwrap(),
                file: entry("seeds/a/b.json", 3),
                media_type: "application/json".into(),
            }],
            sboms: vec![entry(KIT_SBOM, 5)],
            attestations: Vec::new(),
            sigstore: Vec::new(),
            payload: PayloadSummary {
                files: 0,
                bytes: 0,
                frames: Vec::new(),
            },
            tool: ToolEntry {
                name: "offkit".into(),
                version: "0".into(),
            },
        };
        let (files, bytes) = m.totals().unwrap();
        m.payload = PayloadSummary {
            files,
            bytes,
            frames: Vec::new(),
        };
        m
    }

    fn refused(edit: impl FnOnce(&mut Manifest)) -> String {
        let mut m = sample();
        edit(&mut m);
        m.check().expect_err("accepted").0
    }

    #[test]
    fn the_sample_passes_and_round_trips() {
        let m = sample();
        m.check().unwrap();
        let back: Manifest = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_bytes(), m.to_bytes());
    }

    #[test]
    fn each_rule_refuses() {
        assert!(refused(|m| m.schema = "offkit/manifest/v3".into()).contains("schema"));
        assert!(refused(|m| m.schema = MANIFEST_SCHEMA_V2.into()).contains("in pages"));
        assert!(
            refused(|m| {
                m.schema = MANIFEST_SCHEMA_V2.into();
                m.seeds.clear();
                m.pages = crate::kit::pages::cut(&[crate::kit::pages::SeedLine {
                    path: KitPath::new("seeds/a").unwrap(),
                    sha256: Sha256Hex::of(b"a"),
                    size: 1,
                }])
                .into_iter()
                .map(|p| p.entry)
                .collect();
                m.pages[0].file.path = KitPath::new("index/seeds/00000002.sha256").unwrap();
            })
            .contains("expected index/seeds/00000001.sha256")
        );
        assert!(
            refused(|m| m.modules[0].migrations[0].category = Category::Release)
                .contains("does not match its name")
        );
        assert!(
            refused(|m| {
                m.modules[0].migrations[0].file.path =
                    KitPath::new("migrations/x/001_init.sql").unwrap()
            })
            .contains("should be migrations/core/001_init.sql")
        );
        assert!(
            refused(|m| {
                m.modules[0].migrations[1].rollback = Some(entry("rollback/core/100_other.sql", 1))
            })
            .contains("rollback path")
        );
        assert!(refused(|m| m.modules[0].migrations.swap(0, 1)).contains("out of order"));
        assert!(
            refused(|m| m.seeds[0].key = KitPath::new("elsewhere.json").unwrap())
                .contains("should be seeds/elsewhere.json")
        );
        assert!(refused(|m| m.sboms.clear()).contains("own SBOM"));
        assert!(refused(|m| m.sboms.push(entry("seeds/x.spdx.json", 1))).contains("under sboms/"));
        assert!(refused(|m| m.payload.bytes += 1).contains("payload totals"));
        assert!(refused(|m| m.sequence = u64::MAX).contains("sequence"));
        assert!(
            refused(|m| m.seeds[0].media_type = "text/plain\u{1b}[31m".into())
                .contains("media type")
        );
        let sql = refused(|m| {
            m.modules[0].migrations[0].file.size = MAX_SQL_BYTES;
            let (files, bytes) = m.totals().unwrap();
            m.payload = PayloadSummary {
                files,
                bytes,
                frames: Vec::new(),
            };
        });
        assert!(sql.contains("several kits"), "{sql}");
        let dup = refused(|m| {
            let again = m.modules[0].clone();
            m.modules.push(again);
        });
        assert!(dup.contains("repeats"), "{dup}");
    }

    #[test]
    fn sizes_that_overflow_are_refused_not_wrapped() {
        let msg = refused(|m| {
            m.seeds[0].file.size = u64::MAX;
            m.payload.bytes = 0;
        });
        assert!(msg.contains("overflow"), "{msg}");
    }

    #[test]
    fn typed_fields_refuse_bad_values_when_read() {
        let text = String::from_utf8(sample().to_bytes()).unwrap();
        for (from, to) in [
            ("\"001_init\"", "\"1_init\""),
            ("\"core\"", "\"Core\""),
            ("\"a/b.json\"", "\"../b.json\""),
            ("2026-01-01T00:00:00Z", "yesterday"),
            ("\"1.0.0\"", "\"one\""),
        ] {
            let bad = text.replacen(from, to, 1);
            assert_ne!(bad, text, "{from}");
            let err = serde_json::from_str::<Manifest>(&bad).unwrap_err();
            assert_eq!(
                err.classify(),
                serde_json::error::Category::Data,
                "{from}: {err}"
            );
        }
        let digest = Sha256Hex::of(b"seeds/a/b.json").to_string();
        let bad = text.replacen(&digest, &digest.to_uppercase(), 1);
        assert!(serde_json::from_str::<Manifest>(&bad).is_err());
    }
}
