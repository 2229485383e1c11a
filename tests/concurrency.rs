//! Concurrency: eight `offkit apply` of the same kit started together on one database and one
//! store — PostgreSQL with S3, and SQLite with a folder. The first to take the migration lock is
//! held right after it (a failpoint pauses it) while the others arrive: four wait for the lock,
//! four give up after one second. Then it goes on. Every migration must have run once (checked on
//! the data its SQL leaves, not only on the history), every object must have been put once (for
//! S3, counted in the server's own log), every impatient loser must fail with the lock-busy exit
//! code naming the holder and write nothing, every patient one must find the work done and say
//! so, and the ledger must tell that story: one entry per apply that got the lock, in the order
//! they got it, the first putting every object and each later one skipping them all.

mod common;
#[path = "common/fault_kit.rs"]
mod fault_kit;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_cli.rs"]
mod store_cli;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use common::{TestDb, Workspace};
use fault_kit::{Seed, Target};

/// How many applies start together, and how many of them wait for the lock (the rest give up
/// after [`IMPATIENT`]).
const APPLIES: usize = 8;
const PATIENT: usize = 4;
const IMPATIENT: &str = "1s";

/// One apply of the eight.
struct Runner {
    child: Child,
    patient: bool,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// What one apply did.
struct Ran {
    patient: bool,
    pid: u32,
    code: i32,
    report: serde_json::Value,
    stderr: String,
}

/// Reads `from` to the end; each line that reports a failpoint is also sent, with `index`.
fn collect(
    from: impl Read + Send + 'static,
    index: usize,
    tell: Sender<usize>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if line.starts_with("offkit-failpoint: apply:locked") {
                let _ = tell.send(index);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    })
}

fn read_all(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = from.read_to_string(&mut s);
        s
    })
}

/// Starts the eight applies at once, holds the first lock holder until every impatient loser
/// has given up, lets it go on, and returns what each did (and which one won).
fn eight_applies(
    ws: &Workspace,
    kit: &Path,
    public: &Path,
    db: &TestDb,
    store: &str,
    env: &[(&'static str, String)],
) -> (Vec<Ran>, usize) {
    let resume = ws.path("resume");
    let (tell, locked) = channel();
    let mut runners: Vec<Runner> = (0..APPLIES)
        .map(|i| {
            let patient = i < PATIENT;
            let mut child = store_cli::offkit()
                .arg("apply")
                .arg(kit)
                .arg("--trust")
                .arg(public)
                .args(["--db", &db.url(), "--store", store])
                .args(["--json", "--progress", "off", "--batch-size", "10"])
                .args(["--lock-timeout", if patient { "2m" } else { IMPATIENT }])
                .envs(env.iter().cloned())
                .env("OFFKIT_FAILPOINT", "apply:locked")
                .env("OFFKIT_FAILPOINT_RESUME", &resume)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning offkit");
            let stdout = read_all(child.stdout.take().unwrap());
            let stderr = collect(child.stderr.take().unwrap(), i, tell.clone());
            Runner {
                child,
                patient,
                stdout,
                stderr,
            }
        })
        .collect();
    let winner = locked
        .recv_timeout(Duration::from_secs(60))
        .expect("one apply takes the lock");

    // While the winner holds the lock, nobody else gets it, and every impatient one gives up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut waiting_impatient = 0;
        for (i, r) in runners.iter_mut().enumerate() {
            if i != winner && !r.patient && !matches!(r.child.try_wait(), Ok(Some(_))) {
                waiting_impatient += 1;
            }
        }
        if waiting_impatient == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "impatient applies did not give up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        locked.try_recv().is_err(),
        "a second apply took the lock while the first held it"
    );
    std::fs::write(&resume, b"").unwrap();

    let ran = runners
        .into_iter()
        .map(|mut r| {
            let pid = r.child.id();
            let status = r.child.wait().expect("waiting for offkit");
            let stdout = r.stdout.join().unwrap();
            Ran {
                patient: r.patient,
                pid,
                code: status.code().unwrap_or(-1),
                report: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
                stderr: r.stderr.join().unwrap(),
            }
        })
        .collect();
    (ran, winner)
}

fn count(report: &serde_json::Value, section: &str, field: &str) -> u64 {
    let v = match section {
        "migrations" => &report["migrations"]["counts"][field],
        _ => &report["seeds"]["totals"][field],
    };
    v.as_u64().unwrap_or(0)
}

/// The checks common to both sites.
fn check_the_story(ran: &[Ran], winner: usize, db: &TestDb, seeds: &[Seed], target: Target) {
    let migrations = fault_kit::migrations(target).len() as u64;
    let objects = seeds.len() as u64;
    for (i, r) in ran.iter().enumerate() {
        let who = format!("apply #{i} (pid {}, winner #{winner})", r.pid);
        if i == winner || r.patient {
            assert_eq!(r.code, 0, "{who}: {}", r.stderr);
        } else {
            // Lost: the lock-busy exit code, the holder named, nothing read, nothing written.
            assert_eq!(r.code, 7, "{who}: {}", r.stderr);
            assert!(
                r.stderr.contains("migration lock busy after waiting")
                    && r.stderr.contains("held by pid"),
                "{who}: {}",
                r.stderr
            );
            assert_eq!(r.report["ledger_id"], serde_json::Value::Null, "{who}");
            assert_eq!(r.report["seeds"], serde_json::Value::Null, "{who}");
        }
    }
    // The winner did everything; every patient one found it done.
    let w = &ran[winner].report;
    assert_eq!(count(w, "migrations", "applied"), migrations, "{w}");
    assert_eq!(count(w, "seeds", "put"), objects, "{w}");
    for (i, r) in ran.iter().enumerate() {
        if i != winner && r.patient {
            let rep = &r.report;
            assert_eq!(count(rep, "migrations", "applied"), 0, "#{i}: {rep}");
            assert_eq!(
                count(rep, "migrations", "already_applied"),
                migrations,
                "#{i}"
            );
            assert_eq!(count(rep, "seeds", "put"), 0, "#{i}: {rep}");
            assert_eq!(count(rep, "seeds", "skipped"), objects, "#{i}: {rep}");
        }
    }
    fault_kit::assert_applied_once(db, target);

    // The ledger: one succeeded entry per apply that got the lock, the winner's first.
    let succeeded: Vec<&Ran> = ran.iter().filter(|r| r.code == 0).collect();
    assert_eq!(
        fault_kit::outcomes(db),
        vec!["succeeded"; succeeded.len()],
        "no entry for the applies that never got the lock"
    );
    let mut ids: Vec<i64> = succeeded
        .iter()
        .map(|r| r.report["ledger_id"].as_i64().expect("ledger id"))
        .collect();
    ids.sort();
    let first = ids[0];
    assert_eq!(ran[winner].report["ledger_id"], first);
    assert_eq!(ids, (first..first + ids.len() as i64).collect::<Vec<_>>());
    let keys: Vec<String> = fault_kit::expected(seeds)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for id in ids {
        let expected = if id == first { "put" } else { "skipped" };
        assert_eq!(
            fault_kit::seed_outcomes(db, id),
            keys.iter()
                .map(|k| (k.clone(), expected.to_owned()))
                .collect::<Vec<_>>(),
            "recorded seeds of ledger entry #{id}"
        );
    }
}

fn seeds() -> Vec<Seed> {
    (1..=12)
        .map(|i| Seed::noise(&format!("objects/o{i:02}.bin"), 20_000))
        .collect()
}

#[test]
fn eight_applies_on_postgres_and_s3_apply_once_and_the_losers_wait_or_fail_lock_busy() {
    let ws = Workspace::new();
    let seeds = seeds();
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::pg();
    let server = s3::S3Server::start_logging_requests();
    let bucket = server.bucket("eight");
    let store = server.url(&bucket, "site");

    let (ran, winner) = eight_applies(&ws, &kit, &public, &db, &store, &server.env());
    check_the_story(&ran, winner, &db, &seeds, Target::Any);
    // Every object stored once, by the server's own account: rclone logs each put it completes
    // as a move of its temporary file into place. (It also logs "CREATE OBJECT" for attempts it
    // fails: concurrent first puts into a new folder race inside rclone, answer 500, and the
    // client retries them.)
    let stored = format!("Moved (server-side) to: {bucket}/site/");
    assert_eq!(
        server.count_in_log(&stored),
        seeds.len(),
        "puts the server completed"
    );
    let listed = offkit::store::open_str(&server.url_with_keys(&bucket, "site")).unwrap();
    let mut have: Vec<(String, String)> = Vec::new();
    listed
        .list(None, &mut |i| {
            have.push((i.key, String::new()));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    for (key, sha) in &mut have {
        let k = offkit::kit::path::KitPath::new(key).unwrap();
        *sha = listed.digest(&k).unwrap().unwrap().sha256;
    }
    have.sort();
    assert_eq!(have, fault_kit::expected(&seeds));
}

#[test]
fn eight_applies_on_sqlite_and_a_folder_apply_once_and_the_losers_wait_or_fail_lock_busy() {
    let ws = Workspace::new();
    let seeds = seeds();
    let (kit, public) = fault_kit::build(&ws, Target::Any, &seeds);
    let db = TestDb::sqlite();
    let store_dir = ws.path("store");
    let store = format!("file://{}", store_dir.display());

    let (ran, winner) = eight_applies(&ws, &kit, &public, &db, &store, &[]);
    check_the_story(&ran, winner, &db, &seeds, Target::Any);
    // SQLite's holder is the winning process itself, and the losers name it.
    for (i, r) in ran.iter().enumerate() {
        if r.code == 7 {
            let holder = format!("held by pid {} ", ran[winner].pid);
            assert!(r.stderr.contains(&holder), "#{i}: {}", r.stderr);
        }
    }
    // Exactly the objects, whole, and no temporary file.
    assert_eq!(fault_kit::files(&store_dir), fault_kit::expected(&seeds));
}
