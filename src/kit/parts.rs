//! A kit cut into parts for removable media (docs/FORMAT.md, "Parts").
//!
//! Part `n` of `NAME-VERSION.kit.tar.zst` is `NAME-VERSION.kit.tar.zst.NNN` (`001` first): the
//! kit's bytes cut at zstd frame boundaries, so `cat` of the parts in order is the kit. Part 1
//! holds the header frame — the signed manifest, whose frame index lists every later frame by
//! size and SHA-256 — so each part can be checked against the signed index before a byte of it is
//! decompressed: a missing, truncated, swapped, stale or foreign part is named.
//!
//! [`find`] recognises parts (a first part, or a folder holding one kit's parts); [`Parts::plan`]
//! checks their sizes against the index; [`PartsReader`] reads them in order, hashing each part
//! frame by frame against the index before handing out its bytes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::kit::digest::Sha256Hex;
use crate::kit::manifest::FrameEntry;

/// Most parts a kit is cut into (three-digit suffixes).
pub const MAX_PARTS: usize = 999;
/// The largest part FAT32 holds (4 GiB − 1 byte).
pub const FAT32_MAX: u64 = (4 << 30) - 1;

/// A part that is missing, cut wrong, or not the kit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {message}")]
pub struct PartError {
    /// The part's file name (or the kit's, for what concerns all parts).
    pub part: String,
    /// What is wrong.
    pub message: String,
}

impl PartError {
    fn new(part: impl Into<String>, message: impl Into<String>) -> PartError {
        PartError {
            part: crate::kit::path::printable_text(&part.into()),
            message: message.into(),
        }
    }

    /// The error inside an `io::Error` from [`PartsReader`], if any.
    pub fn of(e: &io::Error) -> Option<&PartError> {
        e.get_ref().and_then(|i| i.downcast_ref::<PartError>())
    }
}

/// The name of part `n` (1-based) of the kit file `kit`.
pub fn part_name(kit: &str, n: usize) -> String {
    format!("{kit}.{n:03}")
}

/// The kit file name and part number of a part's file name.
fn parse_part_name(name: &str) -> Option<(&str, usize)> {
    let (kit, n) = name.rsplit_once('.')?;
    if !kit.ends_with(".kit.tar.zst") || n.len() != 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = n.parse().ok()?;
    (n >= 1).then_some((kit, n))
}

/// The parts of one kit, in order, with their sizes when found.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The kit's file name (`NAME-VERSION.kit.tar.zst`).
    pub kit: String,
    /// The part files, part 1 first.
    pub files: Vec<PathBuf>,
    /// Their sizes.
    pub sizes: Vec<u64>,
}

/// The parts `path` names — a first part (`….kit.tar.zst.001`) or a folder holding the parts of
/// exactly one kit — or `None` when it names neither (a kit file). Parts must be numbered from 1
/// without a gap.
pub fn find(path: &Path) -> Result<Option<Parts>, PartError> {
    let shown = path.display().to_string();
    let (dir, kit) = if path.is_dir() {
        let mut kits: Vec<String> = list(path, &shown)?
            .iter()
            .filter_map(|n| parse_part_name(n).map(|(k, _)| k.to_owned()))
            .collect();
        kits.sort();
        kits.dedup();
        match kits.as_slice() {
            [] => return Ok(None),
            [one] => (path.to_path_buf(), one.clone()),
            _ => {
                return Err(PartError::new(
                    shown,
                    format!(
                        "the folder holds parts of several kits ({}); give the first part",
                        kits.join(", ")
                    ),
                ));
            }
        }
    } else {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match parse_part_name(name) {
            Some((kit, 1)) => (
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
                kit.to_owned(),
            ),
            Some((_, n)) => {
                return Err(PartError::new(
                    name,
                    format!("this is part {n}; give the first part (.001) or the folder"),
                ));
            }
            None => return Ok(None),
        }
    };
    let mut numbers: Vec<usize> = list(&dir, &dir.display().to_string())?
        .iter()
        .filter_map(|n| {
            parse_part_name(n)
                .filter(|(k, _)| *k == kit)
                .map(|(_, n)| n)
        })
        .collect();
    numbers.sort_unstable();
    if numbers.is_empty() {
        return Err(PartError::new(part_name(&kit, 1), "part 1 is missing"));
    }
    if numbers.len() > MAX_PARTS {
        return Err(PartError::new(&kit, format!("more than {MAX_PARTS} parts")));
    }
    if let Some(missing) = (1..=numbers.len()).find(|&i| numbers[i - 1] != i) {
        return Err(PartError::new(
            part_name(&kit, missing),
            format!(
                "part {missing} is missing (parts {} are here)",
                crate::util::comma_list(&numbers)
            ),
        ));
    }
    let mut files = Vec::new();
    let mut sizes = Vec::new();
    for n in numbers {
        let f = dir.join(part_name(&kit, n));
        let meta = std::fs::symlink_metadata(&f)
            .map_err(|e| PartError::new(part_name(&kit, n), e.to_string()))?;
        if !meta.is_file() {
            return Err(PartError::new(
                part_name(&kit, n),
                "is not a regular file (a link or a folder)",
            ));
        }
        files.push(f);
        sizes.push(meta.len());
    }
    Ok(Some(Parts { kit, files, sizes }))
}

fn list(dir: &Path, shown: &str) -> Result<Vec<String>, PartError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PartError::new(shown, e.to_string()))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect())
}

/// The frames each part must hold, checked against the part sizes.
#[derive(Debug, Clone)]
pub struct PartsPlan {
    parts: Parts,
    /// Size of the header frame (the start of part 1).
    header_frame: u64,
    /// Per part: the frames of the index it holds (part 1's after the header frame).
    frames: Vec<Vec<FrameEntry>>,
}

impl Parts {
    /// The first part's name.
    pub fn first_name(&self) -> String {
        part_name(&self.kit, 1)
    }

    fn name(&self, i: usize) -> String {
        part_name(&self.kit, i + 1)
    }

    /// Checks the part sizes against the signed frame index (`frames`, every frame after the
    /// header frame of `header_frame` bytes): each part must end at a frame boundary and the
    /// parts must hold the whole kit, no more.
    pub fn plan(self, header_frame: u64, frames: &[FrameEntry]) -> Result<PartsPlan, PartError> {
        if frames.is_empty() {
            return Err(PartError::new(
                &self.kit,
                "the kit has no frame index, so its parts cannot be checked: join them (offkit join, or cat) and use the whole kit",
            ));
        }
        let total = frames
            .iter()
            .try_fold(header_frame, |t, f| t.checked_add(f.size))
            .ok_or_else(|| PartError::new(&self.kit, "the frame index adds up past 2^64 bytes"))?;
        let mut per_part = Vec::with_capacity(self.files.len());
        let mut next = 0usize; // next frame of the index
        let mut at = 0u64; // offset in the kit
        for (i, &size) in self.sizes.iter().enumerate() {
            let end = at
                .checked_add(size)
                .ok_or_else(|| PartError::new(self.name(i), "the parts add up past 2^64 bytes"))?;
            if size == 0 {
                return Err(PartError::new(self.name(i), "is empty"));
            }
            let mut held = Vec::new();
            let mut boundary = at;
            if i == 0 {
                if size < header_frame {
                    return Err(PartError::new(
                        self.name(0),
                        format!(
                            "{size} bytes cannot hold the kit's {header_frame}-byte header frame: truncated"
                        ),
                    ));
                }
                boundary = header_frame;
            }
            while boundary < end {
                let Some(f) = frames.get(next) else {
                    return Err(PartError::new(
                        self.name(i),
                        format!(
                            "goes beyond the kit's end ({total} bytes): it is not a part of this kit"
                        ),
                    ));
                };
                boundary = boundary.saturating_add(f.size);
                held.push(f.clone());
                next += 1;
            }
            if boundary != end {
                return Err(PartError::new(
                    self.name(i),
                    format!(
                        "ends inside frame {next} of the kit ({size} bytes; a boundary is at {}): truncated, or not cut by offkit split",
                        size + (boundary - end)
                    ),
                ));
            }
            per_part.push(held);
            at = end;
        }
        if at != total {
            let n = self.files.len();
            return Err(PartError::new(
                part_name(&self.kit, n + 1),
                format!(
                    "missing: parts 1 to {n} hold {at} of the kit's {total} bytes (the last part(s) are missing)"
                ),
            ));
        }
        Ok(PartsPlan {
            parts: self,
            header_frame,
            frames: per_part,
        })
    }
}

impl PartsPlan {
    /// The parts.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// A reader of the whole kit from its parts, checking each part whole before handing out its
    /// first byte.
    pub fn reader(&self) -> PartsReader {
        PartsReader {
            plan: self.clone(),
            index: 0,
            current: None,
            checked_first: true,
        }
    }

    /// A reader of the whole kit from its parts that checks each frame as it passes: for copies
    /// that are thrown away on an error (`join`, `split`), in one read of each part.
    pub fn streaming_reader(&self) -> PartsReader {
        PartsReader {
            checked_first: false,
            ..self.reader()
        }
    }
}

/// Checks the bytes of one part, as they come, against the frames the plan gives it.
struct PartCheck {
    frames: Vec<FrameEntry>,
    /// Bytes to pass over first (part 1's header frame).
    skip: u64,
    /// The frame being hashed, and what is left of it.
    k: usize,
    left: u64,
    hasher: Sha256,
    /// The number of the part's first frame in the index (1-based), for messages.
    first_frame: usize,
}

impl PartCheck {
    fn new(plan: &PartsPlan, i: usize) -> PartCheck {
        let frames = plan.frames[i].clone();
        PartCheck {
            left: frames.first().map_or(0, |f| f.size),
            frames,
            skip: if i == 0 { plan.header_frame } else { 0 },
            k: 0,
            hasher: Sha256::new(),
            first_frame: plan.frames[..i].iter().map(Vec::len).sum::<usize>() + 1,
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        let skipped = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(data.len());
        self.skip -= skipped as u64;
        data = &data[skipped..];
        while !data.is_empty() {
            let Some(frame) = self.frames.get(self.k) else {
                return Err("holds more bytes than its frames".into());
            };
            let n = usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.hasher.update(&data[..n]);
            self.left -= n as u64;
            data = &data[n..];
            if self.left == 0 {
                let h = std::mem::replace(&mut self.hasher, Sha256::new());
                if Sha256Hex::from_hasher(h) != frame.sha256 {
                    return Err(format!(
                        "frame {} is not the one the kit's signed frame index lists: the part is stale, swapped, damaged or from another kit",
                        self.first_frame + self.k
                    ));
                }
                self.k += 1;
                self.left = self.frames.get(self.k).map_or(0, |f| f.size);
            }
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), String> {
        if self.skip > 0 || self.k < self.frames.len() {
            return Err("ends before its last frame".into());
        }
        Ok(())
    }
}

/// Reads the parts of a kit in order as one stream, checking each against the signed frame
/// index (part 1's header frame excepted: the signatures cover its content); a part that
/// changes size meanwhile is refused. Made by [`PartsPlan::reader`] (each part checked whole
/// before its first byte is handed out) or [`PartsPlan::streaming_reader`] (checked as it is
/// read: for copies, whose result is not used before the last byte).
pub struct PartsReader {
    plan: PartsPlan,
    index: usize,
    current: Option<(io::Take<File>, Option<PartCheck>)>,
    checked_first: bool,
}

impl PartsReader {
    fn error(&self, i: usize, message: String) -> io::Error {
        io::Error::other(PartError::new(self.plan.parts.name(i), message))
    }

    /// Opens part `i`; checked first when the reader checks parts before use.
    fn open(&self, i: usize) -> io::Result<(io::Take<File>, Option<PartCheck>)> {
        let parts = &self.plan.parts;
        let err = |m: String| self.error(i, m);
        let mut file = File::open(&parts.files[i]).map_err(|e| err(e.to_string()))?;
        let size = file.metadata().map_err(|e| err(e.to_string()))?.len();
        if size != parts.sizes[i] {
            return Err(err(format!(
                "changed size while the kit was read ({} → {size} bytes)",
                parts.sizes[i]
            )));
        }
        let mut check = PartCheck::new(&self.plan, i);
        if !self.checked_first {
            return Ok((file.take(size), Some(check)));
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| err(format!("cannot be read: {e}")))?;
            if n == 0 {
                break;
            }
            check.feed(&buf[..n]).map_err(err)?;
        }
        check.finish().map_err(err)?;
        file.seek(SeekFrom::Start(0))?;
        Ok((file.take(size), None))
    }
}

impl Read for PartsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                if self.index >= self.plan.parts.files.len() {
                    return Ok(0);
                }
                self.current = Some(self.open(self.index)?);
            }
            let i = self.index;
            let (file, check) = self.current.as_mut().expect("opened above");
            let n = file.read(out)?;
            if let Some(c) = check {
                let checked = if n > 0 { c.feed(&out[..n]) } else { c.finish() };
                if let Err(m) = checked {
                    return Err(self.error(i, m));
                }
            }
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            self.current = None;
            self.index += 1;
        }
    }
}

/// Parses a part size: bytes, or a number with `K`, `M`, `G`, `T` (binary multiples, optional
/// `iB`/`B`), or `fat32` (4 GiB − 1 byte, the largest file FAT32 holds).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("fat32") {
        return Some(FAT32_MAX);
    }
    let upper = t.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match body.chars().last()? {
        'K' => (&body[..body.len() - 1], 10),
        'M' => (&body[..body.len() - 1], 20),
        'G' => (&body[..body.len() - 1], 30),
        'T' => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1u64 << shift).filter(|&v| v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_fat32() {
        assert_eq!(parse_size("700M"), Some(700 << 20));
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("fat32"), Some((4 << 30) - 1));
        assert_eq!(parse_size("12345"), Some(12345));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("-1M"), None);
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(part_name("k-1.kit.tar.zst", 7), "k-1.kit.tar.zst.007");
        assert_eq!(
            parse_part_name("k-1.kit.tar.zst.007"),
            Some(("k-1.kit.tar.zst", 7))
        );
        assert_eq!(parse_part_name("k-1.kit.tar.zst.000"), None);
        assert_eq!(parse_part_name("k-1.tar.zst.001"), None);
        assert_eq!(parse_part_name("k-1.kit.tar.zst.1"), None);
    }

    fn frames(sizes: &[u64]) -> Vec<FrameEntry> {
        sizes
            .iter()
            .map(|&size| FrameEntry {
                size,
                sha256: Sha256Hex::of(b""),
            })
            .collect()
    }

    fn parts(sizes: &[u64]) -> Parts {
        Parts {
            kit: "k-1.kit.tar.zst".into(),
            files: sizes.iter().map(|_| PathBuf::new()).collect(),
            sizes: sizes.to_vec(),
        }
    }

    #[test]
    fn part_sizes_must_fall_on_frame_boundaries_and_cover_the_kit() {
        let index = frames(&[10, 20, 30]);
        // header 5: boundaries at 5, 15, 35, 65.
        assert!(parts(&[15, 50]).plan(5, &index).is_ok());
        assert!(parts(&[5, 10, 20, 30]).plan(5, &index).is_ok());
        let e = parts(&[15, 49]).plan(5, &index).unwrap_err();
        assert_eq!(e.part, "k-1.kit.tar.zst.002");
        assert!(e.message.contains("ends inside frame 3"), "{e}");
        let e = parts(&[15, 20]).plan(5, &index).unwrap_err();
        assert_eq!(e.part, "k-1.kit.tar.zst.003");
        assert!(e.message.contains("hold 35 of the kit's 65 bytes"), "{e}");
        let e = parts(&[15, 50, 1]).plan(5, &index).unwrap_err();
        assert_eq!(e.part, "k-1.kit.tar.zst.003");
        assert!(e.message.contains("beyond the kit's end"), "{e}");
        let e = parts(&[4, 61]).plan(5, &index).unwrap_err();
        assert!(e.message.contains("header frame"), "{e}");
        assert!(parts(&[65]).plan(5, &[]).is_err());
    }
}

/// Why a kit could not be split or its parts joined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The kit's (or part 1's) header could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: Box<crate::kit::reader::ReadError>,
    },
    /// A part (or the kit's frames) does not match the frame index.
    #[error(transparent)]
    Part(#[from] PartError),
    /// The parts cannot be this small.
    #[error(
        "--max-part-size {max} is smaller than {what} ({size} bytes); parts are cut at frame boundaries"
    )]
    TooSmall {
        /// The size asked for.
        max: u64,
        /// What does not fit.
        what: String,
        /// Its size.
        size: u64,
    },
    /// More parts than the suffixes allow.
    #[error(
        "{count} parts of at most {max} bytes; at most {MAX_PARTS} parts: choose a larger size"
    )]
    TooMany {
        /// How many there would be.
        count: usize,
        /// The size asked for.
        max: u64,
    },
    /// An output file exists.
    #[error("{path} exists; refusing to overwrite it")]
    Exists {
        /// The file.
        path: String,
    },
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl crate::exit::ExitCoded for SplitError {
    fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            SplitError::Read { .. } | SplitError::Part(_) => Exit::Verification,
            SplitError::TooSmall { .. } | SplitError::TooMany { .. } => Exit::Usage,
            SplitError::Exists { .. } | SplitError::Io { .. } => Exit::Io,
        }
    }
}

/// The frame index and header frame size of the kit (or part 1) at `file`, read from its header
/// without authenticating it: `split` and `join` only move bytes, and every reader of the result
/// checks the index against the signatures.
fn unauthenticated_index(file: &Path) -> Result<(u64, Vec<FrameEntry>), SplitError> {
    use crate::kit::reader::{Keep, KitReader, ReadError};
    let read = |source: ReadError| SplitError::Read {
        path: file.display().to_string(),
        source: Box::new(source),
    };
    let header = KitReader::open(file, crate::kit::layout::Limits::default())
        .and_then(|mut r| r.read_header(Keep::All))
        .map_err(read)?;
    let manifest: crate::kit::manifest::Manifest =
        serde_json::from_slice(&header.manifest.bytes)
            .map_err(|e| read(ReadError::Io(format!("manifest.json: {e}"))))?;
    manifest
        .check()
        .map_err(|e| read(ReadError::Io(format!("manifest.json: {e}"))))?;
    let header_frame = File::open(file)
        .and_then(|mut f| crate::kit::frame::header_frame_len(&mut f))
        .map_err(|e| read(ReadError::Io(e.to_string())))?;
    Ok((header_frame, manifest.payload.frames))
}

/// Copies exactly `len` bytes of `reader` into a new temporary file in `dir` (synced later, by
/// [`place_all`], so that the disk writes one file while the next is copied). A part error from
/// a checking reader is returned as such.
fn copy_to_temp(
    dir: &Path,
    reader: &mut impl Read,
    len: u64,
    shown: &Path,
) -> Result<tempfile::NamedTempFile, SplitError> {
    let io_err = |source| SplitError::Io {
        path: shown.display().to_string(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".offkit-part-")
        .tempfile_in(dir)
        .map_err(|e| io_err(crate::util::without_temp_path(e)))?;
    // 1 MiB at a time: io::copy's 8 KiB would mean a million system calls per GiB.
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    while copied < len {
        let want = usize::try_from(len - copied)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = reader
            .read(&mut buf[..want])
            .map_err(|e| match PartError::of(&e) {
                Some(p) => SplitError::Part(p.clone()),
                None => io_err(e),
            })?;
        if n == 0 {
            break;
        }
        tmp.as_file_mut().write_all(&buf[..n]).map_err(io_err)?;
        copied += n as u64;
    }
    if copied != len {
        return Err(io_err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{copied} of {len} bytes"),
        )));
    }
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io_err)?;
    Ok(tmp)
}

/// The folder a new file `path` goes into.
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Syncs finished temporary files, moves them to their names (never replacing a file), then
/// syncs the folder: nothing appears before every file is on disk.
fn place_all(files: Vec<(tempfile::NamedTempFile, PathBuf)>) -> Result<(), SplitError> {
    for (tmp, path) in &files {
        tmp.as_file().sync_all().map_err(|source| SplitError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    let mut dir = None;
    let mut placed: Vec<PathBuf> = Vec::new();
    for (tmp, path) in files {
        if let Err(e) = tmp.persist_noclobber(&path) {
            // All or nothing: the files already placed go again.
            for p in &placed {
                let _ = std::fs::remove_file(p);
            }
            return Err(SplitError::Io {
                path: path.display().to_string(),
                source: e.error,
            });
        }
        dir = Some(folder_of(&path).to_path_buf());
        placed.push(path);
    }
    if let Some(d) = dir {
        crate::util::sync_dir(&d).map_err(|source| SplitError::Io {
            path: d.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Reads `reader` to its end (so that a checking reader checks the last part's end).
fn read_to_end_checked(reader: &mut impl Read, shown: &Path) -> Result<(), SplitError> {
    let mut rest = Vec::new();
    reader
        .take(1)
        .read_to_end(&mut rest)
        .map_err(|e| match PartError::of(&e) {
            Some(p) => SplitError::Part(p.clone()),
            None => SplitError::Io {
                path: shown.display().to_string(),
                source: e,
            },
        })?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(SplitError::Part(PartError::new(
            shown.display().to_string(),
            "holds bytes past the kit's frames",
        )))
    }
}

/// Cuts the kit at `kit` into parts of at most `max` bytes at frame boundaries, written into
/// `out_dir` as `NAME.kit.tar.zst.001`…, in one read of the kit that checks every frame against
/// its frame index, so that no part is written that a site would refuse (all parts are placed
/// only once every one is written). Returns the part files.
pub fn split(kit: &Path, max: u64, out_dir: &Path) -> Result<Vec<PathBuf>, SplitError> {
    let (header_frame, frames) = unauthenticated_index(kit)?;
    let name = kit
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("kit.kit.tar.zst")
        .to_owned();
    let size = std::fs::metadata(kit)
        .map_err(|source| SplitError::Io {
            path: kit.display().to_string(),
            source,
        })?
        .len();
    if frames.is_empty() {
        return Err(SplitError::Part(PartError::new(
            &name,
            "the kit has no frame index (built by an older offkit?); rebuild it to split it",
        )));
    }
    let not_indexed = || {
        SplitError::Part(PartError::new(
            &name,
            "its frames are not the ones its signed frame index lists (was it recompressed?); only a kit as offkit build or offkit sign wrote it can be split",
        ))
    };
    let whole = Parts {
        kit: name.clone(),
        files: vec![kit.to_path_buf()],
        sizes: vec![size],
    };
    let plan = whole
        .plan(header_frame, &frames)
        .map_err(|_| not_indexed())?;
    // Greedy cuts: as many whole frames as fit in each part.
    if header_frame > max {
        return Err(SplitError::TooSmall {
            max,
            what: "the header frame".into(),
            size: header_frame,
        });
    }
    let mut cuts = vec![0u64];
    let mut at = header_frame;
    let mut part_start = 0u64;
    for (i, f) in frames.iter().enumerate() {
        if f.size > max {
            return Err(SplitError::TooSmall {
                max,
                what: format!("frame {}", i + 1),
                size: f.size,
            });
        }
        if at + f.size - part_start > max {
            cuts.push(at);
            part_start = at;
        }
        at += f.size;
    }
    cuts.push(at);
    let count = cuts.len() - 1;
    if count > MAX_PARTS {
        return Err(SplitError::TooMany { count, max });
    }
    let paths: Vec<PathBuf> = (1..=count)
        .map(|n| out_dir.join(part_name(&name, n)))
        .collect();
    // Any part of this kit already there (even past the count made now) would mix with these.
    if let Some(p) = std::fs::read_dir(out_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_part_name)
                .is_some_and(|(k, _)| k == name)
        })
    {
        return Err(SplitError::Exists {
            path: p.display().to_string(),
        });
    }
    // One read of the kit, every frame checked as it passes into its part.
    let mut reader = plan.streaming_reader();
    let mut written = Vec::with_capacity(count);
    for (n, path) in paths.iter().enumerate() {
        let tmp =
            copy_to_temp(out_dir, &mut reader, cuts[n + 1] - cuts[n], path).map_err(
                |e| match e {
                    SplitError::Part(_) => not_indexed(),
                    e => e,
                },
            )?;
        written.push((tmp, path.clone()));
    }
    read_to_end_checked(&mut reader, kit).map_err(|_| not_indexed())?;
    place_all(written)?;
    Ok(paths)
}

/// Joins the parts `path` names (a first part or a folder) into the new kit file `out`, each
/// part checked against the frame index of part 1's header before it is copied. Returns the
/// number of parts and the kit's size.
pub fn join(path: &Path, out: &Path) -> Result<(usize, u64), SplitError> {
    let parts = find(path)?.ok_or_else(|| {
        PartError::new(
            path.display().to_string(),
            "names no kit parts (NAME.kit.tar.zst.001, or a folder of them)",
        )
    })?;
    let (header_frame, frames) = unauthenticated_index(&parts.files[0])?;
    let count = parts.files.len();
    let plan = parts.plan(header_frame, &frames)?;
    let total: u64 = plan.parts().sizes.iter().sum();
    if out.exists() {
        return Err(SplitError::Exists {
            path: out.display().to_string(),
        });
    }
    // One read of each part, every frame checked as it is copied; the kit appears only whole.
    let mut reader = plan.streaming_reader();
    let tmp = copy_to_temp(folder_of(out), &mut reader, total, out)?;
    read_to_end_checked(&mut reader, out)?;
    place_all(vec![(tmp, out.to_path_buf())])?;
    Ok((count, total))
}
