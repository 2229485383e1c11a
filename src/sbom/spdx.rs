//! The kit's own SPDX 2.3 JSON document (SPDX specification v2.3).
//!
//! What the SPDX project's validator (`pyspdxtools -i`) requires and this module writes: the
//! document header (§6: `spdxVersion`, `dataLicense` CC0-1.0, `SPDXID` SPDXRef-DOCUMENT, `name`,
//! `documentNamespace`, `creationInfo`), one package for the kit (§7) with `filesAnalyzed` and its
//! `packageVerificationCode` (§7.9), one file entry per payload file (§8) with SHA1 and SHA256
//! checksums (§8.4: SHA1 is mandatory), and relationships (§11): the document DESCRIBES the
//! package, the package CONTAINS each file. The output is a pure function of its input, so it is
//! reproducible.

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// A file the SBOM lists.
#[derive(Debug, Clone)]
pub struct SbomFile<'a> {
    /// Path in the kit.
    pub path: &'a str,
    /// Lowercase hex SHA-256.
    pub sha256: &'a str,
    /// Lowercase hex SHA-1.
    pub sha1: &'a str,
}

/// What the document describes.
#[derive(Debug, Clone)]
pub struct SbomInput<'a> {
    /// Kit name.
    pub name: &'a str,
    /// Kit version.
    pub version: &'a str,
    /// RFC 3339 creation time, UTC, seconds precision (`YYYY-MM-DDThh:mm:ssZ`).
    pub created: &'a str,
    /// The offkit version writing it.
    pub tool_version: &'a str,
    /// Files, sorted by path.
    pub files: Vec<SbomFile<'a>>,
}

const PACKAGE_ID: &str = "SPDXRef-Package-kit";

/// SPDX 2.3 §7.9: the verification code is the SHA1 of the concatenated, ascending-sorted,
/// lowercase hex SHA1 values of the package's files.
pub fn package_verification_code(sha1s: &[&str]) -> String {
    let mut sorted = sha1s.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for s in sorted {
        h.update(s.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The document as pretty JSON bytes with a trailing newline.
pub fn generate(input: &SbomInput<'_>) -> Vec<u8> {
    let mut namespace_hash = sha2::Sha256::new();
    for f in &input.files {
        sha2::Digest::update(&mut namespace_hash, f.path.as_bytes());
        sha2::Digest::update(&mut namespace_hash, f.sha256.as_bytes());
    }
    let namespace = format!(
        "https://offkit.dev/spdx/{}/{}/{}",
        input.name,
        input.version,
        hex::encode(sha2::Digest::finalize(namespace_hash))
    );
    let files: Vec<Value> = input
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            json!({
                "fileName": format!("./{}", f.path),
                "SPDXID": format!("SPDXRef-File-{}", i + 1),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": f.sha1},
                    {"algorithm": "SHA256", "checksumValue": f.sha256},
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            })
        })
        .collect();
    let mut package = json!({
        "SPDXID": PACKAGE_ID,
        "name": input.name,
        "versionInfo": input.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": !input.files.is_empty(),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "ARCHIVE",
        "comment": "An offkit offline kit: database migrations, rollback SQL, seed objects and SBOMs.",
    });
    if !input.files.is_empty() {
        let sha1s: Vec<&str> = input.files.iter().map(|f| f.sha1).collect();
        package["packageVerificationCode"] =
            json!({"packageVerificationCodeValue": package_verification_code(&sha1s)});
    }
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": PACKAGE_ID,
    })];
    relationships.extend((1..=input.files.len()).map(|i| {
        json!({
            "spdxElementId": PACKAGE_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": format!("SPDXRef-File-{i}"),
        })
    }));
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("offkit-kit-{}-{}", input.name, input.version),
        "documentNamespace": namespace,
        "creationInfo": {
            "created": input.created,
            "creators": [format!("Tool: offkit-{}", input.tool_version)],
        },
        "packages": [package],
        "files": files,
        "relationships": relationships,
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_code_is_order_independent() {
        let a = package_verification_code(&["bb", "aa"]);
        let b = package_verification_code(&["aa", "bb"]);
        assert_eq!(a, b);
        assert_eq!(a, hex::encode(Sha1::digest(b"aabb")));
    }

    #[test]
    fn document_lists_files_with_both_checksums() {
        let input = SbomInput {
            name: "k",
            version: "1.0.0",
            created: "2026-01-01T00:00:00Z",
            tool_version: "0.1.0",
            files: vec![SbomFile {
                path: "seeds/a.json",
                sha256: "00",
                sha1: "11",
            }],
        };
        let doc: Value = serde_json::from_slice(&generate(&input)).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["files"][0]["fileName"], "./seeds/a.json");
        assert_eq!(doc["files"][0]["checksums"][0]["algorithm"], "SHA1");
        assert_eq!(doc["relationships"][0]["relationshipType"], "DESCRIBES");
        assert_eq!(generate(&input), generate(&input));
    }
}
