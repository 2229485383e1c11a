//! A small real file system for disk-full tests: a size-limited tmpfs mounted by the test on a
//! folder of its own, unmounted when the guard drops. Mounting needs root (CI runs the tests as
//! root); where it is impossible the test fails loudly, never skips: a disk-full test that did not
//! fill a disk proves nothing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs of a fixed size.
pub struct Tmpfs {
    /// Holds the mount point; removed after the unmount.
    dir: tempfile::TempDir,
}

fn mount(args: &[&str], dir: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount ({e}); the disk-full tests need it"));
    assert!(
        out.status.success(),
        "mount {args:?} {} failed: {}; the disk-full tests need root and tmpfs (they do not skip)",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `2m`, `512k`).
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("mount point");
        mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ],
            dir.path(),
        );
        Tmpfs { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `path()/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Grows (or shrinks) the file system in place, keeping its files: "the operator freed some
    /// space".
    pub fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], self.dir.path());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so that a process the test left behind cannot keep the mount alive.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
