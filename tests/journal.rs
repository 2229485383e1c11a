//! A complete audit trail (issue 13): every command that changes the database outside `apply` —
//! `migrations run`, `rollback`, `resolve`, `import-legacy` — is in `history` beside the kit
//! applications, with who, what, when, options, outcome and report digest; dry runs are not (they
//! change nothing); `--kind` and `--since` filter; a run recorded as running whose process died
//! shows as interrupted.

mod common;

use common::{Workspace, cmd, outcome};

fn offkit(ws: &Workspace, args: &[&str]) -> (i32, String, String) {
    outcome(&cmd().current_dir(ws.path("")).args(args).output().unwrap())
}

fn history(ws: &Workspace, db: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["history", "--db", db, "--json"];
    args.extend(extra);
    let (code, out, err) = offkit(ws, &args);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn rollbacks_and_reruns_between_applies_are_in_history() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let (kit, public) = (kit.to_str().unwrap(), public.to_str().unwrap());
    let db = format!("sqlite://{}", ws.path("site.db").display());
    let store = format!("file://{}", ws.path("store").display());
    let site = ["--kit", kit, "--trust", public, "--db", &db];

    let (code, out, err) = offkit(
        &ws,
        &[
            "apply", kit, "--trust", public, "--db", &db, "--store", &store,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let mut rollback = vec!["migrations", "rollback"];
    rollback.extend(site);
    rollback.extend(["--module", "inventory", "--to", "S002_stock"]);
    let (code, out, err) = offkit(&ws, &rollback);
    assert_eq!(code, 0, "{out}{err}");
    // A dry run changes nothing and is not recorded.
    let mut dry = vec!["migrations", "run"];
    dry.extend(site);
    dry.extend(["--category", "data", "--dry-run"]);
    assert_eq!(offkit(&ws, &dry).0, 0);
    let mut rerun = vec!["migrations", "run"];
    rerun.extend(site);
    rerun.extend(["--category", "data", "--json"]);
    let (code, report, err) = offkit(&ws, &rerun);
    assert_eq!(code, 0, "{report}{err}");
    // A refused resolve (nothing in progress) is recorded as refused, with why.
    let mut resolve = vec!["migrations", "resolve"];
    resolve.extend(site);
    resolve.extend(["--module", "inventory", "001_create_items", "--applied"]);
    assert_eq!(offkit(&ws, &resolve).0, 2);

    let h = history(&ws, &db, &[]);
    assert_eq!(h["entries"].as_array().unwrap().len(), 1);
    let ops = h["operations"].as_array().unwrap();
    let commands: Vec<&str> = ops.iter().map(|o| o["command"].as_str().unwrap()).collect();
    assert_eq!(
        commands,
        [
            "migrations rollback",
            "migrations run",
            "migrations resolve"
        ]
    );
    assert_eq!(ops[0]["outcome"], "succeeded");
    assert_eq!(
        ops[0]["overrides"],
        serde_json::json!(["--module inventory", "--to S002_stock"])
    );
    assert_eq!(
        ops[0]["subject"],
        format!("quickstart 1.0.0 ({kit})").as_str()
    );
    assert!(ops[0]["actor"].as_str().unwrap().contains('@'));
    assert_eq!(ops[1]["overrides"], serde_json::json!(["--category data"]));
    // The digest is that of the run's report (the report printed is the same document, in the
    // contract's envelope).
    assert_eq!(ops[1]["report_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(ops[2]["outcome"], "refused");
    assert!(
        ops[2]["error"]
            .as_str()
            .unwrap()
            .contains("is not in progress"),
        "{:#}",
        ops[2]
    );

    // A command whose kit is refused at load (here: not signed by the key given) is recorded
    // too, naming the kit file it was given and why, though it never got to the database.
    let (_, stranger) = ws.key("stranger");
    let mut refused = vec!["migrations", "run", "--kit", kit, "--trust"];
    refused.push(stranger.to_str().unwrap());
    refused.extend(["--db", &db, "--category", "data"]);
    let (code, out, err) = offkit(&ws, &refused);
    assert_eq!(code, 3, "{out}{err}");
    let h = history(&ws, &db, &["--kind", "migrations"]);
    let last = h["operations"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["command"], "migrations run", "{last:#}");
    assert_eq!(last["outcome"], "refused", "{last:#}");
    assert_eq!(last["subject"], format!("{kit} (not loaded)").as_str());
    assert!(
        last["error"].as_str().unwrap().contains("untrusted-signer"),
        "{last:#}"
    );
    assert!(last["report_sha256"].is_null());

    // Filters.
    assert!(
        history(&ws, &db, &["--kind", "apply"])["operations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        history(&ws, &db, &["--kind", "migrations"])["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let later = history(&ws, &db, &["--since", "2999-01-01T00:00:00Z"]);
    assert!(later["entries"].as_array().unwrap().is_empty());
    assert!(later["operations"].as_array().unwrap().is_empty());
    assert_eq!(
        history(&ws, &db, &["--kit", "quickstart"])["operations"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "the refused run names only the file it was given"
    );
    assert!(
        history(&ws, &db, &["--kit", "other"])["operations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (code, _, err) = offkit(&ws, &["history", "--db", &db, "--since", "yesterday"]);
    assert_eq!(code, 2, "{err}");

    // The human timeline lists all four in order.
    let (code, out, _) = offkit(&ws, &["history", "--db", &db]);
    assert_eq!(code, 0);
    let apply_at = out.find(" apply quickstart 1.0.0").unwrap();
    let rollback_at = out
        .find("migrations rollback from quickstart 1.0.0")
        .unwrap();
    let run_at = out.find("migrations run from quickstart 1.0.0").unwrap();
    assert!(apply_at < rollback_at && rollback_at < run_at, "{out}");

    // A run whose process died (left `running`, the lock free) shows as interrupted, and the
    // next command that takes the lock records it so.
    let o = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"insert into offkit_operations (command, subject, actor, started_at, outcome, overrides) values ('migrations run', 'quickstart 1.0.0 (k)', 'ops@host', '2026-12-01T00:00:00Z', 'running', '[]')\"); c.commit()"])
        .arg(ws.path("site.db"))
        .status()
        .unwrap();
    assert!(o.success());
    let h = history(&ws, &db, &["--kind", "migrations"]);
    let dead = h["operations"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(dead["outcome"], "interrupted", "{dead:#}");
    assert!(
        dead["error"]
            .as_str()
            .unwrap()
            .contains("no process holds the migration lock")
    );
    assert_eq!(offkit(&ws, &rerun).0, 0);
    let h = history(&ws, &db, &["--kind", "migrations"]);
    let ops = h["operations"].as_array().unwrap();
    assert_eq!(ops[4]["outcome"], "interrupted");
    assert!(
        ops[4]["finished_at"].is_string(),
        "recorded, not only shown: {:#}",
        ops[4]
    );
    assert_eq!(ops.len(), 6);
}

#[test]
fn refused_applies_are_recorded_in_an_existing_ledger() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (_, stranger) = ws.key("stranger");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let pg_kit = ws.build_in(&ws.example_source("concelier-lnm"), &[&key], "pg");
    let db = format!("sqlite://{}", ws.path("site.db").display());
    let store = format!("file://{}", ws.path("store").display());
    let apply = |kit: &std::path::Path, trust: &std::path::Path| {
        offkit(
            &ws,
            &[
                "apply",
                kit.to_str().unwrap(),
                "--trust",
                trust.to_str().unwrap(),
                "--db",
                &db,
                "--store",
                &store,
            ],
        )
    };
    assert_eq!(apply(&kit, &public).0, 0);
    // Wrong target: the kit is known (authenticated), the refusal says why.
    let (code, out, err) = apply(&pg_kit, &public);
    assert_eq!(code, 11, "{out}{err}");
    // Untrusted signer: nothing of the kit is known but its file name.
    let (code, out, err) = apply(&kit, &stranger);
    assert_eq!(code, 3, "{out}{err}");
    let h = history(&ws, &db, &["--kind", "apply"]);
    let rows = h["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{h:#}");
    assert_eq!(rows[1]["outcome"], "refused");
    assert_eq!(rows[1]["kit_name"], "concelier-lnm");
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("targets postgres"),
        "{:#}",
        rows[1]
    );
    assert_eq!(rows[2]["outcome"], "refused");
    assert_eq!(rows[2]["kit_name"], "quickstart-1.0.0.kit.tar.zst");
    assert!(rows[2]["finished_at"].is_string());
    // A refused row never counts as applied: the kit still applies as before.
    assert_eq!(apply(&kit, &public).0, 0);
}

#[test]
fn store_put_dir_runs_are_in_history() {
    let ws = Workspace::new();
    common::write(&ws.path("seeds/a.txt"), "alpha");
    common::write(&ws.path("seeds/b/c.txt"), "gamma");
    let db = format!("sqlite://{}", ws.path("site.db").display());
    let store = format!("file://{}", ws.path("store").display());
    let seeds = ws.path("seeds");
    let put = |extra: &[&str]| {
        let mut args = vec![
            "store",
            "put-dir",
            &store,
            seeds.to_str().unwrap(),
            "--db",
            &db,
        ];
        args.extend(extra);
        offkit(&ws, &args)
    };
    // A dry run touches no database.
    assert_eq!(put(&["--dry-run"]).0, 0);
    assert!(!ws.path("site.db").exists());
    let (code, report, err) = put(&["--json", "--prefix", "seed"]);
    assert_eq!(code, 0, "{report}{err}");
    // A conflict (the folder's bytes differ from the stored object's) stops before writing
    // anything: on record as refused, with why.
    common::write(&ws.path("seeds/a.txt"), "ALPHA");
    let (code, out, err) = put(&["--prefix", "seed"]);
    assert_eq!(code, 12, "{out}{err}");

    let h = history(&ws, &db, &["--kind", "store"]);
    assert!(h["entries"].as_array().unwrap().is_empty());
    let ops = h["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2, "{h:#}");
    for op in ops {
        assert_eq!(op["command"], "store put-dir");
        assert_eq!(
            op["subject"],
            format!("folder {} into {store}", seeds.display()).as_str()
        );
        assert_eq!(op["overrides"], serde_json::json!(["--prefix seed"]));
    }
    assert_eq!(ops[0]["outcome"], "succeeded");
    // The digest is that of the report (printed inside the contract's envelope).
    let printed: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(printed["totals"]["put"], 2);
    assert_eq!(ops[0]["report_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(ops[1]["outcome"], "refused", "{:#}", ops[1]);
    assert!(
        ops[1]["error"].as_str().unwrap().contains("conflict"),
        "{:#}",
        ops[1]
    );
    assert!(
        history(&ws, &db, &["--kind", "migrations"])["operations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, text, _) = offkit(&ws, &["history", "--db", &db]);
    assert!(
        text.contains(&format!("store put-dir from folder {}", seeds.display())),
        "{text}"
    );
}
