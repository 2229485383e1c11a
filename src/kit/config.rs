//! `kit.toml`: what a release engineer writes about a kit that its folders cannot say.
//!
//! The minimal file names the kit, its channel and sequence, and the database kind it targets;
//! modules are the folders under `migrations/` and need a `[modules.<name>]` table only to map to
//! a schema of another name. Unknown keys are refused so that a typo cannot silently drop a
//! setting. This module parses and checks values; it does not walk the source folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The database kind a kit targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// PostgreSQL (what sites run).
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
    /// Portable SQL that runs on either driver.
    Any,
}

impl Target {
    /// The lowercase name used in kit.toml and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Postgres => "postgres",
            Target::Sqlite => "sqlite",
            Target::Any => "any",
        }
    }
}

/// A dependency on an earlier kit having been applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The kit name.
    pub name: String,
    /// The lowest version of that kit that must have been applied.
    pub min_version: String,
}

/// Per-module settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// The database schema the module's migrations run in (default: the module name).
    pub schema: Option<String>,
}

/// The parsed `kit.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitConfig {
    /// Kit name, `[a-z0-9][a-z0-9._-]*`.
    pub name: String,
    /// Kit version (dotted numbers with optional `-pre`/`+build`).
    pub version: String,
    /// Anti-downgrade channel.
    pub channel: String,
    /// Monotonic sequence within the channel.
    pub sequence: u64,
    /// The database kind the migrations are written for.
    pub target: Target,
    /// Optional human description.
    #[serde(default)]
    pub description: Option<String>,
    /// Optional RFC 3339 creation time, used when `SOURCE_DATE_EPOCH` is not set.
    #[serde(default)]
    pub created: Option<String>,
    /// Optional RFC 3339 expiry time after which sites refuse the kit.
    #[serde(default)]
    pub expires: Option<String>,
    /// Kits that must have been applied before this one.
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Per-module settings.
    #[serde(default)]
    pub modules: BTreeMap<String, ModuleConfig>,
}

/// Why `kit.toml` was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value breaks its rule.
    #[error("{path}: {field} = {value:?}: {rule}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        field: String,
        /// The value found.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
}

/// True for names of kits and channels: `[a-z0-9][a-z0-9._-]*`, at most 128 bytes.
pub fn is_valid_name(s: &str) -> bool {
    s.len() <= 128
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// True for module and schema identifiers: `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's
/// identifier limit).
pub fn is_valid_identifier(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// True for versions: dot-separated numbers (at least one), then optional `-pre` and `+build`
/// parts of `[0-9A-Za-z.-]`.
pub fn is_valid_version(s: &str) -> bool {
    let (core, rest) = match s.find(['-', '+']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let core_ok = !core.is_empty()
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let rest_ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    s.len() <= 128 && core_ok && rest_ok
}

/// Compares two versions by their numeric dotted core (missing parts are 0); pre-release and
/// build parts are ignored. `None` when either is not a valid version.
pub fn compare_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    fn core(v: &str) -> Option<Vec<u64>> {
        if !is_valid_version(v) {
            return None;
        }
        let end = v.find(['-', '+']).unwrap_or(v.len());
        v[..end].split('.').map(|p| p.parse().ok()).collect()
    }
    let (mut a, mut b) = (core(a)?, core(b)?);
    let n = a.len().max(b.len());
    a.resize(n, 0);
    b.resize(n, 0);
    Some(a.cmp(&b))
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

impl KitConfig {
    /// Reads and checks `dir/kit.toml`.
    pub fn load(dir: &Path) -> Result<KitConfig, ConfigError> {
        let path = dir.join("kit.toml");
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks the text of a kit.toml; `path` is used in messages.
    pub fn parse(text: &str, path: &str) -> Result<KitConfig, ConfigError> {
        let config: KitConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |field: &str, value: &str, rule: &'static str| ConfigError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
            rule,
        };
        if !is_valid_name(&self.name) {
            return Err(bad("name", &self.name, "must match [a-z0-9][a-z0-9._-]*"));
        }
        if !is_valid_version(&self.version) {
            return Err(bad(
                "version",
                &self.version,
                "must be dotted numbers, e.g. 21.103.0",
            ));
        }
        if !is_valid_name(&self.channel) {
            return Err(bad(
                "channel",
                &self.channel,
                "must match [a-z0-9][a-z0-9._-]*",
            ));
        }
        for (field, value) in [("created", &self.created), ("expires", &self.expires)] {
            if let Some(v) = value
                && parse_time(v).is_none()
            {
                return Err(bad(
                    field,
                    v,
                    "must be an RFC 3339 time, e.g. 2027-01-18T00:00:00Z",
                ));
            }
        }
        for r in &self.requires {
            if !is_valid_name(&r.name) {
                return Err(bad(
                    "requires.name",
                    &r.name,
                    "must match [a-z0-9][a-z0-9._-]*",
                ));
            }
            if !is_valid_version(&r.min_version) {
                return Err(bad(
                    "requires.min_version",
                    &r.min_version,
                    "must be dotted numbers",
                ));
            }
        }
        for (module, settings) in &self.modules {
            if !is_valid_identifier(module) {
                return Err(bad(
                    "modules",
                    module,
                    "module names must match [a-z_][a-z0-9_]*",
                ));
            }
            if let Some(schema) = &settings.schema
                && !is_valid_identifier(schema)
            {
                return Err(bad(
                    "schema",
                    schema,
                    "schema names must match [a-z_][a-z0-9_]*",
                ));
            }
        }
        Ok(())
    }

    /// The schema of a module: `[modules.<name>] schema`, else the module name.
    pub fn schema_of(&self, module: &str) -> String {
        self.modules
            .get(module)
            .and_then(|m| m.schema.clone())
            .unwrap_or_else(|| module.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "concelier-lnm"
version = "21.103.0"
channel = "concelier"
sequence = 3
target = "postgres"
"#;

    #[test]
    fn minimal_config_parses() {
        let c = KitConfig::parse(MINIMAL, "kit.toml").unwrap();
        assert_eq!(c.name, "concelier-lnm");
        assert_eq!(c.target, Target::Postgres);
        assert_eq!(c.schema_of("concelier"), "concelier");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let typo = format!("{MINIMAL}expiry = \"2027-01-01T00:00:00Z\"\n");
        assert!(matches!(
            KitConfig::parse(&typo, "k"),
            Err(ConfigError::Parse { .. })
        ));
        let bad_time = format!("{MINIMAL}expires = \"next year\"\n");
        assert!(matches!(
            KitConfig::parse(&bad_time, "k"),
            Err(ConfigError::Invalid { field, .. }) if field == "expires"
        ));
        let bad_name = MINIMAL.replace("concelier-lnm", "Concelier LNM");
        assert!(matches!(
            KitConfig::parse(&bad_name, "k"),
            Err(ConfigError::Invalid { field, .. }) if field == "name"
        ));
    }

    #[test]
    fn module_schema_override() {
        let text = format!("{MINIMAL}[modules.concelier]\nschema = \"lnm\"\n");
        let c = KitConfig::parse(&text, "k").unwrap();
        assert_eq!(c.schema_of("concelier"), "lnm");
    }

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("21.103.0", "21.102.9"), Some(Greater));
        assert_eq!(compare_versions("1.10", "1.9.9"), Some(Greater));
        assert_eq!(compare_versions("1.0", "1.0.0"), Some(Equal));
        assert_eq!(compare_versions("x", "1"), None);
    }
}
