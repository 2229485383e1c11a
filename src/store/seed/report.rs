//! The seeding report: per object what the plan decided and what happened, with bytes and
//! durations, plus totals. Serialises to the JSON that `--json` and `--report FILE` write, and
//! renders a short human summary (totals, then every conflict and failure by key).

use std::fmt::Write as _;

use super::ConflictPolicy;
use super::plan::SeedState;
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

/// The whole report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// Per object, in seed order.
    pub objects: Vec<ObjectReport>,
}

impl ObjectReport {
    pub(super) fn planned(
        key: String,
        size: u64,
        sha256: Sha256Bytes,
        state: SeedState,
        action: Action,
    ) -> Self {
        ObjectReport {
            key,
            size,
            sha256,
            action,
            outcome: None,
            existing: match state {
                SeedState::Different { existing } => Some(Box::new(existing)),
                _ => None,
            },
            bytes_written: 0,
            duration_ms: 0,
            error: None,
        }
    }
}

impl SeedReport {
    /// Recomputes the totals from the objects.
    pub(super) fn tally(&mut self) {
        let mut t = SeedTotals::default();
        for o in &self.objects {
            t.objects += 1;
            t.bytes = t.bytes.saturating_add(o.size);
            t.bytes_written += o.bytes_written;
            let counted = match (self.mode, o.outcome) {
                (SeedMode::DryRun, _) | (_, None) => match o.action {
                    Action::Put => &mut t.put,
                    Action::Skip => &mut t.skipped,
                    Action::Conflict => &mut t.conflicts,
                    Action::Replace => &mut t.replaced,
                },
                (_, Some(outcome)) => match outcome {
                    Outcome::Put => &mut t.put,
                    Outcome::Skipped => &mut t.skipped,
                    Outcome::Conflict => &mut t.conflicts,
                    Outcome::Replaced => &mut t.replaced,
                    Outcome::Failed => &mut t.failed,
                    Outcome::NotRun => &mut t.not_run,
                },
            };
            *counted += 1;
        }
        self.totals = t;
    }

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
        s
    }
}
