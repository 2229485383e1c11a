//! Running the real `offkit` binary in tests, and killing it at a failpoint.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// Loaded by path beside `common` in some tests and without it in others: each copy is the same
// small module.
#[allow(clippy::duplicate_mod)]
#[path = "state.rs"]
mod state;

/// A command for the offkit binary under test, with a record of accepted kits and a working folder
/// of its own (never the user's: a test must not meet the records of earlier runs).
pub fn offkit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_offkit"));
    c.env_remove("OFFKIT_FAILPOINT")
        .env("OFFKIT_STATE", state::fresh_state())
        .current_dir(state::fresh_cwd());
    c
}

/// Runs it and returns the output, with stdout and stderr as text.
pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("running offkit");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Runs `cmd` with failpoint `name` armed, waits until the process reports reaching it, then
/// SIGKILLs it. Before the kill, `at_failpoint` runs with the process id (to inspect the process).
/// Panics if the process exits or does not reach the failpoint in time.
pub fn kill_at_failpoint(cmd: &mut Command, name: &str, at_failpoint: impl FnOnce(u32)) -> String {
    let mut child = cmd
        .env("OFFKIT_FAILPOINT", name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning offkit");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if let Some(reached) = line.strip_prefix("offkit-failpoint: ") {
                    let reached = reached.to_owned();
                    at_failpoint(child.id());
                    child.kill().expect("SIGKILL");
                    child.wait().expect("reaping");
                    return reached;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("failpoint {name} not reached ({status:?}); stderr:\n{seen}");
            }
        }
    }
}

/// Peak resident memory of a live process, in KiB (`VmHWM` from /proc).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Runs two `offkit store put-dir --json` at the same time on the same store and folder; both
/// must succeed; returns the total number of puts and skips over the two reports.
pub fn concurrent_put_dirs(url: &str, dir: &std::path::Path, env: &[(&str, String)]) -> (u64, u64) {
    let spawn = || {
        offkit()
            .args([
                "store",
                "put-dir",
                "--json",
                "--progress",
                "off",
                "--parallelism",
                "4",
                url,
            ])
            .arg(dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning offkit")
    };
    let (a, b) = (spawn(), spawn());
    let mut puts = 0;
    let mut skips = 0;
    for child in [a, b] {
        let out = child.wait_with_output().expect("waiting for offkit");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
        puts += r["totals"]["put"].as_u64().unwrap();
        skips += r["totals"]["skipped"].as_u64().unwrap();
    }
    (puts, skips)
}
