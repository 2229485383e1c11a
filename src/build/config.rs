//! `kit.toml`: what a release engineer writes about a kit that its folders cannot say.
//!
//! The minimal file names the kit, its channel and sequence, and the database kind it targets;
//! modules are the folders under `migrations/` and need a `[modules.<name>]` table only to map to
//! a schema of another name. Unknown keys are refused so that a typo cannot silently drop a
//! setting. Values are read into the manifest's own types ([`crate::kit::names`]), each refusal
//! naming its key. This module does not walk the source folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::kit::digest::Sha256Hex;
pub use crate::kit::manifest::{SigstoreEntry, Target};
use crate::kit::migration_name::MigrationName;
use crate::kit::names::{Identifier, KitName, NameError, Reason, Timestamp, Version};
use crate::kit::path::KitPath;

/// A dependency on an earlier kit having been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The kit name.
    pub name: KitName,
    /// The lowest version of that kit that must have been applied.
    pub min_version: Version,
}

/// The parsed, checked `kit.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitConfig {
    /// Kit name.
    pub name: KitName,
    /// Kit version.
    pub version: Version,
    /// Anti-downgrade channel.
    pub channel: KitName,
    /// Monotonic sequence within the channel.
    pub sequence: u64,
    /// The database kind the migrations are written for.
    pub target: Target,
    /// Optional human description.
    pub description: Option<String>,
    /// Optional creation time, used when `SOURCE_DATE_EPOCH` is not set.
    pub created: Option<Timestamp>,
    /// Optional expiry time after which sites refuse the kit.
    pub expires: Option<Timestamp>,
    /// Kits that must have been applied before this one.
    pub requires: Vec<Requirement>,
    /// Schemas of modules whose schema is not their name.
    pub schemas: BTreeMap<Identifier, Identifier>,
    /// Migrations declared destructive (`[destructive]`, keyed `module/name`), with why.
    pub destructive: BTreeMap<(Identifier, String), Reason>,
    /// Shipped migrations whose checksum changed on purpose (`[realign]`, keyed `module/name`):
    /// the checksum they were shipped with, and why.
    pub realign: BTreeMap<(Identifier, String), (Sha256Hex, Reason)>,
    /// The Sigstore bundles under `attestations/` and what each is about (`[[sigstore]]`).
    pub sigstore: Vec<SigstoreEntry>,
}

/// The file as written (text values, checked into [`KitConfig`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    version: String,
    channel: String,
    sequence: u64,
    target: Target,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    requires: Vec<RawRequirement>,
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
    #[serde(default)]
    destructive: BTreeMap<String, String>,
    #[serde(default)]
    realign: BTreeMap<String, RawRealign>,
    #[serde(default)]
    sigstore: Vec<RawSigstore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigstore {
    bundle: String,
    kind: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealign {
    from: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    name: String,
    min_version: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawModule {
    schema: Option<String>,
}

/// Why `kit.toml` was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value breaks its rule.
    #[error("{path}: {field} = {value:?}: {rule}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        field: String,
        /// The value found.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
}

impl KitConfig {
    /// Reads and checks `dir/kit.toml`.
    pub fn load(dir: &Path) -> Result<KitConfig, ConfigError> {
        let path = dir.join("kit.toml");
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks the text of a kit.toml; `path` is used in messages.
    pub fn parse(text: &str, path: &str) -> Result<KitConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let field = |name: &str| {
            let (path, name) = (path.to_owned(), name.to_owned());
            move |e: NameError| ConfigError::Invalid {
                path,
                field: name,
                value: e.value,
                rule: e.rule,
            }
        };
        let time = |v: &Option<String>, name: &str| {
            v.as_deref()
                .map(|t| Timestamp::new(t).map_err(field(name)))
                .transpose()
        };
        let mut schemas = BTreeMap::new();
        for (module, settings) in &raw.modules {
            let module = Identifier::new(module).map_err(field("modules"))?;
            let schema = match &settings.schema {
                Some(s) => Identifier::new(s).map_err(field("schema"))?,
                None => module.clone(),
            };
            schemas.insert(module, schema);
        }
        let migration_key = |table: &str, key: &str| {
            let (module, name) = key.split_once('/').unwrap_or(("", key));
            let bad_key = || ConfigError::Invalid {
                path: path.to_owned(),
                field: table.to_owned(),
                value: crate::util::printable_short(key),
                rule: "keys are \"<module>/<migration name>\", e.g. \"core/120_drop_legacy\"",
            };
            let module = Identifier::new(module).map_err(|_| bad_key())?;
            let name = MigrationName::parse(name).map_err(|_| bad_key())?;
            Ok::<_, ConfigError>((module, name.as_str().to_owned()))
        };
        let mut destructive = BTreeMap::new();
        for (key, reason) in &raw.destructive {
            let reason = Reason::new(reason).map_err(field(&format!("destructive.{key}")))?;
            destructive.insert(migration_key("destructive", key)?, reason);
        }
        let mut realign = BTreeMap::new();
        for (key, r) in &raw.realign {
            let from = Sha256Hex::new(&r.from).map_err(|_| ConfigError::Invalid {
                path: path.to_owned(),
                field: format!("realign.{key}.from"),
                value: crate::util::printable_short(&r.from),
                rule: "the SHA-256 the migration was shipped with: 64 lowercase hex digits",
            })?;
            let reason = Reason::new(&r.reason).map_err(field(&format!("realign.{key}.reason")))?;
            realign.insert(migration_key("realign", key)?, (from, reason));
        }
        let mut sigstore = Vec::new();
        for (i, b) in raw.sigstore.iter().enumerate() {
            let at = |key: &str| format!("sigstore[{i}].{key}");
            let kit_path = |v: &str, key: &str, rule: &'static str| {
                KitPath::new(v).map_err(|_| ConfigError::Invalid {
                    path: path.to_owned(),
                    field: at(key),
                    value: crate::util::printable_short(v),
                    rule,
                })
            };
            let digest = b
                .digest
                .as_deref()
                .map(|d| {
                    Sha256Hex::new(d.strip_prefix("sha256:").unwrap_or(d)).map_err(|_| {
                        ConfigError::Invalid {
                            path: path.to_owned(),
                            field: at("digest"),
                            value: crate::util::printable_short(d),
                            rule: "the artifact's SHA-256: 64 lowercase hex digits, optionally after sha256:",
                        }
                    })
                })
                .transpose()?;
            sigstore.push(SigstoreEntry {
                bundle: kit_path(
                    &b.bundle,
                    "bundle",
                    "the bundle's path in the kit, e.g. \"attestations/runner.sigstore.json\"",
                )?,
                kind: KitName::new(&b.kind).map_err(field(&at("kind")))?,
                subject: b
                    .subject
                    .as_deref()
                    .map(|v| {
                        kit_path(
                            v,
                            "subject",
                            "the path in the kit of the file the bundle is about, e.g. \"sboms/runner.spdx.json\"",
                        )
                    })
                    .transpose()?,
                digest,
                name: b.name.clone(),
            });
        }
        Ok(KitConfig {
            destructive,
            realign,
            sigstore,
            name: KitName::new(&raw.name).map_err(field("name"))?,
            version: Version::new(&raw.version).map_err(field("version"))?,
            channel: KitName::new(&raw.channel).map_err(field("channel"))?,
            sequence: raw.sequence,
            target: raw.target,
            description: raw.description,
            created: time(&raw.created, "created")?,
            expires: time(&raw.expires, "expires")?,
            requires: raw
                .requires
                .iter()
                .map(|r| {
                    Ok(Requirement {
                        name: KitName::new(&r.name).map_err(field("requires.name"))?,
                        min_version: Version::new(&r.min_version)
                            .map_err(field("requires.min_version"))?,
                    })
                })
                .collect::<Result<_, ConfigError>>()?,
            schemas,
        })
    }

    /// The schema of a module: `[modules.<name>] schema`, else the module name.
    pub fn schema_of(&self, module: &Identifier) -> Identifier {
        self.schemas
            .get(module)
            .cloned()
            .unwrap_or_else(|| module.clone())
    }

    /// The `[destructive]` declarations as `("module/name", reason)`.
    pub fn declarations(&self) -> impl Iterator<Item = (String, &str)> {
        self.destructive
            .iter()
            .map(|((m, n), r)| (format!("{m}/{n}"), r.as_str()))
    }

    /// Modules that kit.toml configures.
    pub fn configured_modules(&self) -> impl Iterator<Item = &Identifier> {
        self.schemas.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "concelier-lnm"
version = "21.103.0"
channel = "concelier"
sequence = 3
target = "postgres"
"#;

    #[test]
    fn minimal_config_parses() {
        let c = KitConfig::parse(MINIMAL, "kit.toml").unwrap();
        assert_eq!(c.name.as_str(), "concelier-lnm");
        assert_eq!(c.target, Target::Postgres);
        let m = Identifier::new("concelier").unwrap();
        assert_eq!(c.schema_of(&m).as_str(), "concelier");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let typo = format!("{MINIMAL}expiry = \"2027-01-01T00:00:00Z\"\n");
        assert!(matches!(
            KitConfig::parse(&typo, "k"),
            Err(ConfigError::Parse { .. })
        ));
        let bad_time = format!("{MINIMAL}expires = \"next year\"\n");
        assert!(matches!(
            KitConfig::parse(&bad_time, "k"),
            Err(ConfigError::Invalid { field, .. }) if field == "expires"
        ));
        let bad_name = MINIMAL.replace("concelier-lnm", "Concelier LNM");
        assert!(matches!(
            KitConfig::parse(&bad_name, "k"),
            Err(ConfigError::Invalid { field, .. }) if field == "name"
        ));
    }

    #[test]
    fn module_schema_override() {
        let text = format!("{MINIMAL}[modules.concelier]\nschema = \"lnm\"\n");
        let c = KitConfig::parse(&text, "k").unwrap();
        let m = Identifier::new("concelier").unwrap();
        assert_eq!(c.schema_of(&m).as_str(), "lnm");
    }
}
