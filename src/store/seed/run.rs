//! Executing a seeding plan: parallel create-only puts, each streamed from its source through the
//! digest-checking reader and confirmed by reading the object back (or by the store's checksum).
//! A source that breaks its promise stops the run: no put starts after it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::plan::plan_with;
use super::report::{Action, ObjectReport, Outcome, SeedMode, SeedReport, SeedTotals};
use super::{
    ConflictPolicy, SeedError, SeedObject, SeedOptions, SeedSource, confirmed_by_checksum,
    open_checked,
};
use crate::failpoint;
use crate::report::progress::Progress;
use crate::store::{PutRequest, Store, StoreError, WriteMode};

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

/// What every put of one run shares: the store, the source, the conflict policy, and the stop
/// flag with the first source problem found.
struct Run<'a> {
    store: &'a dyn Store,
    source: Option<&'a dyn SeedSource>,
    policy: ConflictPolicy,
    stop: AtomicBool,
    source_problem: Mutex<Option<(String, StoreError)>>,
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

pub(super) fn run(
    store: &dyn Store,
    seeds: &[SeedObject],
    source: Option<&dyn SeedSource>,
    opts: &SeedOptions,
    progress: &Progress,
    ahead: Option<super::LookedUp>,
) -> Result<SeedReport, SeedError> {
    if source.is_none() && opts.mode == SeedMode::Apply {
        return Err(SeedError::NoSource);
    }
    let started = Instant::now();
    let threads = opts.threads(store);
    let pool = pool(threads)?;
    let plan = plan_with(store, seeds, source, opts.conflicts, &pool, progress, ahead)?;
    let run = Run {
        store,
        source,
        policy: opts.conflicts,
        stop: AtomicBool::new(false),
        source_problem: Mutex::new(None),
        progress,
    };
    let conflicts = plan.count(Action::Conflict);
    // The plan's entries become the report's objects (moved, not copied: at a million seeds
    // each copy held would cost hundreds of MiB).
    let mut report = SeedReport {
        store: plan.store,
        mode: opts.mode,
        conflict_policy: opts.conflicts,
        parallelism: threads,
        totals: SeedTotals::default(),
        duration_ms: 0,
        objects: plan
            .entries
            .into_iter()
            .map(|e| ObjectReport::planned(e.key, e.size, e.sha256, e.state, e.action))
            .collect(),
    };
    if opts.mode == SeedMode::Apply {
        if conflicts > 0 {
            // Stop before any put: the operator sees every conflicting key at once.
            for o in &mut report.objects {
                o.outcome = Some(match o.action {
                    Action::Skip => Outcome::Skipped,
                    Action::Conflict => Outcome::Conflict,
                    _ => Outcome::NotRun,
                });
            }
            progress.failed(conflicts as u64);
        } else {
            // In place: a second list of every object's report would double the memory the
            // seeding holds per object. In seed order, a window at a time: the threads work on
            // neighbouring seeds, which a kit source reads from the same few frames (split
            // across the whole list, each thread would want a frame of its own).
            let mut start = 0;
            while start < seeds.len() {
                let end = window_end(seeds, start, threads);
                pool.install(|| {
                    report.objects[start..end]
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
            store.sync().map_err(SeedError::Sync)?;
        }
    }
    report.duration_ms = crate::util::millis(started.elapsed());
    report.tally();
    let problem = run
        .source_problem
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    if let Some((key, error)) = problem {
        return Err(SeedError::SourceChanged {
            key,
            error: Box::new(error),
            report: Box::new(report),
        });
    }
    finish(report)
}

/// Turns the report into the result: conflicts, then failures, are errors that carry it.
fn finish(report: SeedReport) -> Result<SeedReport, SeedError> {
    let conflicted = report.objects.iter().find(|o| {
        o.outcome == Some(Outcome::Conflict)
            || (report.mode == SeedMode::DryRun && o.action == Action::Conflict)
    });
    if let Some(first) = conflicted {
        let existing = first
            .existing
            .as_ref()
            .map_or_else(|| "?".to_owned(), |e| e.sha256.clone());
        return Err(SeedError::Conflicts {
            count: report.totals.conflicts as usize,
            store: report.store.clone(),
            first: first.key.clone(),
            existing,
            expected: first.sha256.to_string(),
            report: Box::new(report),
        });
    }
    if let Some(first) = report
        .objects
        .iter()
        .find(|o| o.outcome == Some(Outcome::Failed))
    {
        return Err(SeedError::Failed {
            count: report.totals.failed as usize,
            store: report.store.clone(),
            first: first.key.clone(),
            error: first.error.clone().unwrap_or_default(),
            report: Box::new(report),
        });
    }
    Ok(report)
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

    fn seeds(sizes: &[u64]) -> Vec<SeedObject> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| SeedObject {
                key: crate::kit::path::KitPath::new(&format!("s/{i}")).unwrap(),
                sha256: "0".repeat(64),
                size: *size,
                media_type: "application/octet-stream".into(),
            })
            .collect()
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
