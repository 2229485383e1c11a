//! Kit sources: a folder a release engineer writes (`kit.toml`, `migrations/`, `rollback/`,
//! `seeds/`, `sboms/`, `attestations/`), scanned and checked against the build rules.
//!
//! Convention over configuration: a file's folder says what it is. Anything that fits no rule is
//! refused with the file and the rule it breaks, before a byte of the kit is written. This module
//! reads the tree; it does not hash or pack (that is [`crate::build::build`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::build::config::{ConfigError, KitConfig};
use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::KIT_SBOM;
use crate::kit::migration_name::{MigrationName, NameError};
use crate::kit::names::Identifier;
use crate::kit::path::{KitPath, PathError};

/// What a source file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// `migrations/<module>/<name>.sql`.
    Migration {
        /// Module (folder) name.
        module: Identifier,
        /// Parsed migration name.
        name: MigrationName,
    },
    /// `rollback/<module>/<name>.sql`.
    Rollback {
        /// Module (folder) name.
        module: Identifier,
        /// Name of the migration it undoes.
        name: MigrationName,
    },
    /// `seeds/<key>`.
    Seed {
        /// Object key.
        key: KitPath,
    },
    /// `sboms/*.spdx.json` or `sboms/*.cdx.json`.
    Sbom,
    /// `attestations/*`.
    Attestation,
}

/// One file of a kit source.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its path in the kit.
    pub path: KitPath,
    /// Where it is on disk.
    pub disk: PathBuf,
    /// What it is.
    pub role: Role,
}

/// A scanned, checked kit source.
#[derive(Debug, Clone)]
pub struct KitSource {
    /// The source folder.
    pub root: PathBuf,
    /// Its `kit.toml`.
    pub config: KitConfig,
    /// Its files, sorted by kit path.
    pub files: Vec<SourceFile>,
    /// `trust/N.root.json`: trust versions the kit carries in its header (not payload), by
    /// version.
    pub trust_versions: Vec<(u64, PathBuf)>,
}

/// A build rule the source breaks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// `kit.toml` is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Several files break rules: each is listed.
    #[error("{} problems in the kit source:\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Several(Vec<SourceError>),
    /// The source is a file, not a folder (a built kit given to `build`, say).
    #[error("{path} is {what}; build takes a kit source folder (kit.toml, migrations/, seeds/, …)")]
    NotAFolder {
        /// The file.
        path: String,
        /// What it seems to be.
        what: &'static str,
    },
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A name is not UTF-8 or not a safe archive path.
    #[error("{path}: unsafe or invalid name: {source}")]
    BadPath {
        /// The file, shown lossily.
        path: String,
        /// The rule broken.
        source: PathError,
    },
    /// A symbolic link (never followed: a kit carries files only).
    #[error("{path}: symbolic links are not allowed in a kit source (copy the file instead)")]
    Symlink {
        /// The link.
        path: String,
    },
    /// A FIFO, socket or device.
    #[error("{path}: only regular files and folders are allowed in a kit source")]
    SpecialFile {
        /// The file.
        path: String,
    },
    /// A file or folder in a place no rule covers.
    #[error("{path}: unknown file: {rule}")]
    UnknownFile {
        /// The file.
        path: String,
        /// Where such files are allowed.
        rule: &'static str,
    },
    /// A migration or rollback file name breaks the naming standard.
    #[error("{path}: {source}")]
    BadMigrationName {
        /// The file.
        path: String,
        /// The rule broken.
        source: NameError,
    },
    /// A module folder name is not an identifier.
    #[error("{path}: module names must match [a-z_][a-z0-9_]* (at most 63 bytes)")]
    BadModuleName {
        /// The folder.
        path: String,
    },
    /// The migration runner refuses the migrations (duplicate numbers, a rollback without its
    /// migration, data migrations that are not one batched statement, shared schemas, …): the
    /// same rules a site's runner applies, checked at build time.
    #[error(transparent)]
    Migrations(#[from] crate::migrate::source::SourceError),
    /// Migrations with destructive statements that kit.toml does not declare.
    #[error("{}", undeclared_text(.migrations))]
    UndeclaredDestructive {
        /// Each undeclared migration: `module/name`, its file, and what was found.
        migrations: Vec<Undeclared>,
    },
    /// Two paths differ only in letter case.
    #[error("{first} and {second}: names collide on case-insensitive file systems")]
    CaseCollision {
        /// One path.
        first: String,
        /// The other.
        second: String,
    },
    /// `kit.toml` configures a module that has no folder.
    #[error("kit.toml: [modules.{module}] has no folder migrations/{module}/")]
    UnknownModule {
        /// The module.
        module: String,
    },
    /// `kit.toml` realigns a migration the source does not have, or to the checksum it has.
    #[error("kit.toml: [realign] \"{key}\": {reason}")]
    BadRealign {
        /// `module/name`.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A migration file is empty.
    #[error("{path}: empty migration file")]
    EmptyMigration {
        /// The file.
        path: String,
    },
    /// An SBOM is not valid JSON.
    #[error("{path}: not valid JSON: {message}")]
    BadSbom {
        /// The file.
        path: String,
        /// Parser message.
        message: String,
    },
}

/// A destructive migration kit.toml does not declare.
#[derive(Debug, Clone)]
pub struct Undeclared {
    /// `module/name`.
    pub key: String,
    /// The file (kit path).
    pub path: String,
    /// Its destructive statements.
    pub findings: Vec<crate::migrate::destructive::Finding>,
}

fn undeclared_text(migrations: &[Undeclared]) -> String {
    let mut s = format!(
        "{} migration(s) with destructive statements not declared in kit.toml:",
        migrations.len()
    );
    for m in migrations {
        for f in &m.findings {
            s.push_str(&format!(
                "\n  {}:{}: {} ({})",
                m.path, f.line, f.statement, f.kind
            ));
        }
    }
    s.push_str("\nAfter review, declare each with why, so that sites must allow it explicitly:\n  [destructive]");
    for m in migrations {
        s.push_str(&format!("\n  \"{}\" = \"<why this is safe now>\"", m.key));
    }
    s
}

/// The migrations of `set` that are destructive and not declared.
pub fn undeclared(set: &crate::migrate::MigrationSet) -> Vec<Undeclared> {
    set.undeclared()
        .map(|(md, m)| Undeclared {
            key: format!("{}/{}", md.name, m.name),
            path: format!("migrations/{}/{}.sql", md.name, m.name),
            findings: m.findings.clone(),
        })
        .collect()
}

impl SourceError {
    /// One error for a list of them (the list when there are several).
    fn all(mut errors: Vec<SourceError>) -> SourceError {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            SourceError::Several(errors)
        }
    }
}

impl ExitCoded for SourceError {
    fn exit(&self) -> Exit {
        match self {
            SourceError::Several(errors) => {
                errors.first().map_or(Exit::InvalidSource, |e| e.exit())
            }
            SourceError::Io { .. } => Exit::Io,
            SourceError::NotAFolder { .. } => Exit::Usage,
            SourceError::Config(ConfigError::Read { .. }) => Exit::Io,
            SourceError::Migrations(e) => e.exit(),
            _ => Exit::InvalidSource,
        }
    }
}

const TOP_RULE: &str = "a kit source holds kit.toml and the folders migrations/, rollback/, seeds/, sboms/, attestations/, trust/";
const MODULE_RULE: &str =
    "migrations and rollbacks live in migrations/<module>/ and rollback/<module>/";
const SBOM_RULE: &str = "SBOMs are sboms/<name>.spdx.json or sboms/<name>.cdx.json (kit.spdx.json is reserved for the generated SBOM)";
const TRUST_RULE: &str =
    "trust/ holds trust versions named N.root.json (TUF root metadata), no sub-folders";
const FLAT_RULE: &str = "attestations/ holds files directly, no sub-folders";

impl KitSource {
    /// Scans and checks a kit source folder.
    pub fn scan(root: &Path) -> Result<KitSource, SourceError> {
        if root.is_file() {
            let name = root.to_string_lossy();
            return Err(SourceError::NotAFolder {
                path: root.display().to_string(),
                what: if name.ends_with(".kit.tar.zst") || name.contains(".kit.tar.zst.part") {
                    "a built kit (verify, inspect or apply it)"
                } else {
                    "a file"
                },
            });
        }
        let config = KitConfig::load(root)?;
        let mut files = Vec::new();
        let mut folded: HashMap<String, KitPath> = HashMap::new();
        let mut trust_versions = Vec::new();
        let walker = walkdir::WalkDir::new(root)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name();
        // Every rule a file breaks is reported in one run, not only the first.
        let mut broken: Vec<SourceError> = Vec::new();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    broken.push(SourceError::Io {
                        path: e
                            .path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                        source: e.into(),
                    });
                    continue;
                }
            };
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let shown = rel.to_string_lossy().into_owned();
            let kit_path = match rel
                .to_str()
                .ok_or_else(|| PathError::NonUtf8 {
                    hex: hex::encode(rel.as_os_str().as_encoded_bytes()),
                })
                .and_then(KitPath::new)
            {
                Ok(p) => p,
                Err(source) => {
                    broken.push(SourceError::BadPath {
                        path: shown.clone(),
                        source,
                    });
                    continue;
                }
            };
            if let Some(other) = folded.insert(kit_path.case_fold(), kit_path.clone()) {
                broken.push(SourceError::CaseCollision {
                    first: other.to_string(),
                    second: shown,
                });
                continue;
            }
            let ft = entry.file_type();
            if ft.is_symlink() {
                broken.push(SourceError::Symlink { path: shown });
                continue;
            }
            if !ft.is_dir() && !ft.is_file() {
                broken.push(SourceError::SpecialFile { path: shown });
                continue;
            }
            if ft.is_file()
                && let Some(n) = crate::kit::layout::parse_trust_version_name(kit_path.as_str())
            {
                trust_versions.push((n, entry.path().to_path_buf()));
                continue;
            }
            match classify(&kit_path, ft.is_dir(), &shown) {
                Ok(Some(role)) => files.push(SourceFile {
                    path: kit_path,
                    disk: entry.path().to_path_buf(),
                    role,
                }),
                Ok(None) => {}
                Err(e) => broken.push(e),
            }
        }
        if !broken.is_empty() {
            return Err(SourceError::all(broken));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        trust_versions.sort();
        let source = KitSource {
            root: root.to_path_buf(),
            config,
            files,
            trust_versions,
        };
        source.check_relations()?;
        Ok(source)
    }

    /// Module names (folders under `migrations/`), sorted.
    pub fn modules(&self) -> BTreeSet<Identifier> {
        self.files
            .iter()
            .filter_map(|f| match &f.role {
                Role::Migration { module, .. } => Some(module.clone()),
                _ => None,
            })
            .collect()
    }

    fn check_relations(&self) -> Result<(), SourceError> {
        for f in &self.files {
            match &f.role {
                Role::Migration { .. } => {
                    let size = std::fs::metadata(&f.disk)
                        .map_err(|source| SourceError::Io {
                            path: f.path.to_string(),
                            source,
                        })?
                        .len();
                    if size == 0 {
                        return Err(SourceError::EmptyMigration {
                            path: f.path.to_string(),
                        });
                    }
                }
                Role::Sbom => {
                    let bytes = std::fs::read(&f.disk).map_err(|source| SourceError::Io {
                        path: f.path.to_string(),
                        source,
                    })?;
                    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                        return Err(SourceError::BadSbom {
                            path: f.path.to_string(),
                            message: e.to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
        let modules = self.modules();
        if let Some(module) = self
            .config
            .configured_modules()
            .find(|m| !modules.contains(*m))
        {
            return Err(SourceError::UnknownModule {
                module: module.to_string(),
            });
        }
        // The runner's own loader: one set of migration rules for build and apply.
        let schemas = modules
            .iter()
            .map(|m| (m.to_string(), self.config.schema_of(m).to_string()))
            .collect();
        let mut set = crate::migrate::MigrationSet::load(&self.root, &schemas)?;
        let declarations: Vec<(String, &str)> = self.config.declarations().collect();
        set.declare(declarations.iter().map(|(k, r)| (k.as_str(), *r)))?;
        let migrations = undeclared(&set);
        if !migrations.is_empty() {
            return Err(SourceError::UndeclaredDestructive { migrations });
        }
        for ((module, name), (from, _)) in &self.config.realign {
            let found = set
                .modules
                .iter()
                .find(|m| m.name == module.as_str())
                .and_then(|m| m.migrations.iter().find(|x| x.name.as_str() == name));
            let bad = |reason| SourceError::BadRealign {
                key: format!("{module}/{name}"),
                reason,
            };
            match found {
                None => return Err(bad("no such migration in the source")),
                Some(m) if m.checksum == from.as_str() => {
                    return Err(bad(
                        "`from` is the migration's current checksum; name the one it was shipped with",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Decides what a path is; `None` for folders that are fine as containers.
fn classify(path: &KitPath, is_dir: bool, shown: &str) -> Result<Option<Role>, SourceError> {
    let parts: Vec<&str> = path.components().collect();
    let unknown = |rule| SourceError::UnknownFile {
        path: shown.to_owned(),
        rule,
    };
    match (parts.as_slice(), is_dir) {
        (["kit.toml"], false) => Ok(None),
        ([top], true) if crate::kit::layout::PAYLOAD_DIRS.contains(top) => Ok(None),
        (["trust"], true) => Ok(None),
        ([_], _) => Err(unknown(TOP_RULE)),
        (["migrations" | "rollback", module], true) => match Identifier::new(module) {
            Ok(_) => Ok(None),
            Err(_) => Err(SourceError::BadModuleName {
                path: shown.to_owned(),
            }),
        },
        (["migrations" | "rollback", _], false) => Err(unknown(MODULE_RULE)),
        ([top @ ("migrations" | "rollback"), module, file], false) => {
            let name = MigrationName::from_file_name(file).map_err(|source| {
                SourceError::BadMigrationName {
                    path: shown.to_owned(),
                    source,
                }
            })?;
            let module = Identifier::new(module).map_err(|_| SourceError::BadModuleName {
                path: shown.to_owned(),
            })?;
            Ok(Some(if *top == "migrations" {
                Role::Migration { module, name }
            } else {
                Role::Rollback { module, name }
            }))
        }
        (["migrations" | "rollback", ..], _) => Err(unknown(MODULE_RULE)),
        (["seeds", ..], true) => Ok(None),
        (["seeds", rest @ ..], false) => {
            // A key under a valid kit path is itself a valid path.
            let key = KitPath::new(&rest.join("/")).map_err(|source| SourceError::BadPath {
                path: shown.to_owned(),
                source,
            })?;
            Ok(Some(Role::Seed { key }))
        }
        (["sboms", file], false) => {
            let ok = (file.ends_with(".spdx.json") || file.ends_with(".cdx.json"))
                && path.as_str() != KIT_SBOM;
            if ok {
                Ok(Some(Role::Sbom))
            } else {
                Err(unknown(SBOM_RULE))
            }
        }
        (["sboms", ..], _) => Err(unknown(SBOM_RULE)),
        (["attestations", _], false) => Ok(Some(Role::Attestation)),
        (["attestations", ..], _) => Err(unknown(FLAT_RULE)),
        (["trust", ..], _) => Err(unknown(TRUST_RULE)),
        _ => Err(unknown(TOP_RULE)),
    }
}
