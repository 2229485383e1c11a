//! The JSON contract (issue 13): every command given `--json` prints exactly one JSON document,
//! `schema_version` first and `exit_code` last, with `error {kind, message, entry}` when it failed;
//! each validates against its schema in docs/schema/ — checked by the Python `jsonschema` package,
//! which shares nothing with offkit — in success and in failure. Every command of the CLI is in
//! the catalogue, so a new one without a schema fails here.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Workspace, cmd, outcome, write};

/// One command's document, and the schema it must satisfy.
struct Doc {
    label: String,
    schema: &'static str,
    code: i32,
    document: serde_json::Value,
}

struct Catalogue {
    ws: Workspace,
    docs: Vec<Doc>,
}

impl Catalogue {
    /// Runs `offkit ARGS --json`; keeps its document; returns its exit code.
    fn run(&mut self, schema: &'static str, args: &[&str]) -> i32 {
        let o = cmd()
            .args(args)
            .arg("--json")
            .env("SOURCE_DATE_EPOCH", common::EPOCH)
            .current_dir(self.ws.path(""))
            .output()
            .unwrap();
        let (code, out, err) = outcome(&o);
        let label = format!("offkit {} --json", args.join(" "));
        let document: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("{label}: stdout is not one JSON document ({e}):\n{out}\n{err}")
        });
        assert_eq!(document["exit_code"], code, "{label}: {out}");
        assert!(
            out.trim_start().starts_with("{\n  \"schema_version\": 1,"),
            "{label}: schema_version comes first: {out}"
        );
        self.docs.push(Doc {
            label,
            schema,
            code,
            document,
        });
        code
    }

    fn ok(&mut self, schema: &'static str, args: &[&str]) {
        let code = self.run(schema, args);
        let last = self.docs.last().unwrap();
        assert_eq!(code, 0, "{}: {:#}", last.label, last.document);
    }

    fn fails(&mut self, schema: &'static str, args: &[&str], expected: i32) {
        let code = self.run(schema, args);
        let last = self.docs.last().unwrap();
        assert_eq!(code, expected, "{}: {:#}", last.label, last.document);
        let error = &last.document["error"];
        assert!(
            error["kind"].is_string() && error["message"].is_string(),
            "{}: {:#}",
            last.label,
            last.document
        );
    }

    fn p(&self, rel: &str) -> String {
        self.ws.path(rel).display().to_string()
    }
}

/// The leaf commands of the CLI, as schema names (`migrations run` → `migrations-run`).
fn every_command() -> BTreeSet<String> {
    fn walk(c: &clap::Command, prefix: &str, out: &mut BTreeSet<String>) {
        let subs: Vec<&clap::Command> = c
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.insert(prefix.to_owned());
        }
        for s in subs {
            let name = if prefix.is_empty() {
                s.get_name().to_owned()
            } else {
                format!("{prefix}-{}", s.get_name())
            };
            walk(s, &name, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(
        &<offkit::cli::Cli as clap::CommandFactory>::command(),
        "",
        &mut out,
    );
    out
}

fn validate(docs: &[Doc]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(root.join("tests/python/validate_json.py"))
        .arg(root.join("docs/schema"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for d in docs {
            let line =
                serde_json::json!({"label": d.label, "schema": d.schema, "document": d.document});
            writeln!(stdin, "{line}").unwrap();
        }
    }
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "documents that break their schema:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_command_prints_one_document_that_validates_against_its_schema() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (co_key, _) = ws.key("co");
    let (site_key, site_pub) = ws.key("site");
    let src = ws.example_source("quickstart");
    let mut c = Catalogue {
        ws,
        docs: Vec::new(),
    };
    let (key, public, co_key, site_key, site_pub) = (
        key.display().to_string(),
        public.display().to_string(),
        co_key.display().to_string(),
        site_key.display().to_string(),
        site_pub.display().to_string(),
    );
    let db = format!("sqlite://{}", c.p("site.db"));
    let store = format!("file://{}", c.p("store"));
    for dir in [
        "out",
        "parts",
        "manpages",
        "store2",
        "store3",
        "store4",
        "trust-src",
    ] {
        std::fs::create_dir_all(c.ws.path(dir)).unwrap();
    }

    // Kits: keys, build, sign, verify, inspect, extract, diff, split, join.
    c.ok("keygen", &["keygen", "--out", &c.p("new/k")]);
    c.ok(
        "build",
        &[
            "build",
            src.to_str().unwrap(),
            "--key",
            &key,
            "--out",
            &c.p("out"),
        ],
    );
    let kit = c.p("out/quickstart-1.0.0.kit.tar.zst");
    let cosigned = c.p("cosigned.kit.tar.zst");
    c.ok(
        "sign",
        &[
            "sign", &kit, "--key", &co_key, "--trust", &public, "--out", &cosigned,
        ],
    );
    c.ok("verify", &["verify", &kit, "--trust", &public]);
    c.fails(
        "verify",
        &["verify", &c.p("site.db"), "--trust", &public],
        6,
    );
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    c.fails(
        "verify",
        &["verify", readme.to_str().unwrap(), "--trust", &public],
        3,
    );
    c.fails(
        "verify",
        &["verify", &kit, "--trust", &c.p("no-such.pub")],
        6,
    );
    c.ok("inspect", &["inspect", &kit]);
    c.ok(
        "extract",
        &[
            "extract",
            &kit,
            "--trust",
            &public,
            "--to",
            &c.p("x"),
            "--state",
            &c.p("accepted.db"),
        ],
    );
    c.run("diff", &["diff", &kit, &cosigned, "--trust", &public]);
    c.ok(
        "split",
        &[
            "split",
            &kit,
            "--max-part-size",
            "8192",
            "--out",
            &c.p("parts"),
        ],
    );
    c.ok(
        "join",
        &["join", &c.p("parts"), "--out", &c.p("joined.kit.tar.zst")],
    );
    c.fails(
        "split",
        &[
            "split",
            &c.p("no-such.kit.tar.zst"),
            "--max-part-size",
            "8192",
            "--out",
            &c.p("absent"),
        ],
        6,
    );

    // The site: migrations before and after apply, apply, status, history, report, receipts.
    c.ok(
        "migrations-status",
        &[
            "migrations",
            "status",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
    );
    c.ok(
        "migrations-verify",
        &[
            "migrations",
            "verify",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
    );
    c.fails(
        "migrations-check",
        &[
            "migrations",
            "check",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
        10,
    );
    c.ok(
        "apply",
        &[
            "apply", &kit, "--trust", &public, "--db", &db, "--store", &store,
        ],
    );
    c.fails(
        "apply",
        &[
            "apply",
            &kit,
            "--trust",
            &public,
            "--db",
            "sqlite:///no/such/dir/x.db",
            "--store",
            &store,
        ],
        8,
    );
    c.ok(
        "status",
        &[
            "status", "--kit", &kit, "--trust", &public, "--db", &db, "--store", &store,
        ],
    );
    c.ok("history", &["history", "--db", &db]);
    // After apply: entries with their data-migration checkpoint.
    c.ok(
        "migrations-status",
        &[
            "migrations",
            "status",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
    );
    c.fails(
        "history",
        &[
            "history",
            "--db",
            "postgres://postgres@127.0.0.1:1/none?connect_timeout=5",
        ],
        8,
    );
    c.ok(
        "migrations-run",
        &[
            "migrations",
            "run",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
            "--category",
            "release",
        ],
    );
    c.ok(
        "migrations-check",
        &[
            "migrations",
            "check",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
    );
    c.ok(
        "migrations-rollback",
        &[
            "migrations",
            "rollback",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
            "--module",
            "inventory",
            "--to",
            "S002_stock",
        ],
    );
    c.fails(
        "migrations-resolve",
        &[
            "migrations",
            "resolve",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
            "--module",
            "inventory",
            "001_create_items",
            "--applied",
        ],
        2,
    );
    c.ok(
        "migrations-import-legacy",
        &[
            "migrations",
            "import-legacy",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
    );
    c.ok(
        "migrations-script",
        &[
            "migrations",
            "script",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &common::pg::admin_url(),
            "--out",
            &c.p("script.sql"),
        ],
    );
    c.fails(
        "migrations-script",
        &[
            "migrations",
            "script",
            "--kit",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
        ],
        2,
    );
    c.ok(
        "report",
        &[
            "report",
            &kit,
            "--trust",
            &public,
            "--db",
            &db,
            "--html",
            &c.p("report.html"),
        ],
    );
    c.ok(
        "receipt-issue",
        &[
            "receipt",
            "issue",
            "--db",
            &db,
            "--key",
            &site_key,
            "--entry",
            "1",
            "--out",
            &c.p("receipt.json"),
        ],
    );
    c.ok(
        "receipt-verify",
        &[
            "receipt",
            "verify",
            &c.p("receipt.json"),
            "--trust",
            &site_pub,
        ],
    );
    c.ok("man", &["man", "--out", &c.p("manpages")]);
    c.fails("completions", &["completions", "bash"], 2);
    c.fails("verify", &["verify", "--no-such-flag"], 2);

    // Stores.
    c.ok(
        "store-check",
        &["store", "check", &format!("file://{}", c.p("store2"))],
    );
    c.ok("store-ls", &["store", "ls", &store, "--sha256"]);
    c.fails("store-ls", &["store", "ls", "nosuch://bucket"], 2);
    c.ok(
        "store-get",
        &[
            "store",
            "get",
            &store,
            "catalog/items.json",
            "--output",
            &c.p("got.json"),
        ],
    );
    c.fails(
        "store-get",
        &["store", "get", &store, "catalog/items.json"],
        2,
    );
    c.ok(
        "store-put-dir",
        &[
            "store",
            "put-dir",
            &format!("file://{}", c.p("store3")),
            &c.p("x/seeds"),
        ],
    );
    let store4 = format!("file://{}", c.p("store4"));
    c.ok(
        "store-migrate",
        &[
            "store", "migrate", "--from", &store, "--to", &store4, "--db", &db,
        ],
    );
    c.ok("store-migrations", &["store", "migrations", "--db", &db]);
    c.ok(
        "store-compare",
        &["store", "compare", "--from", &store, "--to", &store4],
    );
    c.ok("store-report", &["store", "report", "1", "--db", &db]);
    c.ok("store-rollback", &["store", "rollback", "1", "--db", &db]);
    c.fails(
        "store-compare",
        &["store", "compare", "--from", &store, "--to", &store4],
        15,
    );

    // The trust store: a release team's versions 1 and 2, a site's init, update and show.
    let (r1, r1_pub) = c.ws.key("r1");
    let (_, k1_pub) = c.ws.key("k1");
    let (r2, r2_pub) = c.ws.key("r2");
    let version = |n: &str, root: &Path, kit_key: &Path| {
        let out = format!("{}/{n}.root.json", c.p("trust-src"));
        vec![
            "trust".to_owned(),
            "new".into(),
            "--version".into(),
            n.into(),
            "--expires".into(),
            "2099-01-01T00:00:00Z".into(),
            "--root-key".into(),
            root.display().to_string(),
            "--kit-key".into(),
            kit_key.display().to_string(),
            "--out".into(),
            out,
        ]
    };
    let v1 = version("1", &r1_pub, &k1_pub);
    let v2 = version("2", &r2_pub, &k1_pub);
    c.ok(
        "trust-new",
        &v1.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    c.ok(
        "trust-new",
        &v2.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (f1, f2) = (c.p("trust-src/1.root.json"), c.p("trust-src/2.root.json"));
    let (r1, r2) = (r1.display().to_string(), r2.display().to_string());
    c.ok("trust-sign", &["trust", "sign", &f1, "--key", &r1]);
    c.ok("trust-sign", &["trust", "sign", &f2, "--key", &r1]);
    c.ok("trust-sign", &["trust", "sign", &f2, "--key", &r2]);
    let site = c.p("site-trust");
    c.ok("trust-init", &["trust", "init", &f1, "--store", &site]);
    c.ok("trust-update", &["trust", "update", &f2, "--store", &site]);
    c.ok("trust-show", &["trust", "show", "--store", &site]);
    c.fails(
        "trust-show",
        &["trust", "show", "--store", &c.p("absent")],
        6,
    );

    // Every command is in the catalogue, and has a schema.
    let covered: BTreeSet<String> = c.docs.iter().map(|d| d.schema.to_owned()).collect();
    let all = every_command();
    let missing: Vec<&String> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "commands not in the JSON catalogue: {missing:?}"
    );
    for name in &all {
        let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/schema")
            .join(format!("{name}.schema.json"));
        assert!(
            schema.exists(),
            "no schema for {name}: {}",
            schema.display()
        );
    }
    assert!(c.docs.iter().any(|d| d.code != 0));
    validate(&c.docs);
    write(&c.ws.path("done"), "");
}
