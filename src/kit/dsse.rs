//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse `protocol.md` and
//! `envelope.md`) carrying an in-toto Statement v1 (in-toto/attestation `spec/v1/statement.md`).
//!
//! Signatures are over `PAE(payloadType, payload)`, never over the JSON envelope, so the
//! envelope's formatting does not matter and the payload bytes are signed exactly as carried.
//! This module is the encoding only; signing and verifying are the `trust` module's.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use serde::{Deserialize, Serialize};

use crate::kit::layout::{PREDICATE_TYPE, STATEMENT_TYPE};

/// DSSE protocol, "Signature definition": `PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP +
/// type + SP + LEN(body) + SP + body`, where `LEN` is the ASCII decimal byte length.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signer's keyid (a hint: verification never trusts it alone).
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the raw 64-byte Ed25519 signature.
    pub sig: String,
}

/// A DSSE envelope as JSON (`envelope.md`): `payload` and `sig` are Base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    /// The payload's media type.
    pub payload_type: String,
    /// One signature per signing key.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// The envelope as written into a kit: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The decoded payload bytes. DSSE `envelope.md`: verifiers accept standard and URL-safe
    /// Base64.
    pub fn payload_bytes(&self) -> Option<Vec<u8>> {
        decode_b64(&self.payload)
    }
}

/// Decodes standard or URL-safe Base64 (with or without padding).
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    let padded = format!("{trimmed}{}", "=".repeat((4 - trimmed.len() % 4) % 4));
    STANDARD
        .decode(&padded)
        .or_else(|_| URL_SAFE.decode(&padded))
        .ok()
}

/// An in-toto Statement v1 subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The file's path in the kit.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: SubjectDigest,
}

/// The digest set of a subject; offkit uses SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectDigest {
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// in-toto Statement v1 with predicate `P` (the offkit manifest when signing and verifying;
/// [`serde::de::IgnoredAny`] to look at the type fields alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement<P> {
    /// `https://in-toto.io/Statement/v1`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Every file listed in SHA256SUMS.
    pub subject: Vec<Subject>,
    /// `https://offkit.dev/manifest/v1`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The content of manifest.json.
    pub predicate: P,
}

impl<P: Serialize> Statement<P> {
    /// A statement over `subjects` with `predicate` (the manifest).
    pub fn new(subject: Vec<Subject>, predicate: P) -> Statement<P> {
        Statement {
            type_: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate,
        }
    }

    /// Compact JSON bytes (the signed payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PAE example from the DSSE protocol specification.
    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn base64_variants_decode() {
        assert_eq!(decode_b64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert_eq!(decode_b64("-_8").unwrap(), vec![0xfb, 0xff]);
    }
}
