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
    ("sql", 0),
    ("sbom", 0),
    ("report", 0),
    ("kit", 1),
    ("trust", 2),
    ("migrate", 2),
    ("store", 2),
    ("build", 3),
    ("apply", 3),
    ("cli", 4),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// `crate::NAME` references in the code of `text` (comment lines skipped), with line numbers.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
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
        for (line, name) in references(&text) {
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
        references(text),
        vec![(2, "kit".to_owned()), (3, "util".to_owned())]
    );
}
