//! Seeds from a local folder (`offkit store put-dir`): every regular file under the folder becomes
//! a [`SeedObject`] whose key is its relative path (optionally under a key prefix), with its size
//! and SHA-256 computed here, in parallel, by streaming the file — in two steps, [`files_of_dir`]
//! then [`hash_files`], so that the store can be looked up meanwhile. The matching source is
//! [`super::seed::FolderSource::with_prefix`] over the same folder and prefix.
//!
//! The same safety rules as for kits apply: keys must be valid [`KitPath`]s, and symbolic links,
//! devices and other special files are refused rather than followed or skipped silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::seed::SeedObject;
use super::stream::digest_and_md5;
use crate::exit::{Exit, ExitCoded};
use crate::kit::manifest::media_type_for;
use crate::kit::path::KitPath;

/// Why a folder could not be turned into seeds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// Reading the folder or a file failed.
    #[error("reading {path}: {cause}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A file's relative path is not a valid object key.
    #[error("{path}: not a valid object key: {reason}")]
    BadKey {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A symbolic link or special file is in the folder.
    #[error("{path}: not a regular file or folder (symbolic links and special files are refused)")]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
}

impl ExitCoded for DirError {
    fn exit(&self) -> Exit {
        match self {
            DirError::Io { .. } => Exit::Io,
            _ => Exit::Usage,
        }
    }
}

/// A folder's files as seeds, with what hashing them also learned.
#[derive(Debug, Default)]
pub struct DirSeeds {
    /// One seed per file, sorted by key.
    pub seeds: Vec<SeedObject>,
    /// The MD5 of each file, from the same read as its SHA-256 (when asked for); for
    /// [`super::seed::FolderSource::with_md5s`].
    pub md5s: HashMap<KitPath, [u8; 16]>,
}

/// `dir`'s files, as their keys (under `prefix` when given) and paths, sorted by key — without
/// reading them, so that a store can be looked up while they are hashed ([`hash_files`]).
pub fn files_of_dir(
    dir: &Path,
    prefix: Option<&KitPath>,
) -> Result<Vec<(KitPath, PathBuf)>, DirError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| DirError::Io {
            path: e
                .path()
                .map_or_else(|| dir.to_path_buf(), Path::to_path_buf),
            cause: e.into(),
        })?;
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if !ft.is_file() {
            return Err(DirError::NotRegular {
                path: entry.path().to_path_buf(),
            });
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel = rel.to_str().ok_or_else(|| DirError::BadKey {
            path: entry.path().to_path_buf(),
            reason: "not valid UTF-8".into(),
        })?;
        let key = match prefix {
            Some(p) => format!("{p}/{rel}"),
            None => rel.to_owned(),
        };
        let key = KitPath::new(&key).map_err(|e| DirError::BadKey {
            path: entry.path().to_path_buf(),
            reason: e.to_string(),
        })?;
        files.push((key, entry.into_path()));
    }
    files.sort();
    Ok(files)
}

/// Hashes `files` (from [`files_of_dir`]) into seeds with `threads` threads, each file read once;
/// with `md5`, each file's MD5 too (for a store that vouches for MD5s).
pub fn hash_files(
    files: Vec<(KitPath, PathBuf)>,
    threads: usize,
    md5: bool,
) -> Result<DirSeeds, DirError> {
    let hash = || {
        files
            .into_par_iter()
            .map(|(key, path)| {
                let io = |cause| DirError::Io {
                    path: path.clone(),
                    cause,
                };
                // A regular file only, as FolderSource will open it: a file swapped for a FIFO
                // meanwhile must not hang the hashing.
                let file = crate::util::open_regular(&path).map_err(io)?;
                let (d, md5) = digest_and_md5(file, md5).map_err(io)?;
                let seed = SeedObject {
                    media_type: media_type_for(key.file_name()).to_owned(),
                    key,
                    sha256: d.sha256,
                    size: d.size,
                };
                Ok((seed, md5))
            })
            .collect::<Result<Vec<_>, DirError>>()
    };
    let hashed = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
    {
        Ok(pool) => pool.install(hash),
        Err(_) => hash(),
    }?;
    let mut out = DirSeeds::default();
    for (seed, md5) in hashed {
        if let Some(m) = md5 {
            out.md5s.insert(seed.key.clone(), m);
        }
        out.seeds.push(seed);
    }
    Ok(out)
}
