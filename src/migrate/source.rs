//! Migrations as the runner needs them: a [`MigrationSet`] of modules, each migration with its
//! SQL text, checksum, transaction mode and optional rollback.
//!
//! Two ways to make one. [`MigrationSet::load`] reads a folder with the kit layout
//! (`migrations/<module>/*.sql`, `rollback/<module>/<same name>.sql`): a kit source, for release
//! engineers rehearsing and for `build`'s checks. [`Migration::from_bytes`] and
//! [`MigrationSet::new`] build one from bytes a caller already holds — a verified kit's files, read
//! through the digest-checking reader against its signed manifest, so that a site never lists
//! migrations from a folder. Both apply the same rules: the naming standard, duplicate numbers
//! within a module and category, rollbacks without their migration, data-migration shape, UTF-8
//! text, and no two modules sharing a schema. Each file's checksum is the SHA-256 of its exact
//! bytes. What to run is decided elsewhere ([`crate::migrate::plan`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::kit::migration_name::{
    Category, DirectiveError, Hints, MigrationName, NameError, TxMode,
};
use crate::kit::names::is_identifier;
use crate::migrate::destructive::{self, Finding};
use crate::migrate::sqltext;

/// The placeholder a data migration binds to the batch size.
pub const BATCH_SIZE_PARAM: &str = "batch_size";

/// A rollback file for a migration.
#[derive(Debug, Clone)]
pub struct Rollback {
    /// Where it came from (a kit path, or a file of a source folder), for messages.
    pub origin: String,
    /// The SQL text.
    pub sql: String,
    /// SHA-256 hex of the file's bytes.
    pub checksum: String,
    /// How it runs.
    pub tx: TxMode,
    /// Its signed timeout hints.
    pub hints: Hints,
}

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The validated name (file stem).
    pub name: MigrationName,
    /// Where it came from (a kit path, or a file of a source folder), for messages.
    pub origin: String,
    /// The SQL text.
    pub sql: String,
    /// SHA-256 hex of the file's exact bytes.
    pub checksum: String,
    /// How it runs.
    pub tx: TxMode,
    /// Its signed timeout hints (`-- offkit:statement-timeout 10m`).
    pub hints: Hints,
    /// Its destructive statements, as classified from its text.
    pub findings: Vec<Finding>,
    /// Why the kit declares it destructive (kit.toml `[destructive]`, the signed manifest).
    pub declared: Option<String>,
    /// Its rollback, if the kit has one.
    pub rollback: Option<Rollback>,
    /// The checksum it was shipped with, when the kit declares it changed on purpose (kit.toml
    /// `[realign]`, the signed manifest): a history row with that checksum is realigned to this
    /// one instead of being drift.
    pub realigned_from: Option<String>,
}

impl Migration {
    /// The category decided by the name.
    pub fn category(&self) -> Category {
        self.name.category()
    }

    /// True when the gate treats it as destructive: its text has destructive statements, or
    /// the kit declares it so.
    pub fn is_destructive(&self) -> bool {
        !self.findings.is_empty() || self.declared.is_some()
    }

    /// A migration from its bytes: checks they are UTF-8 and, for a data migration, one batched
    /// statement; computes the checksum and reads the transaction mode from the first line.
    pub fn from_bytes(
        name: MigrationName,
        origin: &str,
        bytes: Vec<u8>,
    ) -> Result<Migration, SourceError> {
        let (sql, checksum, tx, hints) = sql_text(origin, bytes)?;
        if name.category() == Category::Data {
            check_data_shape(origin, &sql, tx)?;
        }
        if tx == TxMode::Transaction {
            if let Some(line) = sqltext::transaction_control_line(&sql) {
                return Err(SourceError::TransactionControl {
                    origin: origin.to_owned(),
                    line,
                });
            }
        }
        let findings = destructive::classify(&sql);
        Ok(Migration {
            name,
            origin: origin.to_owned(),
            sql,
            checksum,
            tx,
            hints,
            findings,
            declared: None,
            rollback: None,
            realigned_from: None,
        })
    }
}

impl Rollback {
    /// A rollback from its bytes (UTF-8 checked, checksum computed).
    pub fn from_bytes(origin: &str, bytes: Vec<u8>) -> Result<Rollback, SourceError> {
        let (sql, checksum, tx, hints) = sql_text(origin, bytes)?;
        Ok(Rollback {
            origin: origin.to_owned(),
            sql,
            checksum,
            tx,
            hints,
        })
    }
}

/// A module: a folder under `migrations/`, with the schema its migrations run in.
#[derive(Debug, Clone)]
pub struct Module {
    /// The module (folder) name.
    pub name: String,
    /// The database schema (PostgreSQL) or table-name prefix (SQLite).
    pub schema: String,
    /// Migrations in application order (category, then number).
    pub migrations: Vec<Migration>,
}

impl Module {
    /// The migration of that name, if the kit has it.
    pub fn get(&self, name: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.name.as_str() == name)
    }
}

/// All modules of a kit (or kit source), sorted by module name.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// The modules, sorted by name.
    pub modules: Vec<Module>,
}

/// Why migrations were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A migration or rollback file breaks the naming standard.
    #[error("{path}: {source}")]
    Name {
        /// The file.
        path: PathBuf,
        /// What is wrong with the name.
        source: NameError,
    },
    /// Something other than a `.sql` file, or a file name that is not UTF-8.
    #[error("{path}: unexpected entry (only NAME.sql files belong here)")]
    Unexpected {
        /// The entry.
        path: PathBuf,
    },
    /// A module folder name or schema is not an identifier.
    #[error("{what} {name:?} is not a valid identifier ([a-z_][a-z0-9_]*, at most 63 bytes)")]
    Identifier {
        /// "module" or "schema".
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Two modules map to the same schema and would share a history table.
    #[error("modules {first:?} and {second:?} both use schema {schema:?}")]
    SharedSchema {
        /// One module.
        first: String,
        /// The other module.
        second: String,
        /// The schema.
        schema: String,
    },
    /// Two migrations of one module and category have the same number.
    #[error("module {module}: {first} and {second} have the same {category} number {number}")]
    DuplicateNumber {
        /// The module.
        module: String,
        /// The category.
        category: Category,
        /// The number.
        number: u32,
        /// One file stem.
        first: String,
        /// The other file stem.
        second: String,
    },
    /// A rollback file has no migration of the same name.
    #[error("{path}: rollback without a migration of the same name in migrations/{module}/")]
    RollbackWithoutMigration {
        /// The module.
        module: String,
        /// The rollback file.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("{origin}: not UTF-8 text")]
    NotUtf8 {
        /// The file.
        origin: String,
    },
    /// A `[destructive]` declaration names no migration of the kit.
    #[error(
        "kit.toml: [destructive] {key:?} names no migration (write \"<module>/<migration name>\")"
    )]
    UnknownDeclaration {
        /// The key as written.
        key: String,
    },
    /// A transactional migration that ends or opens a transaction itself.
    #[error(
        "{origin}:{line}: a migration must not end or open its own transaction (COMMIT, ROLLBACK, BEGIN, …): offkit runs it in one transaction with its history row; remove the statement, or make the file -- offkit:no-transaction"
    )]
    TransactionControl {
        /// The file.
        origin: String,
        /// The 1-based line of the statement.
        line: usize,
    },
    /// A malformed `-- offkit:` directive.
    #[error("{origin}:{source}")]
    Directive {
        /// The file.
        origin: String,
        /// The line and what is wrong.
        source: DirectiveError,
    },
    /// A data migration that is not a single batched statement.
    #[error(
        "{origin}: data migrations must be exactly one statement using :batch_size ({problem})"
    )]
    DataShape {
        /// The file.
        origin: String,
        /// What is wrong.
        problem: &'static str,
    },
}

impl crate::exit::ExitCoded for SourceError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            SourceError::Read { .. } => crate::exit::Exit::Io,
            _ => crate::exit::Exit::InvalidSource,
        }
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, SourceError> {
    let err = |source| SourceError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        let is_dir = entry.file_type().map_err(err)?.is_dir();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| SourceError::Unexpected { path: path.clone() })?;
        entries.push((name, path, is_dir));
    }
    entries.sort();
    Ok(entries)
}

/// The SQL text, checksum, transaction mode and hints of a file's bytes.
fn sql_text(origin: &str, bytes: Vec<u8>) -> Result<(String, String, TxMode, Hints), SourceError> {
    let checksum = crate::util::sha256_hex(&bytes);
    let tx = TxMode::of(&bytes);
    let sql = String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 {
        origin: origin.to_owned(),
    })?;
    let hints = Hints::parse(&sql).map_err(|source| SourceError::Directive {
        origin: origin.to_owned(),
        source,
    })?;
    Ok((sql, checksum, tx, hints))
}

fn read_file(path: &Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `*.sql` files of one folder into (name, path) pairs, refusing anything else.
fn sql_files(dir: &Path) -> Result<Vec<(MigrationName, PathBuf)>, SourceError> {
    let mut files = Vec::new();
    for (file, path, is_dir) in read_dir_sorted(dir)? {
        if is_dir {
            return Err(SourceError::Unexpected { path });
        }
        let name = MigrationName::from_file_name(&file).map_err(|source| SourceError::Name {
            path: path.clone(),
            source,
        })?;
        files.push((name, path));
    }
    Ok(files)
}

fn check_data_shape(origin: &str, sql: &str, tx: TxMode) -> Result<(), SourceError> {
    let problem = if tx == TxMode::NoTransaction {
        "each batch runs in its own transaction; the no-transaction marker is not allowed"
    } else if sqltext::statement_count(sql) != 1 {
        "found more or fewer than one statement"
    } else if sqltext::placeholder_offsets(sql, BATCH_SIZE_PARAM).is_empty() {
        if sql.contains(":batch_size") {
            "the statement does not use :batch_size to bound a batch (a :batch_size joined to \
             a letter, digit, `_`, `$` or `:` before or after it, as in LIMIT:batch_size, is \
             not the placeholder: put a space before it)"
        } else {
            "the statement does not use :batch_size to bound a batch"
        }
    } else {
        return Ok(());
    };
    Err(SourceError::DataShape {
        origin: origin.to_owned(),
        problem,
    })
}

fn load_module(root: &Path, name: &str, schema: &str) -> Result<Module, SourceError> {
    let mut migrations: Vec<Migration> = Vec::new();
    for (mname, path) in sql_files(&root.join("migrations").join(name))? {
        let origin = path.display().to_string();
        migrations.push(Migration::from_bytes(mname, &origin, read_file(&path)?)?);
    }
    let rollback_dir = root.join("rollback").join(name);
    if rollback_dir.is_dir() {
        let index: std::collections::HashMap<String, usize> = migrations
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str().to_owned(), i))
            .collect();
        for (rname, path) in sql_files(&rollback_dir)? {
            let Some(m) = index.get(rname.as_str()).map(|&i| &mut migrations[i]) else {
                return Err(SourceError::RollbackWithoutMigration {
                    module: name.to_owned(),
                    path,
                });
            };
            let origin = path.display().to_string();
            m.rollback = Some(Rollback::from_bytes(&origin, read_file(&path)?)?);
        }
    }
    Ok(Module {
        name: name.to_owned(),
        schema: schema.to_owned(),
        migrations,
    })
}

impl MigrationSet {
    /// A set of `modules`: checks module and schema identifiers, that no two modules share a
    /// schema and that no module repeats a number within a category; sorts modules by name and
    /// migrations into application order.
    pub fn new(mut modules: Vec<Module>) -> Result<MigrationSet, SourceError> {
        let mut by_schema: BTreeMap<String, String> = BTreeMap::new();
        for m in &mut modules {
            for (what, name) in [("module", &m.name), ("schema", &m.schema)] {
                if !is_identifier(name) {
                    return Err(SourceError::Identifier {
                        what,
                        name: name.clone(),
                    });
                }
            }
            if let Some(first) = by_schema.insert(m.schema.clone(), m.name.clone()) {
                return Err(SourceError::SharedSchema {
                    first,
                    second: m.name.clone(),
                    schema: m.schema.clone(),
                });
            }
            let mut seen: BTreeMap<(Category, u32), &str> = BTreeMap::new();
            for mig in &m.migrations {
                if let Some(first) = seen.insert(mig.name.order_key(), mig.name.as_str()) {
                    return Err(SourceError::DuplicateNumber {
                        module: m.name.clone(),
                        category: mig.category(),
                        number: mig.name.number(),
                        first: first.to_owned(),
                        second: mig.name.as_str().to_owned(),
                    });
                }
            }
            m.migrations.sort_by_key(|mig| mig.name.order_key());
        }
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(MigrationSet { modules })
    }

    /// Loads every module under `root/migrations/`. `schemas` maps module names to schemas (from
    /// kit.toml); a module without an entry uses its own name.
    pub fn load(
        root: &Path,
        schemas: &BTreeMap<String, String>,
    ) -> Result<MigrationSet, SourceError> {
        let mut modules = Vec::new();
        let migrations_dir = root.join("migrations");
        // A kit without migrations (seeds only) is an empty set, not an error.
        let entries = if migrations_dir.exists() {
            read_dir_sorted(&migrations_dir)?
        } else {
            Vec::new()
        };
        for (name, path, is_dir) in entries {
            if !is_dir {
                return Err(SourceError::Unexpected { path });
            }
            if !is_identifier(&name) {
                return Err(SourceError::Identifier {
                    what: "module",
                    name,
                });
            }
            let schema = schemas.get(&name).cloned().unwrap_or_else(|| name.clone());
            modules.push(load_module(root, &name, &schema)?);
        }
        let rollback_dir = root.join("rollback");
        if rollback_dir.is_dir() {
            for (name, path, _) in read_dir_sorted(&rollback_dir)? {
                if !modules.iter().any(|m| m.name == name) {
                    return Err(SourceError::RollbackWithoutMigration { module: name, path });
                }
            }
        }
        Self::new(modules)
    }

    /// The module of that name.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// Records the kit's destructive declarations, keyed `module/name` (from kit.toml). A key
    /// that names no migration is refused, so that a typo cannot leave a migration undeclared.
    pub fn declare<'a>(
        &mut self,
        declarations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), SourceError> {
        for (key, reason) in declarations {
            let m = key.split_once('/').and_then(|(module, name)| {
                self.modules
                    .iter_mut()
                    .find(|m| m.name == module)?
                    .migrations
                    .iter_mut()
                    .find(|m| m.name.as_str() == name)
            });
            match m {
                Some(m) => m.declared = Some(reason.to_owned()),
                None => {
                    return Err(SourceError::UnknownDeclaration {
                        key: crate::util::printable_short(key),
                    });
                }
            }
        }
        Ok(())
    }

    /// Migrations whose text is destructive but that the kit does not declare, with their module.
    pub fn undeclared(&self) -> impl Iterator<Item = (&Module, &Migration)> {
        self.modules.iter().flat_map(|md| {
            md.migrations
                .iter()
                .filter(|m| !m.findings.is_empty() && m.declared.is_none())
                .map(move |m| (md, m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn loads_orders_and_checksums() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "migrations/core/S001_ref.sql",
            "INSERT INTO t VALUES (1);",
        );
        write(
            d.path(),
            "migrations/core/100_rel.sql",
            "ALTER TABLE t ADD b int;",
        );
        write(
            d.path(),
            "migrations/core/001_init.sql",
            "CREATE TABLE t (a int);",
        );
        write(
            d.path(),
            "migrations/core/DM001_fill.sql",
            "UPDATE t SET b = 1 WHERE a IN (SELECT a FROM t WHERE b IS NULL LIMIT :batch_size);",
        );
        write(
            d.path(),
            "rollback/core/100_rel.sql",
            "ALTER TABLE t DROP b;",
        );
        let schemas = BTreeMap::from([("core".to_owned(), "core_s".to_owned())]);
        let set = MigrationSet::load(d.path(), &schemas).unwrap();
        let m = &set.modules[0];
        assert_eq!(m.schema, "core_s");
        let names: Vec<_> = m.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["001_init", "100_rel", "S001_ref", "DM001_fill"]);
        assert_eq!(
            m.migrations[0].checksum,
            crate::util::sha256_hex(b"CREATE TABLE t (a int);")
        );
        assert!(m.migrations[1].rollback.is_some());
    }

    #[test]
    fn refusals() {
        let case = |files: &[(&str, &str)]| {
            let d = tempfile::tempdir().unwrap();
            for (p, t) in files {
                write(d.path(), p, t);
            }
            MigrationSet::load(d.path(), &BTreeMap::new()).unwrap_err()
        };
        assert!(matches!(
            case(&[
                ("migrations/a/001_x.sql", ""),
                ("migrations/a/001_y.sql", "")
            ]),
            SourceError::DuplicateNumber { number: 1, .. }
        ));
        assert!(matches!(
            case(&[("migrations/a/001_x.sql", ""), ("rollback/a/002_y.sql", "")]),
            SourceError::RollbackWithoutMigration { .. }
        ));
        assert!(matches!(
            case(&[("migrations/a/1_x.sql", "")]),
            SourceError::Name { .. }
        ));
        assert!(matches!(
            case(&[("migrations/a/DM001_x.sql", "UPDATE t SET a = 1;")]),
            SourceError::DataShape { .. }
        ));
        assert!(matches!(
            case(&[(
                "migrations/a/DM001_x.sql",
                "UPDATE t SET a = 1 LIMIT :batch_size; SELECT 1;"
            )]),
            SourceError::DataShape { .. }
        ));
        let joined = case(&[(
            "migrations/a/DM001_x.sql",
            "UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t LIMIT:batch_size);",
        )]);
        assert!(
            matches!(joined, SourceError::DataShape { .. })
                && joined.to_string().contains("put a space before it"),
            "{joined}"
        );
    }
}
