//! SHA256SUMS, the signed statement's subjects and the manifest must describe the same files
//! with the same digests; SHA256SUMS must also cover `offkit-layout` and `manifest.json` as read.
//! No two paths may collide on a case-insensitive file system.

use std::collections::{BTreeMap, HashMap};

use crate::kit::dsse::Subject;
use crate::kit::layout::{LAYOUT, MANIFEST, SUMS};
use crate::kit::manifest::Manifest;
use crate::kit::reader::RawHeader;
use crate::kit::sums::{SumLine, SumsError};
use crate::trust::failure::{Failure, FailureKind as K};

pub(super) fn sums_failure(e: SumsError) -> Failure {
    let kind = match &e {
        SumsError::BadPath { source, .. } if source.is_non_utf8() => K::NonUtf8Path,
        SumsError::BadPath { .. } => K::UnsafePath,
        SumsError::Duplicate { .. } => K::DuplicateEntry,
        _ => K::MalformedSums,
    };
    Failure::at(kind, SUMS, e.to_string())
}

/// SHA256SUMS must list exactly the signed statement's subjects: with that, SHA256SUMS is
/// authenticated whoever signed its detached signature.
pub(super) fn sums_match_subjects(subjects: &[Subject], sums: &[SumLine]) -> Result<(), Failure> {
    let from_sums = sum_map(sums);
    let mut from_subjects: BTreeMap<&str, &str> = BTreeMap::new();
    for s in subjects {
        if from_subjects.insert(&s.name, &s.digest.sha256).is_some() {
            return Err(Failure::at(
                K::SubjectMismatch,
                &s.name,
                format!("{} is a subject twice", s.name),
            ));
        }
    }
    if let Some(name) = first_difference(&from_sums, &from_subjects) {
        return Err(Failure::at(
            K::SubjectMismatch,
            name,
            format!("{name}: SHA256SUMS and the signed statement's subjects disagree"),
        ));
    }
    Ok(())
}

/// `offkit-layout` and `manifest.json` as read must have the digests the (authenticated)
/// SHA256SUMS gives them; checked before `manifest.json` is parsed, so that no unauthenticated
/// byte is.
pub(super) fn header_digests(header: &RawHeader, sums: &[SumLine]) -> Result<(), Failure> {
    let from_sums = sum_map(sums);
    for (name, entry, kind) in [
        (LAYOUT, &header.layout, K::DigestMismatch),
        (MANIFEST, &header.manifest, K::ManifestMismatch),
    ] {
        match from_sums.get(name) {
            Some(d) if entry.sha256 == *d => {}
            Some(_) => {
                return Err(Failure::at(
                    kind,
                    name,
                    format!("{name} does not match its SHA-256 in SHA256SUMS"),
                ));
            }
            None => {
                return Err(Failure::at(
                    K::ManifestMismatch,
                    name,
                    format!("{name} is not listed in SHA256SUMS"),
                ));
            }
        }
    }
    Ok(())
}

/// The manifest must list exactly SHA256SUMS's payload files, with the same digests, and no two
/// paths may collide on a case-insensitive file system.
pub(super) fn manifest_matches_sums(manifest: &Manifest, sums: &[SumLine]) -> Result<(), Failure> {
    let mut from_manifest: BTreeMap<&str, &str> = BTreeMap::new();
    for f in manifest.files() {
        if from_manifest
            .insert(f.path.as_str(), f.sha256.as_str())
            .is_some()
        {
            return Err(Failure::at(
                K::DuplicateEntry,
                f.path.as_str(),
                format!("{} appears twice in the manifest", f.path),
            ));
        }
    }
    let payload_sums: BTreeMap<&str, &str> = sum_map(sums)
        .into_iter()
        .filter(|(k, _)| *k != LAYOUT && *k != MANIFEST)
        .collect();
    if let Some(name) = first_difference(&payload_sums, &from_manifest) {
        return Err(Failure::at(
            K::ManifestMismatch,
            name,
            format!("{name}: SHA256SUMS and the manifest disagree"),
        ));
    }
    let mut folded: HashMap<String, &str> = HashMap::new();
    for l in sums {
        if let Some(other) = folded.insert(l.path.case_fold(), l.path.as_str()) {
            return Err(Failure::at(
                K::CaseCollision,
                l.path.as_str(),
                format!(
                    "{other} and {} collide on case-insensitive file systems",
                    l.path
                ),
            ));
        }
    }
    Ok(())
}

fn sum_map(sums: &[SumLine]) -> BTreeMap<&str, &str> {
    sums.iter()
        .map(|l| (l.path.as_str(), l.sha256.as_str()))
        .collect()
}

fn first_difference<'a>(
    a: &BTreeMap<&'a str, &str>,
    b: &BTreeMap<&'a str, &str>,
) -> Option<&'a str> {
    a.iter()
        .find(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| *k)
        .or_else(|| b.keys().find(|k| !a.contains_key(*k)).copied())
}
