//! Policy evaluation: which trusted keys signed, and whether that is enough.
//!
//! DSSE protocol, "Verification" with a threshold (`protocol.md`, "Threshold"): count distinct
//! trusted keys whose signature over `PAE(payloadType, payload)` verifies. The keyid in an envelope
//! is a hint no signature covers (`envelope.md`): offkit always writes the signing key's keyid, so
//! a kit must carry one, well-formed, on every signature, and a signature that verifies under
//! another key than the one it names is refused. A hint naming a trusted key selects that key
//! alone; a hint naming a key not trusted here (a co-signer this site does not know, or a lie) has
//! the trusted keys tried, within [`MAX_UNHINTED_TRIES`] tries for the whole envelope, so the work
//! before authentication is at most `MAX_SIGNATURES + MAX_UNHINTED_TRIES` signature checks over
//! the PAE computed once. Revocation is judged on the key that verified, never
//! on a hint, and a revoked key's signature refuses the kit. Keys outside their validity window
//! or without the `kit` role do not count. These functions are pure: the tests below exercise
//! each rule without a kit.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::kit::dsse::EnvelopeSignature;
use crate::kit::layout::{DSSE, SIGNATURE_BYTES};
use crate::trust::failure::{Failure, FailureKind as K};
use crate::trust::keys::KeyId;
use crate::trust::policy::{TrustPolicy, TrustedKey};

use super::Signer;

pub use crate::kit::layout::MAX_SIGNATURES;

/// Most trusted keys tried, over the whole envelope, for signatures whose keyid hint names no
/// trusted key. A signature left untried when they are used up counts as untrusted.
pub const MAX_UNHINTED_TRIES: usize = 16;

/// What the envelope's signatures established, before key validity is judged.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Every signature that verified under a trusted key (whatever its validity window): its
    /// position in the envelope and the key.
    pub verified: Vec<(usize, KeyId)>,
    /// The keyids of signatures by keys this site does not trust.
    untrusted: Vec<String>,
}

/// What the envelope's signatures established, key validity judged.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The trusted keys that count towards the threshold, in keyid order.
    pub signers: Vec<Signer>,
    /// Every signature that verified under a trusted key (counted or not, e.g. outside its
    /// validity window): its position in the envelope and the key.
    pub verified: Vec<(usize, KeyId)>,
}

/// Evaluates `signatures` over `message` (the PAE bytes) against `policy`, key validity judged at
/// `now`: [`check`] then [`Checked::judge`].
pub fn evaluate(
    signatures: &[EnvelopeSignature],
    message: &[u8],
    policy: &TrustPolicy,
    now: OffsetDateTime,
) -> Result<Evaluation, Failure> {
    let checked = check(signatures, message, policy)?;
    let signers = checked.judge(policy, now)?;
    Ok(Evaluation {
        signers,
        verified: checked.verified,
    })
}

/// Checks `signatures` over `message` (the PAE bytes): their form, which trusted keys they verify
/// under, revocation. Key validity windows and the threshold are judged by [`Checked::judge`], at
/// the time the caller chooses.
pub fn check(
    signatures: &[EnvelopeSignature],
    message: &[u8],
    policy: &TrustPolicy,
) -> Result<Checked, Failure> {
    if signatures.is_empty() {
        return Err(Failure::at(
            K::MissingSignature,
            DSSE,
            "the DSSE envelope carries no signature",
        ));
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(Failure::at(
            K::MalformedJson,
            DSSE,
            format!(
                "the DSSE envelope carries {} signatures; at most {MAX_SIGNATURES} are accepted",
                signatures.len()
            ),
        ));
    }
    // The form of every signature first, before any cryptography: a well-formed keyid (offkit
    // always names the signing key) and 64 bytes in standard Base64.
    let mut decoded = Vec::with_capacity(signatures.len());
    for (i, s) in signatures.iter().enumerate() {
        let non_canonical = |what: &str| {
            Failure::at(
                K::NonCanonicalSignature,
                DSSE,
                format!("signature {i} {what}"),
            )
        };
        let hint = KeyId::exact(&s.keyid)
            .ok_or_else(|| non_canonical("does not name its key with a well-formed keyid"))?;
        let sig = STANDARD
            .decode(&s.sig)
            .ok()
            .filter(|b| b.len() == SIGNATURE_BYTES as usize)
            .ok_or_else(|| {
                non_canonical("is not a 64-byte Ed25519 signature in standard Base64")
            })?;
        decoded.push((hint, sig));
    }
    let mut verified = Vec::new();
    let mut untrusted = Vec::new();
    let mut tries_left = MAX_UNHINTED_TRIES;
    for (i, (hint, sig)) in decoded.iter().enumerate() {
        let hinted = policy.key(hint);
        let found: Option<&TrustedKey> = match hinted {
            Some(k) => k.key().verify(message, sig).then_some(k),
            None => policy.keys().iter().find(|k| {
                if tries_left == 0 {
                    return false;
                }
                tries_left -= 1;
                k.key().verify(message, sig)
            }),
        };
        match found {
            Some(k) if policy.is_revoked(k.keyid()) => {
                return Err(Failure::at(
                    K::RevokedKey,
                    DSSE,
                    format!("signature {i} is by revoked key {}", k.keyid()),
                ));
            }
            Some(k) if k.keyid() != hint => {
                return Err(Failure::at(
                    K::NonCanonicalSignature,
                    DSSE,
                    format!(
                        "signature {i} is by key {} but names keyid {hint}",
                        k.keyid()
                    ),
                ));
            }
            Some(k) => verified.push((i, k.keyid().clone())),
            None if hinted.is_some() => {
                return Err(Failure::at(
                    K::BadSignature,
                    DSSE,
                    format!(
                        "signature {i} by trusted key {hint} does not verify: the signed statement was altered"
                    ),
                ));
            }
            None => untrusted.push(hint.to_string()),
        }
    }
    Ok(Checked {
        verified,
        untrusted,
    })
}

impl Checked {
    /// The signers that count with key validity (windows, the `kit` role) judged at `at`, or why
    /// the threshold is not met.
    pub fn judge(&self, policy: &TrustPolicy, at: OffsetDateTime) -> Result<Vec<Signer>, Failure> {
        let mut valid: BTreeMap<KeyId, String> = BTreeMap::new();
        let mut unusable = Vec::new();
        for (_, keyid) in &self.verified {
            let Some(k) = policy.key(keyid) else {
                continue;
            };
            match k.unusable_at(at) {
                Some(why) => unusable.push(why),
                None => {
                    valid.insert(k.keyid().clone(), k.name().to_owned());
                }
            }
        }
        let threshold = policy.threshold().get();
        if valid.len() >= threshold {
            return Ok(valid
                .into_iter()
                .map(|(keyid, name)| Signer { keyid, name })
                .collect());
        }
        let untrusted = &self.untrusted;
        if valid.is_empty() && unusable.is_empty() {
            return Err(Failure::at(
                K::UntrustedSigner,
                DSSE,
                format!(
                    "signed only by keys this site does not trust: {}{}",
                    untrusted[..untrusted.len().min(3)].join(", "),
                    match untrusted.len() {
                        0..=3 => String::new(),
                        n => format!(" (and {} more)", n - 3),
                    }
                ),
            ));
        }
        let mut message = format!(
            "{} valid signature(s) by distinct trusted keys; the policy requires {threshold}",
            valid.len()
        );
        if !unusable.is_empty() {
            message.push_str(&format!(" ({})", unusable.join("; ")));
        }
        Err(Failure::at(K::ThresholdNotMet, DSSE, message))
    }

    /// Distinct trusted keys whose signatures verified, whatever their validity.
    pub fn distinct_keys(&self) -> usize {
        self.verified
            .iter()
            .map(|(_, k)| k)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::num::NonZeroUsize;

    use base64::Engine;
    use time::macros::datetime;

    use super::*;
    use crate::trust::keys::SecretKey;

    const MESSAGE: &[u8] = b"DSSEv1 28 application/vnd.in-toto+json 2 {}";
    const NOW: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

    fn key() -> SecretKey {
        SecretKey::generate().unwrap()
    }

    fn sig(k: &SecretKey, hint: &str) -> EnvelopeSignature {
        EnvelopeSignature {
            keyid: hint.to_owned(),
            sig: base64::engine::general_purpose::STANDARD.encode(k.sign(MESSAGE)),
        }
    }

    fn signed(k: &SecretKey) -> EnvelopeSignature {
        sig(k, k.keyid().as_str())
    }

    fn trusted(k: &SecretKey) -> TrustedKey {
        TrustedKey::new(format!("k{}", &k.keyid().as_str()[..4]), k.public().clone())
    }

    fn policy(keys: Vec<TrustedKey>, threshold: usize, revoked: &[&SecretKey]) -> TrustPolicy {
        TrustPolicy::new(
            keys,
            NonZeroUsize::new(threshold).unwrap(),
            revoked
                .iter()
                .map(|k| k.keyid().clone())
                .collect::<BTreeSet<_>>(),
        )
        .unwrap()
    }

    fn kind(r: Result<Evaluation, Failure>) -> K {
        r.expect_err("accepted").kind
    }

    #[test]
    fn threshold_counts_distinct_trusted_keys() {
        let (a, b, c) = (key(), key(), key());
        let p = policy(vec![trusted(&a), trusted(&b), trusted(&c)], 2, &[]);
        assert_eq!(
            evaluate(&[signed(&a), signed(&b)], MESSAGE, &p, NOW)
                .unwrap()
                .signers
                .len(),
            2
        );
        // The same key twice is one signer.
        assert_eq!(
            kind(evaluate(&[signed(&a), signed(&a)], MESSAGE, &p, NOW)),
            K::ThresholdNotMet
        );
        // An untrusted co-signer does not count.
        let stranger = key();
        assert_eq!(
            kind(evaluate(&[signed(&a), signed(&stranger)], MESSAGE, &p, NOW)),
            K::ThresholdNotMet
        );
        assert_eq!(
            kind(evaluate(&[signed(&stranger)], MESSAGE, &p, NOW)),
            K::UntrustedSigner
        );
        assert_eq!(kind(evaluate(&[], MESSAGE, &p, NOW)), K::MissingSignature);
    }

    #[test]
    fn a_hint_is_checked_never_trusted() {
        let (a, b) = (key(), key());
        let p = policy(vec![trusted(&a)], 1, &[]);
        // No hint or a malformed one: not the form offkit writes, refused before any check.
        for hint in ["", "not-a-keyid\u{1b}[32m"] {
            let f = evaluate(&[sig(&a, hint)], MESSAGE, &p, NOW).unwrap_err();
            assert_eq!(f.kind, K::NonCanonicalSignature, "{hint:?}");
            assert!(!f.message.contains('\u{1b}'), "{}", f.message);
        }
        // Another key's keyid on a's signature: found, and refused as mislabelled.
        let f = evaluate(&[sig(&a, b.keyid().as_str())], MESSAGE, &p, NOW).unwrap_err();
        assert_eq!(f.kind, K::NonCanonicalSignature);
        // A hint naming a trusted key whose signature fails: the statement was altered.
        assert_eq!(
            kind(evaluate(&[sig(&b, a.keyid().as_str())], MESSAGE, &p, NOW)),
            K::BadSignature
        );
        // A signature that is not 64 bytes of standard Base64.
        let mut short = signed(&a);
        short.sig = "AAAA".into();
        assert_eq!(
            kind(evaluate(&[short], MESSAGE, &p, NOW)),
            K::NonCanonicalSignature
        );
        let e = evaluate(&[signed(&a)], MESSAGE, &p, NOW).unwrap();
        assert_eq!(e.verified, vec![(0, a.keyid().clone())]);
    }

    #[test]
    fn revocation_follows_the_key_that_verified_not_the_hint() {
        let (a, b, stranger) = (key(), key(), key());
        let p = policy(vec![trusted(&a), trusted(&b)], 1, &[&b]);
        // Revoked key b signs under a stranger's keyid: found by trying, refused as revoked,
        // alone or beside a valid signature.
        let disguised = sig(&b, stranger.keyid().as_str());
        assert_eq!(
            kind(evaluate(std::slice::from_ref(&disguised), MESSAGE, &p, NOW)),
            K::RevokedKey
        );
        assert_eq!(
            kind(evaluate(&[signed(&a), disguised], MESSAGE, &p, NOW)),
            K::RevokedKey
        );
        // a's signature under b's hint fails as b's (an altered statement), whatever b's status.
        let signers = evaluate(&[sig(&a, b.keyid().as_str())], MESSAGE, &p, NOW);
        assert_eq!(kind(signers), K::BadSignature);
        assert!(evaluate(&[signed(&a)], MESSAGE, &p, NOW).is_ok());
    }

    #[test]
    fn keys_sign_only_inside_their_window_and_with_the_kit_role() {
        let (a, b) = (key(), key());
        let windowed = trusted(&a)
            .valid_between(
                Some(datetime!(2026-01-01 0:00 UTC)),
                Some(datetime!(2026-12-31 0:00 UTC)),
            )
            .unwrap();
        let p = policy(vec![windowed, trusted(&b)], 1, &[]);
        assert!(evaluate(&[signed(&a)], MESSAGE, &p, NOW).is_ok());
        for at in [
            datetime!(2025-12-31 0:00 UTC),
            datetime!(2027-01-01 0:00 UTC),
        ] {
            let f = evaluate(&[signed(&a)], MESSAGE, &p, at).unwrap_err();
            assert_eq!(f.kind, K::ThresholdNotMet);
            assert!(f.message.contains("key k"), "{}", f.message);
        }
        let no_role = trusted(&a).with_roles(["sbom".to_owned()]);
        let p = policy(vec![no_role, trusted(&b)], 1, &[]);
        let f = evaluate(&[signed(&a)], MESSAGE, &p, NOW).unwrap_err();
        assert!(
            f.message.contains("lacks the \"kit\" role"),
            "{}",
            f.message
        );
    }

    #[test]
    fn too_many_signatures_are_refused_before_any_is_checked() {
        let a = key();
        let p = policy(vec![trusted(&a)], 1, &[]);
        let many = vec![signed(&a); MAX_SIGNATURES + 1];
        assert_eq!(kind(evaluate(&many, MESSAGE, &p, NOW)), K::MalformedJson);
    }

    #[test]
    fn signatures_without_a_usable_hint_share_a_bounded_number_of_tries() {
        let keys: Vec<SecretKey> = (0..4).map(|_| key()).collect();
        let p = policy(keys.iter().map(trusted).collect(), 1, &[]);
        let last = keys.last().unwrap();
        let stranger = key();
        let disguised = sig(last, stranger.keyid().as_str());
        // The last trusted key's signature under a stranger's keyid is found while tries are
        // left (and refused as mislabelled) …
        assert_eq!(
            kind(evaluate(std::slice::from_ref(&disguised), MESSAGE, &p, NOW)),
            K::NonCanonicalSignature
        );
        // … but not tried once strangers' signatures used the tries up (4 each).
        let mut sigs = vec![signed(&stranger); MAX_UNHINTED_TRIES / 4];
        sigs.push(disguised);
        assert_eq!(kind(evaluate(&sigs, MESSAGE, &p, NOW)), K::UntrustedSigner);
        // A hinted signature costs one try whatever came before.
        sigs.push(signed(last));
        assert!(evaluate(&sigs, MESSAGE, &p, NOW).is_ok());
    }
}
