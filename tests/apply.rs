//! `offkit apply`, `status` and `history` end to end: real PostgreSQL, a real S3 server
//! (`rclone serve s3`), the embedded SQLite + folder store defaults.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::forge;
use common::{TestDb, Workspace, outcome, tree};

struct Site {
    ws: Workspace,
    key: PathBuf,
    public: PathBuf,
}

fn site() -> Site {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    Site { ws, key, public }
}

impl Site {
    fn kit(&self, example: &str) -> PathBuf {
        let src = self.ws.example_source(example);
        self.ws.build(&src, &[&self.key])
    }

    /// Builds `example` after `edit` changes its source (into its own output folder).
    fn kit_with(&self, example: &str, tag: &str, edit: impl FnOnce(&Path)) -> PathBuf {
        let src = self.ws.path(&format!("src-{tag}"));
        common::copy_tree(&self.ws.example_source(example), &src);
        edit(&src);
        self.ws.build_in(&src, &[&self.key], &format!("out-{tag}"))
    }

    fn apply(&self, kit: &Path, db: &str, store: &str, extra: &[&str]) -> Command {
        let mut c = common::cmd();
        c.args([
            "apply",
            kit.to_str().unwrap(),
            "--trust",
            self.public.to_str().unwrap(),
            "--db",
            db,
            "--store",
            store,
        ])
        .args(["--progress", "lines"])
        .args(extra);
        c
    }
}

fn run(mut c: Command) -> (i32, String, String) {
    outcome(&c.output().unwrap())
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn set_toml(src: &Path, from: &str, to: &str) {
    let p = src.join("kit.toml");
    let t = std::fs::read_to_string(&p).unwrap();
    assert!(t.contains(from), "{from} not in kit.toml");
    std::fs::write(&p, t.replace(from, to)).unwrap();
}

/// Sorted (key, sha256) of every object under a folder (file store or rclone's bucket folder).
fn store_fingerprint(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, offkit::util::sha256_file(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn quick_start_on_sqlite_applies_once_and_the_second_apply_changes_nothing() {
    let s = site();
    let kit = s.kit("quickstart");
    let db = format!("sqlite://{}", s.ws.path("site/offkit.db").display());
    let store_dir = s.ws.path("site/store");
    let store = format!("file://{}", store_dir.display());
    std::fs::create_dir_all(s.ws.path("site")).unwrap();
    let report = s.ws.path("site/report.json");
    let (code, out, err) = run(s.apply(
        &kit,
        &db,
        &store,
        &["--json", "--report", report.to_str().unwrap()],
    ));
    assert_eq!(code, 0, "{out}{err}");
    let first = json(&out);
    assert_eq!(first["outcome"], "succeeded");
    assert_eq!(first["migrations"]["counts"]["applied"], 5);
    assert_eq!(first["seeds"]["totals"]["put"], 2);
    assert!(
        err.contains("Progress: 2/2 (100.0%) - Success: 2, Failed: 0, Skipped: 0"),
        "{err}"
    );
    assert_eq!(
        store_fingerprint(&store_dir)
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["catalog/README.txt", "catalog/items.json"]
    );

    let (code, out, err) = run(s.apply(&kit, &db, &store, &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("nothing to do: this kit was already fully applied"),
        "{out}"
    );
    assert!(err.contains("Skipped: 2"), "{err}");

    // The ledger shows both applications; the report file is the one its digest names.
    let (code, out, _) = run({
        let mut c = common::cmd();
        c.args(["history", "--db", &db, "--json"]);
        c
    });
    assert_eq!(code, 0);
    let rows = json(&out);
    let rows = rows["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "succeeded" && r["kit_name"] == "quickstart")
    );
    assert_eq!(
        rows[0]["report_sha256"],
        offkit::util::sha256_hex(&std::fs::read(&report).unwrap())
    );
    assert_eq!(
        rows[0]["signer_keyids"][0],
        first["kit"]["signers"][0]["keyid"]
    );

    let conn = rusqlite::Connection::open(s.ws.path("site/offkit.db")).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM items WHERE name_search IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 5);
}

#[test]
fn example_postgres_kit_applies_to_postgres_and_s3_twice() {
    let s = site();
    let kit = s.kit("concelier-lnm");
    let db = TestDb::pg();
    let server = s3::S3Server::start();
    let bucket = server.bucket("lnm");
    let store = server.url(&bucket, "seed");
    let go = |extra: &[&str]| {
        let mut c = s.apply(&kit, &db.url(), &store, extra);
        c.envs(server.env());
        run(c)
    };
    // Dry run first: the whole plan, nothing changed.
    let (code, out, err) = go(&["--category", "release", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let plan = json(&out);
    assert_eq!(plan["outcome"], "dry-run");
    assert_eq!(plan["seeds"]["totals"]["objects"], 5);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_namespace WHERE nspname IN ('concelier', 'offkit')"),
        0
    );
    assert!(store_fingerprint(&server.bucket_dir(&bucket)).is_empty());

    let (code, out, err) = go(&["--category", "release", "--batch-size", "300", "--json"]);
    assert_eq!(code, 0, "{out}{err}\n{}", server.log());
    let r = json(&out);
    assert_eq!(r["migrations"]["counts"]["applied"], 8);
    assert_eq!(r["seeds"]["totals"]["put"], 5);
    assert_eq!(
        db.int("SELECT count(*) FROM concelier.advisory_linksets WHERE expires_at IS NULL"),
        0
    );
    assert_eq!(db.int("SELECT count(*) FROM concelier.lnm_shard_map"), 6);
    assert_eq!(
        db.int("SELECT count(*) FROM pg_indexes WHERE indexname = 'advisory_linksets_expires_at'"),
        1
    );
    let objects = store_fingerprint(&server.bucket_dir(&bucket));
    assert_eq!(objects.len(), 5, "{objects:?}");
    assert!(
        objects
            .iter()
            .any(|(k, _)| k == "seed/advisories/raw/osv/OSV-2026-17.json"),
        "{objects:?}"
    );

    let (code, out, err) = go(&["--category", "release", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let again = json(&out);
    assert_eq!(again["migrations"]["counts"]["applied"], 0);
    assert_eq!(again["migrations"]["counts"]["already_applied"], 8);
    assert_eq!(again["seeds"]["totals"]["skipped"], 5);
    assert_eq!(store_fingerprint(&server.bucket_dir(&bucket)), objects);

    // status: everything applied and present.
    let mut c = common::cmd();
    c.args([
        "status",
        "--kit",
        kit.to_str().unwrap(),
        "--trust",
        s.public.to_str().unwrap(),
        "--db",
        &db.url(),
        "--store",
        &store,
        "--json",
    ])
    .envs(server.env());
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    let st = json(&out);
    assert_eq!(st["complete"], true, "{out}");
    assert_eq!(st["applications"].as_array().unwrap().len(), 2);
}

#[test]
fn release_migrations_wait_for_the_operator() {
    let s = site();
    let kit = s.kit("concelier-lnm");
    let db = TestDb::pg();
    let store = format!("file://{}", s.ws.path("store").display());
    let (code, out, err) = run(s.apply(&kit, &db.url(), &store, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let r = json(&out);
    // Startup and seed ran; release waits for the operator, and the backfill (written against
    // the release schema) waits with it.
    assert_eq!(r["migrations"]["counts"]["applied"], 5, "{out}");
    assert_eq!(r["migrations"]["counts"]["not_selected"], 3, "{out}");
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .contains("data migrations deferred"),
        "{out}"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM pg_tables WHERE tablename = 'advisory_observations'"),
        0
    );
    assert_eq!(db.int("SELECT count(*) FROM concelier.lnm_shard_map"), 6);

    let (code, out, err) = run(s.apply(
        &kit,
        &db.url(),
        &store,
        &["--category", "release", "--json"],
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["migrations"]["counts"]["applied"], 3, "{out}");
    assert_eq!(
        db.int("SELECT count(*) FROM concelier.advisory_linksets WHERE expires_at IS NULL"),
        0
    );
}

#[test]
fn a_tampered_kit_changes_nothing_in_the_database_or_the_store() {
    let s = site();
    let kit = s.kit("quickstart");
    let mut entries = forge::read(&kit);
    let i = forge::find(&entries, "migrations/inventory/001_create_items.sql");
    entries[i].data = b"CREATE TABLE pwned (x int);".to_vec();
    let bad = s.ws.path("tampered.kit.tar.zst");
    forge::write(&entries, &bad);
    let db = TestDb::pg();
    let store_dir = s.ws.path("store");
    let (code, out, err) = run(s.apply(
        &bad,
        &db.url(),
        &format!("file://{}", store_dir.display()),
        &[],
    ));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("size-mismatch") || err.contains("digest-mismatch"),
        "{err}"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM pg_namespace WHERE nspname IN ('inventory', 'offkit')"),
        0
    );
    assert!(tree(&store_dir).is_empty());
}

#[test]
fn downgrades_and_reused_sequences_are_refused_unless_allowed() {
    let s = site();
    let db = TestDb::pg();
    let store = format!("file://{}", s.ws.path("store").display());
    let v3 = s.kit("quickstart");
    let v2 = s.kit_with("quickstart", "older", |src| {
        set_toml(src, "sequence = 1", "sequence = 0")
    });
    // sequence 0 first is fine; then 1; then 0 again is a downgrade.
    assert_eq!(run(s.apply(&v2, &db.url(), &store, &[])).0, 0);
    assert_eq!(run(s.apply(&v3, &db.url(), &store, &[])).0, 0);
    let (code, _, err) = run(s.apply(&v2, &db.url(), &store, &[]));
    assert_eq!(code, 11, "{err}");
    assert!(
        err.contains("downgrade refused: channel quickstart is at sequence 1"),
        "{err}"
    );

    let other = s.kit_with("quickstart", "same-seq", |src| {
        set_toml(src, "version = \"1.0.0\"", "version = \"1.0.1\"");
    });
    let (code, _, err) = run(s.apply(&other, &db.url(), &store, &[]));
    assert_eq!(code, 11, "{err}");
    assert!(
        err.contains("already applied or accepted here from a different kit"),
        "{err}"
    );

    let (code, out, err) = run(s.apply(&v2, &db.url(), &store, &["--allow-downgrade", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["overrides"][0], "allow-downgrade");
    let overrides = db.rows("SELECT overrides FROM offkit.kit_applications ORDER BY id");
    assert_eq!(overrides.last().unwrap()[0], "allow-downgrade");
}

#[test]
fn unmet_requirements_and_wrong_targets_are_refused() {
    let s = site();
    let db = TestDb::pg();
    let store = format!("file://{}", s.ws.path("store").display());
    let needs = s.kit_with("quickstart", "needs", |src| {
        let p = src.join("kit.toml");
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            format!("{t}requires = [{{ name = \"base\", min_version = \"2.0\" }}]\n"),
        )
        .unwrap();
    });
    let (code, _, err) = run(s.apply(&needs, &db.url(), &store, &[]));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("requires base >= 2.0"), "{err}");

    let pg_kit = s.kit("concelier-lnm");
    let sqlite = format!("sqlite://{}", s.ws.path("x.db").display());
    let (code, _, err) = run(s.apply(&pg_kit, &sqlite, &store, &[]));
    assert_eq!(code, 11, "{err}");
    assert!(
        err.contains("the kit targets postgres, but --db is sqlite"),
        "{err}"
    );
}

#[test]
fn a_seed_conflict_stops_with_the_key_named_and_nothing_overwritten() {
    let s = site();
    let kit = s.kit("quickstart");
    let db = TestDb::pg();
    let store_dir = s.ws.path("store");
    common::write(
        &store_dir.join("catalog/items.json"),
        "somebody else's items\n",
    );
    let store = format!("file://{}", store_dir.display());
    let (code, out, err) = run(s.apply(&kit, &db.url(), &store, &[]));
    assert_eq!(code, 12, "{out}{err}");
    assert!(err.contains("catalog/items.json"), "{err}");
    assert_eq!(
        std::fs::read_to_string(store_dir.join("catalog/items.json")).unwrap(),
        "somebody else's items\n"
    );
    assert!(
        !store_dir.join("catalog/README.txt").exists(),
        "seeding must stop before any put"
    );
    let ledger = db.rows("SELECT outcome FROM offkit.kit_applications");
    assert_eq!(ledger, [["failed"]]);

    let (code, out, err) = run(s.apply(&kit, &db.url(), &store, &["--replace-conflicting"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        std::fs::read_to_string(store_dir.join("catalog/items.json"))
            .unwrap()
            .contains("BOLT-M6")
    );
    assert!(
        out.contains("UNSAFE override  --replace-conflicting"),
        "{out}"
    );
}

#[test]
fn concurrent_applies_of_the_same_kit_apply_it_once() {
    let s = site();
    let kit = s.kit("concelier-lnm");
    let db = TestDb::pg();
    let store = format!("file://{}", s.ws.path("store").display());
    let children: Vec<_> = (0..4)
        .map(|_| {
            s.apply(
                &kit,
                &db.url(),
                &store,
                &["--category", "release", "--lock-timeout", "120s"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        let (code, out, err) = outcome(&o);
        assert_eq!(code, 0, "{out}{err}");
    }
    assert_eq!(
        db.int("SELECT count(*) FROM concelier.schema_migrations"),
        db.int("SELECT count(DISTINCT migration_name) FROM concelier.schema_migrations")
    );
    assert_eq!(
        db.int("SELECT count(*) FROM concelier.schema_migrations"),
        8
    );
    assert_eq!(db.int("SELECT count(*) FROM concelier.lnm_shard_map"), 6);
    assert_eq!(
        db.int("SELECT count(*) FROM concelier.advisory_linksets"),
        2000
    );
    let outcomes = db.rows("SELECT outcome FROM offkit.kit_applications ORDER BY id");
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.iter().all(|r| r[0] == "succeeded"), "{outcomes:?}");
    assert_eq!(store_fingerprint(&s.ws.path("store")).len(), 5);
}

#[test]
fn secrets_never_appear_in_output_reports_or_the_ledger() {
    let s = site();
    let kit = s.kit("quickstart");
    let db = TestDb::pg();
    // Trust auth ignores the password, so the apply works and we can look for it everywhere.
    let secret = "Sup3rS3cretPassw0rd";
    let with_password = db
        .url()
        .replacen("postgres@", &format!("postgres:{secret}@"), 1);
    assert!(with_password.contains(secret));
    let server = s3::S3Server::start();
    let bucket = server.bucket("sec");
    let store = server.url_with_keys(&bucket, "");
    let report = s.ws.path("report.json");
    for extra in [&["--json"][..], &[][..]] {
        let mut c = s.apply(&kit, &with_password, &store, extra);
        c.args(["--report", report.to_str().unwrap()]);
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{out}{err}");
        for text in [&out, &err, &std::fs::read_to_string(&report).unwrap()] {
            assert!(!text.contains(secret), "password leaked: {text}");
            assert!(
                !text.contains(&server.secret_key),
                "S3 secret leaked: {text}"
            );
        }
    }
    let ledger = db.rows("SELECT store, applied_by FROM offkit.kit_applications");
    for row in ledger {
        assert!(!row.join(" ").contains(&server.secret_key));
    }
    // Also on failure paths: a wrong password on a server that checks it is not echoed.
    let (code, _, err) = run(s.apply(
        &kit,
        &with_password.replace("127.0.0.1:5432", "127.0.0.1:1"),
        &store,
        &[],
    ));
    assert_ne!(code, 0);
    assert!(!err.contains(secret), "{err}");
}

#[test]
fn seed_rollback_removes_exactly_what_an_apply_put() {
    let s = site();
    let kit = s.kit("quickstart");
    let db = format!("sqlite://{}", s.ws.path("site/offkit.db").display());
    let store_dir = s.ws.path("site/store");
    let store = format!("file://{}", store_dir.display());
    // The README is already in the store with the same bytes: the apply skips it.
    std::fs::create_dir_all(store_dir.join("catalog")).unwrap();
    std::fs::copy(
        s.ws.example_source("quickstart")
            .join("seeds/catalog/README.txt"),
        store_dir.join("catalog/README.txt"),
    )
    .unwrap();
    let (code, out, err) = run(s.apply(&kit, &db, &store, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["seeds"]["totals"]["put"], 1);
    let rollback = |id: &str| {
        let mut c = common::cmd();
        c.args([
            "store",
            "rollback",
            "--application",
            id,
            "--db",
            &db,
            "--json",
        ]);
        run(c)
    };
    let (code, out, err) = rollback("1");
    assert_eq!(code, 0, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["removed"], serde_json::json!(["catalog/items.json"]));
    let left: Vec<String> = store_fingerprint(&store_dir)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        left,
        ["catalog/README.txt"],
        "only what the apply put is removed"
    );
    // Recorded: a second rollback finds nothing left to do.
    let (code, out, _) = rollback("1");
    assert_eq!(code, 0);
    assert_eq!(json(&out)["removed"], serde_json::json!([]));

    // Put again by a later apply, then changed by someone: kept and reported.
    let (code, out, err) = run(s.apply(&kit, &db, &store, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let id = json(&out)["ledger_id"].to_string();
    std::fs::write(store_dir.join("catalog/items.json"), b"[]").unwrap();
    let (code, out, err) = rollback(&id);
    assert_eq!(code, 13, "{out}{err}");
    assert_eq!(json(&out)["kept"][0][0], "catalog/items.json");
    assert_eq!(
        std::fs::read(store_dir.join("catalog/items.json")).unwrap(),
        b"[]"
    );
    // Put back as the kit has it, and found in place by a later apply: that apply relies on it,
    // so rolling back the one that put it keeps it.
    std::fs::copy(
        s.ws.example_source("quickstart")
            .join("seeds/catalog/items.json"),
        store_dir.join("catalog/items.json"),
    )
    .unwrap();
    let (code, out, err) = run(s.apply(&kit, &db, &store, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let later = json(&out)["ledger_id"].to_string();
    let (code, out, err) = rollback(&id);
    assert_eq!(code, 13, "{out}{err}");
    let kept = json(&out)["kept"][0][1].as_str().unwrap().to_owned();
    assert!(
        kept.contains(&format!("apply #{later} also relies")),
        "{kept}"
    );
    assert!(store_dir.join("catalog/items.json").exists());
    // An apply that is not recorded is refused by name.
    let (code, _, err) = rollback("99");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no apply #99"), "{err}");
}
