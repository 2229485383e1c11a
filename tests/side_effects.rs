//! No side effects without intent (issue 13): commands that only read, `--dry-run` and refusals
//! create no database file, no table and no store folder — a typo in a URL must not leave a new
//! empty database behind for the next command to trust.

mod common;

use std::path::Path;

use common::{Workspace, cmd, outcome};

/// The tables of a SQLite file (python3's sqlite3: not offkit's code).
fn tables(db: &Path) -> Vec<String> {
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print('\\n'.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(\"select name from sqlite_master order by 1\")))",
        ])
        .arg(db)
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn offkit(ws: &Workspace, args: &[&str]) -> (i32, String, String) {
    outcome(&cmd().current_dir(ws.path("")).args(args).output().unwrap())
}

#[test]
fn read_only_commands_and_dry_runs_create_no_database_and_no_table() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (site_key, _) = ws.key("site");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let (kit, public, site_key) = (
        kit.display().to_string(),
        public.display().to_string(),
        site_key.display().to_string(),
    );
    let store = format!("file://{}", ws.path("store").display());
    // A database that does not exist, and one that exists with a table of the site's own.
    let absent = ws.path("typo.db");
    let existing = ws.path("existing.db");
    let o = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table site_own(x)'); c.commit()"])
        .arg(&existing)
        .status()
        .unwrap();
    assert!(o.success());
    for db in [&absent, &existing] {
        let url = format!("sqlite://{}", db.display());
        let commands: Vec<Vec<&str>> = vec![
            vec!["history", "--db", &url],
            vec![
                "status", "--kit", &kit, "--trust", &public, "--db", &url, "--store", &store,
            ],
            vec![
                "migrations",
                "status",
                "--kit",
                &kit,
                "--trust",
                &public,
                "--db",
                &url,
            ],
            vec![
                "migrations",
                "verify",
                "--kit",
                &kit,
                "--trust",
                &public,
                "--db",
                &url,
            ],
            vec![
                "migrations",
                "check",
                "--kit",
                &kit,
                "--trust",
                &public,
                "--db",
                &url,
            ],
            vec![
                "apply",
                &kit,
                "--trust",
                &public,
                "--db",
                &url,
                "--store",
                &store,
                "--dry-run",
            ],
            vec!["report", "--db", &url, "--html", "report.html"],
            vec![
                "receipt", "issue", "--db", &url, "--key", &site_key, "--entry", "1", "--out",
                "r.json",
            ],
            vec!["store", "migrations", "--db", &url],
            vec!["store", "report", "1", "--db", &url],
        ];
        for args in &commands {
            let (code, out, err) = offkit(&ws, args);
            assert!(
                code == 0 || code == 10 || code == 2,
                "{args:?}: {code} {out}{err}"
            );
            if db == &absent {
                assert!(!absent.exists(), "{args:?} created {}", absent.display());
                if code == 0 {
                    assert!(
                        err.contains(
                            "does not exist: read as an empty database (nothing was created)"
                        ),
                        "{args:?}: {err}"
                    );
                }
            } else {
                assert_eq!(tables(&existing), ["site_own"], "{args:?} created tables");
            }
            assert!(
                !ws.path("store").exists(),
                "{args:?} created the store folder"
            );
            assert!(
                !ws.path("offkit.db").exists(),
                "{args:?} created ./offkit.db"
            );
        }
    }
    // The default database too: a dry run in a fresh folder leaves it as it was.
    let (code, out, err) = offkit(&ws, &["apply", &kit, "--trust", &public, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!ws.path("offkit.db").exists());
    assert!(!ws.path("offkit-store").exists());
}

#[test]
fn a_refused_apply_leaves_no_new_database_file() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (_, stranger) = ws.key("stranger");
    let pg_kit = ws.build_in(&ws.example_source("concelier-lnm"), &[&key], "pg");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let store = format!("file://{}", ws.path("store").display());
    let db = ws.path("new.db");
    let url = format!("sqlite://{}", db.display());
    // Refused for its target, for its signer: no file, no store folder.
    for (kit, trust, code) in [(&pg_kit, &public, 11), (&kit, &stranger, 3)] {
        let (c, out, err) = offkit(
            &ws,
            &[
                "apply",
                kit.to_str().unwrap(),
                "--trust",
                trust.to_str().unwrap(),
                "--db",
                &url,
                "--store",
                &store,
            ],
        );
        assert_eq!(c, code, "{out}{err}");
        assert!(!db.exists(), "a refused apply left {}", db.display());
        assert!(!ws.path("new.db.offkit-lock").exists());
        assert!(!ws.path("store").exists());
    }
    // Accepted: the database is made.
    let (c, out, err) = offkit(
        &ws,
        &[
            "apply",
            kit.to_str().unwrap(),
            "--trust",
            public.to_str().unwrap(),
            "--db",
            &url,
            "--store",
            &store,
        ],
    );
    assert_eq!(c, 0, "{out}{err}");
    assert!(
        tables(&db).iter().any(|t| t == "offkit_kit_applications"),
        "{:?}",
        tables(&db)
    );
}

/// `store put-dir` records its runs in the database (default `./offkit.db`): a mistyped folder
/// is refused before the database is touched, and a dry run never touches it.
#[test]
fn a_refused_or_planned_put_dir_makes_no_database() {
    let ws = Workspace::new();
    common::write(&ws.path("seeds/a.txt"), "a");
    let store = format!("file://{}", ws.path("store").display());
    let (code, _, err) = offkit(&ws, &["store", "put-dir", &store, "no-such-folder"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("no-such-folder is not a folder"), "{err}");
    let (code, _, err) = offkit(&ws, &["store", "put-dir", &store, "seeds", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(!ws.path("offkit.db").exists());
    assert!(
        !ws.path("store").exists(),
        "a dry run makes no store folder"
    );
    // The run that puts is on record in ./offkit.db.
    let (code, _, err) = offkit(&ws, &["store", "put-dir", &store, "seeds"]);
    assert_eq!(code, 0, "{err}");
    assert!(tables(&ws.path("offkit.db")).contains(&"offkit_operations".to_owned()));
}
