//! The migration naming standard and the no-transaction marker: part of the kit format, shared by
//! the builder (which refuses bad names), the manifest (whose migration names are
//! [`MigrationName`]s) and the runner (which orders and gates by category).
//!
//! | file name              | category | numbers  | run                                   |
//! |------------------------|----------|----------|---------------------------------------|
//! | `NNN_description.sql`  | startup  | 001-099  | automatically                         |
//! | `NNN_description.sql`  | release  | 100+     | only when asked (`--category release`)|
//! | `SNNN_description.sql` | seed     | S001-S999| automatically                         |
//! | `DMNNN_description.sql`| data     | DM001-DM999 | as batched data migrations         |
//!
//! `description` is `[a-z0-9][a-z0-9_]*`. Release numbers of more than three digits must not start
//! with `0` (so `0100_x` cannot shadow `100_x`).

use std::fmt;

/// What a migration is for; decides when it runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// 001-099: schema needed at start-up, applied automatically.
    Startup,
    /// 100+: release schema changes behind a manual gate.
    Release,
    /// S001-S999: reference data, applied automatically.
    Seed,
    /// DM001-DM999: batched backfills.
    Data,
}

impl Category {
    /// All categories in application order.
    pub const ALL: [Category; 4] = [
        Category::Startup,
        Category::Release,
        Category::Seed,
        Category::Data,
    ];

    /// The lowercase name used in files, flags and history rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Startup => "startup",
            Category::Release => "release",
            Category::Seed => "seed",
            Category::Data => "data",
        }
    }

    /// Parses a lowercase category name.
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a migration file name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The file does not end in `.sql`.
    #[error("{0:?} does not end in .sql")]
    NotSql(String),
    /// The name matches none of the prefixes.
    #[error(
        "{0:?} does not follow the naming standard: NNN_description.sql (001-099 startup, 100+ release), SNNN_description.sql (seed) or DMNNN_description.sql (data), description [a-z0-9_]"
    )]
    Pattern(String),
    /// The number is zero or out of its category's range.
    #[error("{0:?}: number out of range (001-099 startup, 100+ release, S001-S999, DM001-DM999)")]
    Range(String),
}

/// A migration name (file stem) that follows the naming standard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MigrationName {
    stem: String,
    category: Category,
    number: u32,
}

impl MigrationName {
    /// Parses a file name such as `100_lnm_shards_ttl.sql`.
    pub fn from_file_name(file: &str) -> Result<Self, NameError> {
        let stem = file
            .strip_suffix(".sql")
            .ok_or_else(|| NameError::NotSql(file.to_owned()))?;
        Self::parse(stem).map_err(|e| match e {
            NameError::Pattern(_) => NameError::Pattern(file.to_owned()),
            NameError::Range(_) => NameError::Range(file.to_owned()),
            other => other,
        })
    }

    /// Parses a migration name without extension, such as `DM001_backfill_ttl`.
    pub fn parse(stem: &str) -> Result<Self, NameError> {
        let pattern = || NameError::Pattern(stem.to_owned());
        let range = || NameError::Range(stem.to_owned());
        let (prefix, rest) = if let Some(r) = stem.strip_prefix("DM") {
            ("DM", r)
        } else if let Some(r) = stem.strip_prefix('S') {
            ("S", r)
        } else {
            ("", stem)
        };
        let (digits, description) = rest.split_once('_').ok_or_else(pattern)?;
        if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(pattern());
        }
        let desc_ok = description
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && description
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !desc_ok {
            return Err(pattern());
        }
        let number: u32 = digits.parse().map_err(|_| range())?;
        let category = match prefix {
            "DM" | "S" if digits.len() != 3 => return Err(pattern()),
            "DM" => Category::Data,
            "S" => Category::Seed,
            _ if digits.len() > 3 && digits.starts_with('0') => return Err(pattern()),
            _ if number < 100 => Category::Startup,
            _ => Category::Release,
        };
        if number == 0 {
            return Err(range());
        }
        Ok(MigrationName {
            stem: stem.to_owned(),
            category,
            number,
        })
    }

    /// The name as written in history rows (the file stem).
    pub fn as_str(&self) -> &str {
        &self.stem
    }

    /// The category decided by the prefix and number.
    pub fn category(&self) -> Category {
        self.category
    }

    /// The number (without prefix).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Total application order within a module: category order, then number.
    pub fn order_key(&self) -> (Category, u32) {
        (self.category, self.number)
    }
}

impl fmt::Display for MigrationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stem)
    }
}

crate::kit::names::serde_as_text!(MigrationName, MigrationName::parse);

/// Signed hints a migration file carries in its leading comment lines (PostgreSQL documentation
/// of the settings: `lock_timeout`, `statement_timeout`):
///
/// ```sql
/// -- offkit:no-transaction            (first line only; see TxMode)
/// -- offkit:statement-timeout 10m     this migration may run that long
/// -- offkit:lock-timeout 30s          and wait that long for a table lock
/// ```
///
/// The file is signed, so the hints are: a site's night-run defaults give way to what the release
/// team says one migration needs, while an operator's explicit option still wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// `-- offkit:statement-timeout DURATION`.
    pub statement_timeout: Option<std::time::Duration>,
    /// `-- offkit:lock-timeout DURATION`.
    pub lock_timeout: Option<std::time::Duration>,
}

/// A malformed `-- offkit:` directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DirectiveError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The directives prefix.
const DIRECTIVE: &str = "-- offkit:";

impl Hints {
    /// Reads the `-- offkit:` directives of the file's leading comment lines (blank lines and
    /// `--` comments; the first other line ends them). Unknown, repeated or malformed directives
    /// are refused, so that a typo cannot silently drop a hint.
    pub fn parse(sql: &str) -> Result<Hints, DirectiveError> {
        let mut hints = Hints::default();
        for (i, raw) in sql.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if !line.starts_with("--") {
                break;
            }
            let Some(directive) = line.strip_prefix(DIRECTIVE) else {
                continue;
            };
            let bad = |message: String| DirectiveError {
                line: i + 1,
                message,
            };
            let (key, value) = match directive.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (directive, ""),
            };
            let slot = match key {
                "no-transaction" if i == 0 && value.is_empty() => continue,
                "no-transaction" => {
                    return Err(bad(format!(
                        "{NO_TRANSACTION_MARKER} must be the file's first line, alone"
                    )));
                }
                "statement-timeout" => &mut hints.statement_timeout,
                "lock-timeout" => &mut hints.lock_timeout,
                other => {
                    return Err(bad(format!(
                        "unknown directive {DIRECTIVE}{} (known: no-transaction, statement-timeout, lock-timeout)",
                        crate::util::printable_short(other)
                    )));
                }
            };
            let d = crate::util::parse_duration(value).map_err(|e| bad(format!("{key}: {e}")))?;
            if d.is_zero() {
                return Err(bad(format!("{key} must be more than zero")));
            }
            if slot.replace(d).is_some() {
                return Err(bad(format!("{key} is given twice")));
            }
        }
        Ok(hints)
    }
}

/// How a migration file is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxMode {
    /// In one transaction together with its history row (the default).
    Transaction,
    /// Outside a transaction (first line `-- offkit:no-transaction`), guarded by an in-progress
    /// record.
    NoTransaction,
}

impl TxMode {
    /// The mode the SQL's first line declares.
    pub fn of(sql: &[u8]) -> TxMode {
        if is_no_transaction(sql) {
            TxMode::NoTransaction
        } else {
            TxMode::Transaction
        }
    }
}

/// The first line that marks a migration as non-transactional (e.g. `CREATE INDEX CONCURRENTLY`).
pub const NO_TRANSACTION_MARKER: &str = "-- offkit:no-transaction";

/// True when the SQL's first line is exactly the no-transaction marker (trailing spaces and a
/// carriage return allowed).
pub fn is_no_transaction(sql: &[u8]) -> bool {
    let first = sql.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = std::str::from_utf8(first).unwrap_or("");
    first.trim_end() == NO_TRANSACTION_MARKER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_from_prefixes() {
        let c = |f: &str| MigrationName::from_file_name(f).map(|n| (n.category(), n.number()));
        assert_eq!(c("001_init.sql"), Ok((Category::Startup, 1)));
        assert_eq!(c("099_last_startup.sql"), Ok((Category::Startup, 99)));
        assert_eq!(c("100_lnm_shards_ttl.sql"), Ok((Category::Release, 100)));
        assert_eq!(c("1203_big.sql"), Ok((Category::Release, 1203)));
        assert_eq!(c("S001_reference.sql"), Ok((Category::Seed, 1)));
        assert_eq!(c("DM042_backfill.sql"), Ok((Category::Data, 42)));
    }

    #[test]
    fn refuses_off_standard_names() {
        for bad in [
            "1_init.sql",
            "01_init.sql",
            "001-init.sql",
            "001_Init.sql",
            "001_.sql",
            "0100_x.sql",
            "S0001_x.sql",
            "DM1_x.sql",
            "X001_x.sql",
            "001_init.SQL",
            "001_init",
            "000_zero.sql",
            "S000_zero.sql",
        ] {
            assert!(
                MigrationName::from_file_name(bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn order_is_category_then_number() {
        let mut names: Vec<_> = ["S001_a", "100_b", "002_c", "DM001_d", "001_e"]
            .iter()
            .map(|s| MigrationName::parse(s).unwrap())
            .collect();
        names.sort_by_key(|n| n.order_key());
        let got: Vec<_> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(got, ["001_e", "002_c", "100_b", "S001_a", "DM001_d"]);
    }

    #[test]
    fn hints_come_from_the_leading_comments() {
        use std::time::Duration;
        let h = Hints::parse(
            "-- offkit:no-transaction\n-- Backfill.\n\n-- offkit:statement-timeout 10m\n-- offkit:lock-timeout 30s\nUPDATE t SET a = 1;\n-- offkit:lock-timeout 1s\n",
        )
        .unwrap();
        assert_eq!(h.statement_timeout, Some(Duration::from_secs(600)));
        assert_eq!(h.lock_timeout, Some(Duration::from_secs(30)));
        assert_eq!(Hints::parse("SELECT 1;").unwrap(), Hints::default());
        for bad in [
            "-- offkit:statement-timout 1m\n",
            "-- offkit:statement-timeout soon\n",
            "-- offkit:lock-timeout 0s\n",
            "-- offkit:lock-timeout 1s\n-- offkit:lock-timeout 2s\n",
            "-- x\n-- offkit:no-transaction\n",
        ] {
            let e = Hints::parse(bad).unwrap_err();
            assert!(e.line >= 1, "{bad}: {e}");
        }
    }

    #[test]
    fn no_transaction_marker_on_first_line_only() {
        assert!(is_no_transaction(
            b"-- offkit:no-transaction\nCREATE INDEX CONCURRENTLY x ON t(a);"
        ));
        assert!(is_no_transaction(
            b"-- offkit:no-transaction  \r\nSELECT 1;"
        ));
        assert!(!is_no_transaction(b"SELECT 1;\n-- offkit:no-transaction\n"));
        assert!(!is_no_transaction(b"-- offkit:no-transactions\n"));
    }
}
