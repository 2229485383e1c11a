//! The layering of docs/ARCHITECTURE.md, checked on the source: a module imports only modules of
//! a lower layer (code lines; doc comments may point anywhere). A change that makes `kit` use
//! `trust`, or two folders use each other, fails here with the file and the line.

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module and its layer; a module may use only modules of a lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("exit", 0),
    ("failpoint", 0),
    ("util", 0),
    ("confine", 0),
    ("sql", 0),
    ("sbom", 1),
    ("report", 1),
    ("pg", 1),
    ("kit", 2),
    ("trust", 3),
    ("migrate", 3),
    ("store", 3),
    ("build", 4),
    ("apply", 4),
    ("transfer", 4),
    ("diff", 4),
    ("cli", 5),
    // Entry points for the fuzz targets (fuzz/): may reach anything, used by nothing.
    ("fuzzing", 6),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The top-level modules a path prefix (`crate::`, or `super::` where that is the crate root)
/// reaches in the code of `text` (comment lines skipped), with line numbers. Grouped imports
/// (`use crate::{kit::x, trust::y}`, over several lines too) name each group member.
fn references(text: &str, root_prefixes: &[&str]) -> Vec<(usize, String)> {
    let code: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect();
    let mut out = Vec::new();
    for prefix in root_prefixes {
        for (n, line) in code.iter().enumerate() {
            let mut rest = *line;
            while let Some(i) = rest.find(prefix) {
                let before = rest[..i].chars().next_back();
                let after = &rest[i + prefix.len()..];
                rest = after;
                // `self::super::` or `foo_crate::` are not the crate root.
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                if let Some(group) = after.strip_prefix('{') {
                    let joined: String = std::iter::once(group)
                        .chain(code[n + 1..].iter().copied())
                        .collect::<Vec<_>>()
                        .join(" ");
                    for name in group_heads(&joined) {
                        out.push((n + 1, name));
                    }
                } else {
                    let name = ident(after);
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            }
        }
    }
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect()
}

/// The first path segment of each member of a `{…}` group (`text` starts after the `{`).
fn group_heads(text: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut at_start = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_start = true,
            c if c.is_whitespace() => {}
            _ if at_start && depth == 0 => {
                at_start = false;
                let name = ident(&text[i..]);
                if !name.is_empty() && name != "self" {
                    heads.push(name);
                }
            }
            _ => {}
        }
    }
    heads
}

#[test]
fn every_module_imports_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut uses: BTreeMap<(String, String), usize> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let own = layer(&top).unwrap_or_else(|| panic!("src/{top} has no layer in LAYERS"));
        let text = std::fs::read_to_string(path).unwrap();
        // `super::` is the crate root in `src/x.rs` and `src/x/mod.rs`.
        let at_top = rel.components().count() == 1 || rel.ends_with(format!("{top}/mod.rs"));
        let prefixes: &[&str] = if at_top {
            &["crate::", "super::"]
        } else {
            &["crate::"]
        };
        for (line, name) in references(&text, prefixes) {
            if name == top {
                continue;
            }
            *uses.entry((top.clone(), name.clone())).or_default() += 1;
            match layer(&name) {
                Some(l) if l < own => {}
                Some(l) => violations.push(format!(
                    "src/{}:{line}: {top} (layer {own}) uses {name} (layer {l})",
                    rel.display()
                )),
                None => violations.push(format!(
                    "src/{}:{line}: {top} uses unknown module {name}",
                    rel.display()
                )),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The check sees real imports (it would pass vacuously on an empty scan).
    assert!(uses.contains_key(&("apply".into(), "trust".into())));
    assert!(uses.contains_key(&("trust".into(), "kit".into())));
    for (a, b) in uses.keys() {
        assert!(
            !uses.contains_key(&(b.clone(), a.clone())),
            "{a} and {b} use each other"
        );
    }
}

#[test]
fn the_reference_scan_skips_comments_and_finds_code() {
    let text = "//! see [`crate::cli`]\nuse crate::kit::path::KitPath;\n    let x = crate::util::read_full(r);\n";
    assert_eq!(
        references(text, &["crate::"]),
        vec![(2, "kit".to_owned()), (3, "util".to_owned())]
    );
    let grouped = "use crate::{\n    kit::{a, b},\n    trust::verify::X,\n};\nuse super::cli::Y;\n";
    assert_eq!(
        references(grouped, &["crate::", "super::"]),
        vec![
            (1, "kit".to_owned()),
            (1, "trust".to_owned()),
            (5, "cli".to_owned())
        ]
    );
}
