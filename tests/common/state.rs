//! A record of accepted kits for each offkit invocation of a test (never the user's, never
//! another invocation's).

use std::path::PathBuf;

/// A path for a record of accepted kits that no other invocation uses, in a temporary folder of
/// this test process.
pub fn fresh_state() -> PathBuf {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("offkit-test-state-")
            .tempdir()
            .unwrap()
    });
    dir.path()
        .join(format!("{}.sqlite", N.fetch_add(1, Ordering::Relaxed)))
}
