//! What the offkit fuzz targets share (docs/FUZZING.md): how a kit-shaped input becomes a kit
//! file, a scratch folder for targets whose API takes a path, and the secret oracle of the URL
//! targets. The targets themselves are under `fuzz_targets/`; nothing here is part of offkit.

pub mod kitfile;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A folder of this process's own under the system's temporary folder (the fuzz scripts point
/// `TMPDIR` at a folder they remove afterwards), for APIs that read a file by path.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("offkit-fuzz-")
            .tempdir()
            .expect("a scratch folder for the fuzz target")
            .keep();
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder (replacing it) and returns its path.
pub fn write_scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("writing the fuzz input to the scratch folder");
    path
}
