//! Verification failures: one kind per way a kit can be wrong, named in JSON reports
//! (`"kind": "digest-mismatch"`) and documented in docs/FORMAT.md ("Failure kinds").

use serde::Serialize;

use crate::kit::path::printable;
use crate::kit::reader::ReadError;

/// What kind of failure; the kebab-case names are a stable contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureKind {
    /// `offkit-layout`, manifest schema, payload type or predicate type unknown.
    UnknownFormat,
    /// A JSON header entry does not parse or has unexpected fields.
    MalformedJson,
    /// SHA256SUMS is not in `sha256sum` format.
    MalformedSums,
    /// A payload entry precedes the signed header.
    PayloadBeforeHeader,
    /// Header entries out of order.
    HeaderOrder,
    /// No signature at all.
    MissingSignature,
    /// A signature by a trusted key does not verify.
    BadSignature,
    /// Signatures only by keys the site does not trust.
    UntrustedSigner,
    /// A signature by a revoked key.
    RevokedKey,
    /// Fewer valid distinct trusted signatures than the threshold.
    ThresholdNotMet,
    /// DSSE subjects and SHA256SUMS disagree.
    SubjectMismatch,
    /// The manifest disagrees with SHA256SUMS or the signed statement.
    ManifestMismatch,
    /// The manifest breaks a layout rule.
    InvalidManifest,
    /// A path that could escape or is otherwise unsafe.
    UnsafePath,
    /// A name that is not UTF-8.
    NonUtf8Path,
    /// A symbolic link entry.
    Symlink,
    /// A hard link entry.
    HardLink,
    /// A device or FIFO entry.
    SpecialFile,
    /// A directory, sparse or other non-regular entry.
    UnsupportedEntry,
    /// The same path twice.
    DuplicateEntry,
    /// Two paths that differ only in case.
    CaseCollision,
    /// An entry not listed in SHA256SUMS.
    ExtraFile,
    /// A listed file absent from the archive.
    MissingFile,
    /// Payload entries out of SHA256SUMS order.
    EntryOrder,
    /// An entry's size differs from the manifest's.
    SizeMismatch,
    /// An entry's SHA-256 differs from SHA256SUMS.
    DigestMismatch,
    /// An entry beyond the reader's size limit.
    OversizedEntry,
    /// The archive ends early.
    Truncated,
    /// Invalid zstd data.
    CorruptCompression,
    /// More decompressed data than declared.
    DecompressionBomb,
    /// Data after the end of the archive.
    TrailingData,
    /// A malformed tar header.
    MalformedArchive,
    /// The compressed layer is not what `offkit build` writes: a skippable frame, a frame
    /// without content size or checksum, a dictionary.
    NonCanonicalCompression,
    /// A tar header (mode, owner, names, time, pax records, …) differs from the one `offkit
    /// build` writes for that entry.
    NonCanonicalEntry,
    /// A signature entry is not in the form `offkit build` and `offkit sign` write: unknown or
    /// reformatted DSSE envelope fields, a detached signature that is not 64 bytes, co-signer
    /// entries out of keyid order.
    NonCanonicalSignature,
    /// A trust version the kit carries (`trust/N.root.json`) does not follow the site's trust
    /// store: forged, skipped, malformed, or another version under a number the store holds.
    UntrustedRotation,
    /// The kit's SLSA provenance (`provenance.dsse.json`) is malformed, not signed by a key that
    /// signed the kit, or not about this kit's manifest.
    BadProvenance,
    /// A Sigstore bundle the kit declares does not verify offline against the site's pinned
    /// trusted root, is not about its declared subject, or was signed by an identity the site's
    /// policy does not accept for its kind.
    BadAttestation,
    /// The site's policy requires an attestation (a kind, about a file or digest) the kit does not
    /// carry verified.
    MissingAttestation,
    /// The kit's `expires` time has passed.
    Expired,
    /// A part of a split kit is missing, truncated, swapped, stale or from another kit (its
    /// size or a frame differs from the signed frame index), or the kit has no frame index.
    PartMismatch,
    /// A seed page (`index/seeds/N.sha256`, an `offkit/v2` kit) is not the signed one or breaks
    /// the pages' rules (form, order, counts, the sizes of its seeds).
    BadPage,
    /// Reading the kit failed.
    IoError,
    /// Writing extracted data failed.
    WriteError,
    /// The kit file changed while it was being verified (its header read twice differs).
    ChangedDuringVerification,
    /// A file of a verified kit changed (or was replaced) in its folder after verification.
    ChangedAfterVerification,
    /// A file of a verified kit was removed from its folder after verification.
    RemovedAfterVerification,
    /// A file that is not part of the kit appeared in the kit's folder after verification.
    AddedAfterVerification,
    /// offkit itself went wrong (a bug): please report it.
    Internal,
}

impl FailureKind {
    /// The kebab-case name.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// One reason a kit was refused.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// The entry it concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// A sentence saying what is wrong.
    pub message: String,
}

impl Failure {
    /// A failure about an entry. Control characters in the entry and the message (which may quote
    /// bytes of the kit) are escaped, so that no kit can write to a terminal through a refusal.
    pub fn at(kind: FailureKind, entry: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            entry: Some(printable(&entry.into())),
            message: printable(&message.into()),
        }
    }

    /// A failure about the kit as a whole.
    pub fn kit(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            entry: None,
            message: printable(&message.into()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.kind.as_str(), self.message)
    }
}

impl From<ReadError> for Failure {
    fn from(e: ReadError) -> Failure {
        use FailureKind as K;
        let message = e.to_string();
        let (kind, entry) = match &e {
            ReadError::UnknownFormat { .. } => (K::UnknownFormat, Some("offkit-layout".to_owned())),
            ReadError::PayloadBeforeHeader { entry, .. } => {
                (K::PayloadBeforeHeader, Some(entry.clone()))
            }
            ReadError::HeaderOrder { entry, .. } => (K::HeaderOrder, Some(entry.clone())),
            ReadError::MissingSignature => (K::MissingSignature, Some("SHA256SUMS.sig".to_owned())),
            ReadError::UnsafePath { entry, .. } => (K::UnsafePath, Some(entry.clone())),
            ReadError::NonUtf8Path { .. } => (K::NonUtf8Path, None),
            ReadError::Symlink { entry, .. } => (K::Symlink, Some(entry.clone())),
            ReadError::HardLink { entry, .. } => (K::HardLink, Some(entry.clone())),
            ReadError::SpecialFile { entry, .. } => (K::SpecialFile, Some(entry.clone())),
            ReadError::UnsupportedEntry { entry, .. } => (K::UnsupportedEntry, Some(entry.clone())),
            ReadError::OversizedEntry { entry, .. } => (K::OversizedEntry, Some(entry.clone())),
            ReadError::Truncated { .. } => (K::Truncated, None),
            ReadError::CorruptCompression { .. } => (K::CorruptCompression, None),
            ReadError::DecompressionBomb { .. } => (K::DecompressionBomb, None),
            ReadError::TrailingData { .. } => (K::TrailingData, None),
            ReadError::MalformedTar { .. } => (K::MalformedArchive, None),
            ReadError::NonCanonicalCompression { .. } => (K::NonCanonicalCompression, None),
            ReadError::NonCanonicalEntry { entry, .. } => {
                (K::NonCanonicalEntry, Some(entry.clone()))
            }
            ReadError::NonCanonicalSignature { entry, .. } => {
                (K::NonCanonicalSignature, Some(entry.clone()))
            }
            ReadError::Io(_) => (K::IoError, None),
            ReadError::Part(p) => (K::PartMismatch, Some(p.part.clone())),
            ReadError::ChangedWhileReading { entry } => {
                (K::ChangedDuringVerification, Some(entry.clone()))
            }
            ReadError::Sink { entry, .. } => (K::WriteError, Some(entry.clone())),
        };
        Failure {
            kind,
            entry: entry.map(|e| printable(&e)),
            message: printable(&message),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_failure_kind_is_in_the_format_document() {
        use FailureKind as K;
        // Listing every kind here without a wildcard: a new kind fails to compile until added.
        fn listed(k: K) {
            match k {
                K::UnknownFormat
                | K::MalformedJson
                | K::MalformedSums
                | K::PayloadBeforeHeader
                | K::HeaderOrder
                | K::MissingSignature
                | K::BadSignature
                | K::UntrustedSigner
                | K::RevokedKey
                | K::ThresholdNotMet
                | K::SubjectMismatch
                | K::ManifestMismatch
                | K::InvalidManifest
                | K::UnsafePath
                | K::NonUtf8Path
                | K::Symlink
                | K::HardLink
                | K::SpecialFile
                | K::UnsupportedEntry
                | K::DuplicateEntry
                | K::CaseCollision
                | K::ExtraFile
                | K::MissingFile
                | K::EntryOrder
                | K::SizeMismatch
                | K::DigestMismatch
                | K::OversizedEntry
                | K::Truncated
                | K::CorruptCompression
                | K::DecompressionBomb
                | K::TrailingData
                | K::MalformedArchive
                | K::NonCanonicalCompression
                | K::NonCanonicalEntry
                | K::NonCanonicalSignature
                | K::UntrustedRotation
                | K::BadProvenance
                | K::BadAttestation
                | K::MissingAttestation
                | K::Expired
                | K::PartMismatch
                | K::BadPage
                | K::IoError
                | K::WriteError
                | K::ChangedDuringVerification
                | K::ChangedAfterVerification
                | K::RemovedAfterVerification
                | K::AddedAfterVerification
                | K::Internal => {}
            }
        }
        let all = [
            K::UnknownFormat,
            K::MalformedJson,
            K::MalformedSums,
            K::PayloadBeforeHeader,
            K::HeaderOrder,
            K::MissingSignature,
            K::BadSignature,
            K::UntrustedSigner,
            K::RevokedKey,
            K::ThresholdNotMet,
            K::SubjectMismatch,
            K::ManifestMismatch,
            K::InvalidManifest,
            K::UnsafePath,
            K::NonUtf8Path,
            K::Symlink,
            K::HardLink,
            K::SpecialFile,
            K::UnsupportedEntry,
            K::DuplicateEntry,
            K::CaseCollision,
            K::ExtraFile,
            K::MissingFile,
            K::EntryOrder,
            K::SizeMismatch,
            K::DigestMismatch,
            K::OversizedEntry,
            K::Truncated,
            K::CorruptCompression,
            K::DecompressionBomb,
            K::TrailingData,
            K::MalformedArchive,
            K::NonCanonicalCompression,
            K::NonCanonicalEntry,
            K::NonCanonicalSignature,
            K::UntrustedRotation,
            K::BadProvenance,
            K::BadAttestation,
            K::MissingAttestation,
            K::Expired,
            K::PartMismatch,
            K::BadPage,
            K::IoError,
            K::WriteError,
            K::ChangedDuringVerification,
            K::ChangedAfterVerification,
            K::RemovedAfterVerification,
            K::AddedAfterVerification,
            K::Internal,
        ];
        let format = include_str!("../../docs/FORMAT.md");
        let table = &format[format.find("## 10. Failure kinds").unwrap()..];
        for k in all {
            listed(k);
            assert!(
                table.contains(&format!("`{}`", k.as_str())),
                "{} is not in docs/FORMAT.md §10",
                k.as_str()
            );
        }
    }
    use super::*;

    #[test]
    fn control_characters_never_reach_a_failure() {
        let f = Failure::at(
            FailureKind::ExtraFile,
            "x\u{1b}[2Jy",
            "\u{1b}[32mVERIFIED\u{1b}[0m",
        );
        assert!(!f.to_string().contains('\u{1b}'), "{f}");
        assert!(!f.entry.unwrap().contains('\u{1b}'));
        let f = Failure::kit(FailureKind::Expired, "a\rb");
        assert!(!f.message.contains('\r'));
    }
}
