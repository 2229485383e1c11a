//! Helpers shared by the integration tests: run the real binary in temp folders, make keys and
//! kit sources, and rewrite kits entry by entry to forge hostile ones.
#![allow(dead_code)]

pub mod browser;
pub mod db;
pub mod forge;
pub mod pg;
mod state;

#[allow(unused_imports)]
pub use db::{Kit, TestDb, offkit_bin};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use state::{fresh_cwd, fresh_state};

/// A fixed creation time so builds are reproducible.
pub const EPOCH: &str = "1767225600"; // 2026-01-01T00:00:00Z

/// Runs `offkit ARGS` and returns its output (no SOURCE_DATE_EPOCH).
pub fn offkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_offkit"))
        .env("OFFKIT_STATE", fresh_state())
        .current_dir(fresh_cwd())
        .args(args)
        .output()
        .expect("run offkit")
}

/// The `offkit` binary under test, with a fixed SOURCE_DATE_EPOCH, a working folder and a record
/// of accepted kits of its own (tests that build different kits on one channel must not meet each other's
/// records; a test of the record passes `--state`).
pub fn cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_offkit"));
    c.env("SOURCE_DATE_EPOCH", EPOCH)
        .env("OFFKIT_STATE", fresh_state())
        .current_dir(fresh_cwd());
    c
}

/// `len` incompressible bytes, the same for the same `key` on every run, different for each key
/// (xorshift seeded by the key's FNV-1a hash).
pub fn noise(key: &str, len: usize) -> Vec<u8> {
    let mut x = key.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Runs offkit with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    cmd().args(args).output().expect("offkit runs")
}

/// Exit code, stdout, stderr.
pub fn outcome(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A temporary workspace with a signing key pair.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Makes (or reuses) the key pair `keys/NAME.{key,pub}`; returns (key, pub).
    pub fn key(&self, name: &str) -> (PathBuf, PathBuf) {
        let prefix = self.path(&format!("keys/{name}"));
        let key = prefix.with_extension("key");
        if !key.exists() {
            std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
            let k = offkit::trust::SecretKey::generate().unwrap();
            k.write_pair(&prefix).unwrap();
        }
        (key, prefix.with_extension("pub"))
    }

    /// `sqlite://` URL of this workspace's site database (`site.db`).
    pub fn site_db(&self) -> String {
        format!("sqlite://{}", self.path("site.db").display())
    }

    /// Runs `offkit apply KIT --trust PUBLIC` onto this workspace's site database and folder store
    /// (`store/`), with `extra` arguments; returns exit code, stdout, stderr.
    pub fn apply(&self, kit: &Path, public: &Path, extra: &[&str]) -> (i32, String, String) {
        let store = format!("file://{}", self.path("store").display());
        let mut c = cmd();
        c.arg("apply")
            .arg(kit)
            .arg("--trust")
            .arg(public)
            .args(["--db", &self.site_db(), "--store", &store])
            .args(extra);
        outcome(&c.output().unwrap())
    }

    /// Copies a source tree from `kits/NAME` into the workspace.
    pub fn example_source(&self, name: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("kits")
            .join(name);
        let to = self.path(&format!("src-{name}"));
        copy_tree(&from, &to);
        to
    }

    /// Runs `offkit build SRC --key … --out OUT` (OUT under the workspace, created) with
    /// `SOURCE_DATE_EPOCH=epoch`; returns exit code, stdout, stderr.
    pub fn try_build(
        &self,
        src: &Path,
        keys: &[&Path],
        out: &str,
        epoch: &str,
    ) -> (i32, String, String) {
        let out = self.path(out);
        std::fs::create_dir_all(&out).unwrap();
        let mut cmd = cmd();
        cmd.env("SOURCE_DATE_EPOCH", epoch)
            .arg("build")
            .arg(src)
            .arg("--out")
            .arg(&out);
        for k in keys {
            cmd.arg("--key").arg(k);
        }
        outcome(&cmd.output().unwrap())
    }

    /// Builds `src` signed by `keys` into `out`; panics on failure. Returns the kit path.
    pub fn build_in(&self, src: &Path, keys: &[&Path], out: &str) -> PathBuf {
        let (code, stdout, stderr) = self.try_build(src, keys, out, EPOCH);
        assert_eq!(code, 0, "build failed: {stdout}{stderr}");
        PathBuf::from(stdout.lines().next().unwrap())
    }

    /// Builds `src` signed by `keys` into `out/`; panics on failure. Returns the kit path.
    pub fn build(&self, src: &Path, keys: &[&Path]) -> PathBuf {
        self.build_in(src, keys, "out")
    }
}

/// Recursively copies a folder.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Writes a file, creating parent folders.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Every file under `dir` (relative paths, sorted).
pub fn tree(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// The failure kinds of a `--json` verification report.
pub fn failure_kinds(stdout: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    v["failures"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["kind"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// python-securesystemslib's verdict on a DSSE envelope signed by the key `public` (the keyid
/// offkit gives it), each of `files` a subject with its SHA-256 (tests/python/dsse_verify.py):
/// an implementation that shares no code with offkit. Returns (accepted, what it printed).
pub fn dsse_verdict(envelope: &Path, public: &Path, files: &[&Path]) -> (bool, String) {
    let keyid = offkit::trust::PublicKey::load(public)
        .unwrap()
        .keyid()
        .to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/dsse_verify.py");
    let o = Command::new("python3")
        .arg(script)
        .arg(envelope)
        .arg(public)
        .arg(keyid)
        .args(files)
        .output()
        .expect("python3 runs (scripts/test-deps.sh installs securesystemslib)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("Traceback"), "{err}");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}
