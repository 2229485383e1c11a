//! Honest status (issue 13): `offkit status KIT` compares seeds with the store the ledger recorded
//! for the kit unless one is given, names the `apply` command and flags that would finish the
//! kit — and running exactly that command finishes it — and exits with a code a monitoring
//! script can use: 0 complete, 10 incomplete, 12 seeds conflicting, 9 migration problems.

mod common;

use common::{Workspace, cmd, outcome, write};

fn status(ws: &Workspace, args: &[&str]) -> (i32, serde_json::Value, String) {
    let (code, out, err) = outcome(
        &cmd()
            .current_dir(ws.path(""))
            .arg("status")
            .args(args)
            .arg("--json")
            .output()
            .unwrap(),
    );
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v, err)
}

#[test]
fn status_names_the_apply_that_finishes_the_kit_and_that_apply_finishes_it() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    // A release migration: applied only with --category release.
    write(
        &src.join("migrations/inventory/100_add_suppliers.sql"),
        "CREATE TABLE suppliers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    );
    let kit = ws.build(&src, &[&key]);
    let (kit, public) = (kit.to_str().unwrap(), public.to_str().unwrap());
    let db = format!("sqlite://{}", ws.path("site.db").display());
    let store = format!("file://{}", ws.path("objects").display());

    let (code, v, err) = status(
        &ws,
        &[kit, "--trust", public, "--db", &db, "--store", &store],
    );
    assert_eq!(code, 10, "{v:#}{err}");
    assert_eq!(v["verdict"], "incomplete");
    assert_eq!(v["apply_flags"], serde_json::json!(["--category release"]));
    let next = v["next"].as_str().unwrap().to_owned();
    assert_eq!(
        next,
        format!(
            "run offkit apply {kit} --trust {public} --db {db} --store {store} --category release"
        )
    );
    assert!(!ws.path("site.db").exists(), "status created the database");

    // The advice, run as given, finishes the kit.
    let words: Vec<&str> = next
        .strip_prefix("run offkit ")
        .unwrap()
        .split(' ')
        .collect();
    let (code, out, err) = outcome(
        &cmd()
            .current_dir(ws.path(""))
            .args(&words)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, v, _) = status(
        &ws,
        &[kit, "--trust", public, "--db", &db, "--store", &store],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "complete");
    assert!(v["next"].is_null());
    // The data migration's checkpoint is shown: batches, rows, finished.
    let (code, out, _) = outcome(
        &cmd()
            .current_dir(ws.path(""))
            .args([
                "status", kit, "--trust", public, "--db", &db, "--store", &store,
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0);
    let dm = out
        .lines()
        .skip_while(|l| !l.contains("DM001_backfill_name_search"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        dm.trim_start().starts_with("checkpoint: ") && dm.contains(", finished "),
        "{out}"
    );

    // Without --store: the store this kit was applied to, as the ledger recorded it — not the
    // default folder, where nothing was ever put.
    let (code, v, err) = status(&ws, &[kit, "--trust", public, "--db", &db]);
    assert_eq!(code, 0, "{v:#}{err}");
    assert_eq!(v["store"], store.as_str());
    assert!(
        err.contains("the store apply #1 recorded for this kit"),
        "{err}"
    );
    assert!(!ws.path("offkit-store").exists());
    // Another store given: its seeds are pending there.
    let other = format!("file://{}", ws.path("elsewhere").display());
    let (code, v, _) = status(
        &ws,
        &[kit, "--trust", public, "--db", &db, "--store", &other],
    );
    assert_eq!(code, 10, "{v:#}");
    assert_eq!(v["apply_flags"], serde_json::json!([]));

    // A stored object changed: apply would refuse; status says so and exits 12.
    std::fs::write(ws.path("objects/catalog/README.txt"), "changed by hand\n").unwrap();
    let (code, v, _) = status(&ws, &[kit, "--trust", public, "--db", &db]);
    assert_eq!(code, 12, "{v:#}");
    assert_eq!(v["verdict"], "problems");
    assert_eq!(
        v["problems"],
        serde_json::json!(["seed catalog/README.txt differs from the object stored"])
    );
    assert!(v["next"].is_null());
    assert_eq!(v["error"]["kind"], "store");

    // A migration's recorded checksum differs (drift): 9. (`--kit` still names the kit.)
    let sql = "UPDATE inventory_schema_migrations SET checksum = 'x' WHERE migration_name = '100_add_suppliers'";
    let o = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); n=c.execute(sys.argv[2]).rowcount; c.commit(); assert n == 1, n"])
        .arg(ws.path("site.db"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, v, _) = status(&ws, &["--kit", kit, "--trust", public, "--db", &db]);
    assert_eq!(code, 9, "{v:#}");
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "inventory/100_add_suppliers is drift"),
        "{v:#}"
    );
}
