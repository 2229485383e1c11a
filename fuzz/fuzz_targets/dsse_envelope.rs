//! The DSSE envelope (`offkit::kit::dsse::Envelope`), its Base64 payload (standard and URL-safe,
//! padded or not), the PAE, and the in-toto Statement carrying the manifest.
//!
//! Oracles: no panic; Base64 that decodes re-encodes to text that decodes to the same bytes; the
//! PAE is `DSSEv1 <len> <type> <len> <payload>` with the right lengths; an envelope that parses
//! writes (`to_bytes`) text that parses back to the same envelope; a statement that parses
//! round-trips the same way.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use offkit::kit::Manifest;
use offkit::kit::dsse::{Envelope, Statement, decode_b64, pae};
use serde::de::IgnoredAny;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(bytes) = decode_b64(text)
    {
        assert_eq!(decode_b64(&STANDARD.encode(&bytes)), Some(bytes));
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
