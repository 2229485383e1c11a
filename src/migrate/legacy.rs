//! Importing legacy history tables into the canonical `<schema>.schema_migrations`.
//!
//! Recognised tables, looked for in each selected module's schema (SQLite: `<schema>_<table>`):
//!
//! | table                      | example                                   | key column           |
//! |----------------------------|-------------------------------------------|----------------------|
//! | `evidence_schema_version`  | `evidence_locker.evidence_schema_version` | `version` (integer)  |
//! | `export_schema_version`    | `export_center.export_schema_version`     | `version` (integer)  |
//! | `schema_migrations`        | `binaries.schema_migrations(name, applied_at)` (no `migration_name`) | `name` |
//! | `plugin_migrations`        | `<schema>.plugin_migrations`              | `name` / `migration_name` / `version` |
//!
//! The key column is the first of `migration_name`, `name`, `migration`, `version` that exists;
//! the time column the first of `applied_at`, `installed_on`, `executed_at`, `applied_on`,
//! `created_at`. An integer key (e.g. `version = 3`) maps to the startup or release migration with
//! that number; a text key maps to the migration of that name (a `.sql` suffix is ignored). A
//! legacy row that maps to no migration of the kit stops the import (never a silent skip).
//!
//! Imported rows keep the legacy order and timestamps; the checksum is derived from the kit's file
//! (the file is never rewritten); `applied_by` is `legacy-import:<table>` and `duration_ms` NULL.
//! A legacy-shaped `schema_migrations` is renamed to `schema_migrations_legacy` (kept, never
//! dropped) so that the canonical table can take its name. Rows already in the canonical table
//! are left alone, so the import is idempotent.

use crate::kit::migration_name::Category;
use crate::migrate::drivers::{Dialect, Value};
use crate::migrate::error::MigrateError;
use crate::migrate::history::{self, HISTORY_TABLE};
use crate::migrate::lock::Locked;
use crate::migrate::plan::ModuleFilter;
use crate::migrate::runner::{RunMode, select_modules};
use crate::migrate::source::{Migration, MigrationSet, Module};
use crate::sql::quote_ident;

/// Legacy table names looked for in each module's schema.
pub const LEGACY_TABLES: [&str; 5] = [
    "evidence_schema_version",
    "export_schema_version",
    "plugin_migrations",
    HISTORY_TABLE,
    RENAMED_TABLE,
];

/// Where a legacy-shaped `schema_migrations` is moved.
pub const RENAMED_TABLE: &str = "schema_migrations_legacy";

const KEY_COLUMNS: [&str; 4] = ["migration_name", "name", "migration", "version"];
const TIME_COLUMNS: [&str; 5] = [
    "applied_at",
    "installed_on",
    "executed_at",
    "applied_on",
    "created_at",
];

/// What happens to one legacy row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegacyAction {
    /// Imported (or, in a dry run, would be).
    Import,
    /// Already in the canonical table.
    AlreadyImported,
}

/// One legacy row and the migration it maps to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LegacyRow {
    /// The legacy key (version or name) as text.
    pub legacy_key: String,
    /// The kit migration it maps to.
    pub migration_name: String,
    /// The legacy timestamp, kept.
    pub applied_at: String,
    /// The checksum derived from the kit's file.
    pub checksum: String,
    /// What the import does with it.
    pub action: LegacyAction,
}

/// One legacy table of one module.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LegacyTable {
    /// The module.
    pub module: String,
    /// The legacy table (quoted, qualified).
    pub table: String,
    /// The key and time columns used.
    pub columns: (String, String),
    /// Set when the table is renamed out of the canonical name.
    pub renamed_to: Option<String>,
    /// Its rows in legacy order.
    pub rows: Vec<LegacyRow>,
}

/// What an import did (or would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LegacyReport {
    /// The database (password redacted).
    pub database: String,
    /// True for a dry run.
    pub dry_run: bool,
    /// Every legacy table found.
    pub tables: Vec<LegacyTable>,
}

fn map_key<'m>(module: &'m Module, key: &str) -> Option<&'m Migration> {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = key.parse().ok()?;
        return module.migrations.iter().find(|m| {
            matches!(m.category(), Category::Startup | Category::Release) && m.name.number() == n
        });
    }
    module.get(key.strip_suffix(".sql").unwrap_or(key))
}

fn pick<'a>(cols: &[String], wanted: &[&'a str]) -> Option<&'a str> {
    wanted.iter().copied().find(|w| cols.iter().any(|c| c == w))
}

impl Locked<'_> {
    /// Imports the legacy history tables of the selected modules (see the module docs).
    pub fn import_legacy(
        &mut self,
        set: &MigrationSet,
        filter: &ModuleFilter,
        mode: RunMode,
    ) -> Result<LegacyReport, MigrateError> {
        let modules = select_modules(set, filter)?;
        let mut report = LegacyReport {
            database: self.url().redacted(),
            dry_run: mode == RunMode::DryRun,
            tables: Vec::new(),
        };
        let driver = self.driver();
        let d = driver.dialect();
        let db = |doing: &str| {
            let doing = doing.to_owned();
            move |e| MigrateError::db(doing, e)
        };
        let mut unmatched = Vec::new();
        let mut renames = Vec::new();
        for module in &modules {
            let schema = module.schema.as_str();
            let wanted: Vec<(&str, &str)> = LEGACY_TABLES.iter().map(|t| (schema, *t)).collect();
            let found =
                history::table_columns(driver, &wanted).map_err(db("looking for legacy tables"))?;
            let canonical_cols = found.get(&(schema.to_owned(), HISTORY_TABLE.to_owned()));
            let canonical_is_legacy =
                canonical_cols.is_some_and(|c| !c.iter().any(|x| x == "migration_name"));
            let existing = if canonical_cols.is_some() && !canonical_is_legacy {
                history::read(driver, &[schema]).map_err(db("reading the migration history"))?
            } else {
                history::History::default()
            };
            if canonical_is_legacy {
                renames.push(module.name.clone());
            }
            for table in LEGACY_TABLES {
                let Some(cols) = found.get(&(schema.to_owned(), table.to_owned())) else {
                    continue;
                };
                if table == HISTORY_TABLE && !canonical_is_legacy {
                    continue;
                }
                let (Some(key), Some(at)) = (pick(cols, &KEY_COLUMNS), pick(cols, &TIME_COLUMNS))
                else {
                    return Err(MigrateError::Refused(format!(
                        "legacy table {} has columns ({}); expected a key column ({}) and a time column ({})",
                        d.table(schema, table),
                        cols.join(", "),
                        KEY_COLUMNS.join("/"),
                        TIME_COLUMNS.join("/")
                    )));
                };
                let sql = format!(
                    "SELECT CAST({k} AS TEXT), {} FROM {} ORDER BY {t}, {k}",
                    d.timestamp_text(&quote_ident(at)),
                    d.table(schema, table),
                    k = quote_ident(key),
                    t = quote_ident(at)
                );
                let rows = driver
                    .query(&sql, &[])
                    .map_err(db("reading a legacy table"))?;
                let mut out = Vec::new();
                for row in rows {
                    let (Some(Value::Text(k)), Some(Value::Text(at))) = (row.first(), row.get(1))
                    else {
                        unmatched.push(format!(
                            "{}: a row with a NULL key or time",
                            d.table(schema, table)
                        ));
                        continue;
                    };
                    let at = at.clone();
                    let Some(m) = map_key(module, k) else {
                        unmatched.push(format!("{}: {k}", d.table(schema, table)));
                        continue;
                    };
                    let action = if existing.applied(schema, m.name.as_str()).is_some()
                        || report.tables.iter().any(|t: &LegacyTable| {
                            t.module == module.name
                                && t.rows.iter().any(|r| r.migration_name == m.name.as_str())
                        })
                        || out
                            .iter()
                            .any(|r: &LegacyRow| r.migration_name == m.name.as_str())
                    {
                        LegacyAction::AlreadyImported
                    } else {
                        LegacyAction::Import
                    };
                    out.push(LegacyRow {
                        legacy_key: k.clone(),
                        migration_name: m.name.as_str().to_owned(),
                        applied_at: at,
                        checksum: m.checksum.clone(),
                        action,
                    });
                }
                let renamed_to = (table == HISTORY_TABLE).then(|| d.table(schema, RENAMED_TABLE));
                report.tables.push(LegacyTable {
                    module: module.name.clone(),
                    table: d.table(schema, table),
                    columns: (key.to_owned(), at.to_owned()),
                    renamed_to,
                    rows: out,
                });
            }
        }
        // Check every module before changing any: an import is all or nothing.
        if !unmatched.is_empty() {
            return Err(MigrateError::Refused(format!(
                "legacy history names migrations the kit does not have ({}); nothing was imported. \
                 Is this the right kit for this database?",
                unmatched.join(", ")
            )));
        }
        if mode.apply_or_dry_run("a legacy import")? == RunMode::DryRun {
            return Ok(report);
        }
        for module in &modules {
            let schema = module.schema.as_str();
            let canonical_is_legacy = renames.contains(&module.name);
            let mut sql = Vec::new();
            if canonical_is_legacy {
                let target = match d {
                    Dialect::Postgres => quote_ident(RENAMED_TABLE),
                    Dialect::Sqlite => d.table(schema, RENAMED_TABLE),
                };
                sql.push(format!(
                    "ALTER TABLE {} RENAME TO {target}",
                    d.table(schema, HISTORY_TABLE)
                ));
            }
            sql.extend(d.create_schema(schema));
            sql.push(history::history_ddl(d, schema));
            let insert = history::insert_sql(
                &d.table(schema, HISTORY_TABLE),
                &d.timestamp_param(5),
                "NULL",
            );
            let rows: Vec<(Vec<Value>, &str)> = report
                .tables
                .iter()
                .filter(|t| t.module == module.name)
                .flat_map(|t| t.rows.iter().map(move |r| (r, t)))
                .filter(|(r, _)| r.action == LegacyAction::Import)
                .map(|(r, t)| {
                    let cat = module
                        .get(&r.migration_name)
                        .map_or("release", |m| m.category().as_str());
                    (
                        vec![
                            r.migration_name.as_str().into(),
                            cat.into(),
                            r.checksum.as_str().into(),
                            format!("legacy-import:{}", t.table).into(),
                            r.applied_at.as_str().into(),
                        ],
                        r.migration_name.as_str(),
                    )
                })
                .collect();
            let tx = (|| {
                driver.batch("BEGIN")?;
                driver.batch(&sql.join(";\n"))?;
                for (params, _) in &rows {
                    driver.execute(&insert, params)?;
                }
                driver.batch("COMMIT")
            })();
            if let Err(e) = tx {
                let _ = driver.batch("ROLLBACK");
                return Err(MigrateError::db(
                    format!("importing legacy history of module {}", module.name),
                    e,
                ));
            }
        }
        Ok(report)
    }
}
