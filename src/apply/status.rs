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
use super::load;
use super::report::KitInfo;
use crate::migrate::plan::Status;
use crate::migrate::{ModuleFilter, Session, State};
use crate::store::{SeedPlan, SeedState, Store};
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
    /// Every seed against the store.
    pub seeds: SeedPlan,
    /// Ledger rows of this exact kit (same manifest digest).
    pub applications: Vec<Row>,
    /// True when every migration is applied and every seed present with its bytes.
    pub complete: bool,
}

/// Verifies `kit` (keeping only its SQL, in memory) and compares it with the database of
/// `session` and with `store`; reads only.
pub fn status(
    kit: AuthenticatedKit,
    session: &mut Session,
    store: &dyn Store,
) -> Result<KitStatus, ApplyError> {
    let objects = load::seed_objects(kit.manifest());
    let (verified, seeds) = std::thread::scope(|s| {
        let plan = s.spawn(|| crate::store::plan(store, &objects, None, &Default::default()));
        let verified = kit.verify(Retain::Sql);
        (verified, plan.join())
    });
    let mut kit = verified.map_err(ApplyError::Verify)?;
    // A panic in the comparison is a bug: carry it on rather than report it as something else.
    let seeds: SeedPlan = seeds.unwrap_or_else(|p| std::panic::resume_unwind(p))?;
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
        && seeds.entries.iter().all(|e| e.state == SeedState::Same);
    Ok(KitStatus {
        kit: KitInfo::of_verified(&kit),
        database: session.url().redacted(),
        store: store.url().redacted(),
        migrations,
        seeds,
        applications,
        complete,
    })
}
