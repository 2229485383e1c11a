//! What a run did, for people (Display) and machines (serde): one step per migration with its
//! outcome and duration, data-migration batch and row counts, and totals.

use std::fmt;

use crate::kit::migration_name::Category;
use crate::kit::migration_name::TxMode;
use crate::migrate::destructive::Finding;
use crate::migrate::drivers::RelationLock;
use crate::migrate::plan::Problem;
use crate::migrate::safety::StepTimeouts;
use crate::util::escape_controls;
use std::collections::BTreeSet;

/// What happened to one planned migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Planned (dry run, or not reached because the run refused before starting).
    Planned,
    /// Applied and recorded.
    Applied,
    /// Failed (rolled back; for a data migration: a batch failed, earlier batches stay).
    Failed,
    /// Not run because an earlier step stopped the run.
    NotRun,
    /// Run in a rehearsal and rolled back.
    Rehearsed,
    /// A no-transaction migration in a rehearsal: it cannot be rolled back, so it was not run.
    NotRehearsable,
}

/// Batch and row counts of a data migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DataStats {
    /// The batch size bound to `:batch_size`.
    pub batch_size: i64,
    /// Batches already committed before this run (resumed from the checkpoint).
    pub resumed_after_batches: i64,
    /// Batches this run committed.
    pub batches: i64,
    /// Rows this run changed.
    pub rows: i64,
    /// Batches committed in total (all runs).
    pub total_batches: i64,
    /// Rows changed in total (all runs).
    pub total_rows: i64,
    /// Batches retried after a lock timeout or deadlock.
    pub lock_retries: u32,
}

/// One migration in a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// The module.
    pub module: String,
    /// The migration.
    pub name: String,
    /// Its category.
    pub category: Category,
    /// The file's checksum.
    pub checksum: String,
    /// How it runs.
    pub tx: TxMode,
    /// The `lock_timeout` and `statement_timeout` it runs with, and where each came from.
    pub timeouts: StepTimeouts,
    /// For a destructive migration: what was found, whether the kit declares it, whether the
    /// operator allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive: Option<StepDestructive>,
    /// What happened.
    pub outcome: Outcome,
    /// Times its transaction (or a data batch) was retried after a lock timeout or deadlock.
    pub lock_retries: u32,
    /// In a rehearsal: the rows it changed and the locks it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Rehearsed>,
    /// How long it took (applied or failed steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Data-migration counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataStats>,
    /// The error, for a failed step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The session-wide limits of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// `lock_timeout` of the runner's own statements, in milliseconds.
    pub lock_timeout_ms: u64,
    /// `statement_timeout` of the runner's own statements, in milliseconds.
    pub statement_timeout_ms: u64,
    /// `idle_in_transaction_session_timeout`, in milliseconds.
    pub idle_in_transaction_timeout_ms: u64,
    /// Retries after a lock timeout or deadlock.
    pub lock_retries: u32,
    /// The first pause before a retry, in milliseconds (doubling).
    pub retry_pause_ms: u64,
}

impl Limits {
    /// The limits of `safety`.
    pub fn of(safety: &crate::migrate::safety::Safety) -> Limits {
        let ms = crate::util::millis;
        let session = safety.session();
        Limits {
            lock_timeout_ms: session.lock_timeout.millis,
            statement_timeout_ms: session.statement_timeout.millis,
            idle_in_transaction_timeout_ms: ms(safety.idle_in_transaction_timeout),
            lock_retries: safety.lock_retries,
            retry_pause_ms: ms(safety.retry_pause),
        }
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ms: u64| crate::util::format_duration(std::time::Duration::from_millis(ms));
        write!(
            f,
            "lock_timeout {}, statement_timeout {}, idle_in_transaction_session_timeout {}, {} lock retries from {} doubling",
            d(self.lock_timeout_ms),
            d(self.statement_timeout_ms),
            d(self.idle_in_transaction_timeout_ms),
            self.lock_retries,
            d(self.retry_pause_ms)
        )
    }
}

/// What a rehearsal saw one migration do before it was rolled back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rehearsed {
    /// Rows inserted, updated or deleted (for a data migration: over all its batches).
    pub rows: u64,
    /// Table-level locks it took that the rehearsal did not hold before it (PostgreSQL
    /// `pg_locks`; SQLite locks the whole database file). The real run takes them too, and holds
    /// them until the migration's own transaction ends.
    pub locks: Vec<RelationLock>,
}

/// The destructive-change gate's view of one migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepDestructive {
    /// Its destructive statements (may be empty when only the kit's declaration makes it so).
    pub findings: Vec<Finding>,
    /// Why the kit declares it destructive; `None`: the kit does not (it cannot run).
    pub declared: Option<String>,
    /// True when declared and allowed by the operator (`--allow-destructive`).
    pub allowed: bool,
}

impl fmt::Display for StepDestructive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: BTreeSet<&str> = self.findings.iter().map(|x| x.kind.as_str()).collect();
        let kinds = kinds.into_iter().collect::<Vec<_>>().join(", ");
        write!(f, "DESTRUCTIVE")?;
        if !kinds.is_empty() {
            write!(f, " ({kinds})")?;
        }
        match (&self.declared, self.allowed) {
            (None, _) => write!(f, ": NOT declared by the kit, cannot run"),
            (Some(why), true) => write!(f, ": declared ({}), allowed", escape_controls(why)),
            (Some(why), false) => write!(
                f,
                ": declared ({}), needs --allow-destructive",
                escape_controls(why)
            ),
        }
    }
}

/// A pending migration the run did not select (gated category).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotSelected {
    /// The module.
    pub module: String,
    /// The migration.
    pub name: String,
    /// Its category.
    pub category: Category,
}

/// Totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Migrations applied by this run.
    pub applied: usize,
    /// Migrations that failed.
    pub failed: usize,
    /// Migrations planned but not run (dry run, or after a stop).
    pub not_run: usize,
    /// Migrations that were already applied.
    pub already_applied: usize,
    /// Pending migrations of categories not selected.
    pub not_selected: usize,
    /// Migrations run and rolled back by a rehearsal.
    pub rehearsed: usize,
    /// No-transaction migrations a rehearsal could not run.
    pub not_rehearsable: usize,
}

/// The report of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// The database (password redacted).
    pub database: String,
    /// True for `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// True for `--rehearse`: everything ran in one transaction that was rolled back.
    pub rehearsal: bool,
    /// The categories selected.
    pub categories: Vec<Category>,
    /// The night-run limits of the session (each step carries its own timeouts).
    pub limits: Limits,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// The ordered plan and what happened to each step.
    pub steps: Vec<Step>,
    /// Pending migrations left for a later run (gated categories).
    pub not_selected: Vec<NotSelected>,
    /// Problems the options allowed (out of order, missing), reported rather than refused.
    pub allowed_problems: Vec<Problem>,
    /// Applied migrations whose history checksum the kit's signed realignment replaces
    /// (kit.toml `[realign]`): planned, and `done` once the run recorded them.
    pub realigned: Vec<Realigned>,
    /// Totals.
    pub counts: Counts,
}

/// A history row's checksum replaced under the kit's signed realignment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Realigned {
    /// The module.
    pub module: String,
    /// The migration.
    pub name: String,
    /// The checksum the history held (the shipped one).
    pub from: String,
    /// The kit's checksum, now in the history.
    pub to: String,
    /// True once recorded in the history.
    pub done: bool,
}

impl RunReport {
    /// `module/name` of every migration this run applied.
    pub fn applied_names(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.outcome == Outcome::Applied)
            .map(|s| format!("{}/{}", s.module, s.name))
            .collect()
    }

    /// Recomputes the totals from the steps.
    pub fn count(&mut self, already_applied: usize) {
        let n = |o| self.steps.iter().filter(|s| s.outcome == o).count();
        self.counts = Counts {
            applied: n(Outcome::Applied),
            failed: n(Outcome::Failed),
            not_run: n(Outcome::Planned) + n(Outcome::NotRun),
            already_applied,
            not_selected: self.not_selected.len(),
            rehearsed: n(Outcome::Rehearsed),
            not_rehearsable: n(Outcome::NotRehearsable),
        };
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cats: Vec<_> = self.categories.iter().map(|c| c.as_str()).collect();
        writeln!(
            f,
            "{} on {} (categories: {})",
            if self.dry_run {
                "Plan (dry run, nothing changed)"
            } else if self.rehearsal {
                "Rehearsal (one transaction, rolled back: nothing changed)"
            } else {
                "Run"
            },
            self.database,
            cats.join(", ")
        )?;
        writeln!(f, "  limits   {}", self.limits)?;
        if self.steps.is_empty() {
            writeln!(f, "  nothing to apply")?;
        }
        for s in &self.steps {
            let outcome = match s.outcome {
                Outcome::Planned => "plan",
                Outcome::Applied => "applied",
                Outcome::Failed => "FAILED",
                Outcome::NotRun => "not run",
                Outcome::Rehearsed => "rehearsed",
                Outcome::NotRehearsable => "NOT REHEARSABLE",
            };
            let tx = if s.tx == TxMode::NoTransaction {
                " [no-transaction]"
            } else {
                ""
            };
            write!(
                f,
                "  {outcome:<8} {}/{} ({}{tx}) sha256:{} [{}]",
                s.module, s.name, s.category, s.checksum, s.timeouts
            )?;
            if let Some(ms) = s.duration_ms {
                write!(f, " {ms} ms")?;
            }
            if s.lock_retries > 0 {
                write!(
                    f,
                    " after {} lock retr{}",
                    s.lock_retries,
                    if s.lock_retries == 1 { "y" } else { "ies" }
                )?;
            }
            if let Some(d) = &s.data {
                write!(
                    f,
                    " batches {} rows {} (total {} batches, {} rows{})",
                    d.batches,
                    d.rows,
                    d.total_batches,
                    d.total_rows,
                    if d.resumed_after_batches > 0 {
                        format!(", resumed after batch {}", d.resumed_after_batches)
                    } else {
                        String::new()
                    }
                )?;
            }
            writeln!(f)?;
            if let Some(r) = &s.rehearsal {
                writeln!(f, "           rows changed {}", r.rows)?;
                for l in &r.locks {
                    writeln!(f, "           lock {} {}", l.mode, l.relation)?;
                }
            }
            if s.outcome == Outcome::NotRehearsable {
                writeln!(
                    f,
                    "           runs outside a transaction: it cannot be rolled back, so it was not run"
                )?;
            }
            if let Some(d) = &s.destructive {
                writeln!(f, "           {d}")?;
                for x in &d.findings {
                    writeln!(f, "             {x}")?;
                }
            }
            if let Some(e) = &s.error {
                writeln!(f, "           error: {e}")?;
            }
        }
        for n in &self.not_selected {
            writeln!(
                f,
                "  gated    {}/{} ({}: not selected; add --category {})",
                n.module, n.name, n.category, n.category
            )?;
        }
        for p in &self.allowed_problems {
            writeln!(f, "  allowed  {p}")?;
        }
        let c = &self.counts;
        if self.rehearsal {
            return write!(
                f,
                "Rehearsed {}, failed {}, not rehearsable {}, not run {}, already applied {}, gated {} ({} ms; everything was rolled back)",
                c.rehearsed,
                c.failed,
                c.not_rehearsable,
                c.not_run,
                c.already_applied,
                c.not_selected,
                self.duration_ms
            );
        }
        write!(
            f,
            "Applied {}, failed {}, not run {}, already applied {}, gated {} ({} ms)",
            c.applied, c.failed, c.not_run, c.already_applied, c.not_selected, self.duration_ms
        )
    }
}
