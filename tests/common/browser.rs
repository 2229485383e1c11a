//! A real headless browser (Debian's `chromium`) renders offkit's HTML reports.

use std::path::Path;
use std::process::Command;

/// The page as the browser built it (`--dump-dom`), and a screenshot's bytes.
pub fn render(html: &Path, shot: &Path) -> (String, Vec<u8>) {
    let url = format!("file://{}", html.display());
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,2400",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs (scripts/test-deps.sh installs it)")
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let out = chromium(&[&format!("--screenshot={}", shot.display())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(dom.stdout).unwrap(),
        std::fs::read(shot).unwrap(),
    )
}
