//! Ed25519 keys: generation, PKCS#8 / SPKI PEM files, keyids.
//!
//! `keyid` = lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo DER encoding, the
//! same value `openssl pkey -pubin -outform DER | sha256sum` prints. Private key files must not
//! be readable by group or others: a signing key that anyone on the build host could copy is
//! refused rather than used.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::exit::{Exit, ExitCoded};
use crate::util::sha256_hex;

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A private key where a public one is expected, or the reverse.
    #[error("{path} is {found}; {hint}")]
    WrongKind {
        /// The file.
        path: String,
        /// What it is.
        found: &'static str,
        /// What to give instead.
        hint: String,
    },
    /// The file is not a key of the expected kind.
    #[error("{path}: not an Ed25519 {expected} in PEM form ({message})")]
    Malformed {
        /// The file.
        path: String,
        /// "PKCS#8 private key" or "SubjectPublicKeyInfo public key".
        expected: &'static str,
        /// Parser message.
        message: String,
    },
    /// A private key file readable by group or others.
    #[error(
        "{path}: private key is readable by group or others (mode {mode:o}); run chmod 600 {path}"
    )]
    InsecurePermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// `keygen` would overwrite an existing file.
    #[error("{path} already exists; refusing to overwrite a key")]
    Exists {
        /// The file.
        path: String,
    },
    /// Writing a key failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The system random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

impl ExitCoded for KeyError {
    fn exit(&self) -> Exit {
        match self {
            KeyError::Read { .. } | KeyError::Write { .. } => Exit::Io,
            KeyError::WrongKind { .. } => Exit::Usage,
            _ => Exit::Key,
        }
    }
}

/// A keyid: the lowercase hex SHA-256 of a public key's SubjectPublicKeyInfo DER encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

/// Text that is not a keyid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a keyid (64 hex digits, optionally prefixed sha256:)")]
pub struct KeyIdError(pub String);

impl KeyId {
    /// Parses a keyid as a person writes it in a policy: 64 hex digits in either case, optionally
    /// prefixed `sha256:`, normalised to lowercase. Anything else (spaces included) is refused, so
    /// that a revocation cannot silently miss the key it names.
    pub fn parse(s: &str) -> Result<KeyId, KeyIdError> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(KeyId(hex.to_ascii_lowercase()))
        } else {
            Err(KeyIdError(s.chars().take(80).collect()))
        }
    }

    /// The keyid exactly as offkit writes it (64 lowercase hex digits), or `None`: for hints and
    /// file names, which are not normalised.
    pub fn exact(s: &str) -> Option<KeyId> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| KeyId(s.to_owned()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// An Ed25519 public key with its keyid.
/// The label of the first PEM block in `text` (`PUBLIC KEY`, `PRIVATE KEY`, …).
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    rest.find("-----").map(|end| &rest[..end])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    keyid: KeyId,
}

impl PublicKey {
    /// Parses an SPKI PEM public key; `origin` names it in errors.
    pub fn from_pem(pem: &str, origin: &str) -> Result<PublicKey, KeyError> {
        if pem_label(pem) == Some("PRIVATE KEY") {
            return Err(KeyError::WrongKind {
                path: origin.to_owned(),
                found: "a private key",
                hint: "a trusted key is a public key (offkit keygen wrote NAME.pub beside NAME.key); a private key belongs on the signing machine only".into(),
            });
        }
        let key =
            VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::Malformed {
                path: origin.to_owned(),
                expected: "SubjectPublicKeyInfo public key",
                message: e.to_string(),
            })?;
        Ok(Self::from_key(key))
    }

    /// Reads an SPKI PEM public key file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(&text, &path.display().to_string())
    }

    fn from_key(key: VerifyingKey) -> PublicKey {
        let der = key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        PublicKey {
            keyid: KeyId(sha256_hex(&der)),
            key,
        }
    }

    /// An Ed25519 public key from its 32-byte encoding (RFC 8032), as TUF metadata carries it;
    /// `None` when the bytes are not a point on the curve.
    pub fn from_raw(bytes: &[u8]) -> Option<PublicKey> {
        let bytes: &[u8; 32] = bytes.try_into().ok()?;
        VerifyingKey::from_bytes(bytes).ok().map(Self::from_key)
    }

    /// The 32-byte encoding of the key (RFC 8032).
    pub fn raw(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The keyid (hex SHA-256 of the SPKI DER).
    pub fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Checks an Ed25519 signature (RFC 8032, strict: rejects non-canonical and small-order
    /// encodings) over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &sig).is_ok()
    }
}

/// An Ed25519 signing key with its public half.
pub struct SecretKey {
    key: SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("keyid", &self.public.keyid)
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_signing(SigningKey::from_bytes(&seed)))
    }

    fn from_signing(key: SigningKey) -> SecretKey {
        let public = PublicKey::from_key(key.verifying_key());
        SecretKey { key, public }
    }

    /// Reads a PKCS#8 PEM private key, refusing files readable by group or others.
    pub fn load(path: &Path) -> Result<SecretKey, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        // A public key given as --key is a mix-up, not a permissions problem.
        if pem_label(&text) == Some("PUBLIC KEY") {
            return Err(KeyError::WrongKind {
                path: shown,
                found: "a public key",
                hint:
                    "signing takes the private key (offkit keygen wrote NAME.key beside NAME.pub)"
                        .into(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions { path: shown, mode });
        }
        let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyError::Malformed {
            path: shown,
            expected: "PKCS#8 private key",
            message: e.to_string(),
        })?;
        Ok(Self::from_signing(key))
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The keyid.
    pub fn keyid(&self) -> &KeyId {
        self.public.keyid()
    }

    /// Signs `message` (pure Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Writes `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub` (SPKI PEM), refusing to
    /// overwrite either. Returns the two paths.
    pub fn write_pair(&self, prefix: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        let key_path = with_suffix(prefix, "key");
        let pub_path = with_suffix(prefix, "pub");
        for p in [&key_path, &pub_path] {
            if p.symlink_metadata().is_ok() {
                return Err(KeyError::Exists {
                    path: p.display().to_string(),
                });
            }
        }
        // PKCS#8 v1 (RFC 5208, no embedded public key): the form OpenSSL 3.0 reads and writes.
        let v1 = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let pem = v1
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Malformed {
                path: key_path.display().to_string(),
                expected: "PKCS#8 private key",
                message: e.to_string(),
            })?;
        let write = |path: &Path, bytes: &[u8], mode| {
            crate::util::write_atomic(path, bytes, mode, false).map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.display().to_string(),
                    }
                } else {
                    KeyError::Write {
                        path: path.display().to_string(),
                        source,
                    }
                }
            })
        };
        write(&key_path, pem.as_bytes(), 0o600)?;
        write(&pub_path, self.public.to_pem().as_bytes(), 0o644)?;
        Ok((key_path, pub_path))
    }
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_keyid() {
        let k = SecretKey::generate().unwrap();
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig));
        assert!(!k.public().verify(b"hellO", &sig));
        assert_eq!(k.keyid().as_str().len(), 64);
        let again = PublicKey::from_pem(&k.public().to_pem(), "t").unwrap();
        assert_eq!(again.keyid(), k.keyid());
    }

    #[test]
    fn keyids_are_validated_and_normalised() {
        let hex = "ab".repeat(32);
        let id = KeyId::parse(&hex).unwrap();
        assert_eq!(KeyId::parse(&hex.to_uppercase()).unwrap(), id);
        assert_eq!(KeyId::parse(&format!("sha256:{hex}")).unwrap(), id);
        for bad in [
            format!("{hex} "),
            format!(" {hex}"),
            hex[1..].to_owned(),
            format!("sha1:{hex}"),
        ] {
            assert!(KeyId::parse(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(KeyId::exact(&hex), Some(id));
        assert_eq!(KeyId::exact(&hex.to_uppercase()), None);
    }

    #[test]
    fn key_files_round_trip_and_refuse_overwrite_and_loose_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("release");
        let k = SecretKey::generate().unwrap();
        let (key, _) = k.write_pair(&prefix).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(SecretKey::load(&key).unwrap().keyid(), k.keyid());
        assert!(matches!(
            k.write_pair(&prefix),
            Err(KeyError::Exists { .. })
        ));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            SecretKey::load(&key),
            Err(KeyError::InsecurePermissions { .. })
        ));
    }
}
