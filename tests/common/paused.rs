//! Running the real `offkit` binary with a failpoint that pauses it (`OFFKIT_FAILPOINT` with
//! `OFFKIT_FAILPOINT_RESUME`), so that a test can break something at exactly that step — kill a
//! server, terminate a database connection, fill a disk — and then watch what the process does.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// An offkit process started with a pausing failpoint.
pub struct Paused {
    child: Child,
    lines: Receiver<String>,
    stderr: String,
    stdout: Option<std::thread::JoinHandle<String>>,
    resume: PathBuf,
    /// The failpoint the process reported reaching, once it did.
    pub reached: Option<String>,
}

/// What a finished process wrote and how it ended.
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Paused {
    /// Starts `cmd` with failpoint `name` armed to pause until `resume` exists (the file must not
    /// exist yet).
    pub fn start(cmd: &mut Command, name: &str, resume: &Path) -> Paused {
        assert!(!resume.exists(), "{} exists already", resume.display());
        let mut child = cmd
            .env("OFFKIT_FAILPOINT", name)
            .env("OFFKIT_FAILPOINT_RESUME", resume)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning offkit");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Paused {
            child,
            lines,
            stderr: String::new(),
            stdout: Some(stdout),
            resume: resume.to_path_buf(),
            reached: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the process reports its failpoint (or `timeout` passes: `false`). Panics when
    /// the process ends first.
    pub fn wait_reached(&mut self, timeout: Duration) -> bool {
        if self.reached.is_some() {
            return true;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(name) = line.strip_prefix("offkit-failpoint: ") {
                        self.reached = Some(name.to_owned());
                    }
                    self.stderr.push_str(&line);
                    self.stderr.push('\n');
                    if self.reached.is_some() {
                        return true;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "offkit ended ({status:?}) before its failpoint; stderr:\n{}",
                        self.stderr
                    );
                }
            }
        }
    }

    /// Waits for the failpoint, panicking after two minutes.
    pub fn reached(&mut self) -> String {
        assert!(
            self.wait_reached(Duration::from_secs(120)),
            "failpoint not reached in time; stderr:\n{}",
            self.stderr
        );
        self.reached.clone().unwrap_or_default()
    }

    /// True once the process has ended (without waiting).
    pub fn has_ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Lets the paused process go on.
    pub fn resume(&self) {
        std::fs::write(&self.resume, b"").expect("writing the resume file");
    }

    /// Waits for the process to end (resuming it first) and returns what it wrote.
    pub fn finish(mut self) -> Finished {
        if !self.resume.exists() {
            self.resume();
        }
        let status = self.child.wait().expect("waiting for offkit");
        let mut stderr = std::mem::take(&mut self.stderr);
        for line in self.lines.iter() {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        let stdout = self.stdout.take().and_then(|h| h.join().ok());
        Finished {
            status,
            code: status.code().unwrap_or(-1),
            stdout: stdout.unwrap_or_default(),
            stderr,
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a paused process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
