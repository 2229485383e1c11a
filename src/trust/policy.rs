//! Trust policies: which keys a site accepts, when, and how many must sign.
//!
//! `--trust` takes either public key files (each trusted, threshold 1 unless `--threshold`) or a
//! TOML policy file (docs/FORMAT.md, "Trust policy"):
//!
//! ```toml
//! threshold = 2                       # distinct trusted keys that must sign (default 1)
//! revoked = ["<keyid>"]               # signatures by these keys make a kit fail
//!
//! [[keys]]
//! name = "release-2026a"
//! public_key = "release-2026a.pub"    # relative to the policy file; or pem = """…"""
//! keyid = "<hex>"                     # optional pin, checked against the key
//! not_before = "2026-01-01T00:00:00Z" # optional validity window
//! not_after = "2027-01-01T00:00:00Z"
//! roles = ["kit"]                     # default ["kit"]; only "kit" keys sign kits
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::config::parse_time;
use crate::trust::keys::{KeyError, PublicKey};

/// The role a key needs to sign kits.
pub const KIT_ROLE: &str = "kit";

/// A key the site trusts.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// Human name (file stem or policy `name`).
    pub name: String,
    /// The key.
    pub key: PublicKey,
    /// Not valid before.
    pub not_before: Option<OffsetDateTime>,
    /// Not valid after.
    pub not_after: Option<OffsetDateTime>,
    /// Roles (only `kit` matters to verification).
    pub roles: Vec<String>,
}

impl TrustedKey {
    /// Why this key cannot sign a kit at `now`, if it cannot.
    pub fn unusable_at(&self, now: OffsetDateTime) -> Option<String> {
        if !self.roles.iter().any(|r| r == KIT_ROLE) {
            return Some(format!("key {} lacks the \"kit\" role", self.name));
        }
        if let Some(nb) = self.not_before
            && now < nb
        {
            return Some(format!("key {} is not valid before {nb}", self.name));
        }
        if let Some(na) = self.not_after
            && now > na
        {
            return Some(format!("key {} expired at {na}", self.name));
        }
        None
    }
}

/// The accepted keys, the threshold and the revoked keyids.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    /// Trusted keys.
    pub keys: Vec<TrustedKey>,
    /// Distinct trusted keys that must sign.
    pub threshold: usize,
    /// Revoked keyids.
    pub revoked: BTreeSet<String>,
}

/// Why a trust policy could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A key file failed to load.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The policy file is malformed.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No `--trust` was given.
    #[error("no trusted key: pass --trust KEY.pub or --trust POLICY.toml")]
    Empty,
    /// The threshold cannot be met or is zero.
    #[error("threshold {threshold} cannot be met by {keys} trusted key(s)")]
    Threshold {
        /// The threshold.
        threshold: usize,
        /// Usable keys.
        keys: usize,
    },
    /// `--threshold` below the policy's own.
    #[error(
        "--threshold {given} is below the policy's threshold {policy}; a policy can only be tightened on the command line"
    )]
    Weakened {
        /// Given on the command line.
        given: usize,
        /// The policy's.
        policy: usize,
    },
}

impl ExitCoded for PolicyError {
    fn exit(&self) -> Exit {
        match self {
            PolicyError::Key(k) => k.exit(),
            PolicyError::Empty | PolicyError::Weakened { .. } => Exit::Usage,
            _ => Exit::Key,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    threshold: Option<usize>,
    #[serde(default)]
    revoked: Vec<String>,
    #[serde(default)]
    keys: Vec<PolicyKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyKey {
    name: String,
    #[serde(default)]
    public_key: Option<PathBuf>,
    #[serde(default)]
    pem: Option<String>,
    #[serde(default)]
    keyid: Option<String>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

impl TrustPolicy {
    /// A policy trusting exactly these keys, threshold 1.
    pub fn from_keys(keys: Vec<(String, PublicKey)>) -> TrustPolicy {
        TrustPolicy {
            keys: keys
                .into_iter()
                .map(|(name, key)| TrustedKey {
                    name,
                    key,
                    not_before: None,
                    not_after: None,
                    roles: vec![KIT_ROLE.to_owned()],
                })
                .collect(),
            threshold: 1,
            revoked: BTreeSet::new(),
        }
    }

    /// Loads `--trust` arguments: PEM public keys and/or TOML policies, merged; then applies a
    /// `--threshold` (which may only raise the policy's).
    pub fn load(paths: &[PathBuf], threshold: Option<usize>) -> Result<TrustPolicy, PolicyError> {
        if paths.is_empty() {
            return Err(PolicyError::Empty);
        }
        let mut merged = TrustPolicy::from_keys(Vec::new());
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            if text.trim_start().starts_with("-----BEGIN") {
                let key = PublicKey::from_pem(&text, &path.display().to_string())?;
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                merged
                    .keys
                    .extend(TrustPolicy::from_keys(vec![(name, key)]).keys);
            } else {
                let p = Self::parse_file(&text, path)?;
                merged.threshold = merged.threshold.max(p.threshold);
                merged.revoked.extend(p.revoked);
                merged.keys.extend(p.keys);
            }
        }
        if let Some(t) = threshold {
            if t < merged.threshold {
                return Err(PolicyError::Weakened {
                    given: t,
                    policy: merged.threshold,
                });
            }
            merged.threshold = t;
        }
        let mut ids = BTreeSet::new();
        merged.keys.retain(|k| ids.insert(k.key.keyid().to_owned()));
        let usable = merged
            .keys
            .iter()
            .filter(|k| !merged.revoked.contains(k.key.keyid()))
            .count();
        if merged.threshold == 0 || merged.threshold > usable {
            return Err(PolicyError::Threshold {
                threshold: merged.threshold,
                keys: usable,
            });
        }
        Ok(merged)
    }

    fn parse_file(text: &str, path: &Path) -> Result<TrustPolicy, PolicyError> {
        let shown = path.display().to_string();
        let bad = |message: String| PolicyError::Malformed {
            path: shown.clone(),
            message,
        };
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut keys = Vec::new();
        for k in file.keys {
            let key = match (&k.public_key, &k.pem) {
                (Some(p), None) => PublicKey::load(&base.join(p))?,
                (None, Some(pem)) => PublicKey::from_pem(pem, &format!("{shown}: key {}", k.name))?,
                _ => {
                    return Err(bad(format!(
                        "key {}: give exactly one of public_key or pem",
                        k.name
                    )));
                }
            };
            if let Some(pin) = &k.keyid
                && pin != key.keyid()
            {
                return Err(bad(format!(
                    "key {}: keyid {pin} does not match the key ({})",
                    k.name,
                    key.keyid()
                )));
            }
            let time =
                |v: &Option<String>, field: &str| -> Result<Option<OffsetDateTime>, PolicyError> {
                    v.as_deref()
                        .map(|s| {
                            parse_time(s).ok_or_else(|| {
                                bad(format!("key {}: {field} {s:?} is not RFC 3339", k.name))
                            })
                        })
                        .transpose()
                };
            keys.push(TrustedKey {
                not_before: time(&k.not_before, "not_before")?,
                not_after: time(&k.not_after, "not_after")?,
                roles: k.roles.clone().unwrap_or_else(|| vec![KIT_ROLE.to_owned()]),
                name: k.name,
                key,
            });
        }
        Ok(TrustPolicy {
            keys,
            threshold: file.threshold.unwrap_or(1),
            revoked: file.revoked.into_iter().collect(),
        })
    }

    /// The trusted key with this keyid.
    pub fn key(&self, keyid: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key.keyid() == keyid)
    }
}
