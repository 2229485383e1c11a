//! The apply report: what was applied where, step by step, with counts and durations, the kit's
//! digests and signers. The JSON form is what `--report FILE` writes and what the ledger's
//! `report_sha256` hashes; the human form is a summary of it.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use super::ApplyError;
use super::ledger::Override;
use crate::kit::digest::Sha256Hex;
use crate::migrate::RunMode;
use crate::migrate::RunReport;
use crate::store::seed::SeedReport;
use crate::trust::verify::{AuthenticatedKit, Signer, VerifiedKit};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Done.
    Done,
    /// Failed (the apply stopped, or, for data batches, went on).
    Failed,
}

/// The steps of an apply, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// The migration lock.
    Lock,
    /// The kit's header: signatures, the signed manifest and its rules, expiry.
    Authenticate,
    /// Target, `requires` and the channel sequence against the ledger.
    Compatibility,
    /// The payload pass: every file checked against the signed manifest (and kept).
    Verify,
    /// Migrations and seeds taken from the verified kit.
    Load,
    /// The ledger row of this attempt.
    Ledger,
    /// Schema and data migrations.
    Migrations,
    /// Seed objects into the store.
    Seeds,
}

impl StepName {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Lock => "lock",
            StepName::Authenticate => "authenticate",
            StepName::Compatibility => "compatibility",
            StepName::Verify => "verify",
            StepName::Load => "load",
            StepName::Ledger => "ledger",
            StepName::Migrations => "migrations",
            StepName::Seeds => "seeds",
        }
    }
}

/// One step of the apply.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Which step.
    pub step: StepName,
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
    /// SHA-256 of the kit file (known once the payload was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kit_sha256: Option<Sha256Hex>,
    /// SHA-256 of manifest.json.
    pub manifest_sha256: Sha256Hex,
    /// The trusted keys whose signatures counted.
    pub signers: Vec<Signer>,
}

/// The report of one apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The kit file, as given.
    pub kit_file: String,
    /// The kit, once its header was authenticated.
    pub kit: Option<KitInfo>,
    /// The database (redacted).
    pub database: String,
    /// The object store (redacted).
    pub store: String,
    /// True for `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// True for `--rehearse`: the migrations ran in one transaction that was rolled back, the
    /// seeds were only planned; nothing was changed but the ledger's record of the rehearsal.
    pub rehearsal: bool,
    /// How the apply ended.
    pub outcome: ReportOutcome,
    /// The error that stopped the apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The ledger row of this attempt.
    pub ledger_id: Option<i64>,
    /// Earlier attempts found dead and marked `interrupted` by this one.
    pub interrupted_attempts: u64,
    /// Overrides in effect.
    pub overrides: Vec<Override>,
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
    /// The trust versions the authenticated header carries (`trust/N.root.json`), for the site's
    /// trust store once the kit is applied; not part of the report.
    #[serde(skip)]
    pub carried_trust: Vec<(u64, Vec<u8>)>,
}

/// How an apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportOutcome {
    /// Not finished.
    Running,
    /// Everything applied.
    Succeeded,
    /// Stopped by an error.
    Failed,
    /// `--dry-run`: nothing changed.
    DryRun,
    /// `--rehearse`: rehearsed, rolled back.
    Rehearsed,
}

impl ReportOutcome {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportOutcome::Running => "running",
            ReportOutcome::Succeeded => "succeeded",
            ReportOutcome::Failed => "failed",
            ReportOutcome::DryRun => "dry-run",
            ReportOutcome::Rehearsed => "rehearsed",
        }
    }
}

impl KitInfo {
    fn new(
        m: &crate::kit::manifest::Manifest,
        manifest_sha256: &Sha256Hex,
        signers: &[Signer],
        kit_sha256: Option<&Sha256Hex>,
    ) -> KitInfo {
        KitInfo {
            name: m.name.to_string(),
            version: m.version.to_string(),
            channel: m.channel.to_string(),
            sequence: m.sequence,
            kit_sha256: kit_sha256.cloned(),
            manifest_sha256: manifest_sha256.clone(),
            signers: signers.to_vec(),
        }
    }

    /// The kit as authenticated (its file digest is added once the payload was read).
    pub fn of(kit: &AuthenticatedKit) -> KitInfo {
        Self::new(kit.manifest(), kit.manifest_sha256(), kit.signers(), None)
    }

    /// The kit as verified.
    pub fn of_verified(kit: &VerifiedKit) -> KitInfo {
        Self::new(
            kit.manifest(),
            kit.manifest_sha256(),
            kit.signers(),
            Some(kit.kit_sha256()),
        )
    }
}

impl ApplyReport {
    /// A report for an apply that is starting.
    pub(super) fn new(
        kit_file: String,
        database: String,
        store: String,
        mode: RunMode,
        overrides: Vec<Override>,
        applied_by: String,
    ) -> Self {
        ApplyReport {
            kit_file,
            kit: None,
            database,
            store,
            dry_run: mode == RunMode::DryRun,
            rehearsal: mode == RunMode::Rehearse,
            outcome: ReportOutcome::Running,
            error: None,
            ledger_id: None,
            interrupted_attempts: 0,
            overrides,
            warnings: Vec::new(),
            applied_by,
            started_at: crate::migrate::lock::now_rfc3339(),
            duration_ms: 0,
            steps: Vec::new(),
            migrations: None,
            seeds: None,
            carried_trust: Vec::new(),
        }
    }

    pub(super) fn step(
        &mut self,
        step: StepName,
        outcome: StepOutcome,
        since: Instant,
        detail: String,
    ) {
        self.steps.push(Step {
            step,
            outcome,
            duration_ms: crate::util::millis(since.elapsed()),
            detail,
        });
    }

    pub(super) fn finish(&mut self, started: Instant, error: Option<&ApplyError>) {
        self.duration_ms = crate::util::millis(started.elapsed());
        self.outcome = match error {
            Some(_) => ReportOutcome::Failed,
            None if self.dry_run => ReportOutcome::DryRun,
            None if self.rehearsal => ReportOutcome::Rehearsed,
            None => ReportOutcome::Succeeded,
        };
        self.error = error.map(|e| e.to_string());
    }

    /// The JSON report as written by `--report`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing into a Vec cannot fail, nor can serialising the report.
        let _ = self.write_json(&mut v);
        v
    }

    /// Writes [`ApplyReport::to_json`] to `out` as it is made (`--report FILE`, the ledger's
    /// digest): at a million seeds the document is hundreds of MiB, never held whole.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// SHA-256 of [`ApplyReport::to_json`] (recorded in the ledger), hashed as it is written:
    /// at a million seeds the document is hundreds of MiB, which the digest never holds.
    pub fn digest(&self) -> String {
        let mut hasher = crate::store::stream::HashingWriter::new();
        // Writing into a hasher cannot fail, nor can serialising the report.
        let _ = self.write_json(&mut hasher);
        hasher.finish().sha256
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
        let title = if self.dry_run {
            "DRY RUN (nothing changed)".to_owned()
        } else if self.rehearsal {
            let how = if self.error.is_some() {
                "FAILED"
            } else {
                "REHEARSED"
            };
            format!("{how} (rehearsal: rolled back, nothing changed)")
        } else {
            self.outcome.as_str().to_uppercase()
        };
        match &self.kit {
            Some(k) => {
                writeln!(
                    f,
                    "{title}: {} {} (channel {}, sequence {})",
                    k.name, k.version, k.channel, k.sequence
                )?;
                if let Some(sha) = &k.kit_sha256 {
                    writeln!(f, "  kit sha256       {sha}")?;
                }
                writeln!(f, "  manifest sha256  {}", k.manifest_sha256)?;
                for s in &k.signers {
                    writeln!(f, "  signer           {} ({})", s.keyid, s.name)?;
                }
            }
            None => writeln!(f, "{title}: {} (not authenticated)", self.kit_file)?,
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
            let label = if o.is_unsafe() {
                "UNSAFE override"
            } else {
                "override       "
            };
            writeln!(f, "  {label}  {}", o.flag())?;
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
                s.step.as_str(),
                s.duration_ms,
                s.detail
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
        } else if !self.dry_run && !self.rehearsal && self.changed_nothing() {
            writeln!(f, "  nothing to do: this kit was already fully applied")?;
        }
        write!(f, "  took {} ms", self.duration_ms)
    }
}
