//! Records the source revision the binary was built from, for `offkit --version`: the git commit
//! when the source is a git checkout (with `-modified` when tracked files differ from it), else
//! `OFFKIT_SOURCE_REVISION` from the environment (a release tarball), else `unknown`. Nothing of
//! it enters a kit: kits stay reproducible across revisions of the same version.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    // `--no-optional-locks`: `git status` would otherwise refresh `.git/index`, which this script
    // watches, so every build would make the next one run again (two builds in turn, as two fuzz
    // campaigns do, rebuilt everything each time).
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=OFFKIT_SOURCE_REVISION");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for f in ["HEAD", "index", "packed-refs", "refs"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
    }
    let revision = std::env::var("OFFKIT_SOURCE_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
            let modified = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            Some(if modified {
                format!("{rev}-modified")
            } else {
                rev
            })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=OFFKIT_SOURCE_REVISION={revision}");
}
