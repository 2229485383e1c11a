//! The site trust store: a folder of numbered trust versions (`N.root.json`, TUF root metadata,
//! [`crate::trust::root`]), the first pinned by `offkit trust init`, each later one accepted only
//! when signed by a threshold of the previous version's root keys and of its own (TUF 1.0 §5.3.4).
//! `--trust DIR` reads it: the newest version's `targets` keys sign kits.
//!
//! The folder is re-checked whenever it is opened: the versions must run without a gap from the
//! first, each file's name must be its version, and every step must verify. A version written
//! into the folder by hand is therefore only as good as its signatures. Versions are written
//! through a temporary file, synced and renamed into place without replacing anything, so a
//! killed update leaves the store as it was.

use std::io::{Read, Write};
use std::path::Path;

use crate::confine::Confined;
use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::trust_version_name;
use crate::trust::root::{Count, MAX_ROOT_BYTES, RootError, RootVersion, describe};

/// Most versions a store holds (a rotation a week for a century fits).
pub const MAX_VERSIONS: usize = 10_000;

/// Why a trust store could not be used or a version was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file is not a usable trust version.
    #[error(transparent)]
    Root(#[from] RootError),
    /// Reading or writing the store, or a trust version file, failed.
    #[error("{path}: {source}")]
    Io {
        /// The store or file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The folder is not a trust store.
    #[error("{path} is not a trust store: {why}")]
    NotAStore {
        /// The folder.
        path: String,
        /// Why.
        why: String,
    },
    /// `trust init` on a folder that already holds a store.
    #[error(
        "{path} already holds a trust store at version {version}; use `offkit trust update` to move it on"
    )]
    Initialised {
        /// The folder.
        path: String,
        /// Its current version.
        version: u64,
    },
    /// A version its own root keys did not sign.
    #[error(
        "{origin}: version {version} is not signed by its own root keys ({}); refused", describe(*count)
    )]
    NotSelfSigned {
        /// The file.
        origin: String,
        /// Its version.
        version: u64,
        /// The signatures counted.
        count: Count,
    },
    /// A version the previous version's root keys did not sign.
    #[error(
        "{origin}: version {version} is not signed by a threshold of version {previous}'s root keys ({}); refused as forged", describe(*count)
    )]
    Forged {
        /// The file.
        origin: String,
        /// Its version.
        version: u64,
        /// The trusted version it had to be signed by.
        previous: u64,
        /// The signatures counted.
        count: Count,
    },
    /// A version further than one ahead of the store.
    #[error(
        "{origin}: version {version} skips version {expected} (the store is at version {current}); versions are accepted one at a time, in order"
    )]
    Skipped {
        /// The file.
        origin: String,
        /// Its version.
        version: u64,
        /// The version expected next.
        expected: u64,
        /// The store's version.
        current: u64,
    },
    /// A version older than the store's (or before its first).
    #[error(
        "{origin}: version {version} is older than the trusted version {current}; a trust store never goes back"
    )]
    Older {
        /// The file.
        origin: String,
        /// Its version.
        version: u64,
        /// The store's version.
        current: u64,
    },
    /// A version whose number the store holds with other content.
    #[error(
        "{origin}: version {version} differs from the trusted version {version} (SHA-256 {trusted}); refused"
    )]
    Conflict {
        /// The file.
        origin: String,
        /// Its version.
        version: u64,
        /// SHA-256 of the trusted file.
        trusted: String,
    },
}

impl StoreError {
    /// The file or kit entry a refused version came from.
    pub fn origin(&self) -> Option<&str> {
        match self {
            StoreError::Root(e) => Some(&e.origin),
            StoreError::NotSelfSigned { origin, .. }
            | StoreError::Forged { origin, .. }
            | StoreError::Skipped { origin, .. }
            | StoreError::Older { origin, .. }
            | StoreError::Conflict { origin, .. } => Some(origin),
            _ => None,
        }
    }
}

impl ExitCoded for StoreError {
    fn exit(&self) -> Exit {
        match self {
            StoreError::Io { .. } => Exit::Io,
            _ => Exit::Key,
        }
    }
}

/// What [`TrustStore::accept`] did with a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Verified and written: the store's new current version.
    New,
    /// The store already holds exactly this version.
    AlreadyTrusted,
}

/// An open, checked trust store.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: Confined,
    versions: Vec<RootVersion>,
}

/// `N.root.json`'s version, if the name has that shape.
fn version_of(name: &str) -> Option<u64> {
    let n = name.strip_suffix(".root.json")?;
    (!n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

fn file_name(version: u64) -> String {
    format!("{version}.root.json")
}

impl TrustStore {
    /// Pins `first` in the folder `dir` (created if absent): the site's trust anchor. Refused
    /// when the folder already holds a store or `first` is not signed by its own root keys.
    pub fn init(dir: &Path, first: RootVersion) -> Result<TrustStore, StoreError> {
        let io = |source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        };
        let (folder, _) = Confined::open(dir, true).map_err(io)?;
        if let Some(version) = folder
            .names()
            .map_err(io)?
            .iter()
            .filter_map(|n| version_of(n))
            .max()
        {
            return Err(StoreError::Initialised {
                path: dir.display().to_string(),
                version,
            });
        }
        check_self_signed(&first)?;
        let mut store = TrustStore {
            dir: folder,
            versions: Vec::new(),
        };
        store.write(&first)?;
        store.versions.push(first);
        Ok(store)
    }

    /// Opens the store in `dir` and checks it from its first version to its newest.
    pub fn open(dir: &Path) -> Result<TrustStore, StoreError> {
        let shown = dir.display().to_string();
        let io = |source| StoreError::Io {
            path: shown.clone(),
            source,
        };
        let not_a_store = |why: String| StoreError::NotAStore {
            path: shown.clone(),
            why,
        };
        let (folder, _) = Confined::open(dir, false).map_err(io)?;
        let mut numbers = Vec::new();
        for name in folder.names().map_err(io)? {
            if name.starts_with('.') {
                continue; // a temporary file of an interrupted update
            }
            let v = version_of(&name).ok_or_else(|| {
                not_a_store(format!(
                    "{} is not a trust version file (N.root.json)",
                    crate::kit::path::printable_text(&name)
                ))
            })?;
            numbers.push(v);
        }
        numbers.sort_unstable();
        let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
            return Err(not_a_store(
                "it holds no trust version; pin one with `offkit trust init`".into(),
            ));
        };
        if numbers.len() > MAX_VERSIONS {
            return Err(not_a_store(format!("more than {MAX_VERSIONS} versions")));
        }
        if let Some(w) = numbers.windows(2).find(|w| w[1] != w[0] + 1) {
            return Err(not_a_store(format!(
                "version {} is missing (the store holds {first} to {last})",
                w[0] + 1
            )));
        }
        let mut versions: Vec<RootVersion> = Vec::with_capacity(numbers.len());
        for n in numbers {
            let name = file_name(n);
            let origin = format!("{shown}/{name}");
            let v = RootVersion::parse(&read_bounded(&folder, &name, &origin)?, &origin)?;
            if v.version() != n {
                return Err(not_a_store(format!("{name} holds version {}", v.version())));
            }
            versions.push(v);
        }
        check_chain(&versions)?;
        Ok(TrustStore {
            dir: folder,
            versions,
        })
    }

    /// The newest trusted version.
    pub fn current(&self) -> &RootVersion {
        // A store always holds at least its first version.
        &self.versions[self.versions.len() - 1]
    }

    /// Every trusted version, oldest first.
    pub fn versions(&self) -> &[RootVersion] {
        &self.versions
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Checks `next` against the current version (exactly one ahead, signed by a threshold of the
    /// current root keys and of its own) and writes it; a version the store already holds byte
    /// for byte is a no-op. Expiry is not judged here (TUF §5.3.4: an intermediate version may
    /// have expired); kits are judged against the newest version's expiry.
    pub fn accept(&mut self, next: RootVersion) -> Result<Accepted, StoreError> {
        let accepted = self.check_next(&next)?;
        if accepted == Accepted::New {
            self.write(&next)?;
            self.versions.push(next);
        }
        Ok(accepted)
    }

    /// As [`TrustStore::accept`], in memory only: what verification does with the versions a kit
    /// carries before the kit is trusted.
    pub fn advance(&mut self, next: RootVersion) -> Result<Accepted, StoreError> {
        let accepted = self.check_next(&next)?;
        if accepted == Accepted::New {
            self.versions.push(next);
        }
        Ok(accepted)
    }

    /// Walks the trust versions a kit carries (`(version, bytes)` of its `trust/N.root.json`
    /// entries) from the current version: written to the folder with `write`, else in memory
    /// only. Versions before the store's first are passed over; returns those that were new.
    pub fn take_carried(
        &mut self,
        carried: &[(u64, Vec<u8>)],
        write: bool,
    ) -> Result<Vec<u64>, StoreError> {
        let first = self.versions[0].version();
        let mut new = Vec::new();
        for (n, bytes) in carried.iter().filter(|(n, _)| *n >= first) {
            let v = RootVersion::parse(bytes, &trust_version_name(*n))?;
            if v.version() != *n {
                return Err(RootError {
                    origin: trust_version_name(*n),
                    message: format!("holds version {}, not {n}", v.version()),
                }
                .into());
            }
            let accepted = if write {
                self.accept(v)?
            } else {
                self.advance(v)?
            };
            if accepted == Accepted::New {
                new.push(*n);
            }
        }
        Ok(new)
    }

    fn check_next(&self, next: &RootVersion) -> Result<Accepted, StoreError> {
        let current = self.current().version();
        let first = self.versions[0].version();
        let n = next.version();
        if n <= current {
            if n >= first && self.versions[(n - first) as usize].bytes() == next.bytes() {
                return Ok(Accepted::AlreadyTrusted);
            }
            if n == current {
                return Err(StoreError::Conflict {
                    origin: next.origin().to_owned(),
                    version: n,
                    trusted: self.current().sha256(),
                });
            }
            return Err(StoreError::Older {
                origin: next.origin().to_owned(),
                version: n,
                current,
            });
        }
        if n != current + 1 {
            return Err(StoreError::Skipped {
                origin: next.origin().to_owned(),
                version: n,
                expected: current + 1,
                current,
            });
        }
        check_step(self.current(), next)?;
        Ok(Accepted::New)
    }

    /// Writes a version under its name: a temporary file, synced, renamed without replacing.
    fn write(&self, v: &RootVersion) -> Result<(), StoreError> {
        let name = file_name(v.version());
        let tmp = format!(".{name}.tmp");
        let io = |source| StoreError::Io {
            path: self.dir.path().join(&name).display().to_string(),
            source,
        };
        self.dir.remove_tree(&tmp).map_err(io)?;
        let mut f = self.dir.create_file(&tmp, 0o644, &mut None).map_err(io)?;
        f.write_all(v.bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        self.dir.rename_to(&tmp, &self.dir, &name).map_err(io)?;
        self.dir.sync().map_err(io)
    }
}

/// Checks a chain of consecutive versions on its own: the first signed by its own root keys, each
/// later one a valid step from the one before (what `build` checks of the versions a kit carries,
/// and `open` of a store).
pub fn check_chain(versions: &[RootVersion]) -> Result<(), StoreError> {
    let Some(first) = versions.first() else {
        return Ok(());
    };
    check_self_signed(first)?;
    for w in versions.windows(2) {
        if w[1].version() != w[0].version() + 1 {
            return Err(StoreError::Skipped {
                origin: w[1].origin().to_owned(),
                version: w[1].version(),
                expected: w[0].version() + 1,
                current: w[0].version(),
            });
        }
        check_step(&w[0], &w[1])?;
    }
    Ok(())
}

fn check_self_signed(v: &RootVersion) -> Result<(), StoreError> {
    let count = v.self_signed();
    if count.met() {
        Ok(())
    } else {
        Err(StoreError::NotSelfSigned {
            origin: v.origin().to_owned(),
            version: v.version(),
            count,
        })
    }
}

/// TUF §5.3.4: `next` is signed by a threshold of `previous`'s root keys and of its own.
fn check_step(previous: &RootVersion, next: &RootVersion) -> Result<(), StoreError> {
    let count = previous.count(previous.root_role(), next);
    if !count.met() {
        return Err(StoreError::Forged {
            origin: next.origin().to_owned(),
            version: next.version(),
            previous: previous.version(),
            count,
        });
    }
    check_self_signed(next)
}

/// Reads a version file of the store.
fn read_bounded(dir: &Confined, name: &str, origin: &str) -> Result<Vec<u8>, StoreError> {
    let f = dir.open_regular(name).map_err(|source| StoreError::Io {
        path: origin.to_owned(),
        source,
    })?;
    read_limited(f, origin)
}

/// At most [`MAX_ROOT_BYTES`] of `r`, and one more byte, so that the parser refuses a larger
/// file by name.
fn read_limited(r: impl Read, origin: &str) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    r.take(MAX_ROOT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::Io {
            path: origin.to_owned(),
            source,
        })?;
    Ok(bytes)
}

/// Reads a trust version file given on the command line, bounded like the store's.
pub fn read_version(path: &Path) -> Result<RootVersion, StoreError> {
    let origin = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| StoreError::Io {
        path: origin.clone(),
        source,
    })?;
    Ok(RootVersion::parse(&read_limited(f, &origin)?, &origin)?)
}
