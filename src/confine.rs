//! A folder held open as a handle, with every later operation relative to it.
//!
//! A path is looked up once, when the folder is opened, and never again: files and subfolders
//! are created, renamed and removed through `openat`-style calls on the handle, each path
//! component opened with `O_NOFOLLOW | O_DIRECTORY`, so a symbolic link anywhere below the
//! folder — including one swapped in while work is under way — is refused instead of followed,
//! and a folder moved elsewhere meanwhile takes the work with it rather than redirecting it.
//! [`Confined::still_at_path`] tells whether the path still names the folder at the end.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// A folder, open.
#[derive(Clone)]
pub struct Confined {
    dir: Arc<File>,
    path: PathBuf,
}

impl std::fmt::Debug for Confined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Confined").field(&self.path).finish()
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn refused(what: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {why}", what.display()),
    )
}

/// The error for opening `name` as a folder without following a link.
fn dir_error(e: Errno, at: &Path) -> io::Error {
    match e {
        Errno::LOOP | Errno::NOTDIR => refused(at, "is a symbolic link or not a folder"),
        e => io::Error::from(e),
    }
}

impl Confined {
    /// Opens the folder `path`. Its last component must be a folder, not a symbolic link to one
    /// (a trailing slash does not change that); with `create`, an absent folder is made (its
    /// parents too). Returns the folder and whether this call created it.
    pub fn open(path: &Path, create: bool) -> io::Result<(Confined, bool)> {
        let (parent, name) = split(path)?;
        if create {
            std::fs::create_dir_all(&parent)?;
        }
        let parent_dir = File::open(&parent)?;
        let mut created = false;
        let fd = match rustix::fs::openat(&parent_dir, name, DIR_FLAGS, Mode::empty()) {
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&parent_dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) => created = true,
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rustix::fs::openat(&parent_dir, name, DIR_FLAGS, Mode::empty())
                    .map_err(|e| dir_error(e, path))?
            }
            other => other.map_err(|e| dir_error(e, path))?,
        };
        Ok((
            Confined {
                dir: Arc::new(File::from(fd)),
                path: path.to_path_buf(),
            },
            created,
        ))
    }

    /// The path the folder was opened at (for messages, and for readers that work by path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the folder has no entry.
    pub fn is_empty(&self) -> io::Result<bool> {
        let dir = rustix::fs::Dir::read_from(self.dir.as_fd())?;
        for entry in dir {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// True when `path` still names this very folder (same device and inode, not a link).
    pub fn still_at_path(&self) -> io::Result<bool> {
        let held = self.dir.metadata()?;
        Ok(match std::fs::symlink_metadata(&self.path) {
            Ok(now) => now.is_dir() && now.dev() == held.dev() && now.ino() == held.ino(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        })
    }

    /// Makes a new subfolder `name` (refused when it exists) and opens it.
    pub fn create_dir(&self, name: &str) -> io::Result<Confined> {
        rustix::fs::mkdirat(&*self.dir, name, Mode::from_raw_mode(0o755))?;
        self.sub(name)
    }

    /// Opens the existing subfolder `name`, never through a link.
    pub fn sub(&self, name: &str) -> io::Result<Confined> {
        let path = self.path.join(name);
        let fd = rustix::fs::openat(&*self.dir, name, DIR_FLAGS, Mode::empty())
            .map_err(|e| dir_error(e, &path))?;
        Ok(Confined {
            dir: Arc::new(File::from(fd)),
            path,
        })
    }

    /// Creates the new file `rel` (a `/`-separated relative path of plain components), making its
    /// parent folders as needed. Every component is opened without following links; the file
    /// itself must not exist. `parent` caches the last parent folder opened, so that files of
    /// one folder written in a row cost one open each.
    pub fn create_file(
        &self,
        rel: &str,
        mode: u32,
        parent: &mut Option<(String, Confined)>,
    ) -> io::Result<File> {
        let (dir_part, leaf) = match rel.rsplit_once('/') {
            Some((d, l)) => (d, l),
            None => ("", rel),
        };
        if !dir_part.is_empty() && parent.as_ref().is_none_or(|(p, _)| p != dir_part) {
            let mut dir = self.clone();
            for c in dir_part.split('/') {
                check_component(c, rel)?;
                dir = match dir.sub(c) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        match rustix::fs::mkdirat(&*dir.dir, c, Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(e) => return Err(e.into()),
                        }
                        dir.sub(c)?
                    }
                    other => other?,
                };
            }
            *parent = Some((dir_part.to_owned(), dir));
        }
        check_component(leaf, rel)?;
        let dir = match parent {
            Some((_, d)) if !dir_part.is_empty() => d,
            _ => self,
        };
        let fd = rustix::fs::openat(
            &*dir.dir,
            leaf,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| match e {
            Errno::EXIST => refused(&self.path.join(rel), "already exists"),
            e => io::Error::from(e),
        })?;
        Ok(File::from(fd))
    }

    /// Opens the regular file `rel` for reading, never through a link at any component, never
    /// blocking on a FIFO. A link or anything but a regular file is refused
    /// ([`io::ErrorKind::InvalidInput`]); a missing one is [`io::ErrorKind::NotFound`].
    pub fn open_regular(&self, rel: &str) -> io::Result<File> {
        let (dir, leaf) = match rel.rsplit_once('/') {
            Some((d, l)) => {
                let mut dir = self.clone();
                for c in d.split('/') {
                    check_component(c, rel)?;
                    dir = dir.sub(c)?;
                }
                (dir, l)
            }
            None => (self.clone(), rel),
        };
        check_component(leaf, rel)?;
        let fd = rustix::fs::openat(
            &*dir.dir,
            leaf,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP => refused(&self.path.join(rel), "is a symbolic link"),
            e => io::Error::from(e),
        })?;
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(refused(&self.path.join(rel), "is not a regular file"));
        }
        Ok(file)
    }

    /// True when `name` exists in the folder (whatever it is; links are not followed).
    pub fn contains(&self, name: &str) -> io::Result<bool> {
        match rustix::fs::statat(&*self.dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `name` from this folder to `to_name` in `to` (refused when that exists).
    pub fn rename_to(&self, name: &str, to: &Confined, to_name: &str) -> io::Result<()> {
        rustix::fs::renameat_with(
            &*self.dir,
            name,
            &*to.dir,
            to_name,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(io::Error::from)
    }

    /// The names in the folder (`.` and `..` left out; a name that is not UTF-8 is given
    /// lossily, so that opening it fails rather than reaching another file).
    pub fn names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(self.dir.as_fd())? {
            let entry = entry?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    /// Removes `name` and everything below it, never following a link.
    pub fn remove_tree(&self, name: &str) -> io::Result<()> {
        match self.sub(name) {
            Ok(sub) => {
                for n in sub.names()? {
                    sub.remove_tree(&n)?;
                }
                rustix::fs::unlinkat(&*self.dir, name, AtFlags::REMOVEDIR)?;
            }
            Err(_) => match rustix::fs::unlinkat(&*self.dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            },
        }
        Ok(())
    }

    /// Flushes the folder's entries to disk.
    pub fn sync(&self) -> io::Result<()> {
        self.dir.sync_all()
    }
}

/// The parent to open and the last component, trailing slashes and `.` ignored.
fn split(path: &Path) -> io::Result<(PathBuf, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| refused(path, "names no folder (give a folder's path)"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

fn check_component(c: &str, rel: &str) -> io::Result<()> {
    if c.is_empty() || c == "." || c == ".." || c.contains('\0') {
        return Err(refused(Path::new(rel), "is not a plain relative path"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_at_the_folder_and_at_every_step_below_it() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // With or without a trailing slash, a link is not the folder.
        for p in [link.clone(), PathBuf::from(format!("{}/", link.display()))] {
            let e = Confined::open(&p, true).unwrap_err();
            assert!(e.to_string().contains("symbolic link"), "{p:?}: {e}");
        }
        let (c, created) = Confined::open(&d.path().join("new/"), true).unwrap();
        assert!(created && c.is_empty().unwrap());
        std::os::unix::fs::symlink(&real, d.path().join("new/sub")).unwrap();
        let mut cache = None;
        let e = c.create_file("sub/x.txt", 0o644, &mut cache).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(std::fs::read_dir(&real).unwrap().next().is_none());
        // A file is created once, folders as needed; `..` is never a component.
        c.create_file("a/b/x.txt", 0o644, &mut cache).unwrap();
        assert!(c.create_file("a/b/x.txt", 0o644, &mut cache).is_err());
        assert!(c.create_file("a/../x", 0o644, &mut cache).is_err());
        assert!(d.path().join("new/a/b/x.txt").is_file());
    }

    #[test]
    fn a_folder_moved_away_takes_the_work_with_it() {
        let d = tempfile::tempdir().unwrap();
        let (c, _) = Confined::open(&d.path().join("t"), true).unwrap();
        assert!(c.still_at_path().unwrap());
        std::fs::rename(d.path().join("t"), d.path().join("moved")).unwrap();
        let outside = d.path().join("elsewhere");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, d.path().join("t")).unwrap();
        let mut cache = None;
        c.create_file("f", 0o644, &mut cache).unwrap();
        assert!(d.path().join("moved/f").is_file());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        assert!(!c.still_at_path().unwrap());
    }

    #[test]
    fn a_tree_is_removed_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let keep = d.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        std::fs::write(keep.join("precious"), b"x").unwrap();
        let (c, _) = Confined::open(&d.path().join("t"), true).unwrap();
        let mut cache = None;
        c.create_file("s/a/f", 0o644, &mut cache).unwrap();
        std::os::unix::fs::symlink(&keep, d.path().join("t/s/a/link")).unwrap();
        c.remove_tree("s").unwrap();
        assert!(!c.contains("s").unwrap());
        assert!(keep.join("precious").is_file());
    }
}
