//! The kit's SLSA provenance (`provenance.dsse.json`, docs/FORMAT.md §4): checked once the kit's
//! own envelope is authenticated. It must be in the form offkit writes, signed by at least one
//! trusted key that counted for the kit, about exactly this kit's `manifest.json`, and say it was
//! built by `offkit build`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

use crate::kit::digest::Sha256Hex;
use crate::kit::dsse::{Envelope, Statement, pae};
use crate::kit::layout::{
    MANIFEST, OFFKIT_BUILD_TYPE, PAYLOAD_TYPE, PROVENANCE, SLSA_PROVENANCE_TYPE, STATEMENT_TYPE,
};
use crate::trust::failure::{Failure, FailureKind as K};
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::Signer;
use crate::trust::verify::signatures::check;

/// What a verified provenance says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// `runDetails.builder.id`.
    pub builder_id: String,
    /// `runDetails.builder.version.offkit`.
    pub builder_version: String,
    /// `buildDefinition.buildType`.
    pub build_type: String,
    /// SHA-256 of the kit source tree (`resolvedDependencies[0].digest.sha256`).
    pub source_sha256: String,
    /// SHA-256 of the `kit.toml` the kit was built from.
    pub kit_toml_sha256: String,
    /// Keyids of the trusted keys that signed it (and counted for the kit).
    pub signed_by: Vec<String>,
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::at(K::BadProvenance, PROVENANCE, message)
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(crate::kit::path::printable_text)
        .unwrap_or_default()
}

/// Checks the provenance `bytes` of a kit whose `manifest.json` has `manifest_sha256` and whose
/// envelope was signed by `signers` under `policy`.
pub fn check_provenance(
    bytes: &[u8],
    policy: &TrustPolicy,
    manifest_sha256: &Sha256Hex,
    signers: &[Signer],
) -> Result<Provenance, Failure> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a DSSE envelope: {e}")))?;
    if envelope.to_bytes() != bytes {
        return Err(Failure::at(
            K::NonCanonicalSignature,
            PROVENANCE,
            format!("{PROVENANCE} is not in the form offkit writes"),
        ));
    }
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(bad(format!("payloadType is not {PAYLOAD_TYPE:?}")));
    }
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| bad("the payload is not standard Base64"))?;
    let checked = check(
        &envelope.signatures,
        &pae(&envelope.payload_type, &payload),
        policy,
    )
    .map_err(|f| bad(format!("its signatures: {}", f.message)))?;
    let signed_by: Vec<String> = checked
        .verified
        .iter()
        .filter(|(_, k)| signers.iter().any(|s| &s.keyid == k))
        .map(|(_, k)| k.to_string())
        .collect();
    if signed_by.is_empty() {
        return Err(bad("not signed by any trusted key that signed the kit"));
    }
    let statement: Statement<Value> = serde_json::from_slice(&payload)
        .map_err(|e| bad(format!("not an in-toto statement: {e}")))?;
    if statement.type_ != STATEMENT_TYPE || statement.predicate_type != SLSA_PROVENANCE_TYPE {
        return Err(bad(format!(
            "not a SLSA provenance v1 statement ({STATEMENT_TYPE}, {SLSA_PROVENANCE_TYPE})"
        )));
    }
    match statement.subject.as_slice() {
        [s] if s.name == MANIFEST && s.digest.sha256 == manifest_sha256.as_str() => {}
        _ => {
            return Err(bad(format!(
                "its subject is not this kit's {MANIFEST} (SHA-256 {manifest_sha256})"
            )));
        }
    }
    let p = &statement.predicate;
    let build_type = text(p, "/buildDefinition/buildType");
    if build_type != OFFKIT_BUILD_TYPE {
        return Err(bad(format!(
            "buildType {build_type:?} is not {OFFKIT_BUILD_TYPE:?}"
        )));
    }
    Ok(Provenance {
        builder_id: text(p, "/runDetails/builder/id"),
        builder_version: text(p, "/runDetails/builder/version/offkit"),
        build_type,
        source_sha256: text(p, "/buildDefinition/resolvedDependencies/0/digest/sha256"),
        kit_toml_sha256: text(p, "/buildDefinition/externalParameters/kitToml/sha256"),
        signed_by,
    })
}
