//! Secrets in database and store URLs never reach an output, a report or a ledger (issue 10,
//! item 5). A catalogue of URLs that carry a password or key where a careless redaction would
//! miss it — a raw `?` or an encoded `/` in a password, an encoded option name, a repeated
//! option, an unquoted space, credentials where none are accepted, a typo'd secret option — is
//! fed to every command that takes a URL, against the real PostgreSQL and S3 servers. Every
//! stdout, stderr, `--json`, report file and ledger row is searched for the secret.
//!
//! The local PostgreSQL trusts every password, so a URL the driver reads connects: each case
//! says whether it must connect (proving the secret was parsed as a password, not shown as a
//! host or a database name) or be refused.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};

use common::pg::PgDb;
use common::{Workspace, outcome};

/// Every secret in the catalogue holds this text; outputs are searched for it in any case.
const MARK: &str = "SEKRIT";

/// What the driver must make of a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// It reads it and connects (or opens the store).
    Connects,
    /// It refuses it: every command given it fails.
    Refused,
    /// It reads it, but the server turns it away (nothing listens, a wrong key): a command
    /// with nothing to do may still succeed.
    Unreachable,
}

/// One URL of the catalogue.
struct Case {
    name: &'static str,
    url: String,
    expect: Expect,
}

fn case(name: &'static str, url: impl Into<String>, expect: Expect) -> Case {
    Case {
        name,
        url: url.into(),
        expect,
    }
}

/// The leaks and broken expectations found, reported together at the end.
#[derive(Default)]
struct Audit {
    /// Secrets other than [`MARK`]-tagged ones (S3 keys of the server), searched by any 8
    /// characters of them.
    secrets: Vec<String>,
    failures: Vec<String>,
    commands: usize,
}

impl Audit {
    fn leaked(&self, text: &str) -> Option<String> {
        if text.to_ascii_uppercase().contains(MARK) {
            return Some(MARK.to_owned());
        }
        self.secrets.iter().find_map(|s| {
            let b = s.as_bytes();
            b.windows(8.min(b.len()))
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .find(|w| text.contains(w.as_str()))
        })
    }

    /// Searches `text` (an output, a report, a ledger row) for any secret.
    fn check(&mut self, case: &str, place: &str, text: &str) {
        if let Some(found) = self.leaked(text) {
            self.failures.push(format!(
                "[{case}] {place}: secret ({found}) shown in:\n{}",
                excerpt(text, &found)
            ));
        }
    }

    fn fail(&mut self, case: &str, what: String) {
        self.failures.push(format!("[{case}] {what}"));
    }

    fn finish(self) {
        assert!(self.commands > 0, "no command was run");
        assert!(
            self.failures.is_empty(),
            "{} problem(s) over {} command(s):\n\n{}",
            self.failures.len(),
            self.commands,
            self.failures.join("\n\n")
        );
    }
}

/// The lines of `text` around the first occurrence of `needle` (any case).
fn excerpt(text: &str, needle: &str) -> String {
    let upper = text.to_ascii_uppercase();
    let needle = needle.to_ascii_uppercase();
    text.lines()
        .zip(upper.lines())
        .filter(|(_, u)| u.contains(&needle))
        .take(3)
        .map(|(l, _)| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a command given a URL that works must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Succeed (exit 0).
    Succeeds,
    /// Get past the URL: any exit but a usage, database or store error.
    ReadsUrl,
    /// Anything (the command may refuse for a reason of its own).
    Any,
}

/// A command line of the binary and what it must do with a URL that works.
struct Invocation {
    args: Vec<String>,
    outcome: Outcome,
}

fn inv<S: AsRef<str>>(args: &[S], outcome: Outcome) -> Invocation {
    Invocation {
        args: args.iter().map(|s| s.as_ref().to_owned()).collect(),
        outcome,
    }
}

/// Exit codes that say the URL was not read or did not connect: usage, database, store; 1 is a
/// bug in any case.
fn is_url_failure(code: i32) -> bool {
    matches!(code, 1 | 2 | 8 | 12)
}

/// Runs every invocation of a case and searches everything it shows or writes.
fn run_all(audit: &mut Audit, c: &Case, invocations: Vec<Invocation>) {
    // The search must find the secret in the URL itself, or it could find nothing anywhere.
    assert!(
        audit.leaked(&c.url).is_some(),
        "[{}] holds no secret",
        c.name
    );
    for i in invocations {
        let words = if matches!(i.args[0].as_str(), "store" | "migrations") {
            2
        } else {
            1
        };
        let label = i.args[..words].join(" ");
        let given = i.args.contains(&c.url);
        let shown = i
            .args
            .iter()
            .map(|a| if a == &c.url { "URL" } else { a.as_str() })
            .collect::<Vec<_>>()
            .join(" ");
        let out = common::cmd()
            .args(&i.args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("PGPASSWORD")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("offkit runs");
        audit.commands += 1;
        let (code, stdout, stderr) = outcome(&out);
        audit.check(c.name, &format!("stdout of {label}"), &stdout);
        audit.check(c.name, &format!("stderr of {label}"), &stderr);
        match (c.expect, i.outcome) {
            (Expect::Connects, Outcome::Succeeds) if code != 0 => audit.fail(
                c.name,
                format!("`offkit {shown}` exited {code}, expected 0:\n{stdout}{stderr}"),
            ),
            (Expect::Connects, Outcome::ReadsUrl) if is_url_failure(code) => audit.fail(
                c.name,
                format!("`offkit {shown}` exited {code} (the URL should work):\n{stdout}{stderr}"),
            ),
            (Expect::Refused, _) if given && code == 0 => audit.fail(
                c.name,
                format!("`offkit {shown}` exited {code}, expected a refusal:\n{stdout}{stderr}"),
            ),
            (_, _) if code == 1 => audit.fail(
                c.name,
                format!("`offkit {shown}` exited 1 (an internal error):\n{stdout}{stderr}"),
            ),
            _ => {}
        }
    }
}

/// Every row of every table of a PostgreSQL database, as text (`t::text`). Returns how many
/// rows were searched.
fn check_pg_rows(audit: &mut Audit, case: &str, url: &str) -> usize {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let mut n = 0;
    let tables: Vec<String> = client
        .query(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' \
               AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in tables {
        for row in client
            .query(&format!("SELECT t::text FROM {t} t"), &[])
            .unwrap_or_else(|e| panic!("{t}: {e}"))
        {
            let text: String = row.get(0);
            audit.check(case, &format!("a row of {t}"), &text);
            n += 1;
        }
    }
    n
}

/// Every file a case's commands wrote: reports, plans, scripts, SQLite ledgers (and their
/// journals), folder stores. Returns how many files were searched.
fn check_files(audit: &mut Audit, case: &str, dir: &Path) -> usize {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk the case folder");
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read a written file");
            audit.check(
                case,
                &format!("file {}", entry.path().display()),
                &String::from_utf8_lossy(&bytes),
            );
            n += 1;
        }
    }
    n
}

/// A workspace with the quick-start kit built and its public key.
struct Site {
    ws: Workspace,
    kit: String,
    public: String,
}

fn site() -> Site {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    let kit = ws.build(&src, &[&key]).display().to_string();
    Site {
        ws,
        kit,
        public: public.display().to_string(),
    }
}

impl Site {
    /// A fresh folder for one case.
    fn case_dir(&self, n: usize) -> PathBuf {
        let d = self.ws.path(&format!("case-{n}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Every command that takes a database URL, on `db`, with a folder store in `dir`.
fn db_commands(site: &Site, db: &str, dir: &Path) -> Vec<Invocation> {
    use Outcome::{Any, ReadsUrl, Succeeds};
    let store = format!("file://{}", s(&dir.join("store")));
    let copy = format!("file://{}", s(&dir.join("copy")));
    let report = dir.join("apply.json");
    let script = dir.join("upgrade.sql");
    let plan = dir.join("migrate.json");
    let (report_s, script_s, plan_s) = (s(&report), s(&script), s(&plan));
    let (kit, public) = (site.kit.as_str(), site.public.as_str());
    let target = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "migrations",
            cmd,
            "--db",
            db,
            "--kit",
            kit,
            "--trust",
            public,
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect()
    };
    let apply = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            "apply", kit, "--trust", public, "--db", db, "--store", &store,
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(str::to_owned).collect()
    };
    let status = [
        "status", "--kit", kit, "--trust", public, "--db", db, "--store", &store,
    ];
    vec![
        inv(&apply(&["--dry-run", "--category", "release"]), Succeeds),
        inv(&apply(&["--json", "--report", &report_s]), Succeeds),
        inv(&apply(&["--progress", "lines"]), Succeeds),
        inv(&status, ReadsUrl),
        inv(&[&status[..], &["--json"]].concat(), ReadsUrl),
        inv(&["history", "--db", db], Succeeds),
        inv(&["history", "--db", db, "--json"], Succeeds),
        inv(&target("status", &[]), Succeeds),
        inv(&target("status", &["--json"]), Succeeds),
        inv(&target("verify", &[]), ReadsUrl),
        inv(&target("check", &["--json"]), ReadsUrl),
        inv(
            &target("run", &["--category", "release", "--dry-run"]),
            Succeeds,
        ),
        inv(
            &target("run", &["--category", "release", "--rehearse", "--json"]),
            ReadsUrl,
        ),
        inv(
            &target(
                "script",
                &["--category", "release", "--force", "--out", &script_s],
            ),
            ReadsUrl,
        ),
        inv(&target("import-legacy", &["--dry-run"]), Any),
        inv(
            &[
                "migrations",
                "rollback",
                "--db",
                db,
                "--module",
                "inventory",
                "--to",
                "001_create_items",
                "--kit",
                kit,
                "--trust",
                public,
                "--dry-run",
            ],
            ReadsUrl,
        ),
        inv(
            &[
                "migrations",
                "resolve",
                "002_create_stock",
                "--module",
                "inventory",
                "--applied",
                "--db",
                db,
                "--kit",
                kit,
                "--trust",
                public,
            ],
            Any,
        ),
        inv(
            &[
                "store",
                "migrate",
                "--from",
                &store,
                "--to",
                &copy,
                "--db",
                db,
                "--progress",
                "lines",
                "--output",
                &plan_s,
            ],
            Succeeds,
        ),
        inv(&["store", "migrations", "--db", db], Succeeds),
        inv(&["store", "migrations", "--db", db, "--json"], Succeeds),
        inv(&["store", "report", "1", "--db", db], Succeeds),
        inv(&["store", "rollback", "1", "--db", db, "--json"], Succeeds),
        inv(
            &[
                "store",
                "rollback",
                "--application",
                "1",
                "--db",
                db,
                "--store",
                &store,
            ],
            Any,
        ),
    ]
}

/// `--db`: PostgreSQL URLs and keyword strings, each fed to every command that takes one.
#[test]
fn database_urls_never_show_their_secrets() {
    use Expect::{Connects, Refused, Unreachable};
    let site = site();
    let mut audit = Audit::default();
    let at = "127.0.0.1:5432";
    let catalogue: Vec<(Case, PgDb)> = [
        // Read by the driver: each must connect.
        ("an encoded / in the password", "postgres://postgres:SEKRIT%2Fa@{at}/{db}", Connects),
        ("a raw ? in the password (libpq reads it)", "postgres://postgres:SEKRIT?b@{at}/{db}", Connects),
        ("an encoded @ and : in the password", "postgres://postgres:SEKRIT%40c%3A@{at}/{db}", Connects),
        ("an encoded option name (pass%77ord)", "postgres://postgres@{at}/{db}?pass%77ord=SEKRITd", Connects),
        ("password option with an encoded & and =", "postgresql://{at}/{db}?user=postgres&password=SEKRIT%26e%3D&sslmode=disable", Connects),
        ("keyword string, quoted password with a space", "host=127.0.0.1 port=5432 user=postgres dbname={db} password='SEKRIT f'", Connects),
        ("keyword string, escaped space, sslpassword", "host=127.0.0.1 port=5432 user=postgres dbname={db} password=SEKRIT\\ g sslpassword=SEKRITh", Connects),
        ("keyword string, % is not an escape there", "host=127.0.0.1 port=5432 user=postgres dbname={db} password=SEKRIT%77i", Connects),
        ("two hosts", "postgres://postgres:SEKRITj@127.0.0.1:5432,localhost:5432/{db}?target_session_attrs=read-write", Connects),
        // Refused: each refusal must not quote the secret.
        ("a raw / in the password", "postgres://postgres:SEKRIT/k@{at}/{db}", Refused),
        ("a raw @ in the password", "postgres://postgres:SEKRIT@l@{at}/{db}", Refused),
        ("password twice (URL and option)", "postgres://postgres:SEKRITm@{at}/{db}?password=SEKRITn", Refused),
        ("password twice (keyword string)", "host=127.0.0.1 dbname={db} user=postgres password=SEKRITo password=SEKRITp", Refused),
        ("password twice, once encoded", "postgres://postgres@{at}/{db}?password=SEKRITq&pass%77ord=SEKRITr", Refused),
        ("an unquoted space in a password", "host=127.0.0.1 dbname={db} user=postgres password=SEKRITs SEKRITt", Refused),
        ("a password fragment that reads as an option", "host=127.0.0.1 dbname={db} user=postgres password=SEKRITu SEKRITv==", Refused),
        ("a raw & in a password option", "postgres://postgres@{at}/{db}?password=SEKRITw&SEKRITx=1", Refused),
        ("a bad option value next to a password", "postgres://postgres:SEKRITy@{at}/{db}?sslmode=bogus", Refused),
        ("a bad escape in the password", "postgres://postgres:SEKRIT%ZZz@{at}/{db}", Refused),
        ("an unterminated quote", "host=127.0.0.1 dbname={db} password='SEKRITaa", Refused),
        ("a port the password ran into", "postgres://postgres:SEKRITab@127.0.0.1:99999/{db}", Refused),
        ("nothing listens", "postgres://postgres:SEKRITac@127.0.0.1:1/{db}", Unreachable),
        ("no such database", "postgres://postgres:SEKRITad@{at}/{db}_missing", Unreachable),
        ("an upper-case scheme", "POSTGRES://postgres:SEKRITae@{at}/{db}", Refused),
        ("an unknown scheme", "mysql://root:SEKRITaf@{at}/{db}", Refused),
        ("leading white space", " postgres://postgres:SEKRITag@{at}/{db}", Refused),
        ("an unclosed IPv6 bracket", "postgres://postgres:SEKRITah@[::1/{db}", Refused),
    ]
    .into_iter()
    .map(|(name, template, expect)| {
        let db = PgDb::create();
        let url = template.replace("{at}", at).replace("{db}", &db.name);
        (case(name, url, expect), db)
    })
    .collect();
    for (n, (c, db)) in catalogue.iter().enumerate() {
        let dir = site.case_dir(n);
        run_all(&mut audit, c, db_commands(&site, &c.url, &dir));
        check_files(&mut audit, c.name, &dir);
        let rows = check_pg_rows(&mut audit, c.name, &db.url);
        if c.expect == Expect::Connects && rows == 0 {
            audit.fail(
                c.name,
                "connected, yet the database holds no ledger row".into(),
            );
        }
    }
    audit.finish();
}

/// The commands that take a store URL, on `store`, with SQLite ledgers and folders in `dir`.
fn store_commands(site: &Site, store: &str, dir: &Path) -> Vec<Invocation> {
    use Outcome::{Any, Succeeds};
    let seeds = dir.join("seeds");
    common::write(&seeds.join("a.txt"), "a\n");
    common::write(&seeds.join("docs/b.json"), "{}\n");
    let copy = format!("file://{}", s(&dir.join("copy")));
    let ledger = format!("sqlite://{}", s(&dir.join("ledger.db")));
    let site_db = format!("sqlite://{}", s(&dir.join("site.db")));
    let [put, migrate, back, compare, apply] = [
        "put.json",
        "migrate.json",
        "back.json",
        "compare.json",
        "apply.json",
    ]
    .map(|f| dir.join(f));
    let seeds_s = s(&seeds);
    let [put_s, migrate_s, back_s, compare_s, apply_s] =
        [&put, &migrate, &back, &compare, &apply].map(|p| s(p));
    let (kit, public) = (site.kit.as_str(), site.public.as_str());
    vec![
        inv(&["store", "check", store], Succeeds),
        inv(&["store", "check", store, "--json"], Succeeds),
        inv(
            &[
                "store",
                "put-dir",
                store,
                &seeds_s,
                "--report",
                &put_s,
                "--progress",
                "lines",
            ],
            Succeeds,
        ),
        inv(&["store", "put-dir", store, &seeds_s, "--json"], Succeeds),
        inv(&["store", "ls", store], Succeeds),
        inv(&["store", "ls", store, "--sha256", "--json"], Succeeds),
        inv(&["store", "get", store, "a.txt"], Succeeds),
        inv(
            &[
                "store",
                "migrate",
                "--from",
                store,
                "--to",
                &copy,
                "--db",
                &ledger,
                "--output",
                &migrate_s,
                "--progress",
                "lines",
            ],
            Succeeds,
        ),
        inv(
            &[
                "store",
                "migrate",
                "--from",
                &copy,
                "--to",
                store,
                "--db",
                &ledger,
                "--output",
                &back_s,
                "--json",
                "--progress",
                "off",
            ],
            Succeeds,
        ),
        inv(
            &[
                "store",
                "compare",
                "--from",
                store,
                "--to",
                &copy,
                "--output",
                &compare_s,
                "--progress",
                "off",
            ],
            Succeeds,
        ),
        inv(&["store", "migrations", "--db", &ledger, "--json"], Any),
        inv(&["store", "report", "1", "--db", &ledger], Any),
        // Without --from the recorded URL is used, and it holds no secret.
        inv(&["store", "rollback", "1", "--db", &ledger], Any),
        inv(
            &[
                "store", "rollback", "1", "--db", &ledger, "--from", store, "--json",
            ],
            Succeeds,
        ),
        inv(
            &[
                "apply", kit, "--trust", public, "--db", &site_db, "--store", store, "--json",
                "--report", &apply_s,
            ],
            Succeeds,
        ),
        inv(
            &[
                "status", "--kit", kit, "--trust", public, "--db", &site_db, "--store", store,
            ],
            Succeeds,
        ),
        inv(&["history", "--db", &site_db, "--json"], Any),
        inv(
            &["store", "rollback", "--application", "1", "--db", &site_db],
            Any,
        ),
        inv(
            &[
                "store",
                "rollback",
                "--application",
                "1",
                "--db",
                &site_db,
                "--store",
                store,
            ],
            Succeeds,
        ),
    ]
}

/// Runs the store commands for each case and searches every file they wrote, the two SQLite
/// ledgers included.
fn run_store_catalogue(site: &Site, audit: &mut Audit, catalogue: &[Case]) {
    for (n, c) in catalogue.iter().enumerate() {
        let dir = site.case_dir(n);
        run_all(audit, c, store_commands(site, &c.url, &dir));
        check_files(audit, c.name, &dir);
        let ledgers = ["ledger.db", "site.db"].map(|f| dir.join(f).exists());
        if c.expect == Expect::Connects && ledgers != [true, true] {
            audit.fail(c.name, "opened, yet a ledger was not written".into());
        }
    }
}

/// `s3://…` store URLs, against `rclone serve s3`: the keys travel in the URL.
#[test]
fn s3_store_urls_never_show_their_keys() {
    use Expect::{Connects, Refused, Unreachable};
    let site = site();
    let server = s3::S3Server::start();
    let (ak, sk) = (server.access_key.clone(), server.secret_key.clone());
    let mut audit = Audit {
        secrets: vec![ak.clone(), sk.clone()],
        ..Audit::default()
    };
    let encoded_sk: String = sk.bytes().map(|b| format!("%{b:02X}")).collect();
    let port = server.endpoint().rsplit(':').next().unwrap().to_owned();
    let mut catalogue = Vec::new();
    let mut add = |name: &'static str, bucket: &str, url: String, expect: Expect| {
        server.bucket(bucket);
        catalogue.push(case(name, url, expect));
    };
    let base = |b: &str| server.url(b, "p");
    add(
        "keys as options",
        "case-0",
        format!(
            "{}&access_key_id={ak}&secret_access_key={sk}",
            base("case-0")
        ),
        Connects,
    );
    add(
        "encoded option names",
        "case-1",
        format!(
            "{}&access%5Fkey%5Fid={ak}&secret%5Faccess%5Fkey={sk}",
            base("case-1")
        ),
        Connects,
    );
    add(
        "a fully percent-encoded secret",
        "case-2",
        format!(
            "{}&access_key_id={ak}&secret_access_key={encoded_sk}",
            base("case-2")
        ),
        Connects,
    );
    add(
        "the secret given twice",
        "case-3",
        format!(
            "{}&access_key_id={ak}&secret_access_key={sk}&secret_access_key={sk}",
            base("case-3")
        ),
        Refused,
    );
    add(
        "an encoded secret option name before a repeated option",
        "case-4",
        format!(
            "{}&access_key_id={ak}&secret%5Faccess%5Fkey={sk}&region=a",
            base("case-4")
        ),
        Refused,
    );
    add(
        "a misspelt secret option",
        "case-5",
        format!(
            "{}&access_key_id={ak}&secret_acess_key={sk}",
            base("case-5")
        ),
        Refused,
    );
    add(
        "an encoded secret option name next to a bad value",
        "case-6",
        format!(
            "{}&access_key_id={ak}&session%5Ftoken=SEKRITa&confirm=maybe",
            base("case-6")
        ),
        Refused,
    );
    add(
        "keys in the authority",
        "case-7",
        format!("s3://{ak}:{sk}@case-7/p?endpoint={}", server.endpoint()),
        Refused,
    );
    add(
        "keys in the authority with a raw /",
        "case-8",
        format!("s3://{ak}:SEKRIT/b@case-8/p?endpoint={}", server.endpoint()),
        Refused,
    );
    add(
        "keys in the endpoint",
        "case-9",
        format!("s3://case-9/p?endpoint=http://{ak}:{sk}@127.0.0.1:{port}&path_style=true"),
        Refused,
    );
    add(
        "keys in the endpoint with a raw /",
        "case-10",
        format!("s3://case-10/p?endpoint=http://{ak}:SEKRIT/c@127.0.0.1:{port}&path_style=true"),
        Refused,
    );
    add(
        "a secret in the endpoint's query",
        "case-11",
        format!(
            "s3://case-11/p?endpoint=http://127.0.0.1:{port}/%3Ftoken%3DSEKRITd&path_style=true&access_key_id={ak}&secret_access_key={sk}"
        ),
        Refused,
    );
    add(
        "an unknown scheme",
        "case-12",
        format!("minio://{ak}:SEKRIT/e@127.0.0.1:{port}/case-12"),
        Refused,
    );
    add(
        "an upper-case option name",
        "case-13",
        format!(
            "{}&access_key_id={ak}&SECRET_ACCESS_KEY={sk}",
            base("case-13")
        ),
        Refused,
    );
    add(
        "a # in the secret (a fragment would cut it)",
        "case-14",
        format!(
            "{}&access_key_id={ak}&secret_access_key=SEKRIT#f",
            base("case-14")
        ),
        Refused,
    );
    add(
        "a wrong secret",
        "case-15",
        format!(
            "{}&access_key_id={ak}&secret_access_key=SEKRITwrongg",
            base("case-15")
        ),
        Unreachable,
    );
    run_store_catalogue(&site, &mut audit, &catalogue);
    audit.finish();
}

/// `postgres://…?table=` store URLs against the real PostgreSQL server.
#[test]
fn postgres_store_urls_never_show_their_passwords() {
    use Expect::{Connects, Refused, Unreachable};
    let site = site();
    let mut audit = Audit::default();
    let at = "127.0.0.1:5432";
    let mut dbs = Vec::new();
    let catalogue: Vec<Case> = [
        (
            "an encoded / in the password",
            "postgres://postgres:SEKRIT%2Fa@{at}/{db}?table=seeds.objects",
            Connects,
        ),
        (
            "a raw ? in the password, then the options",
            "postgres://postgres:SEKRIT?b@{at}/{db}?table=seeds.objects",
            Connects,
        ),
        (
            "encoded option names",
            "postgres://postgres@{at}/{db}?t%61ble=seeds.objects&pass%77ord=SEKRITc",
            Connects,
        ),
        (
            "a password option with an encoded &",
            "postgresql://{at}/{db}?user=postgres&password=SEKRIT%26d&table=seeds.objects",
            Connects,
        ),
        (
            "a raw / in the password",
            "postgres://postgres:SEKRIT/e@{at}/{db}?table=seeds.objects",
            Refused,
        ),
        (
            "the password twice",
            "postgres://postgres@{at}/{db}?password=SEKRITf&password=SEKRITg&table=seeds.objects",
            Refused,
        ),
        (
            "an encoded password option next to a bad table",
            "postgres://postgres@{at}/{db}?pass%77ord=SEKRITh&table=1bad",
            Refused,
        ),
        (
            "the table twice, once encoded",
            "postgres://postgres:SEKRITi@{at}/{db}?table=a.b&t%61ble=c.d",
            Refused,
        ),
        (
            "a raw & in the password option",
            "postgres://postgres@{at}/{db}?password=SEKRITj&SEKRITk=1&table=a.b",
            Refused,
        ),
        (
            "an upper-case scheme",
            "POSTGRES://postgres:SEKRITl@{at}/{db}?table=a.b",
            Refused,
        ),
        (
            "nothing listens",
            "postgres://postgres:SEKRITm@127.0.0.1:1/{db}?table=a.b",
            Unreachable,
        ),
        (
            "a foreign table without its columns",
            "postgres://postgres:SEKRITn@{at}/{db}?table=a.b&key_column=k",
            Refused,
        ),
    ]
    .into_iter()
    .map(|(name, template, expect)| {
        let db = PgDb::create();
        let url = template.replace("{at}", at).replace("{db}", &db.name);
        dbs.push(db);
        case(name, url, expect)
    })
    .collect();
    run_store_catalogue(&site, &mut audit, &catalogue);
    for (c, db) in catalogue.iter().zip(&dbs) {
        let rows = check_pg_rows(&mut audit, c.name, &db.url);
        if c.expect == Expect::Connects && rows == 0 {
            audit.fail(
                c.name,
                "opened, yet the store's table holds no object".into(),
            );
        }
    }
    audit.finish();
}
