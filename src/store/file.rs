//! The `file://DIR` driver: one file per object, at the key's path under `DIR`.
//!
//! Keys are [`KitPath`]s (relative, no `..`, no empty or `.` component), so joining them under
//! `DIR` cannot climb out of it; on top of that, no folder on the way to an object may be a
//! symbolic link, so a link planted inside the store cannot redirect a write elsewhere.
//!
//! A put streams into a temporary file in the object's own folder, fsyncs it and renames it into
//! place — without replacing an existing file unless asked (`renameat2` `RENAME_NOREPLACE` or
//! link+unlink, through `tempfile`'s `persist_noclobber`). The folder's fsync, which makes the new
//! name durable, is deferred to [`Store::sync`], once per folder: the data is durable before its
//! name appears, so a power loss before `sync` can lose a name, never expose a partial file.
//!
//! A temporary file is named `.offkit-tmp-<pid>-<random>` and its writer holds an exclusive `flock`
//! on it until the rename, so a crash (even SIGKILL) leaves an unlocked temporary file of a process
//! that no longer exists; it is never listed as an object, and the first put of a later process
//! into that folder removes it: a rerun converges to exactly the uninterrupted state. (A writer on
//! another host or in another PID namespace is recognised by its lock alone; in the microseconds
//! between its create and its lock it could lose its temporary file, which fails that put and
//! never corrupts anything.)

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{FlockOperation, flock};

use super::url::{FileUrl, StoreUrl};
use super::{Lookup, ObjectInfo, PutRequest, Store, StoreError, WriteMode};
use crate::kit::path::KitPath;
use crate::util::sync_dir;

/// Name prefix of in-flight temporary files; keys with a component starting with it are refused.
pub const TMP_PREFIX: &str = ".offkit-tmp-";

/// Copy buffer size: large enough that per-call overhead does not matter.
const COPY_BUF: usize = 256 * 1024;

/// A store in a local folder.
#[derive(Debug)]
pub struct FileStore {
    url: StoreUrl,
    shown: String,
    root: PathBuf,
    /// Folders already swept of stale temporary files by this process.
    swept: Mutex<HashSet<PathBuf>>,
    /// Folders with new entries not yet fsynced.
    dirty: Mutex<HashSet<PathBuf>>,
}

/// What is at a key's path.
enum Found {
    /// A regular file (the object).
    File(PathBuf, u64),
    /// Nothing, or not an object (a missing folder on the way).
    Absent,
}

impl FileStore {
    /// A store rooted at `f.dir` (created on the first put).
    pub fn new(url: StoreUrl, f: &FileUrl) -> Self {
        FileStore {
            shown: url.redacted(),
            url,
            root: f.dir.clone(),
            swept: Mutex::new(HashSet::new()),
            dirty: Mutex::new(HashSet::new()),
        }
    }

    fn mark_dirty(&self, dir: &Path) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        if !dirty.contains(dir) {
            dirty.insert(dir.to_path_buf());
        }
    }

    /// Removes temporary files in `dir` left by writers that died (their lock is gone). Runs once
    /// per folder per process; failures only leave the strays in place.
    fn sweep_stale(&self, dir: &Path) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if !swept.insert(dir.to_path_buf()) {
                return;
            }
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let own = format!("{TMP_PREFIX}{}-", std::process::id());
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
                continue;
            };
            // Our own threads' files are live by definition (one may be between its create and
            // its lock); so is a file whose writer process still exists on this host.
            if name.starts_with(&own) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let pid = rest
                .split_once('-')
                .and_then(|(p, _)| p.parse::<u32>().ok());
            if pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
                continue;
            }
            let path = entry.path();
            // A live writer holds the lock; if we get it, the writer is gone.
            let Ok(f) = fs::File::open(&path) else {
                continue;
            };
            if flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// A new temporary file in `dir`, named with this process id and exclusively `flock`ed until
    /// it is closed after the rename: both mark it as in use for [`FileStore::sweep_stale`]. Should
    /// a sweeper the pid cannot stop (another host sharing the folder) take its lock and unlink it
    /// between create and lock, the blocking lock waits for the sweeper, the link count shows the
    /// file is gone, and a fresh one is made.
    fn locked_temp(&self, dir: &Path) -> io::Result<tempfile::NamedTempFile> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let tmp = tempfile::Builder::new()
                .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .tempfile_in(dir)
                .map_err(crate::util::without_temp_path)?;
            flock(tmp.as_file(), FlockOperation::LockExclusive)?;
            if tmp.as_file().metadata()?.nlink() > 0 {
                return Ok(tmp);
            }
        }
    }

    fn io(&self, op: &'static str, key: &str, source: io::Error) -> StoreError {
        StoreError::Io {
            op,
            store: self.shown.clone(),
            key: key.to_owned(),
            cause: source,
        }
    }

    fn unsafe_key(&self, key: &KitPath, reason: impl Into<String>) -> StoreError {
        StoreError::UnsafeKey {
            store: self.shown.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn check_reserved(&self, key: &KitPath) -> Result<(), StoreError> {
        if key.components().any(|c| c.starts_with(TMP_PREFIX)) {
            return Err(self.unsafe_key(
                key,
                format!("names starting with {TMP_PREFIX:?} are reserved for temporary files"),
            ));
        }
        Ok(())
    }

    /// Looks the key up without following symbolic links anywhere below the root.
    fn find(&self, op: &'static str, key: &KitPath) -> Result<Found, StoreError> {
        self.check_reserved(key)?;
        let mut path = self.root.clone();
        let n = key.components().count();
        for (i, c) in key.components().enumerate() {
            path.push(c);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Absent),
                Err(e) => return Err(self.io(op, key.as_str(), e)),
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Err(self.unsafe_key(key, format!("{} is a symbolic link", path.display())));
            }
            if i + 1 < n {
                if !ft.is_dir() {
                    return Ok(Found::Absent);
                }
            } else if ft.is_file() {
                return Ok(Found::File(path, meta.len()));
            } else {
                return Err(
                    self.unsafe_key(key, format!("{} is not a regular file", path.display()))
                );
            }
        }
        Ok(Found::Absent)
    }

    /// Opens the object at `key` for reading, with its size; `None` when there is none. The same
    /// rules as [`FileStore::find`] — no symbolic link anywhere below the root, a regular file at
    /// the end — but in one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the root folder
    /// where the kernel has it (Linux 5.6+), instead of a lookup per path component, and without
    /// a window between the check and the open. Elsewhere, `find` then open.
    fn open_object(&self, key: &KitPath) -> Result<Option<(fs::File, u64)>, StoreError> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        use rustix::io::Errno;
        self.check_reserved(key)?;
        let root = match fs::File::open(&self.root) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("get", key.as_str(), e)),
        };
        let opened = rustix::fs::openat2(
            &root,
            key.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        );
        let file = match opened {
            Ok(fd) => fs::File::from(fd),
            // A missing component, or a file where a folder would be: no object.
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(Errno::LOOP | Errno::XDEV) => {
                return Err(self.unsafe_key(key, "a symbolic link is on its path".to_owned()));
            }
            Err(Errno::NOSYS | Errno::PERM | Errno::INVAL) => {
                // No openat2 here (or refused by a sandbox): check each component, then open.
                let Found::File(path, _) = self.find("get", key)? else {
                    return Ok(None);
                };
                match fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(self.io("get", key.as_str(), e)),
                }
            }
            Err(e) => return Err(self.io("get", key.as_str(), e.into())),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.io("get", key.as_str(), e))?;
        if !meta.is_file() {
            return Err(self.unsafe_key(key, "it is not a regular file".to_owned()));
        }
        Ok(Some((file, meta.len())))
    }

    /// Creates the key's parent folders as needed (refusing links and files on the way) and
    /// returns the parent folder.
    fn prepare_parent(&self, key: &KitPath) -> Result<PathBuf, StoreError> {
        if !self.root.exists() {
            fs::create_dir_all(&self.root).map_err(|e| self.io("create store folder", "", e))?;
            if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
                self.mark_dirty(parent);
            }
        }
        let mut dir = self.root.clone();
        let parents: Vec<&str> = key.components().collect();
        for c in &parents[..parents.len().saturating_sub(1)] {
            let parent = dir.clone();
            dir.push(c);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_dir() => continue,
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(
                        self.unsafe_key(key, format!("{} is a symbolic link", dir.display()))
                    );
                }
                Ok(_) => {
                    return Err(
                        self.unsafe_key(key, format!("{} is a file, not a folder", dir.display()))
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io("put", key.as_str(), e)),
            }
            match fs::create_dir(&dir) {
                Ok(()) => self.mark_dirty(&parent),
                // A concurrent put created it: check what it is.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let m =
                        fs::symlink_metadata(&dir).map_err(|e| self.io("put", key.as_str(), e))?;
                    if !m.file_type().is_dir() {
                        return Err(
                            self.unsafe_key(key, format!("{} is not a folder", dir.display()))
                        );
                    }
                }
                Err(e) => return Err(self.io("put", key.as_str(), e)),
            }
        }
        Ok(dir)
    }
}

/// Copies `r` into `w` with a buffer of up to [`COPY_BUF`] bytes, no larger than the `expected`
/// size needs (a zeroed 256 KiB buffer per small object would cost more than reading it); returns
/// the byte count.
fn copy(r: &mut dyn Read, w: &mut dyn Write, expected: u64) -> io::Result<u64> {
    let len = usize::try_from(expected.saturating_add(1))
        .unwrap_or(COPY_BUF)
        .clamp(512, COPY_BUF);
    let mut buf = vec![0u8; len];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

impl Store for FileStore {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn stat(&self, key: &KitPath) -> Result<Option<u64>, StoreError> {
        Ok(match self.find("stat", key)? {
            Found::File(_, size) => Some(size),
            Found::Absent => None,
        })
    }

    fn get(&self, key: &KitPath, sink: &mut dyn Write) -> Result<Option<u64>, StoreError> {
        let Some((mut f, size)) = self.open_object(key)? else {
            return Ok(None);
        };
        copy(&mut f, sink, size)
            .map(Some)
            .map_err(|e| self.io("get", key.as_str(), e))
    }

    fn put(&self, req: &PutRequest<'_>, body: &mut dyn Read) -> Result<(), StoreError> {
        let key = req.key;
        if let Found::File(..) = self.find("put", key)? {
            if req.mode == WriteMode::CreateNew {
                return Err(StoreError::AlreadyExists {
                    store: self.shown.clone(),
                    key: key.to_string(),
                });
            }
        }
        let dir = self.prepare_parent(key)?;
        let target = dir.join(key.file_name());
        let err = |e| self.io("put", key.as_str(), e);
        self.sweep_stale(&dir);
        let mut tmp = self.locked_temp(&dir).map_err(err)?;
        copy(body, tmp.as_file_mut(), req.size).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        let persisted = match req.mode {
            WriteMode::CreateNew => tmp.persist_noclobber(&target),
            WriteMode::Replace => tmp.persist(&target),
        };
        if let Err(e) = persisted {
            return Err(if e.error.kind() == io::ErrorKind::AlreadyExists {
                StoreError::AlreadyExists {
                    store: self.shown.clone(),
                    key: key.to_string(),
                }
            } else {
                err(e.error)
            });
        }
        self.mark_dirty(&dir);
        Ok(())
    }

    fn delete(&self, key: &KitPath) -> Result<bool, StoreError> {
        let Found::File(path, _) = self.find("delete", key)? else {
            return Ok(false);
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io("delete", key.as_str(), e)),
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        sync_dir(dir).map_err(|e| self.io("delete", key.as_str(), e))?;
        Ok(true)
    }

    fn list(
        &self,
        under: Option<&KitPath>,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let start = under.map_or_else(|| self.root.clone(), |u| u.under(&self.root));
        if !start.is_dir() {
            return Ok(());
        }
        let walk = walkdir::WalkDir::new(&start)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|e| self.io("list", "", e.into()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let Some(key) = rel
                .to_str()
                .map(|s| s.replace(std::path::MAIN_SEPARATOR, "/"))
            else {
                continue;
            };
            if KitPath::new(&key).is_err() || key.split('/').any(|c| c.starts_with(TMP_PREFIX)) {
                continue;
            }
            let size = entry
                .metadata()
                .map_err(|e| self.io("list", &key, e.into()))?
                .len();
            if visit(ObjectInfo {
                key,
                size,
                etag: None,
            })
            .is_break()
            {
                break;
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        let dirs: Vec<PathBuf> = {
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            dirty.drain().collect()
        };
        for (i, dir) in dirs.iter().enumerate() {
            if let Err(e) = sync_dir(dir) {
                // Keep what was not synced for a later attempt.
                let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                dirty.extend(dirs[i..].iter().cloned());
                return Err(self.io("sync", "", e));
            }
        }
        Ok(())
    }

    /// Many: concurrent fsyncs share journal commits, which is what a put mostly waits for.
    fn default_parallelism(&self) -> usize {
        16
    }

    fn lookup(&self) -> Lookup {
        Lookup::PerKey
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
