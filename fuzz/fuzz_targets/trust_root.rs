//! Trust versions (`offkit::trust::root::RootVersion::parse`, TUF root metadata) and the OLPC
//! canonical JSON their signatures cover: the bytes a trust store or a kit's `trust/` entries
//! hand to offkit before any signature is judged.
//!
//! Oracles: no panic; a parsed version is consistent (every key its roles name is there, each
//! threshold at most its role's keys, a signature count never above the role's keys); parsing is
//! deterministic (the same bytes give the same version and the same verdicts); canonical JSON is
//! deterministic and, for text without control characters (which OLPC canonical JSON writes raw,
//! as python-securesystemslib does), parses back to the value it encodes and is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::trust::root::{RootVersion, canonical_json};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let mut once = Vec::new();
        if canonical_json(&value, &mut once).is_ok() {
            let mut again = Vec::new();
            canonical_json(&value, &mut again).expect("encodes again");
            assert_eq!(once, again, "canonical JSON is not deterministic");
            // OLPC canonical JSON escapes only `"` and `\` (as python-securesystemslib signs):
            // a string with a control character is written raw, which strict JSON refuses. Any
            // other text is JSON, parses back to the value, and is a fixed point.
            if !once.iter().any(|&b| b < 0x20) {
                let back: serde_json::Value =
                    serde_json::from_slice(&once).expect("canonical JSON is JSON");
                assert_eq!(back, value, "canonical JSON changed the value");
                let mut twice = Vec::new();
                canonical_json(&back, &mut twice).expect("encodes again");
                assert_eq!(once, twice, "canonical JSON is not a fixed point");
            }
        }
    }
    let Ok(v) = RootVersion::parse(data, "fuzz") else {
        return;
    };
    for role in [v.root_role(), v.kit_role()] {
        assert!(role.threshold().get() <= role.keyids().len());
        for id in role.keyids() {
            assert!(v.key(id).is_some(), "a role names a key that is not there");
        }
    }
    let count = v.self_signed();
    assert!(count.signed <= v.root_role().keyids().len());
    let again = RootVersion::parse(data, "fuzz").expect("parses twice");
    assert_eq!(again.version(), v.version());
    assert_eq!(again.self_signed(), count);
    assert_eq!(v.count(v.root_role(), &again), count);
});
