//! Fault injection: real faults, made by the test, at the worst moments — a disk that fills up
//! (a small tmpfs the test mounts) during `extract`, `build`, apply's work folder and file-store
//! seeding; the database connection terminated by the server (`pg_terminate_backend`) in the
//! middle of a migration and of a data-migration batch; the S3 server killed mid-seed and
//! restarted; an S3 server that stops answering, or accepting. Each must end in a clear error
//! (what failed, where, why), leave nothing half-done (no partial file or object, no half-applied
//! migration or batch, a ledger that says what happened), and a rerun of the same command must
//! complete the job.

mod common;
#[path = "common/fault_kit.rs"]
mod fault_kit;
#[path = "common/paused.rs"]
mod paused;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_cli.rs"]
mod store_cli;
#[path = "common/tmpfs.rs"]
mod tmpfs;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestDb, Workspace, outcome, tree};
use fault_kit::{Seed, Target};
use paused::Paused;
use tmpfs::Tmpfs;

/// `offkit apply KIT` onto `db` and `store`, JSON report on stdout, batches of 10.
fn apply(kit: &Path, public: &Path, db: &TestDb, store: &str) -> Command {
    let mut c = store_cli::offkit();
    c.arg("apply")
        .arg(kit)
        .arg("--trust")
        .arg(public)
        .args(["--db", &db.url(), "--store", store])
        .args(["--progress", "off", "--batch-size", "10", "--json"]);
    c
}

fn run(cmd: &mut Command) -> (i32, serde_json::Value, String) {
    let (code, out, err) = outcome(&cmd.output().expect("offkit runs"));
    let report = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, report, err)
}

/// Keys of the report's listed seed objects (those needing attention) with outcome `what`.
fn listed_with(report: &serde_json::Value, what: &str) -> Vec<String> {
    assert_eq!(report["seeds"]["objects_listed"], "needing-attention");
    report["seeds"]["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["outcome"] == what)
                .map(|o| o["key"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Keys ledger entry `id` records with seed outcome `what`.
fn recorded_with(db: &TestDb, id: i64, what: &str) -> Vec<String> {
    fault_kit::seed_outcomes(db, id)
        .into_iter()
        .filter(|(_, outcome)| outcome == what)
        .map(|(key, _)| key)
        .collect()
}

fn blobs(n: usize, size: usize) -> Vec<Seed> {
    (1..=n)
        .map(|i| Seed::noise(&format!("blobs/b{i}.bin"), size))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Disk full

/// `offkit extract` into a 2 MiB file system of a 4 MiB kit: the write that fails is named, and
/// nothing of the kit remains (not even the folder extract created); with space, the same command
/// extracts the whole kit.
#[test]
fn disk_full_during_extract_leaves_nothing_and_a_rerun_extracts() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let disk = Tmpfs::mount("2m");
    let to = disk.join("kit");
    let extract = || {
        let mut c = store_cli::offkit();
        c.arg("extract")
            .arg(&kit)
            .arg("--trust")
            .arg(&public)
            .arg("--to")
            .arg(&to);
        outcome(&c.output().unwrap())
    };

    let (code, out, err) = extract();
    assert_eq!(code, 6, "an I/O error, not a refused kit: {out}{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("seeds/blobs/b"), "names the file: {err}");
    assert_eq!(
        tree(disk.path()),
        Vec::<String>::new(),
        "nothing left behind"
    );

    disk.resize("16m");
    let (code, out, err) = extract();
    assert_eq!(code, 0, "{out}{err}");
    for s in &seeds {
        let path = to.join("seeds").join(&s.key);
        assert_eq!(std::fs::read(&path).unwrap(), s.bytes, "{}", path.display());
    }
    assert!(
        !tree(&to).iter().any(|f| f.contains(".offkit")),
        "{:?}",
        tree(&to)
    );
}

/// `offkit build` into a 2 MiB file system: an I/O error that says the disk is full, no kit file
/// and no temporary file in the output folder; with space, the same command writes the same kit
/// a build on a roomy disk writes, byte for byte.
#[test]
fn disk_full_during_build_leaves_no_kit_and_a_rerun_builds_the_same_kit() {
    let ws = Workspace::new();
    let (key, _) = ws.key("release");
    let src = fault_kit::source(&ws, Target::Any, &blobs(6, 700_000));
    let reference = ws.build(&src, &[&key]);
    let disk = Tmpfs::mount("2m");
    let out_dir = disk.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let build = || {
        let mut c = common::cmd();
        c.arg("build")
            .arg(&src)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&out_dir);
        outcome(&c.output().unwrap())
    };

    let (code, out, err) = build();
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(tree(&out_dir), Vec::<String>::new(), "no partial kit");

    disk.resize("16m");
    let (code, out, err) = build();
    assert_eq!(code, 0, "{out}{err}");
    let built = out_dir.join(reference.file_name().unwrap());
    assert_eq!(
        tree(&out_dir),
        [built.file_name().unwrap().to_str().unwrap()]
    );
    assert_eq!(
        std::fs::read(&built).unwrap(),
        std::fs::read(&reference).unwrap()
    );
}

/// Apply's work folder (where the verified files of a kit without a frame index are kept while
/// applying) on a full disk: the verify step fails as an I/O error before anything is applied —
/// no ledger entry, no table, nothing in the store, no work folder left; with space, the same
/// apply completes.
#[test]
fn disk_full_in_the_work_folder_applies_nothing_and_a_rerun_applies() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    common::forge::without_frame_index(&kit, &ws.key("release").0);
    let db = TestDb::sqlite();
    let store_dir = ws.path("store");
    let store = format!("file://{}", store_dir.display());
    let disk = Tmpfs::mount("2m");

    let (code, report, err) = run(apply(&kit, &public, &db, &store)
        .arg("--work-dir")
        .arg(disk.path()));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let failed_step = report["steps"]
        .as_array()
        .and_then(|s| s.last())
        .map(|s| s["step"].clone());
    assert_eq!(failed_step, Some("verify".into()), "{report}");
    assert_eq!(
        tree(disk.path()),
        Vec::<String>::new(),
        "work folder removed"
    );
    assert_eq!(
        db.rows("SELECT name FROM sqlite_master"),
        Vec::<Vec<String>>::new(),
        "no ledger, no migration"
    );
    assert_eq!(fault_kit::files(&store_dir), []);

    disk.resize("16m");
    let (code, _, err) = run(apply(&kit, &public, &db, &store)
        .arg("--work-dir")
        .arg(disk.path()));
    assert_eq!(code, 0, "{err}");
    fault_kit::assert_applied_once(&db, Target::Any);
    assert_eq!(fault_kit::files(&store_dir), fault_kit::expected(&seeds));
    assert_eq!(fault_kit::outcomes(&db), ["succeeded"]);
    assert_eq!(tree(disk.path()), Vec::<String>::new());
}

/// A kit as `build` writes it (with its frame index) needs no scratch disk: its seeds are read
/// again from the kit itself, so a work folder with no room at all does not matter.
#[test]
fn a_kit_with_a_frame_index_needs_no_scratch_disk() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let store_dir = ws.path("store");
    let store = format!("file://{}", store_dir.display());
    let disk = Tmpfs::mount("64k");
    let (code, _, err) = run(apply(&kit, &public, &db, &store)
        .arg("--work-dir")
        .arg(disk.path()));
    assert_eq!(code, 0, "{err}");
    fault_kit::assert_applied_once(&db, Target::Any);
    assert_eq!(fault_kit::files(&store_dir), fault_kit::expected(&seeds));
    assert_eq!(tree(disk.path()), Vec::<String>::new());
}

/// A folder store on a 2 MiB file system, seeded with 4 MiB one object at a time: the objects
/// that fit are put whole, each one that does not is a named failure, no temporary file is left,
/// the ledger records the failure and which object was put and which failed; with space, the same
/// apply puts exactly the missing ones, and the ledger shows both attempts.
#[test]
fn disk_full_while_seeding_a_folder_store_keeps_only_whole_objects_and_a_rerun_completes() {
    let ws = Workspace::new();
    let seeds = blobs(6, 700_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let disk = Tmpfs::mount("2m");
    let store_dir = disk.join("store");
    let store = format!("file://{}", store_dir.display());

    let (code, report, err) = run(apply(&kit, &public, &db, &store).args(["--parallelism", "1"]));
    assert_eq!(code, 12, "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let put = recorded_with(&db, 1, "put");
    let failed = listed_with(&report, "failed");
    assert!(!put.is_empty() && !failed.is_empty(), "{report}");
    assert_eq!(put.len() + failed.len(), seeds.len(), "{report}");
    assert_eq!(report["seeds"]["totals"]["put"], put.len(), "{report}");
    assert_eq!(recorded_with(&db, 1, "failed"), failed, "{report}");
    assert!(err.contains(&failed[0]), "names the object: {err}");
    // Only whole, correct objects: exactly those reported put, and no temporary file.
    let want = fault_kit::expected(&seeds);
    let have = fault_kit::files(&store_dir);
    assert_eq!(
        have,
        want.iter()
            .filter(|(k, _)| put.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
        "the store holds exactly the objects reported put"
    );
    // The migrations ran (once) before the seeds; the ledger says what happened.
    fault_kit::assert_applied_once(&db, Target::Any);
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].0, "failed");
    assert!(
        ledger[0].1.contains("No space left on device"),
        "{ledger:?}"
    );

    disk.resize("16m");
    let (code, report, err) = run(apply(&kit, &public, &db, &store).args(["--parallelism", "1"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(fault_kit::files(&store_dir), want);
    assert_eq!(report["seeds"]["totals"]["put"], failed.len(), "{report}");
    let mut put_now = recorded_with(&db, 2, "put");
    put_now.sort();
    let mut missing = failed.clone();
    missing.sort();
    assert_eq!(
        put_now, missing,
        "the rerun puts exactly the missing objects"
    );
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
    fault_kit::assert_applied_once(&db, Target::Any);
}

// ---------------------------------------------------------------------------------------------
// The database connection terminated by the server

/// A second connection to the test's PostgreSQL database, for holding locks and terminating
/// offkit's backend.
fn pg_client(db: &TestDb) -> postgres::Client {
    postgres::Client::connect(&db.url(), postgres::NoTls).expect("connecting to the test database")
}

/// Waits until offkit's lock-holding backend waits for a lock (the one the test holds), then
/// terminates it with `pg_terminate_backend`, as a DBA or a failover would. Returns its pid.
fn terminate_offkit_backend(admin: &mut postgres::Client) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name LIKE 'offkit: migration lock since %' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .expect("pg_stat_activity");
        if let Some(row) = waiting.first() {
            let pid: i32 = row.get(0);
            let done: bool = admin
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .expect("pg_terminate_backend")
                .get(0);
            assert!(done, "pg_terminate_backend({pid})");
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "offkit never waited for the test's lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The connection is terminated while a migration waits inside its transaction (it created a
/// table and wrote its trace, then waits for a lock the test holds). The migration is not
/// half-applied: neither its table nor its trace nor its history row exists; the migration
/// before it stays applied; the error names the migration and says the connection was lost; the
/// ledger entry is `failed` with that error (not left `running`). Once the test lets go of the
/// lock, the same apply completes and every migration has run exactly once.
#[test]
fn connection_terminated_mid_migration_leaves_it_unapplied_and_a_rerun_completes() {
    let ws = Workspace::new();
    let seeds = blobs(2, 1000);
    let (kit, public) = fault_kit::build(&ws, Target::Postgres, &seeds);
    let db = TestDb::pg();
    let store_dir = ws.path("store");
    let store = format!("file://{}", store_dir.display());

    let mut holder = pg_client(&db);
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&fault_kit::GATE_KEY])
        .unwrap();
    let child = apply(&kit, &public, &db, &store)
        .args(["--db-lock-timeout", "2m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    terminate_offkit_backend(&mut pg_client(&db));
    let (code, out, err) = outcome(&child.wait_with_output().unwrap());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();

    assert_eq!(code, 8, "a database error: {err}");
    assert!(err.contains("app/002_gate"), "names the migration: {err}");
    assert!(err.contains("connection to the database was lost"), "{err}");
    assert!(
        err.contains("Applied by this run before the failure (1): app/001_items"),
        "{err}"
    );
    assert_eq!(db.applied("app"), ["001_items"]);
    assert_eq!(
        db.rows("SELECT migration FROM app.runs"),
        [["001_items"]],
        "002_gate's trace rolled back with it"
    );
    assert_eq!(
        db.int("SELECT count(*) FROM pg_tables WHERE tablename = 'gated'"),
        0
    );
    assert_eq!(
        fault_kit::files(&store_dir),
        [],
        "no seed put after the failure"
    );
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].0, "failed", "{ledger:?}; report: {report}");
    assert!(ledger[0].1.contains("app/002_gate"), "{ledger:?}");

    holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&fault_kit::GATE_KEY])
        .unwrap();
    let (code, _, err) = run(&mut apply(&kit, &public, &db, &store));
    assert_eq!(code, 0, "{err}");
    fault_kit::assert_applied_once(&db, Target::Postgres);
    assert_eq!(fault_kit::files(&store_dir), fault_kit::expected(&seeds));
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
}

/// The connection is terminated in the middle of a data-migration batch (batch 3 of 5 waits for a
/// row the test has locked; batches 1 and 2 are committed). The batch is not half-applied and no
/// batch is lost or counted twice: exactly the rows of the two committed batches are counted, the
/// checkpoint says two batches; the error names the data migration and the lost connection; the
/// ledger entry is `failed`. The rerun resumes after batch 2 and every row ends counted once.
#[test]
fn connection_terminated_mid_batch_loses_only_that_batch_and_a_rerun_resumes() {
    let ws = Workspace::new();
    let seeds = blobs(2, 1000);
    let (kit, public) = fault_kit::build(&ws, Target::Postgres, &seeds);
    let db = TestDb::pg();
    let store_dir = ws.path("store");
    let store = format!("file://{}", store_dir.display());

    let mut paused = Paused::start(
        apply(&kit, &public, &db, &store).args(["--db-lock-timeout", "2m"]),
        "data-batch-committed:DM001_count:2",
        &ws.path("resume"),
    );
    paused.reached();
    // Batch 3 is rows 21-30: hold row 25.
    let mut holder = pg_client(&db);
    let mut tx = holder.transaction().unwrap();
    tx.query("SELECT id FROM app.items WHERE id = 25 FOR UPDATE", &[])
        .unwrap();
    paused.resume();
    terminate_offkit_backend(&mut pg_client(&db));
    let done = paused.finish();
    let (code, err) = (done.code, done.stderr);

    assert_eq!(code, 8, "a database error: {err}");
    assert!(
        err.contains("app/DM001_count"),
        "names the data migration: {err}"
    );
    assert!(err.contains("connection to the database was lost"), "{err}");
    assert_eq!(
        db.rows("SELECT count(*), sum(n), max(n) FROM app.items WHERE done = 1"),
        [["20", "20", "1"]],
        "exactly the two committed batches"
    );
    assert_eq!(
        db.rows(
            "SELECT batches_done, rows_done, CAST(finished_at IS NULL AS int) \
             FROM offkit.data_migration_progress WHERE migration_name = 'DM001_count'"
        ),
        [["2", "20", "1"]]
    );
    assert!(!db.applied("app").contains(&"DM001_count".to_owned()));
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].0, "failed", "{ledger:?}");
    assert!(ledger[0].1.contains("DM001_count"), "{ledger:?}");

    tx.rollback().unwrap();
    let (code, report, err) = run(&mut apply(&kit, &public, &db, &store));
    assert_eq!(code, 0, "{err}");
    let dm = report["migrations"]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "DM001_count"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(dm["data"]["resumed_after_batches"], 2, "{dm}");
    fault_kit::assert_applied_once(&db, Target::Postgres);
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
}

// ---------------------------------------------------------------------------------------------
// The S3 server killed, frozen, or not accepting

/// What the bucket holds, through the S3 API (what any client sees): (key, SHA-256), sorted.
fn bucket_objects(server: &s3::S3Server, bucket: &str) -> Vec<(String, String)> {
    let store = offkit::store::open_str(&server.url_with_keys(bucket, "")).unwrap();
    let mut keys = Vec::new();
    store
        .list(None, &mut |i| {
            keys.push(i.key);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let key = offkit::kit::path::KitPath::new(&k).unwrap();
            let digest = store.digest(&key).unwrap().unwrap();
            (k, digest.sha256)
        })
        .collect()
}

/// `expected` restricted to `keys`.
fn only(expected: &[(String, String)], keys: &[String]) -> Vec<(String, String)> {
    expected
        .iter()
        .filter(|(k, _)| keys.contains(k))
        .cloned()
        .collect()
}

/// The S3 server is SIGKILLed while a 20 MiB object goes up by multipart upload (its first part
/// sent, the rest not), with more objects after it. The apply fails naming the object and the
/// refused connection; once the server is back, the bucket holds exactly the objects reported
/// put, whole — nothing of the interrupted upload is visible — and the same apply completes.
#[test]
fn s3_server_killed_mid_seed_then_restarted_shows_no_partial_object_and_a_rerun_completes() {
    let ws = Workspace::new();
    let mut seeds = vec![
        Seed::noise("blobs/a.bin", 100_000),
        Seed::noise("blobs/big.bin", 20 << 20),
        Seed::noise("blobs/c.bin", 100_000),
    ];
    seeds.sort_by(|a, b| a.key.cmp(&b.key));
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let mut server = s3::S3Server::start();
    let bucket = server.bucket("killed");
    let store = server.url(&bucket, "");
    let env = server.env();
    let apply_s3 = || {
        let mut c = apply(&kit, &public, &db, &store);
        c.args(["--parallelism", "1"]).envs(env.clone());
        c
    };

    let mut paused = Paused::start(
        &mut apply_s3(),
        "seed-put-streaming:blobs/big.bin",
        &ws.path("resume"),
    );
    paused.reached();
    server.kill();
    let done = paused.finish();
    let report: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(done.code, 12, "{}", done.stderr);
    assert!(done.stderr.contains("blobs/big.bin"), "{}", done.stderr);
    assert!(
        done.stderr.contains("Connection refused"),
        "{}",
        done.stderr
    );
    let put = recorded_with(&db, 1, "put");
    assert!(!put.contains(&"blobs/big.bin".to_owned()), "{report}");
    assert!(
        listed_with(&report, "failed").contains(&"blobs/big.bin".to_owned()),
        "{report}"
    );
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].0, "failed");
    assert!(ledger[0].1.contains("blobs/big.bin"), "{ledger:?}");

    server.restart();
    let expected = fault_kit::expected(&seeds);
    assert_eq!(
        bucket_objects(&server, &bucket),
        only(&expected, &put),
        "after the restart: exactly the objects reported put, whole"
    );

    let (code, report, err) = run(&mut apply_s3());
    assert_eq!(code, 0, "{err}");
    assert!(recorded_with(&db, 2, "put").contains(&"blobs/big.bin".to_owned()));
    assert_eq!(
        report["seeds"]["totals"]["put"].as_u64(),
        Some(recorded_with(&db, 2, "put").len() as u64),
        "{report}"
    );
    assert_eq!(bucket_objects(&server, &bucket), expected);
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
    fault_kit::assert_applied_once(&db, Target::Any);
}

/// The S3 server stops answering mid-seed (SIGSTOP: connections are still accepted by the
/// kernel, nothing answers). The put in flight fails when the request timeout fires — here 1s,
/// set with `AWS_TIMEOUT` — and the error says so: the limit, its value, where it was set. The
/// apply does not hang; the ledger records the failure. Once the server answers again, whatever
/// it holds is whole (it may have finished the put it had received), and the same apply, with the
/// default timeouts, completes.
#[test]
fn stalled_s3_server_fails_the_put_naming_the_request_timeout_and_a_rerun_completes() {
    let ws = Workspace::new();
    let seeds = blobs(3, 100_000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let server = s3::S3Server::start();
    let bucket = server.bucket("stalled");
    let store = server.url(&bucket, "");
    let apply_s3 = || {
        let mut c = apply(&kit, &public, &db, &store);
        c.args(["--parallelism", "1"]).envs(server.env());
        c
    };

    let mut paused = Paused::start(
        apply_s3().env("AWS_TIMEOUT", "1s"),
        "seed-put:blobs/b3.bin",
        &ws.path("resume"),
    );
    paused.reached();
    server.freeze();
    let started = Instant::now();
    let done = paused.finish();
    let took = started.elapsed();
    server.unfreeze();
    assert_eq!(done.code, 12, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("\"blobs/b3.bin\" in s3://stalled?endpoint=http://127.0.0.1:"),
        "names the object: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains(
            "no answer from the S3 server within the S3 request timeout, 1s (AWS_TIMEOUT)"
        ),
        "names the timeout: {}",
        done.stderr
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].0, "failed");
    assert!(ledger[0].1.contains("S3 request timeout"), "{ledger:?}");

    let expected = fault_kit::expected(&seeds);
    for object in bucket_objects(&server, &bucket) {
        assert!(expected.contains(&object), "partial object {object:?}");
    }
    let (code, _, err) = run(&mut apply_s3());
    assert_eq!(code, 0, "{err}");
    assert_eq!(bucket_objects(&server, &bucket), expected);
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
}

/// A TCP listener whose accept queue is full (`listen(0)`, filled by its own connections, never
/// accepting): a server so overloaded that connections hang. Returns the child and its port.
fn saturated_listener() -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(
            "import socket, sys, time\n\
             s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)\n\
             port = s.getsockname()[1]\n\
             held = []\n\
             for _ in range(3):\n\
             \x20   c = socket.socket(); c.setblocking(False)\n\
             \x20   try: c.connect(('127.0.0.1', port))\n\
             \x20   except BlockingIOError: pass\n\
             \x20   held.append(c)\n\
             time.sleep(0.5)\n\
             print(port, flush=True)\n\
             time.sleep(600)\n",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the listener's port");
    (child, port)
}

/// An S3 endpoint that accepts no connection: seeding fails when the connect timeout fires —
/// here 1s, set with `AWS_CONNECT_TIMEOUT` — and the error names it, with its value and where it
/// was set; nothing hangs, nothing is stored, the ledger records it. When a real server listens
/// there, the same apply completes.
#[test]
fn s3_server_accepting_no_connection_fails_naming_the_connect_timeout_and_a_rerun_completes() {
    let ws = Workspace::new();
    let seeds = blobs(2, 1000);
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let (mut listener, port) = saturated_listener();
    let store =
        format!("s3://hung?endpoint=http://127.0.0.1:{port}&region=us-east-1&path_style=true");
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY0",
        ),
    ];

    let started = Instant::now();
    let (code, _, err) = run(apply(&kit, &public, &db, &store)
        .envs(keys)
        .env("AWS_CONNECT_TIMEOUT", "1s"));
    let took = started.elapsed();
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(code, 12, "{err}");
    assert!(
        err.contains(
            "no connection to the S3 server within the S3 connect timeout, 1s (AWS_CONNECT_TIMEOUT)"
        ),
        "names the timeout: {err}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let ledger = fault_kit::ledger(&db);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].0, "failed");
    assert!(ledger[0].1.contains("S3 connect timeout"), "{ledger:?}");

    let server = s3::S3Server::start_on(port);
    server.bucket("hung");
    let (code, _, err) = run(apply(&kit, &public, &db, &store).envs(server.env()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(bucket_objects(&server, "hung"), fault_kit::expected(&seeds));
    assert_eq!(fault_kit::outcomes(&db), ["failed", "succeeded"]);
}
