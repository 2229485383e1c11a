//! Argument groups and helpers shared by several commands: trust (`--trust`, `--threshold`,
//! `--allow-expired`), the database (`--db`), the lock (`--lock-timeout`), and opening a kit the
//! cheap way first (header authenticated before anything else is done).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::accepted::{Acceptance, AcceptedError, AcceptedRecord};
use crate::apply::compat::DowngradePolicy;
use crate::exit::Exit;
use crate::migrate::{DbUrl, MigrateError, Session};
use crate::store::ConflictPolicy;
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::{AuthenticatedKit, ExpiryPolicy, KeyTime, VerifiedKit, VerifyOptions};
use crate::util::Secret;

use super::CliError;

/// The embedded default database.
pub const DEFAULT_DB: &str = "sqlite://./offkit.db";

/// `--db URL`.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// Database URL: `postgres://USER[:PASSWORD]@HOST:PORT/DB` or `sqlite://PATH`.
    // Held as a secret until parsed by offkit, as store URLs are: `Debug` shows `***`.
    #[arg(long, value_name = "URL", default_value = DEFAULT_DB, value_parser = super::store::raw_url)]
    pub db: Secret,
}

impl DbArgs {
    /// The parsed URL (no I/O).
    pub fn url(&self) -> Result<DbUrl, CliError> {
        Ok(DbUrl::parse(self.db.expose()).map_err(MigrateError::from)?)
    }

    /// Connects to the database.
    pub fn connect(&self) -> Result<Session, CliError> {
        connect(&self.url()?)
    }

    /// Connects to the database for a command that only reads: a SQLite file that does not exist
    /// is read as empty, never created.
    pub fn connect_existing(&self) -> Result<Session, CliError> {
        connect_existing(&self.url()?)
    }
}

/// Connects to a parsed database URL; remarks (an ignored password file) go to stderr.
pub fn connect(url: &DbUrl) -> Result<Session, CliError> {
    warn(Session::connect(url)?)
}

/// [`connect`] for a command that only reads ([`Session::connect_existing`]).
pub fn connect_existing(url: &DbUrl) -> Result<Session, CliError> {
    warn(Session::connect_existing(url)?)
}

fn warn(session: Session) -> Result<Session, CliError> {
    for w in session.warnings() {
        super::warn(w);
    }
    Ok(session)
}

/// Seeding options shared by the commands that put objects (`apply`, `store put-dir`).
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Replace objects whose stored bytes differ (default: stop, overwrite nothing). Recorded in
    /// the report (and, for apply, the ledger).
    #[arg(long)]
    pub replace_conflicting: bool,
    /// Objects handled at once (default: the store's: 16 for file and S3, 4 for PostgreSQL).
    #[arg(long, value_name = "N", value_parser = parse_parallelism)]
    pub parallelism: Option<usize>,
}

impl SeedArgs {
    /// The conflict policy asked for.
    pub fn conflicts(&self) -> ConflictPolicy {
        if self.replace_conflicting {
            ConflictPolicy::Replace
        } else {
            ConflictPolicy::Stop
        }
    }
}

fn parse_parallelism(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of at least 1")),
    }
}

/// `--lock-timeout`.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// How long to wait for another runner's lock: 30s, 5m, 500ms or seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub use crate::util::parse_duration;

/// The night-run safety settings of migrations (`docs/MIGRATIONS.md`, "Timeouts and lock
/// retries").
#[derive(Debug, Clone, clap::Args)]
pub struct SafetyArgs {
    /// statement_timeout of migration statements, over the kit's hints (default: the kit's hint
    /// for the migration, else 30m; 0 disables).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub statement_timeout: Option<Duration>,
    /// lock_timeout: how long a migration waits for a table lock before its transaction is
    /// rolled back and retried, over the kit's hints (default: the kit's hint, else 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub db_lock_timeout: Option<Duration>,
    /// Retries of a migration (or data batch) rolled back by lock_timeout or a deadlock.
    #[arg(long, value_name = "N", default_value_t = crate::migrate::safety::DEFAULT_LOCK_RETRIES)]
    pub lock_retries: u32,
    /// The pause before the first retry; each next one doubles (at most 1m).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub lock_retry_pause: Duration,
    /// idle_in_transaction_session_timeout of offkit's database session (0 disables).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub idle_in_transaction_timeout: Duration,
}

impl SafetyArgs {
    /// The settings asked for.
    pub fn safety(&self) -> crate::migrate::Safety {
        crate::migrate::Safety {
            lock_timeout: self.db_lock_timeout,
            statement_timeout: self.statement_timeout,
            idle_in_transaction_timeout: self.idle_in_transaction_timeout,
            lock_retries: self.lock_retries,
            retry_pause: self.lock_retry_pause,
        }
    }
}

/// `--trust`, `--threshold`, `--allow-expired`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// A trusted public key (`.pub`, SPKI PEM) or a trust policy (TOML). Repeatable.
    #[arg(long = "trust", value_name = "PUB|POLICY", required = true)]
    pub trust: Vec<PathBuf>,
    /// Distinct trusted keys that must have signed (may only raise the policy's threshold).
    #[arg(long, value_name = "K")]
    pub threshold: Option<usize>,
    /// UNSAFE: accept a kit whose `expires` time has passed (shown in every report).
    #[arg(long)]
    pub allow_expired: bool,
    /// When trusted keys' validity windows are judged: at this machine's clock, or at the kit's
    /// signed creation time (for machines whose clock cannot be trusted; the report says so).
    #[arg(long, value_enum, value_name = "AT", default_value = "clock")]
    pub key_validity: KeyValidityArg,
}

/// Trust arguments for commands that also work without verifying (`inspect`, `diff`): with
/// `--trust`, the kit is verified; without, its header is shown as NOT VERIFIED.
#[derive(Debug, Clone, clap::Args)]
pub struct OptionalTrustArgs {
    /// Verify against these trusted keys / policy before showing anything.
    #[arg(long = "trust", value_name = "PUB|POLICY")]
    pub trust: Vec<PathBuf>,
    /// With --trust: distinct trusted keys that must have signed.
    #[arg(long, value_name = "K", requires = "trust")]
    pub threshold: Option<usize>,
    /// With --trust: UNSAFE, accept an expired kit.
    #[arg(long, requires = "trust")]
    pub allow_expired: bool,
    /// With --trust: judge key validity at the clock or at the kit's signed creation time.
    #[arg(
        long,
        value_enum,
        value_name = "AT",
        default_value = "clock",
        requires = "trust"
    )]
    pub key_validity: KeyValidityArg,
}

impl OptionalTrustArgs {
    /// The trust arguments, when `--trust` was given.
    pub fn given(&self) -> Option<TrustArgs> {
        (!self.trust.is_empty()).then(|| TrustArgs {
            trust: self.trust.clone(),
            threshold: self.threshold,
            allow_expired: self.allow_expired,
            key_validity: self.key_validity,
        })
    }
}

/// `--key-validity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyValidityArg {
    /// At this machine's clock.
    Clock,
    /// At the kit's signed creation time.
    SigningTime,
}

impl TrustArgs {
    /// Loads the trust policy.
    pub fn policy(&self) -> Result<TrustPolicy, CliError> {
        Ok(TrustPolicy::load(&self.trust, self.threshold)?)
    }

    /// Loads the policy and authenticates the kit's header (cheap: the payload is not read).
    pub fn authenticate(&self, kit: &Path) -> Result<AuthenticatedKit, CliError> {
        let policy = self.policy()?;
        Ok(crate::trust::authenticate(kit, &policy, &self.options())?)
    }

    /// Verification options for now.
    pub fn options(&self) -> VerifyOptions {
        VerifyOptions {
            expiry: if self.allow_expired {
                ExpiryPolicy::UnsafeAllowExpired
            } else {
                ExpiryPolicy::Enforce
            },
            key_time: match self.key_validity {
                KeyValidityArg::Clock => KeyTime::Clock,
                KeyValidityArg::SigningTime => KeyTime::SigningTime,
            },
            ..VerifyOptions::default()
        }
    }
}

/// The record of accepted kits that `verify --record` and `extract` keep (anti-rollback for sites
/// that only verify or extract).
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// The record of accepted kits (SQLite; default: $OFFKIT_STATE, else
    /// $XDG_STATE_HOME/offkit/accepted.sqlite, else ~/.local/state/offkit/accepted.sqlite).
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// UNSAFE: accept a kit older than (or conflicting with) one accepted before on its channel;
    /// recorded.
    #[arg(long)]
    pub allow_downgrade: bool,
}

impl RecordArgs {
    /// Opens the record.
    pub fn open(&self) -> Result<AcceptedRecord, CliError> {
        let path = match &self.state {
            Some(p) => p.clone(),
            None => crate::apply::accepted::default_path()?,
        };
        Ok(AcceptedRecord::open(&path)?)
    }

    /// `--allow-downgrade` as a policy.
    pub fn downgrade(&self) -> DowngradePolicy {
        if self.allow_downgrade {
            DowngradePolicy::UnsafeAllow
        } else {
            DowngradePolicy::Refuse
        }
    }

    /// Refuses `kit` when it would roll its channel back here, before its payload is read; under
    /// `--allow-downgrade`, returns what would have refused it, for the report.
    pub fn check(
        &self,
        record: &AcceptedRecord,
        kit: &AuthenticatedKit,
    ) -> Result<Option<String>, CliError> {
        let refusal = record.check(
            kit.manifest(),
            kit.manifest_sha256(),
            DowngradePolicy::Refuse,
        );
        match refusal {
            Err(AcceptedError::Refused(why)) if self.allow_downgrade => Ok(Some(format!(
                "accepted under --allow-downgrade (recorded): {why}"
            ))),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(None),
        }
    }

    /// Records a verified kit as accepted by `command`.
    pub fn record(
        &self,
        record: &mut AcceptedRecord,
        kit: &VerifiedKit,
        command: &str,
    ) -> Result<(), CliError> {
        Ok(record.record(&Acceptance {
            manifest: kit.manifest(),
            manifest_sha256: kit.manifest_sha256(),
            kit_sha256: kit.kit_sha256(),
            signer_keyids: kit.signers().iter().map(|s| s.keyid.to_string()).collect(),
            command,
            downgrade: self.downgrade(),
        })?)
    }
}

/// Adds the trust versions a verified kit carries (`carried`, its `trust/N.root.json` entries) to
/// the site's trust store (`--trust DIR`), each checked again on the way in; says on stderr where
/// the store moved.
pub fn persist_rotation(policy: &TrustPolicy, carried: &[(u64, Vec<u8>)]) -> Result<(), CliError> {
    // The kit is accepted whatever happens here (it verified against the rotation in memory);
    // a store that cannot take the versions is said, not turned into a failure of the command.
    let added = match policy.persist_carried(carried) {
        Ok(a) => a,
        Err(e) => {
            super::warn(&format!(
                "the trust versions this kit carries were not added to the trust store: {e}"
            ));
            return Ok(());
        }
    };
    if let Some(last) = added.last() {
        eprintln!(
            "offkit: the trust store moved to version {last} (version(s) {} carried by the kit)",
            crate::util::comma_list(&added)
        );
    }
    Ok(())
}

/// Reads `SOURCE_DATE_EPOCH` (reproducible-builds.org): seconds since 1970, UTC.
pub fn source_date_epoch() -> Result<Option<i64>, CliError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            CliError::msg(
                Exit::Usage,
                format!("SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"),
            )
        }),
        Err(_) => Ok(None),
    }
}

pub use crate::util::human_bytes;
