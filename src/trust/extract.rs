//! `offkit extract`: verify and write a kit's files into a folder, all or nothing.
//!
//! Files are written into a staging folder inside the target while the kit streams through the
//! verifier; only when verification has passed completely are they moved into place (each move a
//! rename within the target folder). On any failure the staging folder, and the target folder if
//! this call created it, are removed: nothing of a refused kit remains, and nothing is ever
//! written outside the target (paths are [`KitPath`]s, which cannot climb out).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::{self, DSSE, LAYOUT, MANIFEST, SUMS, SUMS_SIG};
use crate::kit::path::KitPath;
use crate::trust::policy::TrustPolicy;
use crate::trust::verify::{PayloadSink, VerifiedKit, VerifyFailure, VerifyOptions, verify_kit};

/// A verified kit whose files are on disk under [`ExtractedKit::root`].
#[derive(Debug)]
pub struct ExtractedKit {
    kit: VerifiedKit,
    root: PathBuf,
}

impl ExtractedKit {
    /// The verified kit.
    pub fn kit(&self) -> &VerifiedKit {
        &self.kit
    }
    /// The folder holding the kit's files.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where a kit path is on disk.
    pub fn file(&self, path: &KitPath) -> PathBuf {
        path.under(&self.root)
    }
}

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
/// empty folder).
pub fn extract_kit(
    kit_path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    to: &Path,
) -> Result<ExtractedKit, ExtractError> {
    let created = prepare_target(to)?;
    let result = extract_into(kit_path, policy, opts, to);
    if result.is_err() && created {
        let _ = fs::remove_dir_all(to);
    }
    result
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

fn extract_into(
    kit_path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    to: &Path,
) -> Result<ExtractedKit, ExtractError> {
    let staging = tempfile::Builder::new()
        .prefix(".offkit-staging-")
        .tempdir_in(to)
        .map_err(io_err(to))?;
    let mut sink = DirSink {
        root: staging.path().to_path_buf(),
        file: None,
    };
    let kit = verify_kit(kit_path, policy, opts, &mut sink)?;
    let header = kit.header();
    let mut header_files: Vec<(String, &[u8])> = vec![
        (LAYOUT.to_owned(), &header.layout.bytes),
        (MANIFEST.to_owned(), &header.manifest.bytes),
        (SUMS.to_owned(), &header.sums.bytes),
        (SUMS_SIG.to_owned(), &header.sums_sig),
        (DSSE.to_owned(), &header.dsse.bytes),
    ];
    for (keyid, sig) in &header.cosigner_sigs {
        header_files.push((layout::cosigner_sig_name(keyid), sig));
    }
    for (name, bytes) in header_files {
        let path = staging.path().join(&name);
        let mut f = create_file(&path).map_err(io_err(&path))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io_err(&path))?;
    }
    // Verified: move everything into place.
    for entry in fs::read_dir(staging.path()).map_err(io_err(staging.path()))? {
        let entry = entry.map_err(io_err(staging.path()))?;
        let dest = to.join(entry.file_name());
        fs::rename(entry.path(), &dest).map_err(io_err(&dest))?;
    }
    crate::util::sync_dir(to).map_err(io_err(to))?;
    staging.close().map_err(io_err(to))?;
    Ok(ExtractedKit {
        kit,
        root: to.to_path_buf(),
    })
}

fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// Writes payload files under a staging root.
struct DirSink {
    root: PathBuf,
    file: Option<BufWriter<File>>,
}

impl PayloadSink for DirSink {
    fn begin(&mut self, path: &KitPath, _size: u64) -> io::Result<()> {
        let dest = path.under(&self.root);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        self.file = Some(BufWriter::with_capacity(1 << 20, create_file(&dest)?));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(data),
            None => Err(io::Error::other("write outside of a file")),
        }
    }

    fn end(&mut self) -> io::Result<()> {
        match self.file.take() {
            Some(f) => f.into_inner().map_err(|e| e.into_error())?.sync_data(),
            None => Ok(()),
        }
    }
}

/// A verified kit extracted into a private temporary folder, removed on drop. What `apply`,
/// `status` and `migrations --kit` work from.
#[derive(Debug)]
pub struct TempExtractedKit {
    kit: ExtractedKit,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempExtractedKit {
    type Target = ExtractedKit;
    fn deref(&self) -> &ExtractedKit {
        &self.kit
    }
}

/// Verifies `kit_path` and extracts it into a new private folder under `work_dir` (default: the
/// system's temporary folder).
pub fn extract_to_temp(
    kit_path: &Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
    work_dir: Option<&Path>,
) -> Result<TempExtractedKit, ExtractError> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix(".offkit-kit-");
        b
    };
    let dir = match work_dir {
        Some(w) => builder.tempdir_in(w),
        None => builder.tempdir(),
    }
    .map_err(|source| ExtractError::Io {
        path: work_dir.map_or_else(
            || std::env::temp_dir().display().to_string(),
            |w| w.display().to_string(),
        ),
        source,
    })?;
    let kit = extract_into(kit_path, policy, opts, dir.path())?;
    Ok(TempExtractedKit { kit, _dir: dir })
}
