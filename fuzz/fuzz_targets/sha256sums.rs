//! `SHA256SUMS` (`offkit::kit::sums::parse`), the strict parser of the list the header signs.
//!
//! Oracles: no panic; the parser is strict, so whatever it accepts is exactly what
//! `sums::format` writes for the lines it returned (sorted, no duplicates, final newline): the
//! text and the format agree byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::kit::sums;

fuzz_target!(|data: &[u8]| {
    match sums::parse(data) {
        Ok(lines) => assert_eq!(
            sums::format(&lines),
            data,
            "SHA256SUMS accepted in a form the builder does not write"
        ),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
