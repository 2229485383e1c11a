//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse `protocol.md` and
//! `envelope.md`) carrying an in-toto Statement v1 (in-toto/attestation `spec/v1/statement.md`).
//!
//! Signatures are over `PAE(payloadType, payload)`, never over the JSON envelope, so the
//! envelope's formatting does not matter and the payload bytes are signed exactly as carried.
//! This module is the encoding only; signing and verifying are the `trust` module's.

use std::io;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use serde::{Deserialize, Serialize};

use crate::kit::layout::{MAX_SIGNATURES, PREDICATE_TYPE, STATEMENT_TYPE};

/// DSSE protocol, "Signature definition": `PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP +
/// type + SP + LEN(body) + SP + body`, where `LEN` is the ASCII decimal byte length.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = pae_prefix(payload_type, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The PAE bytes before the body, with room for the body.
fn pae_prefix(payload_type: &str, body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_len + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.to_string().as_bytes());
    out.push(b' ');
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

/// A kit's envelope as read for verification, borrowing its strings from the entry's bytes (the
/// Base64 payload is not copied). At most [`MAX_SIGNATURES`] signatures are parsed: a longer list
/// is refused while parsing, before any is looked at.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeRef<'a> {
    /// Base64 of the payload bytes.
    #[serde(borrow)]
    pub payload: &'a str,
    /// The payload's media type.
    #[serde(borrow)]
    pub payload_type: &'a str,
    /// The signatures.
    #[serde(deserialize_with = "bounded_signatures")]
    pub signatures: Vec<EnvelopeSignature>,
}

fn bounded_signatures<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<EnvelopeSignature>, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<EnvelopeSignature>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {MAX_SIGNATURES} signatures")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element()? {
                if out.len() == MAX_SIGNATURES {
                    return Err(serde::de::Error::custom(format!(
                        "more than {MAX_SIGNATURES} signatures (the most a kit may carry)"
                    )));
                }
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded)
}

impl EnvelopeRef<'_> {
    /// True when `bytes` are exactly what [`Envelope::to_bytes`] writes for this envelope: no
    /// unknown field, no other formatting. Compared while serializing, without a copy.
    pub fn is_canonical(&self, bytes: &[u8]) -> bool {
        let mut cmp = Compare {
            rest: bytes,
            same: true,
        };
        serde_json::to_writer_pretty(&mut cmp, self).is_ok() && cmp.same && cmp.rest == b"\n"
    }

    /// `PAE(payloadType, payload)` with the payload decoded from canonical (standard, padded)
    /// Base64 straight into it, and the offset where the payload starts: the one copy of the
    /// payload verification holds. `None` when the payload is not canonical Base64.
    pub fn pae(&self) -> Option<(Vec<u8>, usize)> {
        let text = self.payload.as_bytes();
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let pad = text.iter().rev().take_while(|&&b| b == b'=').count();
        let decoded_len = (text.len() / 4 * 3).checked_sub(pad)?;
        let mut out = pae_prefix(self.payload_type, decoded_len);
        let start = out.len();
        out.reserve_exact(decoded_len);
        STANDARD.decode_vec(text, &mut out).ok()?;
        (out.len() == start + decoded_len).then_some((out, start))
    }
}

/// An `io::Write` that compares what is written with `rest`, consuming it.
struct Compare<'a> {
    rest: &'a [u8],
    same: bool,
}

impl io::Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.rest.strip_prefix(buf) {
            Some(rest) if self.same => self.rest = rest,
            _ => self.same = false,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
    fn a_kit_envelope_is_read_in_its_one_canonical_form() {
        let env = Envelope {
            payload: STANDARD.encode(b"{\"a\":1}"),
            payload_type: "application/vnd.in-toto+json".into(),
            signatures: vec![EnvelopeSignature {
                keyid: "k".into(),
                sig: STANDARD.encode([7u8; 64]),
            }],
        };
        let bytes = env.to_bytes();
        let r: EnvelopeRef<'_> = serde_json::from_slice(&bytes).unwrap();
        assert!(r.is_canonical(&bytes));
        let (m, start) = r.pae().unwrap();
        assert_eq!(m, pae(&env.payload_type, b"{\"a\":1}"));
        assert_eq!(&m[start..], b"{\"a\":1}");

        // An unknown field, compact formatting, a missing newline: not the form offkit writes.
        let text = String::from_utf8(bytes.clone()).unwrap();
        for other in [
            text.replacen('{', "{\n  \"extra\": 1,", 1),
            serde_json::to_string(&env).unwrap() + "\n",
            text.trim_end().to_owned(),
        ] {
            let r: EnvelopeRef<'_> = serde_json::from_str(&other).unwrap();
            assert!(!r.is_canonical(other.as_bytes()), "{other}");
        }
        // URL-safe or unpadded Base64 is not canonical.
        for payload in [URL_SAFE.encode([0xfb, 0xff]), "aGk".to_owned()] {
            let b = Envelope {
                payload,
                ..env.clone()
            }
            .to_bytes();
            let r: EnvelopeRef<'_> = serde_json::from_slice(&b).unwrap();
            assert!(r.pae().is_none(), "{}", r.payload);
        }

        // Signatures beyond the cap are refused while parsing.
        let mut many = env.clone();
        many.signatures = vec![env.signatures[0].clone(); MAX_SIGNATURES + 1];
        let err = serde_json::from_slice::<EnvelopeRef<'_>>(&many.to_bytes()).unwrap_err();
        assert!(err.to_string().contains("more than 64 signatures"), "{err}");
    }

    #[test]
    fn base64_variants_decode() {
        assert_eq!(decode_b64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert_eq!(decode_b64("-_8").unwrap(), vec![0xfb, 0xff]);
    }
}
