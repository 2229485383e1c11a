//! `offkit status`: what of a verified kit is applied at a site, without changing anything —
//! each migration (applied, pending, drifted, in progress), each seed (present, pending,
//! conflicting), the ledger rows of this exact kit, and whether the kit is complete here.
//!
//! Only the kit's SQL is kept from the verifying pass; seeds are compared with the store by their
//! signed digests, and that comparison (which reads back every object the store already holds)
//! runs while the payload is being verified — it reads only the store, and nothing of it is shown
//! unless the kit verified.

use serde::Serialize;

use super::ApplyError;
use super::ledger::{self, Row};
use super::load::{self, LoadError};
use super::report::KitInfo;
use crate::migrate::plan::Status;
use crate::migrate::{ModuleFilter, Session, State};
use crate::store::{Comparison, SeedPlan, SeedState, Store};
use crate::trust::content::Retain;
use crate::trust::verify::AuthenticatedKit;

/// A kit against a site.
#[derive(Debug, Serialize)]
pub struct KitStatus {
    /// The kit.
    pub kit: KitInfo,
    /// The database (redacted).
    pub database: String,
    /// The store (redacted).
    pub store: String,
    /// Every migration of the kit against the history.
    pub migrations: Status,
    /// The seeds against the store: every seed counted, the ones not present listed.
    pub seeds: SeedPlan,
    /// Ledger rows of this exact kit (same manifest digest).
    pub applications: Vec<Row>,
    /// True when every migration is applied and every seed present with its bytes.
    pub complete: bool,
    /// `complete`, `incomplete` (something is pending: apply would finish it) or `problems`
    /// (drift, missing, out of order, in progress, or seeds whose stored bytes differ: apply
    /// would refuse).
    pub verdict: &'static str,
    /// The `offkit apply` flags finishing this kit needs beyond the defaults (`--category
    /// release` for pending release migrations, `--allow-destructive` for pending destructive
    /// ones).
    pub apply_flags: Vec<&'static str>,
    /// Why the kit cannot simply be applied, when the verdict is `problems`.
    pub problems: Vec<String>,
    /// What the verifier accepted with a remark (an expired kit under `--allow-expired`, a clock
    /// behind the kit's creation time, …).
    pub warnings: Vec<String>,
}

/// The store an earlier apply of this exact kit (same manifest digest) used, as the ledger
/// recorded it, when it can be opened again as written (a recorded URL never holds a secret: one
/// that had any is recorded redacted, and is not used).
pub fn recorded_store(
    session: &mut Session,
    kit: &AuthenticatedKit,
) -> Result<Option<(String, i64)>, ApplyError> {
    let driver = session.driver();
    if !ledger::exists(driver).map_err(ApplyError::Ledger)? {
        return Ok(None);
    }
    let rows =
        ledger::list(driver, Some(kit.manifest().name.as_str())).map_err(ApplyError::Ledger)?;
    Ok(rows
        .into_iter()
        .filter(|r| kit.manifest_sha256() == &r.manifest_sha256)
        .filter(|r| !r.store.is_empty() && !r.store.contains(crate::util::REDACTED))
        .max_by_key(|r| r.id)
        .map(|r| (r.store, r.id)))
}

/// Verifies `kit` (keeping only its SQL, in memory) and compares it with the database of
/// `session` and with `store`; reads only.
pub fn status(
    kit: AuthenticatedKit,
    session: &mut Session,
    store: &dyn Store,
) -> Result<KitStatus, ApplyError> {
    let mut compare = Comparison::new(store).map_err(ApplyError::Seed)?;
    let mut kit = if kit.manifest().is_paged() {
        // The seeds are listed in pages the verifying pass checks: compared after it, a page at
        // a time.
        let kit = kit.verify(Retain::Sql).map_err(ApplyError::Verify)?;
        let mut pages = kit.seed_pages();
        for i in 0..pages.len() {
            let page = pages.page(i).map_err(LoadError::Content)?;
            compare.page(&load::objects(page.seeds))?;
        }
        kit
    } else {
        // The signed manifest lists them: compared while the payload is verified.
        let objects = load::objects(kit.manifest().seeds.clone());
        let (verified, compared) = std::thread::scope(|s| {
            let compared = s.spawn(|| compare.page(&objects));
            let verified = kit.verify(Retain::Sql);
            (verified, compared.join())
        });
        let kit = verified.map_err(ApplyError::Verify)?;
        // A panic in the comparison is a bug: carry it on rather than report it as something
        // else.
        compared.unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        kit
    };
    let seeds = compare.finish();
    let set = load::migration_set(&mut kit)?;
    let migrations = session.status(&set, &ModuleFilter::All)?;
    let driver = session.driver();
    let applications = if ledger::exists(driver).map_err(ApplyError::Ledger)? {
        ledger::list(driver, Some(kit.manifest().name.as_str()))
            .map_err(ApplyError::Ledger)?
            .into_iter()
            .filter(|r| kit.manifest_sha256() == &r.manifest_sha256)
            .collect()
    } else {
        Vec::new()
    };
    let complete = migrations
        .entries
        .iter()
        .all(|e| matches!(e.state, State::Applied { .. }))
        && seeds.complete();
    let mut problems: Vec<String> = migrations
        .entries
        .iter()
        .filter(|e| e.state.is_problem())
        .map(|e| format!("{}/{} is {}", e.module, e.name, e.state.name()))
        .collect();
    let differ: Vec<&str> = seeds
        .entries
        .iter()
        .filter(|e| matches!(e.state, SeedState::Different { .. }))
        .map(|e| e.key.as_str())
        .collect();
    problems.extend(
        differ
            .iter()
            .map(|k| format!("seed {k} differs from the object stored")),
    );
    let unlisted = seeds.totals.conflicting.saturating_sub(differ.len() as u64);
    if unlisted > 0 {
        problems.push(format!(
            "{unlisted} more seed(s) differ from the objects stored (not listed)"
        ));
    }
    let pending: Vec<&crate::migrate::plan::Entry> = migrations
        .entries
        .iter()
        .filter(|e| matches!(e.state, State::Pending | State::Realign { .. }))
        .collect();
    let mut apply_flags = Vec::new();
    if pending
        .iter()
        .any(|e| e.category == crate::kit::migration_name::Category::Release)
    {
        apply_flags.push("--category release");
    }
    let destructive = kit.manifest().migrations().any(|(module, m)| {
        m.destructive.is_some()
            && pending
                .iter()
                .any(|e| e.module == module.name.as_str() && e.name == m.name.as_str())
    });
    if destructive {
        apply_flags.push("--allow-destructive");
    }
    let verdict = if complete {
        "complete"
    } else if problems.is_empty() {
        "incomplete"
    } else {
        "problems"
    };
    Ok(KitStatus {
        verdict,
        apply_flags,
        problems,
        kit: KitInfo::of_verified(&kit),
        database: session.url().redacted(),
        store: store.url().redacted(),
        migrations,
        seeds,
        applications,
        complete,
        warnings: kit.warnings().to_vec(),
    })
}
