//! Executing seeding: every page of seeds planned, then put — parallel create-only puts, each
//! streamed from its source through the digest-checking reader and confirmed by reading the
//! object back (or by the store's checksum). A source that breaks its promise stops the run: no
//! put starts after it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::plan::{Finding, PageOrder, SeedState, plan_with};
use super::report::{
    Action, ObjectReport, ObjectsListed, Outcome, SeedMode, SeedReport, SeedTotals,
};
use super::{
    ConflictPolicy, SeedError, SeedObject, SeedOptions, SeedSource, check_sha,
    confirmed_by_checksum, open_checked,
};
use crate::failpoint;
use crate::report::progress::Progress;
use crate::store::{ObjectDigest, PutRequest, Store, StoreError, WriteMode};

/// How long a put's confirmation waits before asking the store again (after each failed
/// attempt but the last).
const CONFIRM_WAITS: [std::time::Duration; 2] = [
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(2),
];

/// Most seeds per thread in a window of the puts ([`window_end`]): enough that a slow put holds
/// up little of a window.
const WINDOW_PER_THREAD: usize = 64;

/// Bytes of seeds after which a window closes (once every thread has a seed): two of the
/// builder's 8 MiB frames, so a window's seeds lie in the few frames a kit source keeps decoded.
const WINDOW_BYTES: u64 = 16 << 20;

/// Where the window of puts that starts at seed `start` ends: at least one seed per thread, then
/// up to [`WINDOW_PER_THREAD`] per thread while the window holds under [`WINDOW_BYTES`].
fn window_end(seeds: &[SeedObject], start: usize, threads: usize) -> usize {
    let mut end = start;
    let mut bytes = 0u64;
    while end < seeds.len()
        && (end - start < threads
            || (end - start < threads * WINDOW_PER_THREAD && bytes < WINDOW_BYTES))
    {
        bytes = bytes.saturating_add(seeds[end].size);
        end += 1;
    }
    end
}

/// What every put of one page shares: the store, the page's source, the conflict policy, and
/// the seeding's stop flag with the first source problem found.
struct Run<'a> {
    store: &'a dyn Store,
    source: Option<&'a dyn SeedSource>,
    policy: ConflictPolicy,
    stop: &'a AtomicBool,
    source_problem: &'a Mutex<Option<(String, StoreError)>>,
    progress: &'a Progress,
}

/// A worker pool of `threads` threads.
pub(super) fn pool(threads: usize) -> Result<rayon::ThreadPool, StoreError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("offkit-seed-{i}"))
        .build()
        .map_err(|e| StoreError::Runtime {
            driver: "seeding",
            cause: std::io::Error::other(e),
        })
}

/// Most objects a report that lists only those needing attention lists; the others are
/// counted in its totals (and `objects_omitted`).
pub const ATTENTION_LISTED: usize = 10_000;

/// A seeding taken a page of seeds at a time, so that what it holds does not grow with the
/// number of seeds (an apply of a million seeds): every page is planned
/// ([`Seeding::plan`]) before any is put, so that a conflict anywhere stops the seeding before
/// its first put; then the pages are put in the same order ([`Seeding::put`]), each made
/// durable before its outcomes are returned. Between the passes it holds one byte per seed
/// (what the plan decided) and what the store held at the seeds that differ. Its report lists
/// every object or only those needing attention ([`ObjectsListed`]); the totals count every
/// object either way.
///
/// When there is more than one page, each page's keys must all sort after the previous page's
/// (a kit's seed pages do): that is what makes a key seeded twice impossible across pages, and
/// lets a store that lists in order be listed a page's range at a time.
pub struct Seeding<'a> {
    store: &'a dyn Store,
    opts: SeedOptions,
    pool: rayon::ThreadPool,
    progress: Progress,
    started: Instant,
    /// What the plan decided for each seed planned so far, in seed order.
    actions: Vec<Action>,
    /// What the store held at each seed found different, by seed number.
    existing: BTreeMap<usize, Box<ObjectDigest>>,
    conflicts: usize,
    /// Seeds the put pass has handled.
    put_done: usize,
    /// The pages' order and how each is listed.
    order: PageOrder,
    report: SeedReport,
    first_conflict: Option<ObjectReport>,
    first_failure: Option<ObjectReport>,
    stop: AtomicBool,
    source_problem: Mutex<Option<(String, StoreError)>>,
}

impl<'a> Seeding<'a> {
    /// A seeding of `seeds` seeds (for progress) into `store`.
    pub fn new(
        store: &'a dyn Store,
        seeds: u64,
        opts: &SeedOptions,
        listed: ObjectsListed,
    ) -> Result<Seeding<'a>, SeedError> {
        let threads = opts.threads(store);
        Ok(Seeding {
            store,
            opts: opts.clone(),
            pool: pool(threads)?,
            progress: Progress::new("Seeding", seeds, opts.progress),
            started: Instant::now(),
            actions: Vec::new(),
            existing: BTreeMap::new(),
            conflicts: 0,
            put_done: 0,
            order: PageOrder::default(),
            report: SeedReport {
                store: store.url().redacted(),
                mode: opts.mode,
                conflict_policy: opts.conflicts,
                parallelism: threads,
                totals: SeedTotals::default(),
                duration_ms: 0,
                objects_listed: listed,
                objects_omitted: 0,
                objects: Vec::new(),
            },
            first_conflict: None,
            first_failure: None,
            stop: AtomicBool::new(false),
            source_problem: Mutex::new(None),
        })
    }

    /// Compares the next page of seeds with the store (see [`Seeding`]). With a `source`, a
    /// store that can confirm objects by its own checksum may spare reading them back; `ahead`
    /// is a lookup made for exactly these seeds ([`super::look_up`]).
    pub fn plan(
        &mut self,
        seeds: &[SeedObject],
        source: Option<&dyn SeedSource>,
        ahead: Option<super::LookedUp>,
    ) -> Result<(), SeedError> {
        let listing = self.order.next(self.store, seeds)?;
        let plan = plan_with(
            self.store,
            seeds,
            source,
            self.opts.conflicts,
            &self.pool,
            &self.progress,
            Finding { ahead, listing },
        )?;
        let base = self.actions.len();
        for (i, e) in plan.into_iter().enumerate() {
            if e.action == Action::Conflict {
                self.conflicts += 1;
            }
            if let SeedState::Different { existing } = e.state {
                self.existing.insert(base + i, Box::new(existing));
            }
            self.actions.push(e.action);
        }
        Ok(())
    }

    /// Puts the next page of seeds — the pages in the order they were planned — and makes the
    /// puts durable (a dry run only reports what the plan decided). Returns each seed's outcome,
    /// in the page's order. Nothing is put once a conflict was planned (the default policy) or
    /// a source broke its promise: the objects are then reported `skipped`, `conflict` or
    /// `not-run`.
    pub fn put(
        &mut self,
        seeds: &[SeedObject],
        source: Option<&dyn SeedSource>,
    ) -> Result<Vec<Option<Outcome>>, SeedError> {
        let mode = self.opts.mode;
        if source.is_none() && mode == SeedMode::Apply {
            return Err(SeedError::NoSource);
        }
        let base = self.put_done;
        let actions =
            self.actions
                .get(base..base + seeds.len())
                .ok_or_else(|| SeedError::InvalidSeed {
                    key: seeds.first().map(|s| s.key.to_string()).unwrap_or_default(),
                    reason: "put before it was planned".into(),
                })?;
        let mut objects = Vec::with_capacity(seeds.len());
        for (i, (s, action)) in seeds.iter().zip(actions).enumerate() {
            let mut o = ObjectReport::planned(s.key.to_string(), s.size, check_sha(s)?, *action);
            o.existing = self.existing.remove(&(base + i));
            objects.push(o);
        }
        self.put_done += seeds.len();
        if mode == SeedMode::Apply && self.conflicts > 0 {
            // Stop before any put: the operator sees every conflicting key at once.
            for o in &mut objects {
                o.outcome = Some(match o.action {
                    Action::Skip => Outcome::Skipped,
                    Action::Conflict => Outcome::Conflict,
                    _ => Outcome::NotRun,
                });
                if o.action == Action::Conflict {
                    self.progress.failed(1);
                }
            }
        } else if mode == SeedMode::Apply {
            self.put_all(seeds, source, &mut objects);
            self.store.sync().map_err(SeedError::Sync)?;
        }
        let outcomes = objects.iter().map(|o| o.outcome).collect();
        for o in objects {
            self.fold(o);
        }
        Ok(outcomes)
    }

    /// Puts the page in place (a second list of every object's report would double what the
    /// seeding holds per object). In seed order, a window at a time: the threads work on
    /// neighbouring seeds, which a kit source reads from the same few frames (split across the
    /// whole page, each thread would want a frame of its own).
    fn put_all(
        &self,
        seeds: &[SeedObject],
        source: Option<&dyn SeedSource>,
        objects: &mut [ObjectReport],
    ) {
        let run = Run {
            store: self.store,
            source,
            policy: self.opts.conflicts,
            stop: &self.stop,
            source_problem: &self.source_problem,
            progress: &self.progress,
        };
        let threads = self.pool.current_num_threads();
        let mut start = 0;
        while start < seeds.len() {
            let end = window_end(seeds, start, threads);
            self.pool.install(|| {
                objects[start..end]
                    .par_iter_mut()
                    .zip(&seeds[start..end])
                    .for_each(|(o, s)| match o.action {
                        Action::Put | Action::Replace => run.put_one(s, o),
                        Action::Skip => o.outcome = Some(Outcome::Skipped),
                        _ => {}
                    });
            });
            start = end;
        }
    }

    /// Counts one object's report and keeps it when the report lists it.
    fn fold(&mut self, o: ObjectReport) {
        let mode = self.report.mode;
        self.report.totals.add(mode, &o);
        let conflict = o.outcome == Some(Outcome::Conflict)
            || (mode == SeedMode::DryRun && o.action == Action::Conflict);
        if conflict && self.first_conflict.is_none() {
            self.first_conflict = Some(o.clone());
        }
        if o.outcome == Some(Outcome::Failed) && self.first_failure.is_none() {
            self.first_failure = Some(o.clone());
        }
        match self.report.objects_listed {
            ObjectsListed::All => self.report.objects.push(o),
            ObjectsListed::NeedingAttention if o.needs_attention() => {
                if self.report.objects.len() < ATTENTION_LISTED {
                    self.report.objects.push(o);
                } else {
                    self.report.objects_omitted += 1;
                }
            }
            ObjectsListed::NeedingAttention => {}
        }
    }

    /// Whether a source broke its promise: nothing more will be put, and the pages not yet put
    /// need not be read ([`Seeding::not_run`]).
    pub fn source_failed(&self) -> bool {
        self.source_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Counts the next page — `seeds` seeds of `bytes` bytes in all — as not run, without its
    /// seeds (once [`Seeding::source_failed`]: a page of a kit that changed need not be read).
    pub fn not_run(&mut self, seeds: u64, bytes: u64) {
        self.put_done = self
            .put_done
            .saturating_add(usize::try_from(seeds).unwrap_or(usize::MAX));
        let t = &mut self.report.totals;
        t.objects = t.objects.saturating_add(seeds);
        t.not_run = t.not_run.saturating_add(seeds);
        t.bytes = t.bytes.saturating_add(bytes);
    }

    /// The report so far (for a seeding stopped by its caller).
    pub fn report(&self) -> SeedReport {
        let mut r = self.report.clone();
        r.duration_ms = crate::util::millis(self.started.elapsed());
        r
    }

    /// Ends the seeding: its report, or the error that carries it — a source that broke its
    /// promise, then conflicts, then failures.
    pub fn finish(mut self) -> Result<SeedReport, SeedError> {
        self.progress.finish();
        let mut report = std::mem::take(&mut self.report);
        report.duration_ms = crate::util::millis(self.started.elapsed());
        let problem = std::mem::take(
            &mut *self
                .source_problem
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if let Some((key, error)) = problem {
            return Err(SeedError::SourceChanged {
                key,
                error: Box::new(error),
                report: Box::new(report),
            });
        }
        if let Some(first) = self.first_conflict.take() {
            let existing = first
                .existing
                .as_ref()
                .map_or_else(|| "?".to_owned(), |e| e.sha256.clone());
            return Err(SeedError::Conflicts {
                count: report.totals.conflicts as usize,
                store: report.store.clone(),
                first: first.key,
                existing,
                expected: first.sha256.to_string(),
                report: Box::new(report),
            });
        }
        if let Some(first) = self.first_failure.take() {
            return Err(SeedError::Failed {
                count: report.totals.failed as usize,
                store: report.store.clone(),
                first: first.key,
                error: first.error.unwrap_or_default(),
                report: Box::new(report),
            });
        }
        Ok(report)
    }
}

impl Drop for Seeding<'_> {
    fn drop(&mut self) {
        self.progress.finish();
    }
}

/// Seeds one list of seeds: planned, then put, every object in the report.
pub(super) fn run(
    store: &dyn Store,
    seeds: &[SeedObject],
    source: Option<&dyn SeedSource>,
    opts: &SeedOptions,
    ahead: Option<super::LookedUp>,
) -> Result<SeedReport, SeedError> {
    if source.is_none() && opts.mode == SeedMode::Apply {
        return Err(SeedError::NoSource);
    }
    let mut seeding = Seeding::new(store, seeds.len() as u64, opts, ObjectsListed::All)?;
    seeding.plan(seeds, source, ahead)?;
    seeding.put(seeds, source)?;
    seeding.finish()
}

impl Run<'_> {
    /// Puts one object and confirms it, into its report in place (a copy made on a put thread
    /// would leave the planned one's strings as holes in the planning thread's heap); never
    /// panics, always reports.
    fn put_one(&self, s: &SeedObject, o: &mut ObjectReport) {
        if self.stop.load(Ordering::Relaxed) {
            o.outcome = Some(Outcome::NotRun);
            return;
        }
        let started = Instant::now();
        let mode = match o.action {
            Action::Replace => WriteMode::Replace,
            _ => WriteMode::CreateNew,
        };
        let store = self.store;
        let result = match self.put_confirmed(s, mode) {
            // Someone put an object at this key since the plan: look at it, never overwrite it.
            Err(StoreError::AlreadyExists { .. }) => match store.digest(&s.key) {
                Ok(Some(d)) if o.sha256 == d.sha256 && d.size == s.size => Ok(Outcome::Skipped),
                Ok(Some(d)) if self.policy == ConflictPolicy::Replace => {
                    o.existing = Some(Box::new(d));
                    self.put_confirmed(s, WriteMode::Replace)
                        .map(|_| Outcome::Replaced)
                }
                Ok(Some(d)) => {
                    o.existing = Some(Box::new(d));
                    self.stop.store(true, Ordering::Relaxed);
                    Ok(Outcome::Conflict)
                }
                Ok(None) => self
                    .put_confirmed(s, WriteMode::CreateNew)
                    .map(|_| Outcome::Put),
                Err(e) => Err(e),
            },
            Ok(()) if mode == WriteMode::Replace => Ok(Outcome::Replaced),
            Ok(()) => Ok(Outcome::Put),
            Err(e) => Err(e),
        };
        o.duration_ms = crate::util::millis(started.elapsed());
        match result {
            Ok(outcome) => {
                if matches!(outcome, Outcome::Put | Outcome::Replaced) {
                    o.bytes_written = s.size;
                    self.progress.success(1);
                } else if outcome == Outcome::Skipped {
                    self.progress.skipped(1);
                } else {
                    self.progress.failed(1);
                }
                o.outcome = Some(outcome);
            }
            Err(e) => {
                o.outcome = Some(Outcome::Failed);
                o.error = Some(e.to_string());
                self.progress.failed(1);
                if e.is_source_problem() {
                    self.stop.store(true, Ordering::Relaxed);
                    let mut first = self
                        .source_problem
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if first.is_none() {
                        *first = Some((s.key.to_string(), e));
                    }
                }
            }
        }
    }

    /// Streams the seed from its source into the store and confirms the stored bytes.
    fn put_confirmed(&self, s: &SeedObject, mode: WriteMode) -> Result<(), StoreError> {
        let store = self.store;
        let key = s.key.as_str();
        failpoint::hit(&format!("seed-put:{key}"));
        let Some(source) = self.source else {
            return Err(StoreError::SourceUnavailable {
                key: key.to_owned(),
                cause: std::io::Error::other("no source for the seeds' bytes"),
            });
        };
        let mut body = open_checked(source, s)?.with_failpoint(format!("seed-put-streaming:{key}"));
        let req = PutRequest {
            key: &s.key,
            size: s.size,
            media_type: &s.media_type,
            mode,
        };
        if let Err(e) = store.put(&req, &mut body) {
            return Err(match (body.mismatch(), body.source_error()) {
                (Some(m), _) => StoreError::source_mismatch(key, m),
                // The put stopped because the seed's source could not be read.
                (None, Some(cause)) => StoreError::SourceUnavailable {
                    key: key.to_owned(),
                    cause,
                },
                (None, None) => e,
            });
        }
        if !body.is_complete() {
            return Err(StoreError::Corrupt {
                store: store.url().redacted(),
                key: key.to_owned(),
                reason: format!(
                    "the driver stored the object after reading only {} of {} bytes (a driver bug)",
                    body.bytes_read(),
                    s.size
                ),
            });
        }
        // A store that shows a new object a moment late (some S3-compatible servers: a read
        // right after the put returned a short body or the previous state) is asked again
        // before the put is called failed; a store that keeps saying otherwise fails it.
        let mut waits = CONFIRM_WAITS.iter();
        loop {
            match self.confirm(s) {
                Err(e) if !e.is_source_problem() => match waits.next() {
                    Some(wait) => std::thread::sleep(*wait),
                    None => return Err(e),
                },
                done => return done,
            }
        }
    }

    /// Whether the object at `s.key` now holds exactly the seed's bytes: by the store's own
    /// checksum where it offers one, else read back and hashed.
    fn confirm(&self, s: &SeedObject) -> Result<(), StoreError> {
        let (store, key) = (self.store, s.key.as_str());
        if confirmed_by_checksum(store, s, self.source, None)? {
            failpoint::hit(&format!("seed-committed:{key}"));
            return Ok(());
        }
        match store.digest(&s.key)? {
            Some(d) if d.sha256.eq_ignore_ascii_case(&s.sha256) && d.size == s.size => {}
            found => {
                return Err(StoreError::Corrupt {
                    store: store.url().redacted(),
                    key: key.to_owned(),
                    reason: match found {
                        Some(d) => format!(
                            "read back {} bytes with sha256 {} right after the put; expected {} bytes with sha256 {}",
                            d.size, d.sha256, s.size, s.sha256
                        ),
                        None => "the object was gone right after the put".into(),
                    },
                });
            }
        }
        failpoint::hit(&format!("seed-committed:{key}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::path::KitPath;

    fn seeds(sizes: &[u64]) -> Vec<SeedObject> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| SeedObject {
                key: KitPath::new(&format!("s/{i}")).unwrap(),
                sha256: "0".repeat(64),
                size: *size,
                media_type: "application/octet-stream".into(),
            })
            .collect()
    }

    /// A seed `key` with `bytes`, written under `src` (its source) when given.
    fn seed(key: &str, bytes: &[u8], src: Option<&std::path::Path>) -> SeedObject {
        let key = KitPath::new(key).unwrap();
        if let Some(src) = src {
            let path = key.under(src);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        SeedObject {
            key,
            sha256: crate::kit::digest::Sha256Hex::of(bytes).into_string(),
            size: bytes.len() as u64,
            media_type: "application/json".into(),
        }
    }

    fn folder_store(dir: &std::path::Path) -> Box<dyn Store> {
        crate::store::open_str(&format!("file://{}", dir.display())).unwrap()
    }

    fn options(mode: SeedMode) -> SeedOptions {
        SeedOptions {
            mode,
            progress: crate::report::progress::ProgressMode::Off,
            ..SeedOptions::default()
        }
    }

    #[test]
    fn pages_must_follow_one_another_in_key_order_and_be_planned_before_they_are_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = folder_store(dir.path());
        let mut seeding = Seeding::new(
            store.as_ref(),
            3,
            &options(SeedMode::DryRun),
            ObjectsListed::All,
        )
        .unwrap();
        let first = [seed("b/1", b"1", None), seed("b/2", b"2", None)];
        // Put before it was planned.
        assert!(matches!(
            seeding.put(&first, None),
            Err(SeedError::InvalidSeed { .. })
        ));
        seeding.plan(&first, None, None).unwrap();
        for key in ["a/9", "b/2"] {
            let err = seeding
                .plan(&[seed(key, b"x", None)], None, None)
                .unwrap_err();
            assert!(
                matches!(&err, SeedError::InvalidSeed { key: k, .. } if k == key),
                "{err}"
            );
        }
        seeding
            .plan(&[seed("b/3", b"3", None)], None, None)
            .unwrap();
        assert_eq!(seeding.put(&first, None).unwrap(), [None, None]);
    }

    #[test]
    fn a_report_of_objects_needing_attention_lists_them_up_to_its_bound_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = folder_store(dir.path());
        let n = ATTENTION_LISTED + 5;
        let seeds: Vec<SeedObject> = (0..n)
            .map(|i| {
                // The store holds other bytes at every key.
                let key = format!("c/{i:06}");
                seed(&key, b"else", Some(dir.path()));
                seed(&key, b"seed", None)
            })
            .chain([seed("d/new", b"new", None)])
            .collect();
        let mut seeding = Seeding::new(
            store.as_ref(),
            seeds.len() as u64,
            &options(SeedMode::DryRun),
            ObjectsListed::NeedingAttention,
        )
        .unwrap();
        let (one, two) = seeds.split_at(n / 2);
        for page in [one, two] {
            seeding.plan(page, None, None).unwrap();
        }
        for page in [one, two] {
            seeding.put(page, None).unwrap();
        }
        let Err(SeedError::Conflicts { count, report, .. }) = seeding.finish() else {
            panic!("conflicts expected")
        };
        assert_eq!(count, n);
        assert_eq!(report.objects.len(), ATTENTION_LISTED);
        assert_eq!(report.objects_omitted, 5);
        assert_eq!(
            (report.totals.objects, report.totals.put),
            (n as u64 + 1, 1)
        );
        assert!(report.objects.iter().all(|o| o.action == Action::Conflict));
        assert!(
            report
                .render_text()
                .contains("and 5 more object(s) needing attention")
        );
    }

    #[test]
    fn a_conflict_in_the_last_page_stops_the_seeding_before_the_first_page_is_put() {
        let (dir, src) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = folder_store(dir.path());
        let first: Vec<SeedObject> = (0..3)
            .map(|i| {
                seed(
                    &format!("a/{i}"),
                    format!("{i}").as_bytes(),
                    Some(src.path()),
                )
            })
            .collect();
        let last = [seed("z/last", b"seed", Some(src.path()))];
        std::fs::create_dir(dir.path().join("z")).unwrap();
        std::fs::write(dir.path().join("z/last"), b"else").unwrap();
        let source = super::super::FolderSource::new(src.path().to_owned());
        let mut seeding = Seeding::new(
            store.as_ref(),
            4,
            &options(SeedMode::Apply),
            ObjectsListed::NeedingAttention,
        )
        .unwrap();
        seeding.plan(&first, Some(&source), None).unwrap();
        seeding.plan(&last, Some(&source), None).unwrap();
        assert_eq!(
            seeding.put(&first, Some(&source)).unwrap(),
            [Some(Outcome::NotRun); 3]
        );
        assert_eq!(
            seeding.put(&last, Some(&source)).unwrap(),
            [Some(Outcome::Conflict)]
        );
        assert!(!dir.path().join("a").exists(), "nothing was put");
        let Err(SeedError::Conflicts { first, report, .. }) = seeding.finish() else {
            panic!("a conflict expected")
        };
        assert_eq!(first, "z/last");
        assert_eq!((report.totals.not_run, report.totals.conflicts), (3, 1));
        assert_eq!(report.objects.len(), 1);
    }

    #[test]
    fn windows_hold_a_seed_per_thread_and_close_at_their_count_or_bytes() {
        // Small seeds: the count closes the window.
        let small = seeds(&[100; 5000]);
        assert_eq!(window_end(&small, 0, 4), 4 * WINDOW_PER_THREAD);
        assert_eq!(
            window_end(&small, 4990, 4),
            5000,
            "the last window is what is left"
        );
        // 4 MiB seeds: four of them fill the 16 MiB.
        let medium = seeds(&[4 << 20; 100]);
        assert_eq!(window_end(&medium, 0, 2), 4);
        // Seeds larger than a window: still one per thread.
        let large = seeds(&[100 << 20; 10]);
        assert_eq!(window_end(&large, 0, 3), 3);
        assert_eq!(window_end(&large, 9, 3), 10);
    }
}
