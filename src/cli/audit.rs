//! `offkit report --html`: one self-contained HTML page for an auditor — the kit's contents, its
//! signers and the trust decision, its provenance and attestations, its SBOM packages, and the
//! site's ledger. No external asset and no script: it opens anywhere, offline, and prints.
//! Every string that comes from a kit or a database is HTML-escaped where it is written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::common::{DbArgs, OptionalTrustArgs, human_bytes};
use super::{CliError, CliResult, Global, io_error, print_json};
use crate::apply::ledger::Row;
use crate::diff::Package;
use crate::exit::Exit;
use crate::kit::manifest::Manifest;
use crate::trust::Retain;
use crate::trust::failure::Failure;
use crate::trust::verify::authenticate;
use crate::trust::verify::provenance::Provenance;

/// Rows shown per table before the page says how many more there are.
const MAX_ROWS: usize = 2_000;

/// Arguments of `offkit report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kit to report on (with `--trust`, verified first; without, its header NOT VERIFIED).
    pub kit: Option<PathBuf>,
    #[command(flatten)]
    pub trust: OptionalTrustArgs,
    /// Also the site's ledger of applies from this database.
    #[arg(long, value_name = "URL", value_parser = super::store::raw_url)]
    pub db: Option<crate::util::Secret>,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
}

/// What the page shows of the kit.
struct KitPart {
    path: String,
    status: &'static str,
    manifest: Option<Manifest>,
    manifest_sha256: String,
    kit_sha256: Option<String>,
    signers: Vec<(String, String)>,
    failures: Vec<Failure>,
    warnings: Vec<String>,
    key_validity: Option<String>,
    provenance: Option<Provenance>,
    attestations: Vec<crate::trust::sigstore::Attestation>,
    packages: BTreeMap<String, Vec<Package>>,
}

/// Runs `offkit report`.
pub fn run(args: Args, global: &Global) -> CliResult {
    if args.kit.is_none() && args.db.is_none() {
        return Err(CliError::msg(
            Exit::Usage,
            "give a kit (with --trust) and/or --db URL to report on",
        ));
    }
    let kit = args
        .kit
        .as_ref()
        .map(|k| kit_part(k, &args.trust))
        .transpose()?;
    let ledger = match &args.db {
        Some(url) => {
            let db = DbArgs { db: url.clone() };
            let mut session = db.connect_existing()?;
            let rows = super::apply::ledger_rows(&mut session, None)?;
            Some((session.url().redacted(), rows))
        }
        None => None,
    };
    let page = render(kit.as_ref(), ledger.as_ref());
    crate::util::write_atomic(&args.html, page.as_bytes(), 0o644, true)
        .map_err(|e| io_error(format!("writing {}", args.html.display()), e))?;
    let status = kit.as_ref().map_or("no kit", |k| k.status);
    if global.json {
        return print_json(&serde_json::json!({
            "html": args.html.display().to_string(),
            "kit_status": status,
            "ledger_entries": ledger.as_ref().map(|(_, r)| r.len()),
        }));
    }
    println!("{} (kit: {status})", args.html.display());
    Ok(())
}

fn kit_part(kit: &std::path::Path, trust: &OptionalTrustArgs) -> Result<KitPart, CliError> {
    let path = kit.display().to_string();
    let unverified = |status, failures| -> Result<KitPart, CliError> {
        let h = super::inspect::read_unverified(kit)?;
        Ok(KitPart {
            path: path.clone(),
            status,
            manifest: Some(h.manifest),
            manifest_sha256: h.manifest_sha256,
            kit_sha256: None,
            signers: h.keyids.into_iter().map(|k| (k, String::new())).collect(),
            failures,
            warnings: Vec::new(),
            key_validity: None,
            provenance: None,
            attestations: Vec::new(),
            packages: BTreeMap::new(),
        })
    };
    let Some(t) = trust.given() else {
        return unverified("NOT VERIFIED", Vec::new());
    };
    let policy = t.policy()?;
    let verified =
        authenticate(kit, &policy, &t.options()).and_then(|a| a.verify(Retain::SqlAndSboms));
    let mut v = match verified {
        Ok(v) => v,
        Err(f) => {
            // A refused kit is reported as refused, with why; its header is shown as unverified
            // when it can be read at all.
            return unverified("REFUSED", f.failures.clone()).or_else(|_| {
                Ok(KitPart {
                    path: path.clone(),
                    status: "REFUSED",
                    manifest: None,
                    manifest_sha256: String::new(),
                    kit_sha256: None,
                    signers: Vec::new(),
                    failures: f.failures,
                    warnings: Vec::new(),
                    key_validity: None,
                    provenance: None,
                    attestations: Vec::new(),
                    packages: BTreeMap::new(),
                })
            });
        }
    };
    let packages = super::diff::packages_of(&mut v)?;
    let kv = v.key_validity();
    Ok(KitPart {
        path,
        status: "VERIFIED",
        manifest: Some(
            v.listed_manifest()
                .map_err(crate::apply::LoadError::Content)?,
        ),
        manifest_sha256: v.manifest_sha256().to_string(),
        kit_sha256: Some(v.kit_sha256().to_string()),
        signers: v
            .signers()
            .iter()
            .map(|s| (s.keyid.to_string(), s.name.clone()))
            .collect(),
        failures: Vec::new(),
        warnings: v.warnings().to_vec(),
        key_validity: Some(format!(
            "{} ({})",
            serde_json::to_value(kv.basis)
                .ok()
                .and_then(|b| b.as_str().map(str::to_owned))
                .unwrap_or_default(),
            kv.judged_at
        )),
        provenance: v.provenance().cloned(),
        attestations: v.attestations().to_vec(),
        packages,
    })
}

/// HTML-escapes text (and writes control characters as visible escapes).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::kit::path::printable_text(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table: a caption, column heads and rows of cells (escaped here), cut at [`MAX_ROWS`].
fn table(out: &mut String, id: &str, heads: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<table id=\"{id}\"><thead><tr>");
    for h in heads {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(MAX_ROWS) {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if rows.len() > MAX_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">… and {} more rows (see offkit inspect --json).</p>",
            rows.len() - MAX_ROWS
        );
    }
}

fn facts(out: &mut String, pairs: &[(&str, String)]) {
    out.push_str("<dl>");
    for (k, v) in pairs {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    out.push_str("</dl>");
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111}\
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;\
text-align:left;vertical-align:top}th{background:#f0f0f0}td{font-family:ui-monospace,monospace;\
font-size:12px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}\
dt{font-weight:600}dd{margin:0;font-family:ui-monospace,monospace}\
.status{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:700;color:#fff}\
.VERIFIED{background:#1a7f37}.REFUSED{background:#cf222e}.NOT-VERIFIED{background:#9a6700}\
.note{color:#555}";

/// The page.
fn render(kit: Option<&KitPart>, ledger: Option<&(String, Vec<Row>)>) -> String {
    let mut o = String::new();
    let title = match kit.and_then(|k| k.manifest.as_ref()) {
        Some(m) => format!("offkit audit report: {} {}", m.name, m.version),
        None => "offkit audit report".to_owned(),
    };
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    let _ = write!(
        o,
        "<p class=\"note\">Made by offkit {} at {}. Self-contained: no script, no external asset.</p>",
        env!("CARGO_PKG_VERSION"),
        crate::kit::names::rfc3339(time::OffsetDateTime::now_utc())
    );
    if let Some(k) = kit {
        kit_sections(&mut o, k);
    }
    if let Some((db, rows)) = ledger {
        ledger_section(&mut o, db, rows);
    }
    o.push_str("</body></html>\n");
    o
}

fn kit_sections(o: &mut String, k: &KitPart) {
    let _ = write!(
        o,
        "<h2>Kit</h2><p><span id=\"status\" class=\"status {}\">{}</span> {}</p>",
        k.status.replace(' ', "-"),
        esc(k.status),
        esc(&k.path)
    );
    if k.status == "REFUSED" {
        o.push_str("<p class=\"note\">The kit was refused: what follows the reasons is what its header claims, unverified — the keyids are those its envelope names, not signers.</p>");
    }
    if k.status == "NOT VERIFIED" {
        o.push_str("<p class=\"note\">No trust was given: everything below is what the kit says about itself, not checked.</p>");
    }
    if !k.failures.is_empty() {
        o.push_str("<h2>Why it was refused</h2>");
        let rows: Vec<Vec<String>> = k
            .failures
            .iter()
            .map(|f| {
                vec![
                    f.kind.as_str(),
                    f.entry.clone().unwrap_or_default(),
                    f.message.clone(),
                ]
            })
            .collect();
        table(o, "failures", &["kind", "entry", "message"], &rows);
    }
    let mut pairs = Vec::new();
    if let Some(m) = &k.manifest {
        pairs.push(("name", m.name.to_string()));
        pairs.push(("version", m.version.to_string()));
        pairs.push(("channel", m.channel.to_string()));
        pairs.push(("sequence", m.sequence.to_string()));
        pairs.push(("created", m.created.to_string()));
        pairs.push((
            "expires",
            m.expires
                .as_ref()
                .map_or("never".to_owned(), ToString::to_string),
        ));
        pairs.push(("target", m.target.database.as_str().to_owned()));
        if let Some(d) = &m.description {
            pairs.push(("description", d.clone()));
        }
        pairs.push((
            "payload",
            format!(
                "{} files, {}",
                m.payload.files,
                human_bytes(m.payload.bytes)
            ),
        ));
    }
    pairs.push(("manifest sha256", k.manifest_sha256.clone()));
    if let Some(s) = &k.kit_sha256 {
        pairs.push(("kit sha256", s.clone()));
    }
    if let Some(kv) = &k.key_validity {
        pairs.push(("key validity judged", kv.clone()));
    }
    facts(o, &pairs);

    o.push_str("<h2>Signers and trust decision</h2>");
    let rows: Vec<Vec<String>> = k
        .signers
        .iter()
        .map(|(id, name)| vec![id.clone(), name.clone()])
        .collect();
    table(o, "signers", &["keyid", "trusted key"], &rows);
    for w in &k.warnings {
        let _ = write!(o, "<p class=\"note\">warning: {}</p>", esc(w));
    }

    o.push_str("<h2>Provenance</h2>");
    match &k.provenance {
        Some(p) => facts(
            o,
            &[
                ("statement", "SLSA provenance v1, verified".to_owned()),
                ("builder", format!("{} {}", p.builder_id, p.builder_version)),
                ("build type", p.build_type.clone()),
                ("source tree sha256", p.source_sha256.clone()),
                ("kit.toml sha256", p.kit_toml_sha256.clone()),
                ("signed by", p.signed_by.join(", ")),
            ],
        ),
        None => o.push_str("<p class=\"note\">none verified</p>"),
    }
    let Some(m) = &k.manifest else {
        return;
    };

    o.push_str("<h2>Migrations</h2>");
    let mut rows = Vec::new();
    for module in &m.modules {
        for mig in &module.migrations {
            rows.push(vec![
                module.name.to_string(),
                mig.category.to_string(),
                mig.name.to_string(),
                mig.file.sha256.to_string(),
                if mig.rollback.is_some() { "yes" } else { "no" }.to_owned(),
                mig.destructive
                    .as_ref()
                    .map_or(String::new(), |d| d.reason.to_string()),
            ]);
        }
    }
    table(
        o,
        "migrations",
        &[
            "module",
            "category",
            "name",
            "sha256",
            "rollback",
            "destructive",
        ],
        &rows,
    );

    let _ = write!(o, "<h2>Seed objects ({})</h2>", m.seed_count());
    if m.is_paged() && m.seeds.is_empty() {
        let _ = write!(
            o,
            "<p>Listed in {} signed pages (index/seeds/); give the trust policy to list them.</p>",
            m.pages.len()
        );
    }
    let rows: Vec<Vec<String>> = m
        .seeds
        .iter()
        .map(|s| {
            vec![
                s.key.to_string(),
                s.file.size.to_string(),
                s.media_type.clone(),
                s.file.sha256.to_string(),
            ]
        })
        .collect();
    table(o, "seeds", &["key", "bytes", "media type", "sha256"], &rows);

    o.push_str("<h2>Attestations</h2>");
    if m.attestations.is_empty() {
        o.push_str("<p class=\"note\">none</p>");
    } else {
        o.push_str("<p class=\"note\">Every file is checked against the kit's signed digests. Sigstore bundles are judged against the site's pinned trusted root and identity rules (when its policy has them).</p>");
        let rows: Vec<Vec<String>> = m
            .attestations
            .iter()
            .map(|a| {
                let declared = m.sigstore.iter().find(|s| s.bundle == a.path);
                let verdict = k.attestations.iter().find(|v| v.bundle == a.path);
                let (kind, subject) = match (declared, verdict) {
                    (_, Some(v)) => (v.kind.to_string(), v.subject.clone()),
                    (Some(d), None) => (
                        d.kind.to_string(),
                        d.subject.as_ref().map_or_else(
                            || format!("sha256:{}", d.digest.as_ref().map_or("", |x| x.as_str())),
                            |p| p.to_string(),
                        ),
                    ),
                    (None, None) => ("—".to_owned(), "—".to_owned()),
                };
                let (outcome, signer) = match verdict {
                    Some(v) => (
                        v.verdict.to_owned(),
                        match (&v.identity, &v.issuer) {
                            (Some(id), Some(iss)) => format!(
                                "{id} ({iss}){}",
                                v.signed_at
                                    .as_ref()
                                    .map_or(String::new(), |t| format!(" at {t}"))
                            ),
                            _ => "—".to_owned(),
                        },
                    ),
                    None if declared.is_some() => ("not verified".to_owned(), "—".to_owned()),
                    None => ("file digest only".to_owned(), "—".to_owned()),
                };
                vec![
                    a.path.to_string(),
                    kind,
                    subject,
                    outcome,
                    signer,
                    a.sha256.to_string(),
                ]
            })
            .collect();
        table(
            o,
            "attestations",
            &["file", "kind", "about", "verdict", "signer", "sha256"],
            &rows,
        );
    }

    o.push_str("<h2>SBOM packages</h2>");
    if k.packages.is_empty() {
        o.push_str("<p class=\"note\">none read (the kit was not verified, or its SBOMs list no packages)</p>");
    }
    for (sbom, packages) in &k.packages {
        let _ = write!(o, "<h3>{} ({} packages)</h3>", esc(sbom), packages.len());
        let rows: Vec<Vec<String>> = packages
            .iter()
            .map(|p| vec![p.name.clone(), p.version.clone()])
            .collect();
        table(o, "packages", &["package", "version"], &rows);
    }
}

fn ledger_section(o: &mut String, db: &str, rows: &[Row]) {
    let _ = write!(
        o,
        "<h2>Ledger of applies</h2><p>Database: <code>{}</code> — {} entries</p>",
        esc(db),
        rows.len()
    );
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("#{}", r.id),
                r.outcome.as_str().to_owned(),
                format!("{} {}", r.kit_name, r.kit_version),
                format!("{} / {}", r.channel, r.sequence),
                r.started_at.clone(),
                r.finished_at.clone().unwrap_or_default(),
                r.applied_by.clone(),
                r.overrides
                    .iter()
                    .map(|o| o.flag())
                    .collect::<Vec<_>>()
                    .join(" "),
                r.report_sha256.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        o,
        "ledger",
        &[
            "entry",
            "outcome",
            "kit",
            "channel / seq",
            "started",
            "finished",
            "by",
            "overrides",
            "report sha256",
        ],
        &rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_a_kit_cannot_become_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert!(!esc("a\u{1b}[31mb").contains('\u{1b}'));
    }
}
