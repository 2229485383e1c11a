//! `offkit extract`: verify and write a kit's files into a folder, all or nothing.
//!
//! Files are written into a staging folder inside the target while the kit streams through the
//! verifier; only when verification has passed completely are they moved into place: the header
//! entries by name and the payload folders the layout defines (never a listing of the staging
//! folder). On any failure the staging folder, and the target folder if this call created it,
//! are removed: nothing of a refused kit remains. Nothing is ever written outside the target:
//! paths are [`crate::kit::KitPath`]s, which cannot climb out, and every file is made through the
//! target's open handle ([`Confined`]), never through a symbolic link.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::confine::Confined;
use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::{self, DSSE, LAYOUT, MANIFEST, PAYLOAD_DIRS, SUMS, SUMS_SIG};
use crate::trust::content::Retain;
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::{
    AuthenticatedKit, VerifiedKit, VerifyFailure, VerifyOptions, authenticate,
};

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
/// empty folder, and not a symbolic link). The folder is opened once; every file and folder is
/// then made through that handle, never through a link; if `to` is moved or replaced meanwhile,
/// the extraction fails (what was written stays inside the folder that was opened). The
/// returned kit's [`VerifiedKit::folder`] is `to`.
pub fn extract_kit(
    kit_path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    to: &Path,
) -> Result<VerifiedKit, ExtractError> {
    // Authenticate the header before touching the target: a forged kit creates nothing.
    extract_authenticated(authenticate(kit_path, policy, opts)?, to)
}

/// [`extract_kit`] for a kit whose header is already authenticated (so that a caller can check
/// the signed manifest against the site before anything is written).
pub fn extract_authenticated(
    authenticated: AuthenticatedKit,
    to: &Path,
) -> Result<VerifiedKit, ExtractError> {
    let (target, created) = prepare_target(to)?;
    let staging_name = format!(".offkit-staging-{}", crate::util::random_hex(8));
    let mut moved_in: Vec<String> = Vec::new();
    let still_there = |target: &Confined| -> Result<(), ExtractError> {
        if target.still_at_path().map_err(io_err(to))? {
            return Ok(());
        }
        Err(ExtractError::Target {
            path: to.display().to_string(),
            reason: "was moved or replaced during the extraction; nothing was extracted",
        })
    };
    let result = (|| {
        let staging = target.create_dir(&staging_name).map_err(io_err(to))?;
        let mut kit = authenticated.verify(Retain::Files {
            dir: staging.clone(),
            durable: true,
        })?;
        write_header(&kit, &staging)?;
        still_there(&target)?;
        // The payload folders, and the pages' (`index/`) of an offkit/v2 kit.
        let folders = PAYLOAD_DIRS.iter().chain(["index"].iter());
        for name in header_names(&kit).chain(folders.map(|d| d.to_string())) {
            if staging.contains(&name).map_err(io_err(staging.path()))? {
                staging
                    .rename_to(&name, &target, &name)
                    .map_err(io_err(&to.join(&name)))?;
                moved_in.push(name);
            }
        }
        target.remove_tree(&staging_name).map_err(io_err(to))?;
        target.sync().map_err(io_err(to))?;
        still_there(&target)?;
        kit.content_mut().relocate(target.clone());
        Ok(kit)
    })();
    if result.is_err() {
        // All or nothing: what this call made inside the folder it opened goes again.
        let _ = target.remove_tree(&staging_name);
        for name in &moved_in {
            let _ = target.remove_tree(name);
        }
        // Only a folder this call made, still in place and empty, is removed.
        if created && target.still_at_path().unwrap_or(false) && target.is_empty().unwrap_or(false)
        {
            let _ = fs::remove_dir(to);
        }
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

fn write_header(kit: &VerifiedKit, dir: &Confined) -> Result<(), ExtractError> {
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
    let mut parent = None;
    for (name, bytes) in files {
        let path = dir.path().join(&name);
        let mut f = dir
            .create_file(&name, 0o644, &mut parent)
            .map_err(io_err(&path))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io_err(&path))?;
    }
    Ok(())
}

/// Opens the target folder (made when absent); it must be empty and not a link.
fn prepare_target(to: &Path) -> Result<(Confined, bool), ExtractError> {
    let target = |reason| ExtractError::Target {
        path: to.display().to_string(),
        reason,
    };
    match fs::symlink_metadata(to) {
        Ok(meta) if !meta.is_dir() && !meta.file_type().is_symlink() => {
            return Err(target("exists and is not a folder"));
        }
        _ => {}
    }
    let (dir, created) = Confined::open(to, true).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidInput {
            target("is a symbolic link; give a real folder")
        } else {
            io_err(to)(e)
        }
    })?;
    if !dir.is_empty().map_err(io_err(to))? {
        return Err(target("is not empty; extract into a new or empty folder"));
    }
    Ok((dir, created))
}
