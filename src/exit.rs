//! The exit-code table. Every refusal maps to exactly one of these codes so that scripts and
//! runbooks can tell a tampered kit from a busy lock from a typo. The table is documented in the
//! README and printed by `offkit --help`; a test pins it.

/// Process exit codes of `offkit`. The numeric values are a public, stable contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// An unexpected internal error (a bug): please report it.
    Internal = 1,
    /// Bad command line: unknown flag, missing argument, conflicting options.
    Usage = 2,
    /// The kit failed verification (signature, digest, layout, entry safety, expiry).
    Verification = 3,
    /// The kit source folder breaks a build rule (naming standard, unknown file, kit.toml).
    InvalidSource = 4,
    /// A key, trust policy or trust version could not be used (unreadable, malformed, insecure
    /// permissions), or a trust store refused a version (forged, skipped, older, conflicting).
    Key = 5,
    /// A file-system or I/O error (missing file, refusing to overwrite, disk full).
    Io = 6,
    /// Another runner holds the lock and the lock timeout passed.
    LockBusy = 7,
    /// The database failed or refused a statement (connection, SQL error in a migration).
    Database = 8,
    /// The migration history disagrees with the kit: drift, missing, out of order, in progress.
    MigrationState = 9,
    /// `migrations check`: release or data migrations are still pending; `status`: the kit is not
    /// complete here.
    Pending = 10,
    /// The kit does not fit this site: downgrade, wrong target, unmet `requires`.
    Incompatible = 11,
    /// The object store failed or a seed object conflicts with what is stored.
    Store = 12,
    /// A data migration had failing batches (recorded and reported; the run continued).
    PartialFailure = 13,
    /// A destructive migration is not declared by the kit, or the site did not allow it
    /// (`--allow-destructive`); nothing was run.
    Destructive = 14,
    /// `store compare`: the stores differ (objects missing, different or only on one side).
    Different = 15,
}

impl Exit {
    /// All codes with a one-line meaning, in numeric order (for `--help` and the README).
    pub const TABLE: &'static [(Exit, &'static str)] = &[
        (Exit::Ok, "success"),
        (Exit::Internal, "internal error (a bug: please report it)"),
        (Exit::Usage, "usage error: bad flag or argument"),
        (
            Exit::Verification,
            "kit verification failed: nothing was written or applied",
        ),
        (Exit::InvalidSource, "kit source breaks a build rule"),
        (
            Exit::Key,
            "key, trust policy or trust version unusable (malformed, unreadable, insecure permissions, refused rotation)",
        ),
        (Exit::Io, "file-system or I/O error"),
        (Exit::LockBusy, "lock busy: another runner holds it"),
        (Exit::Database, "database error"),
        (
            Exit::MigrationState,
            "migration history disagrees with the kit (drift, missing, out of order, in progress)",
        ),
        (
            Exit::Pending,
            "something is pending: release or data migrations (migrations check), or a kit not complete here (status)",
        ),
        (
            Exit::Incompatible,
            "kit incompatible with this site (downgrade, target, requires)",
        ),
        (Exit::Store, "object-store error or seed conflict"),
        (
            Exit::PartialFailure,
            "data-migration batches or store-migration objects failed (recorded; see the report)",
        ),
        (
            Exit::Destructive,
            "destructive migration not declared by the kit or not allowed (--allow-destructive); nothing was run",
        ),
        (
            Exit::Different,
            "store compare or diff: the stores (missing, different or extra objects) or the kits differ",
        ),
    ];

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Its name in JSON error documents (`error.kind` when no finer kind is known).
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Internal => "internal",
            Exit::Usage => "usage",
            Exit::Verification => "verification",
            Exit::InvalidSource => "invalid-source",
            Exit::Key => "key",
            Exit::Io => "io",
            Exit::LockBusy => "lock-busy",
            Exit::Database => "database",
            Exit::MigrationState => "migration-state",
            Exit::Pending => "pending",
            Exit::Incompatible => "incompatible",
            Exit::Store => "store",
            Exit::PartialFailure => "partial-failure",
            Exit::Destructive => "destructive",
            Exit::Different => "different",
        }
    }
}

/// Errors that know which exit code they stand for.
pub trait ExitCoded {
    /// The exit code a command that fails with this error returns.
    fn exit(&self) -> Exit;
}

/// The exit-code table as plain text, for `--help`.
pub fn table_text() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in Exit::TABLE {
        s.push_str(&format!("  {:>2}  {}\n", code.code(), meaning));
    }
    s
}
