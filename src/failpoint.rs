//! Named failpoints for crash-safety tests.
//!
//! When the environment variable `OFFKIT_FAILPOINT` equals a failpoint's name, reaching it prints
//! `offkit-failpoint: NAME` on stderr and then blocks forever, so that the test that set the
//! variable can kill the process with a real SIGKILL at exactly that step. Unset (always, outside
//! tests) a failpoint costs one environment lookup per call site visit and does nothing.
//!
//! Names are `step:detail`, e.g. `migration-committed:001_init` or `seed-put:advisories/a.json`;
//! a variable value ending in `*` matches every name with that prefix (the first one reached).
//!
//! With `OFFKIT_FAILPOINT_RESUME=FILE` also set, the failpoint pauses instead: it waits until
//! `FILE` exists and then goes on, so that a test can change something at exactly that step (a
//! work folder between verification and use) and watch what the process does next.

use std::io::Write;

/// The environment variable that arms a failpoint.
pub const ENV: &str = "OFFKIT_FAILPOINT";
/// The environment variable that turns the armed failpoint into a pause until a file exists.
pub const RESUME_ENV: &str = "OFFKIT_FAILPOINT_RESUME";

/// Blocks forever if `name` is the armed failpoint.
pub fn hit(name: &str) {
    let Ok(armed) = std::env::var(ENV) else {
        return;
    };
    let matches = match armed.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => armed == name,
    };
    if matches {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "offkit-failpoint: {name}");
        let _ = err.flush();
        drop(err);
        if let Some(resume) = std::env::var_os(RESUME_ENV) {
            let resume = std::path::PathBuf::from(resume);
            while !resume.exists() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            return;
        }
        loop {
            std::thread::park();
        }
    }
}
