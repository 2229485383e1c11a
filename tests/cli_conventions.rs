//! Conventions every command keeps: a closed stdout (`offkit verify … | head -1`) ends offkit
//! quietly with 141 (128 + SIGPIPE), as `ls` or `rg` end — never a panic, and never a success for
//! a refusal that could not be printed; `--version` names the kit format and the source revision.

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

#[test]
fn version_names_the_kit_format_and_the_source_revision() {
    let o = common::run(&["--version"]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let prefix = format!(
        "offkit {} (kit format offkit/v1, source ",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.starts_with(&prefix), "{text}");
    let revision = text[prefix.len()..].trim_end().trim_end_matches(')');
    let commit = revision.trim_end_matches("-modified");
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        // Built from this checkout: a commit of it (the binary may predate a later commit).
        let known = std::process::Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(
            known.success(),
            "{revision} is not a commit of this repository"
        );
        assert_eq!(commit.len(), 12, "{revision}");
    } else {
        assert!(!revision.is_empty());
    }
}

#[test]
fn completions_load_in_bash_and_every_command_has_a_man_page() {
    let script = common::run(&["completions", "bash"]);
    assert!(script.status.success());
    let ws = Workspace::new();
    let file = ws.path("offkit.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    // Loaded by a real bash, the script registers a completion for offkit.
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p offkit", file.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("offkit"));
    for shell in ["zsh", "fish"] {
        let o = common::run(&["completions", shell]);
        assert!(o.status.success() && !o.stdout.is_empty(), "{shell}");
    }

    let dir = ws.path("man");
    let o = common::run(&["man", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let help = String::from_utf8(common::run(&["--help"]).stdout).unwrap();
    // Every command `--help` lists has its page, and man renders each without a warning.
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 15, "{commands:?}");
    for c in commands {
        let page = dir.join(format!("offkit-{c}.1"));
        let o = std::process::Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(&format!("offkit-{c}")), "{c}: {text}");
        let warnings = String::from_utf8_lossy(&o.stderr);
        assert!(warnings.trim().is_empty(), "{c}: {warnings}");
    }
    let verify = std::fs::read_to_string(dir.join("offkit-verify.1")).unwrap();
    assert!(verify.contains("trust"));
}
