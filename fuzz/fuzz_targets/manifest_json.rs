//! `manifest.json` parsing (`offkit::kit::Manifest`, serde) and its rules (`Manifest::check`,
//! `totals`, `sql_bytes`).
//!
//! Oracles: no panic; a manifest that parses writes (`to_bytes`) text that parses back to the
//! same manifest, and a written manifest is a fixed point (writing it again gives the same bytes);
//! the rules give the same answer on the copy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::kit::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = serde_json::from_slice::<Manifest>(data) else {
        return;
    };
    let checked = manifest.check();
    let _ = manifest.totals();
    let _ = manifest.sql_bytes();
    let _ = manifest.files().count();

    let written = manifest.to_bytes();
    let again: Manifest = serde_json::from_slice(&written)
        .unwrap_or_else(|e| panic!("a written manifest does not parse: {e}"));
    assert_eq!(again, manifest);
    assert_eq!(again.to_bytes(), written);
    assert_eq!(again.check(), checked);
});
