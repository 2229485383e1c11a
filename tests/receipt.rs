//! Site-signed apply receipts (issue 12): written by `apply --receipt-key`, issued later from the
//! ledger, verified by `offkit receipt verify` and independently by python-securesystemslib's DSSE
//! (tests/python/dsse_verify.py); forged, foreign and mismatched receipts refused.

mod common;

use std::path::{Path, PathBuf};

use common::{Workspace, dsse_verdict, outcome, run};

struct Site {
    ws: Workspace,
    kit: PathBuf,
    release_pub: PathBuf,
    db: String,
}

impl Site {
    fn new() -> Site {
        let ws = Workspace::new();
        let (release_key, release_pub) = ws.key("release");
        let src = ws.example_source("quickstart");
        let kit = ws.build(&src, &[&release_key]);
        let db = ws.site_db();
        std::fs::create_dir_all(ws.path("site")).unwrap();
        Site {
            ws,
            kit,
            release_pub,
            db,
        }
    }

    fn apply(&self, extra: &[&str]) -> (i32, String, String) {
        self.ws.apply(&self.kit, &self.release_pub, extra)
    }
}

fn verify(receipt: &Path, trust: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "receipt",
        "verify",
        receipt.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
    ];
    args.extend(extra);
    outcome(&run(&args))
}

#[test]
fn an_apply_writes_a_receipt_that_offkit_and_securesystemslib_verify() {
    let s = Site::new();
    let (site_key, site_pub) = s.ws.key("site");
    let receipt = s.ws.path("site/receipt.dsse.json");
    let (code, out, err) = s.apply(&[
        "--receipt-key",
        site_key.to_str().unwrap(),
        "--receipt",
        receipt.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("receipt of ledger entry #1 signed by"),
        "{err}"
    );

    let (code, out, err) = verify(&receipt, &site_pub, &["--kit", s.kit.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "VERIFIED RECEIPT: quickstart 1.0.0 (channel quickstart, sequence 1) succeeded"
        ),
        "{out}"
    );
    assert!(out.contains("(matches the kit given)"), "{out}");

    let (code, out, _) = verify(&receipt, &site_pub, &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entry = &v["predicate"]["ledger_entry"];
    assert_eq!(entry["outcome"], "succeeded");
    assert_eq!(entry["id"], 1);
    let kit_sha = offkit::util::sha256_hex(&std::fs::read(&s.kit).unwrap());
    assert_eq!(entry["kit_sha256"], kit_sha.as_str());
    // The report: every migration with its checksum, every seed object.
    let report = &v["predicate"]["report"];
    assert_eq!(report["outcome"], "succeeded");
    assert!(
        !report["migrations"].is_null() && !report["seeds"].is_null(),
        "{report}"
    );
    // No secret and no path of the site's key.
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(!text.contains("BEGIN PRIVATE KEY"));

    // An implementation that shares no code with offkit agrees.
    let (ok, said) = dsse_verdict(&receipt, &site_pub, &[&s.kit]);
    assert!(ok, "{said}");
    assert_eq!(said.trim(), "https://offkit.dev/apply-receipt/v1");
}

#[test]
fn forged_foreign_and_mismatched_receipts_are_refused() {
    let s = Site::new();
    let (site_key, site_pub) = s.ws.key("site");
    let (_, other_pub) = s.ws.key("other");
    let receipt = s.ws.path("site/r.json");
    let (code, _, _) = s.apply(&[
        "--receipt-key",
        site_key.to_str().unwrap(),
        "--receipt",
        receipt.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);

    // Another site's key: untrusted.
    let (code, _, err) = verify(&receipt, &other_pub, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("untrusted-signer"), "{err}");

    // The outcome rewritten from "succeeded" to "failed" in the payload: the signature fails,
    // here and in securesystemslib.
    let mut env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    assert!(payload.contains("\"outcome\":\"succeeded\""));
    env["payload"] = b64
        .encode(payload.replacen("\"outcome\":\"succeeded\"", "\"outcome\":\"failed\"", 1))
        .into();
    let forged = s.ws.path("site/forged.json");
    std::fs::write(&forged, serde_json::to_vec_pretty(&env).unwrap()).unwrap();
    let (code, _, err) = verify(&forged, &site_pub, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad-signature"), "{err}");
    assert!(!dsse_verdict(&forged, &site_pub, &[]).0);

    // A genuine receipt shown with another kit.
    let other_kit = s.ws.path("other.kit.tar.zst");
    std::fs::write(&other_kit, b"not that kit").unwrap();
    let (code, _, err) = verify(&receipt, &site_pub, &["--kit", other_kit.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("is not the kit this receipt is about"),
        "{err}"
    );
    assert!(!dsse_verdict(&receipt, &site_pub, &[&other_kit]).0);

    // Not a receipt at all.
    let (code, _, err) = verify(&s.kit, &site_pub, &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not an offkit apply receipt"), "{err}");
}

#[test]
fn a_receipt_is_issued_later_from_the_ledger_with_its_report_only_when_it_is_that_apply_s() {
    let s = Site::new();
    let (site_key, site_pub) = s.ws.key("site");
    let report = s.ws.path("site/report.json");
    let (code, out, err) = s.apply(&["--report", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // A second apply (nothing to do) has its own report.
    let second = s.ws.path("site/second.json");
    assert_eq!(s.apply(&["--report", second.to_str().unwrap()]).0, 0);

    let issue = |entry: &str, report: &Path, out: &Path| {
        outcome(&run(&[
            "receipt",
            "issue",
            "--db",
            &s.db,
            "--entry",
            entry,
            "--report",
            report.to_str().unwrap(),
            "--key",
            site_key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]))
    };
    let r1 = s.ws.path("site/r1.json");
    let (code, out, err) = issue("1", &report, &r1);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("receipt of ledger entry #1 (quickstart 1.0.0, succeeded)"),
        "{out}"
    );
    assert!(out.contains("with its report"), "{out}");
    let (code, out, _) = verify(&r1, &site_pub, &["--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["predicate"]["report"], recorded);

    // The second apply's report is not entry 1's; an entry that does not exist is refused.
    let (code, _, err) = issue("1", &second, &s.ws.path("site/bad.json"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("it is another apply's report"), "{err}");
    assert!(!s.ws.path("site/bad.json").exists());
    let (code, _, err) = issue("9", &report, &s.ws.path("site/bad.json"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the ledger has no entry #9"), "{err}");
}
