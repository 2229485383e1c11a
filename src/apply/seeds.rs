//! Which seed objects an apply put, on record, and how to take exactly those back
//! (`offkit store rollback --application N`, the release plan's "restore object-store seeds").
//!
//! `offkit.kit_application_objects` (SQLite `offkit_kit_application_objects`) holds one row per
//! seed of a ledger entry: written as `planned` (key, SHA-256, size) before the first put, and with
//! the seeding's outcome (`put`, `skipped`, `replaced`, `conflict`, `failed`, `not-run`) a page of
//! seeds at a time, once the page's puts are durable. It is where every object's outcome is kept
//! (the apply report lists only the objects that need attention).
//! A rollback removes the objects whose outcome is `put` and whose stored bytes still have the
//! recorded digest; it keeps (and reports) an object a later apply also relies on (it found it in
//! place or put it again), a changed object, an object the apply replaced (the
//! earlier bytes are gone; removing would lose both) and the rows of an apply that died while
//! seeding (`planned`: whether the object was there before cannot be known). Each removal is
//! recorded on the row (`rolled-back`, when, by whom).

use serde::Serialize;

use crate::kit::path::KitPath;
use crate::migrate::{DbError, Dialect, Driver, Value, bind};
use crate::store::seed::Outcome;
use crate::store::{SeedObject, Store};

/// The table, in [`super::ledger::SCHEMA`].
pub const TABLE: &str = "kit_application_objects";

fn table(d: Dialect) -> String {
    d.table(super::ledger::SCHEMA, TABLE)
}

/// Creates the table if absent.
pub fn ensure(driver: &mut dyn Driver) -> Result<(), DbError> {
    let d = driver.dialect();
    let ts = d.timestamp_type();
    driver.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (application_id BIGINT NOT NULL, key TEXT NOT NULL, \
         sha256 TEXT NOT NULL, size BIGINT NOT NULL, outcome TEXT NOT NULL, \
         rolled_back_at {ts}, rolled_back_by TEXT, PRIMARY KEY (application_id, key))",
        table(d)
    ))
}

/// Rows one ledger statement writes: a page of seeds costs a few round trips, not two per seed
/// (PostgreSQL prepares and runs each statement; a million seeds were four million round trips).
/// 500 rows bind at most 1,501 parameters, far under SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT: usize = 500;

/// Runs `statements` in one transaction, rolling it back when one fails.
fn in_transaction(
    driver: &mut dyn Driver,
    statements: impl IntoIterator<Item = (String, Vec<Value>)>,
) -> Result<(), DbError> {
    driver.batch("BEGIN")?;
    for (sql, params) in statements {
        if let Err(e) = driver.execute(&sql, &params) {
            let _ = driver.batch("ROLLBACK");
            return Err(e);
        }
    }
    driver.batch("COMMIT")
}

/// Records every seed of ledger entry `id` as `planned`, in one transaction.
pub fn record_planned(
    driver: &mut dyn Driver,
    id: i64,
    seeds: &[SeedObject],
) -> Result<(), DbError> {
    ensure(driver)?;
    let table = table(driver.dialect());
    let statements = seeds.chunks(ROWS_PER_STATEMENT).map(|chunk| {
        let mut params: Vec<Value> = Vec::with_capacity(1 + 3 * chunk.len());
        params.push(id.into());
        let mut rows = Vec::with_capacity(chunk.len());
        for s in chunk {
            let size = i64::try_from(s.size).unwrap_or(i64::MAX);
            let row = [s.key.as_str().into(), s.sha256.as_str().into(), size.into()];
            rows.push(format!("($1, {}, 'planned')", bind(&mut params, row)));
        }
        let sql = format!(
            "INSERT INTO {table} (application_id, key, sha256, size, outcome) VALUES {}",
            rows.join(", ")
        );
        (sql, params)
    });
    in_transaction(driver, statements)
}

/// Records the seeding's outcome of each of `seeds` (`outcomes`, in the same order), in one
/// transaction: one statement per outcome and 500 keys.
pub fn record_outcomes(
    driver: &mut dyn Driver,
    id: i64,
    seeds: &[SeedObject],
    outcomes: &[Option<Outcome>],
) -> Result<(), DbError> {
    let table = table(driver.dialect());
    let mut by_outcome: std::collections::BTreeMap<&'static str, Vec<&str>> =
        std::collections::BTreeMap::new();
    for (s, outcome) in seeds.iter().zip(outcomes) {
        if let Some(outcome) = outcome {
            by_outcome
                .entry(outcome.as_str())
                .or_default()
                .push(s.key.as_str());
        }
    }
    let table = table.as_str();
    let statements = by_outcome.iter().flat_map(|(outcome, keys)| {
        keys.chunks(ROWS_PER_STATEMENT).map(move |chunk| {
            let mut params: Vec<Value> = vec![(*outcome).into(), id.into()];
            let keys = bind(&mut params, chunk.iter().map(|k| Value::from(*k)));
            let sql = format!(
                "UPDATE {table} SET outcome = $1 WHERE application_id = $2 AND key IN ({keys})"
            );
            (sql, params)
        })
    });
    in_transaction(driver, statements)
}

/// Records every seed of ledger entry `id` still `planned` as `not-run` (seeding stopped before
/// it reached them).
pub fn record_rest_not_run(driver: &mut dyn Driver, id: i64) -> Result<(), DbError> {
    let d = driver.dialect();
    driver
        .execute(
            &format!(
                "UPDATE {} SET outcome = 'not-run' WHERE application_id = $1 AND outcome = 'planned'",
                table(d)
            ),
            &[id.into()],
        )
        .map(|_| ())
}

/// What a seed rollback did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedRollback {
    /// The ledger entry.
    pub application_id: i64,
    /// The store, redacted.
    pub store: String,
    /// Objects removed.
    pub removed: Vec<String>,
    /// Objects already gone.
    pub already_gone: Vec<String>,
    /// Objects kept, with why (changed since, replaced by the apply, unknown after a crash).
    pub kept: Vec<(String, String)>,
    /// Objects that could not be handled.
    pub failures: Vec<(String, String)>,
}

impl SeedRollback {
    /// Whether every object the apply put is gone again and nothing was left in doubt.
    pub fn complete(&self) -> bool {
        self.kept.is_empty() && self.failures.is_empty()
    }

    /// Text for a terminal.
    pub fn render_text(&self) -> String {
        use crate::kit::path::printable;
        let mut s = format!(
            "seed rollback of ledger entry #{} in {}: {} removed, {} already gone, {} kept, {} failed\n",
            self.application_id,
            self.store,
            self.removed.len(),
            self.already_gone.len(),
            self.kept.len(),
            self.failures.len()
        );
        for k in &self.removed {
            s.push_str(&format!("  removed {}\n", printable(k)));
        }
        for (k, why) in &self.kept {
            s.push_str(&format!("  kept    {}: {why}\n", printable(k)));
        }
        for (k, e) in &self.failures {
            s.push_str(&format!(
                "  failed  {}: {}\n",
                printable(k),
                crate::util::escape_controls(e)
            ));
        }
        s
    }
}

/// The recorded store of ledger entry `id` (redacted), if the entry exists.
pub fn application_store(driver: &mut dyn Driver, id: i64) -> Result<Option<String>, DbError> {
    if !super::ledger::exists(driver)? {
        return Ok(None);
    }
    Ok(super::ledger::list(driver, None)?
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| r.store))
}

/// Removes the objects ledger entry `id` put into `store` (see the module's documentation).
/// Call with the runner's lock held.
pub fn rollback(
    driver: &mut dyn Driver,
    store: &dyn Store,
    id: i64,
    by: &str,
) -> Result<SeedRollback, DbError> {
    ensure(driver)?;
    let d = driver.dialect();
    let rows = driver.query(
        &format!(
            "SELECT key, sha256, size, outcome FROM {} WHERE application_id = $1 ORDER BY key",
            table(d)
        ),
        &[id.into()],
    )?;
    let mut out = SeedRollback {
        application_id: id,
        store: store.url().redacted(),
        ..SeedRollback::default()
    };
    let mark = format!(
        "UPDATE {} SET outcome = 'rolled-back', rolled_back_at = {}, rolled_back_by = $1 \
         WHERE application_id = $2 AND key = $3",
        table(d),
        d.now()
    );
    for r in rows {
        let text = |i: usize| {
            r.get(i)
                .and_then(Value::as_text)
                .unwrap_or_default()
                .to_owned()
        };
        let (key, sha, outcome) = (text(0), text(1), text(3));
        let size = r.get(2).and_then(Value::as_int).unwrap_or(-1);
        match outcome.as_str() {
            "put" => {}
            "replaced" => {
                out.kept.push((
                    key,
                    "the apply replaced an earlier object there; removing it would lose both"
                        .into(),
                ));
                continue;
            }
            "planned" => {
                out.kept.push((
                    key,
                    "the apply stopped while seeding; whether it put this object is unknown".into(),
                ));
                continue;
            }
            _ => continue,
        }
        // A later apply that found this object in place (or put it again) relies on it.
        let later = driver.query(
            &format!(
                "SELECT application_id FROM {} WHERE key = $1 AND application_id > $2 \
                 AND sha256 = $3 AND outcome IN ('put', 'skipped', 'planned') ORDER BY application_id",
                table(d)
            ),
            &[key.as_str().into(), id.into(), sha.as_str().into()],
        )?;
        if let Some(m) = later
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_int)
        {
            out.kept
                .push((key, format!("apply #{m} also relies on this object")));
            continue;
        }
        let Ok(k) = KitPath::new(&key) else {
            out.failures
                .push((key, "the recorded key is not a valid key".into()));
            continue;
        };
        match store.digest(&k) {
            Ok(None) => out.already_gone.push(key.clone()),
            Ok(Some(dg)) if dg.sha256 == sha && i64::try_from(dg.size).ok() == Some(size) => {
                if let Err(e) = store.delete(&k) {
                    out.failures.push((key, e.to_string()));
                    continue;
                }
                out.removed.push(key.clone());
            }
            Ok(Some(dg)) => {
                out.kept.push((
                    key,
                    format!(
                        "changed since the apply (sha256 {} now, {sha} put)",
                        dg.sha256
                    ),
                ));
                continue;
            }
            Err(e) => {
                out.failures.push((key, e.to_string()));
                continue;
            }
        }
        driver.execute(&mark, &[by.into(), id.into(), key.as_str().into()])?;
    }
    Ok(out)
}
