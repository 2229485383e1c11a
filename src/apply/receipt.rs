//! Site-signed apply receipts: what a site applied, signed by the site, for the vendor.
//!
//! A receipt is a DSSE envelope (the kit format's, [`crate::kit::dsse`]) over an in-toto
//! Statement v1. Its subjects are the kit file (`NAME-VERSION.kit.tar.zst`, by SHA-256, when the
//! attempt read the payload) and the kit's signed manifest (`NAME-VERSION/manifest.json`); its
//! predicate ([`RECEIPT_PREDICATE_TYPE`]) is the ledger entry of the attempt, the database it
//! was applied to (secrets removed) and, when known, the whole apply report (each migration with
//! its checksum and duration, each seed object put, skipped or in conflict), whose SHA-256 must be
//! the one the ledger recorded. `offkit receipt verify` checks a receipt with the site's public
//! keys, any DSSE implementation can too (the tests use python-securesystemslib's).

use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

use crate::apply::ledger::Row;
use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::Sha256Hex;
use crate::kit::dsse::{Envelope, Statement, Subject, SubjectDigest, pae};
use crate::kit::layout::{PAYLOAD_TYPE, STATEMENT_TYPE};
use crate::kit::names::rfc3339;
use crate::trust::keys::SecretKey;
use crate::trust::policy::TrustPolicy;
use crate::trust::sign::sign_envelope;
use crate::trust::verify::Signer;
use crate::trust::verify::signatures::evaluate;

/// The in-toto `predicateType` of a receipt.
pub const RECEIPT_PREDICATE_TYPE: &str = "https://offkit.dev/apply-receipt/v1";
/// Largest receipt read.
pub const MAX_RECEIPT_BYTES: u64 = 64 << 20;

/// Why a receipt could not be made or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The apply report given does not have the digest the ledger recorded.
    #[error(
        "the report {path} has SHA-256 {found}; ledger entry #{entry} recorded {recorded}: it is another apply's report"
    )]
    ReportMismatch {
        /// The report file.
        path: String,
        /// The ledger entry.
        entry: i64,
        /// Its digest.
        found: String,
        /// The ledger's.
        recorded: String,
    },
    /// The receipt is not a DSSE envelope over an offkit receipt statement.
    #[error("{path}: not an offkit apply receipt: {message}")]
    Malformed {
        /// The receipt file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The receipt's signatures do not satisfy the trust given.
    #[error("{path}: {kind}: {message}")]
    Untrusted {
        /// The receipt file.
        path: String,
        /// The failure kind (as for kits: `bad-signature`, `untrusted-signer`, …).
        kind: String,
        /// Why.
        message: String,
    },
    /// The kit file given is not the one the receipt names.
    #[error("{kit}: SHA-256 {found} is not the kit this receipt is about ({expected}, {name})")]
    OtherKit {
        /// The kit file.
        kit: String,
        /// Its digest.
        found: String,
        /// The receipt's.
        expected: String,
        /// The receipt's kit name.
        name: String,
    },
    /// The receipt does not name the kit file (the attempt stopped before reading it).
    #[error(
        "{path}: the receipt names no kit file digest (the attempt stopped before the kit was read); it cannot be matched to {kit}"
    )]
    NoKitDigest {
        /// The receipt file.
        path: String,
        /// The kit file.
        kit: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ExitCoded for ReceiptError {
    fn exit(&self) -> Exit {
        match self {
            ReceiptError::Io { .. } => Exit::Io,
            ReceiptError::ReportMismatch { .. } => Exit::Usage,
            _ => Exit::Verification,
        }
    }
}

#[derive(Serialize)]
struct Predicate<'a> {
    ledger_entry: &'a Row,
    database: &'a str,
    issued_at: String,
    report: Option<&'a Value>,
}

/// The kit file name a ledger entry stands for.
fn kit_file_name(row: &Row) -> String {
    format!("{}-{}.kit.tar.zst", row.kit_name, row.kit_version)
}

/// A receipt for ledger entry `row` of the database `database` (redacted), with the apply report
/// when known (its SHA-256 must be the row's; checked by the caller with [`check_report`]),
/// signed by `keys`; returns the envelope's bytes.
pub fn issue(row: &Row, database: &str, report: Option<&Value>, keys: &[SecretKey]) -> Vec<u8> {
    let mut subject = Vec::new();
    if !row.kit_sha256.is_empty() {
        subject.push(Subject {
            name: kit_file_name(row),
            digest: SubjectDigest {
                sha256: row.kit_sha256.clone(),
            },
        });
    }
    subject.push(Subject {
        name: format!("{}-{}/manifest.json", row.kit_name, row.kit_version),
        digest: SubjectDigest {
            sha256: row.manifest_sha256.clone(),
        },
    });
    let issued_at = time::OffsetDateTime::from(SystemTime::now());
    let statement = Statement {
        type_: STATEMENT_TYPE.to_owned(),
        subject,
        predicate_type: RECEIPT_PREDICATE_TYPE.to_owned(),
        predicate: Predicate {
            ledger_entry: row,
            database,
            issued_at: rfc3339(issued_at),
            report,
        },
    };
    sign_envelope(&statement.to_bytes(), keys).to_bytes()
}

/// Reads the apply report at `path` and checks it is the one ledger entry `row` recorded.
pub fn check_report(row: &Row, path: &Path) -> Result<Value, ReceiptError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReceiptError::Io {
        path: shown.clone(),
        source,
    })?;
    let found = crate::util::sha256_hex(&bytes);
    let recorded = row.report_sha256.clone().unwrap_or_default();
    if found != recorded {
        return Err(ReceiptError::ReportMismatch {
            path: shown,
            entry: row.id,
            found,
            recorded,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| ReceiptError::Malformed {
        path: shown,
        message: format!("the report is not JSON: {e}"),
    })
}

/// A receipt whose signatures satisfy the trust given.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedReceipt {
    /// The site keys whose signatures counted.
    pub signers: Vec<Signer>,
    /// The kit file name and SHA-256, when the attempt read the kit (JSON: `{"file", "sha256"}`).
    #[serde(serialize_with = "kit_json")]
    pub kit: Option<(String, String)>,
    /// The kit's manifest SHA-256.
    pub manifest_sha256: String,
    /// The signed predicate: `ledger_entry`, `database`, `issued_at`, `report`.
    pub predicate: Value,
}

fn kit_json<S: serde::Serializer>(kit: &Option<(String, String)>, s: S) -> Result<S::Ok, S::Error> {
    kit.as_ref()
        .map(|(file, sha256)| serde_json::json!({ "file": file, "sha256": sha256 }))
        .serialize(s)
}

impl VerifiedReceipt {
    /// A field of the ledger entry, as text.
    pub fn entry(&self, field: &str) -> String {
        match &self.predicate["ledger_entry"][field] {
            Value::String(s) => crate::kit::path::printable_text(s),
            Value::Null => String::new(),
            v => crate::kit::path::printable_text(&v.to_string()),
        }
    }
}

/// Verifies the receipt at `path` against the site's keys in `policy` (key validity at `now`).
pub fn verify(
    path: &Path,
    policy: &TrustPolicy,
    now: time::OffsetDateTime,
) -> Result<VerifiedReceipt, ReceiptError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let malformed = |message: String| ReceiptError::Malformed {
        path: shown.clone(),
        message,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_RECEIPT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|source| ReceiptError::Io {
            path: shown.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_RECEIPT_BYTES {
        return Err(malformed(format!("larger than {MAX_RECEIPT_BYTES} bytes")));
    }
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("DSSE envelope: {e}")))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(malformed(format!("payloadType is not {PAYLOAD_TYPE:?}")));
    }
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| malformed("the payload is not standard Base64".into()))?;
    let evaluation = evaluate(
        &envelope.signatures,
        &pae(&envelope.payload_type, &payload),
        policy,
        now,
    )
    .map_err(|f| ReceiptError::Untrusted {
        path: shown.clone(),
        kind: f.kind.as_str(),
        message: f.message,
    })?;
    // Authenticated: now parse.
    let statement: Statement<Value> = serde_json::from_slice(&payload)
        .map_err(|e| malformed(format!("in-toto statement: {e}")))?;
    if statement.type_ != STATEMENT_TYPE || statement.predicate_type != RECEIPT_PREDICATE_TYPE {
        return Err(malformed(format!(
            "statement type / predicate type are not {STATEMENT_TYPE} / {RECEIPT_PREDICATE_TYPE}"
        )));
    }
    let mut kit = None;
    let mut manifest_sha256 = None;
    for s in statement.subject {
        if s.name.ends_with(".kit.tar.zst") && kit.is_none() {
            kit = Some((s.name, s.digest.sha256));
        } else if s.name.ends_with("/manifest.json") {
            manifest_sha256 = Some(s.digest.sha256);
        }
    }
    Ok(VerifiedReceipt {
        signers: evaluation.signers,
        kit,
        manifest_sha256: manifest_sha256.ok_or_else(|| malformed("no manifest subject".into()))?,
        predicate: statement.predicate,
    })
}

/// Checks that the kit file at `kit` is the one the receipt is about.
pub fn check_kit(receipt: &VerifiedReceipt, path: &Path, kit: &Path) -> Result<(), ReceiptError> {
    let shown = kit.display().to_string();
    let Some((name, expected)) = &receipt.kit else {
        return Err(ReceiptError::NoKitDigest {
            path: path.display().to_string(),
            kit: shown,
        });
    };
    let found = Sha256Hex::of_file(kit).map_err(|source| ReceiptError::Io {
        path: shown.clone(),
        source,
    })?;
    if found.as_str() != expected {
        return Err(ReceiptError::OtherKit {
            kit: shown,
            found: found.to_string(),
            expected: expected.clone(),
            name: crate::kit::path::printable_text(name),
        });
    }
    Ok(())
}
