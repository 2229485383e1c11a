//! Named failpoints for crash-safety tests.
//!
//! When the environment variable `OFFKIT_FAILPOINT` equals a failpoint's name, reaching it prints
//! `offkit-failpoint: NAME` on stderr and then blocks forever, so that the test that set the
//! variable can kill the process with a real SIGKILL at exactly that step. Unset (always, outside
//! tests) a failpoint costs one environment lookup per call site visit and does nothing.
//!
//! Names are `step:detail`, e.g. `migration-committed:001_init` or `seed-put:advisories/a.json`;
//! a variable value ending in `*` matches every name with that prefix (the first one reached).

use std::io::Write;

/// The environment variable that arms a failpoint.
pub const ENV: &str = "OFFKIT_FAILPOINT";

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
        loop {
            std::thread::park();
        }
    }
}
