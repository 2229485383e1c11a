//! `offkit diff`: what changed between two kits — migrations per module and category (an edited,
//! already-shipped migration flagged loudly), rollbacks, seeds with sizes, SBOMs and the packages
//! they list, signers, and the `kit.toml` fields.
//!
//! Pure: it compares two [`KitFacts`] (a manifest, its signers and, when the kits were verified,
//! the packages of their SBOMs) and knows nothing of how they were read.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::kit::manifest::{FileEntry, Manifest};

/// What `diff` knows of one kit.
#[derive(Debug, Clone)]
pub struct KitFacts {
    /// The manifest.
    pub manifest: Manifest,
    /// SHA-256 of `manifest.json`.
    pub manifest_sha256: String,
    /// Keyids of the signers (verified ones, or the envelope's keyids when not verified).
    pub signers: BTreeSet<String>,
    /// Packages per SBOM path, when the SBOMs were read (verified kits).
    pub packages: Option<BTreeMap<String, Vec<Package>>>,
}

/// A package an SBOM lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Package {
    /// Its name.
    pub name: String,
    /// Its version (empty when the SBOM gives none).
    pub version: String,
}

/// How one thing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only in the second kit.
    Added,
    /// Only in the first kit.
    Removed,
    /// In both, with other content.
    Changed,
}

/// A migration (or its rollback) that differs.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationChange {
    /// The module.
    pub module: String,
    /// The category (`startup`, `release`, `seed`, `data`).
    pub category: String,
    /// The migration name.
    pub name: String,
    /// What changed of the migration itself (`None`: only its rollback changed).
    pub change: Option<Change>,
    /// What changed of its rollback.
    pub rollback: Option<Change>,
    /// SHA-256 in each kit.
    pub sha256: (Option<String>, Option<String>),
}

/// A seed object, SBOM or other file that differs.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// The seed key or file path.
    pub path: String,
    /// How.
    pub change: Change,
    /// Its size in each kit.
    pub size: (Option<u64>, Option<u64>),
}

/// A package that differs between the two kits' SBOMs.
#[derive(Debug, Clone, Serialize)]
pub struct PackageChange {
    /// The SBOM that lists it.
    pub sbom: String,
    /// The package.
    pub name: String,
    /// `added`, `removed`, `upgraded`, `downgraded` or `changed` (versions that do not compare).
    pub change: &'static str,
    /// Its versions in each kit.
    pub version: (Option<String>, Option<String>),
}

/// A `kit.toml` field (or a manifest-level fact) that differs.
#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    /// The field.
    pub field: &'static str,
    /// Its value in each kit (JSON text).
    pub value: (String, String),
}

/// Everything that differs between two kits.
#[derive(Debug, Clone, Serialize)]
pub struct KitDiff {
    /// `kit.toml` fields.
    pub fields: Vec<FieldChange>,
    /// Migrations and rollbacks, by module, category and name.
    pub migrations: Vec<MigrationChange>,
    /// Shipped migrations whose content changed: sites that applied them will refuse the new kit
    /// on their checksum.
    pub edited_migrations: usize,
    /// Seed objects.
    pub seeds: Vec<FileChange>,
    /// SBOM files.
    pub sboms: Vec<FileChange>,
    /// SBOM packages (`None` when the SBOMs were not read: the kits were not verified).
    pub packages: Option<Vec<PackageChange>>,
    /// Signer keyids only in the first, only in the second kit (JSON: `{"only_in_a",
    /// "only_in_b"}`).
    #[serde(serialize_with = "signers_json")]
    pub signers: (Vec<String>, Vec<String>),
}

fn signers_json<S: serde::Serializer>(
    signers: &(Vec<String>, Vec<String>),
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("Signers", 2)?;
    st.serialize_field("only_in_a", &signers.0)?;
    st.serialize_field("only_in_b", &signers.1)?;
    st.end()
}

impl KitDiff {
    /// True when the kits differ in nothing `diff` compares.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.migrations.is_empty()
            && self.seeds.is_empty()
            && self.sboms.is_empty()
            && self.packages.as_ref().is_none_or(Vec::is_empty)
            && self.signers.0.is_empty()
            && self.signers.1.is_empty()
    }
}

/// A kit's seeds by key, and the pages of an `offkit/v2` kit by path: unverified, its pages are
/// all that is known of its seeds.
fn seed_files(m: &Manifest) -> impl Iterator<Item = (String, &FileEntry)> {
    m.seeds
        .iter()
        .map(|s| (s.key.to_string(), &s.file))
        .chain(m.pages.iter().map(|p| (p.file.path.to_string(), &p.file)))
}

/// Compares kit `a` with kit `b` (changes read as "from a to b").
pub fn diff(a: &KitFacts, b: &KitFacts) -> KitDiff {
    let migrations = migrations(&a.manifest, &b.manifest);
    let edited_migrations = migrations
        .iter()
        .filter(|m| m.change == Some(Change::Changed))
        .count();
    KitDiff {
        fields: fields(&a.manifest, &b.manifest),
        migrations,
        edited_migrations,
        seeds: files(seed_files(&a.manifest), seed_files(&b.manifest)),
        sboms: files(
            a.manifest.sboms.iter().map(|f| (f.path.to_string(), f)),
            b.manifest.sboms.iter().map(|f| (f.path.to_string(), f)),
        ),
        packages: match (&a.packages, &b.packages) {
            (Some(pa), Some(pb)) => Some(packages(pa, pb)),
            _ => None,
        },
        signers: (
            a.signers.difference(&b.signers).cloned().collect(),
            b.signers.difference(&a.signers).cloned().collect(),
        ),
    }
}

fn fields(a: &Manifest, b: &Manifest) -> Vec<FieldChange> {
    let text = |v: serde_json::Value| v.to_string();
    let pairs: [(&'static str, serde_json::Value, serde_json::Value); 9] = [
        ("name", a.name.as_str().into(), b.name.as_str().into()),
        (
            "version",
            a.version.to_string().into(),
            b.version.to_string().into(),
        ),
        (
            "channel",
            a.channel.as_str().into(),
            b.channel.as_str().into(),
        ),
        ("sequence", a.sequence.into(), b.sequence.into()),
        (
            "description",
            serde_json::json!(a.description),
            serde_json::json!(b.description),
        ),
        (
            "created",
            serde_json::json!(a.created),
            serde_json::json!(b.created),
        ),
        (
            "expires",
            serde_json::json!(a.expires),
            serde_json::json!(b.expires),
        ),
        (
            "target",
            serde_json::json!(a.target),
            serde_json::json!(b.target),
        ),
        (
            "requires",
            serde_json::json!(a.requires),
            serde_json::json!(b.requires),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(field, x, y)| FieldChange {
            field,
            value: (text(x), text(y)),
        })
        .collect()
}

type MigrationKey = (String, String, String);

fn migration_index(m: &Manifest) -> BTreeMap<MigrationKey, (String, Option<String>)> {
    m.migrations()
        .map(|(module, mig)| {
            (
                (
                    module.name.to_string(),
                    mig.category.as_str().to_owned(),
                    mig.name.to_string(),
                ),
                (
                    mig.file.sha256.to_string(),
                    mig.rollback.as_ref().map(|r| r.sha256.to_string()),
                ),
            )
        })
        .collect()
}

fn migrations(a: &Manifest, b: &Manifest) -> Vec<MigrationChange> {
    let (ia, ib) = (migration_index(a), migration_index(b));
    let keys: BTreeSet<&MigrationKey> = ia.keys().chain(ib.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (x, y) = (ia.get(key), ib.get(key));
            let change = compare(x.map(|v| &v.0), y.map(|v| &v.0));
            let rollback = compare(x.and_then(|v| v.1.as_ref()), y.and_then(|v| v.1.as_ref()));
            (change.is_some() || rollback.is_some()).then(|| MigrationChange {
                module: key.0.clone(),
                category: key.1.clone(),
                name: key.2.clone(),
                change,
                rollback,
                sha256: (x.map(|v| v.0.clone()), y.map(|v| v.0.clone())),
            })
        })
        .collect()
}

fn compare<T: PartialEq>(a: Option<T>, b: Option<T>) -> Option<Change> {
    match (a, b) {
        (None, None) => None,
        (None, Some(_)) => Some(Change::Added),
        (Some(_), None) => Some(Change::Removed),
        (Some(x), Some(y)) => (x != y).then_some(Change::Changed),
    }
}

fn files<'a>(
    a: impl Iterator<Item = (String, &'a FileEntry)>,
    b: impl Iterator<Item = (String, &'a FileEntry)>,
) -> Vec<FileChange> {
    let (ia, ib): (BTreeMap<_, _>, BTreeMap<_, _>) = (a.collect(), b.collect());
    let keys: BTreeSet<&String> = ia.keys().chain(ib.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (ia.get(k), ib.get(k));
            compare(x.map(|f| &f.sha256), y.map(|f| &f.sha256)).map(|change| FileChange {
                path: k.clone(),
                change,
                size: (x.map(|f| f.size), y.map(|f| f.size)),
            })
        })
        .collect()
}

fn packages(
    a: &BTreeMap<String, Vec<Package>>,
    b: &BTreeMap<String, Vec<Package>>,
) -> Vec<PackageChange> {
    let by_name = |m: &BTreeMap<String, Vec<Package>>| -> BTreeMap<(String, String), String> {
        m.iter()
            .flat_map(|(sbom, ps)| {
                ps.iter()
                    .map(move |p| ((sbom.clone(), p.name.clone()), p.version.clone()))
            })
            .collect()
    };
    let (ia, ib) = (by_name(a), by_name(b));
    let keys: BTreeSet<&(String, String)> = ia.keys().chain(ib.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (ia.get(k), ib.get(k));
            let change = match (x, y) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x == y => return None,
                (Some(x), Some(y)) => match compare_versions(x, y) {
                    Some(std::cmp::Ordering::Less) => "upgraded",
                    Some(std::cmp::Ordering::Greater) => "downgraded",
                    _ => "changed",
                },
                (None, None) => return None,
            };
            Some(PackageChange {
                sbom: k.0.clone(),
                name: k.1.clone(),
                change,
                version: (x.cloned(), y.cloned()),
            })
        })
        .collect()
}

/// Compares dotted versions number by number (`1.10.0` after `1.9.2`), `None` when a part is not
/// a number.
fn compare_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let parts = |v: &str| -> Option<Vec<u64>> {
        v.trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(|p| p.parse().ok())
            .collect()
    };
    Some(parts(a)?.cmp(&parts(b)?))
}

/// The packages an SBOM lists: SPDX 2.x JSON (`packages[].name`, `versionInfo`) or CycloneDX JSON
/// (`components[].name`, `version`). `None` when the document is neither.
pub fn sbom_packages(bytes: &[u8]) -> Option<Vec<Package>> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let (list, version) = if doc.get("spdxVersion").is_some() {
        (doc.get("packages"), "versionInfo")
    } else if doc.get("bomFormat").and_then(|f| f.as_str()) == Some("CycloneDX") {
        (doc.get("components"), "version")
    } else {
        return None;
    };
    let mut out: Vec<Package> = list
        .and_then(|l| l.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|p| {
                    Some(Package {
                        name: p.get("name")?.as_str()?.to_owned(),
                        version: p
                            .get(version)
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number_and_sboms_of_both_kinds_are_read() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.9.2", "1.10.0"), Some(Less));
        assert_eq!(compare_versions("v2.0", "1.99"), Some(Greater));
        assert_eq!(compare_versions("1.0rc1", "1.0"), None);
        let spdx = br#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"openssl","versionInfo":"3.0.13"},{"name":"zlib"}]}"#;
        assert_eq!(
            sbom_packages(spdx).unwrap(),
            vec![
                Package {
                    name: "openssl".into(),
                    version: "3.0.13".into()
                },
                Package {
                    name: "zlib".into(),
                    version: String::new()
                }
            ]
        );
        let cdx = br#"{"bomFormat":"CycloneDX","components":[{"name":"libpq","version":"16.2"}]}"#;
        assert_eq!(sbom_packages(cdx).unwrap()[0].version, "16.2");
        assert!(sbom_packages(b"{}").is_none());
    }

    #[test]
    fn an_edited_migration_is_counted_and_files_compare_by_digest() {
        let a = crate::kit::manifest::tests::sample();
        let mut b = a.clone();
        b.modules[0].migrations[0].file.sha256 = crate::kit::digest::Sha256Hex::of(b"edited");
        b.modules[0].migrations.remove(1);
        b.sequence += 1;
        let facts = |m: Manifest| KitFacts {
            manifest: m,
            manifest_sha256: String::new(),
            signers: BTreeSet::new(),
            packages: None,
        };
        let d = diff(&facts(a.clone()), &facts(b));
        assert_eq!(d.edited_migrations, 1);
        assert!(
            d.migrations
                .iter()
                .any(|m| m.change == Some(Change::Changed))
        );
        assert!(
            d.migrations
                .iter()
                .any(|m| m.change == Some(Change::Removed))
        );
        assert_eq!(d.fields[0].field, "sequence");
        assert!(diff(&facts(a.clone()), &facts(a)).is_empty());
    }
}
