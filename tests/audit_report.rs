//! The auditor's HTML report (issue 12): rendered by a real headless browser (Debian's
//! `chromium`), which must show the kit's facts, the trust decision, the provenance and the
//! site's ledger; hostile text from a kit stays text; a refused kit says so.

mod common;

use common::browser::render;
use common::{Workspace, outcome, run};

fn report(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["report"];
    all.extend(args);
    outcome(&run(&all))
}

#[test]
fn the_report_renders_the_kit_the_trust_decision_and_the_ledger_in_a_browser() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let db = ws.site_db();
    let (code, out, err) = ws.apply(&kit, &public, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let html = ws.path("report.html");
    let (code, out, err) = report(&[
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--db",
        &db,
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (dom, png) = render(&html, &ws.path("report.png"));
    let keyid = offkit::trust::PublicKey::load(&public)
        .unwrap()
        .keyid()
        .to_string();
    for fact in [
        "offkit audit report: quickstart 1.0.0",
        "class=\"status VERIFIED\"",
        &keyid,
        "SLSA provenance v1, verified",
        "001_create_items",
        "DM001_backfill_name_search",
        "<td>succeeded</td>",
        "<td>#1</td>",
    ] {
        assert!(dom.contains(fact), "the rendered page lacks {fact:?}");
    }
    // No script anywhere, no external asset; a real picture of the page.
    assert!(!dom.contains("<script"));
    assert!(!dom.contains("http://") && !dom.contains("https://cdn"));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a screenshot of {} bytes is blank",
        png.len()
    );
}

#[test]
fn hostile_text_stays_text_and_a_refused_kit_says_so() {
    let ws = Workspace::new();
    let (key, public) = ws.key("release");
    let src = ws.example_source("quickstart");
    let toml = src.join("kit.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let hostile = "<script>document.title='owned'</script><img src=x onerror=alert(1)>";
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("description") {
                format!("description = \"{hostile}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&toml, text).unwrap();
    let kit = ws.build(&src, &[&key]);
    let html = ws.path("hostile.html");
    let (code, out, err) = report(&[
        kit.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (dom, _) = render(&html, &ws.path("hostile.png"));
    assert!(!dom.contains("<script"), "markup from the kit ran");
    assert!(!dom.contains("<img"), "markup from the kit ran");
    assert!(
        dom.contains("&lt;script&gt;document.title="),
        "the text is shown as text"
    );
    assert!(!dom.contains("<title>owned"));

    // A kit one byte off: the page says REFUSED and why.
    let mut bytes = std::fs::read(&kit).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 1;
    let bad = ws.path("bad.kit.tar.zst");
    std::fs::write(&bad, bytes).unwrap();
    let html = ws.path("refused.html");
    let (code, out, err) = report(&[
        bad.to_str().unwrap(),
        "--trust",
        public.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (dom, _) = render(&html, &ws.path("refused.png"));
    assert!(dom.contains("class=\"status REFUSED\""), "{dom}");
    assert!(dom.contains("Why it was refused"));

    // Nothing to report on is a usage error.
    let (code, _, _) = report(&["--html", html.to_str().unwrap()]);
    assert_eq!(code, 2);
}
