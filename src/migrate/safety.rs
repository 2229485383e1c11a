//! Night-run safety settings: every migration runs with a `lock_timeout` and a
//! `statement_timeout`, the session with an `idle_in_transaction_session_timeout`, so that a
//! migration queued behind a long transaction does not in turn block every query of the
//! application (the lock queue), and a setting inherited from the role or database cannot kill a
//! migration that needs longer, nor let a stuck one run all night.
//!
//! Where each value comes from, most specific last: offkit's defaults (the site's, unless the
//! operator says otherwise), the kit's signed per-migration hint (`-- offkit:statement-timeout
//! 10m`, [`crate::kit::migration_name::Hints`]), and the operator's option for this run, which
//! wins. A transactional migration (or a data-migration batch) that fails because it could not get
//! a lock in time (SQLSTATE `55P03`) or lost a deadlock (`40P01`) was rolled back whole by the
//! server; it is retried a bounded number of times with a doubling pause. A no-transaction
//! migration is never retried: it may have done part of its work.

use std::time::Duration;

use serde::Serialize;

use crate::kit::migration_name::Hints;
use crate::migrate::drivers::DbError;
use crate::util::format_duration;

/// Default `lock_timeout` of a migration.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `statement_timeout` of a migration.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default `idle_in_transaction_session_timeout` of offkit's sessions.
pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default number of retries after a lock timeout or deadlock.
pub const DEFAULT_LOCK_RETRIES: u32 = 3;
/// The first pause before a retry; each next one doubles.
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// offkit's default.
    Default,
    /// The kit's signed hint for this migration.
    Kit,
    /// The operator's option for this run.
    Run,
}

/// One setting and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The value in milliseconds.
    #[serde(rename = "ms")]
    pub millis: u64,
    /// Where it came from.
    pub source: Source,
}

impl Setting {
    fn new(d: Duration, source: Source) -> Setting {
        Setting {
            millis: crate::util::millis(d),
            source,
        }
    }

    /// The value.
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.millis)
    }
}

/// The timeouts one migration runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepTimeouts {
    /// `lock_timeout`.
    pub lock_timeout: Setting,
    /// `statement_timeout`.
    pub statement_timeout: Setting,
}

/// The safety settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safety {
    /// `lock_timeout` the operator set for this run (wins over kit hints).
    pub lock_timeout: Option<Duration>,
    /// `statement_timeout` the operator set for this run (wins over kit hints).
    pub statement_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout` of the session.
    pub idle_in_transaction_timeout: Duration,
    /// Retries after a lock timeout or a deadlock.
    pub lock_retries: u32,
    /// The first pause before a retry.
    pub retry_pause: Duration,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            lock_timeout: None,
            statement_timeout: None,
            idle_in_transaction_timeout: DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
            lock_retries: DEFAULT_LOCK_RETRIES,
            retry_pause: DEFAULT_RETRY_PAUSE,
        }
    }
}

impl Safety {
    /// The session-wide values (for the runner's own statements): run options, else defaults.
    pub fn session(&self) -> StepTimeouts {
        self.for_migration(&Hints::default())
    }

    /// The timeouts of a migration with `hints`: the run's option, else the kit's hint, else the
    /// default.
    pub fn for_migration(&self, hints: &Hints) -> StepTimeouts {
        let pick =
            |run: Option<Duration>, kit: Option<Duration>, default: Duration| match (run, kit) {
                (Some(r), _) => Setting::new(r, Source::Run),
                (None, Some(k)) => Setting::new(k, Source::Kit),
                (None, None) => Setting::new(default, Source::Default),
            };
        StepTimeouts {
            lock_timeout: pick(self.lock_timeout, hints.lock_timeout, DEFAULT_LOCK_TIMEOUT),
            statement_timeout: pick(
                self.statement_timeout,
                hints.statement_timeout,
                DEFAULT_STATEMENT_TIMEOUT,
            ),
        }
    }

    /// The pause before retry number `attempt` (1-based): the first pause, doubling, at most a
    /// minute.
    pub fn pause_before(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(6);
        (self.retry_pause * factor).min(Duration::from_secs(60))
    }
}

/// Runs `attempt` (one whole transaction, rolled back when it fails) until it succeeds, fails
/// with something other than a lock conflict, or the retries are spent, pausing longer before
/// each retry. Returns the result and how many retries were made; the final error says which
/// timeout fired and what was tried. `db` finds the database error inside `E`.
pub fn with_lock_retries<T, E>(
    safety: &Safety,
    timeouts: &StepTimeouts,
    mut attempt: impl FnMut() -> Result<T, E>,
    db: fn(&mut E) -> &mut DbError,
) -> (Result<T, E>, u32) {
    let mut retries = 0;
    loop {
        match attempt() {
            Err(mut e) => {
                let err = db(&mut e);
                if is_lock_conflict(err.sqlstate.as_deref()) && retries < safety.lock_retries {
                    retries += 1;
                    std::thread::sleep(safety.pause_before(retries));
                    continue;
                }
                explain(err, timeouts, retries);
                return (Err(e), retries);
            }
            ok => return (ok, retries),
        }
    }
}

/// Adds to a timeout error which setting fired, its value and where it came from.
pub fn explain(e: &mut DbError, t: &StepTimeouts, retries: u32) {
    let add = match e.sqlstate.as_deref() {
        Some("55P03" | "40P01") => format!(
            " (lock_timeout {} from {}; gave up after {} attempt{}: find the blocking session in              pg_stat_activity / pg_locks, or raise --db-lock-timeout / --lock-retries)",
            format_duration(t.lock_timeout.duration()),
            t.lock_timeout.source,
            retries + 1,
            if retries == 0 { "" } else { "s" }
        ),
        Some("57014") => format!(
            " (statement_timeout {} from {}; raise it with --statement-timeout, or have the kit              say what this migration needs with -- offkit:statement-timeout)",
            format_duration(t.statement_timeout.duration()),
            t.statement_timeout.source
        ),
        _ => return,
    };
    e.message.push_str(&add);
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Default => "offkit's default",
            Source::Kit => "the kit's hint",
            Source::Run => "this run's option",
        })
    }
}

impl std::fmt::Display for StepTimeouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = |s: Setting| match s.source {
            Source::Default => "",
            Source::Kit => " (kit)",
            Source::Run => " (run)",
        };
        write!(
            f,
            "lock {}{}, statement {}{}",
            format_duration(self.lock_timeout.duration()),
            tag(self.lock_timeout),
            format_duration(self.statement_timeout.duration()),
            tag(self.statement_timeout)
        )
    }
}

/// True for a failure that rolled the transaction back because of a lock: `lock_not_available`
/// (55P03, what `lock_timeout` raises; SQLite's busy/locked is reported the same way) or
/// `deadlock_detected` (40P01). Retrying such a transaction is safe.
pub fn is_lock_conflict(sqlstate: Option<&str>) -> bool {
    matches!(sqlstate, Some("55P03" | "40P01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_beats_the_kit_which_beats_the_default() {
        let hint = Hints {
            statement_timeout: Some(Duration::from_secs(600)),
            lock_timeout: None,
        };
        let s = Safety::default();
        let t = s.for_migration(&hint);
        assert_eq!(
            t.statement_timeout,
            Setting::new(Duration::from_secs(600), Source::Kit)
        );
        assert_eq!(
            t.lock_timeout,
            Setting::new(DEFAULT_LOCK_TIMEOUT, Source::Default)
        );
        let run = Safety {
            statement_timeout: Some(Duration::from_secs(60)),
            lock_timeout: Some(Duration::from_millis(500)),
            ..Safety::default()
        };
        let t = run.for_migration(&hint);
        assert_eq!(t.statement_timeout.source, Source::Run);
        assert_eq!(t.statement_timeout.duration(), Duration::from_secs(60));
        assert_eq!(t.lock_timeout.duration(), Duration::from_millis(500));
    }

    #[test]
    fn retries_pause_longer_each_time_within_a_minute() {
        let s = Safety::default();
        assert_eq!(s.pause_before(1), Duration::from_secs(1));
        assert_eq!(s.pause_before(2), Duration::from_secs(2));
        assert_eq!(s.pause_before(3), Duration::from_secs(4));
        assert_eq!(s.pause_before(30), Duration::from_secs(60));
        assert!(is_lock_conflict(Some("55P03")) && is_lock_conflict(Some("40P01")));
        assert!(!is_lock_conflict(Some("42P01")) && !is_lock_conflict(None));
    }
}
