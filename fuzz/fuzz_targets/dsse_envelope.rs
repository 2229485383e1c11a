//! The DSSE envelope: as the verifier reads it (`offkit::kit::dsse::EnvelopeRef`: borrowed, at
//! most 64 signatures, `is_canonical`, the PAE with the payload decoded into it) and as the
//! builder writes it (`Envelope`); Base64 (standard and URL-safe, padded or not); the in-toto
//! Statement carrying the manifest.
//!
//! Oracles: no panic; Base64 that decodes re-encodes to text that decodes to the same bytes; an
//! envelope the verifier calls canonical is byte for byte what the builder writes for it, and
//! what the builder writes the verifier calls canonical; the verifier's PAE is
//! `DSSEv1 <len> <type> <len> <payload>` over the payload the lenient decoder reads; an envelope
//! or statement that parses writes text that parses back to the same value.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use offkit::kit::Manifest;
use offkit::kit::dsse::{Envelope, EnvelopeRef, Statement, decode_b64, pae};
use serde::de::IgnoredAny;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(bytes) = decode_b64(text)
    {
        assert_eq!(decode_b64(&STANDARD.encode(&bytes)), Some(bytes));
    }

    if let Ok(read) = serde_json::from_slice::<EnvelopeRef<'_>>(data) {
        let written = Envelope {
            payload: read.payload.to_owned(),
            payload_type: read.payload_type.to_owned(),
            signatures: read.signatures.clone(),
        }
        .to_bytes();
        assert_eq!(
            read.is_canonical(data),
            written == data,
            "is_canonical disagrees"
        );
        let reread: EnvelopeRef<'_> = serde_json::from_slice(&written)
            .unwrap_or_else(|e| panic!("a written envelope does not parse: {e}"));
        assert!(
            reread.is_canonical(&written),
            "a written envelope is not canonical"
        );
        if let Some((message, start)) = read.pae() {
            let payload = decode_b64(read.payload).expect("canonical Base64 decodes");
            assert_eq!(message, pae(read.payload_type, &payload));
            assert_eq!(&message[start..], &payload[..]);
        }
    }

    let Ok(envelope) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    let written = envelope.to_bytes();
    let again: Envelope = serde_json::from_slice(&written)
        .unwrap_or_else(|e| panic!("a written envelope does not parse: {e}"));
    assert_eq!(again, envelope);

    let Some(payload) = envelope.payload_bytes() else {
        return;
    };
    let message = pae(&envelope.payload_type, &payload);
    let head = format!(
        "DSSEv1 {} {} {} ",
        envelope.payload_type.len(),
        envelope.payload_type,
        payload.len()
    );
    assert_eq!(message.len(), head.len() + payload.len());
    assert!(message.starts_with(head.as_bytes()) && message.ends_with(&payload));

    let _ = serde_json::from_slice::<Statement<IgnoredAny>>(&payload);
    if let Ok(statement) = serde_json::from_slice::<Statement<Manifest>>(&payload) {
        let again: Statement<Manifest> = serde_json::from_slice(&statement.to_bytes())
            .unwrap_or_else(|e| panic!("a written statement does not parse: {e}"));
        assert_eq!(again, statement);
        let _ = statement.predicate.check();
    }
});
