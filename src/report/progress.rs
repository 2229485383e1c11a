//! Progress of long operations (seeding objects now, applying kits later).
//!
//! On a terminal it is an `indicatif` bar on stderr. Elsewhere (logs, CI, a pipe) it is plain lines
//! on stderr, rate-limited to one every [`LINE_EVERY_ITEMS`] items or [`LINE_EVERY`], whichever
//! comes first, plus a final line:
//!
//! ```text
//! Progress: 1500/10000 (15.0%) - Success: 1495, Failed: 3, Skipped: 2
//! ```
//!
//! Counting is lock-free; printing takes a lock only when a line is due. This module does not
//! decide what counts as success: callers do.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// At most one plain line per this many finished items (between time-based lines).
pub const LINE_EVERY_ITEMS: u64 = 1000;
/// At most this long between plain lines while items finish.
pub const LINE_EVERY: Duration = Duration::from_secs(2);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always a bar.
    Bar,
    /// Always plain `Progress: …` lines.
    Lines,
    /// Nothing.
    Off,
}

/// Counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Items expected in all.
    pub total: u64,
    /// Items that succeeded.
    pub success: u64,
    /// Items that failed (or conflicted).
    pub failed: u64,
    /// Items skipped because there was nothing to do.
    pub skipped: u64,
}

impl Counts {
    /// Items finished one way or another.
    pub fn done(&self) -> u64 {
        self.success + self.failed + self.skipped
    }

    /// The plain progress line.
    pub fn line(&self) -> String {
        let pct = if self.total == 0 {
            100.0
        } else {
            self.done() as f64 * 100.0 / self.total as f64
        };
        format!(
            "Progress: {}/{} ({pct:.1}%) - Success: {}, Failed: {}, Skipped: {}",
            self.done(),
            self.total,
            self.success,
            self.failed,
            self.skipped
        )
    }
}

struct Lines {
    out: Box<dyn Write + Send>,
    last_at: Instant,
    last_done: u64,
    every_items: u64,
    every: Duration,
    finished: bool,
}

enum Output {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
    Off,
}

/// A progress reporter shared by worker threads.
pub struct Progress {
    total: AtomicU64,
    success: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    output: Output,
}

impl Progress {
    /// A reporter on stderr for `total` items; `label` prefixes the bar.
    pub fn new(label: &str, total: u64, mode: ProgressMode) -> Self {
        let output = if mode == ProgressMode::Off {
            Output::Off
        } else if let Some(pb) = bar(mode, label, total, "{pos}/{len} {msg} ETA {eta}") {
            Output::Bar(pb)
        } else {
            return Self::with_writer(
                total,
                Box::new(std::io::stderr()),
                LINE_EVERY_ITEMS,
                LINE_EVERY,
            );
        };
        Self::build(total, output)
    }

    /// A plain-line reporter writing to `out`, one line per `every_items` items or `every`.
    pub fn with_writer(
        total: u64,
        out: Box<dyn Write + Send>,
        every_items: u64,
        every: Duration,
    ) -> Self {
        let lines = Lines {
            out,
            last_at: Instant::now(),
            last_done: 0,
            every_items: every_items.max(1),
            every,
            finished: false,
        };
        Self::build(total, Output::Lines(Mutex::new(lines)))
    }

    /// A reporter that shows nothing (counts are still kept).
    pub fn hidden(total: u64) -> Self {
        Self::build(total, Output::Off)
    }

    fn build(total: u64, output: Output) -> Self {
        Progress {
            total: AtomicU64::new(total),
            success: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            output,
        }
    }

    /// Adds `n` items to the total: work whose size is learnt as it goes (a listing still being
    /// read) grows its total, so `done` never passes it.
    pub fn add_total(&self, n: u64) {
        let total = self.total.fetch_add(n, Ordering::Relaxed) + n;
        if let Output::Bar(pb) = &self.output {
            pb.set_length(total);
        }
    }

    /// Counts `n` successful items.
    pub fn success(&self, n: u64) {
        self.success.fetch_add(n, Ordering::Relaxed);
        self.update();
    }

    /// Counts `n` failed items.
    pub fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        self.update();
    }

    /// Counts `n` skipped items.
    pub fn skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
        self.update();
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        Counts {
            total: self.total.load(Ordering::Relaxed),
            success: self.success.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    fn update(&self) {
        match &self.output {
            Output::Off => {}
            Output::Bar(pb) => {
                let c = self.counts();
                pb.set_position(c.done());
                pb.set_message(format!(
                    "ok {} failed {} skipped {}",
                    c.success, c.failed, c.skipped
                ));
            }
            Output::Lines(lines) => {
                let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                let c = self.counts();
                let due = c.done() >= l.last_done + l.every_items
                    || (c.done() > l.last_done && l.last_at.elapsed() >= l.every);
                if due && !l.finished {
                    l.last_done = c.done();
                    l.last_at = Instant::now();
                    // Progress output is best effort: a closed stderr must not fail the work.
                    let _ = writeln!(l.out, "{}", c.line());
                }
            }
        }
    }

    /// Shows the final state (the last line, or the finished bar). Idempotent.
    pub fn finish(&self) {
        match &self.output {
            Output::Off => {}
            Output::Bar(pb) => {
                // Replace the bar by the plain final line, so the screen and a log read alike.
                if !pb.is_finished() {
                    pb.finish_and_clear();
                    eprintln!("{}", self.counts().line());
                }
            }
            Output::Lines(lines) => {
                let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                if !l.finished {
                    l.finished = true;
                    let _ = writeln!(l.out, "{}", self.counts().line());
                    let _ = l.out.flush();
                }
            }
        }
    }
}

/// A bar on stderr for `total` units, `label` first and `template` after it, when `mode` shows
/// one (`bar`, or `auto` on a terminal); `None` for lines or nothing.
fn bar(mode: ProgressMode, label: &str, total: u64, template: &str) -> Option<ProgressBar> {
    let shown = match mode {
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Bar => true,
        ProgressMode::Lines | ProgressMode::Off => false,
    };
    shown.then(|| {
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(&format!("{{prefix}} [{{wide_bar}}] {template}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        pb.set_style(style);
        pb.set_prefix(label.to_owned());
        pb
    })
}

/// The process's progress setting (`--progress`), for work that has no options of its own to
/// carry it (verification). Set once by the command line.
static MODE: std::sync::OnceLock<ProgressMode> = std::sync::OnceLock::new();

/// Sets the process's progress mode (the first call wins).
pub fn set_mode(mode: ProgressMode) {
    let _ = MODE.set(mode);
}

/// The process's progress mode: what `--progress` said, else `off` (a library caller that said
/// nothing sees nothing on its stderr).
pub fn mode() -> ProgressMode {
    MODE.get().copied().unwrap_or(ProgressMode::Off)
}

/// Progress in bytes of one long pass (verifying a kit's payload): a bar with rate and ETA on a
/// terminal; elsewhere a plain line every [`LINE_EVERY`] — only once the pass has lasted that
/// long, so that a short one leaves no trace in a log — and a final line if any was printed:
///
/// ```text
/// Progress: verify 1.2 GiB of 4.0 GiB (30.0%), 410.5 MiB/s, ETA 7s
/// ```
pub struct ByteProgress {
    label: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    output: ByteOutput,
}

enum ByteOutput {
    Bar(ProgressBar),
    Lines(Mutex<(Instant, bool)>),
    Off,
}

impl ByteProgress {
    /// A reporter on stderr for `total` bytes, in the process's mode ([`mode`]).
    pub fn new(label: &str, total: u64) -> Self {
        let mode = mode();
        let output = if mode == ProgressMode::Off {
            ByteOutput::Off
        } else if let Some(pb) = bar(
            mode,
            label,
            total,
            "{binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ) {
            ByteOutput::Bar(pb)
        } else {
            ByteOutput::Lines(Mutex::new((Instant::now(), false)))
        };
        ByteProgress {
            label: label.to_owned(),
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            output,
        }
    }

    /// Counts `n` more bytes.
    pub fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.output {
            ByteOutput::Off => {}
            ByteOutput::Bar(pb) => pb.set_position(done),
            ByteOutput::Lines(state) => {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                if s.0.elapsed() >= LINE_EVERY {
                    s.0 = Instant::now();
                    s.1 = true;
                    eprintln!("{}", self.line(done));
                }
            }
        }
    }

    /// The plain line for `done` bytes.
    fn line(&self, done: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let eta = if rate > 0.0 && done < self.total {
            format!(", ETA {:.0}s", (self.total - done) as f64 / rate)
        } else {
            String::new()
        };
        format!(
            "Progress: {} {} of {} ({pct:.1}%), {}/s{eta}",
            self.label,
            crate::util::human_bytes(done),
            crate::util::human_bytes(self.total),
            crate::util::human_bytes(rate as u64)
        )
    }

    /// Clears the bar, or prints the final line when lines were printed. Idempotent.
    pub fn finish(&self) {
        match &self.output {
            ByteOutput::Off => {}
            ByteOutput::Bar(pb) => {
                if !pb.is_finished() {
                    pb.finish_and_clear();
                }
            }
            ByteOutput::Lines(state) => {
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                if s.1 {
                    s.1 = false;
                    eprintln!("{}", self.line(self.done.load(Ordering::Relaxed)));
                }
            }
        }
    }
}

impl Drop for ByteProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Progress through a list of named steps (migrations): on a terminal a bar naming the current
/// step; elsewhere a line as each step starts — once the run has lasted [`LINE_EVERY`], so that a
/// quick run leaves no trace in a log:
///
/// ```text
/// Progress: migration 3 of 5: inventory/DM001_backfill_name_search
/// Progress: migration 3 of 5: inventory/DM001_backfill_name_search: batch 12, 12000 rows
/// ```
///
/// A long step reports how far it got ([`Steps::detail`]: a data migration's batches and rows), on
/// the bar and, in lines, at most every [`LINE_EVERY`].
pub struct Steps {
    label: String,
    total: u64,
    started: Instant,
    output: Option<ProgressBar>,
    lines: bool,
    current: Mutex<Current>,
}

/// The step under way, and when a line was last printed.
struct Current {
    index: u64,
    name: String,
    last_line: Instant,
}

impl Steps {
    /// A reporter on stderr for `total` steps, in the process's mode ([`mode`]).
    pub fn new(label: &str, total: u64) -> Self {
        let mode = mode();
        let output = bar(mode, label, total, "{pos}/{len} {msg}");
        let started = Instant::now();
        Steps {
            label: label.to_owned(),
            total,
            started,
            lines: output.is_none() && mode != ProgressMode::Off,
            output,
            current: Mutex::new(Current {
                index: 0,
                name: String::new(),
                last_line: started,
            }),
        }
    }

    /// Step `index` (from 0), named `name`, starts.
    pub fn start(&self, index: u64, name: &str) {
        let mut c = self.current.lock().unwrap_or_else(|p| p.into_inner());
        c.index = index;
        c.name = name.to_owned();
        if let Some(pb) = &self.output {
            pb.set_position(index);
            pb.set_message(name.to_owned());
        } else if self.lines && self.started.elapsed() >= LINE_EVERY {
            c.last_line = Instant::now();
            eprintln!("{}", self.line(&c, None));
        }
    }

    /// How far the current step got (`batch 12, 12000 rows`).
    pub fn detail(&self, detail: &str) {
        let mut c = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pb) = &self.output {
            pb.set_message(format!("{}: {detail}", c.name));
        } else if self.lines
            && self.started.elapsed() >= LINE_EVERY
            && c.last_line.elapsed() >= LINE_EVERY
        {
            c.last_line = Instant::now();
            eprintln!("{}", self.line(&c, Some(detail)));
        }
    }

    fn line(&self, c: &Current, detail: Option<&str>) -> String {
        let mut line = format!(
            "Progress: {} {} of {}: {}",
            self.label,
            c.index + 1,
            self.total,
            c.name
        );
        if let Some(d) = detail {
            line.push_str(": ");
            line.push_str(d);
        }
        line
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if let Some(pb) = &self.output {
            pb.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_lines_say_how_far_how_fast_and_how_long_is_left() {
        assert_eq!(crate::util::human_bytes(0), "0 B");
        assert_eq!(crate::util::human_bytes(1023), "1023 B");
        assert_eq!(crate::util::human_bytes(1536), "1.5 KiB");
        assert_eq!(crate::util::human_bytes(3 << 30), "3.0 GiB");
        let p = ByteProgress {
            label: "verify".into(),
            total: 4 << 30,
            done: AtomicU64::new(0),
            started: Instant::now() - Duration::from_secs(2),
            output: ByteOutput::Off,
        };
        let line = p.line(1 << 30);
        assert!(
            line.starts_with("Progress: verify 1.0 GiB of 4.0 GiB (25.0%), "),
            "{line}"
        );
        // About 512 MiB/s, and 3 GiB left: about 6 s (the clock moved a little since).
        assert!(line.contains(" MiB/s, ETA "), "{line}");
        assert!(line.ends_with("6s") || line.ends_with("7s"), "{line}");
        assert!(!p.line(4 << 30).contains("ETA"));
    }
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn line_format_is_exact() {
        let c = Counts {
            total: 10000,
            success: 1495,
            failed: 3,
            skipped: 2,
        };
        assert_eq!(
            c.line(),
            "Progress: 1500/10000 (15.0%) - Success: 1495, Failed: 3, Skipped: 2"
        );
        let empty = Counts {
            total: 0,
            success: 0,
            failed: 0,
            skipped: 0,
        };
        assert_eq!(
            empty.line(),
            "Progress: 0/0 (100.0%) - Success: 0, Failed: 0, Skipped: 0"
        );
    }

    #[test]
    fn lines_are_rate_limited_and_end_with_the_final_line() {
        let buf = Shared::default();
        let p = Progress::with_writer(25, Box::new(buf.clone()), 10, Duration::from_secs(3600));
        for i in 0..25 {
            if i % 5 == 4 {
                p.skipped(1);
            } else {
                p.success(1);
            }
        }
        p.finish();
        p.finish();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "Progress: 10/25 (40.0%) - Success: 8, Failed: 0, Skipped: 2",
                "Progress: 20/25 (80.0%) - Success: 16, Failed: 0, Skipped: 4",
                "Progress: 25/25 (100.0%) - Success: 20, Failed: 0, Skipped: 5",
            ]
        );
    }
}
