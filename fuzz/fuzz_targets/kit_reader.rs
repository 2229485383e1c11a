//! The kit reader up to authentication: `KitReader::read_header` keeping what the verifier keeps
//! before it checks a signature (`Keep::Envelope`) and what it parses then (the DSSE envelope in
//! its one written form, the PAE with the payload decoded into it); the second read of the header
//! that follows authentication (`KitReader::reread_header`) and SHA256SUMS; then the payload
//! entries one by one (`next_payload`, `read_data`) and `finish`.
//!
//! Input: a kit-shaped input (`offkit_fuzz::kitfile`: a mode byte, then the compressed kit or its
//! uncompressed tar stream cut into frames).
//!
//! Oracles: no panic, no allocation above libFuzzer's `-malloc_limit_mb` (the scripts pass 128:
//! the header is bounded at 64 MiB), every error displays; a payload entry's data is exactly its
//! declared size; a header entry's digest is that of its bytes; reading an unchanged file's header
//! again finds the same header; and when the stream ends cleanly the kit digest and size
//! `finish` reports are those of the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::kit::digest::Sha256Hex;
use offkit::kit::dsse::{EnvelopeRef, Statement};
use offkit::kit::layout::Limits;
use offkit::kit::reader::{Keep, KitReader};
use offkit::kit::sums;
use offkit_fuzz::{kitfile, write_scratch};
use serde::de::IgnoredAny;

/// Payload entries read per input.
const MAX_ENTRIES: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Some(kit) = kitfile::kit_bytes(data) else {
        return;
    };
    let path = write_scratch("input.kit.tar.zst", &kit);
    let mut reader = match KitReader::open(&path, Limits::default()) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let header = match reader.read_header(Keep::Envelope) {
        Ok(h) => h,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for entry in [&header.layout, &header.dsse] {
        assert_eq!(entry.sha256, Sha256Hex::of(&entry.bytes));
    }
    assert!(header.manifest.bytes.is_empty() && header.sums.bytes.is_empty());
    assert!(header.header_bytes <= reader.offset());

    // What the verifier does with the header before any signature is checked.
    if let Ok(envelope) = serde_json::from_slice::<EnvelopeRef<'_>>(&header.dsse.bytes) {
        let _ = envelope.is_canonical(&header.dsse.bytes);
        if let Some((message, start)) = envelope.pae() {
            let _ = serde_json::from_slice::<Statement<IgnoredAny>>(&message[start..]);
        }
    }
    // What it does once they pass: read the header again, keeping everything.
    let again = KitReader::reread_header(&path, Limits::default(), &header)
        .unwrap_or_else(|e| panic!("the same file read again gives another header: {e}"));
    for entry in [&again.layout, &again.manifest, &again.sums, &again.dsse] {
        assert_eq!(entry.sha256, Sha256Hex::of(&entry.bytes));
    }
    if let Err(e) = sums::parse(&again.sums.bytes) {
        let _ = e.to_string();
    }

    for _ in 0..MAX_ENTRIES {
        match reader.next_payload() {
            Ok(Some(entry)) => {
                let mut delivered = 0u64;
                match reader.read_data(|chunk| {
                    delivered += chunk.len() as u64;
                    Ok(())
                }) {
                    Ok(()) => assert_eq!(delivered, entry.size, "data of {}", entry.path),
                    Err(e) => {
                        let _ = e.to_string();
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
    match reader.finish() {
        Ok(end) => {
            assert_eq!(end.compressed, kit.len() as u64);
            assert_eq!(end.sha256, Sha256Hex::of(&kit));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
