//! Comparing a kit's migrations with the database's history: the status of every migration,
//! the problems that stop a run (drift, missing, out of order, in progress), and the ordered plan
//! of what a run would do with given options.
//!
//! Pure functions over a [`crate::migrate::MigrationSet`] and a [`History`]; no database access
//! here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use crate::kit::migration_name::TxMode;
use crate::kit::migration_name::{Category, MigrationName};
use crate::migrate::history::{AppliedRow, DataProgress, History};
use crate::migrate::source::{Migration, Module};

/// Which modules an operation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleFilter {
    /// Every module of the kit.
    All,
    /// One module by name.
    One(String),
}

impl ModuleFilter {
    /// Parses `all` or a module name.
    pub fn parse(s: &str) -> ModuleFilter {
        if s == "all" {
            ModuleFilter::All
        } else {
            ModuleFilter::One(s.to_owned())
        }
    }
}

/// The state of one migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    /// Applied with the kit's checksum.
    Applied {
        /// When.
        applied_at: String,
        /// By whom.
        applied_by: String,
        /// How long it took.
        duration_ms: Option<i64>,
    },
    /// Not applied yet.
    Pending,
    /// Applied with the checksum the kit declares it had before a signed realignment: the
    /// history row takes the new checksum when the kit runs.
    Realign {
        /// The checksum recorded in the database (the shipped one).
        applied_checksum: String,
        /// When it was applied.
        applied_at: String,
    },
    /// Applied with another checksum: the file changed after it was applied.
    Drift {
        /// The checksum recorded in the database.
        applied_checksum: String,
        /// When it was applied (or, for a data migration, started).
        applied_at: String,
    },
    /// Applied in the database but absent from the kit.
    Missing {
        /// When it was applied.
        applied_at: String,
    },
    /// Pending, but a higher-numbered migration of its category is already applied.
    OutOfOrder {
        /// The applied migration it would come before.
        applied_after: String,
    },
    /// A no-transaction migration started and was not recorded as done.
    InProgress {
        /// When it started.
        started_at: String,
        /// Who started it.
        started_by: String,
        /// Its error, if it failed rather than crashed.
        last_error: Option<String>,
    },
}

impl State {
    /// The state's name, as the JSON `state` field writes it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Applied { .. } => "applied",
            State::Pending => "pending",
            State::Realign { .. } => "realign",
            State::Drift { .. } => "drift",
            State::Missing { .. } => "missing",
            State::OutOfOrder { .. } => "out-of-order",
            State::InProgress { .. } => "in-progress",
        }
    }

    /// True for states that stop a run.
    pub fn is_problem(&self) -> bool {
        !matches!(
            self,
            State::Applied { .. } | State::Realign { .. } | State::Pending
        )
    }
}

/// One migration's line in a status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The module.
    pub module: String,
    /// Its schema.
    pub schema: String,
    /// The migration name.
    pub name: String,
    /// Its category.
    pub category: Category,
    /// The kit file's checksum (absent for a migration missing from the kit).
    pub checksum: Option<String>,
    /// How the kit runs it (absent when missing from the kit).
    pub tx: Option<TxMode>,
    /// Whether the kit has a rollback file for it.
    pub has_rollback: bool,
    /// The state.
    #[serde(flatten)]
    pub state: State,
    /// A data migration's checkpoint, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<DataProgress>,
}

/// A problem that stops a run, for messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The module.
    pub module: String,
    /// The migration.
    pub name: String,
    /// What is wrong.
    pub state: State,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, n) = (&self.module, &self.name);
        match &self.state {
            State::Drift {
                applied_checksum,
                applied_at,
            } => write!(
                f,
                "{m}/{n}: drift: applied {applied_at} with checksum {applied_checksum}, the kit's file differs; \
                 a migration must never change once applied: ship a new migration instead"
            ),
            State::Missing { applied_at } => write!(
                f,
                "{m}/{n}: missing: applied {applied_at} but not in the kit; is this the right (or a newer) kit? \
                 (--allow-missing to run anyway)"
            ),
            State::OutOfOrder { applied_after } => write!(
                f,
                "{m}/{n}: out of order: pending but {applied_after} is already applied \
                 (--allow-out-of-order to apply it anyway)"
            ),
            State::InProgress {
                started_at,
                started_by,
                last_error,
            } => write!(
                f,
                "{m}/{n}: in progress since {started_at} (by {started_by}){}: a no-transaction migration \
                 did not finish; check what it changed, then `offkit migrations resolve {n} --module {m} \
                 --applied|--not-applied`",
                last_error
                    .as_ref()
                    .map(|e| format!(", failed: {e}"))
                    .unwrap_or_default()
            ),
            State::Applied { .. } | State::Realign { .. } | State::Pending => {
                write!(f, "{m}/{n}: ok")
            }
        }
    }
}

/// The status of the selected modules: every migration of the kit and every history row.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// Entries in module order, then application order; missing ones after each module's.
    pub entries: Vec<Entry>,
}

impl Status {
    /// The problems that stop a run.
    pub fn problems(&self) -> Vec<Problem> {
        self.entries
            .iter()
            .filter(|e| e.state.is_problem())
            .map(|e| Problem {
                module: e.module.clone(),
                name: e.name.clone(),
                state: e.state.clone(),
            })
            .collect()
    }

    /// Pending entries (including out-of-order ones) of the given categories.
    pub fn pending(&self, categories: &BTreeSet<Category>) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, State::Pending | State::OutOfOrder { .. }))
            .filter(|e| categories.contains(&e.category))
            .collect()
    }
}

fn category_of_row(row: &AppliedRow) -> Category {
    MigrationName::parse(&row.migration_name)
        .map(|n| n.category())
        .ok()
        .or_else(|| Category::parse(&row.category))
        .unwrap_or(Category::Release)
}

/// A module's history, indexed once so that a status is linear in the number of migrations.
struct Index<'h> {
    applied: HashMap<&'h str, &'h AppliedRow>,
    /// The highest applied number of each category, with its name.
    highest: HashMap<Category, (u32, &'h str)>,
}

impl<'h> Index<'h> {
    fn new(rows: &'h [AppliedRow]) -> Index<'h> {
        let mut highest: HashMap<Category, (u32, &'h str)> = HashMap::new();
        for r in rows {
            if let Ok(n) = MigrationName::parse(&r.migration_name) {
                let e = highest.entry(n.category()).or_insert((0, ""));
                if n.number() > e.0 {
                    *e = (n.number(), r.migration_name.as_str());
                }
            }
        }
        Index {
            applied: rows
                .iter()
                .map(|r| (r.migration_name.as_str(), r))
                .collect(),
            highest,
        }
    }
}

fn entry_for(module: &Module, m: &Migration, history: &History, index: &Index<'_>) -> Entry {
    let schema = &module.schema;
    let name = m.name.as_str();
    let progress = history.data(schema, name).cloned();
    let state = if let Some(row) = index.applied.get(name) {
        if row.checksum == m.checksum {
            State::Applied {
                applied_at: row.applied_at.clone(),
                applied_by: row.applied_by.clone(),
                duration_ms: row.duration_ms,
            }
        } else if m.realigned_from.as_deref() == Some(row.checksum.as_str()) {
            State::Realign {
                applied_checksum: row.checksum.clone(),
                applied_at: row.applied_at.clone(),
            }
        } else {
            State::Drift {
                applied_checksum: row.checksum.clone(),
                applied_at: row.applied_at.clone(),
            }
        }
    } else if let Some(ip) = history.in_progress(schema, name) {
        State::InProgress {
            started_at: ip.started_at.clone(),
            started_by: ip.started_by.clone(),
            last_error: ip.last_error.clone(),
        }
    } else if let Some(p) = progress.as_ref().filter(|p| p.checksum != m.checksum) {
        State::Drift {
            applied_checksum: p.checksum.clone(),
            applied_at: p.started_at.clone(),
        }
    } else if progress.is_some() {
        // A data migration that has started (it has a checkpoint) was started in order; later
        // ones may have completed meanwhile (a failing batch does not stop the others).
        State::Pending
    } else {
        match index.highest.get(&m.category()) {
            Some((n, later)) if *n > m.name.number() => State::OutOfOrder {
                applied_after: (*later).to_owned(),
            },
            _ => State::Pending,
        }
    };
    Entry {
        module: module.name.clone(),
        schema: schema.clone(),
        name: name.to_owned(),
        category: m.category(),
        checksum: Some(m.checksum.clone()),
        tx: Some(m.tx),
        has_rollback: m.rollback.is_some(),
        state,
        progress,
    }
}

/// Computes the status of `modules` against `history`.
pub fn status(modules: &[&Module], history: &History) -> Status {
    let mut entries = Vec::new();
    for module in modules {
        let rows = history
            .applied
            .get(&module.schema)
            .map_or(&[][..], Vec::as_slice);
        let index = Index::new(rows);
        for m in &module.migrations {
            entries.push(entry_for(module, m, history, &index));
        }
        let names: HashSet<&str> = module.migrations.iter().map(|m| m.name.as_str()).collect();
        let known = |n: &str| names.contains(n);
        for row in history.applied.get(&module.schema).into_iter().flatten() {
            if !known(&row.migration_name) {
                entries.push(Entry {
                    module: module.name.clone(),
                    schema: module.schema.clone(),
                    name: row.migration_name.clone(),
                    category: category_of_row(row),
                    checksum: None,
                    tx: None,
                    has_rollback: false,
                    state: State::Missing {
                        applied_at: row.applied_at.clone(),
                    },
                    progress: None,
                });
            }
        }
        for ip in history
            .in_progress
            .iter()
            .filter(|i| i.schema == module.schema)
        {
            if !known(&ip.migration_name) {
                entries.push(Entry {
                    module: module.name.clone(),
                    schema: module.schema.clone(),
                    name: ip.migration_name.clone(),
                    category: MigrationName::parse(&ip.migration_name)
                        .map(|n| n.category())
                        .unwrap_or(Category::Release),
                    checksum: None,
                    tx: Some(TxMode::NoTransaction),
                    has_rollback: false,
                    state: State::InProgress {
                        started_at: ip.started_at.clone(),
                        started_by: ip.started_by.clone(),
                        last_error: ip.last_error.clone(),
                    },
                    progress: None,
                });
            }
        }
    }
    Status { entries }
}

/// How to treat problems a run finds: each relaxation is an explicit option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutOfOrder {
    /// Refuse to run when a pending migration is numbered below an applied one (default).
    #[default]
    Refuse,
    /// Apply such migrations (`--allow-out-of-order`).
    Allow,
}

/// Whether applied migrations absent from the kit stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missing {
    /// Refuse (default).
    #[default]
    Refuse,
    /// Report them and run anyway (`--allow-missing`).
    Allow,
}

/// The problems that stop a run under the given relaxations.
pub fn blocking_problems(
    status: &Status,
    out_of_order: OutOfOrder,
    missing: Missing,
) -> Vec<Problem> {
    status
        .problems()
        .into_iter()
        .filter(|p| match p.state {
            State::OutOfOrder { .. } => out_of_order == OutOfOrder::Refuse,
            State::Missing { .. } => missing == Missing::Refuse,
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn module(names: &[&str]) -> Module {
        Module {
            name: "core".into(),
            schema: "core".into(),
            migrations: names
                .iter()
                .map(|n| Migration {
                    name: MigrationName::parse(n).unwrap(),
                    origin: format!("{n}.sql"),
                    sql: String::new(),
                    checksum: format!("sum-{n}"),
                    tx: TxMode::Transaction,
                    hints: Default::default(),
                    findings: Vec::new(),
                    declared: None,
                    rollback: None,
                    realigned_from: None,
                })
                .collect(),
        }
    }

    fn row(name: &str, sum: &str) -> AppliedRow {
        AppliedRow {
            migration_name: name.into(),
            category: "startup".into(),
            checksum: sum.into(),
            applied_at: "2026-01-01T00:00:00Z".into(),
            applied_by: "t".into(),
            duration_ms: Some(1),
        }
    }

    #[test]
    fn states() {
        let m = module(&["001_a", "002_b", "003_c", "004_d"]);
        let history = History {
            applied: BTreeMap::from([(
                "core".to_owned(),
                vec![
                    row("001_a", "sum-001_a"),
                    row("002_b", "changed"),
                    row("004_d", "sum-004_d"),
                    row("009_gone", "x"),
                ],
            )]),
            ..History::default()
        };
        let s = status(&[&m], &history);
        let states: Vec<_> = s
            .entries
            .iter()
            .map(|e| (e.name.as_str(), &e.state))
            .collect();
        assert!(matches!(states[0], ("001_a", State::Applied { .. })));
        assert!(matches!(states[1], ("002_b", State::Drift { .. })));
        assert!(
            matches!(states[2], ("003_c", State::OutOfOrder { applied_after }) if applied_after == "009_gone")
        );
        assert!(matches!(states[3], ("004_d", State::Applied { .. })));
        assert!(matches!(states[4], ("009_gone", State::Missing { .. })));
        assert_eq!(
            blocking_problems(&s, OutOfOrder::Allow, Missing::Allow).len(),
            1
        );
        assert_eq!(
            blocking_problems(&s, OutOfOrder::Refuse, Missing::Refuse).len(),
            3
        );
    }

    #[test]
    fn state_names_are_the_json_tags() {
        let t = || String::new();
        for st in [
            State::Applied {
                applied_at: t(),
                applied_by: t(),
                duration_ms: None,
            },
            State::Pending,
            State::Drift {
                applied_checksum: t(),
                applied_at: t(),
            },
            State::Missing { applied_at: t() },
            State::OutOfOrder { applied_after: t() },
            State::InProgress {
                started_at: t(),
                started_by: t(),
                last_error: None,
            },
        ] {
            assert_eq!(serde_json::to_value(&st).unwrap()["state"], st.name());
        }
    }
}
