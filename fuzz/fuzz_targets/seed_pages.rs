//! Seed pages (`offkit::kit::pages`): the cursor a verifier walks an `offkit/v2` kit's pages and
//! seeds with. The page's bytes are the fuzzer's, signed as they are (so the cursor's rules are
//! what is exercised, not the digest); then a stream of seeds is taken.
//!
//! Input: `files` (u16 LE), `bytes` (u32 LE), the page's length (u16 LE), the page, then seeds of
//! 3 bytes each: an index (u8; below 128 the path of that line of the page, else `seeds/<index>`)
//! and a size (u16 LE).
//!
//! Oracles: no panic; a page the cursor accepts is in exact `sha256sum` form, lists only
//! `seeds/` paths, as many as its signed count; a seed is accepted only as the path the page
//! lists next, with that line's digest; once every line was taken the sizes add up to the signed
//! total and the cursor expects nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::kit::digest::Sha256Hex;
use offkit::kit::manifest::FileEntry;
use offkit::kit::pages::{Expect, PageCursor, PageEntry, is_seed_path, page_path};
use offkit::kit::path::KitPath;
use offkit::kit::sums;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let files = u64::from(u16::from_le_bytes([data[0], data[1]]));
    let total = u64::from(u32::from_le_bytes([data[2], data[3], data[4], data[5]]));
    let len = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let rest = &data[8..];
    let (page, stream) = rest.split_at(len.min(rest.len()));
    let entries = [PageEntry {
        file: FileEntry {
            path: page_path(1),
            sha256: Sha256Hex::of(page),
            size: page.len() as u64,
        },
        files,
        bytes: total,
    }];
    let Ok(mut cursor) = PageCursor::new(&entries) else {
        return;
    };
    if cursor.take_page(page).is_err() {
        return;
    }
    let lines = sums::parse(page).expect("an accepted page is in sha256sum form");
    assert_eq!(
        sums::format(&lines),
        page,
        "an accepted page is exactly what build writes"
    );
    assert_eq!(
        lines.len() as u64,
        files,
        "an accepted page lists its signed count"
    );
    assert!(lines.iter().all(|l| is_seed_path(&l.path)));
    let (mut taken, mut sum) = (0usize, 0u64);
    for item in stream.chunks_exact(3) {
        let path = if item[0] < 128 {
            match lines.get(usize::from(item[0])) {
                Some(l) => l.path.clone(),
                None => continue,
            }
        } else {
            KitPath::new(&format!("seeds/{}", item[0])).expect("a seed path")
        };
        let size = u64::from(u16::from_le_bytes([item[1], item[2]]));
        match cursor.take_seed(&path, size) {
            Ok(digest) => {
                let line = &lines[taken];
                assert_eq!(
                    path, line.path,
                    "a seed is taken only where the page lists it"
                );
                assert_eq!(digest, line.sha256);
                taken += 1;
                sum += size;
                assert!(
                    sum <= total,
                    "the seeds' sizes stay within the signed total"
                );
            }
            Err(_) => break,
        }
    }
    if taken == lines.len() {
        assert_eq!(
            sum, total,
            "every seed taken: their sizes are the signed total"
        );
        assert_eq!(cursor.expect(), Expect::Done);
    }
});
