//! Site commands check cheap things before expensive ones, and commands that need only SQL never
//! write a kit's files anywhere.
//!
//! Order: the URLs are parsed, the database reached (and for apply the lock taken), the kit's
//! header authenticated — only then is the payload read. A kit whose payload is damaged therefore
//! shows which step refused it: a busy lock or an unreachable database is reported as such (exit
//! 7 or 8), not as the damaged payload (exit 3) that a full pass would have found first.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use common::forge;
use common::{Workspace, outcome};

struct Case {
    ws: Workspace,
    kit: PathBuf,
    damaged: PathBuf,
    public: PathBuf,
}

fn case() -> Case {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&key]);
    // Same signed header, one payload byte flipped: the header authenticates, the payload pass
    // refuses the kit (digest-mismatch).
    let mut entries = forge::read(&kit);
    let i = forge::find(&entries, "seeds/catalog/items.json");
    entries[i].data[3] ^= 1;
    let damaged = ws.path("damaged/quickstart-1.0.0.kit.tar.zst");
    forge::write(&entries, &damaged);
    Case {
        ws,
        kit,
        damaged,
        public,
    }
}

impl Case {
    fn run(&self, args: &[&str], kit: &PathBuf) -> (i32, String, String) {
        let mut c = common::cmd();
        c.args(args).arg(kit).arg("--trust").arg(&self.public);
        outcome(&c.output().unwrap())
    }

    fn sqlite(&self) -> String {
        format!("sqlite://{}", self.ws.path("site.db").display())
    }

    /// Tables in the SQLite site database.
    fn tables(&self) -> Vec<String> {
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                 print('\\n'.join(r[0] for r in c.execute(\"select name from sqlite_master where type='table' order by 1\")))",
            )
            .arg(self.ws.path("site.db"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn store(&self) -> String {
        format!("file://{}", self.ws.path("store").display())
    }
}

const UNREACHABLE: &str = "postgres://postgres@127.0.0.1:1/offkit";

#[test]
fn the_damaged_payload_is_found_when_everything_cheap_passes() {
    let c = case();
    let (code, out, err) = c.run(
        &[
            "apply",
            "--db",
            &c.sqlite(),
            "--store",
            &c.store(),
            "--progress",
            "off",
        ],
        &c.damaged,
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("digest-mismatch") || err.contains("does not match"),
        "{err}"
    );
}

#[test]
fn an_unreachable_database_is_reported_before_the_payload_is_read() {
    let c = case();
    for args in [
        vec![
            "apply",
            "--store",
            "file:///nonexistent-store",
            "--db",
            UNREACHABLE,
        ],
        vec!["status", "--db", UNREACHABLE, "--kit"],
        vec!["migrations", "status", "--db", UNREACHABLE, "--kit"],
    ] {
        let (code, out, err) = c.run(&args, &c.damaged);
        assert_eq!(code, 8, "{args:?}: {out}{err}");
        assert!(!err.contains("digest"), "{args:?}: {err}");
    }
    // A mistyped URL is refused before anything else.
    let (code, _, err) = c.run(&["apply", "--db", "postgress://x"], &c.damaged);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_forged_header_is_refused_before_the_payload_and_the_ledger() {
    let c = case();
    let forged = c.ws.path("forged.kit.tar.zst");
    let mut entries = forge::read(&c.kit);
    let s = forge::find(&entries, "SHA256SUMS");
    entries[s].data[0] ^= 1;
    forge::write(&entries, &forged);
    let (code, out, err) = c.run(
        &[
            "apply",
            "--db",
            &c.sqlite(),
            "--store",
            &c.store(),
            "--json",
        ],
        &forged,
    );
    assert_eq!(code, 3, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["steps"][1]["step"], "authenticate");
    assert_eq!(report["steps"][1]["outcome"], "failed");
    assert_eq!(report["steps"].as_array().unwrap().len(), 2);
    assert!(report["kit"].is_null());
    // Nothing was recorded or created in the database: no ledger, no history table.
    assert!(c.tables().is_empty(), "{:?}", c.tables());
}

#[test]
fn a_busy_lock_is_reported_before_the_payload_is_read() {
    let c = case();
    // A first apply of the good kit holds the lock, paused right after taking it.
    let mut holder = common::cmd()
        .arg("apply")
        .arg(&c.kit)
        .arg("--trust")
        .arg(&c.public)
        .args([
            "--db",
            &c.sqlite(),
            "--store",
            &c.store(),
            "--progress",
            "off",
        ])
        .env("OFFKIT_FAILPOINT", "apply:locked")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(holder.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("offkit-failpoint: apply:locked") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "holder ended early"
        );
    }
    let started = std::time::Instant::now();
    let (code, out, err) = c.run(
        &[
            "apply",
            "--db",
            &c.sqlite(),
            "--store",
            &c.store(),
            "--lock-timeout",
            "300ms",
            "--progress",
            "off",
        ],
        &c.damaged,
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(code, 7, "{out}{err}");
    assert!(!err.contains("digest"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn status_and_migrations_with_a_kit_write_no_kit_file_anywhere() {
    let c = case();
    // A temporary folder that cannot be created: any extraction would fail.
    let nowhere = c.ws.path("no/such/tmp");
    let before = common::tree(c.ws.dir.path());
    for args in [
        vec![
            "status",
            "--db",
            &c.sqlite(),
            "--store",
            &c.store(),
            "--kit",
        ],
        vec!["migrations", "status", "--db", &c.sqlite(), "--kit"],
        vec!["migrations", "verify", "--db", &c.sqlite(), "--kit"],
    ] {
        let mut cmd = common::cmd();
        cmd.args(&args)
            .arg(&c.kit)
            .arg("--trust")
            .arg(&c.public)
            .env("TMPDIR", &nowhere);
        let (code, out, err) = outcome(&cmd.output().unwrap());
        // `status` says the kit is not complete here (nothing is applied yet): 10.
        let expected = if args[0] == "status" { 10 } else { 0 };
        assert_eq!(code, expected, "{args:?}: {out}{err}");
        assert!(!nowhere.exists());
    }
    // Nothing new in the workspace but the database file itself.
    let after: Vec<String> = common::tree(c.ws.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("site.db"))
        .collect();
    assert_eq!(after, before);
    // The status shows the kit's migrations and seeds, from the signed manifest.
    let mut cmd = common::cmd();
    cmd.args([
        "status",
        "--db",
        &c.sqlite(),
        "--store",
        &c.store(),
        "--json",
        "--kit",
    ])
    .arg(&c.kit)
    .arg("--trust")
    .arg(&c.public)
    .env("TMPDIR", &nowhere);
    let (code, out, err) = outcome(&cmd.output().unwrap());
    assert_eq!(code, 10, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["migrations"]["entries"].as_array().unwrap().len(), 5);
    assert_eq!(v["verdict"], "incomplete");
    assert_eq!(v["seeds"]["entries"].as_array().unwrap().len(), 2);
    assert_eq!(v["complete"], false);
}

#[test]
fn migrations_with_a_kit_refuse_a_kit_written_for_another_database() {
    let c = case();
    let (key, _) = c.ws.key("release");
    let src = c.ws.path("src-pg");
    common::copy_tree(&c.ws.example_source("quickstart"), &src);
    let toml = std::fs::read_to_string(src.join("kit.toml")).unwrap();
    std::fs::write(
        src.join("kit.toml"),
        toml.replace("target = \"any\"", "target = \"postgres\""),
    )
    .unwrap();
    let pg_kit = c.ws.build_in(&src, &[&key], "out-pg");
    for args in [
        vec!["migrations", "run", "--db", &c.sqlite(), "--kit"],
        vec!["migrations", "status", "--db", &c.sqlite(), "--kit"],
        vec![
            "migrations",
            "rollback",
            "--module",
            "inventory",
            "--db",
            &c.sqlite(),
            "--kit",
        ],
    ] {
        let (code, out, err) = c.run(&args, &pg_kit);
        assert_eq!(code, 11, "{args:?}: {out}{err}");
        assert!(err.contains("targets postgres"), "{err}");
    }
    assert!(c.tables().is_empty(), "{:?}", c.tables());
}
