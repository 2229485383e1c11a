//! Human-readable output of statuses, rollbacks and legacy imports (the run report's is in
//! [`crate::migrate::report`]). Machines use the serde form of the same types.

use std::fmt;

use crate::migrate::legacy::{LegacyAction, LegacyReport};
use crate::migrate::ops::RollbackReport;
use crate::migrate::plan::{State, Status};

fn state_word(state: &State) -> &'static str {
    match state {
        State::Applied { .. } => "applied",
        State::Pending => "pending",
        State::Realign { .. } => "realign",
        State::Drift { .. } => "DRIFT",
        State::Missing { .. } => "MISSING",
        State::OutOfOrder { .. } => "OUT-OF-ORDER",
        State::InProgress { .. } => "IN-PROGRESS",
    }
}

impl fmt::Display for Status {
    /// One line per migration, grouped by module, then one line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut module = "";
        for e in &self.entries {
            if e.module != module {
                module = &e.module;
                writeln!(f, "Module {} (schema {}):", e.module, e.schema)?;
            }
            let when = match &e.state {
                State::Applied { applied_at, .. } | State::Missing { applied_at } => {
                    applied_at.clone()
                }
                State::InProgress { started_at, .. } => format!("since {started_at}"),
                State::Drift { applied_at, .. } => format!("applied {applied_at}"),
                State::Realign { applied_at, .. } => {
                    format!("applied {applied_at}; its checksum realigned by the kit")
                }
                State::OutOfOrder { applied_after } => format!("below applied {applied_after}"),
                State::Pending => String::new(),
            };
            write!(
                f,
                "  {:<12} {:<40} {:<8} {when}",
                state_word(&e.state),
                e.name,
                e.category.as_str()
            )?;
            if let Some(p) = e.progress.as_ref().filter(|p| p.finished_at.is_none()) {
                write!(
                    f,
                    " [checkpoint: {} batches, {} rows",
                    p.batches_done, p.rows_done
                )?;
                if p.failed_batches > 0 {
                    let err = p.last_error.as_deref().unwrap_or("");
                    write!(f, ", {} failed: {err}", p.failed_batches)?;
                }
                write!(f, "]")?;
            }
            writeln!(f)?;
        }
        if self.entries.is_empty() {
            writeln!(f, "  (no migrations)")?;
        }
        for p in self.problems() {
            writeln!(f, "Problem: {p}")?;
        }
        Ok(())
    }
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.dry_run {
            "Rollback plan (dry run, nothing changed)"
        } else {
            "Rollback"
        };
        writeln!(f, "{what} on {} module {}", self.database, self.module)?;
        if self.steps.is_empty() {
            writeln!(f, "  nothing to roll back")?;
        }
        for s in &self.steps {
            let done = if self.dry_run { "plan" } else { "rolled back" };
            write!(
                f,
                "  {done:<12} {} (rollback sha256:{})",
                s.name, s.rollback_checksum
            )?;
            if let Some(ms) = s.duration_ms {
                write!(f, " {ms} ms")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for LegacyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.dry_run {
            "Legacy import plan (dry run, nothing changed)"
        } else {
            "Legacy import"
        };
        writeln!(f, "{what} on {}", self.database)?;
        if self.tables.is_empty() {
            writeln!(f, "  no legacy history tables found")?;
        }
        for t in &self.tables {
            write!(
                f,
                "  {} (module {}, key {}, time {})",
                t.table, t.module, t.columns.0, t.columns.1
            )?;
            if let Some(r) = &t.renamed_to {
                write!(f, ", renamed to {r}")?;
            }
            writeln!(f)?;
            for r in &t.rows {
                let action = match r.action {
                    LegacyAction::Import if self.dry_run => "would import",
                    LegacyAction::Import => "imported",
                    LegacyAction::AlreadyImported => "already there",
                };
                writeln!(
                    f,
                    "    {action:<14} {} -> {} applied {} sha256:{}",
                    r.legacy_key, r.migration_name, r.applied_at, r.checksum
                )?;
            }
        }
        Ok(())
    }
}
