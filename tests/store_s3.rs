//! The `s3://` store against a real S3-compatible server (`rclone serve s3` on loopback, started
//! by each test): the shared driver suite through the library, secrets never shown, and the
//! `offkit store` commands through the real binary with credentials from the AWS environment.

#[path = "common/store_cli.rs"]
mod cli;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_suite.rs"]
mod suite;

use offkit::store::{Store, open_str};

fn setup(bucket: &str) -> (s3::S3Server, Box<dyn Store>, tempfile::TempDir) {
    let server = s3::S3Server::start();
    server.bucket(bucket);
    let store = open_str(&server.url_with_keys(bucket, "seeds/v1")).unwrap();
    (server, store, tempfile::tempdir().unwrap())
}

#[test]
fn put_get_skip() {
    let (_server, store, src) = setup("put-get");
    suite::put_get_skip(store.as_ref(), src.path());
}

#[test]
fn conflict_stops_and_replace_conflicting() {
    let (_server, store, src) = setup("conflict");
    suite::conflict_stops(store.as_ref(), src.path());
}

#[test]
fn dry_run_changes_nothing() {
    let (_server, store, src) = setup("dry-run");
    suite::dry_run_changes_nothing(store.as_ref(), src.path());
}

#[test]
fn source_mismatch_stores_nothing() {
    let (_server, store, src) = setup("mismatch");
    suite::source_mismatch_stores_nothing(store.as_ref(), src.path());
}

#[test]
fn check_passes() {
    let (server, store, _src) = setup("check");
    suite::check_passes(store.as_ref());
    // rclone ignores If-None-Match: the probe sees its create-only put overwrite, and warns.
    let r = offkit::store::check::check(store.as_ref());
    assert_eq!(r.steps[4].step, "no-clobber");
    assert_eq!(r.steps[4].status, "warn", "{}", r.render_text());
    // Checking before every put instead makes create-only puts refuse on any server.
    let url = format!(
        "{}&conditional_put=disabled",
        server.url_with_keys("check", "x")
    );
    let r = offkit::store::check::check(open_str(&url).unwrap().as_ref());
    assert_eq!(r.steps[4].status, "ok", "{}", r.render_text());
}

#[test]
fn objects_live_under_the_prefix() {
    let (server, store, src) = setup("prefix");
    let seeds = [suite::seed_file(src.path(), "a/b.json", b"{}")];
    suite::seed_from(store.as_ref(), src.path(), &seeds, &Default::default()).unwrap();
    assert!(
        server
            .bucket_dir("prefix")
            .join("seeds/v1/a/b.json")
            .is_file()
    );
    // A store on the bucket root lists the object with its full key.
    let root = open_str(&server.url_with_keys("prefix", "")).unwrap();
    assert_eq!(suite::fingerprint(root.as_ref())[0].0, "seeds/v1/a/b.json");
}

#[test]
fn large_object_goes_multipart_with_bounded_memory() {
    let server = s3::S3Server::start();
    server.bucket("large");
    let src = tempfile::tempdir().unwrap();
    let url = server.url("large", "");
    // Through the library: a 72 MiB object (9 parts of 8 MiB) reads back intact.
    let store = open_str(&server.url_with_keys("large", "")).unwrap();
    suite::large_object(store.as_ref(), src.path(), 72 << 20);
    // Through the binary, measuring the peak memory of the process right after a 256 MiB put was
    // confirmed by read-back: bounded by the part buffers, not the object size.
    let big = tempfile::tempdir().unwrap();
    suite::large_seed_file(big.path(), "huge/blob.bin", 256 << 20, 3);
    let mut peak = 0;
    let reached = cli::kill_at_failpoint(
        cli::offkit()
            .args(["store", "put-dir", "--progress", "off", &url])
            .arg(big.path())
            .envs(server.env()),
        "seed-committed:huge/blob.bin",
        |pid| peak = cli::peak_rss_kib(pid),
    );
    assert_eq!(reached, "seed-committed:huge/blob.bin");
    eprintln!("peak RSS after a confirmed 256 MiB put: {peak} KiB");
    assert!(
        peak > 0 && peak < 160 * 1024,
        "peak RSS {peak} KiB for a 256 MiB object"
    );
}

#[test]
fn secrets_never_appear_in_output_errors_or_reports() {
    let server = s3::S3Server::start();
    server.bucket("secrets");
    let src = tempfile::tempdir().unwrap();
    suite::seed_folder(src.path(), 2, 0);
    let with_keys = server.url_with_keys("secrets", "p");
    let leaks = |text: &str| {
        assert!(
            !text.contains(&server.secret_key),
            "secret key leaked:\n{text}"
        );
        assert!(
            !text.contains(&server.access_key),
            "access key leaked:\n{text}"
        );
    };
    // Success, JSON and human, with keys in the URL.
    for extra in [&[][..], &["--json"][..]] {
        let (out, stdout, stderr) = cli::run(
            cli::offkit()
                .args(["store", "put-dir"])
                .args(extra)
                .arg(&with_keys)
                .arg(src.path()),
        );
        assert!(out.status.success(), "{stdout}{stderr}\n{}", server.log());
        leaks(&stdout);
        leaks(&stderr);
        assert!(stdout.contains("access_key_id=***"), "{stdout}");
    }
    let (out, stdout, stderr) =
        cli::run(cli::offkit().args(["store", "check", "--json", &with_keys]));
    assert!(out.status.success(), "{stdout}{stderr}");
    leaks(&stdout);
    // Failures: a missing bucket, a wrong secret, a typo in an option.
    let missing = server.url_with_keys("no-such-bucket", "");
    let wrong = format!(
        "{}&access_key_id={}&secret_access_key={}x",
        server.url("secrets", ""),
        server.access_key,
        server.secret_key
    );
    for url in [missing, wrong, format!("{with_keys}&regoin=eu")] {
        for cmd in [&["store", "check"][..], &["store", "ls"][..]] {
            let (out, stdout, stderr) = cli::run(cli::offkit().args(cmd).arg(&url));
            assert!(!out.status.success(), "{url}");
            leaks(&stdout);
            leaks(&stderr);
        }
    }
    // Library errors and reports.
    let store = open_str(&with_keys).unwrap();
    leaks(&format!("{:?}", store.url()));
    let bad = open_str(&server.url_with_keys("no-such-bucket", "")).unwrap();
    let err = bad
        .list(None, &mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap_err();
    leaks(&format!("{err} {err:?}"));
    let seeds = [suite::seed_file(src.path(), "x/y.json", b"{}")];
    let err = suite::seed_from(bad.as_ref(), src.path(), &seeds, &Default::default()).unwrap_err();
    leaks(&format!("{err} {err:?}"));
    if let Some(report) = err.report() {
        leaks(&serde_json::to_string(report).unwrap());
    }
}

#[test]
fn cli_with_credentials_from_the_environment() {
    let server = s3::S3Server::start();
    server.bucket("env");
    let src = tempfile::tempdir().unwrap();
    suite::seed_folder(src.path(), 5, 0);
    let url = server.url("env", "kit");
    let (out, stdout, stderr) = cli::run(
        cli::offkit()
            .args(["store", "put-dir", &url])
            .arg(src.path())
            .envs(server.env()),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("put 5"), "{stdout}");
    let (out, stdout, _) = cli::run(
        cli::offkit()
            .args(["store", "ls", "--sha256", &url])
            .envs(server.env()),
    );
    assert!(out.status.success());
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    // Without credentials the server refuses, and offkit says so with exit code 12.
    let (out, _, stderr) = cli::run(
        cli::offkit()
            .args(["store", "ls", &url])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SKIP_SIGNATURE", "true"),
    );
    assert_eq!(out.status.code(), Some(12), "{stderr}");
}

#[test]
fn key_safety() {
    let (server, store, src) = setup("keys");
    suite::key_safety(store.as_ref(), src.path());
    // Everything is inside the bucket's prefix on the server's disk.
    let mut top: Vec<_> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["keys"]);
}

#[test]
fn concurrent_seedings_end_correct() {
    let server = s3::S3Server::start();
    server.bucket("concurrent");
    let src = tempfile::tempdir().unwrap();
    suite::seed_folder(src.path(), 200, 0);
    let url = server.url("concurrent", "");
    // rclone ignores If-None-Match, so both may put the same object (same bytes, both confirmed);
    // what must hold is that both succeed and the store is right.
    let (puts, skips) = cli::concurrent_put_dirs(&url, src.path(), &server.env());
    assert_eq!(puts + skips, 400);
    assert!(puts >= 200);
    let store = open_str(&server.url_with_keys("concurrent", "")).unwrap();
    assert_eq!(suite::fingerprint(store.as_ref()).len(), 200);
}

#[test]
fn no_credentials_with_a_custom_endpoint_is_a_clear_error() {
    // Nothing is contacted: the refusal happens before any request (no metadata-service probe).
    let url = "s3://bucket?endpoint=http://127.0.0.1:9&path_style=true";
    let (out, _, stderr) = cli::run(
        cli::offkit()
            .args(["store", "ls", url])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_SKIP_SIGNATURE"),
    );
    assert_eq!(out.status.code(), Some(12), "{stderr}");
    assert!(stderr.contains("no S3 credentials"), "{stderr}");
}

#[test]
fn etags_spare_the_read_back_by_default_and_still_catch_conflicts() {
    let server = s3::S3Server::start_logging_requests();
    server.bucket("etag");
    let src = tempfile::tempdir().unwrap();
    // The default (`confirm=etag-md5`) is not spelled out when a URL is shown.
    let store = open_str(&server.url_with_keys("etag", "p")).unwrap();
    assert!(!store.url().redacted().contains("confirm="));
    let explicit = format!("{}&confirm=etag-md5", server.url_with_keys("etag", "p"));
    assert_eq!(
        open_str(&explicit).unwrap().url().redacted(),
        store.url().redacted()
    );
    let mut seeds: Vec<_> = (0..20)
        .map(|i| {
            suite::seed_file(
                src.path(),
                &format!("e/{i:02}.json"),
                format!("{{\"n\":{i}}}").as_bytes(),
            )
        })
        .collect();
    // 20 MiB: a multipart upload; rclone answers with the plain MD5 as its ETag.
    seeds.push(suite::large_seed_file(src.path(), "e/big.bin", 20 << 20, 9));
    let opts = offkit::store::SeedOptions {
        progress: offkit::report::progress::ProgressMode::Off,
        ..Default::default()
    };
    let gets_before = server.count_in_log("GET OBJECT");
    let heads_before = server.count_in_log("HEAD OBJECT");
    let r = suite::seed_from(store.as_ref(), src.path(), &seeds, &opts).unwrap();
    assert_eq!(r.totals.put, 21);
    // Every put is confirmed by a HEAD (the ETag the key holds now, compared with the MD5 of
    // what was sent); the multipart upload, which has no create-only condition, costs one HEAD
    // more, before it (no object there yet).
    assert_eq!(server.count_in_log("HEAD OBJECT"), heads_before + 22);
    let again = suite::seed_from(store.as_ref(), src.path(), &seeds, &opts).unwrap();
    assert_eq!(again.totals.skipped, 21);
    assert_eq!(
        server.count_in_log("GET OBJECT"),
        gets_before,
        "puts were confirmed and skips decided by ETag, without reading objects back"
    );
    // The same store with `confirm=read-back` reads every object back.
    let read_back = format!("{}&confirm=read-back", server.url_with_keys("etag", "p"));
    let read_back = open_str(&read_back).unwrap();
    assert!(read_back.url().redacted().contains("confirm=read-back"));
    let r = suite::seed_from(read_back.as_ref(), src.path(), &seeds, &opts).unwrap();
    assert_eq!(r.totals.skipped, 21);
    assert_eq!(server.count_in_log("GET OBJECT"), gets_before + 21);
    // A different object at a key: the ETag does not match, the read-back decides: conflict.
    std::fs::write(seeds[0].key.under(src.path()), b"{\"n\":\"changed\"}").unwrap();
    let changed = suite::seed_file(src.path(), "e/00.json", b"{\"n\":\"changed\"}");
    let err = suite::seed_from(store.as_ref(), src.path(), &[changed], &opts).unwrap_err();
    assert!(
        matches!(err, offkit::store::SeedError::Conflicts { .. }),
        "{err}"
    );
}

#[test]
fn put_dir_rerun_decides_every_skip_from_the_listing_and_still_finds_a_changed_file() {
    let server = s3::S3Server::start_logging_requests();
    server.bucket("rerun");
    let src = tempfile::tempdir().unwrap();
    // 40 small objects (enough for a listing) and one multipart object.
    suite::seed_folder(src.path(), 40, 20 << 20);
    let url = server.url("rerun", "");
    let put_dir = || {
        cli::run(
            cli::offkit()
                .args(["--json", "store", "put-dir", "--progress", "off", &url])
                .arg(src.path())
                .envs(server.env()),
        )
    };
    let totals = |stdout: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(stdout).unwrap()["totals"].clone()
    };
    let (out, stdout, stderr) = put_dir();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(totals(&stdout)["put"], 41);
    // Every put was confirmed without reading an object back.
    assert_eq!(server.count_in_log("GET OBJECT"), 0, "{}", server.log());
    let heads = server.count_in_log("HEAD OBJECT");
    // The rerun lists the bucket (while it hashes the folder) and reads nothing else: the
    // listing's ETags are compared with the MD5s computed with the files' SHA-256s.
    let (out, stdout, stderr) = put_dir();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(totals(&stdout)["skipped"], 41);
    assert_eq!(server.count_in_log("GET OBJECT"), 0);
    assert_eq!(server.count_in_log("HEAD OBJECT"), heads);
    // A file changed since: its MD5 no longer matches the listing, the object is read back and
    // found different — a conflict, nothing overwritten.
    let changed = src.path().join("set/01/obj-005.json");
    std::fs::write(&changed, b"{\"i\":\"changed\"}").unwrap();
    let (out, _, stderr) = put_dir();
    assert_eq!(out.status.code(), Some(12), "{stderr}");
    assert!(stderr.contains("set/01/obj-005.json"), "{stderr}");
    assert_eq!(server.count_in_log("GET OBJECT"), 1);
}
