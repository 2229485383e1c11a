//! `offkit sign`: a co-signer adds a signature to a built kit.
//!
//! The kit is verified first against the co-signer's trust policy (one signs only what one has
//! checked). Then only the header frame is rewritten: the DSSE envelope gains a signature over the
//! same PAE bytes, and `SHA256SUMS.<keyid>.sig` is added for stock tools. The payload frames are
//! copied byte for byte, so signing costs one verification pass and a copy, never a recompression.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::Sha256Hex;
use crate::kit::dsse::Envelope;
use crate::kit::frame::{HeaderEntries, HeaderLimit, header_frame, header_frame_len, header_tar};
use crate::trust::keys::{KeyId, SecretKey};
use crate::trust::policy::TrustPolicy;
use crate::trust::sign::add_to_envelope;
use crate::trust::verify::{VerifyFailure, VerifyOptions, verify_kit};

/// What `sign` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignOutput {
    /// The signed kit.
    pub path: PathBuf,
    /// Its new SHA-256.
    pub sha256: Sha256Hex,
    /// The keyid that was added.
    pub added: KeyId,
    /// All keyids in the envelope now, in order.
    pub signatures: Vec<String>,
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The kit did not verify: it is not signed further.
    #[error(transparent)]
    Verify(#[from] VerifyFailure),
    /// This key already signed the kit.
    #[error("key {keyid} has already signed this kit")]
    AlreadySigned {
        /// The keyid.
        keyid: KeyId,
    },
    /// The header entries are not a zstd frame of their own.
    #[error("the kit's header is not a separate zstd frame ({0}); rebuild it with offkit build")]
    Layout(String),
    /// Another signature would pass a limit every verifier enforces.
    #[error("the kit cannot take another signature")]
    Limit(#[from] HeaderLimit),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ExitCoded for SignError {
    fn exit(&self) -> Exit {
        match self {
            SignError::Verify(v) => v.exit(),
            SignError::AlreadySigned { .. } | SignError::Limit(_) => Exit::Usage,
            SignError::Layout(_) => Exit::Verification,
            SignError::Io { .. } => Exit::Io,
        }
    }
}

/// Verifies `kit` against `policy`, then writes it to `out` (which may be `kit` itself) with a
/// signature by `key` added.
pub fn add_signature(
    kit: &Path,
    key: &SecretKey,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    out: &Path,
) -> Result<SignOutput, SignError> {
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| SignError::Io { path, source }
    };
    // A signature goes into the header frame of a whole kit; parts would be left inconsistent.
    if matches!(crate::kit::parts::find(kit), Ok(Some(_)) | Err(_)) {
        return Err(SignError::Layout(format!(
            "{} names the parts of a split kit: join them (offkit join), sign the kit, split it again",
            kit.display()
        )));
    }
    let verified = verify_kit(kit, policy, opts)?;
    let header = verified.header();
    let mut envelope: Envelope = serde_json::from_slice(&header.dsse.bytes)
        .map_err(|e| SignError::Layout(format!("envelope: {e}")))?;
    if envelope
        .signatures
        .iter()
        .any(|s| s.keyid == key.keyid().as_str())
    {
        return Err(SignError::AlreadySigned {
            keyid: key.keyid().clone(),
        });
    }
    let payload = envelope
        .payload_bytes()
        .ok_or_else(|| SignError::Layout("envelope payload is not Base64".into()))?;
    add_to_envelope(&mut envelope, &payload, key);

    let mut file = File::open(kit).map_err(io_err(kit))?;
    let frame_len = header_frame_len(&mut file).map_err(io_err(kit))? as usize;
    let mut frame = vec![0u8; frame_len];
    file.read_exact(&mut frame).map_err(io_err(kit))?;
    let decoded = zstd::bulk::decompress(&frame, (header.header_bytes as usize).saturating_add(1))
        .map_err(|e| SignError::Layout(e.to_string()))?;
    if decoded.len() as u64 != header.header_bytes {
        return Err(SignError::Layout(format!(
            "the first frame holds {} bytes, the header {}",
            decoded.len(),
            header.header_bytes
        )));
    }

    let mut cosigners = header.cosigner_sigs.clone();
    cosigners.push((
        key.keyid().to_string(),
        key.sign(&header.sums.bytes).to_vec(),
    ));
    cosigners.sort();
    let new_tar = header_tar(
        &HeaderEntries {
            layout: &header.layout.bytes,
            manifest: &header.manifest.bytes,
            sums: &header.sums.bytes,
            sums_sig: &header.sums_sig,
            cosigner_sigs: &cosigners,
            trust_versions: &header.trust_versions,
            provenance: header.provenance.as_deref(),
            dsse: &envelope.to_bytes(),
        },
        verified.manifest().created.unix_seconds(),
    )?;
    let new_frame = header_frame(&new_tar).map_err(io_err(out))?;
    drop(new_tar);

    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".offkit-sign-")
        .tempfile_in(dir)
        .map_err(|e| io_err(out)(crate::util::without_temp_path(e)))?;
    tmp.write_all(&new_frame).map_err(io_err(out))?;
    file.seek(SeekFrom::Start(frame_len as u64))
        .map_err(io_err(kit))?;
    io::copy(&mut file, tmp.as_file_mut()).map_err(io_err(out))?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(out))?;
    tmp.persist(out).map_err(|e| io_err(out)(e.error))?;
    crate::util::sync_dir(dir).map_err(io_err(dir))?;
    Ok(SignOutput {
        path: out.to_path_buf(),
        sha256: Sha256Hex::of_file(out).map_err(io_err(out))?,
        added: key.keyid().clone(),
        signatures: envelope
            .signatures
            .iter()
            .map(|s| s.keyid.clone())
            .collect(),
    })
}
