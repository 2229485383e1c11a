//! Trust policies: which keys a site accepts, when, and how many must sign.
//!
//! `--trust` takes public key files (each trusted, threshold 1 unless `--threshold`), a site trust
//! store (a folder, [`crate::trust::store`]: its newest version's kit keys and threshold, each key
//! valid until that version expires) or a TOML policy file (docs/FORMAT.md, "Trust policy"):
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
//!
//! [sigstore]                          # Sigstore bundles in kits ([`crate::trust::sigstore`])
//! trusted_root = "trusted_root.json"  # pinned; relative to the policy file
//!
//! [[sigstore.identities]]             # who may sign which kinds of attestation
//! kinds = ["sbom"]                    # or ["*"]
//! san = "release@example.com"         # or san_pattern = "https://github.com/acme/*" (* only)
//! issuer = "https://accounts.google.com"
//!
//! [[sigstore.require]]                # attestations every kit must carry, verified
//! kind = "sbom"
//! subject = "sboms/runner.spdx.json"  # or digest = "sha256:…"; or neither (any subject)
//! ```

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::names::parse_time;
use crate::trust::keys::{KeyError, KeyId, PublicKey};
use crate::trust::sigstore::{RawSigstore, SigstorePolicy};
use crate::trust::store::{StoreError, TrustStore};

/// The role a key needs to sign kits.
pub const KIT_ROLE: &str = "kit";

/// A key the site trusts: its name, the key, when it may sign, and its roles. Built only through
/// [`TrustedKey::new`] and [`TrustedKey::valid_between`], which keep the window ordered.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    name: String,
    key: PublicKey,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    roles: BTreeSet<String>,
}

impl TrustedKey {
    /// A key trusted to sign kits at any time.
    pub fn new(name: impl Into<String>, key: PublicKey) -> TrustedKey {
        TrustedKey {
            name: name.into(),
            key,
            not_before: None,
            not_after: None,
            roles: BTreeSet::from([KIT_ROLE.to_owned()]),
        }
    }

    /// Limits when the key may sign; `not_before` must come before `not_after`.
    pub fn valid_between(
        mut self,
        not_before: Option<OffsetDateTime>,
        not_after: Option<OffsetDateTime>,
    ) -> Result<TrustedKey, PolicyError> {
        if let (Some(nb), Some(na)) = (not_before, not_after)
            && nb >= na
        {
            return Err(PolicyError::Invalid(format!(
                "key {}: not_before {nb} is not before not_after {na}",
                self.name
            )));
        }
        self.not_before = not_before;
        self.not_after = not_after;
        Ok(self)
    }

    /// Replaces the key's roles.
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = String>) -> TrustedKey {
        self.roles = roles.into_iter().collect();
        self
    }

    /// Its name in the policy.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Its keyid.
    pub fn keyid(&self) -> &KeyId {
        self.key.keyid()
    }

    /// Whether it has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Why this key cannot sign a kit at `now`, if it cannot.
    pub fn unusable_at(&self, now: OffsetDateTime) -> Option<String> {
        if !self.has_role(KIT_ROLE) {
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

/// The accepted keys, the threshold and the revoked keyids. Only [`TrustPolicy::new`] (and the
/// loaders built on it) make one, so every policy has a threshold of at least one that its
/// usable keys can meet, distinct keys, and normalised revoked keyids.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    keys: Vec<TrustedKey>,
    threshold: NonZeroUsize,
    revoked: BTreeSet<KeyId>,
    store: Option<Box<StoreSource>>,
    sigstore: Option<Arc<SigstorePolicy>>,
}

/// A policy's trust store (`--trust DIR`), and what the other `--trust` arguments contribute,
/// so that the policy can be remade from a newer version a kit carries.
#[derive(Debug, Clone)]
struct StoreSource {
    store: TrustStore,
    others: Vec<TrustedKey>,
    others_threshold: usize,
}

/// Why a trust policy could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A key file failed to load.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A trust store (`--trust DIR`) could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The policy file is malformed.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A key entry or value breaks a rule (window order, malformed keyid).
    #[error("{0}")]
    Invalid(String),
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
            PolicyError::Store(s) => s.exit(),
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
    #[serde(default)]
    sigstore: Option<RawSigstore>,
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
    /// A policy: `keys` (a key listed twice counts once), at least `threshold` distinct keys must
    /// sign, and signatures by `revoked` keys refuse a kit. Refused when the keys that are not
    /// revoked and may sign kits cannot meet the threshold.
    pub fn new(
        keys: Vec<TrustedKey>,
        threshold: NonZeroUsize,
        revoked: BTreeSet<KeyId>,
    ) -> Result<TrustPolicy, PolicyError> {
        let mut ids = BTreeSet::new();
        let keys: Vec<TrustedKey> = keys
            .into_iter()
            .filter(|k| ids.insert(k.keyid().clone()))
            .collect();
        let usable = keys
            .iter()
            .filter(|k| !revoked.contains(k.keyid()) && k.has_role(KIT_ROLE))
            .count();
        if threshold.get() > usable {
            return Err(PolicyError::Threshold {
                threshold: threshold.get(),
                keys: usable,
            });
        }
        Ok(TrustPolicy {
            keys,
            threshold,
            revoked,
            store: None,
            sigstore: None,
        })
    }

    /// A policy trusting exactly these keys, threshold 1.
    pub fn from_keys(keys: Vec<(String, PublicKey)>) -> Result<TrustPolicy, PolicyError> {
        Self::new(
            keys.into_iter()
                .map(|(name, key)| TrustedKey::new(name, key))
                .collect(),
            NonZeroUsize::MIN,
            BTreeSet::new(),
        )
    }

    /// Loads `--trust` arguments: PEM public keys and/or TOML policies, merged (the highest
    /// threshold, every key, every revocation); then applies a `--threshold`, which may only
    /// raise the policy's.
    pub fn load(paths: &[PathBuf], threshold: Option<usize>) -> Result<TrustPolicy, PolicyError> {
        if paths.is_empty() {
            return Err(PolicyError::Empty);
        }
        let mut keys = Vec::new();
        let mut revoked = BTreeSet::new();
        let mut merged_threshold = 1usize;
        let mut store: Option<TrustStore> = None;
        let mut sigstore: Option<(SigstorePolicy, &Path)> = None;
        for path in paths {
            if path.is_dir() {
                if store.is_some() {
                    return Err(PolicyError::Invalid(
                        "more than one trust store given; a site has one".into(),
                    ));
                }
                store = Some(TrustStore::open(path)?);
                continue;
            }
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
                keys.push(TrustedKey::new(name, key));
            } else {
                let p = parse_file(&text, path)?;
                if let Some(s) = p.sigstore {
                    if let Some((_, first)) = &sigstore {
                        return Err(PolicyError::Invalid(format!(
                            "{} and {} both have a [sigstore] table; a site pins one",
                            first.display(),
                            path.display()
                        )));
                    }
                    sigstore = Some((s, path));
                }
                merged_threshold = merged_threshold.max(p.threshold);
                revoked.extend(p.revoked);
                keys.extend(p.keys);
            }
        }
        let policy_threshold = merged_threshold.max(
            store
                .as_ref()
                .map_or(1, |s| s.current().kit_role().threshold().get()),
        );
        let mut others_threshold = merged_threshold;
        if let Some(t) = threshold {
            if t < policy_threshold {
                return Err(PolicyError::Weakened {
                    given: t,
                    policy: policy_threshold,
                });
            }
            others_threshold = t;
        }
        let mut policy = match store {
            None => {
                let threshold =
                    NonZeroUsize::new(others_threshold).ok_or(PolicyError::Threshold {
                        threshold: 0,
                        keys: keys.len(),
                    })?;
                Self::new(keys, threshold, revoked)?
            }
            Some(store) => Self::from_store(store, keys, others_threshold, revoked)?,
        };
        policy.sigstore = sigstore.map(|(s, _)| Arc::new(s));
        Ok(policy)
    }

    /// The policy of `store`'s newest version merged with the `others` keys and threshold.
    fn from_store(
        store: TrustStore,
        others: Vec<TrustedKey>,
        others_threshold: usize,
        revoked: BTreeSet<KeyId>,
    ) -> Result<TrustPolicy, PolicyError> {
        let current = store.current();
        let mut keys = others.clone();
        keys.extend(current.kit_keys());
        let threshold = others_threshold.max(current.kit_role().threshold().get());
        let threshold = NonZeroUsize::new(threshold).ok_or(PolicyError::Threshold {
            threshold: 0,
            keys: keys.len(),
        })?;
        let mut policy = Self::new(keys, threshold, revoked)?;
        policy.store = Some(Box::new(StoreSource {
            store,
            others,
            others_threshold,
        }));
        Ok(policy)
    }

    /// The policy once the trust versions a kit carries (`(version, bytes)`, consecutive) are
    /// walked from this policy's trust store, in memory, and the versions that were new; `None`
    /// when the policy has no trust store or the kit carries nothing newer. A carried version
    /// that does not follow the store (forged, skipped, another version under a number the store
    /// holds) refuses the kit; versions before the store's first are passed over.
    pub fn with_carried(
        &self,
        carried: &[(u64, Vec<u8>)],
    ) -> Result<Option<(TrustPolicy, Vec<u64>)>, PolicyError> {
        let Some(src) = &self.store else {
            return Ok(None);
        };
        let mut chain = src.store.clone();
        let walked = chain.take_carried(carried, false)?;
        if walked.is_empty() {
            return Ok(None);
        }
        let mut policy = Self::from_store(
            chain,
            src.others.clone(),
            src.others_threshold,
            self.revoked.clone(),
        )?;
        policy.sigstore = self.sigstore.clone();
        Ok(Some((policy, walked)))
    }

    /// Adds the trust versions a verified kit carries to this policy's trust store (when it has
    /// one), each checked again against the store as it is on disk; returns the versions added.
    pub fn persist_carried(&self, carried: &[(u64, Vec<u8>)]) -> Result<Vec<u64>, PolicyError> {
        match &self.store {
            None => Ok(Vec::new()),
            Some(src) => Ok(TrustStore::open(src.store.path())?.take_carried(carried, true)?),
        }
    }

    /// What the site pins for Sigstore bundles, when its policy has a `[sigstore]` table.
    pub fn sigstore(&self) -> Option<&Arc<SigstorePolicy>> {
        self.sigstore.as_ref()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Distinct trusted keys that must sign.
    pub fn threshold(&self) -> NonZeroUsize {
        self.threshold
    }

    /// Whether signatures by this key refuse a kit.
    pub fn is_revoked(&self, keyid: &KeyId) -> bool {
        self.revoked.contains(keyid)
    }

    /// The trusted key with this keyid.
    pub fn key(&self, keyid: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.keyid() == keyid)
    }
}

/// What one policy file says, before merging.
struct FilePolicy {
    keys: Vec<TrustedKey>,
    threshold: usize,
    revoked: Vec<KeyId>,
    sigstore: Option<SigstorePolicy>,
}

fn parse_file(text: &str, path: &Path) -> Result<FilePolicy, PolicyError> {
    let shown = path.display().to_string();
    let bad = |message: String| PolicyError::Malformed {
        path: shown.clone(),
        message,
    };
    let file: PolicyFile =
        toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_owned()))?;
    if file.threshold == Some(0) {
        return Err(bad(
            "threshold = 0 would accept unsigned kits; use 1 or more".into(),
        ));
    }
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
        if let Some(pin) = &k.keyid {
            let pin = KeyId::parse(pin).map_err(|e| bad(format!("key {}: {e}", k.name)))?;
            if &pin != key.keyid() {
                return Err(bad(format!(
                    "key {}: keyid {pin} does not match the key ({})",
                    k.name,
                    key.keyid()
                )));
            }
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
        let (nb, na) = (
            time(&k.not_before, "not_before")?,
            time(&k.not_after, "not_after")?,
        );
        let mut trusted = TrustedKey::new(k.name.clone(), key)
            .valid_between(nb, na)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(roles) = k.roles {
            trusted = trusted.with_roles(roles);
        }
        keys.push(trusted);
    }
    let revoked = file
        .revoked
        .iter()
        .map(|r| KeyId::parse(r).map_err(|e| bad(format!("revoked: {e}"))))
        .collect::<Result<_, _>>()?;
    let sigstore = file
        .sigstore
        .map(|raw| SigstorePolicy::from_raw(raw, base))
        .transpose()
        .map_err(bad)?;
    Ok(FilePolicy {
        keys,
        threshold: file.threshold.unwrap_or(1),
        revoked,
        sigstore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::keys::SecretKey;

    struct Dir {
        dir: tempfile::TempDir,
    }

    impl Dir {
        fn new() -> Dir {
            Dir {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn key(&self, name: &str) -> SecretKey {
            let k = SecretKey::generate().unwrap();
            std::fs::write(
                self.dir.path().join(format!("{name}.pub")),
                k.public().to_pem(),
            )
            .unwrap();
            k
        }

        fn policy(&self, text: &str) -> Result<TrustPolicy, PolicyError> {
            let p = self.dir.path().join("policy.toml");
            std::fs::write(&p, text).unwrap();
            TrustPolicy::load(&[p], None)
        }
    }

    fn entry(name: &str) -> String {
        format!("[[keys]]\nname = \"{name}\"\npublic_key = \"{name}.pub\"\n")
    }

    #[test]
    fn a_policy_needs_a_threshold_of_at_least_one_that_its_keys_can_meet() {
        let d = Dir::new();
        d.key("a");
        d.key("b");
        let two = format!("{}{}", entry("a"), entry("b"));
        assert!(matches!(
            d.policy(&format!("threshold = 0\n{two}")),
            Err(PolicyError::Malformed { .. })
        ));
        assert!(matches!(
            d.policy(&format!("threshold = 3\n{two}")),
            Err(PolicyError::Threshold {
                threshold: 3,
                keys: 2
            })
        ));
        let p = d.policy(&format!("threshold = 2\n{two}")).unwrap();
        assert_eq!(p.threshold().get(), 2);
        // The command line can only raise it.
        let path = d.dir.path().join("policy.toml");
        assert!(matches!(
            TrustPolicy::load(std::slice::from_ref(&path), Some(1)),
            Err(PolicyError::Weakened { .. })
        ));
        assert!(matches!(
            TrustPolicy::load(std::slice::from_ref(&path), Some(0)),
            Err(PolicyError::Weakened { .. })
        ));
        assert!(TrustPolicy::load(&[path], Some(2)).is_ok());
        // No keys at all is not a policy.
        assert!(matches!(d.policy(""), Err(PolicyError::Threshold { .. })));
    }

    #[test]
    fn revoked_keyids_are_validated_normalised_and_leave_enough_keys() {
        let d = Dir::new();
        let a = d.key("a");
        d.key("b");
        let two = format!("{}{}", entry("a"), entry("b"));
        let upper = a.keyid().as_str().to_uppercase();
        for written in [upper.clone(), format!("sha256:{}", a.keyid())] {
            let p = d
                .policy(&format!("revoked = [\"{written}\"]\n{two}"))
                .unwrap();
            assert!(p.is_revoked(a.keyid()), "{written}");
        }
        for bad in [format!("{} ", a.keyid()), "deadbeef".to_owned()] {
            let err = d
                .policy(&format!("revoked = [\"{bad}\"]\n{two}"))
                .unwrap_err();
            assert!(
                matches!(err, PolicyError::Malformed { .. }),
                "{bad:?}: {err}"
            );
        }
        // Revoking one of two keys leaves one: a threshold of two cannot be met.
        assert!(matches!(
            d.policy(&format!("threshold = 2\nrevoked = [\"{upper}\"]\n{two}")),
            Err(PolicyError::Threshold { keys: 1, .. })
        ));
    }

    #[test]
    fn validity_windows_must_be_ordered_and_pins_must_match() {
        let d = Dir::new();
        let a = d.key("a");
        let window = |nb: &str, na: &str| {
            format!(
                "{}not_before = \"{nb}\"\nnot_after = \"{na}\"\n",
                entry("a")
            )
        };
        assert!(
            d.policy(&window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"))
                .is_ok()
        );
        assert!(matches!(
            d.policy(&window("2027-01-01T00:00:00Z", "2026-01-01T00:00:00Z")),
            Err(PolicyError::Malformed { .. })
        ));
        let pinned = |id: &str| format!("{}keyid = \"{id}\"\n", entry("a"));
        assert!(
            d.policy(&pinned(&a.keyid().as_str().to_uppercase()))
                .is_ok()
        );
        assert!(d.policy(&pinned(&"0".repeat(64))).is_err());
        assert!(d.policy(&pinned("not a keyid")).is_err());
    }

    #[test]
    fn the_same_key_twice_counts_once() {
        let d = Dir::new();
        let a = d.key("a");
        let p = TrustPolicy::new(
            vec![
                TrustedKey::new("one", a.public().clone()),
                TrustedKey::new("two", a.public().clone()),
            ],
            NonZeroUsize::MIN,
            BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(p.keys().len(), 1);
        assert!(
            TrustPolicy::new(
                vec![TrustedKey::new("one", a.public().clone())],
                NonZeroUsize::new(2).unwrap(),
                BTreeSet::new(),
            )
            .is_err()
        );
    }
}
