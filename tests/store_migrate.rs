//! `offkit store migrate` and its companions against real stores: a folder, a real S3-compatible
//! server (`rclone serve s3`) and a real PostgreSQL server (offkit's object tables and an
//! application's own archive table). Each scenario runs the real binary and checks the stores by
//! digest listings, the ledger by its rows.

#[path = "common/store_cli.rs"]
mod cli;
#[path = "common/paused.rs"]
mod paused;
#[path = "common/store_pg.rs"]
mod pg;
#[path = "common/s3.rs"]
mod s3;
#[path = "common/store_suite.rs"]
mod suite;

use std::path::Path;
use std::process::Command;

use offkit::store::open_str;

/// Credentials given to the binary through the environment are given to the library in the URL.
fn lib_url(url: &str, env: &[(&'static str, String)]) -> String {
    let mut u = url.to_owned();
    if !u.starts_with("s3://") {
        return u;
    }
    for (k, v) in env {
        match *k {
            "AWS_ACCESS_KEY_ID" => u.push_str(&format!("&access_key_id={v}")),
            "AWS_SECRET_ACCESS_KEY" => u.push_str(&format!("&secret_access_key={v}")),
            _ => {}
        }
    }
    u
}

fn fingerprint(url: &str, env: &[(&'static str, String)]) -> Vec<(String, String)> {
    let store = open_str(&lib_url(url, env)).unwrap();
    suite::fingerprint(store.as_ref())
}

/// Puts `bytes` at `key` behind offkit's back (another writer's object).
fn put_bytes(
    store: &dyn offkit::store::Store,
    key: &str,
    bytes: &[u8],
    mode: offkit::store::WriteMode,
) {
    store
        .put(
            &offkit::store::PutRequest {
                key: &offkit::kit::path::KitPath::new(key).unwrap(),
                size: bytes.len() as u64,
                media_type: "application/octet-stream",
                mode,
            },
            &mut offkit::kit::digest::DigestReader::new(
                bytes,
                key,
                bytes.len() as u64,
                &offkit::util::sha256_hex(bytes),
            ),
        )
        .unwrap();
}

/// `offkit store SUB ARGS` with the environment.
fn store_cmd(env: &[(&'static str, String)], args: &[&str]) -> Command {
    let mut c = cli::offkit();
    c.arg("store").args(args).envs(env.iter().cloned());
    c
}

fn run(env: &[(&'static str, String)], args: &[&str]) -> (i32, String, String) {
    let (out, stdout, stderr) = cli::run(&mut store_cmd(env, args));
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A migrate command line.
fn migrate_args<'a>(from: &'a str, to: &'a str, db: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "migrate",
        "--from",
        from,
        "--to",
        to,
        "--db",
        db,
        "--progress",
        "lines",
        "--parallelism",
        "3",
        "--batch-size",
        "7",
    ];
    v.extend_from_slice(extra);
    v.push("--json");
    v
}

/// A source folder: 20 small objects and one of 3 MiB (streamed, not kept in memory).
fn source_folder(dir: &Path) -> String {
    suite::seed_folder(dir, 20, 3 << 20);
    format!("file://{}", dir.display())
}

#[test]
fn file_to_s3_dry_run_run_compare_conflict_rollback_and_secrets() {
    let server = s3::S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let from = source_folder(&tmp.path().join("src"));
    server.bucket("dest");
    // The secret travels in the URL: it must never be printed or recorded.
    let to = server.url_with_keys("dest", "arch");
    let db_path = tmp.path().join("ledger.db");
    let db = format!("sqlite://{}", db_path.display());
    let none: &[(&'static str, String)] = &[];
    let secret = server.secret_key.clone();

    // Dry run: the full plan in --output, nothing anywhere (not even the database file).
    let plan = tmp.path().join("plan.json");
    let plan_s = plan.display().to_string();
    let (code, stdout, stderr) = run(
        none,
        &migrate_args(&from, &to, &db, &["--dry-run", "--output", &plan_s]),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let p = json(&std::fs::read_to_string(&plan).unwrap());
    assert_eq!(p["plan"].as_array().unwrap().len(), 21);
    assert!(
        p["plan"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["action"] == "copy")
    );
    assert!(fingerprint(&to, none).is_empty());
    assert!(!db_path.exists(), "a dry run created the database");

    // The run: every object copied and confirmed.
    let (code, stdout, stderr) = run(none, &migrate_args(&from, &to, &db, &[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let r = json(&stdout);
    assert_eq!(r["run_id"], 1);
    assert_eq!(r["totals"]["copied"], 21);
    assert!(
        stderr.contains("Progress: 21/21 (100.0%) - Success: 21, Failed: 0, Skipped: 0"),
        "{stderr}"
    );
    assert_eq!(fingerprint(&to, none), fingerprint(&from, none));
    let (code, out, err) = run(
        none,
        &["compare", "--from", &from, "--to", &to, "--progress", "off"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("EQUAL"));

    // A different object where a new source object would go is a counted failure, never
    // overwritten; the rest is skipped by digest.
    let src_dir = tmp.path().join("src");
    std::fs::write(src_dir.join("set/new-a.json"), b"{\"new\":\"a\"}").unwrap();
    std::fs::write(src_dir.join("set/new-b.json"), b"{\"new\":\"b\"}").unwrap();
    let dst = open_str(&to).unwrap();
    let squatter = b"not the source's bytes";
    put_bytes(
        dst.as_ref(),
        "set/new-b.json",
        squatter,
        offkit::store::WriteMode::CreateNew,
    );
    let (code, stdout, stderr) = run(none, &migrate_args(&from, &to, &db, &[]));
    assert_eq!(code, 13, "{stdout}{stderr}");
    let r = json(&stdout);
    assert_eq!(r["totals"]["copied"], 1);
    assert_eq!(r["totals"]["skipped"], 21);
    assert_eq!(r["totals"]["failed"], 1);
    assert_eq!(r["failures"][0]["source_key"], "set/new-b.json");
    assert!(stderr.contains("not overwritten"), "{stderr}");
    let mut got = Vec::new();
    dst.get(
        &offkit::kit::path::KitPath::new("set/new-b.json").unwrap(),
        &mut got,
    )
    .unwrap();
    assert_eq!(got, squatter);
    let (code, out, _) = run(
        none,
        &[
            "compare",
            "--from",
            &from,
            "--to",
            &to,
            "--progress",
            "off",
            "--json",
        ],
    );
    assert_eq!(code, 15);
    assert_eq!(json(&out)["different"][0][0], "set/new-b.json");

    // The ledger lists both runs; rollback of the first removes exactly its 21 copies.
    let (code, out, _) = run(none, &["migrations", "--db", &db, "--json"]);
    assert_eq!(code, 0);
    let runs = json(&out)["runs"].clone();
    assert_eq!(runs[0]["state"], "succeeded");
    assert_eq!(runs[0]["copied"], 21);
    assert_eq!(runs[1]["state"], "failed");
    assert_eq!(runs[1]["report_sha256"].as_str().unwrap().len(), 64);
    let (code, out, err) = run(none, &["rollback", "1", "--to", &to, "--db", &db, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["removed"], 21);
    let left: Vec<String> = fingerprint(&to, none).into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, ["set/new-a.json", "set/new-b.json"]);
    let (_, out, _) = run(none, &["migrations", "--db", &db, "--json"]);
    assert_eq!(json(&out)["runs"][0]["state"], "rolled-back");

    // The secret was never shown nor recorded.
    let (_, list, _) = run(none, &["migrations", "--db", &db]);
    let ledger = std::fs::read(&db_path).unwrap();
    for text in [
        stdout,
        stderr,
        list,
        out,
        String::from_utf8_lossy(&ledger).into_owned(),
    ] {
        assert!(!text.contains(&secret), "secret leaked: {text}");
    }
}

/// SIGKILLs a run at `point`, resumes it, and checks that every object arrived once, counted
/// once, and that a rollback then leaves the destination empty.
fn kill_resume_rollback(
    from: &str,
    to_for: &mut dyn FnMut(&str) -> String,
    env: &[(&'static str, String)],
    db_dir: &Path,
) {
    let reference = fingerprint(from, env);
    let points = [
        "transfer-put:set/01/obj-005.json",
        "transfer-committed:set/large/blob.bin",
        "transfer-checkpoint",
        "transfer-committed:*",
    ];
    for (i, point) in points.iter().enumerate() {
        let to = to_for(&format!("r{i}"));
        let db = format!("sqlite://{}", db_dir.join(format!("r{i}.db")).display());
        let args = migrate_args(from, &to, &db, &[]);
        cli::kill_at_failpoint(&mut store_cmd(env, &args), point, |_| {});
        // Only whole, correct objects after the kill.
        for entry in fingerprint(&to, env) {
            assert!(reference.contains(&entry), "{point}: stray {entry:?}");
        }
        let (code, stdout, stderr) = run(env, &migrate_args(from, &to, &db, &["--resume", "1"]));
        assert_eq!(code, 0, "{point}: {stdout}{stderr}");
        let r = json(&stdout);
        assert_eq!(r["resumed"], true);
        assert_eq!(fingerprint(&to, env), reference, "{point}");
        let (_, out, _) = run(env, &["migrations", "--db", &db, "--json"]);
        let runs = json(&out)["runs"].clone();
        assert_eq!(runs.as_array().unwrap().len(), 1, "{point}");
        // Nothing was in the destination before: every object is this run's copy, once.
        assert_eq!(runs[0]["copied"], 21, "{point}: {out}");
        assert_eq!(runs[0]["skipped"], 0, "{point}: {out}");
        assert_eq!(runs[0]["state"], "succeeded");
        let (code, out, err) = run(
            env,
            &["rollback", "1", "--to", &to, "--from", from, "--db", &db],
        );
        assert_eq!(code, 0, "{point}: {out}{err}");
        assert!(
            fingerprint(&to, env).is_empty(),
            "{point}: rollback left copies"
        );
    }
}

#[test]
fn file_to_s3_killed_at_each_step_resumes_without_loss_or_doubles() {
    let server = s3::S3Server::start();
    let env = server.env();
    let tmp = tempfile::tempdir().unwrap();
    let from = source_folder(&tmp.path().join("src"));
    kill_resume_rollback(
        &from,
        &mut |round| {
            let bucket = server.bucket(&format!("round-{round}"));
            server.url(&bucket, "")
        },
        &env,
        tmp.path(),
    );
}

#[test]
fn s3_to_file_killed_at_each_step_resumes_and_reverse_moves_back() {
    let server = s3::S3Server::start();
    let env = server.env();
    let tmp = tempfile::tempdir().unwrap();
    let folder = source_folder(&tmp.path().join("seed"));
    server.bucket("origin");
    let origin = server.url("origin", "p");
    let db = format!("sqlite://{}", tmp.path().join("seed.db").display());
    let (code, out, err) = run(&env, &migrate_args(&folder, &origin, &db, &[]));
    assert_eq!(code, 0, "{out}{err}");
    // A dry run from S3 plans every object and creates nothing: no folder, no database.
    let planned = tmp.path().join("planned");
    let planned_url = format!("file://{}", planned.display());
    let dry_db = tmp.path().join("dry.db");
    let dry_db_url = format!("sqlite://{}", dry_db.display());
    let (code, out, err) = run(
        &env,
        &migrate_args(&origin, &planned_url, &dry_db_url, &["--dry-run"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["plan"].as_array().unwrap().len(), 21);
    assert!(!planned.exists() && !dry_db.exists());
    let base = tmp.path().to_path_buf();
    kill_resume_rollback(
        &origin,
        &mut |round| format!("file://{}", base.join(format!("dst-{round}")).display()),
        &env,
        tmp.path(),
    );

    // Moving out and back by swapping --from and --to (with --delete-source) restores the
    // origin exactly.
    let reference = fingerprint(&origin, &env);
    let away = format!("file://{}", tmp.path().join("away").display());
    let db = format!("sqlite://{}", tmp.path().join("move.db").display());
    let (code, out, err) = run(
        &env,
        &migrate_args(&origin, &away, &db, &["--delete-source"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["totals"]["deleted_sources"], 21);
    assert!(fingerprint(&origin, &env).is_empty());
    assert_eq!(fingerprint(&away, &env), reference);
    let (code, out, err) = run(
        &env,
        &migrate_args(&away, &origin, &db, &["--delete-source"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(fingerprint(&origin, &env), reference);
    assert!(fingerprint(&away, &env).is_empty());
    // Rolling back the move out finds its copies gone and their sources back: nothing to do,
    // nothing lost.
    let (code, out, err) = run(
        &env,
        &[
            "rollback", "1", "--from", &origin, "--to", &away, "--db", &db, "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["already_gone"], 21);
    assert_eq!(fingerprint(&origin, &env), reference);
}

#[test]
fn rollback_restores_deleted_sources_and_keeps_changed_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let from = source_folder(&tmp.path().join("src"));
    let none: &[(&'static str, String)] = &[];
    let reference = fingerprint(&from, none);
    let to = format!("file://{}", tmp.path().join("dst").display());
    let db = format!("sqlite://{}", tmp.path().join("l.db").display());
    let (code, out, err) = run(none, &migrate_args(&from, &to, &db, &["--delete-source"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(fingerprint(&from, none).is_empty());
    // One copy changes after the run: the rollback keeps it (and its source stays deleted).
    std::fs::write(tmp.path().join("dst/set/00/obj-000.json"), b"changed").unwrap();
    let (code, out, err) = run(none, &["rollback", "1", "--db", &db, "--json"]);
    assert_eq!(code, 13, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["removed"], 20);
    assert_eq!(r["restored_sources"], 20);
    assert_eq!(r["kept_changed"][0][0], "set/00/obj-000.json");
    let back = fingerprint(&from, none);
    assert_eq!(back.len(), 20);
    assert!(back.iter().all(|e| reference.contains(e)));
    let left = fingerprint(&to, none);
    assert_eq!(left.len(), 1);
}

/// An application's own archive table (jsonb documents, a bytea column for another bucket),
/// read with key_column/data_column/where, moved to S3: the archive-driver case.
#[test]
fn postgres_archive_table_to_s3_with_corrupt_rows_and_stop_on_error() {
    let server = s3::S3Server::start();
    let env = server.env();
    let db = pg::TestDb::create("archive");
    let mut c = db.client();
    c.batch_execute(
        "CREATE TABLE public.archive_document (bucket text, archive_id text, document jsonb, blob bytea);
         INSERT INTO public.archive_document (bucket, archive_id, document)
           SELECT 'analysis', 'analysis/' || lpad(i::text, 3, '0') || '.json',
                  jsonb_build_object('i', i, 'pad', repeat('x', i))
           FROM generate_series(1, 30) i;
         INSERT INTO public.archive_document (bucket, archive_id, document)
           VALUES ('analysis', 'analysis/../escape.json', '{}'),
                  ('analysis', 'analysis/001.json', '{\"duplicate\":true}'),
                  ('policy', 'policy/p.json', '{\"p\":1}');
         INSERT INTO public.archive_document (bucket, archive_id, blob)
           VALUES ('blobs', 'blobs/b.bin', decode('00ff00ff', 'hex'));",
    )
    .unwrap();
    let from = format!(
        "{}&key_column=archive_id&data_column=document&where=bucket%3D'analysis'",
        db.store_url("public.archive_document")
    );
    server.bucket("arch");
    let to = server.url("arch", "");
    let tmp = tempfile::tempdir().unwrap();
    let ledger = format!("sqlite://{}", tmp.path().join("l.db").display());

    // Dry run, then the run: the row with an unsafe key is a counted failure, the rest moves.
    let (code, out, err) = run(&env, &migrate_args(&from, &to, &ledger, &["--dry-run"]));
    assert_eq!(code, 0, "{out}{err}");
    let plan = json(&out);
    assert_eq!(plan["plan"].as_array().unwrap().len(), 31);
    // The unsafe key, and the key two rows share (named, never a silent pick).
    assert_eq!(plan["totals"]["failed"], 2);
    assert!(fingerprint(&to, &env).is_empty());
    let (code, out, err) = run(&env, &migrate_args(&from, &to, &ledger, &[]));
    assert_eq!(code, 13, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["totals"]["copied"], 29);
    assert_eq!(r["totals"]["failed"], 2);
    assert_eq!(r["failures"][0]["source_key"], "analysis/../escape.json");
    assert_eq!(r["failures"][1]["source_key"], "analysis/001.json");
    assert!(
        r["failures"][1]["error"]
            .as_str()
            .unwrap()
            .contains("more than one row"),
        "{out}"
    );
    let moved = fingerprint(&to, &env);
    assert_eq!(moved.len(), 29);
    // The bytes are the documents' text as PostgreSQL renders jsonb.
    let row: String = c
        .query_one(
            "SELECT encode(sha256(convert_to(document::text, 'UTF8')), 'hex') FROM public.archive_document WHERE archive_id = 'analysis/007.json'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(moved.contains(&("analysis/007.json".into(), row)));
    // Compare: the unsafe row shows as unreadable; the rest equal.
    let (code, out, _) = run(
        &env,
        &[
            "compare",
            "--from",
            &from,
            "--to",
            &to,
            "--progress",
            "off",
            "--json",
        ],
    );
    assert_eq!(code, 15);
    let cmp = json(&out);
    assert_eq!(cmp["equal"], 29);
    assert_eq!(cmp["unreadable"].as_array().unwrap().len(), 2);
    // The table is only read: --delete-source is refused before anything happens.
    let (code, _, err) = run(
        &env,
        &migrate_args(&from, &to, &ledger, &["--delete-source"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("foreign archive table"), "{err}");

    // The bytea bucket, and --stop-on-error on a fresh destination: stops after the first batch
    // that had a failure (the unsafe key sorts first).
    let blobs = format!(
        "{}&key_column=archive_id&data_column=blob&where=bucket%3D'blobs'",
        db.store_url("public.archive_document")
    );
    let (code, out, err) = run(&env, &migrate_args(&blobs, &to, &ledger, &[]));
    assert_eq!(code, 0, "{out}{err}");
    let mut got = Vec::new();
    open_str(&lib_url(&to, &env))
        .unwrap()
        .get(
            &offkit::kit::path::KitPath::new("blobs/b.bin").unwrap(),
            &mut got,
        )
        .unwrap();
    assert_eq!(got, [0, 0xff, 0, 0xff]);
    server.bucket("arch2");
    let to2 = server.url("arch2", "");
    let (code, out, err) = run(
        &env,
        &migrate_args(&from, &to2, &ledger, &["--stop-on-error"]),
    );
    assert_eq!(code, 12, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["totals"]["failed"], 2);
    assert_eq!(
        r["totals"]["copied"].as_u64().unwrap() + r["totals"]["failed"].as_u64().unwrap(),
        7,
        "one batch of 7, then stopped: {out}"
    );
}

/// A CycloneDX document.
fn cdx(bom_ref: Option<&str>, serial: &str) -> String {
    let component = match bom_ref {
        Some(b) => format!(r#"{{"bom-ref":"{b}","name":"x","type":"application"}}"#),
        None => r#"{"name":"x","type":"application"}"#.to_owned(),
    };
    format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","serialNumber":"{serial}","version":1,"metadata":{{"component":{component}}},"components":[]}}"#
    )
}

/// The three legacy layouts into the unified artifact store, indexed in PostgreSQL by the
/// migration runner's own table; a tenant filter; `store report`.
#[test]
fn legacy_layouts_into_artifacts_with_the_postgres_index() {
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("legacy");
    let write = |key: &str, text: &str| {
        let p = src.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let with_ref = cdx(
        Some("pkg:npm/@acme/web@1.2.0"),
        "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
    );
    let without_ref = cdx(None, "urn:uuid:0b2a0b1e-0000-4000-8000-000000000001");
    write("tenants/acme/bundles/b1/aaaa-web.cdx.json", &with_ref);
    write("tenants/acme/bundles/b2/bbbb-noref.cdx.json", &without_ref);
    write(
        "tenants/globex/bundles/b9/cccc-other.cdx.json",
        &cdx(Some("pkg:npm/globex@9"), "urn:uuid:9"),
    );
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"00"}}}}],"predicateType":"https://cyclonedx.org/bom","predicate":{}}}"#,
        cdx(Some("pkg:oci/app@sha256:11"), "urn:uuid:dsse-1")
    );
    let envelope = format!(
        r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{}","signatures":[{{"keyid":"","sig":"AA=="}}]}}"#,
        base64::engine::general_purpose::STANDARD.encode(statement)
    );
    write("attest/dsse/dddd.json", &envelope);
    write(
        "exports/spdx/sha256:eeee.json",
        r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","documentNamespace":"https://example.com/spdx/app-1","documentDescribes":["SPDXRef-app"]}"#,
    );
    write("exports/raw/ffff.bin", "not json at all");
    write("stray.txt", "no layout takes me");
    let from = format!("file://{}", src.display());
    let to = format!("file://{}", tmp.path().join("unified").display());
    let db = pg::TestDb::create("artifacts");
    let none: &[(&'static str, String)] = &[];

    // The tenant filter keeps acme's bundles only.
    let (code, out, err) = run(
        none,
        &migrate_args(
            &from,
            &to,
            &db.url,
            &["--layout", "legacy", "--tenant", "acme", "--dry-run"],
        ),
    );
    assert_eq!(code, 0, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["totals"]["total"], 2);
    assert_eq!(r["totals"]["excluded"], 4);
    assert_eq!(r["totals"]["unmatched"], 1);

    let (code, out, err) = run(
        none,
        &migrate_args(&from, &to, &db.url, &["--layout", "legacy"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["totals"]["copied"], 6);
    assert_eq!(r["totals"]["unmatched"], 1);
    // Synthetic bom-refs: the CycloneDX without one and the non-JSON blob.
    assert_eq!(r["totals"]["synthetic_bom_refs"], 2);
    let sha = |t: &str| offkit::util::sha256_hex(t.as_bytes());
    let keys: Vec<String> = fingerprint(&to, none).into_iter().map(|(k, _)| k).collect();
    let enc = offkit::transfer::document::encode_segment;
    let expected_web = format!(
        "artifacts/{}/{}/{}.json",
        enc("pkg:npm/@acme/web@1.2.0").unwrap(),
        enc("urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79").unwrap(),
        sha(&with_ref)
    );
    assert!(keys.contains(&expected_web), "{keys:?}");
    let synthetic = format!("sha256:{}", sha(&without_ref));
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("artifacts/{}/", enc(&synthetic).unwrap()))),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with(&format!(
            "artifacts/{}/{}/",
            enc("pkg:oci/app@sha256:11").unwrap(),
            enc("urn:uuid:dsse-1").unwrap()
        ))),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with(&format!(
            "artifacts/SPDXRef-app/{}/",
            enc("https://example.com/spdx/app-1").unwrap()
        ))),
        "{keys:?}"
    );
    // Each key's bom-ref segment decodes back to the bom-ref.
    let seg = expected_web.split('/').nth(1).unwrap();
    assert_eq!(
        offkit::transfer::document::decode_segment(seg).unwrap(),
        "pkg:npm/@acme/web@1.2.0"
    );

    // The index, made by the runner (its history is recorded), one row per object.
    let mut c = db.client();
    let applied: i64 = c
        .query_one(
            "SELECT count(*) FROM artifact_store.schema_migrations WHERE migration_name = '001_artifacts'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        applied >= 1,
        "the runner's history of artifact_store is missing"
    );
    let rows = c
        .query(
            "SELECT storage_key, bom_ref, bom_ref_source, serial_number, source_layout, tenant, sha256, size FROM artifact_store.artifacts ORDER BY source_key",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 6);
    let web = rows
        .iter()
        .find(|r| r.get::<_, String>(0) == expected_web)
        .expect("the web bom indexed");
    assert_eq!(
        web.get::<_, Option<String>>(1).as_deref(),
        Some("pkg:npm/@acme/web@1.2.0")
    );
    assert_eq!(web.get::<_, Option<String>>(2).as_deref(), Some("document"));
    assert_eq!(web.get::<_, String>(4), "tenant-bundles");
    assert_eq!(web.get::<_, Option<String>>(5).as_deref(), Some("acme"));
    assert_eq!(web.get::<_, String>(6), sha(&with_ref));
    assert_eq!(
        rows.iter()
            .filter(|r| r.get::<_, Option<String>>(2).as_deref() == Some("synthetic"))
            .count(),
        2
    );

    // The runbook's validation figures.
    let (code, out, err) = run(none, &["report", "1", "--db", &db.url, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let f = json(&out);
    assert_eq!(f["figures"]["indexed"], 6);
    assert_eq!(f["figures"]["synthetic_bom_refs"], 2);
    let per_layout = f["figures"]["per_layout"].to_string();
    for want in [
        r#"["attest-dsse",1]"#,
        r#"["format-digest",2]"#,
        r#"["tenant-bundles",3]"#,
    ] {
        assert!(per_layout.contains(want), "{per_layout}");
    }
    // Rollback removes the copies and the index rows.
    let (code, out, err) = run(none, &["rollback", "1", "--db", &db.url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(fingerprint(&to, none).is_empty());
    let n: i64 = c
        .query_one("SELECT count(*) FROM artifact_store.artifacts", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn postgres_archive_table_to_s3_killed_at_each_step_resumes() {
    let server = s3::S3Server::start();
    let env = server.env();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("files");
    source_folder(&folder);
    let db = pg::TestDb::create("archkill");
    let mut c = db.client();
    c.batch_execute("CREATE TABLE public.docs (name text, body bytea)")
        .unwrap();
    for e in walkdir::WalkDir::new(&folder)
        .into_iter()
        .map(Result::unwrap)
    {
        if e.file_type().is_file() {
            let name = e
                .path()
                .strip_prefix(&folder)
                .unwrap()
                .display()
                .to_string();
            let body = std::fs::read(e.path()).unwrap();
            c.execute("INSERT INTO public.docs VALUES ($1, $2)", &[&name, &body])
                .unwrap();
        }
    }
    let from = format!(
        "{}&key_column=name&data_column=body",
        db.store_url("public.docs")
    );
    assert_eq!(
        fingerprint(&from, &env),
        fingerprint(&format!("file://{}", folder.display()), &env)
    );
    kill_resume_rollback(
        &from,
        &mut |round| {
            let bucket = server.bucket(&format!("arch-{round}"));
            server.url(&bucket, "")
        },
        &env,
        tmp.path(),
    );
}

/// With `confirm=etag-md5` on both S3 stores, a rerun decides "already in place" from the two
/// listings and the index, reading no object; a copy changed since (same size, other bytes) is
/// still caught and not overwritten.
#[test]
fn s3_to_s3_with_trusted_checksums_skips_by_listing_and_still_catches_a_changed_copy() {
    let server = s3::S3Server::start_logging_requests();
    let env = server.env();
    let tmp = tempfile::tempdir().unwrap();
    let folder = source_folder(&tmp.path().join("src"));
    let db = format!("sqlite://{}", tmp.path().join("l.db").display());
    server.bucket("origin");
    server.bucket("copy");
    let origin = format!("{}&confirm=etag-md5", server.url("origin", ""));
    let copy = format!("{}&confirm=etag-md5", server.url("copy", ""));
    let (code, out, err) = run(&env, &migrate_args(&folder, &origin, &db, &[]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&env, &migrate_args(&origin, &copy, &db, &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["totals"]["copied"], 21);
    let gets = server.count_in_log("GET OBJECT");
    let (code, out, err) = run(&env, &migrate_args(&origin, &copy, &db, &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["totals"]["skipped"], 21);
    assert_eq!(
        server.count_in_log("GET OBJECT"),
        gets,
        "a rerun read objects"
    );
    // The index rows of the rerun carry the digests (from the first run's index).
    let (_, out, _) = run(&env, &["report", "3", "--db", &db, "--json"]);
    assert_eq!(json(&out)["run"]["skipped"], 21);

    // Same size, other bytes at the destination: caught by its listed MD5, never overwritten.
    let key = offkit::kit::path::KitPath::new("set/00/obj-000.json").unwrap();
    let dst = open_str(&lib_url(&copy, &env)).unwrap();
    let mut old = Vec::new();
    dst.get(&key, &mut old).unwrap();
    let forged = vec![b'x'; old.len()];
    put_bytes(
        dst.as_ref(),
        key.as_str(),
        &forged,
        offkit::store::WriteMode::Replace,
    );
    let (code, out, err) = run(&env, &migrate_args(&origin, &copy, &db, &[]));
    assert_eq!(code, 13, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["totals"]["failed"], 1);
    assert_eq!(r["failures"][0]["source_key"], "set/00/obj-000.json");
    let mut now = Vec::new();
    dst.get(&key, &mut now).unwrap();
    assert_eq!(now, forged);
}

/// A source that lists in key order (S3) is streamed: the first batch is copied and
/// checkpointed while the listing is still under way, and a key the listing reaches later —
/// here one put after the first copies, past the first page of 1,000 keys — is still taken.
#[test]
fn an_s3_source_is_copied_batch_by_batch_while_it_is_still_listed() {
    let server = s3::S3Server::start();
    let env = server.env();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("src");
    for i in 0..2100 {
        let path = folder.join(format!("k/{i:04}.json"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{{\"n\":{i}}}")).unwrap();
    }
    server.bucket("origin");
    server.bucket("copy");
    server.upload(&folder, "origin");
    let origin = server.url("origin", "");
    let copy = server.url("copy", "");
    let db = format!("sqlite://{}", tmp.path().join("l.db").display());

    // The listing pauses once it has handed on its first batch of 500 keys.
    let resume = tmp.path().join("resume");
    let args = [
        "migrate",
        "--from",
        &origin,
        "--to",
        &copy,
        "--db",
        &db,
        "--batch-size",
        "500",
        "--parallelism",
        "4",
        "--progress",
        "lines",
        "--json",
    ];
    let mut paused = paused::Paused::start(
        &mut store_cmd(&env, &args),
        "transfer-listed-batch:1",
        &resume,
    );
    assert_eq!(paused.reached(), "transfer-listed-batch:1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while fingerprint(&copy, &env).len() < 500 {
        assert!(
            std::time::Instant::now() < deadline && !paused.has_ended(),
            "the first batch was not copied while the listing waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(fingerprint(&copy, &env).len(), 500);
    let origin_store = open_str(&lib_url(&origin, &env)).unwrap();
    put_bytes(
        origin_store.as_ref(),
        "zzz/late.json",
        b"{}",
        offkit::store::WriteMode::CreateNew,
    );
    let done = paused.finish();
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let r = json(&done.stdout);
    assert_eq!(r["totals"]["total"], 2101);
    assert_eq!(r["totals"]["copied"], 2101);
    assert_eq!(fingerprint(&copy, &env), fingerprint(&origin, &env));
    let last = done.stderr.lines().rfind(|l| l.starts_with("Progress:"));
    assert_eq!(
        last,
        Some("Progress: 2101/2101 (100.0%) - Success: 2101, Failed: 0, Skipped: 0"),
        "{}",
        done.stderr
    );
}

/// `--delete-source` deletes only the sources of copies the run made: objects found in place
/// (a second run, the same store, two sources bound for one key) keep their source, so no run
/// and no rollback can remove the last copy.
#[test]
fn delete_source_deletes_only_the_runs_own_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let none: &[(&'static str, String)] = &[];
    let from = source_folder(&tmp.path().join("src"));
    let reference = fingerprint(&from, none);
    let to = format!("file://{}", tmp.path().join("dst").display());
    let db = format!("sqlite://{}", tmp.path().join("l.db").display());
    let (code, out, err) = run(none, &migrate_args(&from, &to, &db, &[]));
    assert_eq!(code, 0, "{out}{err}");
    // Run 2 finds every object in place: it deletes nothing.
    let (code, out, err) = run(none, &migrate_args(&from, &to, &db, &["--delete-source"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["totals"]["deleted_sources"], 0);
    assert_eq!(fingerprint(&from, none), reference);
    // Rolling back run 1 removes its copies; the sources are all there.
    let (code, out, err) = run(none, &["rollback", "1", "--db", &db]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(fingerprint(&to, none).is_empty());
    assert_eq!(fingerprint(&from, none), reference);
    // The same store as source and destination: everything is in place, nothing deleted.
    let (code, out, err) = run(none, &migrate_args(&from, &from, &db, &["--delete-source"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["totals"]["skipped"], 21);
    assert_eq!(fingerprint(&from, none), reference);

    // Two sources bound for one key: the first is copied, the second judged against it
    // (same bytes: skipped; other bytes: failed), and only the first's source is deleted.
    let flat_src = tmp.path().join("flat-src");
    for (k, v) in [
        ("a/same.txt", "S"),
        ("b/same.txt", "S"),
        ("a/diff.txt", "1"),
        ("b/diff.txt", "2"),
    ] {
        let p = flat_src.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
    let layout = tmp.path().join("flat.toml");
    std::fs::write(
        &layout,
        "[[rule]]\nname = \"flat\"\nfrom = \"{dir}/{file}\"\nto = \"flat/{file}\"\n",
    )
    .unwrap();
    let layout_s = layout.display().to_string();
    let flat_from = format!("file://{}", flat_src.display());
    let flat_to = format!("file://{}", tmp.path().join("flat-dst").display());
    let (code, out, err) = run(
        none,
        &migrate_args(
            &flat_from,
            &flat_to,
            &db,
            &["--layout", &layout_s, "--delete-source"],
        ),
    );
    assert_eq!(code, 13, "{out}{err}");
    let r = json(&out);
    assert_eq!(r["totals"]["copied"], 2, "{out}");
    assert_eq!(r["totals"]["skipped"], 1, "{out}");
    assert_eq!(r["totals"]["failed"], 1, "{out}");
    assert_eq!(r["totals"]["deleted_sources"], 2, "{out}");
    let left: Vec<String> = fingerprint(&flat_from, none)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, ["b/diff.txt", "b/same.txt"]);
}

/// Killed while deleting sources (deletions are recorded before they are made): a rollback puts
/// back every source that is gone; a resume finishes the deletions.
#[test]
fn killed_while_deleting_sources_rollback_restores_and_resume_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let none: &[(&'static str, String)] = &[];
    for (round, then) in [("rollback", "rollback"), ("resume", "resume")] {
        let src_dir = tmp.path().join(format!("src-{round}"));
        let from = source_folder(&src_dir);
        let reference = fingerprint(&from, none);
        let to = format!(
            "file://{}",
            tmp.path().join(format!("dst-{round}")).display()
        );
        let db = format!(
            "sqlite://{}",
            tmp.path().join(format!("{round}.db")).display()
        );
        let args = migrate_args(&from, &to, &db, &["--delete-source"]);
        cli::kill_at_failpoint(
            &mut store_cmd(none, &args),
            "transfer-delete:set/01/obj-009.json",
            |_| {},
        );
        for entry in fingerprint(&to, none) {
            assert!(reference.contains(&entry), "{round}: stray {entry:?}");
        }
        // Batches of 7: the kill came after the first batch's deletions had begun.
        let left = fingerprint(&from, none).len();
        assert!(left < 21, "{round}: no source deleted before the kill");
        if then == "rollback" {
            let (code, out, err) = run(none, &["rollback", "1", "--db", &db, "--json"]);
            assert_eq!(code, 0, "{out}{err}");
            assert_eq!(fingerprint(&from, none), reference, "every source is back");
            assert!(fingerprint(&to, none).is_empty());
        } else {
            let (code, out, err) = run(
                none,
                &migrate_args(&from, &to, &db, &["--delete-source", "--resume", "1"]),
            );
            assert_eq!(code, 0, "{out}{err}");
            assert!(fingerprint(&from, none).is_empty(), "{out}");
            assert_eq!(fingerprint(&to, none), reference);
            let (_, out, _) = run(none, &["migrations", "--db", &db, "--json"]);
            assert_eq!(json(&out)["runs"][0]["deleted_sources"], 21, "{out}");
        }
    }
}
