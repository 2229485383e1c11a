//! Planning: what the store holds at each seed's key, and so what seeding will do.
//!
//! Existence comes from one listing of the seeds' common folder when the driver prefers it
//! ([`Lookup::Listing`]: S3, PostgreSQL) — abandoned for per-key lookups if the folder turns out to
//! hold far more than the seeds — or from a lookup per key. Every object found is then read back
//! and hashed — a skip is decided by the bytes the store returns, never by metadata — unless the
//! store computes a checksum it can vouch for ([`Store::checksum_confirms`]: S3's MD5 ETags, unless
//! its URL says `confirm=read-back`); an object whose checksum does not match is read back.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use rayon::prelude::*;

use super::report::Action;
use super::{
    ConflictPolicy, SeedError, SeedObject, SeedOptions, SeedSource, check_sha,
    confirmed_by_checksum,
};
use crate::kit::digest::Sha256Bytes;
use crate::kit::path::KitPath;
use crate::report::progress::Progress;
use crate::store::{Lookup, ObjectDigest, ObjectInfo, Store, StoreError};

/// Below this many seeds, per-key lookups are as cheap as a listing.
const LIST_MIN_SEEDS: usize = 16;

/// What the store holds at a seed's key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
#[non_exhaustive]
pub enum SeedState {
    /// Nothing: the seed is pending.
    Absent,
    /// The same bytes: the seed is applied.
    Same,
    /// Different bytes: a conflict.
    Different {
        /// What the store holds.
        existing: ObjectDigest,
    },
}

/// One seed compared with the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanEntry {
    /// The key.
    pub key: String,
    /// The seed's size.
    pub size: u64,
    /// The seed's SHA-256.
    pub sha256: Sha256Bytes,
    /// What the store holds.
    #[serde(flatten)]
    pub state: SeedState,
    /// What seeding does about it under the plan's conflict policy.
    pub action: Action,
}

/// Seeds compared with a store (`offkit status`): every seed counted, the seeds not present —
/// pending or conflicting — listed, up to [`super::ATTENTION_LISTED`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeedPlan {
    /// The store, redacted.
    pub store: String,
    /// Counts over every seed.
    pub totals: PlanTotals,
    /// Which seeds `entries` lists: `not-present` (pending or conflicting), in seed order.
    pub entries_listed: &'static str,
    /// Seeds not present that `entries` leaves out (beyond [`super::ATTENTION_LISTED`]).
    pub entries_omitted: u64,
    /// The seeds not present, in seed order.
    pub entries: Vec<PlanEntry>,
}

/// Counts over every seed of a [`SeedPlan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanTotals {
    /// Seeds.
    pub objects: u64,
    /// Bytes of all seeds.
    pub bytes: u64,
    /// Seeds the store holds with their signed bytes.
    pub present: u64,
    /// Seeds absent from the store.
    pub pending: u64,
    /// Seeds whose key holds different bytes.
    pub conflicting: u64,
}

impl SeedPlan {
    /// Whether the store holds every seed with its signed bytes.
    pub fn complete(&self) -> bool {
        self.totals.present == self.totals.objects
    }
}

/// The order of a seeding's pages and how each is listed: each page's keys must all sort after
/// the previous page's (a kit's seed pages do) — what makes a key seeded twice impossible across
/// pages, and lets a store that lists in key order be listed a page's range at a time; another
/// store is listed whole for the first page (abandoned if it holds far more), then looked up key
/// by key.
#[derive(Debug, Default)]
pub(super) struct PageOrder {
    /// The last key of the last page planned.
    last_key: Option<KitPath>,
    planned: usize,
}

impl PageOrder {
    /// How to find the objects at the next page's keys, once the page is known to follow the
    /// previous one.
    pub(super) fn next(
        &mut self,
        store: &dyn Store,
        seeds: &[SeedObject],
    ) -> Result<Listing, SeedError> {
        if let (Some(last), Some(first)) = (&self.last_key, seeds.iter().map(|s| &s.key).min()) {
            if first.as_str().as_bytes() <= last.as_str().as_bytes() {
                return Err(SeedError::InvalidSeed {
                    key: first.to_string(),
                    reason: format!(
                        "a page of seeds must follow the previous page's last key {last}"
                    ),
                });
            }
        }
        let listing = if store.lists_in_order() {
            Listing::After(self.last_key.clone())
        } else if self.planned == 0 {
            Listing::Folder
        } else {
            Listing::None
        };
        if let Some(last) = seeds.iter().map(|s| &s.key).max() {
            self.last_key = Some(last.clone());
        }
        self.planned += 1;
        Ok(listing)
    }
}

/// Compares seeds with `store` a page at a time without changing anything (`offkit status`):
/// what it holds does not grow with the number of seeds (see [`SeedPlan`]).
pub struct Comparison<'a> {
    store: &'a dyn Store,
    pool: rayon::ThreadPool,
    order: PageOrder,
    plan: SeedPlan,
}

impl<'a> Comparison<'a> {
    /// A comparison with `store`.
    pub fn new(store: &'a dyn Store) -> Result<Comparison<'a>, SeedError> {
        Ok(Comparison {
            store,
            pool: super::run::pool(SeedOptions::default().threads(store))?,
            order: PageOrder::default(),
            plan: SeedPlan {
                store: store.url().redacted(),
                totals: PlanTotals::default(),
                entries_listed: "not-present",
                entries_omitted: 0,
                entries: Vec::new(),
            },
        })
    }

    /// Compares the next page of seeds.
    pub fn page(&mut self, seeds: &[SeedObject]) -> Result<(), SeedError> {
        let listing = self.order.next(self.store, seeds)?;
        let entries = plan_with(
            self.store,
            seeds,
            None,
            ConflictPolicy::default(),
            &self.pool,
            &Progress::hidden(0),
            Finding {
                ahead: None,
                listing,
            },
        )?;
        let t = &mut self.plan.totals;
        for e in entries {
            t.objects += 1;
            t.bytes = t.bytes.saturating_add(e.size);
            match e.state {
                SeedState::Same => {
                    t.present += 1;
                    continue;
                }
                SeedState::Absent => t.pending += 1,
                SeedState::Different { .. } => t.conflicting += 1,
            }
            if self.plan.entries.len() < super::ATTENTION_LISTED {
                self.plan.entries.push(e);
            } else {
                self.plan.entries_omitted += 1;
            }
        }
        Ok(())
    }

    /// The comparison of every page.
    pub fn finish(self) -> SeedPlan {
        self.plan
    }
}

/// How planning finds what the store holds at the seeds' keys.
#[derive(Debug)]
pub(super) struct Finding {
    /// A lookup made ahead for exactly these seeds (ignored if made for others).
    pub ahead: Option<LookedUp>,
    /// Else how to list, for a store that prefers a listing.
    pub listing: Listing,
}

/// How planning finds which seeds' keys hold an object, for a store that prefers a listing
/// ([`Lookup::Listing`]).
#[derive(Debug, Clone)]
pub(super) enum Listing {
    /// List the keys' range, after this key (the previous page's last): for a store that lists
    /// in key order ([`Store::lists_in_order`]).
    After(Option<KitPath>),
    /// List the keys' common folder (abandoned for lookups if it holds far more).
    Folder,
    /// Look each key up.
    None,
}

/// What a store held at a list of keys, looked up ahead of seeding them — so that
/// `offkit store put-dir` lists the store while it hashes the folder. Only stores that list
/// ([`Lookup::Listing`]) are looked up ahead; for the others it holds nothing and seeding looks up
/// as usual.
#[derive(Debug)]
pub struct LookedUp {
    keys: Vec<KitPath>,
    found: Option<Vec<Found>>,
}

/// Looks up what `store` holds at `keys` (in the order of the seeds that will use it).
pub fn look_up(store: &dyn Store, keys: Vec<KitPath>) -> Result<LookedUp, StoreError> {
    let found = if store.lookup() == Lookup::Listing && keys.len() >= LIST_MIN_SEEDS {
        let refs: Vec<&KitPath> = keys.iter().collect();
        let range = store.lists_in_order().then_some(None);
        objects_by_listing(store, &refs, range)?.map(|l| l.into_iter().map(Found::from).collect())
    } else {
        None
    };
    Ok(LookedUp { keys, found })
}

impl LookedUp {
    /// The lookup, if it was made for exactly these seeds.
    fn for_seeds(self, seeds: &[SeedObject]) -> Option<Vec<Found>> {
        let same =
            self.keys.len() == seeds.len() && self.keys.iter().zip(seeds).all(|(k, s)| *k == s.key);
        self.found.filter(|_| same)
    }
}

pub(super) fn plan_with(
    store: &dyn Store,
    seeds: &[SeedObject],
    source: Option<&dyn SeedSource>,
    policy: ConflictPolicy,
    pool: &rayon::ThreadPool,
    progress: &Progress,
    find: Finding,
) -> Result<Vec<PlanEntry>, SeedError> {
    let mut keys = HashSet::with_capacity(seeds.len());
    for s in seeds {
        check_sha(s)?;
        if !keys.insert(s.key.as_str()) {
            return Err(SeedError::InvalidSeed {
                key: s.key.to_string(),
                reason: "the same key is seeded twice".into(),
            });
        }
    }
    drop(keys);
    // Reading an object back also tells whether it exists: where existence costs a lookup per
    // key anyway and no checksum can spare the read, skip the separate existence pass (and hold
    // nothing per seed for it).
    let read_directly = store.lookup() == Lookup::PerKey && !store.confirms_by_checksum();
    let found = match find.ahead.and_then(|a| a.for_seeds(seeds)) {
        Some(found) => Some(found),
        None if read_directly => None,
        None => Some(pool.install(|| existing_objects(store, seeds, &find.listing))?),
    };
    let found_at = |i: usize| found.as_ref().map_or(&Found::Unknown, |f| &f[i]);
    // Each seed's entry is made where its state is found: no list of states beside the entries.
    let entries: Vec<PlanEntry> = pool.install(|| {
        seeds
            .par_iter()
            .enumerate()
            .map(|(i, s)| {
                let sha = check_sha(s)?;
                let state = match found_at(i) {
                    Found::Absent => SeedState::Absent,
                    Found::Listed(info) if confirmed_by_checksum(store, s, source, Some(info))? => {
                        SeedState::Same
                    }
                    Found::Listed(_) | Found::Unknown => match store.digest(&s.key)? {
                        None => SeedState::Absent,
                        Some(d) if d.size == s.size && sha == d.sha256 => SeedState::Same,
                        Some(existing) => SeedState::Different { existing },
                    },
                };
                if state == SeedState::Same {
                    progress.skipped(1);
                }
                Ok(PlanEntry {
                    key: s.key.to_string(),
                    size: s.size,
                    sha256: sha,
                    action: match (&state, policy) {
                        (SeedState::Absent, _) => Action::Put,
                        (SeedState::Same, _) => Action::Skip,
                        (SeedState::Different { .. }, ConflictPolicy::Replace) => Action::Replace,
                        (SeedState::Different { .. }, _) => Action::Conflict,
                    },
                    state,
                })
            })
            .collect::<Result<_, SeedError>>()
    })?;
    Ok(entries)
}

/// What is known of the object at a seed's key before reading it.
#[derive(Debug, Clone)]
pub(super) enum Found {
    /// Nothing there.
    Absent,
    /// An object, as a listing or a lookup showed it.
    Listed(ObjectInfo),
    /// Not looked up: reading it back will tell.
    Unknown,
}

impl From<Option<ObjectInfo>> for Found {
    fn from(info: Option<ObjectInfo>) -> Found {
        info.map_or(Found::Absent, Found::Listed)
    }
}

/// The object at each seed's key, if there is one.
fn existing_objects(
    store: &dyn Store,
    seeds: &[SeedObject],
    listing: &Listing,
) -> Result<Vec<Found>, StoreError> {
    if store.lookup() == Lookup::Listing && seeds.len() >= LIST_MIN_SEEDS {
        let keys: Vec<&KitPath> = seeds.iter().map(|s| &s.key).collect();
        let listed = match listing {
            Listing::After(after) => objects_by_listing(store, &keys, Some(after.as_ref()))?,
            Listing::Folder => objects_by_listing(store, &keys, None)?,
            Listing::None => None,
        };
        if let Some(listed) = listed {
            return Ok(listed.into_iter().map(Found::from).collect());
        }
    }
    seeds
        .par_iter()
        .map(|s| {
            Ok(Found::from(store.stat(&s.key)?.map(|size| ObjectInfo {
                key: s.key.to_string(),
                size,
                etag: None,
            })))
        })
        .collect()
}

/// Lists the keys' common folder; from a store that lists in key order, with `range`, only the
/// keys' range — after `range`'s key to the greatest key — so that a page of a million seeds
/// costs the listing of its own keys, never of the whole folder. `None` when the listing holds
/// so many other objects that per-key lookups are cheaper.
fn objects_by_listing(
    store: &dyn Store,
    keys: &[&KitPath],
    range: Option<Option<&KitPath>>,
) -> Result<Option<Vec<Option<ObjectInfo>>>, StoreError> {
    let index: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let last = keys.iter().map(|k| k.as_str()).max().unwrap_or_default();
    let cap = keys.len() * 4 + 1000;
    let mut found = vec![None; keys.len()];
    let mut seen = 0usize;
    let mut overflow = false;
    store.list_after(
        common_folder(keys.iter().copied()).as_ref(),
        range.flatten(),
        &mut |info| {
            if range.is_some() && info.key.as_bytes() > last.as_bytes() {
                return ControlFlow::Break(());
            }
            seen += 1;
            if seen > cap {
                overflow = true;
                return ControlFlow::Break(());
            }
            if let Some(&i) = index.get(info.key.as_str()) {
                found[i] = Some(info);
            }
            ControlFlow::Continue(())
        },
    )?;
    Ok((!overflow).then_some(found))
}

/// The deepest folder that contains every key.
fn common_folder<'k>(keys: impl Iterator<Item = &'k KitPath>) -> Option<KitPath> {
    let mut common: Option<Vec<&str>> = None;
    for key in keys {
        let comps: Vec<&str> = key.components().collect();
        let dir = &comps[..comps.len().saturating_sub(1)];
        common = Some(match common {
            None => dir.to_vec(),
            Some(c) => c
                .iter()
                .zip(dir)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    common
        .filter(|c| !c.is_empty())
        .and_then(|c| KitPath::new(&c.join("/")).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(keys: &[&str]) -> Option<KitPath> {
        let keys: Vec<KitPath> = keys.iter().map(|k| KitPath::new(k).unwrap()).collect();
        common_folder(keys.iter())
    }

    #[test]
    fn common_folder_of_keys() {
        assert_eq!(
            folder(&["a/b/c.json", "a/b/d/e.json", "a/b/f"])
                .unwrap()
                .as_str(),
            "a/b"
        );
        assert_eq!(folder(&["a/b/c.json", "x.json"]), None);
        assert_eq!(folder(&[]), None);
    }

    fn seed(key: &str, bytes: &[u8]) -> SeedObject {
        SeedObject {
            key: KitPath::new(key).unwrap(),
            sha256: crate::kit::digest::Sha256Hex::of(bytes).into_string(),
            size: bytes.len() as u64,
            media_type: "application/json".into(),
        }
    }

    #[test]
    fn a_comparison_counts_every_seed_and_lists_those_not_present_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_str(&format!("file://{}", dir.path().display())).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/diff"), b"else").unwrap();
        std::fs::write(dir.path().join("b/same"), b"same").unwrap();
        let n = crate::store::seed::ATTENTION_LISTED + 3;
        let first: Vec<SeedObject> = (0..n).map(|i| seed(&format!("a/{i:06}"), b"x")).collect();
        let second = [seed("b/diff", b"seed"), seed("b/same", b"same")];
        let mut compare = Comparison::new(store.as_ref()).unwrap();
        compare.page(&first).unwrap();
        let refused = compare.page(&first[..1]).unwrap_err();
        assert!(
            refused.to_string().contains("previous page's last key"),
            "{refused}"
        );
        compare.page(&second).unwrap();
        let plan = compare.finish();
        assert_eq!(
            plan.totals,
            PlanTotals {
                objects: n as u64 + 2,
                bytes: n as u64 + 8,
                present: 1,
                pending: n as u64,
                conflicting: 1,
            }
        );
        assert!(!plan.complete());
        assert_eq!(plan.entries.len(), crate::store::seed::ATTENTION_LISTED);
        assert_eq!(plan.entries_omitted, 4, "3 pending and the conflict");
        assert!(plan.entries.iter().all(|e| e.state == SeedState::Absent));
        assert_eq!(plan.entries[0].key, "a/000000");
    }
}
