//! The ledger `offkit.kit_applications` (SQLite: `offkit_kit_applications`): one row per apply
//! attempt, written on the same connection as the migrations, for auditors.
//!
//! A row is inserted as `running` when an apply starts and updated to `succeeded` or `failed`
//! when it ends. A row still `running` when the next apply takes the lock belongs to an attempt
//! that died (the lock proves no other apply runs); it is marked `interrupted`, so the ledger shows
//! every attempt.

use std::fmt;

use serde::Serialize;

use crate::migrate::{DbError, Dialect, Driver, Value};

/// Schema and table of the ledger.
pub const SCHEMA: &str = "offkit";
/// Table name within [`SCHEMA`].
pub const TABLE: &str = "kit_applications";

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Under way (or died; see [`Outcome::Interrupted`]).
    Running,
    /// Everything applied.
    Succeeded,
    /// Stopped by an error; the report says what was done.
    Failed,
    /// The process died; found by the next apply.
    Interrupted,
    /// `--rehearse`: the migrations ran in one transaction that was rolled back; nothing
    /// changed. The report (its SHA-256 is in the row) says what they did.
    Rehearsed,
    /// `--rehearse` found a failure; nothing changed.
    RehearsalFailed,
    /// Refused before anything was changed (lock busy, kit refused, wrong target, …): recorded
    /// when the site already has a ledger, for auditors.
    Refused,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Running,
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Interrupted,
        Outcome::Rehearsed,
        Outcome::RehearsalFailed,
        Outcome::Refused,
    ];

    /// The text stored in the `outcome` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Rehearsed => "rehearsed",
            Outcome::RehearsalFailed => "rehearsal-failed",
            Outcome::Refused => "refused",
        }
    }

    /// The outcome a column holds.
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An option that opened a gate or weakened a check, recorded in the ledger and the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Override {
    /// `--allow-downgrade`: the channel's sequence was not enforced.
    AllowDowngrade,
    /// `--allow-expired`: the kit's `expires` had passed.
    AllowExpired,
    /// `--replace-conflicting`: differing seed objects may be replaced.
    ReplaceConflicting,
    /// `--category release`: the release gate was opened.
    CategoryRelease,
    /// `--allow-destructive`: this destructive migration (`module/name`, declared by the kit)
    /// was allowed to run.
    AllowDestructive(String),
}

/// The prefix of [`Override::AllowDestructive`] in the `overrides` column.
const ALLOW_DESTRUCTIVE: &str = "allow-destructive=";

impl Override {
    const PLAIN: [Override; 4] = [
        Override::AllowDowngrade,
        Override::AllowExpired,
        Override::ReplaceConflicting,
        Override::CategoryRelease,
    ];

    /// The text stored in the `overrides` column (the flag without `--`;
    /// `allow-destructive=module/name`).
    pub fn text(&self) -> String {
        match self {
            Override::AllowDowngrade => "allow-downgrade".to_owned(),
            Override::AllowExpired => "allow-expired".to_owned(),
            Override::ReplaceConflicting => "replace-conflicting".to_owned(),
            Override::CategoryRelease => "category-release".to_owned(),
            Override::AllowDestructive(m) => format!("{ALLOW_DESTRUCTIVE}{m}"),
        }
    }

    /// The command-line option that asks for it.
    pub fn flag(&self) -> String {
        match self {
            Override::AllowDowngrade => "--allow-downgrade".to_owned(),
            Override::AllowExpired => "--allow-expired".to_owned(),
            Override::ReplaceConflicting => "--replace-conflicting".to_owned(),
            Override::CategoryRelease => "--category release".to_owned(),
            Override::AllowDestructive(m) => format!("--allow-destructive {m}"),
        }
    }

    /// The override a stored text stands for. A destructive migration's name is a module
    /// identifier and a migration name, so it holds no comma.
    pub fn parse(s: &str) -> Option<Override> {
        if let Some(m) = s.strip_prefix(ALLOW_DESTRUCTIVE) {
            let (module, name) = m.split_once('/')?;
            let ok = crate::kit::names::is_identifier(module)
                && crate::kit::migration_name::MigrationName::parse(name).is_ok();
            return ok.then(|| Override::AllowDestructive(m.to_owned()));
        }
        Override::PLAIN.into_iter().find(|o| o.text() == s)
    }

    /// Whether this override weakens a safety check (the others only open a gate on purpose,
    /// after review).
    pub fn is_unsafe(&self) -> bool {
        !matches!(
            self,
            Override::CategoryRelease | Override::AllowDestructive(_)
        )
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Override {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// Joins a list for a text column (`a,b`).
fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a text column written by [`join`].
fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').filter(|s| !s.is_empty())
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Attempt number.
    pub id: i64,
    /// Kit name.
    pub kit_name: String,
    /// Kit version.
    pub kit_version: String,
    /// Channel.
    pub channel: String,
    /// Sequence within the channel.
    pub sequence: i64,
    /// SHA-256 of manifest.json (the kit's signed identity).
    pub manifest_sha256: String,
    /// SHA-256 of the kit file.
    pub kit_sha256: String,
    /// Keyids whose signatures counted.
    pub signer_keyids: Vec<String>,
    /// `user@host`.
    pub applied_by: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// How the attempt ended (or that it is running).
    pub outcome: Outcome,
    /// The object store (redacted).
    pub store: String,
    /// Overrides in effect.
    pub overrides: Vec<Override>,
    /// SHA-256 of the JSON report, when finished.
    pub report_sha256: Option<String>,
    /// The error that stopped the attempt.
    pub error: Option<String>,
}

/// What a new row records.
#[derive(Debug, Clone)]
pub struct NewRow<'a> {
    /// Kit name.
    pub kit_name: &'a str,
    /// Kit version.
    pub kit_version: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Sequence.
    pub sequence: u64,
    /// SHA-256 of manifest.json.
    pub manifest_sha256: &'a str,
    /// SHA-256 of the kit file.
    pub kit_sha256: &'a str,
    /// Signer keyids.
    pub signer_keyids: &'a [String],
    /// `user@host`.
    pub applied_by: &'a str,
    /// The store (redacted).
    pub store: &'a str,
    /// Overrides in effect.
    pub overrides: &'a [Override],
}

fn table(d: Dialect) -> String {
    d.table(SCHEMA, TABLE)
}

/// Creates the ledger if absent.
pub fn ensure(driver: &mut dyn Driver) -> Result<(), DbError> {
    let d = driver.dialect();
    if let Some(sql) = d.create_schema(SCHEMA) {
        driver.batch(&sql)?;
    }
    let id = d.id_column();
    let ts = d.timestamp_type();
    driver.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({id}, kit_name TEXT NOT NULL, kit_version TEXT NOT NULL, \
         channel TEXT NOT NULL, sequence BIGINT NOT NULL, manifest_sha256 TEXT NOT NULL, \
         kit_sha256 TEXT NOT NULL, signer_keyids TEXT NOT NULL, applied_by TEXT NOT NULL, \
         started_at {ts} NOT NULL, finished_at {ts}, outcome TEXT NOT NULL, store TEXT NOT NULL, \
         overrides TEXT NOT NULL, report_sha256 TEXT, error TEXT)",
        table(d)
    ))
}

/// True when the ledger table exists (reads only).
pub fn exists(driver: &mut dyn Driver) -> Result<bool, DbError> {
    crate::migrate::history::table_exists(driver, SCHEMA, TABLE)
}

/// Marks rows left `running` by dead attempts as `interrupted`. Call with the lock held.
pub fn mark_interrupted(driver: &mut dyn Driver) -> Result<u64, DbError> {
    let table = table(driver.dialect());
    interrupt_running(
        driver,
        &table,
        "the process stopped before the apply finished (found by the next apply)",
    )
}

/// Sets the rows of `table` still `running` to `interrupted`, with `why`: the ledger's and the
/// operations journal's rule (their processes are dead: the caller holds the lock).
pub(super) fn interrupt_running(
    driver: &mut dyn Driver,
    table: &str,
    why: &str,
) -> Result<u64, DbError> {
    let now = driver.dialect().now();
    driver.execute(
        &format!(
            "UPDATE {table} SET outcome = $1, finished_at = {now}, error = $2 WHERE outcome = $3"
        ),
        &[
            Outcome::Interrupted.as_str().into(),
            why.into(),
            Outcome::Running.as_str().into(),
        ],
    )
}

/// Inserts a `running` row and returns its id.
pub fn start(driver: &mut dyn Driver, row: &NewRow<'_>) -> Result<i64, DbError> {
    let d = driver.dialect();
    let sequence = i64::try_from(row.sequence).unwrap_or(i64::MAX);
    let rows = driver.query(
        &format!(
            "INSERT INTO {} (kit_name, kit_version, channel, sequence, manifest_sha256, kit_sha256, \
             signer_keyids, applied_by, started_at, outcome, store, overrides) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {}, $9, $10, $11) RETURNING id",
            table(d),
            d.now()
        ),
        &[
            row.kit_name.into(),
            row.kit_version.into(),
            row.channel.into(),
            sequence.into(),
            row.manifest_sha256.into(),
            row.kit_sha256.into(),
            join(row.signer_keyids).into(),
            row.applied_by.into(),
            Outcome::Running.as_str().into(),
            row.store.into(),
            join(row.overrides).into(),
        ],
    )?;
    rows.first()
        .and_then(|r| r.first())
        .and_then(Value::as_int)
        .ok_or_else(|| DbError::msg("the ledger insert returned no id"))
}

/// Records how an attempt ended.
pub fn finish(
    driver: &mut dyn Driver,
    id: i64,
    outcome: Outcome,
    report_sha256: &str,
    error: Option<&str>,
) -> Result<(), DbError> {
    let d = driver.dialect();
    driver.execute(
        &format!(
            "UPDATE {} SET outcome = $1, finished_at = {}, report_sha256 = $2, error = $3 WHERE id = $4",
            table(d),
            d.now()
        ),
        &[
            outcome.as_str().into(),
            report_sha256.into(),
            error.map_or(Value::Null, Value::from),
            id.into(),
        ],
    )?;
    Ok(())
}

/// Records an attempt refused before it changed anything, in a ledger that exists (a refusal
/// never creates one); returns its id, or `None` when the site has no ledger.
pub fn record_refused(
    driver: &mut dyn Driver,
    row: &NewRow<'_>,
    error: &str,
) -> Result<Option<i64>, DbError> {
    if !exists(driver)? {
        return Ok(None);
    }
    let id = start(driver, row)?;
    let d = driver.dialect();
    driver.execute(
        &format!(
            "UPDATE {} SET outcome = $1, finished_at = {}, error = $2 WHERE id = $3",
            table(d),
            d.now()
        ),
        &[Outcome::Refused.as_str().into(), error.into(), id.into()],
    )?;
    Ok(Some(id))
}

/// Every row, oldest first (optionally only one kit's, by name).
pub fn list(driver: &mut dyn Driver, kit: Option<&str>) -> Result<Vec<Row>, DbError> {
    let d = driver.dialect();
    let cols = format!(
        "id, kit_name, kit_version, channel, sequence, manifest_sha256, kit_sha256, signer_keyids, \
         applied_by, {}, {}, outcome, store, overrides, report_sha256, error",
        d.timestamp_text("started_at"),
        d.timestamp_text("finished_at")
    );
    let (filter, params): (&str, Vec<Value>) = match kit {
        Some(k) => (" WHERE kit_name = $1", vec![k.into()]),
        None => ("", Vec::new()),
    };
    let rows = driver.query(
        &format!("SELECT {cols} FROM {}{filter} ORDER BY id", table(d)),
        &params,
    )?;
    rows.into_iter().map(parse_row).collect()
}

fn parse_row(r: Vec<Value>) -> Result<Row, DbError> {
    let text = |i: usize| -> Result<String, DbError> {
        r.get(i)
            .and_then(|v| v.as_text().map(str::to_owned))
            .ok_or_else(|| DbError::msg(format!("ledger column {i} is not text")))
    };
    let opt = |i: usize| r.get(i).and_then(|v| v.as_text().map(str::to_owned));
    let int = |i: usize| -> Result<i64, DbError> {
        r.get(i)
            .and_then(Value::as_int)
            .ok_or_else(|| DbError::msg(format!("ledger column {i} is not an integer")))
    };
    let id = int(0)?;
    let outcome = text(11)?;
    let outcome = Outcome::parse(&outcome)
        .ok_or_else(|| DbError::msg(format!("ledger row {id}: unknown outcome {outcome:?}")))?;
    let overrides = split(&text(13)?)
        .map(|o| {
            Override::parse(o)
                .ok_or_else(|| DbError::msg(format!("ledger row {id}: unknown override {o:?}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Row {
        id,
        kit_name: text(1)?,
        kit_version: text(2)?,
        channel: text(3)?,
        sequence: int(4)?,
        manifest_sha256: text(5)?,
        kit_sha256: text(6)?,
        signer_keyids: split(&text(7)?).map(str::to_owned).collect(),
        applied_by: text(8)?,
        started_at: text(9)?,
        finished_at: opt(10),
        outcome,
        store: text(12)?,
        overrides,
        report_sha256: opt(14),
        error: opt(15),
    })
}
