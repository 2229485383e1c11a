//! The verifier: the only way to obtain a [`VerifiedKit`].
//!
//! One streaming pass over the kit file. The header is read first and authenticated completely
//! before any payload byte is looked at: DSSE signatures over the in-toto statement (threshold of
//! distinct trusted keys), the detached signature over SHA256SUMS, and the agreement of
//! SHA256SUMS, the statement's subjects and the manifest. Then each payload entry is hashed as it
//! streams past and compared with the signed digest; nothing is held in memory but the current
//! buffer. Nothing is written unless the caller passes a sink (extraction), and the caller must
//! discard what a sink wrote when verification fails.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::{self, DSSE, LAYOUT, Limits, MANIFEST, MANIFEST_SCHEMA, SUMS, SUMS_SIG};
use crate::kit::manifest::Manifest;
use crate::kit::path::KitPath;
use crate::kit::reader::{KitReader, RawHeader};
use crate::trust::dsse::{Envelope, Statement, Subject, decode_b64, pae};
use crate::trust::failure::{Failure, FailureKind as K};
use crate::trust::policy::TrustPolicy;
use crate::trust::sums::{self, SumLine, SumsError};

mod manifest_rules;

/// Whether an expired kit is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Refuse kits whose `expires` has passed (the default).
    Enforce,
    /// Accept them (`--allow-expired`); the report says so.
    UnsafeAllowExpired,
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The time signatures, key windows and expiry are judged at.
    pub now: OffsetDateTime,
    /// Expiry handling.
    pub expiry: ExpiryPolicy,
    /// Reader bounds.
    pub limits: Limits,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            now: OffsetDateTime::now_utc(),
            expiry: ExpiryPolicy::Enforce,
            limits: Limits::default(),
        }
    }
}

/// Receives payload data as it is verified (e.g. to extract it). What it wrote must be thrown
/// away if verification fails.
pub trait PayloadSink {
    /// A payload file starts.
    fn begin(&mut self, path: &KitPath, size: u64) -> std::io::Result<()>;
    /// Its next bytes.
    fn write(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// It ended.
    fn end(&mut self) -> std::io::Result<()>;
}

/// A sink that keeps nothing (plain verification).
pub struct Discard;

impl PayloadSink for Discard {
    fn begin(&mut self, _: &KitPath, _: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn end(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A key whose signature counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    /// Its keyid.
    pub keyid: String,
    /// Its name in the trust policy.
    pub name: String,
}

/// A kit that passed verification. Only the verifier constructs it.
#[derive(Debug, Clone)]
pub struct VerifiedKit {
    manifest: Manifest,
    manifest_sha256: String,
    kit_sha256: String,
    kit_size: u64,
    signers: Vec<Signer>,
    warnings: Vec<String>,
    header: RawHeader,
}

impl VerifiedKit {
    /// The authenticated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// SHA-256 of manifest.json.
    pub fn manifest_sha256(&self) -> &str {
        &self.manifest_sha256
    }
    /// SHA-256 of the kit file.
    pub fn kit_sha256(&self) -> &str {
        &self.kit_sha256
    }
    /// Size of the kit file.
    pub fn kit_size(&self) -> u64 {
        self.kit_size
    }
    /// The trusted keys whose signatures counted.
    pub fn signers(&self) -> &[Signer] {
        &self.signers
    }
    /// Things the operator should know that did not fail verification (e.g. an allowed expiry).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The authenticated header entries.
    pub fn header(&self) -> &RawHeader {
        &self.header
    }
}

/// Why a kit was refused: every failure found, with what could be learnt of the kit.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyFailure {
    /// The failures, first found first.
    pub failures: Vec<Failure>,
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.failures.first() {
            Some(first) => write!(f, "kit refused: {first}")?,
            None => write!(f, "kit refused")?,
        }
        if self.failures.len() > 1 {
            write!(f, " (and {} more)", self.failures.len() - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyFailure {}

impl ExitCoded for VerifyFailure {
    fn exit(&self) -> Exit {
        match self.failures.first().map(|f| f.kind) {
            Some(K::IoError | K::WriteError) => Exit::Io,
            _ => Exit::Verification,
        }
    }
}

/// Most failures kept in one report (digest mismatches can be many).
const MAX_FAILURES: usize = 1000;

/// Verifies the kit at `path` against `policy`, passing payload data to `sink`.
pub fn verify_kit(
    path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    sink: &mut dyn PayloadSink,
) -> Result<VerifiedKit, VerifyFailure> {
    let fail = |failures: Vec<Failure>| VerifyFailure { failures };
    let mut reader = KitReader::open(path, opts.limits).map_err(|e| fail(vec![e.into()]))?;
    let header = reader.read_header().map_err(|e| fail(vec![e.into()]))?;
    let auth = authenticate(&header, policy, opts)?;

    // Bound the decompressed size by what the signed manifest declares.
    let payload_bound: u64 = auth
        .manifest
        .files()
        .map(|f| 2048 + f.path.as_str().len() as u64 * 2 + f.size + 511)
        .sum();
    reader.set_total_limit(
        header.header_bytes + payload_bound + 1024 + opts.limits.trailing_zero_bytes,
    );

    let mut failures = Vec::new();
    stream_payload(&mut reader, &auth.manifest, sink, &mut failures);
    let end = if failures.iter().any(|f| is_fatal(f.kind)) {
        None
    } else {
        match reader.finish() {
            Ok(end) => Some(end),
            Err(e) => {
                failures.push(e.into());
                None
            }
        }
    };
    match end {
        Some(end) if failures.is_empty() => Ok(VerifiedKit {
            manifest_sha256: header.manifest.sha256.clone(),
            manifest: auth.manifest,
            kit_sha256: end.sha256,
            kit_size: end.compressed,
            signers: auth.signers,
            warnings: auth.warnings,
            header,
        }),
        _ => Err(fail(failures)),
    }
}

fn is_fatal(kind: K) -> bool {
    !matches!(kind, K::DigestMismatch | K::MissingFile)
}

struct Authenticated {
    manifest: Manifest,
    signers: Vec<Signer>,
    warnings: Vec<String>,
}

/// Authenticates the header: signatures first, then parsing, then agreement of the three lists.
fn authenticate(
    header: &RawHeader,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
) -> Result<Authenticated, VerifyFailure> {
    let fail = |f: Failure| VerifyFailure { failures: vec![f] };
    let mut envelope: Envelope = serde_json::from_slice(&header.dsse.bytes)
        .map_err(|e| fail(Failure::at(K::MalformedJson, DSSE, format!("{DSSE}: {e}"))))?;
    // DSSE protocol, "Verification": reject unless payloadType is the one expected.
    if envelope.payload_type != layout::PAYLOAD_TYPE {
        return Err(fail(Failure::at(
            K::UnknownFormat,
            DSSE,
            format!(
                "payloadType {:?} is not {:?}",
                envelope.payload_type,
                layout::PAYLOAD_TYPE
            ),
        )));
    }
    let payload = envelope
        .payload_bytes()
        .ok_or_else(|| fail(Failure::at(K::MalformedJson, DSSE, "payload is not Base64")))?;
    // The Base64 text is no longer needed: free it before the payload is parsed.
    envelope.payload = String::new();
    let signers = check_signatures(&envelope, &payload, policy, opts.now).map_err(fail)?;
    let mut warnings = Vec::new();
    check_detached(header, &envelope, policy, &mut warnings).map_err(fail)?;

    // Only now, with the payload authenticated, parse it: the type fields first, so that another
    // statement or predicate type is "unknown", not "malformed".
    let malformed = |what: &str, e: serde_json::Error| {
        let entry = if what == MANIFEST { MANIFEST } else { DSSE };
        fail(Failure::at(K::MalformedJson, entry, format!("{what}: {e}")))
    };
    let head: Statement<serde::de::IgnoredAny> =
        serde_json::from_slice(&payload).map_err(|e| malformed("in-toto statement", e))?;
    if head.type_ != layout::STATEMENT_TYPE || head.predicate_type != layout::PREDICATE_TYPE {
        return Err(fail(Failure::at(
            K::UnknownFormat,
            DSSE,
            format!(
                "statement type {:?} / predicate type {:?} unknown",
                head.type_, head.predicate_type
            ),
        )));
    }
    #[derive(serde::Deserialize)]
    struct SchemaOnly {
        schema: Option<String>,
    }
    let schema: SchemaOnly =
        serde_json::from_slice(&header.manifest.bytes).map_err(|e| malformed(MANIFEST, e))?;
    if let Some(schema) = schema.schema
        && schema != MANIFEST_SCHEMA
    {
        return Err(fail(Failure::at(
            K::UnknownFormat,
            MANIFEST,
            format!(
                "manifest schema {schema:?} is unknown (this offkit reads {MANIFEST_SCHEMA:?})"
            ),
        )));
    }
    let manifest: Manifest =
        serde_json::from_slice(&header.manifest.bytes).map_err(|e| malformed(MANIFEST, e))?;
    // Typed, not as JSON value trees: a manifest of 100,000 files parsed twice as trees would
    // cost more memory than the whole verification otherwise needs.
    let Statement {
        subject, predicate, ..
    } = serde_json::from_slice::<Statement<Manifest>>(&payload)
        .map_err(|e| malformed("the signed statement's manifest", e))?;
    if predicate != manifest {
        return Err(fail(Failure::at(
            K::ManifestMismatch,
            MANIFEST,
            "manifest.json differs from the manifest in the signed statement",
        )));
    }
    drop((predicate, payload));
    let sum_lines = sums::parse(&header.sums.bytes).map_err(|e| fail(sums_failure(e)))?;
    check_agreement(header, &subject, &sum_lines, &manifest).map_err(fail)?;
    manifest_rules::check(&manifest).map_err(fail)?;

    if let Some(expires) = &manifest.expires {
        let t = crate::kit::config::parse_time(expires).ok_or_else(|| {
            fail(Failure::at(
                K::InvalidManifest,
                MANIFEST,
                format!("expires {expires:?} is not RFC 3339"),
            ))
        })?;
        if opts.now > t {
            match opts.expiry {
                ExpiryPolicy::Enforce => {
                    return Err(fail(Failure::kit(
                        K::Expired,
                        format!(
                            "the kit expired at {expires}; ask the release team for a fresh kit (or --allow-expired, recorded in reports)"
                        ),
                    )));
                }
                ExpiryPolicy::UnsafeAllowExpired => {
                    warnings.push(format!(
                        "kit expired at {expires}; accepted because of --allow-expired"
                    ));
                }
            }
        }
    }
    Ok(Authenticated {
        manifest,
        signers,
        warnings,
    })
}

/// DSSE protocol, "Verification" with a threshold (`protocol.md`, "Threshold"): count distinct
/// trusted keys whose signature over PAE(payloadType, payload) verifies.
fn check_signatures(
    envelope: &Envelope,
    payload: &[u8],
    policy: &TrustPolicy,
    now: OffsetDateTime,
) -> Result<Vec<Signer>, Failure> {
    if envelope.signatures.is_empty() {
        return Err(Failure::at(
            K::MissingSignature,
            DSSE,
            "the DSSE envelope carries no signature",
        ));
    }
    let message = pae(&envelope.payload_type, payload);
    let mut valid: BTreeMap<String, String> = BTreeMap::new();
    let mut untrusted = Vec::new();
    let mut unusable = Vec::new();
    for (i, s) in envelope.signatures.iter().enumerate() {
        if policy.revoked.contains(&s.keyid) {
            return Err(Failure::at(
                K::RevokedKey,
                DSSE,
                format!("signature {i} is by revoked key {}", s.keyid),
            ));
        }
        let sig = decode_b64(&s.sig).ok_or_else(|| {
            Failure::at(
                K::BadSignature,
                DSSE,
                format!("signature {i} is not Base64"),
            )
        })?;
        // The keyid is only a hint (DSSE envelope.md); an unknown or empty hint tries every key.
        let hinted = policy.key(&s.keyid);
        let found = match hinted {
            Some(k) => k.key.verify(&message, &sig).then_some(k),
            None => policy.keys.iter().find(|k| k.key.verify(&message, &sig)),
        };
        match found {
            Some(k) if policy.revoked.contains(k.key.keyid()) => {
                return Err(Failure::at(
                    K::RevokedKey,
                    DSSE,
                    format!("signature {i} is by revoked key {}", k.key.keyid()),
                ));
            }
            Some(k) => match k.unusable_at(now) {
                Some(why) => unusable.push(why),
                None => {
                    valid.insert(k.key.keyid().to_owned(), k.name.clone());
                }
            },
            None if hinted.is_some() => {
                return Err(Failure::at(
                    K::BadSignature,
                    DSSE,
                    format!(
                        "signature {i} by trusted key {} does not verify: the signed statement was altered",
                        s.keyid
                    ),
                ));
            }
            None => untrusted.push(if s.keyid.is_empty() {
                "(no keyid)".to_owned()
            } else {
                s.keyid.clone()
            }),
        }
    }
    if valid.len() >= policy.threshold {
        return Ok(valid
            .into_iter()
            .map(|(keyid, name)| Signer { keyid, name })
            .collect());
    }
    if valid.is_empty() && unusable.is_empty() {
        return Err(Failure::at(
            K::UntrustedSigner,
            DSSE,
            format!(
                "signed only by keys this site does not trust: {}",
                untrusted.join(", ")
            ),
        ));
    }
    let mut message = format!(
        "{} valid signature(s) by distinct trusted keys; the policy requires {}",
        valid.len(),
        policy.threshold
    );
    if !unusable.is_empty() {
        message.push_str(&format!(" ({})", unusable.join("; ")));
    }
    Err(Failure::at(K::ThresholdNotMet, DSSE, message))
}

/// SHA256SUMS.sig is the first DSSE signer's detached signature; co-signers may add
/// `SHA256SUMS.<keyid>.sig`. Each must verify when its key is trusted.
fn check_detached(
    header: &RawHeader,
    envelope: &Envelope,
    policy: &TrustPolicy,
    warnings: &mut Vec<String>,
) -> Result<(), Failure> {
    let first = envelope
        .signatures
        .first()
        .map(|s| s.keyid.as_str())
        .unwrap_or("");
    let detached = std::iter::once((first, SUMS_SIG.to_owned(), &header.sums_sig)).chain(
        header
            .cosigner_sigs
            .iter()
            .map(|(k, sig)| (k.as_str(), layout::cosigner_sig_name(k), sig)),
    );
    for (keyid, entry, sig) in detached {
        if sig.is_empty() {
            return Err(Failure::at(
                K::MissingSignature,
                &entry,
                format!("{entry} is empty"),
            ));
        }
        match policy.key(keyid) {
            Some(k) if !k.key.verify(&header.sums.bytes, sig) => {
                return Err(Failure::at(
                    K::BadSignature,
                    &entry,
                    format!("{entry} does not verify SHA256SUMS under key {keyid}: SHA256SUMS was altered"),
                ));
            }
            Some(_) => {}
            None => warnings.push(format!(
                "{entry} is by key {keyid}, which this site does not trust; SHA256SUMS is authenticated through the DSSE envelope instead"
            )),
        }
    }
    Ok(())
}

fn sums_failure(e: SumsError) -> Failure {
    let kind = match &e {
        SumsError::BadPath { source, .. } if source.is_non_utf8() => K::NonUtf8Path,
        SumsError::BadPath { .. } => K::UnsafePath,
        SumsError::Duplicate { .. } => K::DuplicateEntry,
        _ => K::MalformedSums,
    };
    Failure::at(kind, SUMS, e.to_string())
}

/// SHA256SUMS, the statement's subjects and the manifest must describe the same files with the
/// same digests; SHA256SUMS must also cover offkit-layout and manifest.json as read.
fn check_agreement(
    header: &RawHeader,
    subjects: &[Subject],
    sums: &[SumLine],
    manifest: &Manifest,
) -> Result<(), Failure> {
    let from_sums: BTreeMap<&str, &str> = sums
        .iter()
        .map(|l| (l.path.as_str(), l.sha256.as_str()))
        .collect();
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
    for (name, entry) in [(LAYOUT, &header.layout), (MANIFEST, &header.manifest)] {
        match from_sums.get(name) {
            Some(d) if *d == entry.sha256 => {}
            Some(_) => {
                return Err(Failure::at(
                    K::DigestMismatch,
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
    let mut from_manifest: BTreeMap<&str, &str> = BTreeMap::new();
    for f in manifest.files() {
        if from_manifest.insert(f.path.as_str(), &f.sha256).is_some() {
            return Err(Failure::at(
                K::DuplicateEntry,
                f.path.as_str(),
                format!("{} appears twice in the manifest", f.path),
            ));
        }
    }
    let payload_sums: BTreeMap<&str, &str> = from_sums
        .iter()
        .filter(|(k, _)| **k != LAYOUT && **k != MANIFEST)
        .map(|(k, v)| (*k, *v))
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

fn first_difference<'a>(
    a: &BTreeMap<&'a str, &str>,
    b: &BTreeMap<&'a str, &str>,
) -> Option<&'a str> {
    a.iter()
        .find(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| *k)
        .or_else(|| b.keys().find(|k| !a.contains_key(*k)).copied())
}

struct Expected<'a> {
    index: usize,
    sha256: &'a str,
    size: u64,
    seen: bool,
}

fn stream_payload(
    reader: &mut KitReader,
    manifest: &Manifest,
    sink: &mut dyn PayloadSink,
    failures: &mut Vec<Failure>,
) {
    let mut sorted: Vec<(&str, &str, u64)> = manifest
        .files()
        .map(|f| (f.path.as_str(), f.sha256.as_str(), f.size))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut expected: HashMap<&str, Expected<'_>> = sorted
        .iter()
        .enumerate()
        .map(|(index, (p, h, s))| {
            (
                *p,
                Expected {
                    index,
                    sha256: h,
                    size: *s,
                    seen: false,
                },
            )
        })
        .collect();
    let folded: HashMap<String, &str> = sorted
        .iter()
        .map(|(p, _, _)| (p.to_lowercase(), *p))
        .collect();
    let mut last_index: Option<usize> = None;
    let push = |failures: &mut Vec<Failure>, f: Failure| {
        if failures.len() < MAX_FAILURES {
            failures.push(f);
        }
    };
    loop {
        let entry = match reader.next_payload() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return push(failures, e.into()),
        };
        let name = entry.path.as_str().to_owned();
        let Some(exp) = expected.get_mut(name.as_str()) else {
            let f = if layout::is_header_name(&name) {
                Failure::at(
                    K::DuplicateEntry,
                    &name,
                    format!("{name} appears again after the header"),
                )
            } else if let Some(other) = folded.get(&entry.path.case_fold()) {
                Failure::at(
                    K::CaseCollision,
                    &name,
                    format!("{name} collides with {other} on case-insensitive file systems"),
                )
            } else {
                Failure::at(
                    K::ExtraFile,
                    &name,
                    format!("{name} is in the archive but not in SHA256SUMS"),
                )
            };
            return push(failures, f);
        };
        if exp.seen {
            return push(
                failures,
                Failure::at(K::DuplicateEntry, &name, format!("{name} appears twice")),
            );
        }
        if last_index.is_some_and(|l| exp.index < l) {
            return push(
                failures,
                Failure::at(
                    K::EntryOrder,
                    &name,
                    format!("{name} is out of order (entries must follow SHA256SUMS order)"),
                ),
            );
        }
        if entry.size != exp.size {
            return push(
                failures,
                Failure::at(
                    K::SizeMismatch,
                    &name,
                    format!(
                        "{name} is {} bytes; the manifest says {}",
                        entry.size, exp.size
                    ),
                ),
            );
        }
        exp.seen = true;
        last_index = Some(exp.index);
        let mut hasher = Sha256::new();
        let result = sink
            .begin(&entry.path, entry.size)
            .map_err(|e| sink_failure(&name, e))
            .and_then(|()| {
                reader
                    .read_data(|chunk| {
                        hasher.update(chunk);
                        sink.write(chunk)
                    })
                    .map_err(Failure::from)
            });
        if let Err(f) = result.and_then(|()| sink.end().map_err(|e| sink_failure(&name, e))) {
            return push(failures, f);
        }
        let actual = hex::encode(hasher.finalize());
        if actual != exp.sha256 {
            push(
                failures,
                Failure::at(
                    K::DigestMismatch,
                    &name,
                    format!(
                        "{name}: SHA-256 {actual} does not match the signed {}",
                        exp.sha256
                    ),
                ),
            );
        }
    }
    for (path, _, _) in &sorted {
        if expected.get(path).is_some_and(|e| !e.seen) {
            push(
                failures,
                Failure::at(
                    K::MissingFile,
                    *path,
                    format!("{path} is listed in SHA256SUMS but not in the archive"),
                ),
            );
        }
    }
}

fn sink_failure(entry: &str, e: std::io::Error) -> Failure {
    Failure::at(K::WriteError, entry, format!("{entry}: {e}"))
}
