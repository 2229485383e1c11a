//! The destructive-change gate end to end: `build` refuses undeclared destructive migrations
//! with the file, line and statement; a declaration is signed into the manifest and shown by
//! `inspect` and the plans; `apply` and `migrations run` refuse a destructive migration until the
//! operator allows it (exit 14, nothing run), record the allowance in the ledger, and refuse a
//! kit whose signed manifest does not declare what its SQL does.

mod common;

use std::path::{Path, PathBuf};

use common::{TestDb, Workspace, forge, outcome};

const DROP: &str = "-- Retire the v1 table: its rows moved in 1.0.0.\nCREATE TABLE items_v2 (id INTEGER PRIMARY KEY);\nDROP TABLE legacy_items;\n";

struct Site {
    ws: Workspace,
    key: PathBuf,
    public: PathBuf,
}

impl Site {
    fn new() -> Site {
        let ws = Workspace::new();
        let (key, public) = ws.key("release");
        Site { ws, key, public }
    }

    /// The quickstart source with a destructive release migration added, and `toml` appended
    /// to its kit.toml.
    fn source(&self, tag: &str, toml: &str) -> PathBuf {
        let src = self.ws.path(&format!("src-{tag}"));
        common::copy_tree(&self.ws.example_source("quickstart"), &src);
        std::fs::write(
            src.join("migrations/inventory/003_create_legacy_items.sql"),
            "CREATE TABLE legacy_items (id INTEGER PRIMARY KEY);\n",
        )
        .unwrap();
        std::fs::write(src.join("migrations/inventory/100_retire_items.sql"), DROP).unwrap();
        let p = src.join("kit.toml");
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str(toml);
        std::fs::write(&p, t).unwrap();
        src
    }

    fn apply(&self, kit: &Path, db: &TestDb, extra: &[&str]) -> (i32, String, String) {
        let store = self.ws.path("store");
        let o = common::cmd()
            .args(["apply", kit.to_str().unwrap(), "--trust"])
            .arg(&self.public)
            .args(["--db", &db.url(), "--store"])
            .arg(format!("file://{}", store.display()))
            .args(["--progress", "off", "--category", "release"])
            .args(extra)
            .output()
            .unwrap();
        outcome(&o)
    }
}

const DECLARED: &str = "\n[destructive]\n\"inventory/100_retire_items\" = \"items was replaced by items_v2 in 1.0.0; nothing reads it\"\n";

#[test]
fn build_refuses_an_undeclared_destructive_migration_with_file_line_and_statement() {
    let s = Site::new();
    let src = s.source("undeclared", "");
    let (code, out, err) =
        s.ws.try_build(&src, &[&s.key], "out-undeclared", common::EPOCH);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains(
            "migrations/inventory/100_retire_items.sql:3: DROP TABLE legacy_items (drop-table)"
        ),
        "{err}"
    );
    assert!(
        err.contains("\"inventory/100_retire_items\" = \"<why this is safe now>\""),
        "{err}"
    );
    assert!(
        common::tree(&s.ws.path("out-undeclared")).is_empty(),
        "no kit was written"
    );

    // A declaration that names no migration is a typo, refused too.
    let src = s.source(
        "typo",
        "\n[destructive]\n\"inventory/100_retire_item\" = \"typo\"\n\"inventory/100_retire_items\" = \"ok\"\n",
    );
    let (code, _, err) = s.ws.try_build(&src, &[&s.key], "out-typo", common::EPOCH);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("\"inventory/100_retire_item\" names no migration"),
        "{err}"
    );
    let src = s.source(
        "blank",
        "\n[destructive]\n\"inventory/100_retire_items\" = \"  \"\n",
    );
    let (code, _, err) = s.ws.try_build(&src, &[&s.key], "out-blank", common::EPOCH);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("not blank"), "{err}");
}

#[test]
fn a_declared_migration_is_signed_shown_refused_until_allowed_and_recorded() {
    let s = Site::new();
    let kit = s.ws.build(&s.source("declared", DECLARED), &[&s.key]);

    let manifest = forge::manifest(&forge::read(&kit));
    let entry = manifest["modules"][0]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "100_retire_items")
        .unwrap()
        .clone();
    assert_eq!(
        entry["destructive"]["kinds"],
        serde_json::json!(["drop-table"])
    );
    assert!(
        entry["destructive"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("items was replaced")
    );
    let (code, out, err) = outcome(&common::run(&[
        "inspect",
        kit.to_str().unwrap(),
        "--trust",
        s.public.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("DESTRUCTIVE 100_retire_items (drop-table): items was replaced"),
        "{out}"
    );

    let db = TestDb::pg();
    // The plan shows it and what it needs.
    let (code, out, err) = s.apply(&kit, &db, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("DESTRUCTIVE (drop-table): declared (items was replaced"),
        "{out}"
    );
    assert!(out.contains("needs --allow-destructive"), "{out}");
    assert!(
        out.contains("line 3: DROP TABLE legacy_items (drop-table)"),
        "{out}"
    );

    // Refused before anything runs: not even the startup migrations before it.
    let (code, out, err) = s.apply(&kit, &db, &[]);
    assert_eq!(code, 14, "{out}{err}");
    assert!(
        err.contains("inventory/100_retire_items: declared by the kit")
            && err.contains("--allow-destructive inventory/100_retire_items"),
        "{err}"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM pg_tables WHERE schemaname = 'inventory'"),
        0,
        "nothing was applied"
    );
    assert!(
        common::tree(&s.ws.path("store")).is_empty(),
        "no seed was put"
    );

    // Allowing another migration does not allow this one.
    let (code, _, err) = s.apply(
        &kit,
        &db,
        &["--allow-destructive", "inventory/001_create_items"],
    );
    assert_eq!(code, 14, "{err}");

    let (code, out, err) = s.apply(&kit, &db, &["--allow-destructive", "100_retire_items"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("override         --allow-destructive inventory/100_retire_items"),
        "{out}"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM pg_tables WHERE schemaname = 'inventory' AND tablename = 'legacy_items'"),
        0
    );
    let overrides = db.rows("SELECT overrides, outcome FROM offkit.kit_applications ORDER BY id");
    assert_eq!(
        overrides,
        [
            vec!["category-release".to_owned(), "failed".to_owned()],
            vec!["category-release".to_owned(), "failed".to_owned()],
            vec![
                "category-release,allow-destructive=inventory/100_retire_items".to_owned(),
                "succeeded".to_owned()
            ],
        ]
    );
    let (code, out, err) = outcome(&common::run(&["history", "--db", &db.url()]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("override: --allow-destructive inventory/100_retire_items"),
        "{out}"
    );

    // Applied: a second apply has nothing destructive pending and needs no allowance.
    let (code, out, err) = s.apply(&kit, &db, &[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_signed_manifest_that_hides_a_destructive_migration_is_refused() {
    let s = Site::new();
    let kit = s.ws.build(&s.source("hidden", DECLARED), &[&s.key]);
    let key = offkit::trust::SecretKey::load(&s.key).unwrap();
    let mut entries = forge::read(&kit);
    let mut m = forge::manifest(&entries);
    for mig in m["modules"][0]["migrations"].as_array_mut().unwrap() {
        mig.as_object_mut().unwrap().remove("destructive");
    }
    forge::set_manifest(&mut entries, &m);
    forge::resign(&mut entries, &key, &m);
    let forged = s.ws.path("hidden.kit.tar.zst");
    forge::write(&entries, &forged);

    let db = TestDb::sqlite();
    let (code, out, err) = s.apply(&forged, &db, &["--allow-destructive", "all"]);
    assert_eq!(code, 14, "{out}{err}");
    assert!(
        err.contains(
            "inventory/100_retire_items: NOT declared by the kit; it cannot be allowed here"
        ),
        "{err}"
    );
    assert!(
        err.contains("line 3: DROP TABLE legacy_items (drop-table)"),
        "{err}"
    );
}

#[test]
fn migrations_run_from_a_source_folder_applies_the_same_gate() {
    let s = Site::new();
    let db = TestDb::sqlite();
    let run = |src: &Path, extra: &[&str]| {
        outcome(
            &common::cmd()
                .args(["migrations", "run", "--source"])
                .arg(src)
                .args(["--db", &db.url(), "--category", "release", "--force"])
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let undeclared = s.source("run-undeclared", "");
    let (code, _, err) = run(&undeclared, &["--allow-destructive", "all"]);
    assert_eq!(code, 14, "{err}");
    assert!(err.contains("NOT declared by the kit"), "{err}");
    assert_eq!(
        db.int("SELECT count(*) FROM sqlite_master WHERE type = 'table'"),
        0,
        "refused before anything was created"
    );

    let declared = s.source("run-declared", DECLARED);
    let (code, out, err) = run(&declared, &[]);
    assert_eq!(code, 14, "{out}{err}");
    let (code, out, err) = run(&declared, &["--allow-destructive", "all", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "100_retire_items")
        .unwrap();
    assert_eq!(step["destructive"]["allowed"], true);
    assert_eq!(step["destructive"]["findings"][0]["kind"], "drop-table");
    assert_eq!(step["destructive"]["findings"][0]["line"], 3);
    assert_eq!(step["outcome"], "applied");
}
