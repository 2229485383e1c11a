//! The immutable-history guard: a shipped migration edited is refused by `build --previous`
//! unless the kit declares a signed checksum realignment, which `apply` then honours by updating
//! the history row's checksum — never a blind repair.

mod common;

use std::path::{Path, PathBuf};

use common::db::TestDb;
use common::{Workspace, outcome, run, write};

struct Release {
    ws: Workspace,
    key: PathBuf,
    public: PathBuf,
}

impl Release {
    /// The quickstart kit at `sequence`, its first migration optionally edited and `extra`
    /// appended to kit.toml, built with `--previous` when given. Returns the build's outcome
    /// and the kit path.
    fn build(
        &self,
        tag: &str,
        sequence: u64,
        edit: bool,
        extra: &str,
        previous: Option<&Path>,
    ) -> (i32, String, PathBuf) {
        let src = self.ws.path(&format!("src-{tag}"));
        common::copy_tree(&self.ws.example_source("quickstart"), &src);
        let toml = std::fs::read_to_string(src.join("kit.toml")).unwrap();
        write(
            &src.join("kit.toml"),
            format!(
                "{}{extra}",
                toml.replace("sequence = 1", &format!("sequence = {sequence}"))
            ),
        );
        if edit {
            let f = src.join("migrations/inventory/001_create_items.sql");
            let sql = std::fs::read_to_string(&f).unwrap();
            write(&f, format!("-- SPDX-License-Identifier: Apache-2.0\n{sql}"));
        }
        let out = self.ws.path(&format!("out-{tag}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut c = common::cmd();
        c.arg("build")
            .arg(&src)
            .arg("--key")
            .arg(&self.key)
            .arg("--out")
            .arg(&out);
        if let Some(p) = previous {
            c.arg("--previous").arg(p);
        }
        let (code, stdout, stderr) = outcome(&c.output().unwrap());
        (
            code,
            stderr,
            PathBuf::from(stdout.lines().next().unwrap_or("").trim()),
        )
    }

    fn apply(&self, kit: &Path, db: &str) -> (i32, String, String) {
        outcome(&run(&[
            "apply",
            kit.to_str().unwrap(),
            "--trust",
            self.public.to_str().unwrap(),
            "--db",
            db,
            "--store",
            &format!("file://{}", self.ws.path("store").display()),
            "--json",
            "--progress",
            "off",
        ]))
    }
}

fn sha256(path: &Path) -> String {
    offkit::util::sha256_hex(&std::fs::read(path).unwrap())
}

#[test]
fn an_edited_shipped_migration_is_refused_then_realigned_and_applied_on_sqlite() {
    scenario(TestDb::sqlite());
}

#[test]
fn an_edited_shipped_migration_is_refused_then_realigned_and_applied_on_postgres() {
    scenario(TestDb::pg());
}

fn scenario(site: TestDb) {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let r = Release { ws, key, public };
    let (code, err, v1) = r.build("v1", 1, false, "", None);
    assert_eq!(code, 0, "{err}");
    let db = site.url();
    let (code, out, err) = r.apply(&v1, &db);
    assert_eq!(code, 0, "{out}{err}");

    // A licence header added to a shipped migration: build --previous names it and refuses.
    let (code, err, _) = r.build("edited", 2, true, "", Some(&v1));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("inventory/001_create_items changed"), "{err}");
    let src = r.ws.example_source("quickstart");
    let shipped_sum = sha256(&src.join("migrations/inventory/001_create_items.sql"));
    // Removing one is refused the same way.
    std::fs::remove_file(src.join("migrations/inventory/002_create_stock.sql")).unwrap();
    std::fs::remove_file(src.join("rollback/inventory/002_create_stock.sql")).unwrap();
    let removed_out = r.ws.path("out-removed");
    std::fs::create_dir_all(&removed_out).unwrap();
    let (code, _, err) = outcome(
        &common::cmd()
            .arg("build")
            .arg(&src)
            .arg("--key")
            .arg(&r.key)
            .arg("--out")
            .arg(&removed_out)
            .arg("--previous")
            .arg(&v1)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("inventory/002_create_stock removed"), "{err}");

    // Built without the guard, the edited kit is refused by the site on its checksum.
    let (code, err, unguarded) = r.build("unguarded", 2, true, "", None);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = r.apply(&unguarded, &db);
    assert_eq!(code, 9, "{out}{err}");
    assert!(format!("{out}{err}").contains("drift"), "{out}{err}");

    // Declared: the shipped checksum and why, signed in the kit.
    let realign = format!(
        "\n[realign]\n\"inventory/001_create_items\" = {{ from = \"{shipped_sum}\", reason = \"licence header added\" }}\n"
    );
    let (code, err, v2) = r.build("v2", 2, true, &realign, Some(&v1));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = r.apply(&v2, &db);
    assert_eq!(code, 0, "{out}{err}");
    // The report says what was realigned, from which checksum, and that it was recorded.
    assert!(
        out.contains("\"realigned\"")
            && out.contains(&shipped_sum)
            && out.contains("\"done\": true"),
        "{out}"
    );

    // The history row holds the kit's checksum now.
    let edited = sha256(
        &r.ws
            .path("src-v2")
            .join("migrations/inventory/001_create_items.sql"),
    );
    let held = site.rows(&format!(
        "SELECT checksum FROM {} WHERE migration_name = '001_create_items'",
        site.history("inventory")
    ));
    assert_eq!(held, vec![vec![edited]]);
    // The history now holds the new checksum: the old kit's file is the drifted one.
    let (_, out, _) = outcome(&run(&[
        "migrations",
        "status",
        "--db",
        &db,
        "--kit",
        v1.to_str().unwrap(),
        "--trust",
        r.public.to_str().unwrap(),
    ]));
    assert!(out.contains("DRIFT        001_create_items"), "{out}");

    // A realignment naming a migration the source does not have is refused.
    let bogus = "\n[realign]\n\"inventory/009_nothing\" = { from = \"0000000000000000000000000000000000000000000000000000000000000000\", reason = \"x\" }\n";
    let (code, err, _) = r.build("bogus", 3, false, bogus, None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no such migration"), "{err}");
}
