//! The apply report: what was applied where, step by step, with counts and durations, the kit's
//! digests and signers. The JSON form is what `--report FILE` writes and what the ledger's
//! `report_sha256` hashes; the human form is a summary of it.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use super::{ApplyError, ApplyOptions, DowngradePolicy};
use crate::migrate::runner::RunMode;
use crate::migrate::{RunReport, Session};
use crate::store::seed::SeedReport;
use crate::store::{ConflictPolicy, Store};
use crate::trust::extract::ExtractedKit;
use crate::trust::verify::Signer;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Done.
    Done,
    /// Failed (the apply stopped, or, for data batches, went on).
    Failed,
}

/// One step of the apply.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `load`, `lock`, `compatibility`, `migrations`, `seeds`.
    pub step: &'static str,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it took.
    pub duration_ms: u64,
    /// One line about it.
    pub detail: String,
}

/// The kit, as verified.
#[derive(Debug, Clone, Serialize)]
pub struct KitInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Channel.
    pub channel: String,
    /// Sequence.
    pub sequence: u64,
    /// SHA-256 of the kit file.
    pub kit_sha256: String,
    /// SHA-256 of manifest.json.
    pub manifest_sha256: String,
    /// The trusted keys whose signatures counted.
    pub signers: Vec<Signer>,
}

/// The report of one apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The kit.
    pub kit: KitInfo,
    /// The database (redacted).
    pub database: String,
    /// The object store (redacted).
    pub store: String,
    /// True for `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// `succeeded`, `failed` or `dry-run`.
    pub outcome: String,
    /// The error that stopped the apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The ledger row of this attempt.
    pub ledger_id: Option<i64>,
    /// Earlier attempts found dead and marked `interrupted` by this one.
    pub interrupted_attempts: u64,
    /// Unsafe options in effect.
    pub overrides: Vec<String>,
    /// Remarks (e.g. an allowed expiry).
    pub warnings: Vec<String>,
    /// `user@host`.
    pub applied_by: String,
    /// RFC 3339.
    pub started_at: String,
    /// Wall time.
    pub duration_ms: u64,
    /// The steps in order.
    pub steps: Vec<Step>,
    /// The migration run (plan and outcome of each migration).
    pub migrations: Option<RunReport>,
    /// The seeding (each object: put, skipped, conflict).
    pub seeds: Option<SeedReport>,
}

impl ApplyReport {
    pub(super) fn new(
        kit: &ExtractedKit,
        session: &Session,
        store: &dyn Store,
        opts: &ApplyOptions,
    ) -> Self {
        let v = kit.kit();
        let m = v.manifest();
        let mut overrides = Vec::new();
        if opts.downgrade == DowngradePolicy::UnsafeAllow {
            overrides.push("allow-downgrade".to_owned());
        }
        if opts.conflicts == ConflictPolicy::Replace {
            overrides.push("replace-conflicting".to_owned());
        }
        if v.warnings().iter().any(|w| w.contains("--allow-expired")) {
            overrides.push("allow-expired".to_owned());
        }
        ApplyReport {
            kit: KitInfo {
                name: m.name.clone(),
                version: m.version.clone(),
                channel: m.channel.clone(),
                sequence: m.sequence,
                kit_sha256: v.kit_sha256().to_owned(),
                manifest_sha256: v.manifest_sha256().to_owned(),
                signers: v.signers().to_vec(),
            },
            database: session.url().redacted(),
            store: store.url().redacted(),
            dry_run: opts.mode == RunMode::DryRun,
            outcome: "running".to_owned(),
            error: None,
            ledger_id: None,
            interrupted_attempts: 0,
            overrides,
            warnings: v.warnings().to_vec(),
            applied_by: opts.applied_by.clone(),
            started_at: crate::migrate::lock::now_rfc3339(),
            duration_ms: 0,
            steps: Vec::new(),
            migrations: None,
            seeds: None,
        }
    }

    pub(super) fn step(
        &mut self,
        step: &'static str,
        outcome: StepOutcome,
        since: Instant,
        detail: String,
    ) {
        self.steps.push(Step {
            step,
            outcome,
            duration_ms: since.elapsed().as_millis() as u64,
            detail,
        });
    }

    pub(super) fn finish(&mut self, started: Instant, error: Option<&ApplyError>) {
        self.duration_ms = started.elapsed().as_millis() as u64;
        self.outcome = match (error, self.dry_run) {
            (Some(_), _) => "failed",
            (None, true) => "dry-run",
            (None, false) => "succeeded",
        }
        .to_owned();
        self.error = error.map(|e| e.to_string());
    }

    /// The JSON report as written by `--report`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// SHA-256 of [`ApplyReport::to_json`] (recorded in the ledger).
    pub fn digest(&self) -> String {
        crate::util::sha256_hex(&self.to_json())
    }

    /// True when the apply changed nothing (everything was already there).
    pub fn changed_nothing(&self) -> bool {
        let migrations = self
            .migrations
            .as_ref()
            .is_none_or(|r| r.counts.applied == 0);
        let seeds = self
            .seeds
            .as_ref()
            .is_none_or(|s| s.totals.put == 0 && s.totals.replaced == 0);
        migrations && seeds
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.kit;
        let title = if self.dry_run {
            "DRY RUN (nothing changed)"
        } else {
            &self.outcome.to_uppercase()
        };
        writeln!(
            f,
            "{title}: {} {} (channel {}, sequence {})",
            k.name, k.version, k.channel, k.sequence
        )?;
        writeln!(f, "  kit sha256       {}", k.kit_sha256)?;
        writeln!(f, "  manifest sha256  {}", k.manifest_sha256)?;
        for s in &k.signers {
            writeln!(f, "  signer           {} ({})", s.keyid, s.name)?;
        }
        writeln!(f, "  database         {}", self.database)?;
        writeln!(f, "  store            {}", self.store)?;
        if let Some(id) = self.ledger_id {
            writeln!(f, "  ledger entry     #{id} (offkit history)")?;
        }
        if self.interrupted_attempts > 0 {
            writeln!(
                f,
                "  resumed after    {} interrupted attempt(s)",
                self.interrupted_attempts
            )?;
        }
        for o in &self.overrides {
            writeln!(f, "  UNSAFE override  --{o}")?;
        }
        for s in &self.steps {
            let mark = if s.outcome == StepOutcome::Done {
                "✓"
            } else {
                "✗"
            };
            writeln!(
                f,
                "  {mark} {:<14} {:>6} ms  {}",
                s.step, s.duration_ms, s.detail
            )?;
        }
        if let Some(m) = &self.migrations {
            for line in m.to_string().lines() {
                writeln!(f, "    {line}")?;
            }
        }
        if let Some(s) = &self.seeds {
            for line in s.render_text().lines() {
                writeln!(f, "    {line}")?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        if let Some(e) = &self.error {
            writeln!(f, "  error: {e}")?;
        } else if !self.dry_run && self.changed_nothing() {
            writeln!(f, "  nothing to do: this kit was already fully applied")?;
        }
        write!(f, "  took {} ms", self.duration_ms)
    }
}
