//! Sigstore bundles, verified offline against a trusted root the site pins.
//!
//! A kit declares its bundles in the signed manifest ([`SigstoreEntry`]): each is a file under
//! `attestations/` and names what it vouches for — another file of the kit, or an artifact outside
//! it by SHA-256 — and a kind (`sbom`, `image`, …). A site's trust policy pins a Sigstore
//! `trusted_root.json` (Fulcio CAs, Rekor and CT log keys, timestamp authorities) and the signer
//! identities it accepts per kind ([`SigstorePolicy`]); verification touches no network.
//!
//! Each bundle is checked by the `sigstore-verify` crate: the certificate chains to a pinned
//! Fulcio CA and is judged at the time the log or a timestamp authority vouches for (Fulcio
//! certificates live ten minutes), its SCT; the log entry's signed checkpoint, inclusion proof and
//! promise, and its consistency with the bundle (CVE-2022-36056); the signature over the artifact
//! or the DSSE payload; and the in-toto subject against the artifact's digest. The artifact is
//! given by digest: a kit file's signed SHA-256, which the payload pass has just confirmed. Then
//! offkit matches the certificate's identity (SAN) and OIDC issuer against the policy's rules for
//! the bundle's kind, and checks the policy's required attestations are all present and verified.
//!
//! Bundles are signed payload: they are parsed only after the kit is authenticated, and each is at
//! most [`MAX_SIGSTORE_BUNDLE_BYTES`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Bundle, Sha256Hash};
use sigstore_verify::{VerificationPolicy, Verifier};

use crate::kit::digest::Sha256Hex;
use crate::kit::manifest::{MAX_SIGSTORE_BUNDLE_BYTES, Manifest, SigstoreEntry};
use crate::kit::names::KitName;
use crate::kit::path::KitPath;
use crate::trust::failure::{Failure, FailureKind as K};

/// The most bytes of a library message shown: they may quote the bundle.
const MAX_MESSAGE: usize = 300;

/// A Sigstore bundle parsed, or why it is not one.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, String> {
    if bytes.len() as u64 > MAX_SIGSTORE_BUNDLE_BYTES {
        return Err(format!(
            "{} bytes, more than a bundle may be ({MAX_SIGSTORE_BUNDLE_BYTES})",
            bytes.len()
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    Bundle::from_json(text).map_err(|e| shown(&e.to_string()))
}

/// A message from the Sigstore library, made safe to print: control characters escaped, bounded.
fn shown(message: &str) -> String {
    let short: String = message.chars().take(MAX_MESSAGE).collect();
    let mut out = crate::util::escape_controls(&short);
    if message.chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}

/// How a rule matches a certificate's identity (its subject alternative name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanMatch {
    /// Exactly this text.
    Exact(String),
    /// A pattern in which `*` stands for any run of characters (and nothing else is special):
    /// `https://github.com/acme/release/.github/workflows/*.yml@refs/tags/v*`.
    Glob(String),
}

impl SanMatch {
    /// Whether `san` matches.
    pub fn matches(&self, san: &str) -> bool {
        match self {
            SanMatch::Exact(e) => e == san,
            SanMatch::Glob(p) => glob_match(p, san),
        }
    }
}

impl std::fmt::Display for SanMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SanMatch::Exact(e) => f.write_str(e),
            SanMatch::Glob(p) => write!(f, "{p} (pattern)"),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself; the whole text must match.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A signer the site accepts for some kinds of attestation.
#[derive(Debug, Clone)]
pub struct IdentityRule {
    /// The kinds it may sign; `*` alone stands for every kind.
    pub kinds: Vec<String>,
    /// The certificate identity.
    pub san: SanMatch,
    /// The OIDC issuer, exactly.
    pub issuer: String,
}

impl IdentityRule {
    fn covers(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == "*" || k == kind)
    }
}

/// An attestation the site requires of every kit: a verified bundle of this kind about this kit
/// file or artifact digest.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The kind.
    pub kind: KitName,
    /// The kit file it must be about.
    pub subject: Option<KitPath>,
    /// Or the artifact digest.
    pub digest: Option<Sha256Hex>,
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.subject, &self.digest) {
            (Some(s), _) => write!(f, "a {} attestation for {s}", self.kind),
            (None, Some(d)) => write!(f, "a {} attestation for sha256:{d}", self.kind),
            (None, None) => write!(f, "a {} attestation", self.kind),
        }
    }
}

/// What a site's trust policy says of Sigstore: the pinned trusted root, the accepted identities
/// and the required attestations (docs/FORMAT.md, "Trust policy").
pub struct SigstorePolicy {
    root: PathBuf,
    verifier: Verifier,
    identities: Vec<IdentityRule>,
    require: Vec<Requirement>,
}

impl std::fmt::Debug for SigstorePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigstorePolicy")
            .field("root", &self.root)
            .field("identities", &self.identities)
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

/// The `[sigstore]` table of a policy file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigstore {
    trusted_root: PathBuf,
    #[serde(default)]
    identities: Vec<RawIdentity>,
    #[serde(default)]
    require: Vec<RawRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    kinds: Vec<String>,
    #[serde(default)]
    san: Option<String>,
    #[serde(default)]
    san_pattern: Option<String>,
    issuer: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    kind: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

impl SigstorePolicy {
    /// The policy a `[sigstore]` table describes; `base` is the policy file's folder (the trusted
    /// root's path is relative to it). The trusted root is loaded and its keys and certificates
    /// checked now, so a bad one is the site's error, not a kit's.
    pub(crate) fn from_raw(raw: RawSigstore, base: &Path) -> Result<SigstorePolicy, String> {
        let root = base.join(&raw.trusted_root);
        let text = std::fs::read_to_string(&root)
            .map_err(|e| format!("sigstore.trusted_root {}: {e}", root.display()))?;
        let trusted = TrustedRoot::from_json(&text).map_err(|e| {
            format!(
                "sigstore.trusted_root {}: not a Sigstore trusted root: {}",
                root.display(),
                shown(&e.to_string())
            )
        })?;
        let verifier = Verifier::new(&trusted).map_err(|e| {
            format!(
                "sigstore.trusted_root {}: {}",
                root.display(),
                shown(&e.to_string())
            )
        })?;
        let mut identities = Vec::new();
        for (i, r) in raw.identities.into_iter().enumerate() {
            let at = format!("sigstore.identities[{i}]");
            if r.kinds.is_empty() {
                return Err(format!(
                    "{at}: kinds is empty; name the kinds it may sign, or [\"*\"]"
                ));
            }
            for k in &r.kinds {
                if k != "*" && KitName::new(k).is_err() {
                    return Err(format!(
                        "{at}: kind {:?} {}",
                        crate::util::printable_short(k),
                        KitName::RULE
                    ));
                }
            }
            let san = match (r.san, r.san_pattern) {
                (Some(s), None) if !s.is_empty() => SanMatch::Exact(s),
                (None, Some(p)) if !p.is_empty() && p.chars().any(|c| c != '*') => {
                    SanMatch::Glob(p)
                }
                _ => {
                    return Err(format!(
                        "{at}: give exactly one of san or san_pattern (a pattern must not be only *)"
                    ));
                }
            };
            if r.issuer.is_empty() {
                return Err(format!("{at}: issuer is empty"));
            }
            identities.push(IdentityRule {
                kinds: r.kinds,
                san,
                issuer: r.issuer,
            });
        }
        let mut require = Vec::new();
        for (i, r) in raw.require.into_iter().enumerate() {
            let at = format!("sigstore.require[{i}]");
            let kind = KitName::new(&r.kind).map_err(|e| format!("{at}: {e}"))?;
            let subject = r
                .subject
                .as_deref()
                .map(|s| KitPath::new(s).map_err(|e| format!("{at}: subject: {e}")))
                .transpose()?;
            let digest = r
                .digest
                .as_deref()
                .map(|d| {
                    Sha256Hex::new(d.strip_prefix("sha256:").unwrap_or(d))
                        .map_err(|e| format!("{at}: digest: {e}"))
                })
                .transpose()?;
            if subject.is_some() && digest.is_some() {
                return Err(format!("{at}: give at most one of subject or digest"));
            }
            if !identities.iter().any(|rule| rule.covers(kind.as_str())) {
                return Err(format!(
                    "{at}: no identity in sigstore.identities may sign kind {kind}, so it could never be met"
                ));
            }
            require.push(Requirement {
                kind,
                subject,
                digest,
            });
        }
        Ok(SigstorePolicy {
            root,
            verifier,
            identities,
            require,
        })
    }

    /// The pinned trusted root's file.
    pub fn trusted_root(&self) -> &Path {
        &self.root
    }

    /// The required attestations.
    pub fn requirements(&self) -> &[Requirement] {
        &self.require
    }
}

/// What became of one Sigstore bundle a kit carries.
#[derive(Debug, Clone, Serialize)]
pub struct Attestation {
    /// The bundle's path in the kit.
    pub bundle: KitPath,
    /// Its declared kind.
    pub kind: KitName,
    /// What it is about: a kit path, or `sha256:<hex>` (with the declared name after it).
    pub subject: String,
    /// `verified`, or `not-checked` when the site's policy pins no Sigstore trusted root.
    pub verdict: &'static str,
    /// The signer's certificate identity (SAN), when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The OIDC issuer that vouched for it, when verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When the transparency log or a timestamp authority saw the signature (RFC 3339), when
    /// verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
}

/// The verdict on a verified kit's Sigstore bundles. `bundles` holds the bytes of each declared
/// bundle, already checked against the signed digests; `policy` is the site's (`None`: it pins no
/// trusted root, and bundles are reported not checked). Every failure is returned, each naming
/// its bundle.
pub fn check(
    manifest: &Manifest,
    bundles: &HashMap<KitPath, Vec<u8>>,
    policy: Option<&SigstorePolicy>,
) -> Result<Vec<Attestation>, Vec<Failure>> {
    let mut verdicts = Vec::new();
    let mut failures = Vec::new();
    // Built once: a kit may list millions of files.
    let digests: HashMap<&KitPath, &Sha256Hex> = if manifest.sigstore.is_empty() {
        HashMap::new()
    } else {
        manifest.files().map(|f| (&f.path, &f.sha256)).collect()
    };
    for entry in &manifest.sigstore {
        let Some(subject_digest) = subject_digest(&digests, entry) else {
            failures.push(bad(entry, "its subject is not a file of the kit".into()));
            continue;
        };
        let mut verdict = Attestation {
            bundle: entry.bundle.clone(),
            kind: entry.kind.clone(),
            subject: subject_text(entry),
            verdict: "not-checked",
            identity: None,
            issuer: None,
            signed_at: None,
        };
        if let Some(policy) = policy {
            let Some(bytes) = bundles.get(&entry.bundle) else {
                failures.push(bad(entry, "its bytes were not kept".into()));
                continue;
            };
            match judge(entry, bytes, subject_digest, policy) {
                Ok((identity, issuer, at)) => {
                    verdict.verdict = "verified";
                    verdict.identity = Some(identity);
                    verdict.issuer = Some(issuer);
                    verdict.signed_at = at;
                }
                Err(f) => {
                    failures.push(f);
                    continue;
                }
            }
        }
        verdicts.push(verdict);
    }
    if let Some(policy) = policy {
        for req in &policy.require {
            let met = verdicts.iter().zip(&manifest.sigstore).any(|(v, e)| {
                v.verdict == "verified"
                    && v.bundle == e.bundle
                    && e.kind == req.kind
                    && req
                        .subject
                        .as_ref()
                        .is_none_or(|s| e.subject.as_ref() == Some(s))
                    && req
                        .digest
                        .as_ref()
                        .is_none_or(|d| subject_digest(&digests, e) == Some(d))
            });
            if !met {
                failures.push(Failure::at(
                    K::MissingAttestation,
                    req.subject
                        .as_ref()
                        .map_or("attestations/", |s| s.as_str()),
                    format!(
                        "the site's policy requires {req}, verified from an accepted identity; the kit has none"
                    ),
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(verdicts)
    } else {
        Err(failures)
    }
}

/// The digest a bundle must vouch for: its subject file's signed SHA-256 (from `digests`, the
/// manifest's files by path), or its declared digest.
fn subject_digest<'a>(
    digests: &HashMap<&KitPath, &'a Sha256Hex>,
    entry: &'a SigstoreEntry,
) -> Option<&'a Sha256Hex> {
    match (&entry.subject, &entry.digest) {
        (Some(path), _) => digests.get(path).copied(),
        (None, Some(d)) => Some(d),
        (None, None) => None,
    }
}

fn subject_text(entry: &SigstoreEntry) -> String {
    match (&entry.subject, &entry.digest, &entry.name) {
        (Some(p), _, _) => p.to_string(),
        (None, Some(d), Some(n)) => format!("sha256:{d} ({})", crate::util::escape_controls(n)),
        (None, Some(d), None) => format!("sha256:{d}"),
        (None, None, _) => String::new(),
    }
}

fn bad(entry: &SigstoreEntry, message: String) -> Failure {
    Failure::at(
        K::BadAttestation,
        entry.bundle.as_str(),
        format!("{} (kind {}): {message}", entry.bundle, entry.kind),
    )
}

/// Verifies one bundle: the Sigstore checks, then the identity rules for its kind.
fn judge(
    entry: &SigstoreEntry,
    bytes: &[u8],
    digest: &Sha256Hex,
    policy: &SigstorePolicy,
) -> Result<(String, String, Option<String>), Failure> {
    let rules: Vec<&IdentityRule> = policy
        .identities
        .iter()
        .filter(|r| r.covers(entry.kind.as_str()))
        .collect();
    if rules.is_empty() {
        return Err(bad(
            entry,
            format!(
                "the site's policy accepts no signer for kind {} (sigstore.identities)",
                entry.kind
            ),
        ));
    }
    let bundle =
        parse_bundle(bytes).map_err(|e| bad(entry, format!("not a Sigstore bundle: {e}")))?;
    let artifact = Sha256Hash::from_hex(digest.as_str())
        .map_err(|e| bad(entry, format!("digest: {}", shown(&e.to_string()))))?;
    // Identity is matched below against every rule for the kind (the library matches one).
    let result = policy
        .verifier
        .verify(artifact, &bundle, &VerificationPolicy::any_identity())
        .map_err(|e| bad(entry, shown(&e.to_string())))?;
    if !(result.certificate_verified() && result.tlog_verified()) {
        return Err(bad(
            entry,
            "the certificate chain or the log inclusion was not verified".into(),
        ));
    }
    let (Some(san), Some(issuer)) = (result.identity(), result.issuer()) else {
        return Err(bad(
            entry,
            "the signing certificate names no identity or OIDC issuer".into(),
        ));
    };
    let san = san.as_str();
    if !rules
        .iter()
        .any(|r| r.san.matches(san) && r.issuer == issuer)
    {
        let accepted: Vec<String> = rules
            .iter()
            .map(|r| format!("{} from {}", r.san, r.issuer))
            .collect();
        return Err(bad(
            entry,
            format!(
                "signed by {} from {}, which the site's policy does not accept for kind {} (accepted: {})",
                shown(san),
                shown(issuer),
                entry.kind,
                accepted.join("; ")
            ),
        ));
    }
    let at = result
        .integrated_time()
        .or_else(|| result.verified_timestamps().iter().min().copied())
        .map(|t| t.to_string());
    Ok((
        crate::util::escape_controls(san),
        crate::util::escape_controls(issuer),
        at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_text_with_star_as_any_run() {
        let p = "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*";
        assert!(glob_match(
            p,
            "https://github.com/acme/db/.github/workflows/release.yml@refs/tags/v1.2"
        ));
        assert!(!glob_match(
            p,
            "https://github.com/evil/db/.github/workflows/release.yml@refs/tags/v1.2"
        ));
        assert!(!glob_match(
            p,
            "https://github.com/acme/db/.github/workflows/release.yml@refs/heads/main"
        ));
        assert!(glob_match("a*", "a"));
        assert!(glob_match("*b", "ab"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("a**b", "ab"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("exact", "an exact"));
        assert!(glob_match("x*y*z", "x--y--y--z"));
    }
}
