//! The `postgres://…?table=` store against the real PostgreSQL server, one database per test: the
//! shared driver suite through the library, chunking, table creation, and secret redaction.

#[path = "common/store_cli.rs"]
mod cli;
#[path = "common/store_pg.rs"]
mod pg;
#[path = "common/store_suite.rs"]
mod suite;

use offkit::store::seed::SeedMode;
use offkit::store::{SeedOptions, Store, open_str};

fn setup(tag: &str) -> (pg::TestDb, Box<dyn Store>, tempfile::TempDir) {
    let db = pg::TestDb::create(tag);
    let store = open_str(&db.store_url("kitstore.objects")).unwrap();
    (db, store, tempfile::tempdir().unwrap())
}

#[test]
fn put_get_skip() {
    let (_db, store, src) = setup("putget");
    suite::put_get_skip(store.as_ref(), src.path());
}

#[test]
fn conflict_stops_and_replace_conflicting() {
    let (_db, store, src) = setup("conflict");
    suite::conflict_stops(store.as_ref(), src.path());
}

#[test]
fn dry_run_changes_nothing_not_even_the_tables() {
    let (db, store, src) = setup("dryrun");
    let seeds = [suite::seed_file(src.path(), "a.json", b"{}")];
    let dry = SeedOptions {
        mode: SeedMode::DryRun,
        ..SeedOptions::default()
    };
    let r = suite::seed_from(store.as_ref(), src.path(), &seeds, &dry).unwrap();
    assert_eq!(r.totals.put, 1);
    let exists: Option<String> = db
        .client()
        .query_one("SELECT to_regclass('kitstore.objects')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(exists, None, "a dry run created the table");
    suite::dry_run_changes_nothing(store.as_ref(), src.path());
}

#[test]
fn source_mismatch_stores_nothing() {
    let (_db, store, src) = setup("mismatch");
    suite::source_mismatch_stores_nothing(store.as_ref(), src.path());
}

#[test]
fn check_passes() {
    let (_db, store, _src) = setup("check");
    suite::check_passes(store.as_ref());
    let r = offkit::store::check::check(store.as_ref());
    assert!(
        r.steps.iter().all(|s| s.status == "ok"),
        "{}",
        r.render_text()
    );
}

#[test]
fn large_object_is_chunked() {
    let (db, store, src) = setup("large");
    let s = suite::large_object(store.as_ref(), src.path(), 64 << 20);
    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT count(*), max(octet_length(data)) FROM kitstore.objects_chunks WHERE key = $1",
            &[&s.key.as_str()],
        )
        .unwrap();
    let (chunks, biggest): (i64, i32) = (row.get(0), row.get(1));
    assert_eq!(chunks, 64, "1 MiB chunks");
    assert_eq!(biggest, 1 << 20);
    let row = c
        .query_one(
            "SELECT size, sha256, media_type FROM kitstore.objects WHERE key = $1",
            &[&s.key.as_str()],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 64 << 20);
    assert_eq!(row.get::<_, String>(1), s.sha256);
    assert_eq!(row.get::<_, String>(2), "application/octet-stream");
}

#[test]
fn default_table_and_bad_tables() {
    let db = pg::TestDb::create("deftable");
    let store = open_str(&db.url).unwrap();
    assert!(store.url().redacted().ends_with("table=offkit.objects"));
    let src = tempfile::tempdir().unwrap();
    let seeds = [suite::seed_file(src.path(), "k.json", b"1")];
    suite::seed_from(store.as_ref(), src.path(), &seeds, &SeedOptions::default()).unwrap();
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM offkit.objects", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    for bad in ["x;drop table y", "a.b.c", "1abc", "\"q\""] {
        let url = format!("{}?table={}", db.url, bad.replace(';', "%3B"));
        assert!(open_str(&url).is_err(), "{bad} accepted");
    }
}

#[test]
fn secrets_never_appear_and_cli_works() {
    let db = pg::TestDb::create("secrets");
    // Trust authentication ignores the password, so it can be any secret-looking text.
    let password = "Sup3rS3cretPassw0rd";
    let mut u = url::Url::parse(&db.store_url("s.objs")).unwrap();
    u.set_password(Some(password)).unwrap();
    let url = u.to_string();
    let src = tempfile::tempdir().unwrap();
    suite::seed_folder(src.path(), 4, 0);
    for args in [
        &["store", "put-dir", "--json"][..],
        &["store", "put-dir"][..],
    ] {
        let (out, stdout, stderr) = cli::run(cli::offkit().args(args).arg(&url).arg(src.path()));
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "{stdout}{stderr}"
        );
        assert!(stdout.contains(":***@"), "{stdout}");
    }
    let (out, stdout, _) = cli::run(cli::offkit().args(["store", "check", &url]));
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains(password));
    let (out, stdout, _) =
        cli::run(cli::offkit().args(["store", "ls", "--json", "--sha256", &url]));
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed["objects"].as_array().unwrap().len(), 4);
    // Failures: no such database, unknown option.
    let mut gone = u.clone();
    gone.set_path("/offkit_store_no_such_db");
    let bad_option = format!("{url}&bogus=1");
    for bad in [gone.to_string(), bad_option] {
        let (out, stdout, stderr) = cli::run(cli::offkit().args(["store", "ls", &bad]));
        assert!(!out.status.success());
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "{stderr}"
        );
    }
}

#[test]
fn key_safety() {
    let (_db, store, src) = setup("keys");
    suite::key_safety(store.as_ref(), src.path());
}

#[test]
fn concurrent_seedings_put_each_object_once() {
    let db = pg::TestDb::create("concurrent");
    let src = tempfile::tempdir().unwrap();
    suite::seed_folder(src.path(), 200, 0);
    let url = db.store_url("c.objects");
    let (puts, skips) = cli::concurrent_put_dirs(&url, src.path(), &[]);
    assert_eq!(
        (puts, skips),
        (200, 200),
        "each object is put by exactly one of the two"
    );
    assert_eq!(
        suite::fingerprint(open_str(&url).unwrap().as_ref()).len(),
        200
    );
}

#[test]
fn planning_falls_back_to_lookups_when_the_folder_is_crowded() {
    let (db, store, src) = setup("crowded");
    let seeds: Vec<_> = (0..20)
        .map(|i| {
            suite::seed_file(
                src.path(),
                &format!("crowd/s{i:02}.json"),
                format!("{i}").as_bytes(),
            )
        })
        .collect();
    // Half of them already there, put the normal way.
    suite::seed_from(
        store.as_ref(),
        src.path(),
        &seeds[..10],
        &SeedOptions::default(),
    )
    .unwrap();
    // And 2,000 other objects in the same folder: more than the listing is allowed to read
    // (4 × 20 + 1,000), so the planner must switch to one lookup per key and still be right.
    db.client()
        .batch_execute(
            "INSERT INTO kitstore.objects (key, size, sha256, media_type)
             SELECT 'crowd/other-' || g, 0, '', '' FROM generate_series(1, 2000) g",
        )
        .unwrap();
    let plan = suite::compare(store.as_ref(), &seeds).unwrap();
    assert_eq!((plan.totals.present, plan.totals.pending), (10, 10));
    assert!(
        plan.entries
            .iter()
            .all(|e| e.action == offkit::store::seed::Action::Put)
    );
    let r = suite::seed_from(store.as_ref(), src.path(), &seeds, &SeedOptions::default()).unwrap();
    assert_eq!((r.totals.put, r.totals.skipped), (10, 10));
}
