//! The `offkit migrations` binary end to end: concurrent runners, lock timeouts that name the
//! holder, SIGKILL in the middle of a data migration and of a no-transaction migration, exit
//! codes, JSON output and password redaction. PostgreSQL and SQLite where the scenario applies.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Kit, TestDb, offkit, offkit_bin, outcome};

fn run_args<'a>(kit: &'a Kit, db: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = ["migrations", "run", "--source"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push(kit.path().display().to_string());
    v.push("--db".into());
    v.push(db.into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn spawn(args: &[String], failpoint: Option<&str>) -> Child {
    let mut cmd = Command::new(offkit_bin());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    match failpoint {
        Some(f) => cmd.env("OFFKIT_FAILPOINT", f),
        None => cmd.env_remove("OFFKIT_FAILPOINT"),
    };
    cmd.spawn().expect("spawn offkit")
}

/// Waits until the child reports reaching the failpoint, then kills it with SIGKILL.
fn kill_at_failpoint(mut child: Child, name: &str) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let want = format!("offkit-failpoint: {name}");
    loop {
        match lines.next() {
            Some(Ok(l)) if l == want => break,
            Some(Ok(_)) => {}
            _ => {
                let status = child.wait().unwrap();
                panic!("offkit ended ({status}) before failpoint {name}");
            }
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

fn run_cli(kit: &Kit, db: &TestDb, extra: &[&str]) -> (i32, String, String) {
    let url = db.url();
    let args = run_args(kit, &url, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    outcome(&offkit(&refs))
}

fn concurrency_kit(db: &TestDb) -> Kit {
    let slow = if db.is_pg() {
        "SELECT pg_sleep(0.15);"
    } else {
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c;"
    };
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_log",
        "CREATE TABLE run_log (name TEXT NOT NULL);",
    );
    for i in 2..=5 {
        kit.mig(
            "core",
            &format!("00{i}_step"),
            &format!("{slow}\nINSERT INTO run_log (name) VALUES ('00{i}');"),
        );
    }
    kit
}

fn concurrent_runners(db: &TestDb, n: usize) {
    let kit = concurrency_kit(db);
    let url = db.url();
    let args = run_args(&kit, &url, &["--lock-timeout", "60s"]);
    let children: Vec<Child> = (0..n).map(|_| spawn(&args, None)).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        db.applied("core"),
        ["001_log", "002_step", "003_step", "004_step", "005_step"]
    );
    let log = format!(
        "SELECT count(*), count(DISTINCT name) FROM {}",
        db.table("core", "run_log")
    );
    assert_eq!(
        db.rows(&log),
        [["4", "4"]],
        "each migration ran exactly once"
    );
}

#[test]
fn pg_two_concurrent_runners() {
    concurrent_runners(&TestDb::pg(), 2);
}

#[test]
fn pg_eight_concurrent_runners() {
    concurrent_runners(&TestDb::pg(), 8);
}

#[test]
fn sqlite_two_concurrent_runners() {
    concurrent_runners(&TestDb::sqlite(), 2);
}

#[test]
fn sqlite_eight_concurrent_runners() {
    concurrent_runners(&TestDb::sqlite(), 8);
}

fn lock_timeout_names_holder(db: &TestDb) {
    let kit = concurrency_kit(db);
    let mut holder = db.session();
    let holder_pid = if db.is_pg() {
        holder
            .driver()
            .query("SELECT CAST(pg_backend_pid() AS bigint)", &[])
            .unwrap()[0][0]
            .as_int()
            .unwrap()
    } else {
        i64::from(std::process::id())
    };
    let _locked = holder.lock(Duration::from_secs(5)).unwrap();
    let mut waiter = db.session();
    let err = waiter.lock(Duration::from_millis(300)).unwrap_err();
    let offkit::migrate::MigrateError::LockTimeout {
        holder: Some(h), ..
    } = &err
    else {
        panic!("unexpected {err}");
    };
    assert_eq!(h.pid, holder_pid);
    assert!(
        h.since.as_deref().is_some_and(|s| s.starts_with("20")),
        "{h:?}"
    );
    let (code, _, stderr) = run_cli(&kit, db, &["--lock-timeout", "500ms"]);
    assert_eq!(code, 7, "{stderr}");
    assert!(
        stderr.contains(&format!("held by pid {holder_pid} since 20")),
        "{stderr}"
    );
}

#[test]
fn pg_lock_timeout_names_holder() {
    lock_timeout_names_holder(&TestDb::pg());
}

#[test]
fn sqlite_lock_timeout_names_holder() {
    lock_timeout_names_holder(&TestDb::sqlite());
}

fn data_kit(db: &TestDb) -> Kit {
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0);\n\
         CREATE TABLE batch_log (item_id INTEGER NOT NULL);",
    );
    let values: Vec<String> = (1..=100).map(|i| format!("({i})")).collect();
    kit.mig(
        "core",
        "S001_items",
        &format!("INSERT INTO items (id) VALUES {};", values.join(", ")),
    );
    if db.is_pg() {
        kit.mig(
            "core",
            "DM001_done",
            "WITH moved AS (UPDATE items SET done = 1 WHERE id IN \
               (SELECT id FROM items WHERE done = 0 ORDER BY id LIMIT :batch_size) RETURNING id) \
             INSERT INTO batch_log (item_id) SELECT id FROM moved",
        );
    } else {
        kit.mig(
            "core",
            "002_log_trigger",
            "CREATE TRIGGER log_done AFTER UPDATE OF done ON items BEGIN \
               INSERT INTO batch_log (item_id) VALUES (NEW.id); END;",
        );
        kit.mig(
            "core",
            "DM001_done",
            "UPDATE items SET done = 1 WHERE id IN (SELECT id FROM items WHERE done = 0 ORDER BY id LIMIT :batch_size)",
        );
    }
    kit
}

fn progress(db: &TestDb) -> Vec<Vec<String>> {
    let table = if db.is_pg() {
        "offkit.data_migration_progress"
    } else {
        "offkit_data_migration_progress"
    };
    db.rows(&format!(
        "SELECT batches_done, rows_done, CAST(finished_at IS NULL AS INTEGER) FROM {table}"
    ))
}

fn sigkill_mid_data_migration_resumes(db: &TestDb, failpoint: &str, committed: i64) {
    let kit = data_kit(db);
    let url = db.url();
    let args = run_args(&kit, &url, &["--category", "data", "--batch-size", "10"]);
    kill_at_failpoint(spawn(&args, Some(failpoint)), failpoint);
    let log = format!(
        "SELECT count(*), count(DISTINCT item_id) FROM {}",
        db.table("core", "batch_log")
    );
    let n = (committed * 10).to_string();
    assert_eq!(
        db.rows(&log),
        [[n.clone(), n.clone()]],
        "only committed batches remain"
    );
    assert_eq!(progress(db), [[committed.to_string(), n, "1".to_owned()]]);
    assert!(!db.applied("core").contains(&"DM001_done".to_owned()));

    let (code, stdout, stderr) = run_cli(
        &kit,
        db,
        &["--category", "data", "--batch-size", "10", "--json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let dm = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "DM001_done")
        .unwrap();
    assert_eq!(dm["data"]["resumed_after_batches"], committed);
    assert_eq!(dm["data"]["batches"], 10 - committed);
    assert_eq!(dm["data"]["total_rows"], 100);
    assert_eq!(db.rows(&log), [["100", "100"]], "no batch lost or doubled");
    assert_eq!(progress(db), [["10", "100", "0"]]);
    assert_eq!(
        db.int(&format!(
            "SELECT count(*) FROM {} WHERE done = 0",
            db.table("core", "items")
        )),
        0
    );
}

#[test]
fn pg_sigkill_inside_a_batch_resumes_from_checkpoint() {
    sigkill_mid_data_migration_resumes(&TestDb::pg(), "data-batch-executed:DM001_done:4", 3);
}

#[test]
fn pg_sigkill_after_a_batch_resumes_from_checkpoint() {
    sigkill_mid_data_migration_resumes(&TestDb::pg(), "data-batch-committed:DM001_done:5", 5);
}

#[test]
fn sqlite_sigkill_inside_a_batch_resumes_from_checkpoint() {
    sigkill_mid_data_migration_resumes(&TestDb::sqlite(), "data-batch-executed:DM001_done:4", 3);
}

#[test]
fn sqlite_sigkill_after_a_batch_resumes_from_checkpoint() {
    sigkill_mid_data_migration_resumes(&TestDb::sqlite(), "data-batch-committed:DM001_done:5", 5);
}

#[test]
fn pg_sigkill_in_no_transaction_migration_needs_resolve() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);",
    )
    .mig(
        "core",
        "002_idx",
        "-- offkit:no-transaction\nCREATE INDEX CONCURRENTLY items_name ON items (name);\n",
    );
    let url = db.url();
    let args = run_args(&kit, &url, &[]);
    kill_at_failpoint(
        spawn(&args, Some("no-transaction-recorded:002_idx")),
        "no-transaction-recorded:002_idx",
    );
    let src = kit.path().display().to_string();
    let cmd = |sub: &str, extra: &[&str]| {
        let mut a = vec!["migrations", sub, "--source", &src, "--db", &url];
        a.extend_from_slice(extra);
        outcome(&offkit(&a))
    };
    let (code, stdout, _) = cmd("status", &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("IN-PROGRESS  002_idx"), "{stdout}");
    let (code, _, stderr) = cmd("verify", &[]);
    assert_eq!(code, 9, "{stderr}");
    let (code, _, stderr) = cmd("run", &[]);
    assert_eq!(code, 9, "{stderr}");
    assert!(
        stderr.contains("offkit migrations resolve 002_idx --module core"),
        "{stderr}"
    );
    let (code, stdout, stderr) = outcome(&offkit(&[
        "migrations",
        "resolve",
        "002_idx",
        "--module",
        "core",
        "--not-applied",
        "--source",
        &src,
        "--db",
        &url,
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("resolved as not applied"), "{stdout}");
    let (code, _, stderr) = cmd("run", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(db.int("SELECT count(*) FROM pg_index WHERE indexrelid = 'core.items_name'::regclass AND indisvalid"), 1);
    assert_eq!(cmd("verify", &[]).0, 0);
}

#[test]
fn cli_exit_codes_gate_check_and_json() {
    let db = TestDb::sqlite();
    let kit = Kit::new();
    kit.mig("core", "001_a", "CREATE TABLE a (x INTEGER);").mig(
        "core",
        "100_b",
        "CREATE TABLE b (x INTEGER);",
    );
    let url = db.url();
    let src = kit.path().display().to_string();
    let cmd = |sub: &str, extra: &[&str]| {
        let mut a = vec!["migrations", sub, "--source", &src, "--db", &url];
        a.extend_from_slice(extra);
        outcome(&offkit(&a))
    };
    let (code, stdout, _) = cmd("run", &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("UNSIGNED"),
        "the source is labelled unsigned: {stdout}"
    );
    let (code, stdout, _) = cmd("check", &[]);
    assert_eq!(code, 10, "release pending: {stdout}");
    let (code, stdout, stderr) = cmd("run", &["--category", "release"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stdout.contains("plan     core/100_b (release) sha256:"),
        "the plan is printed: {stdout}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    let (code, stdout, _) = cmd("run", &["--category", "release", "--dry-run", "--json"]);
    assert_eq!(code, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["source"]["kind"], "unsigned-source");
    assert_eq!(plan["steps"][0]["name"], "100_b");
    assert_eq!(plan["steps"][0]["outcome"], "planned");
    assert_eq!(cmd("run", &["--category", "release", "--force"]).0, 0);
    assert_eq!(cmd("check", &[]).0, 0);
    let (code, stdout, _) = cmd("status", &["--json"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["entries"].as_array().unwrap().len(), 2);
    assert_eq!(status["entries"][1]["state"], "applied");
    assert_eq!(cmd("status", &["--module", "nope"]).0, 2);
    kit.mig("core", "001_dup", "SELECT 1;");
    let (code, _, stderr) = cmd("status", &[]);
    assert_eq!(code, 4, "duplicate number is a source error: {stderr}");
    assert!(stderr.contains("same startup number 1"), "{stderr}");
}

#[test]
fn pg_passwords_never_printed() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig("core", "001_a", "CREATE TABLE a (x INTEGER);");
    let with_password = db
        .url()
        .replacen("://", "://postgres:sup3rsecret@", 1)
        .replacen("@postgres@", "@", 1);
    let src = kit.path().display().to_string();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec![
            "migrations",
            "run",
            "--source",
            &src,
            "--db",
            &with_password,
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = outcome(&offkit(&args));
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("postgres:***@"), "{stdout}");
        assert!(!format!("{stdout}{stderr}").contains("sup3rsecret"));
    }
    let unreachable = "postgres://postgres:sup3rsecret@127.0.0.1:1/none";
    let (code, stdout, stderr) = outcome(&offkit(&[
        "migrations",
        "status",
        "--source",
        &src,
        "--db",
        unreachable,
    ]));
    assert_eq!(code, 8, "{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("sup3rsecret"),
        "{stderr}"
    );
}

/// A long data migration reports its batches and rows while it runs (`--progress lines`: a line
/// every 2 s once the run has lasted 2 s), not only which migration is under way.
#[test]
fn long_data_migrations_report_batches_and_rows() {
    let db = TestDb::pg();
    let kit = Kit::new();
    kit.mig(
        "core",
        "001_items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0);\n\
         INSERT INTO items (id) SELECT generate_series(1, 60);",
    );
    // Each batch of 5 rows takes 0.5 s: 12 batches, about 6 s.
    kit.mig(
        "core",
        "DM001_slow",
        "UPDATE items SET done = 1 WHERE id IN \
           (SELECT id FROM items WHERE done = 0 ORDER BY id LIMIT :batch_size) \
           AND (SELECT pg_sleep(0.5)) IS NOT NULL",
    );
    let (code, out, err) = run_cli(
        &kit,
        &db,
        &[
            "--category",
            "data",
            "--batch-size",
            "5",
            "--progress",
            "lines",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("Progress: migration 2 of 2: core/DM001_slow: batch "))
        .collect();
    assert!(lines.len() >= 2, "{out}{err}");
    // Counts only grow, by whole batches of 5 rows.
    let counts: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| {
            let rest = l.rsplit_once(": batch ").unwrap().1;
            let (b, r) = rest.split_once(", ").unwrap();
            (
                b.parse().unwrap(),
                r.trim_end_matches(" rows").parse().unwrap(),
            )
        })
        .collect();
    for (b, r) in &counts {
        assert_eq!(*r, b * 5, "{err}");
    }
    assert!(counts.windows(2).all(|w| w[0].0 < w[1].0), "{err}");
    assert!(counts.last().unwrap().0 <= 12, "{err}");
}
