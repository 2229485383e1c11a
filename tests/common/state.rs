//! A record of accepted kits and a working folder for each offkit invocation of a test (never the
//! user's, never another invocation's).

use std::path::PathBuf;

/// A path for a record of accepted kits that no other invocation uses, in a temporary folder of
/// this test process.
pub fn fresh_state() -> PathBuf {
    unique("sqlite")
}

/// An empty folder that no other invocation uses, for its working directory: what a command
/// writes by default (`./offkit.db`) stays out of the repository and out of other invocations.
pub fn fresh_cwd() -> PathBuf {
    let dir = unique("cwd");
    std::fs::create_dir(&dir).unwrap();
    dir
}

fn unique(ext: &str) -> PathBuf {
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
        .join(format!("{}.{ext}", N.fetch_add(1, Ordering::Relaxed)))
}
