//! Signed trust versions: TUF root metadata (TUF specification 1.0, §4.3 "root.json") as offkit
//! reads, checks and writes it (docs/FORMAT.md, "Trust store").
//!
//! A version is a TUF `root` document: `signed` holds the version number, an expiry, the keys and
//! the roles; `signatures` are Ed25519 signatures over the OLPC canonical JSON of `signed` (the
//! encoding python-securesystemslib signs). offkit uses two roles: `root`, whose keys sign the
//! next version, and `targets`, whose keys sign kits (offkit's `kit` role); a version's `expires`
//! bounds when its `targets` keys may sign. The `snapshot` and `timestamp` roles TUF requires are
//! carried, not used. Only `ed25519` keys are read: a role offkit uses that names any other key
//! is refused rather than silently counted short.
//!
//! Every byte of a version is untrusted until its signatures are checked against the version
//! before it: parsing is bounded ([`MAX_ROOT_BYTES`], [`MAX_ROOT_KEYS`], the DSSE limit of
//! signatures) and a threshold counts distinct keys, never keyids, so the same key listed under
//! two keyids cannot sign twice.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::MAX_SIGNATURES;
use crate::kit::names::{parse_time, rfc3339};
use crate::trust::keys::{KeyId, PublicKey, SecretKey};
use crate::trust::policy::TrustedKey;
use crate::util::sha256_hex;

/// Largest trust version file read.
pub const MAX_ROOT_BYTES: u64 = 1 << 20;
/// Most keys a trust version may list.
pub const MAX_ROOT_KEYS: usize = 256;
/// The TUF role whose keys sign the next version.
pub const ROOT_ROLE: &str = "root";
/// The TUF role whose keys sign kits.
pub const KIT_SIGNING_ROLE: &str = "targets";
/// The TUF specification version offkit writes (and the major version it reads).
pub const SPEC_VERSION: &str = "1.0.31";

/// Why a file is not a usable trust version.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: not a usable TUF root: {message}")]
pub struct RootError {
    /// The file (or kit entry) it came from.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

impl ExitCoded for RootError {
    fn exit(&self) -> Exit {
        Exit::Key
    }
}

/// A role: which keys, and how many distinct ones must sign.
#[derive(Debug, Clone)]
pub struct Role {
    keyids: Vec<String>,
    threshold: NonZeroUsize,
}

impl Role {
    /// The TUF keyids of its keys.
    pub fn keyids(&self) -> &[String] {
        &self.keyids
    }

    /// Distinct keys that must sign.
    pub fn threshold(&self) -> NonZeroUsize {
        self.threshold
    }
}

/// One trust version, parsed and internally consistent; its signatures not yet judged.
#[derive(Debug, Clone)]
pub struct RootVersion {
    version: u64,
    expires: OffsetDateTime,
    keys: BTreeMap<String, PublicKey>,
    root: Role,
    kit: Role,
    signatures: BTreeMap<String, String>,
    /// The canonical JSON of `signed`: what the signatures cover.
    signed: Vec<u8>,
    /// The file as received, kept byte for byte.
    bytes: Vec<u8>,
    origin: String,
}

/// How many distinct keys of a role signed a version, against the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    /// Distinct keys whose signatures verified.
    pub signed: usize,
    /// The role's threshold.
    pub threshold: usize,
}

impl Count {
    /// Whether the threshold is met.
    pub fn met(&self) -> bool {
        self.signed >= self.threshold
    }
}

#[derive(Deserialize)]
struct FileJson {
    signatures: Vec<SignatureJson>,
    signed: Value,
}

#[derive(Deserialize)]
struct SignatureJson {
    keyid: String,
    sig: String,
}

#[derive(Deserialize)]
struct SignedJson {
    #[serde(rename = "_type")]
    kind: String,
    spec_version: String,
    version: u64,
    expires: String,
    keys: BTreeMap<String, KeyJson>,
    roles: BTreeMap<String, RoleJson>,
}

#[derive(Deserialize)]
struct KeyJson {
    keytype: String,
    scheme: String,
    keyval: KeyValJson,
}

#[derive(Deserialize)]
struct KeyValJson {
    #[serde(default)]
    public: Option<String>,
}

#[derive(Deserialize)]
struct RoleJson {
    keyids: Vec<String>,
    threshold: u64,
}

impl RootVersion {
    /// Parses a trust version; `origin` names it in errors. Checks the structure and the
    /// consistency rules (docs/FORMAT.md), not the signatures.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<RootVersion, RootError> {
        let bad = |message: String| RootError {
            origin: origin.to_owned(),
            message,
        };
        if bytes.len() as u64 > MAX_ROOT_BYTES {
            return Err(bad(format!("larger than {MAX_ROOT_BYTES} bytes")));
        }
        let file: FileJson =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed JSON: {e}")))?;
        if file.signatures.len() > MAX_SIGNATURES {
            return Err(bad(format!("more than {MAX_SIGNATURES} signatures")));
        }
        let mut signed = Vec::new();
        canonical_json(&file.signed, &mut signed).map_err(bad)?;
        let s: SignedJson = serde_json::from_value(file.signed)
            .map_err(|e| bad(format!("malformed signed part: {e}")))?;
        if s.kind != "root" {
            return Err(bad(format!("_type is {:?}, not \"root\"", s.kind)));
        }
        if s.spec_version.split('.').next() != Some("1") {
            return Err(bad(format!(
                "spec_version {:?} is not a TUF 1.x version",
                s.spec_version
            )));
        }
        if s.version == 0 {
            return Err(bad("version 0: versions start at 1".into()));
        }
        let expires = parse_time(&s.expires)
            .ok_or_else(|| bad(format!("expires {:?} is not RFC 3339", s.expires)))?;
        if s.keys.len() > MAX_ROOT_KEYS {
            return Err(bad(format!("more than {MAX_ROOT_KEYS} keys")));
        }
        let mut roles = s.roles;
        let mut role = |name: &str| -> Result<(Role, BTreeSet<String>), RootError> {
            let r = roles
                .remove(name)
                .ok_or_else(|| bad(format!("no {name:?} role")))?;
            let ids: BTreeSet<String> = r.keyids.iter().cloned().collect();
            if ids.len() != r.keyids.len() {
                return Err(bad(format!("role {name:?} lists a keyid twice")));
            }
            let threshold = usize::try_from(r.threshold)
                .ok()
                .and_then(NonZeroUsize::new)
                .ok_or_else(|| bad(format!("role {name:?} has threshold {}", r.threshold)))?;
            if threshold.get() > ids.len() {
                return Err(bad(format!(
                    "role {name:?}: threshold {threshold} cannot be met by {} key(s)",
                    ids.len()
                )));
            }
            Ok((
                Role {
                    keyids: r.keyids,
                    threshold,
                },
                ids,
            ))
        };
        let (root, root_ids) = role(ROOT_ROLE)?;
        let (kit, kit_ids) = role(KIT_SIGNING_ROLE)?;
        // Keys the two roles use must be Ed25519 keys offkit can read, each listed once.
        let mut keys = BTreeMap::new();
        let mut seen: BTreeMap<KeyId, String> = BTreeMap::new();
        for id in root_ids.union(&kit_ids) {
            let k = s
                .keys
                .get(id)
                .ok_or_else(|| bad(format!("keyid {} is in a role but not in keys", short(id))))?;
            if k.keytype != "ed25519" || k.scheme != "ed25519" {
                return Err(bad(format!(
                    "key {}: keytype {:?} scheme {:?}; offkit reads ed25519 keys only",
                    short(id),
                    k.keytype,
                    k.scheme
                )));
            }
            let key = k
                .keyval
                .public
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|raw| PublicKey::from_raw(&raw))
                .ok_or_else(|| {
                    bad(format!(
                        "key {}: keyval.public is not a hex Ed25519 public key",
                        short(id)
                    ))
                })?;
            if let Some(other) = seen.insert(key.keyid().clone(), id.clone()) {
                return Err(bad(format!(
                    "keyids {} and {} are the same key",
                    short(&other),
                    short(id)
                )));
            }
            keys.insert(id.clone(), key);
        }
        let mut signatures = BTreeMap::new();
        for sig in file.signatures {
            if signatures.insert(sig.keyid.clone(), sig.sig).is_some() {
                return Err(bad(format!(
                    "two signatures for keyid {}",
                    short(&sig.keyid)
                )));
            }
        }
        Ok(RootVersion {
            version: s.version,
            expires,
            keys,
            root,
            kit,
            signatures,
            signed,
            bytes: bytes.to_vec(),
            origin: origin.to_owned(),
        })
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the version stops being usable.
    pub fn expires(&self) -> OffsetDateTime {
        self.expires
    }

    /// The keys that sign the next version.
    pub fn root_role(&self) -> &Role {
        &self.root
    }

    /// The keys that sign kits.
    pub fn kit_role(&self) -> &Role {
        &self.kit
    }

    /// The key with this TUF keyid, if a role uses it.
    pub fn key(&self, keyid: &str) -> Option<&PublicKey> {
        self.keys.get(keyid)
    }

    /// The file as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where it came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// SHA-256 of the file.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }

    /// How many distinct keys of `role` (a role of `self`) signed `other`.
    pub fn count(&self, role: &Role, other: &RootVersion) -> Count {
        let mut verified = BTreeSet::new();
        for id in &role.keyids {
            let (Some(key), Some(sig)) = (self.keys.get(id), other.signatures.get(id)) else {
                continue;
            };
            if hex::decode(sig).is_ok_and(|s| key.verify(&other.signed, &s)) {
                verified.insert(key.keyid().clone());
            }
        }
        Count {
            signed: verified.len(),
            threshold: role.threshold.get(),
        }
    }

    /// Whether this version's own `root` role signed it (a version must be, to be pinned or
    /// accepted).
    pub fn self_signed(&self) -> Count {
        self.count(&self.root, self)
    }

    /// The keys that may sign kits under this version, each valid until its expiry.
    pub fn kit_keys(&self) -> Vec<TrustedKey> {
        self.kit
            .keyids
            .iter()
            .filter_map(|id| {
                let key = self.keys.get(id)?.clone();
                TrustedKey::new(format!("trust-v{}/{}", self.version, short(id)), key)
                    .valid_between(None, Some(self.expires))
                    .ok()
            })
            .collect()
    }
}

/// The first 16 hex digits of a keyid, for messages (a TUF keyid is any string: escaped).
pub fn short(keyid: &str) -> String {
    let shown: String = keyid.chars().take(16).collect();
    crate::kit::path::printable_text(&shown)
}

/// Writes `v` as OLPC canonical JSON, the encoding TUF signs (python-securesystemslib's
/// `encode_canonical`): object members sorted by key, no whitespace, strings with only `\` and
/// `"` escaped, integers only.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(format!(
                    "the number {n} is not an integer; canonical JSON has none"
                ));
            }
        }
        Value::String(s) => canonical_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_string(k, out);
                out.push(b':');
                canonical_json(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn canonical_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'\\' || b == b'"' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The TUF keyid of an Ed25519 key: hex SHA-256 of the canonical JSON of its key object (TUF
/// §4.2, as python-securesystemslib computes it).
pub fn tuf_keyid(key: &PublicKey) -> String {
    let mut out = Vec::new();
    // Infallible: strings only.
    let _ = canonical_json(&key_json(key), &mut out);
    sha256_hex(&out)
}

fn key_json(key: &PublicKey) -> Value {
    serde_json::json!({
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": {"public": hex::encode(key.raw())},
    })
}

/// What a new trust version says (`offkit trust new`).
#[derive(Debug, Clone)]
pub struct RootSpec {
    /// Its version number.
    pub version: u64,
    /// Its expiry.
    pub expires: OffsetDateTime,
    /// Keys that sign the next version, and how many must.
    pub root_keys: Vec<PublicKey>,
    /// The `root` threshold.
    pub root_threshold: NonZeroUsize,
    /// Keys that sign kits, and how many must.
    pub kit_keys: Vec<PublicKey>,
    /// The `targets` threshold.
    pub kit_threshold: NonZeroUsize,
}

impl RootSpec {
    /// The unsigned document, as TUF metadata with no signatures (`snapshot` and `timestamp`
    /// delegated to the root keys, as TUF requires them to exist).
    pub fn to_json(&self) -> Value {
        let ids = |keys: &[PublicKey]| -> Vec<String> {
            let set: BTreeSet<String> = keys.iter().map(tuf_keyid).collect();
            set.into_iter().collect()
        };
        let keys: serde_json::Map<String, Value> = self
            .root_keys
            .iter()
            .chain(&self.kit_keys)
            .map(|k| (tuf_keyid(k), key_json(k)))
            .collect();
        let role = |keys: &[PublicKey], t: NonZeroUsize| serde_json::json!({"keyids": ids(keys), "threshold": t.get()});
        let root = role(&self.root_keys, self.root_threshold);
        serde_json::json!({
            "signatures": [],
            "signed": {
                "_type": "root",
                "spec_version": SPEC_VERSION,
                "version": self.version,
                "expires": rfc3339(self.expires),
                "consistent_snapshot": true,
                "keys": keys,
                "roles": {
                    "root": root,
                    "targets": role(&self.kit_keys, self.kit_threshold),
                    "snapshot": root,
                    "timestamp": root,
                },
            },
        })
    }
}

/// Adds `key`'s signature to the trust version `document` (TUF JSON), replacing an earlier
/// signature by the same key; returns the document as offkit writes it (two-space indented JSON,
/// like python-tuf's).
pub fn sign_document(document: &[u8], origin: &str, key: &SecretKey) -> Result<Vec<u8>, RootError> {
    let bad = |message: String| RootError {
        origin: origin.to_owned(),
        message,
    };
    let mut doc: Value =
        serde_json::from_slice(document).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let signed = doc
        .get("signed")
        .ok_or_else(|| bad("no \"signed\" member".into()))?;
    let mut message = Vec::new();
    canonical_json(signed, &mut message).map_err(bad)?;
    let keyid = tuf_keyid(key.public());
    let entry = serde_json::json!({"keyid": keyid, "sig": hex::encode(key.sign(&message))});
    let sigs = doc
        .get_mut("signatures")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| bad("no \"signatures\" list".into()))?;
    sigs.retain(|s| s.get("keyid").and_then(Value::as_str) != Some(keyid.as_str()));
    sigs.push(entry);
    let mut out = serde_json::to_vec_pretty(&doc).map_err(|e| bad(e.to_string()))?;
    out.push(b'\n');
    // What was written must read back as a trust version.
    RootVersion::parse(&out, origin)?;
    Ok(out)
}

/// A one-line description of a count, for refusals.
pub fn describe(count: Count) -> String {
    format!(
        "{} of {} required signature(s)",
        count.signed, count.threshold
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_members_escapes_only_quote_and_backslash_and_refuses_floats() {
        let v: Value =
            serde_json::from_str(r#"{"b": [1, -2, true, null], "a": "x\"\\\n\u00e9"}"#).unwrap();
        let mut out = Vec::new();
        canonical_json(&v, &mut out).unwrap();
        assert_eq!(
            out,
            "{\"a\":\"x\\\"\\\\\n\u{e9}\",\"b\":[1,-2,true,null]}".as_bytes()
        );
        let f: Value = serde_json::from_str("{\"a\": 1.5}").unwrap();
        assert!(canonical_json(&f, &mut Vec::new()).is_err());
    }

    fn spec(keys: &[&SecretKey], version: u64) -> RootSpec {
        let pubs: Vec<PublicKey> = keys.iter().map(|k| k.public().clone()).collect();
        RootSpec {
            version,
            expires: parse_time("2099-01-01T00:00:00Z").unwrap(),
            root_keys: pubs.clone(),
            root_threshold: NonZeroUsize::MIN,
            kit_keys: pubs,
            kit_threshold: NonZeroUsize::MIN,
        }
    }

    #[test]
    fn a_signed_version_verifies_and_a_changed_one_does_not() {
        let a = SecretKey::generate().unwrap();
        let doc = serde_json::to_vec(&spec(&[&a], 1).to_json()).unwrap();
        let unsigned = RootVersion::parse(&doc, "1.root.json").unwrap();
        assert!(!unsigned.self_signed().met());
        let signed = sign_document(&doc, "1.root.json", &a).unwrap();
        let v = RootVersion::parse(&signed, "1.root.json").unwrap();
        assert_eq!(
            v.self_signed(),
            Count {
                signed: 1,
                threshold: 1
            }
        );
        let text = String::from_utf8(signed).unwrap();
        let changed = text.replace("\"version\": 1", "\"version\": 2");
        let v2 = RootVersion::parse(changed.as_bytes(), "x").unwrap();
        assert_eq!(v2.version(), 2);
        assert!(!v2.self_signed().met());
    }

    #[test]
    fn one_key_under_two_keyids_is_refused() {
        let a = SecretKey::generate().unwrap();
        let mut doc = spec(&[&a], 1).to_json();
        let id = tuf_keyid(a.public());
        let key = doc["signed"]["keys"][&id].clone();
        doc["signed"]["keys"]["other"] = key;
        doc["signed"]["roles"]["root"] =
            serde_json::json!({"keyids": [id, "other"], "threshold": 2});
        let err = RootVersion::parse(&serde_json::to_vec(&doc).unwrap(), "x").unwrap_err();
        assert!(err.message.contains("are the same key"), "{err}");
    }
}
