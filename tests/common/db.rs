//! Shared helpers for the migration tests: throwaway databases (PostgreSQL and SQLite) and
//! kit source folders written from the test.

use std::path::{Path, PathBuf};

use offkit::migrate::{DbUrl, Session, Value};

use super::pg;

/// A database a test owns: a fresh PostgreSQL database, or a SQLite file in a temp folder.
pub enum TestDb {
    /// PostgreSQL (dropped on drop).
    Pg(pg::PgDb),
    /// SQLite (the folder is removed on drop).
    Sqlite(tempfile::TempDir),
}

impl TestDb {
    /// A new empty PostgreSQL database.
    pub fn pg() -> TestDb {
        TestDb::Pg(pg::PgDb::create())
    }

    /// A new empty SQLite database file.
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    /// Its URL.
    pub fn url(&self) -> String {
        match self {
            TestDb::Pg(p) => p.url.clone(),
            TestDb::Sqlite(d) => format!("sqlite://{}", d.path().join("t.db").display()),
        }
    }

    /// True for PostgreSQL.
    pub fn is_pg(&self) -> bool {
        matches!(self, TestDb::Pg(_))
    }

    /// A new session to it.
    pub fn session(&self) -> Session {
        Session::connect(&DbUrl::parse(&self.url()).unwrap()).expect("connect")
    }

    /// Runs a query and returns rows as text (NULL as "NULL").
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let mut s = self.session();
        s.driver()
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        Value::Null => "NULL".to_owned(),
                        Value::Int(i) => i.to_string(),
                        Value::Text(t) => t,
                    })
                    .collect()
            })
            .collect()
    }

    /// A single integer.
    pub fn int(&self, sql: &str) -> i64 {
        self.rows(sql)[0][0].parse().unwrap()
    }

    /// Runs statements.
    pub fn exec(&self, sql: &str) {
        self.session()
            .driver()
            .batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The history table of `schema`, qualified for this database.
    pub fn history(&self, schema: &str) -> String {
        if self.is_pg() {
            format!("\"{schema}\".schema_migrations")
        } else {
            format!("\"{schema}_schema_migrations\"")
        }
    }

    /// A table the module's migrations created (unqualified names land in the schema on
    /// PostgreSQL and in the main database on SQLite).
    pub fn table(&self, schema: &str, table: &str) -> String {
        if self.is_pg() {
            format!("\"{schema}\".\"{table}\"")
        } else {
            format!("\"{table}\"")
        }
    }

    /// Applied migration names of `schema` in name order.
    pub fn applied(&self, schema: &str) -> Vec<String> {
        let sql = format!(
            "SELECT migration_name FROM {} ORDER BY migration_name",
            self.history(schema)
        );
        self.rows(&sql).into_iter().map(|r| r[0].clone()).collect()
    }

    /// A fingerprint of the schema objects a module created: what must be equal between a clean
    /// install and an upgrade.
    pub fn fingerprint(&self, schema: &str) -> String {
        let sql = if self.is_pg() {
            format!(
                "SELECT x FROM ( \
                   SELECT format('col %s.%s %s %s %s', table_name, column_name, data_type, is_nullable, \
                                 column_default) AS x \
                   FROM information_schema.columns WHERE table_schema = '{schema}' \
                   UNION ALL SELECT 'idx ' || indexdef FROM pg_indexes WHERE schemaname = '{schema}' \
                   UNION ALL SELECT format('con %s %s', conname, pg_get_constraintdef(oid)) \
                     FROM pg_constraint WHERE connamespace = '{schema}'::regnamespace \
                 ) s ORDER BY x"
            )
        } else {
            "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
                .to_owned()
        };
        self.rows(&sql)
            .into_iter()
            .map(|r| r.join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A kit source folder written by a test.
pub struct Kit {
    dir: tempfile::TempDir,
}

impl Kit {
    /// A kit source with a kit.toml and no migrations.
    pub fn new() -> Kit {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("kit.toml"),
            "name = \"t\"\nversion = \"1.0.0\"\nchannel = \"t\"\nsequence = 1\ntarget = \"any\"\n",
        )
        .unwrap();
        Kit { dir }
    }

    /// Writes `rel` (e.g. `migrations/core/001_init.sql`).
    pub fn file(&self, rel: &str, text: &str) -> &Kit {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    /// Writes migration `name` of module `module`.
    pub fn mig(&self, module: &str, name: &str, sql: &str) -> &Kit {
        self.file(&format!("migrations/{module}/{name}.sql"), sql)
    }

    /// Writes the rollback of `name`.
    pub fn rollback(&self, module: &str, name: &str, sql: &str) -> &Kit {
        self.file(&format!("rollback/{module}/{name}.sql"), sql)
    }

    /// Removes a file.
    pub fn remove(&self, rel: &str) -> &Kit {
        std::fs::remove_file(self.dir.path().join(rel)).unwrap();
        self
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Loads it as a migration set.
    pub fn set(&self) -> offkit::migrate::MigrationSet {
        offkit::migrate::MigrationSet::load(self.path(), &Default::default()).expect("load kit")
    }
}

/// The offkit binary.
pub fn offkit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_offkit"))
}
