//! The strict tar reader (`offkit::kit::tar::TarReader`) over arbitrary bytes.
//!
//! Oracles: no panic; an entry's data, when read without error, is exactly its declared size;
//! the offset only grows and never passes the input; and the reader's answers do not depend on
//! how the stream is buffered (the same bytes read through 13-byte reads give the same entries
//! and the same error).
#![no_main]

use std::io::{BufRead, BufReader};

use libfuzzer_sys::fuzz_target;
use offkit::kit::tar::TarReader;

/// Entries read per input (a kit has many; a fuzz input never needs more).
const MAX_ENTRIES: usize = 10_000;

fn outcome(input: &[u8], reader: impl BufRead) -> Vec<String> {
    let mut r = TarReader::new(reader);
    let mut seen = Vec::new();
    for _ in 0..MAX_ENTRIES {
        let before = r.offset();
        match r.next_entry() {
            Ok(Some(entry)) => {
                assert!(
                    r.offset() > before,
                    "a header was read without consuming input"
                );
                assert!(r.offset() <= input.len() as u64);
                let start = r.offset();
                let mut delivered = 0u64;
                let data = r.read_data(|chunk| {
                    delivered += chunk.len() as u64;
                    Ok(())
                });
                if data.is_ok() {
                    assert_eq!(delivered, entry.size, "data of {:?}", entry.path);
                    assert_eq!(
                        r.offset(),
                        start + entry.size + offkit::kit::tar::padding(entry.size) as u64
                    );
                }
                assert!(r.offset() <= input.len() as u64);
                seen.push(format!("{entry:?} -> {data:?}"));
                if data.is_err() {
                    return seen;
                }
            }
            Ok(None) => {
                seen.push(format!("end -> {:?}", r.finish(1 << 20)));
                return seen;
            }
            Err(e) => {
                seen.push(format!("error {e:?}"));
                return seen;
            }
        }
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let whole = outcome(data, data);
    let small = outcome(data, BufReader::with_capacity(13, data));
    assert_eq!(whole, small, "the answer depends on the read size");
});
