//! The seeding report: per object what the plan decided and what happened, with bytes and
//! durations, plus totals. Serialises to the JSON that `--json` and `--report FILE` write, and
//! renders a short human summary (totals, then every conflict and failure by key).

use std::fmt::Write as _;

use super::ConflictPolicy;
use crate::kit::digest::Sha256Bytes;
use crate::store::ObjectDigest;

/// Whether seeding changed the store or only planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SeedMode {
    /// Put what is missing.
    #[default]
    Apply,
    /// Only plan (`--dry-run`): nothing is written.
    DryRun,
}

/// What the plan decided for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Absent: put it.
    Put,
    /// Already there with the same bytes: nothing to do.
    Skip,
    /// Different bytes there: stop (never overwrite).
    Conflict,
    /// Different bytes there, and `--replace-conflicting`: replace.
    Replace,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// Put and confirmed.
    Put,
    /// Already there with the same bytes.
    Skipped,
    /// Different bytes there; left untouched.
    Conflict,
    /// Replaced and confirmed.
    Replaced,
    /// The put or its confirmation failed (see `error`).
    Failed,
    /// Not attempted because seeding stopped.
    NotRun,
}

impl Outcome {
    /// The outcome as reports and the ledger spell it (its serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Put => "put",
            Outcome::Skipped => "skipped",
            Outcome::Conflict => "conflict",
            Outcome::Replaced => "replaced",
            Outcome::Failed => "failed",
            Outcome::NotRun => "not-run",
        }
    }
}

/// One object in the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ObjectReport {
    /// The key.
    pub key: String,
    /// The seed's size.
    pub size: u64,
    /// The seed's SHA-256.
    pub sha256: Sha256Bytes,
    /// What the plan decided.
    pub action: Action,
    /// What happened (absent in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// What the store held before, when it held something different.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<Box<ObjectDigest>>,
    /// Bytes written to the store.
    pub bytes_written: u64,
    /// Time spent on the put and its confirmation, in milliseconds.
    pub duration_ms: u64,
    /// The error, for a failed object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts over all objects. In a dry run they count planned actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeedTotals {
    /// Seeds.
    pub objects: u64,
    /// Bytes of all seeds.
    pub bytes: u64,
    /// Put (or to put).
    pub put: u64,
    /// Skipped (or to skip).
    pub skipped: u64,
    /// Replaced (or to replace).
    pub replaced: u64,
    /// Conflicts.
    pub conflicts: u64,
    /// Failed.
    pub failed: u64,
    /// Not attempted.
    pub not_run: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

/// Which objects a report lists (its totals count every object either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ObjectsListed {
    /// Every object (`offkit store put-dir`).
    #[default]
    All,
    /// Only the objects that need attention — conflicts, replacements, failures — up to
    /// [`super::ATTENTION_LISTED`] (`offkit apply`, whose ledger records every object's
    /// outcome: `offkit.kit_application_objects`).
    NeedingAttention,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SeedReport {
    /// The store, redacted.
    pub store: String,
    /// Apply or dry run.
    pub mode: SeedMode,
    /// The conflict policy in force (`replace` shows that overwriting was allowed).
    pub conflict_policy: ConflictPolicy,
    /// Objects handled at once.
    pub parallelism: usize,
    /// Counts.
    pub totals: SeedTotals,
    /// Wall-clock time, in milliseconds.
    pub duration_ms: u64,
    /// Which objects `objects` lists.
    pub objects_listed: ObjectsListed,
    /// Objects needing attention beyond the most listed (counted, not listed).
    #[serde(skip_serializing_if = "is_zero")]
    pub objects_omitted: u64,
    /// Per object, in seed order: every object, or those needing attention
    /// (`objects_listed`).
    pub objects: Vec<ObjectReport>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ObjectReport {
    /// The object as planned: nothing done yet.
    pub(super) fn planned(key: String, size: u64, sha256: Sha256Bytes, action: Action) -> Self {
        ObjectReport {
            key,
            size,
            sha256,
            action,
            outcome: None,
            existing: None,
            bytes_written: 0,
            duration_ms: 0,
            error: None,
        }
    }

    /// Whether an operator must look at this object: a conflict, a replacement or a failure.
    pub fn needs_attention(&self) -> bool {
        matches!(self.action, Action::Conflict | Action::Replace)
            || matches!(
                self.outcome,
                Some(Outcome::Conflict | Outcome::Replaced | Outcome::Failed)
            )
    }
}

impl SeedTotals {
    /// Counts one object (in a dry run, or before it ran, by what the plan decided).
    pub(super) fn add(&mut self, mode: SeedMode, o: &ObjectReport) {
        self.objects += 1;
        self.bytes = self.bytes.saturating_add(o.size);
        self.bytes_written = self.bytes_written.saturating_add(o.bytes_written);
        let counted = match (mode, o.outcome) {
            (SeedMode::DryRun, _) | (_, None) => match o.action {
                Action::Put => &mut self.put,
                Action::Skip => &mut self.skipped,
                Action::Conflict => &mut self.conflicts,
                Action::Replace => &mut self.replaced,
            },
            (_, Some(outcome)) => match outcome {
                Outcome::Put => &mut self.put,
                Outcome::Skipped => &mut self.skipped,
                Outcome::Conflict => &mut self.conflicts,
                Outcome::Replaced => &mut self.replaced,
                Outcome::Failed => &mut self.failed,
                Outcome::NotRun => &mut self.not_run,
            },
        };
        *counted += 1;
    }
}

impl SeedReport {
    /// A short human summary: totals, then each conflict and failure.
    pub fn render_text(&self) -> String {
        let t = &self.totals;
        let verb = match self.mode {
            SeedMode::Apply => "Seeded",
            SeedMode::DryRun => "Plan for",
        };
        let mut s = format!(
            "{verb} {}: {} object(s), {} byte(s) in {:.1} s\n  put {}, skipped {}, replaced {}, conflicts {}, failed {}, not run {}; {} byte(s) written\n",
            self.store,
            t.objects,
            t.bytes,
            self.duration_ms as f64 / 1000.0,
            t.put,
            t.skipped,
            t.replaced,
            t.conflicts,
            t.failed,
            t.not_run,
            t.bytes_written,
        );
        for o in &self.objects {
            let existing = o
                .existing
                .as_ref()
                .map(|e| format!(" (store has {} bytes, sha256 {})", e.size, e.sha256))
                .unwrap_or_default();
            match (o.action, o.outcome) {
                (Action::Conflict, _) | (_, Some(Outcome::Conflict)) => {
                    let _ = writeln!(
                        s,
                        "  conflict: {}{existing}; the seed has sha256 {}",
                        o.key, o.sha256
                    );
                }
                (Action::Replace, _) => {
                    let _ = writeln!(s, "  replace: {}{existing}", o.key);
                }
                (_, Some(Outcome::Failed)) => {
                    let _ = writeln!(
                        s,
                        "  failed: {}: {}",
                        o.key,
                        o.error.as_deref().unwrap_or("unknown error")
                    );
                }
                _ => {}
            }
        }
        if self.objects_omitted > 0 {
            let _ = writeln!(
                s,
                "  and {} more object(s) needing attention, not listed",
                self.objects_omitted
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn an_outcome_is_spelled_as_it_serializes() {
        for o in [
            Outcome::Put,
            Outcome::Skipped,
            Outcome::Conflict,
            Outcome::Replaced,
            Outcome::Failed,
            Outcome::NotRun,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
