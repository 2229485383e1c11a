//! A closed stdout (`offkit verify … | head -1`) ends offkit quietly with 141 (128 + SIGPIPE), as
//! `ls` or `rg` end — never a panic, and never a success for a refusal that could not be printed.

mod common;

use std::process::Stdio;

use common::Workspace;

/// Runs offkit with a stdout whose reading end is already closed; returns (code, stderr).
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = common::cmd()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly_with_141_for_success_and_refusal_alike() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let (_, stranger) = ws.key("stranger");
    for (trust, json) in [
        (&public, false),
        (&public, true),
        (&stranger, false),
        (&stranger, true),
    ] {
        let mut args = vec![
            "verify",
            kit.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        let (code, err) = with_closed_stdout(&args);
        assert_eq!(code, 141, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
