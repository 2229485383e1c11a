//! Validated names and values of the manifest: kit and channel names, versions, module and schema
//! identifiers, and RFC 3339 timestamps. Each type has one constructor that checks its rule, and
//! deserialising goes through it (as [`crate::kit::path::KitPath`] does for paths), so a value
//! that reached the rest of the code follows its rule.

use std::fmt;

use time::OffsetDateTime;

/// A value that breaks the rule of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: {rule}")]
pub struct NameError {
    /// What kind of value (`kit name`, `version`, …).
    pub what: &'static str,
    /// The value found (as given).
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

/// Serialises a validated text type as its `as_str()` and deserialises it through its checking
/// constructor, so that no value reaches the program without passing its rule.
macro_rules! serde_as_text {
    ($t:ty, $new:path) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                $new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_text;

/// Display, comparison and serde for a string newtype whose constructor validates.
macro_rules! string_type {
    ($t:ident) => {
        impl $t {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        serde_as_text!($t, $t::new);

        impl std::str::FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $t::new(s)
            }
        }
    };
}

/// A kit or channel name: `[a-z0-9][a-z0-9._-]*`, at most 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KitName(String);

impl KitName {
    /// The rule, for messages.
    pub const RULE: &'static str = "must match [a-z0-9][a-z0-9._-]* (at most 128 bytes)";

    /// Validates a kit or channel name.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok = s.len() <= 128
            && s.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(KitName(s.to_owned()))
        } else {
            Err(NameError {
                what: "kit or channel name",
                value: s.to_owned(),
                rule: Self::RULE,
            })
        }
    }
}
string_type!(KitName);

/// A module or schema identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's identifier
/// limit), so that it is the same identifier quoted or not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

impl Identifier {
    /// The rule, for messages.
    pub const RULE: &'static str = "must match [a-z_][a-z0-9_]* (at most 63 bytes)";

    /// Validates an identifier.
    pub fn new(s: &str) -> Result<Self, NameError> {
        if is_identifier(s) {
            Ok(Identifier(s.to_owned()))
        } else {
            Err(NameError {
                what: "identifier",
                value: s.to_owned(),
                rule: Self::RULE,
            })
        }
    }
}
string_type!(Identifier);

/// True when `s` follows [`Identifier`]'s rule.
pub fn is_identifier(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why a release team declares a migration destructive (kit.toml `[destructive]`): text for
/// operators and auditors, 1 to 500 characters, not blank, no control characters (it is shown
/// on terminals).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reason(String);

impl Reason {
    /// The rule, for messages.
    pub const RULE: &'static str =
        "must be 1 to 500 characters of text, not blank, without control characters";

    /// Validates a reason.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok =
            !s.trim().is_empty() && s.chars().count() <= 500 && !s.chars().any(char::is_control);
        if ok {
            Ok(Reason(s.to_owned()))
        } else {
            Err(NameError {
                what: "reason",
                value: crate::util::printable_short(s),
                rule: Self::RULE,
            })
        }
    }
}
string_type!(Reason);

/// A version: dot-separated numbers (at least one), then optional `-pre` and `+build` parts of
/// `[0-9A-Za-z.-]`; at most 128 bytes. Versions compare by their numeric core
/// ([`Version::compare`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// The rule, for messages.
    pub const RULE: &'static str =
        "must be dotted numbers with optional -pre/+build, e.g. 21.103.0";

    /// Validates a version.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let (core, rest) = match s.find(['-', '+']) {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        let core_ok = !core.is_empty()
            && core
                .split('.')
                .all(|p| !p.is_empty() && p.len() <= 19 && p.bytes().all(|b| b.is_ascii_digit()));
        let rest_ok = rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if s.len() <= 128 && core_ok && rest_ok {
            Ok(Version(s.to_owned()))
        } else {
            Err(NameError {
                what: "version",
                value: s.to_owned(),
                rule: Self::RULE,
            })
        }
    }

    fn core(&self) -> Vec<u64> {
        let end = self.0.find(['-', '+']).unwrap_or(self.0.len());
        // Every part has at most 19 digits (checked by `new`), so it fits in a u64.
        self.0[..end]
            .split('.')
            .map(|p| p.parse().unwrap_or(u64::MAX))
            .collect()
    }

    /// Compares by the numeric dotted core (missing parts are 0); pre-release and build parts are
    /// ignored.
    pub fn compare(&self, other: &Version) -> std::cmp::Ordering {
        let (mut a, mut b) = (self.core(), other.core());
        let n = a.len().max(b.len());
        a.resize(n, 0);
        b.resize(n, 0);
        a.cmp(&b)
    }
}
string_type!(Version);

/// Compares two version texts; `None` when either is not a valid [`Version`].
pub fn compare_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    Some(Version::new(a).ok()?.compare(&Version::new(b).ok()?))
}

/// An RFC 3339 timestamp that keeps its text, so a manifest re-serialises to the same bytes.
#[derive(Debug, Clone)]
pub struct Timestamp {
    text: String,
    at: OffsetDateTime,
}

impl Timestamp {
    /// Parses RFC 3339 text.
    pub fn new(s: &str) -> Result<Self, NameError> {
        match parse_time(s) {
            Some(at) => Ok(Timestamp {
                text: s.to_owned(),
                at,
            }),
            None => Err(NameError {
                what: "time",
                value: s.to_owned(),
                rule: "must be an RFC 3339 time, e.g. 2027-01-18T00:00:00Z",
            }),
        }
    }

    /// The time written as `YYYY-MM-DDThh:mm:ssZ` (UTC, whole seconds).
    pub fn utc(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let at = at.replace_nanosecond(0).unwrap_or(at);
        Timestamp {
            text: rfc3339(at),
            at,
        }
    }

    /// The instant.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole seconds since 1970 (0 for earlier times: tar mtimes cannot be negative).
    pub fn unix_seconds(&self) -> u64 {
        u64::try_from(self.at.unix_timestamp()).unwrap_or(0)
    }
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Timestamp {}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

serde_as_text!(Timestamp, Timestamp::new);

/// Parses an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_rules() {
        assert!(KitName::new("concelier-lnm").is_ok());
        assert!(KitName::new("a.b_c-1").is_ok());
        for bad in ["", "Concelier", "-x", "a b", "a/b", &"a".repeat(129)] {
            assert!(KitName::new(bad).is_err(), "{bad:?}");
        }
        assert!(Identifier::new("_core_1").is_ok());
        for bad in ["", "1core", "Core", "a-b", "a\"b", &"a".repeat(64)] {
            assert!(Identifier::new(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Identifier>("\"x y\"").is_err());
    }

    #[test]
    fn versions_validate_and_compare_numerically() {
        use std::cmp::Ordering::*;
        for ok in ["1", "21.103.0", "1.0.0-rc.1", "2.0+build.5"] {
            assert!(Version::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "x", "1..2", "1.a", "1.0-rc_1", "99999999999999999999"] {
            assert!(Version::new(bad).is_err(), "{bad}");
        }
        assert_eq!(compare_versions("21.103.0", "21.102.9"), Some(Greater));
        assert_eq!(compare_versions("1.10", "1.9.9"), Some(Greater));
        assert_eq!(compare_versions("1.0", "1.0.0"), Some(Equal));
        assert_eq!(compare_versions("1.0.0-rc.1", "1.0.0"), Some(Equal));
        assert_eq!(compare_versions("x", "1"), None);
    }

    #[test]
    fn timestamps_keep_their_text() {
        let t = Timestamp::new("2027-01-18T00:00:00Z").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2027-01-18T00:00:00Z\""
        );
        assert_eq!(t.unix_seconds(), 1_800_230_400);
        assert!(Timestamp::new("next year").is_err());
        let u = Timestamp::utc(t.at());
        assert_eq!(u.as_str(), "2027-01-18T00:00:00Z");
    }
}
