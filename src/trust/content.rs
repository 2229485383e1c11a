//! What a verified kit keeps of its payload, and the one way to read it back.
//!
//! The verifying pass hands every payload file to a sink chosen by [`Retain`]: nothing (plain
//! `verify`), the SQL files only (`status`, `migrations … --kit`, `apply --dry-run`: migrations and
//! rollbacks in memory, seeds never written anywhere), or every file in a folder (`extract`,
//! `apply`'s work folder). Afterwards, [`Content`] hands out migrations and rollbacks by their kit
//! path, each read through the digest-checking reader against the signed manifest: a file changed,
//! replaced or removed in a folder since verification is refused with its name and a
//! [`ContentError`] of its own kind, and nothing is ever listed from a folder.
//!
//! Memory: the SQL a kit may carry is bounded by the format
//! ([`crate::kit::manifest::MAX_SQL_BYTES`] in all, checked on the signed manifest before the first
//! payload byte). Kept in memory, each file is handed out once ([`Content::take_sql`] moves it), so
//! the SQL is held once — by the verifying pass, then by the migration set made from it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::confine::Confined;
use crate::kit::digest::{CheckedReadError, Mismatch, read_checked};
use crate::kit::layout;
use crate::kit::manifest::{FileEntry, Manifest, SeedEntry};
use crate::kit::path::KitPath;
use crate::trust::failure::{Failure, FailureKind};
use crate::trust::verify::PayloadSink;

/// What the verifying pass keeps of the payload.
#[derive(Debug, Clone)]
pub enum Retain {
    /// Nothing (`offkit verify`).
    Nothing,
    /// The migrations and rollbacks, in memory.
    Sql,
    /// The migrations, rollbacks and SBOMs, in memory (`diff`); refused when the signed SBOMs
    /// total more than [`MAX_RETAINED_SBOM_BYTES`].
    SqlAndSboms,
    /// Every payload file, written under `dir` (open, empty, and kept): every file and folder is
    /// created through the handle, never through a link. With `durable`, each file is synced
    /// before the next.
    Files {
        /// The folder.
        dir: Confined,
        /// Sync each file (an extraction meant to last) or not (a scratch copy).
        durable: bool,
    },
    /// Every payload file, written into a new private folder (`.offkit-kit-*`) under `work_dir`
    /// (default: the system's temporary folder), removed when the verified kit is dropped.
    TempFiles {
        /// Where to make the folder.
        work_dir: Option<PathBuf>,
    },
}

/// Most bytes of SBOMs [`Retain::SqlAndSboms`] keeps in memory.
pub const MAX_RETAINED_SBOM_BYTES: u64 = 256 << 20;

/// A file of a verified kit that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The file's bytes differ from the signed ones.
    #[error("{path}: changed after verification ({mismatch}); nothing after it was used")]
    Changed {
        /// The file.
        path: KitPath,
        /// What was found.
        mismatch: Mismatch,
    },
    /// The file was replaced by something other than a regular file.
    #[error("{path}: replaced by a link or special file after verification")]
    Replaced {
        /// The file.
        path: KitPath,
    },
    /// The file is gone.
    #[error("{path}: removed after verification")]
    Removed {
        /// The file.
        path: KitPath,
    },
    /// A file that is not part of the kit appeared in its folder.
    #[error("{path}: added to the kit's folder after verification; it is not part of the kit")]
    Added {
        /// The file, relative to the folder (shown lossily).
        path: String,
    },
    /// The path is not a migration or rollback of the kit.
    #[error("{path}: not a migration or rollback of this kit")]
    NotSql {
        /// The path.
        path: KitPath,
    },
    /// The path is not an SBOM of the kit.
    #[error("{path}: not an SBOM of this kit")]
    NotSbom {
        /// The path.
        path: KitPath,
    },
    /// The kit's SBOMs are too large to hold in memory.
    #[error(
        "the kit's SBOMs take {bytes} bytes, more than the {MAX_RETAINED_SBOM_BYTES} held in memory"
    )]
    TooLarge {
        /// Their total size.
        bytes: u64,
    },
    /// The verifying pass did not keep this file (a caller asked for the wrong [`Retain`]), or it
    /// was already handed out.
    #[error("{path}: not retained by the verifying pass, or already taken")]
    NotRetained {
        /// The file.
        path: KitPath,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ContentError {
    /// The failure this stands for, with its kind and the file it names.
    pub fn failure(&self) -> Failure {
        let (kind, entry) = match self {
            ContentError::Changed { path, .. } | ContentError::Replaced { path } => {
                (FailureKind::ChangedAfterVerification, path.to_string())
            }
            ContentError::Removed { path } => {
                (FailureKind::RemovedAfterVerification, path.to_string())
            }
            ContentError::Added { path } => (FailureKind::AddedAfterVerification, path.clone()),
            ContentError::NotSql { path }
            | ContentError::NotSbom { path }
            | ContentError::NotRetained { path } => (FailureKind::Internal, path.to_string()),
            ContentError::TooLarge { .. } => (FailureKind::OversizedEntry, "sboms".to_owned()),
            ContentError::Io { path, .. } => (FailureKind::IoError, path.clone()),
        };
        Failure::at(kind, entry, self.to_string())
    }
}

enum Stored {
    Nothing,
    Memory(HashMap<KitPath, Vec<u8>>),
    Folder {
        root: Confined,
        /// Removes a private folder when the kit is dropped.
        _temp: Option<tempfile::TempDir>,
    },
}

/// The payload a verified kit retained.
pub struct Content {
    stored: Stored,
    sql: HashMap<KitPath, FileEntry>,
    sboms: HashMap<KitPath, FileEntry>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.stored {
            Stored::Nothing => "nothing".to_owned(),
            Stored::Memory(m) => format!("{} SQL file(s) in memory", m.len()),
            Stored::Folder { root, .. } => format!("files in {}", root.path().display()),
        };
        f.debug_struct("Content").field("stored", &what).finish()
    }
}

fn index<'a>(files: impl Iterator<Item = &'a FileEntry>) -> HashMap<KitPath, FileEntry> {
    files.map(|f| (f.path.clone(), f.clone())).collect()
}

impl Content {
    fn new(stored: Stored, manifest: &Manifest) -> Content {
        Content {
            stored,
            sql: index(manifest.sql_files()),
            sboms: index(manifest.sboms.iter()),
        }
    }
}

impl Content {
    /// The verified bytes of the SQL file at `path` (see the module docs). Kept in memory, the
    /// file is moved out: a second call for the same path is [`ContentError::NotRetained`]. In a
    /// folder, it is read afresh each time, never through a link or from anything but a regular
    /// file.
    pub fn take_sql(&mut self, path: &KitPath) -> Result<Vec<u8>, ContentError> {
        let entry = self
            .sql
            .get(path)
            .ok_or_else(|| ContentError::NotSql { path: path.clone() })?
            .clone();
        self.take(path, &entry)
    }

    /// The verified bytes of the SBOM at `path`, as [`Content::take_sql`] hands out SQL (kept by
    /// [`Retain::SqlAndSboms`] or in a folder).
    pub fn take_sbom(&mut self, path: &KitPath) -> Result<Vec<u8>, ContentError> {
        let entry = self
            .sboms
            .get(path)
            .ok_or_else(|| ContentError::NotSbom { path: path.clone() })?
            .clone();
        self.take(path, &entry)
    }

    fn take(&mut self, path: &KitPath, entry: &FileEntry) -> Result<Vec<u8>, ContentError> {
        match &mut self.stored {
            Stored::Nothing => Err(ContentError::NotRetained { path: path.clone() }),
            Stored::Memory(files) => {
                let bytes = files
                    .remove(path)
                    .ok_or_else(|| ContentError::NotRetained { path: path.clone() })?;
                checked(&bytes[..], entry)
            }
            Stored::Folder { .. } => self
                .read_from_folder(entry)
                .unwrap_or_else(|| Err(ContentError::NotRetained { path: path.clone() })),
        }
    }

    /// The verified bytes of `entry` read afresh from the folder the files were retained in
    /// (never through a link, checked against its signed size and digest); `None` when they
    /// were not retained in a folder.
    pub(crate) fn read_from_folder(
        &self,
        entry: &FileEntry,
    ) -> Option<Result<Vec<u8>, ContentError>> {
        let Stored::Folder { root, .. } = &self.stored else {
            return None;
        };
        let path = &entry.path;
        let file = root
            .open_regular(path.as_str())
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => ContentError::Removed { path: path.clone() },
                // A link (at any component), or not a regular file.
                io::ErrorKind::InvalidInput => ContentError::Replaced { path: path.clone() },
                _ => ContentError::Io {
                    path: path.to_string(),
                    source: e,
                },
            });
        Some(file.and_then(|f| checked(f, entry)))
    }

    /// The folder holding the retained files, if they are on disk.
    pub fn folder(&self) -> Option<&Path> {
        match &self.stored {
            Stored::Folder { root, .. } => Some(root.path()),
            _ => None,
        }
    }

    /// The retained files were moved to `root` (extraction moves them out of its staging
    /// folder once verification passed).
    pub(crate) fn relocate(&mut self, root: Confined) {
        self.stored = Stored::Folder { root, _temp: None };
    }

    /// Refuses any file in the retained folder that is not one of the kit's (the manifest's
    /// files, and `seeds` read from the pages of an `offkit/v2` kit).
    pub fn check_folder(
        &self,
        manifest: &Manifest,
        seeds: &[SeedEntry],
    ) -> Result<(), ContentError> {
        let Stored::Folder { root, .. } = &self.stored else {
            return Ok(());
        };
        let root = root.path();
        let known: HashSet<&str> = manifest
            .files()
            .chain(seeds.iter().map(|s| &s.file))
            .map(|f| f.path.as_str())
            .collect();
        for entry in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
            let entry = entry.map_err(|e| ContentError::Io {
                path: root.display().to_string(),
                source: e.into(),
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let rel_text = rel.to_string_lossy();
            let is_kit_file = rel.to_str().is_some_and(|r| {
                known.contains(r) || (layout::is_header_name(r) && !r.contains('/'))
            });
            if !is_kit_file {
                return Err(ContentError::Added {
                    path: crate::kit::path::printable(&rel_text),
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn checked(source: impl io::Read, entry: &FileEntry) -> Result<Vec<u8>, ContentError> {
    read_checked(
        source,
        entry.path.as_str(),
        entry.size,
        entry.sha256.as_str(),
    )
    .map_err(|e| match e {
        CheckedReadError::Mismatch(mismatch) => ContentError::Changed {
            path: entry.path.clone(),
            mismatch,
        },
        CheckedReadError::Io(source) => ContentError::Io {
            path: entry.path.to_string(),
            source,
        },
    })
}

/// A sink the verifier writes into; turned into the [`Content`] once verification passed.
pub(crate) trait RetainSink: PayloadSink {
    /// The retained content (called only when verification passed).
    fn finish(self: Box<Self>, manifest: &Manifest) -> Result<Content, ContentError>;
}

impl Retain {
    /// The sink for this retention, knowing the authenticated manifest.
    pub(crate) fn sink(&self, manifest: &Manifest) -> Result<Box<dyn RetainSink>, ContentError> {
        Ok(match self {
            Retain::Nothing => Box::new(Discard),
            // The signed SQL total was bounded by `Manifest::check`.
            Retain::Sql => Box::new(MemorySink {
                keep: manifest.sql_files().map(|f| f.path.clone()).collect(),
                files: HashMap::new(),
                current: None,
            }),
            Retain::SqlAndSboms => {
                let bytes = manifest.sboms.iter().map(|f| f.size).sum::<u64>();
                if bytes > MAX_RETAINED_SBOM_BYTES {
                    return Err(ContentError::TooLarge { bytes });
                }
                Box::new(MemorySink {
                    keep: manifest
                        .sql_files()
                        .chain(&manifest.sboms)
                        .map(|f| f.path.clone())
                        .collect(),
                    files: HashMap::new(),
                    current: None,
                })
            }
            Retain::Files { dir, durable } => Box::new(FolderSink {
                root: dir.clone(),
                temp: None,
                durable: *durable,
                file: None,
                parent: None,
            }),
            Retain::TempFiles { work_dir } => {
                let temp = temp_dir(work_dir.as_deref())?;
                let (root, _) =
                    Confined::open(temp.path(), false).map_err(|source| ContentError::Io {
                        path: temp.path().display().to_string(),
                        source,
                    })?;
                Box::new(FolderSink {
                    root,
                    temp: Some(temp),
                    durable: false,
                    file: None,
                    parent: None,
                })
            }
        })
    }
}

/// The prefix of a work folder: `.offkit-kit-PID-` (the process that made it).
const WORK_PREFIX: &str = ".offkit-kit-";

/// A new private work folder under `under` (default: the system's temporary folder), after
/// removing the ones there whose process is gone (a run killed before it could remove its own).
fn temp_dir(under: Option<&Path>) -> Result<tempfile::TempDir, ContentError> {
    remove_dead_work_folders(&under.map_or_else(std::env::temp_dir, Path::to_path_buf));
    let mut b = tempfile::Builder::new();
    let prefix = format!("{WORK_PREFIX}{}-", std::process::id());
    b.prefix(&prefix);
    match under {
        Some(w) => b.tempdir_in(w),
        None => b.tempdir(),
    }
    .map_err(|source| ContentError::Io {
        path: under.map_or_else(
            || std::env::temp_dir().display().to_string(),
            |w| w.display().to_string(),
        ),
        source,
    })
}

/// Removes the work folders in `dir` whose making process no longer exists (best effort: a
/// folder of another user's, or one that cannot be removed, stays). A folder whose process is
/// alive — or whose number was taken by another process since — is left alone.
pub fn remove_dead_work_folders(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORK_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH));
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if gone && is_dir {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

struct Discard;

impl PayloadSink for Discard {
    fn begin(&mut self, _: &KitPath, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RetainSink for Discard {
    fn finish(self: Box<Self>, manifest: &Manifest) -> Result<Content, ContentError> {
        Ok(Content::new(Stored::Nothing, manifest))
    }
}

/// Keeps the SQL files (and the SBOMs) in memory.
struct MemorySink {
    keep: HashSet<KitPath>,
    files: HashMap<KitPath, Vec<u8>>,
    current: Option<(KitPath, Vec<u8>)>,
}

impl PayloadSink for MemorySink {
    fn begin(&mut self, path: &KitPath, size: u64) -> io::Result<()> {
        // The size was checked against the signed manifest, whose SQL total is bounded (and the
        // SBOMs' by the sink's maker).
        self.current = self.keep.contains(path).then(|| {
            let cap = usize::try_from(size).unwrap_or(0);
            (path.clone(), Vec::with_capacity(cap))
        });
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some((_, buf)) = &mut self.current {
            buf.extend_from_slice(data);
        }
        Ok(())
    }
    fn end(&mut self) -> io::Result<()> {
        if let Some((path, buf)) = self.current.take() {
            self.files.insert(path, buf);
        }
        Ok(())
    }
}

impl RetainSink for MemorySink {
    fn finish(self: Box<Self>, manifest: &Manifest) -> Result<Content, ContentError> {
        Ok(Content::new(Stored::Memory(self.files), manifest))
    }
}

/// Writes every payload file under a folder, through its handle.
struct FolderSink {
    root: Confined,
    temp: Option<tempfile::TempDir>,
    durable: bool,
    file: Option<BufWriter<File>>,
    /// The last parent folder a file was created in.
    parent: Option<(String, Confined)>,
}

impl PayloadSink for FolderSink {
    fn begin(&mut self, path: &KitPath, _size: u64) -> io::Result<()> {
        crate::failpoint::hit(&format!("retain-file:{path}"));
        let file = self
            .root
            .create_file(path.as_str(), 0o644, &mut self.parent)?;
        self.file = Some(BufWriter::with_capacity(1 << 20, file));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(data),
            None => Ok(()),
        }
    }

    fn end(&mut self) -> io::Result<()> {
        match self.file.take() {
            Some(f) => {
                let f = f.into_inner().map_err(|e| e.into_error())?;
                if self.durable {
                    f.sync_data()?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl RetainSink for FolderSink {
    fn finish(self: Box<Self>, manifest: &Manifest) -> Result<Content, ContentError> {
        Ok(Content::new(
            Stored::Folder {
                root: self.root,
                _temp: self.temp,
            },
            manifest,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::digest::Sha256Hex;
    use std::fs;

    fn entry(path: &str, bytes: &[u8]) -> FileEntry {
        FileEntry {
            path: KitPath::new(path).unwrap(),
            sha256: Sha256Hex::of(bytes),
            size: bytes.len() as u64,
        }
    }

    fn folder_content(root: &Path, files: &[(&str, &[u8])]) -> Content {
        let mut sql = HashMap::new();
        for (p, b) in files {
            let e = entry(p, b);
            let disk = e.path.under(root);
            fs::create_dir_all(disk.parent().unwrap()).unwrap();
            fs::write(&disk, b).unwrap();
            sql.insert(e.path.clone(), e);
        }
        Content {
            stored: Stored::Folder {
                root: Confined::open(root, false).unwrap().0,
                _temp: None,
            },
            sql,
            sboms: HashMap::new(),
        }
    }

    #[test]
    fn a_changed_removed_or_replaced_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = KitPath::new("migrations/core/001_a.sql").unwrap();
        let b = KitPath::new("migrations/core/002_b.sql").unwrap();
        let c = KitPath::new("rollback/core/002_b.sql").unwrap();
        let mut content = folder_content(
            dir.path(),
            &[
                (a.as_str(), b"SELECT 1;"),
                (b.as_str(), b"SELECT 2;"),
                (c.as_str(), b"SELECT 3;"),
            ],
        );
        assert_eq!(content.take_sql(&a).unwrap(), b"SELECT 1;");

        fs::write(a.under(dir.path()), b"SELECT 9;").unwrap();
        let e = content.take_sql(&a).unwrap_err();
        assert!(matches!(e, ContentError::Changed { .. }), "{e}");
        assert_eq!(e.failure().kind, FailureKind::ChangedAfterVerification);
        assert_eq!(e.failure().entry.as_deref(), Some(a.as_str()));

        fs::remove_file(b.under(dir.path())).unwrap();
        let e = content.take_sql(&b).unwrap_err();
        assert_eq!(e.failure().kind, FailureKind::RemovedAfterVerification);

        let target = dir.path().join("elsewhere.sql");
        fs::write(&target, b"SELECT 3;").unwrap();
        fs::remove_file(c.under(dir.path())).unwrap();
        std::os::unix::fs::symlink(&target, c.under(dir.path())).unwrap();
        let e = content.take_sql(&c).unwrap_err();
        assert!(matches!(e, ContentError::Replaced { .. }), "{e}");

        // A link in place of a folder on the way is a replacement too, not a way out.
        let d = KitPath::new("migrations/other/001_d.sql").unwrap();
        let mut content = folder_content(dir.path(), &[(d.as_str(), b"SELECT 4;")]);
        let away = dir.path().join("away");
        fs::rename(dir.path().join("migrations/other"), &away).unwrap();
        std::os::unix::fs::symlink(&away, dir.path().join("migrations/other")).unwrap();
        let e = content.take_sql(&d).unwrap_err();
        assert!(matches!(e, ContentError::Replaced { .. }), "{e}");

        let other = KitPath::new("seeds/x.json").unwrap();
        assert!(matches!(
            content.take_sql(&other),
            Err(ContentError::NotSql { .. })
        ));
    }

    fn feed(sink: &mut dyn RetainSink, path: &KitPath, bytes: &[u8]) {
        sink.begin(path, bytes.len() as u64).unwrap();
        sink.write(bytes).unwrap();
        sink.end().unwrap();
    }

    #[test]
    fn sql_is_kept_in_memory_once_and_seeds_nowhere() {
        let mut m = crate::kit::manifest::tests::sample();
        // The sample's digests are of the paths: make the size agree with those bytes too.
        let size = m.modules[0].migrations[0].file.path.as_str().len() as u64;
        m.modules[0].migrations[0].file.size = size;
        let mig = &m.modules[0].migrations[0].file;
        let seed = m.seeds[0].file.path.clone();
        let mut sink = Retain::Sql.sink(&m).unwrap();
        feed(sink.as_mut(), &mig.path, mig.path.as_str().as_bytes());
        feed(sink.as_mut(), &seed, b"{}");
        let mut content = sink.finish(&m).unwrap();
        assert!(content.folder().is_none());
        assert!(matches!(&content.stored, Stored::Memory(f) if f.len() == 1));
        assert_eq!(
            content.take_sql(&mig.path).unwrap(),
            mig.path.as_str().as_bytes()
        );
        // Moved out: held once.
        assert!(matches!(
            content.take_sql(&mig.path),
            Err(ContentError::NotRetained { .. })
        ));
    }
}
