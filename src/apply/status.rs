//! `offkit status`: what of a verified kit is applied at a site, without changing anything —
//! each migration (applied, pending, drifted, in progress), each seed (present, pending,
//! conflicting), the ledger rows of this exact kit, and whether the kit is complete here.

use serde::Serialize;

use super::ApplyError;
use super::ledger::{self, Row};
use super::load;
use super::report::KitInfo;
use crate::migrate::plan::Status;
use crate::migrate::{ModuleFilter, Session, State};
use crate::store::{SeedPlan, SeedSource, SeedState, Store};
use crate::trust::verify::VerifiedKit;

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

/// Compares `kit` with the database of `session` and with `store`; reads only.
pub fn status(
    kit: &VerifiedKit,
    session: &mut Session,
    store: &dyn Store,
) -> Result<KitStatus, ApplyError> {
    let set = load::migration_set(kit)?;
    let migrations = session.status(&set, &ModuleFilter::All)?;
    let source = load::seed_source(kit);
    let seeds = crate::store::plan(
        store,
        &load::seed_objects(kit.manifest()),
        source.as_ref().map(|s| s as &dyn SeedSource),
        &Default::default(),
    )?;
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
        kit: KitInfo::of_verified(kit),
        database: session.url().redacted(),
        store: store.url().redacted(),
        migrations,
        seeds,
        applications,
        complete,
    })
}
