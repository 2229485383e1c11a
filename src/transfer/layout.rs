//! Layouts: how a source object's key becomes its key at the destination.
//!
//! A layout is an ordered list of rules. A rule has a name (recorded as the object's
//! `source_layout`), a `from` pattern and a `to` template:
//!
//! ```toml
//! [[rule]]
//! name = "tenant-bundles"
//! from = "tenants/{tenantId}/bundles/{bundleId}/{sha256}-{name}"
//! to   = "artifacts/{bomRef}/{serialNumber}/{artifactId}.json"
//! ```
//!
//! The first rule whose pattern matches a key decides; a key no rule matches is not part of the
//! migration (counted as `unmatched`). Matching is linear and deterministic:
//!
//! - a pattern and a key are compared segment by segment (`/`-separated);
//! - a segment of the pattern is literal text and `{name}` placeholders; a placeholder takes the
//!   shortest non-empty text up to the literal that follows it (the last one takes the rest of the
//!   segment), and two placeholders must be separated by literal text;
//! - one segment may be a lone `{name*}`, which takes one or more whole segments (as many as the
//!   other segments leave).
//!
//! A template is literal text and placeholders: any name the pattern captured, `{key}` (the whole
//! source key), and the document's `{bomRef}`, `{serialNumber}` (each encoded into one key
//! segment by [`super::document::encode_segment`]) and `{artifactId}` (the content's SHA-256 in
//! hex). A `{tenantId}` capture is the object's tenant (`--tenant`, the index's `tenant` column).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::kit::path::KitPath;

/// The most rules a layout may have.
pub const MAX_RULES: usize = 64;
/// The most placeholders a pattern may have.
pub const MAX_PLACEHOLDERS: usize = 16;

/// The template of the unified artifact store's keys.
pub const ARTIFACT_TARGET: &str = "artifacts/{bomRef}/{serialNumber}/{artifactId}.json";

/// The capture that names an object's tenant.
pub const TENANT: &str = "tenantId";

/// Built-in layouts, by name (`--layout NAME`).
pub const PRESETS: &[(&str, &str)] = &[
    ("identity", "every key unchanged"),
    (
        "legacy-tenant-bundles",
        "tenants/{tenantId}/bundles/{bundleId}/{sha256}-{name} → artifacts/…",
    ),
    (
        "legacy-attest-dsse",
        "attest/dsse/{bundleSha256}.json → artifacts/…",
    ),
    (
        "legacy-format-digest",
        "{prefix*}/{format}/{digest}.{ext} → artifacts/…",
    ),
    (
        "legacy",
        "the three legacy layouts, in this order: tenant-bundles, attest-dsse, format-digest",
    ),
];

const TENANT_BUNDLES: (&str, &str) = (
    "tenant-bundles",
    "tenants/{tenantId}/bundles/{bundleId}/{sha256}-{name}",
);
const ATTEST_DSSE: (&str, &str) = ("attest-dsse", "attest/dsse/{bundleSha256}.json");
const FORMAT_DIGEST: (&str, &str) = ("format-digest", "{prefix*}/{format}/{digest}.{ext}");

/// A layout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Not a preset and not a readable file.
    #[error("layout {name:?} is neither a preset ({presets}) nor a readable file: {cause}")]
    Unknown {
        /// What was given.
        name: String,
        /// The preset names.
        presets: String,
        /// Why the file could not be read.
        cause: std::io::Error,
    },
    /// The file is not a valid layout.
    #[error("layout {origin}: {problem}")]
    Invalid {
        /// The file (or preset).
        origin: String,
        /// What is wrong.
        problem: String,
    },
}

/// One rule: a name, a pattern, a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Recorded as the object's `source_layout`.
    pub name: String,
    from: Pattern,
    to: Template,
}

/// A layout: rules tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The preset name or the file it was read from.
    pub origin: String,
    /// SHA-256 of the layout's text (recorded with the run; presets hash their canonical text).
    pub sha256: String,
    rules: Vec<Rule>,
}

/// Where a key goes, before the document is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'l> {
    /// The rule that matched.
    pub rule: &'l Rule,
    /// The placeholders the pattern captured.
    pub captures: BTreeMap<String, String>,
}

/// What a template may use besides the captures.
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    /// The source key.
    pub key: &'a str,
    /// The document's bom-ref, encoded into one segment.
    pub bom_ref: Option<&'a str>,
    /// The document's serial number, encoded into one segment.
    pub serial_number: Option<&'a str>,
    /// The content's SHA-256.
    pub artifact_id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Pieces(Vec<Piece>),
    /// `{name*}`: one or more whole segments.
    Many(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    pieces: Vec<Piece>,
}

/// Placeholders a template may use that no pattern captures.
const DOCUMENT_VARS: [&str; 3] = ["bomRef", "serialNumber", "artifactId"];

fn is_var_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `text` into literal text and `{name}` placeholders.
fn pieces(text: &str, what: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{what} {text:?}: an unclosed '{{'"))?;
        out.push(Piece::Var(after[..close].to_owned()));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("{what} {text:?}: a '}}' without '{{'"));
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    Ok(out)
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let mut segments = Vec::new();
        let mut names = Vec::new();
        for seg in text.split('/') {
            if seg.is_empty() {
                return Err(format!("pattern {text:?}: an empty segment"));
            }
            let ps = pieces(seg, "pattern")?;
            if let [Piece::Var(v)] = ps.as_slice() {
                if let Some(name) = v.strip_suffix('*') {
                    if segments.iter().any(|s| matches!(s, Segment::Many(_))) {
                        return Err(format!("pattern {text:?}: more than one {{name*}}"));
                    }
                    names.push(name.to_owned());
                    segments.push(Segment::Many(name.to_owned()));
                    continue;
                }
            }
            for w in ps.windows(2) {
                if matches!(w, [Piece::Var(_), Piece::Var(_)]) {
                    return Err(format!(
                        "pattern {text:?}: two placeholders must be separated by text"
                    ));
                }
            }
            for p in &ps {
                if let Piece::Var(v) = p {
                    names.push(v.clone());
                }
            }
            segments.push(Segment::Pieces(ps));
        }
        for n in &names {
            if !is_var_name(n) {
                return Err(format!(
                    "pattern {text:?}: {n:?} is not a placeholder name (letters, digits, _)"
                ));
            }
            if n == "key" || DOCUMENT_VARS.contains(&n.as_str()) {
                return Err(format!(
                    "pattern {text:?}: {{{n}}} is reserved for the template"
                ));
            }
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != names.len() {
            return Err(format!("pattern {text:?}: a placeholder is used twice"));
        }
        if names.len() > MAX_PLACEHOLDERS {
            return Err(format!(
                "pattern {text:?}: more than {MAX_PLACEHOLDERS} placeholders"
            ));
        }
        Ok(Pattern { segments })
    }

    fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Many(n) => out.push(n.as_str()),
                Segment::Pieces(ps) => out.extend(ps.iter().filter_map(|p| match p {
                    Piece::Var(v) => Some(v.as_str()),
                    Piece::Text(_) => None,
                })),
            }
        }
        out
    }

    /// The captures when `key` matches.
    fn matches(&self, key: &str) -> Option<BTreeMap<String, String>> {
        let keys: Vec<&str> = key.split('/').collect();
        let mut captures = BTreeMap::new();
        let many_at = self
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Many(_)));
        let (head, tail): (&[Segment], &[Segment]) = match many_at {
            Some(i) => (&self.segments[..i], &self.segments[i + 1..]),
            None => (&self.segments[..], &[]),
        };
        let fixed = head.len() + tail.len();
        match many_at {
            None if keys.len() != fixed => return None,
            Some(_) if keys.len() <= fixed => return None,
            _ => {}
        }
        for (seg, k) in head.iter().zip(&keys) {
            match_segment(seg, k, &mut captures)?;
        }
        if let Some(i) = many_at {
            let Segment::Many(name) = &self.segments[i] else {
                return None;
            };
            let taken = keys.len() - fixed;
            captures.insert(name.clone(), keys[head.len()..head.len() + taken].join("/"));
            for (seg, k) in tail.iter().zip(&keys[head.len() + taken..]) {
                match_segment(seg, k, &mut captures)?;
            }
        }
        Some(captures)
    }
}

fn match_segment(seg: &Segment, key: &str, captures: &mut BTreeMap<String, String>) -> Option<()> {
    let Segment::Pieces(ps) = seg else {
        return None;
    };
    let mut rest = key;
    let mut i = 0;
    while i < ps.len() {
        match &ps[i] {
            Piece::Text(t) => rest = rest.strip_prefix(t.as_str())?,
            Piece::Var(v) => {
                let end = match ps.get(i + 1) {
                    // The shortest non-empty text up to the next literal.
                    Some(Piece::Text(t)) => {
                        let first = rest.chars().next()?.len_utf8();
                        rest[first..].find(t.as_str())? + first
                    }
                    _ => rest.len(),
                };
                if end == 0 {
                    return None;
                }
                captures.insert(v.clone(), rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
        i += 1;
    }
    rest.is_empty().then_some(())
}

impl Template {
    fn parse(text: &str, captured: &[&str]) -> Result<Template, String> {
        let ps = pieces(text, "template")?;
        for p in &ps {
            if let Piece::Var(v) = p {
                let known = v == "key"
                    || DOCUMENT_VARS.contains(&v.as_str())
                    || captured.contains(&v.as_str());
                if !known {
                    return Err(format!(
                        "template {text:?}: {{{v}}} is neither captured by the pattern nor one of key, bomRef, serialNumber, artifactId"
                    ));
                }
            }
        }
        Ok(Template { pieces: ps })
    }

    fn uses_document(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Var(v) if v == "bomRef" || v == "serialNumber"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    rule: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    from: String,
    to: String,
}

impl Layout {
    /// Every key unchanged (the default).
    pub fn identity() -> Layout {
        Self::preset("identity").unwrap_or_else(|| unreachable!("identity is a preset"))
    }

    /// The built-in layout of that name.
    pub fn preset(name: &str) -> Option<Layout> {
        let rules: Vec<(&str, &str, &str)> = match name {
            "identity" => vec![("identity", "{path*}", "{path}")],
            "legacy-tenant-bundles" => vec![(TENANT_BUNDLES.0, TENANT_BUNDLES.1, ARTIFACT_TARGET)],
            "legacy-attest-dsse" => vec![(ATTEST_DSSE.0, ATTEST_DSSE.1, ARTIFACT_TARGET)],
            "legacy-format-digest" => vec![(FORMAT_DIGEST.0, FORMAT_DIGEST.1, ARTIFACT_TARGET)],
            "legacy" => vec![
                (TENANT_BUNDLES.0, TENANT_BUNDLES.1, ARTIFACT_TARGET),
                (ATTEST_DSSE.0, ATTEST_DSSE.1, ARTIFACT_TARGET),
                (FORMAT_DIGEST.0, FORMAT_DIGEST.1, ARTIFACT_TARGET),
            ],
            _ => return None,
        };
        let text: String = rules
            .iter()
            .map(|(n, f, t)| format!("[[rule]]\nname = {n:?}\nfrom = {f:?}\nto = {t:?}\n"))
            .collect();
        let parsed = rules
            .iter()
            .map(|(n, f, t)| build_rule(n, f, t))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| unreachable!("preset {name}: {e}"));
        Some(Layout {
            origin: name.to_owned(),
            sha256: crate::util::sha256_hex(text.as_bytes()),
            rules: parsed,
        })
    }

    /// A preset by name, else the layout file at that path.
    pub fn load(name: &str) -> Result<Layout, LayoutError> {
        if let Some(l) = Self::preset(name) {
            return Ok(l);
        }
        let bytes = std::fs::read(name).map_err(|cause| LayoutError::Unknown {
            name: crate::util::escape_controls(name),
            presets: PRESETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            cause,
        })?;
        Self::parse(name, &bytes)
    }

    /// Parses a layout file's bytes.
    pub fn parse(origin: &str, bytes: &[u8]) -> Result<Layout, LayoutError> {
        let invalid = |problem: String| LayoutError::Invalid {
            origin: crate::util::escape_controls(origin),
            problem,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| invalid("not UTF-8".into()))?;
        let file: LayoutFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.rule.is_empty() || file.rule.len() > MAX_RULES {
            return Err(invalid(format!("a layout has 1 to {MAX_RULES} rules")));
        }
        let mut rules = Vec::new();
        for r in &file.rule {
            if rules.iter().any(|x: &Rule| x.name == r.name) {
                return Err(invalid(format!("rule {:?} is named twice", r.name)));
            }
            rules.push(build_rule(&r.name, &r.from, &r.to).map_err(invalid)?);
        }
        Ok(Layout {
            origin: origin.to_owned(),
            sha256: crate::util::sha256_hex(bytes),
            rules,
        })
    }

    /// The rule that takes `key`, with its captures.
    pub fn route(&self, key: &str) -> Option<Matched<'_>> {
        self.rules.iter().find_map(|rule| {
            rule.from
                .matches(key)
                .map(|captures| Matched { rule, captures })
        })
    }

    /// Whether some rule captures a `{tenantId}`.
    pub fn has_tenant(&self) -> bool {
        self.rules.iter().any(|r| r.from.names().contains(&TENANT))
    }

    /// Whether keys are the source keys unchanged (so swapping `--from` and `--to` undoes a run).
    pub fn is_identity(&self) -> bool {
        self.origin == "identity"
    }
}

fn build_rule(name: &str, from: &str, to: &str) -> Result<Rule, String> {
    if !is_var_name(&name.replace('-', "_")) {
        return Err(format!(
            "rule name {name:?}: use letters, digits, '-' and '_'"
        ));
    }
    let from = Pattern::parse(from)?;
    let to = Template::parse(to, &from.names())?;
    Ok(Rule {
        name: name.to_owned(),
        from,
        to,
    })
}

impl Rule {
    /// Whether the template needs the document's bom-ref or serial number.
    pub fn uses_document(&self) -> bool {
        self.to.uses_document()
    }

    /// The destination key.
    pub fn target(
        &self,
        captures: &BTreeMap<String, String>,
        values: &Values<'_>,
    ) -> Result<KitPath, String> {
        let mut out = String::new();
        for p in &self.to.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => {
                    let value = match v.as_str() {
                        "key" => Some(values.key),
                        "bomRef" => values.bom_ref,
                        "serialNumber" => values.serial_number,
                        "artifactId" => values.artifact_id,
                        other => captures.get(other).map(String::as_str),
                    };
                    out.push_str(value.ok_or_else(|| format!("no value for {{{v}}}"))?);
                }
            }
        }
        KitPath::new(&out).map_err(|e| format!("the destination key is not valid: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_route_the_legacy_layouts() {
        let l = Layout::preset("legacy").unwrap();
        let m = l
            .route("tenants/acme/bundles/b1/0a1b2c-report.cdx.json")
            .unwrap();
        assert_eq!(m.rule.name, "tenant-bundles");
        assert_eq!(m.captures["tenantId"], "acme");
        assert_eq!(m.captures["sha256"], "0a1b2c");
        assert_eq!(m.captures["name"], "report.cdx.json");
        let m = l.route("attest/dsse/abc.json").unwrap();
        assert_eq!(m.rule.name, "attest-dsse");
        let m = l.route("a/b/sbom/cyclonedx/sha256:ff.json").unwrap();
        assert_eq!(m.rule.name, "format-digest");
        assert_eq!(m.captures["prefix"], "a/b/sbom");
        assert_eq!(m.captures["format"], "cyclonedx");
        assert_eq!(m.captures["digest"], "sha256:ff");
        assert_eq!(m.captures["ext"], "json");
        assert!(l.route("loose.json").is_none());
        let m = l.route("attest/dsse/ü.json").unwrap();
        assert_eq!(m.captures["bundleSha256"], "ü");
        assert!(l.has_tenant());
        let values = Values {
            key: "k",
            bom_ref: Some("pkg%3Anpm%2Fx"),
            serial_number: Some("urn%3Auuid%3A1"),
            artifact_id: Some("ff"),
        };
        let key = m.rule.target(&m.captures, &values).unwrap();
        assert_eq!(
            key.as_str(),
            "artifacts/pkg%3Anpm%2Fx/urn%3Auuid%3A1/ff.json"
        );
    }

    #[test]
    fn identity_keeps_every_key() {
        let l = Layout::identity();
        for k in ["a", "a/b/c.json"] {
            let m = l.route(k).unwrap();
            let v = Values {
                key: k,
                ..Values::default()
            };
            assert_eq!(m.rule.target(&m.captures, &v).unwrap().as_str(), k);
        }
        assert!(!l.has_tenant());
    }

    #[test]
    fn bad_layouts_are_refused_with_the_reason() {
        for (text, want) in [
            (
                "[[rule]]\nname='a'\nfrom='{x}{y}'\nto='{x}'",
                "separated by text",
            ),
            (
                "[[rule]]\nname='a'\nfrom='{x}'\nto='{nope}'",
                "neither captured",
            ),
            ("[[rule]]\nname='a'\nfrom='{key}'\nto='x'", "reserved"),
            (
                "[[rule]]\nname='a'\nfrom='{a*}/{b*}'\nto='x'",
                "more than one",
            ),
            ("[[rule]]\nname='a'\nfrom='a//b'\nto='x'", "empty segment"),
            ("[[rule]]\nname='a'\nfrom='{x'\nto='x'", "unclosed"),
            (
                "[[rule]]\nname='a'\nfrom='x'\nto='x'\nextra=1",
                "unknown field",
            ),
            ("rule = []", "1 to"),
        ] {
            let e = Layout::parse("t.toml", text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_template_that_makes_a_bad_key_is_an_error() {
        let l = Layout::parse("t", b"[[rule]]\nname='a'\nfrom='x/{n}'\nto='../{n}'").unwrap();
        let m = l.route("x/y").unwrap();
        let v = Values {
            key: "x/y",
            ..Values::default()
        };
        assert!(m.rule.target(&m.captures, &v).is_err());
    }
}
