//! Kits whose seeds do not fit one page: `offkit/v2`, seeds listed in signed pages
//! (docs/FORMAT.md, "Seed pages"). Built, verified, read by the stock tools, applied.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestDb, Workspace, cmd, outcome, write};

/// More than one page holds (4,096 lines a page).
const SEEDS: usize = 9000;

/// The quickstart source with `SEEDS` small seed objects more.
fn paged_source(ws: &Workspace) -> PathBuf {
    let src = ws.example_source("quickstart");
    for i in 0..SEEDS {
        write(
            &src.join(format!("seeds/bulk/{:03}/{i:06}.json", i % 97)),
            format!("{{\"n\":{i}}}\n"),
        );
    }
    src
}

/// A kit built of [`paged_source`], signed by a new key: the source, the kit, the public key.
fn paged_kit(ws: &Workspace) -> (PathBuf, PathBuf, PathBuf) {
    let (key, public) = ws.key("release");
    let src = paged_source(ws);
    let kit = ws.build(&src, &[&key]);
    (src, kit, public)
}

/// `offkit apply KIT --trust PUBLIC --db DB --store STORE`.
fn apply_cmd(kit: &Path, public: &Path, db: &TestDb, store: &str) -> Command {
    let mut c = cmd();
    c.arg("apply")
        .arg(kit)
        .arg("--trust")
        .arg(public)
        .args(["--db", &db.url(), "--store", store]);
    c
}

/// How many regular files `dir` holds, at any depth (a store's hidden working files left out).
fn files_in(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .count() as u64
}

fn run_ok(c: &mut Command) -> String {
    let (code, stdout, stderr) = outcome(&c.output().unwrap());
    assert_eq!(code, 0, "{c:?}: {stdout}{stderr}");
    stdout
}

fn extract_with_tar(kit: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    run_ok(
        Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(kit)
            .arg("-C")
            .arg(to),
    );
}

/// The stock recipe (README, "Verifying a kit with stock tools only") on an extracted v2 kit:
/// SHA256SUMS checks the pages, the pages check the seeds.
fn stock_check(dir: &Path) {
    run_ok(
        Command::new("sh")
            .args([
                "-c",
                "sha256sum --strict --quiet -c SHA256SUMS && \
                 cat index/seeds/*.sha256 | sha256sum --strict --quiet -c -",
            ])
            .current_dir(dir),
    );
}

#[test]
fn a_kit_of_more_seeds_than_a_page_is_v2_verifies_and_the_stock_tools_check_it() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&paged_source(&ws), &[&key]);

    let out = ws.path("x");
    extract_with_tar(&kit, &out);
    assert_eq!(
        std::fs::read_to_string(out.join("offkit-layout")).unwrap(),
        "offkit/v2\n"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["schema"], "offkit/manifest/v2");
    assert_eq!(manifest["seeds"], serde_json::json!([]));
    let pages = manifest["pages"].as_array().unwrap();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let listed: u64 = pages.iter().map(|p| p["files"].as_u64().unwrap()).sum();
    assert!(listed > SEEDS as u64);
    stock_check(&out);
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(
        !sums.contains("  seeds/"),
        "SHA256SUMS names pages, not seeds"
    );

    let stdout = run_ok(cmd().arg("verify").arg(&kit).arg("--trust").arg(&public));
    assert!(stdout.starts_with("VERIFIED"), "{stdout}");
    let inspect = run_ok(cmd().arg("inspect").arg(&kit).arg("--trust").arg(&public));
    assert!(
        inspect.contains(&format!("{listed} objects")),
        "inspect counts the seeds the pages list: {inspect}"
    );
}

#[test]
fn a_paged_kit_applies_every_seed_it_lists() {
    let ws = Workspace::new();
    let (src, kit, public) = paged_kit(&ws);
    // `status` compares the seeds the verified pages list with the store: none there yet.
    let status = |expected: i32, verdict: &str| {
        let store = format!("file://{}", ws.path("store").display());
        let (code, out, err) = outcome(
            &cmd()
                .arg("status")
                .arg(&kit)
                .arg("--trust")
                .arg(&public)
                .args(["--db", &ws.site_db(), "--store", &store, "--json"])
                .output()
                .unwrap(),
        );
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        assert_eq!(
            (code, v["verdict"].as_str()),
            (expected, Some(verdict)),
            "{v:#}{err}"
        );
        v["seeds"].clone()
    };
    let total = files_in(&src.join("seeds"));
    // Every seed counted; the ones not present listed (all of them, under the 10,000 listed).
    let seeds = status(10, "incomplete");
    assert_eq!(seeds["totals"]["objects"], total);
    assert_eq!(seeds["totals"]["pending"], total);
    assert_eq!(seeds["entries_listed"], "not-present");
    assert_eq!(seeds["entries"].as_array().unwrap().len() as u64, total);
    assert_eq!(seeds["entries"][4095]["state"], "absent");
    let (code, stdout, stderr) = ws.apply(&kit, &public, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let seeds = status(0, "complete");
    assert_eq!(seeds["totals"]["present"], total);
    assert_eq!(seeds["entries"].as_array().unwrap().len(), 0);
    assert_eq!(seeds["entries_omitted"], 0);
    let store = ws.path("store");
    for i in [0, 4095, 4096, SEEDS - 1] {
        let rel = format!("bulk/{:03}/{i:06}.json", i % 97);
        assert_eq!(
            std::fs::read(store.join(&rel)).unwrap(),
            std::fs::read(src.join("seeds").join(&rel)).unwrap(),
            "{rel}"
        );
    }
    assert_eq!(files_in(&store), files_in(&src.join("seeds")));
    // A second apply finds everything done.
    let (code, stdout, stderr) = ws.apply(&kit, &public, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// The ledger of a PostgreSQL site records every seed of a paged kit a page at a time, in
/// statements of many rows: each object `planned`, then its outcome (one already in place with
/// the same bytes is `skipped`, the rest `put`); a second apply records every object `skipped`.
#[test]
fn a_postgres_ledger_records_every_seed_of_a_paged_kit_with_its_outcome() {
    let ws = Workspace::new();
    let (src, kit, public) = paged_kit(&ws);
    let total = files_in(&src.join("seeds"));
    let in_place = "bulk/049/004996.json";
    let store = ws.path("store");
    write(
        &store.join(in_place),
        std::fs::read(src.join("seeds").join(in_place)).unwrap(),
    );
    let db = TestDb::pg();
    let apply = || {
        let store = format!("file://{}", store.display());
        let (code, out, err) = outcome(&apply_cmd(&kit, &public, &db, &store).output().unwrap());
        assert_eq!(code, 0, "{out}{err}");
    };
    let recorded = |id: i64| {
        db.rows(&format!(
            "SELECT outcome, count(*) FROM offkit.kit_application_objects \
             WHERE application_id = {id} GROUP BY outcome ORDER BY outcome"
        ))
    };
    let row = |outcome: &str, n: u64| vec![outcome.to_owned(), n.to_string()];
    apply();
    assert_eq!(recorded(1), [row("put", total - 1), row("skipped", 1)]);
    assert_eq!(
        db.rows(&format!(
            "SELECT outcome, sha256, size FROM offkit.kit_application_objects \
             WHERE application_id = 1 AND key = '{in_place}'"
        )),
        [vec![
            "skipped".to_owned(),
            offkit::kit::digest::Sha256Hex::of(b"{\"n\":4996}\n").to_string(),
            "11".to_owned()
        ]]
    );
    apply();
    assert_eq!(recorded(2), [row("skipped", total)]);
}

/// A paged kit (9,000 seeds and the quickstart's, in three pages) into S3. A conflict in its
/// last page stops the apply before its first put: the bucket holds only the planted object, the
/// report lists the conflict (and counts the rest), the ledger records every object. Once the
/// object is gone, the apply puts every seed; a third one skips them all, listing the bucket a
/// page's key range at a time (`start-after`) — about one listing of the bucket in all, where a
/// listing of the whole bucket per page would take three.
#[test]
fn a_paged_kit_into_s3_stops_on_a_conflict_in_its_last_page_before_any_put_then_applies_once() {
    let ws = Workspace::new();
    let (src, kit, public) = paged_kit(&ws);
    let total = files_in(&src.join("seeds"));
    let server = s3::S3Server::start_logging_requests();
    let bucket = server.bucket("paged");
    // i = 96 sorts into the last page (folder 096 of 000..096).
    let planted = "bulk/096/000096.json";
    let plant = ws.path("plant");
    write(&plant.join(planted), "not the seed\n");
    server.upload(&plant, &bucket);
    let db = TestDb::sqlite();
    let apply = || {
        let mut c = apply_cmd(&kit, &public, &db, &server.url(&bucket, ""));
        c.args(["--json", "--progress", "off"]).envs(server.env());
        let (code, out, err) = outcome(&c.output().unwrap());
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        (code, v["seeds"].clone(), err)
    };
    let in_bucket = || files_in(&server.bucket_dir(&bucket));
    let recorded = |id: i64| {
        db.rows(&format!(
            "SELECT outcome, count(*) FROM offkit_kit_application_objects \
             WHERE application_id = {id} GROUP BY outcome ORDER BY outcome"
        ))
    };

    let (code, seeds, err) = apply();
    assert_eq!(code, 12, "{err}");
    assert!(err.contains(planted), "{err}");
    assert_eq!(seeds["objects_listed"], "needing-attention");
    let listed = seeds["objects"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{seeds:#}");
    assert_eq!(
        (listed[0]["key"].as_str(), listed[0]["outcome"].as_str()),
        (Some(planted), Some("conflict"))
    );
    assert_eq!(seeds["totals"]["objects"], total);
    assert_eq!(seeds["totals"]["not_run"], total - 1);
    assert_eq!(in_bucket(), 1, "nothing was put");
    assert_eq!(
        recorded(1),
        [
            vec!["conflict".to_owned(), "1".to_owned()],
            vec!["not-run".to_owned(), (total - 1).to_string()]
        ]
    );

    server.delete(&bucket, planted);
    let (code, seeds, err) = apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(seeds["totals"]["put"], total, "{seeds:#}");
    assert_eq!(seeds["objects"], serde_json::json!([]));
    assert_eq!(in_bucket(), total);
    assert_eq!(
        std::fs::read(server.bucket_dir(&bucket).join(planted)).unwrap(),
        std::fs::read(src.join("seeds").join(planted)).unwrap()
    );
    assert_eq!(recorded(2), [vec!["put".to_owned(), total.to_string()]]);

    let (lists, heads) = (
        server.count_in_log("LIST"),
        server.count_in_log("HEAD OBJECT"),
    );
    let (code, seeds, err) = apply();
    assert_eq!(code, 0, "{err}");
    assert_eq!(seeds["totals"]["skipped"], total, "{seeds:#}");
    let listings = server.count_in_log("LIST") - lists;
    let lookups = server.count_in_log("HEAD OBJECT") - heads;
    // A listing answers at most 1,000 keys; a page's range ends in a request that goes past it.
    let whole = total.div_ceil(1000) as usize;
    assert!(
        (whole..=whole + 3).contains(&listings) && lookups == 0,
        "{listings} listing requests and {lookups} lookups for {total} objects in three pages"
    );
}

/// The verifier's JSON report on `kit`: exit code and the failures' (kind, entry).
fn refusals(kit: &Path, public: &Path) -> (i32, Vec<(String, String)>) {
    let o = cmd()
        .arg("--json")
        .arg("verify")
        .arg(kit)
        .arg("--trust")
        .arg(public)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let failures = report["failures"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or("").to_owned(),
                f["entry"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (o.status.code().unwrap_or(-1), failures)
}

/// Builds the paged kit, lets `edit` change its entries, and writes it back re-signed by the
/// release key (without a frame index: the forger rewrites the compressed stream), as a key
/// holder or a bug in a builder could; returns the kit and the public key.
fn forged(ws: &Workspace, edit: impl FnOnce(&mut Vec<forge::Entry>)) -> (PathBuf, PathBuf) {
    let (key, public) = ws.key("release");
    let kit = ws.build(&paged_source(ws), &[&key]);
    let mut entries = forge::read(&kit);
    edit(&mut entries);
    let mut m = forge::manifest(&entries);
    m["payload"].as_object_mut().unwrap().remove("frames");
    forge::set_manifest(&mut entries, &m);
    forge::resign(
        &mut entries,
        &offkit::trust::SecretKey::load(&key).unwrap(),
        &m,
    );
    forge::write(&entries, &kit);
    (kit, public)
}

use common::forge;

fn seed_at(entries: &[forge::Entry], i: usize) -> usize {
    forge::find(entries, &format!("seeds/bulk/{:03}/{i:06}.json", i % 97))
}

#[test]
fn a_forged_kit_is_refused_unless_it_is_the_release_s_unchanged() {
    let ws = Workspace::new();
    // Unchanged but rewritten and re-signed: accepted (the forger's rewrite is faithful).
    let (kit, public) = forged(&ws, |_| {});
    let (code, failures) = refusals(&kit, &public);
    assert_eq!((code, failures.len()), (0, 0), "{failures:?}");

    // A seed's bytes changed: the page's signed digest names it.
    let ws = Workspace::new();
    let (kit, public) = forged(&ws, |e| {
        let i = seed_at(e, 5000);
        e[i].data = b"{\"n\":\"forged\"}\n".to_vec();
    });
    let (code, failures) = refusals(&kit, &public);
    assert_ne!(code, 0);
    assert!(
        failures.contains(&(
            "digest-mismatch".into(),
            "seeds/bulk/053/005000.json".into()
        )),
        "{failures:?}"
    );

    // A seed no page lists, slipped in among the others.
    let ws = Workspace::new();
    let (kit, public) = forged(&ws, |e| {
        let i = seed_at(e, 5000);
        e.insert(
            i,
            forge::Entry::file("seeds/bulk/053/005000.jsom", b"extra".to_vec()),
        );
    });
    let (code, failures) = refusals(&kit, &public);
    assert_ne!(code, 0);
    assert_eq!(failures[0].0, "extra-file", "{failures:?}");

    // A seed a page lists, left out.
    let ws = Workspace::new();
    let (kit, public) = forged(&ws, |e| {
        let i = seed_at(e, 5000);
        e.remove(i);
    });
    let (code, failures) = refusals(&kit, &public);
    assert_ne!(code, 0);
    assert!(
        failures.contains(&("missing-file".into(), "seeds/bulk/053/005000.json".into())),
        "{failures:?}"
    );

    // A page moved after its seeds.
    let ws = Workspace::new();
    let (kit, public) = forged(&ws, |e| {
        let p = forge::find(e, "index/seeds/00000002.sha256");
        let page = e.remove(p);
        e.insert(p + 3, page);
    });
    let (code, failures) = refusals(&kit, &public);
    assert_ne!(code, 0);
    assert_eq!(failures[0].0, "entry-order", "{failures:?}");

    // A file other than a page or seed after the pages.
    let ws = Workspace::new();
    let (kit, public) = forged(&ws, |e| {
        let i = forge::find(e, "sboms/kit.spdx.json");
        let sbom = e.remove(i);
        e.push(sbom);
    });
    let (code, failures) = refusals(&kit, &public);
    assert_ne!(code, 0);
    assert_eq!(
        failures[0],
        ("entry-order".into(), "sboms/kit.spdx.json".into()),
        "{failures:?}"
    );

    // A page whose bytes are not the ones the manifest signs (SHA256SUMS re-made to match).
    let ws = Workspace::new();
    let (kit, public) = forged(&ws, |e| {
        let p = forge::find(e, "index/seeds/00000001.sha256");
        let len = e[p].data.len();
        e[p].data.truncate(len - 1);
    });
    let (code, failures) = refusals(&kit, &public);
    assert_ne!(code, 0);
    assert!(!failures.is_empty());
}

#[test]
fn a_paged_kit_extracts_with_its_pages_and_audit_and_diff_list_its_seeds() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = paged_source(&ws);
    let kit = ws.build(&src, &[&key]);
    let to = ws.path("extracted");
    run_ok(
        cmd()
            .arg("extract")
            .arg(&kit)
            .arg("--trust")
            .arg(&public)
            .arg("--to")
            .arg(&to),
    );
    assert!(to.join("index/seeds/00000001.sha256").is_file());
    assert!(to.join("seeds/bulk/000/000000.json").is_file());
    stock_check(&to);

    // The next release drops one seed and changes another: diff names both.
    std::fs::remove_file(src.join("seeds/bulk/001/000001.json")).unwrap();
    write(&src.join("seeds/bulk/002/000002.json"), "{\"n\":\"two\"}\n");
    let toml = std::fs::read_to_string(src.join("kit.toml")).unwrap();
    write(
        &src.join("kit.toml"),
        toml.replace("version = \"1.0.0\"", "version = \"1.0.1\""),
    );
    let next = ws.build_in(&src, &[&key], "next");
    let (code, stdout, stderr) = outcome(
        &cmd()
            .arg("--json")
            .arg("diff")
            .arg(&kit)
            .arg(&next)
            .arg("--trust")
            .arg(&public)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 15, "the kits differ: {stdout}{stderr}");
    assert!(stdout.contains("bulk/001/000001.json"), "{stdout}");
    assert!(stdout.contains("bulk/002/000002.json"), "{stdout}");
    assert!(
        !stdout.contains("bulk/003/000003.json"),
        "unchanged seeds are not listed"
    );

    let html = ws.path("audit.html");
    run_ok(
        cmd()
            .arg("report")
            .arg(&kit)
            .arg("--trust")
            .arg(&public)
            .arg("--html")
            .arg(&html),
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(&format!("Seed objects ({})", SEEDS + 2)),
        "the report counts them"
    );
    assert!(
        page.contains("bulk/000/000097.json"),
        "the report lists them"
    );
}

#[test]
fn a_paged_kit_is_co_signed_split_and_applied_from_its_parts() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let (key2, public2) = ws.key("second");
    let kit = ws.build(&paged_source(&ws), &[&key]);
    // A co-signer rewrites the header frame only: still offkit/v2, and both keys count.
    run_ok(
        cmd()
            .arg("sign")
            .arg(&kit)
            .arg("--key")
            .arg(&key2)
            .arg("--trust")
            .arg(&public),
    );
    run_ok(
        cmd()
            .arg("verify")
            .arg(&kit)
            .arg("--trust")
            .arg(&public)
            .arg("--trust")
            .arg(&public2)
            .arg("--threshold")
            .arg("2"),
    );

    // Cut into parts at frame boundaries (a page's frame among them), applied from the parts.
    let parts = ws.path("parts");
    run_ok(
        cmd()
            .arg("split")
            .arg(&kit)
            .arg("--max-part-size")
            .arg("200K")
            .arg("--out")
            .arg(&parts),
    );
    let first = std::fs::read_dir(&parts)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".001"))
        .expect("a first part");
    let (code, stdout, stderr) = ws.apply(&first, &public, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        ws.path("store/bulk/096/008826.json").is_file(),
        "the last page's seeds were put"
    );
}

#[test]
fn seeds_with_long_paths_are_paged_by_bytes_and_verify() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    // 4,000 seeds with 3,800-byte paths: past one page by its byte bound (1 MiB), not its
    // line bound; once past the header's limits, now an offkit/v2 kit.
    let deep: Vec<String> = (0..15)
        .map(|i| format!("{i:02}{}", "d".repeat(248)))
        .collect();
    let dir = src.join("seeds").join(deep.join("/"));
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..4000 {
        std::fs::write(dir.join(format!("s{n:04}.json")), b"{}").unwrap();
    }
    let kit = ws.build(&src, &[&key]);
    let out = ws.path("x");
    extract_with_tar(&kit, &out);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let pages = manifest["pages"].as_array().unwrap();
    assert!(pages.len() >= 15, "{} pages", pages.len());
    for p in pages {
        assert!(p["size"].as_u64().unwrap() <= 1 << 20, "{p}");
    }
    let stdout = run_ok(cmd().arg("verify").arg(&kit).arg("--trust").arg(&public));
    assert!(stdout.starts_with("VERIFIED"), "{stdout}");
}
