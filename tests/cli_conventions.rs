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
        "offkit {} (kit formats offkit/v1 and offkit/v2, source ",
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

#[test]
fn common_mix_ups_are_named_with_what_to_give_instead() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&key]);
    let (kit_s, key_s, pub_s, src_s) = (
        kit.to_str().unwrap(),
        key.to_str().unwrap(),
        public.to_str().unwrap(),
        src.to_str().unwrap(),
    );
    let db = format!("sqlite://{}", ws.path("site.db").display());
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        // The private key as --trust: named, never parsed as ASN.1 for the operator to decode.
        (
            vec!["verify", kit_s, "--trust", key_s],
            2,
            "is a private key; a trusted key is a public key",
        ),
        // The public key as --key: not "chmod 600 the public key".
        (
            vec!["build", src_s, "--key", pub_s, "--out", "."],
            2,
            "is a public key; signing takes the private key",
        ),
        // A source folder where a kit goes, and a kit where a source folder goes.
        (
            vec!["verify", src_s, "--trust", pub_s],
            6,
            "is a kit source folder, not a kit: build it first",
        ),
        (
            vec!["apply", src_s, "--trust", pub_s, "--db", &db],
            6,
            "is a kit source folder, not a kit",
        ),
        (
            vec!["build", kit_s, "--key", key_s, "--out", "."],
            2,
            "is a built kit (verify, inspect or apply it); build takes a kit source folder",
        ),
        // A database URL as the store, a store URL as the database.
        (
            vec!["store", "ls", &db],
            2,
            "sqlite:// is a database URL: it goes to --db",
        ),
        (
            vec!["history", "--db", "file:///srv/objects"],
            2,
            "file:// is an object-store URL (it goes to --store)",
        ),
        (
            vec!["history", "--db", "s3://bucket/prefix"],
            2,
            "s3:// is an object-store URL (it goes to --store)",
        ),
    ];
    for (args, code, says) in cases {
        let (c, out, err) = common::outcome(
            &common::cmd()
                .current_dir(ws.path(""))
                .args(&args)
                .output()
                .unwrap(),
        );
        assert_eq!(c, code, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("ASN.1") && !err.contains("chmod"),
            "{args:?}: {err}"
        );
    }
    assert!(!ws.path("site.db").exists());
    // A mistyped folder store is not an empty one.
    let (c, _, err) = common::outcome(
        &common::cmd()
            .args([
                "store",
                "ls",
                &format!("file://{}", ws.path("no-such-store").display()),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(c, 12, "{err}");
    assert!(err.contains("no such store folder"), "{err}");
}

#[test]
fn the_readme_exit_code_table_is_the_one_the_code_uses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Exit codes section");
    let rows: Vec<(u8, String)> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse::<u8>().ok()?;
            Some((code, cells.get(2)?.replace('`', "")))
        })
        .collect();
    let table: Vec<(u8, String)> = offkit::exit::Exit::TABLE
        .iter()
        .map(|(e, m)| (e.code(), (*m).to_owned()))
        .collect();
    assert_eq!(rows, table);
    // And `--help` prints it.
    let (code, out, _) = common::outcome(&common::cmd().arg("--help").output().unwrap());
    assert_eq!(code, 0);
    for (c, meaning) in &table {
        assert!(out.contains(&format!("{c:>2}  {meaning}")), "{out}");
    }
}

#[test]
fn output_folders_are_made_when_missing_by_keygen_build_and_split() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = ws.example_source("quickstart");
    let run = |args: &[&str]| common::outcome(&common::cmd().args(args).output().unwrap());
    let (code, out, err) = run(&["keygen", "--out", ws.path("a/b/k").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let dist = ws.path("c/d");
    let (code, out, err) = run(&[
        "build",
        src.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        dist.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let kit = out.lines().next().unwrap().to_owned();
    let (code, out, err) = run(&[
        "split",
        &kit,
        "--max-part-size",
        "8192",
        "--out",
        ws.path("e/f").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(ws.path("e/f").read_dir().unwrap().count() >= 1);
    // A build refused for its source makes no folder.
    let (code, _, _) = run(&[
        "build",
        ws.path("no-source").to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        ws.path("g").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(!ws.path("g").exists());
}

/// Every `offkit …` command line the README shows names a real command and only flags that
/// command has: a renamed command or flag cannot leave the README behind.
#[test]
fn every_command_line_in_the_readme_uses_real_commands_and_flags() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut lines = Vec::new();
    let mut in_code = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let prompted = line.starts_with("$ ");
        let text = line.strip_prefix("$ ").unwrap_or(line);
        if pending.is_empty() && !text.starts_with("offkit ") {
            continue;
        }
        // Unprompted lines are commands in blocks of commands, but output in others
        // (`offkit 0.1.0 (kit format …)` after `$ offkit --version`).
        if pending.is_empty() && !prompted {
            let second = text.split_whitespace().nth(1).unwrap_or("");
            let root = <offkit::cli::Cli as clap::CommandFactory>::command();
            if root.find_subcommand(second).is_none() {
                continue;
            }
        }
        pending.push_str(text.trim_end_matches('\\'));
        pending.push(' ');
        if !text.ends_with('\\') {
            lines.push(std::mem::take(&mut pending));
        }
    }
    assert!(lines.len() > 40, "found only {} command lines", lines.len());
    let root = <offkit::cli::Cli as clap::CommandFactory>::command();
    let long_names = |c: &clap::Command| -> Vec<String> {
        c.get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    };
    let globals = long_names(&root);
    for line in &lines {
        // A comment after the command (`# exit 9 on drift`) is not part of it.
        let command = line.split(" # ").next().unwrap_or(line);
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        let mut cmd = &root;
        let mut rest = words.as_slice();
        while let Some((first, tail)) = rest.split_first() {
            match cmd.find_subcommand(first) {
                Some(sub) => {
                    cmd = sub;
                    rest = tail;
                }
                None => break,
            }
        }
        assert!(
            !std::ptr::eq(cmd, &root) || words.first().is_some_and(|w| w.starts_with("--")),
            "README: {line:?} names no command"
        );
        let known: Vec<String> = long_names(cmd)
            .into_iter()
            .chain(globals.iter().cloned())
            .chain(["help".to_owned(), "version".to_owned()])
            .collect();
        for flag in rest.iter().filter_map(|w| w.strip_prefix("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                known.iter().any(|k| k == flag),
                "README: {line:?}: `{}` has no --{flag}",
                cmd.get_name()
            );
        }
    }
}

/// A remark of the verifier (here: an expired kit accepted under `--allow-expired`) reaches the
/// operator of every command that verifies the kit — once, not once per path it took — and its
/// `--json` document.
#[test]
fn verifier_warnings_are_said_once_by_every_command_that_verifies() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    let toml = src.join("kit.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replacen(
            "target = \"any\"",
            "target = \"any\"\nexpires = \"2026-02-01T00:00:00Z\"",
            1,
        ),
    )
    .unwrap();
    let kit = ws.build(&src, &[&key]);
    let (kit, public) = (kit.to_str().unwrap(), public.to_str().unwrap());
    let db = format!("sqlite://{}", ws.path("site.db").display());
    let store = format!("file://{}", ws.path("store").display());
    let trust = ["--trust", public, "--allow-expired"];
    const SAID: &str = "kit expired at 2026-02-01T00:00:00Z; accepted because of --allow-expired";
    let commands: Vec<Vec<&str>> = vec![
        vec!["verify", kit],
        vec!["apply", kit, "--db", &db, "--store", &store],
        vec!["status", kit, "--db", &db, "--store", &store],
        vec!["migrations", "status", "--kit", kit, "--db", &db],
        vec![
            "migrations",
            "run",
            "--kit",
            kit,
            "--db",
            &db,
            "--category",
            "data",
        ],
    ];
    for args in commands {
        let with_trust = |json: bool| {
            let mut a = args.clone();
            a.extend(trust);
            if json {
                a.push("--json");
            }
            a
        };
        let o = common::cmd().args(with_trust(false)).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(0), "{args:?}: {all}");
        assert_eq!(all.matches(SAID).count(), 1, "{args:?}: {all}");
        let o = common::cmd().args(with_trust(true)).output().unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains(SAID), "{args:?} --json: {stdout}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap();
    }
}
