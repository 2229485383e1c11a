//! `offkit extract`: verify and write a kit's files into a folder, all or nothing.
//!
//! Files are written into a staging folder inside the target while the kit streams through the
//! verifier; only when verification has passed completely are they moved into place: the header
//! entries by name and the payload folders the layout defines (never a listing of the staging
//! folder). On any failure the staging folder, and the target folder if this call created it,
//! are removed: nothing of a refused kit remains, and nothing is ever written outside the target
//! (paths are [`crate::kit::KitPath`]s, which cannot climb out).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::{self, DSSE, LAYOUT, MANIFEST, PAYLOAD_DIRS, SUMS, SUMS_SIG};
use crate::trust::content::{Retain, create_file};
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::{VerifiedKit, VerifyFailure, VerifyOptions, authenticate};

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The kit failed verification; nothing was left behind.
    #[error(transparent)]
    Verify(#[from] VerifyFailure),
    /// The target folder cannot be used.
    #[error("{path}: {reason}")]
    Target {
        /// The folder.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ExitCoded for ExtractError {
    fn exit(&self) -> Exit {
        match self {
            ExtractError::Verify(v) => v.exit(),
            ExtractError::Target { .. } | ExtractError::Io { .. } => Exit::Io,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Verifies the kit at `kit_path` and writes its files into `to` (which must be absent or an
/// empty folder). The returned kit's [`VerifiedKit::folder`] is `to`.
pub fn extract_kit(
    kit_path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    to: &Path,
) -> Result<VerifiedKit, ExtractError> {
    // Authenticate the header before touching the target: a forged kit creates nothing.
    let authenticated = authenticate(kit_path, policy, opts)?;
    let created = prepare_target(to)?;
    let result = (|| {
        let staging = tempfile::Builder::new()
            .prefix(".offkit-staging-")
            .tempdir_in(to)
            .map_err(io_err(to))?;
        let mut kit = authenticated.verify(Retain::Files {
            dir: staging.path().to_path_buf(),
            durable: true,
        })?;
        write_header(&kit, staging.path())?;
        for name in header_names(&kit).chain(PAYLOAD_DIRS.iter().map(|d| d.to_string())) {
            let from = staging.path().join(&name);
            if from.exists() {
                let dest = to.join(&name);
                fs::rename(&from, &dest).map_err(io_err(&dest))?;
            }
        }
        crate::util::sync_dir(to).map_err(io_err(to))?;
        staging.close().map_err(io_err(to))?;
        kit.content_mut().relocate(to.to_path_buf());
        Ok(kit)
    })();
    if result.is_err() && created {
        let _ = fs::remove_dir_all(to);
    }
    result
}

fn header_names(kit: &VerifiedKit) -> impl Iterator<Item = String> + '_ {
    [LAYOUT, MANIFEST, SUMS, SUMS_SIG, DSSE]
        .into_iter()
        .map(str::to_owned)
        .chain(
            kit.header()
                .cosigner_sigs
                .iter()
                .map(|(k, _)| layout::cosigner_sig_name(k)),
        )
}

fn write_header(kit: &VerifiedKit, dir: &Path) -> Result<(), ExtractError> {
    let header = kit.header();
    let mut files: Vec<(String, &[u8])> = vec![
        (LAYOUT.to_owned(), &header.layout.bytes),
        (MANIFEST.to_owned(), &header.manifest.bytes),
        (SUMS.to_owned(), &header.sums.bytes),
        (SUMS_SIG.to_owned(), &header.sums_sig),
        (DSSE.to_owned(), &header.dsse.bytes),
    ];
    for (keyid, sig) in &header.cosigner_sigs {
        files.push((layout::cosigner_sig_name(keyid), sig));
    }
    for (name, bytes) in files {
        let path = dir.join(&name);
        let mut f = create_file(&path).map_err(io_err(&path))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io_err(&path))?;
    }
    Ok(())
}

fn prepare_target(to: &Path) -> Result<bool, ExtractError> {
    match fs::symlink_metadata(to) {
        Ok(meta) if meta.file_type().is_symlink() => Err(ExtractError::Target {
            path: to.display().to_string(),
            reason: "is a symbolic link; give a real folder",
        }),
        Ok(meta) if !meta.is_dir() => Err(ExtractError::Target {
            path: to.display().to_string(),
            reason: "exists and is not a folder",
        }),
        Ok(_) => {
            if fs::read_dir(to).map_err(io_err(to))?.next().is_some() {
                return Err(ExtractError::Target {
                    path: to.display().to_string(),
                    reason: "is not empty; extract into a new or empty folder",
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(to).map_err(io_err(to))?;
            Ok(true)
        }
        Err(e) => Err(io_err(to)(e)),
    }
}
