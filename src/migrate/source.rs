//! Loading migrations from a folder with the kit layout: `migrations/<module>/*.sql` and
//! `rollback/<module>/<same name>.sql`, from a kit source folder or a verified, extracted kit.
//!
//! Loading checks what can be checked without a database: the naming standard, duplicate numbers
//! within a module and category, rollbacks without their migration, data-migration shape, and
//! that no two modules share a schema. It computes each file's checksum (SHA-256 of its exact
//! bytes). It does not decide what to run; see [`crate::migrate::plan`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::kit::config::is_valid_identifier;
use crate::migrate::name::{Category, MigrationName, NameError, is_no_transaction};
use crate::migrate::sqltext;

/// The placeholder a data migration binds to the batch size.
pub const BATCH_SIZE_PARAM: &str = "batch_size";

/// How a migration file is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxMode {
    /// In one transaction together with its history row (the default).
    Transaction,
    /// Outside a transaction (first line `-- offkit:no-transaction`), guarded by an in-progress
    /// record.
    NoTransaction,
}

/// A rollback file for a migration.
#[derive(Debug, Clone)]
pub struct Rollback {
    /// The file.
    pub path: PathBuf,
    /// The SQL text.
    pub sql: String,
    /// SHA-256 hex of the file's bytes.
    pub checksum: String,
    /// How it runs.
    pub tx: TxMode,
}

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The validated name (file stem).
    pub name: MigrationName,
    /// The file.
    pub path: PathBuf,
    /// The SQL text.
    pub sql: String,
    /// SHA-256 hex of the file's exact bytes.
    pub checksum: String,
    /// How it runs.
    pub tx: TxMode,
    /// Its rollback, if the kit has one.
    pub rollback: Option<Rollback>,
}

impl Migration {
    /// The category decided by the name.
    pub fn category(&self) -> Category {
        self.name.category()
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
    /// The folder the set was loaded from.
    pub root: PathBuf,
    /// The modules, sorted by name.
    pub modules: Vec<Module>,
}

/// Why a migration folder was refused.
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
    #[error("{path}: not UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// A data migration that is not a single batched statement.
    #[error("{path}: data migrations must be exactly one statement using :batch_size ({problem})")]
    DataShape {
        /// The file.
        path: PathBuf,
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

fn read_sql(path: &Path) -> Result<(String, String), SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let checksum = crate::util::sha256_hex(&bytes);
    let sql = String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    Ok((sql, checksum))
}

fn tx_mode(sql: &str) -> TxMode {
    if is_no_transaction(sql.as_bytes()) {
        TxMode::NoTransaction
    } else {
        TxMode::Transaction
    }
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

fn check_data_shape(path: &Path, sql: &str, tx: TxMode) -> Result<(), SourceError> {
    let problem = if tx == TxMode::NoTransaction {
        "each batch runs in its own transaction; the no-transaction marker is not allowed"
    } else if sqltext::statement_count(sql) != 1 {
        "found more or fewer than one statement"
    } else if sqltext::placeholder_offsets(sql, BATCH_SIZE_PARAM).is_empty() {
        "the statement does not use :batch_size to bound a batch"
    } else {
        return Ok(());
    };
    Err(SourceError::DataShape {
        path: path.to_path_buf(),
        problem,
    })
}

fn load_module(root: &Path, name: &str, schema: &str) -> Result<Module, SourceError> {
    let mut migrations: Vec<Migration> = Vec::new();
    let mut seen: BTreeMap<(Category, u32), String> = BTreeMap::new();
    for (mname, path) in sql_files(&root.join("migrations").join(name))? {
        if let Some(first) = seen.insert(mname.order_key(), mname.as_str().to_owned()) {
            return Err(SourceError::DuplicateNumber {
                module: name.to_owned(),
                category: mname.category(),
                number: mname.number(),
                first,
                second: mname.as_str().to_owned(),
            });
        }
        let (sql, checksum) = read_sql(&path)?;
        let tx = tx_mode(&sql);
        if mname.category() == Category::Data {
            check_data_shape(&path, &sql, tx)?;
        }
        migrations.push(Migration {
            name: mname,
            path,
            sql,
            checksum,
            tx,
            rollback: None,
        });
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
            let (sql, checksum) = read_sql(&path)?;
            let tx = tx_mode(&sql);
            m.rollback = Some(Rollback {
                path,
                sql,
                checksum,
                tx,
            });
        }
    }
    migrations.sort_by_key(|m| m.name.order_key());
    Ok(Module {
        name: name.to_owned(),
        schema: schema.to_owned(),
        migrations,
    })
}

impl MigrationSet {
    /// Loads every module under `root/migrations/`. `schemas` maps module names to schemas (from
    /// kit.toml or the signed manifest); a module without an entry uses its own name.
    pub fn load(
        root: &Path,
        schemas: &BTreeMap<String, String>,
    ) -> Result<MigrationSet, SourceError> {
        let mut modules = Vec::new();
        let mut by_schema: BTreeMap<String, String> = BTreeMap::new();
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
            if !is_valid_identifier(&name) {
                return Err(SourceError::Identifier {
                    what: "module",
                    name,
                });
            }
            let schema = schemas.get(&name).cloned().unwrap_or_else(|| name.clone());
            if !is_valid_identifier(&schema) {
                return Err(SourceError::Identifier {
                    what: "schema",
                    name: schema,
                });
            }
            if let Some(first) = by_schema.insert(schema.clone(), name.clone()) {
                return Err(SourceError::SharedSchema {
                    first,
                    second: name,
                    schema,
                });
            }
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
        Ok(MigrationSet {
            root: root.to_path_buf(),
            modules,
        })
    }

    /// The module of that name.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
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
    }
}
