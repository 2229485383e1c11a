//! Small shared helpers: hex SHA-256, atomic file writes, safe opening of files someone else may
//! have replaced, secrets that cannot be printed, percent-encoding, and showing untrusted text.

use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// A secret string (a password, an S3 key, a URL that contains one). `Debug` and `Display` print
/// `***`; only [`Secret::expose`] gives the value, for handing it to a client library.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, to pass to a client library. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What is shown in place of a secret.
pub const REDACTED: &str = "***";

impl Secret {
    /// True when the value is [`REDACTED`]: the secret of a URL read back from a report or a
    /// ledger, where it was never kept. Such a value must not be sent to a server as a password.
    pub fn is_placeholder(&self) -> bool {
        self.0 == REDACTED
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Percent-decodes URL text the way libpq does (`%41` → `A`; a `+` stays a `+`). `None` for an
/// invalid escape or a result that is not UTF-8; the caller's error must not quote `s`, which may
/// be (part of) a password.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes every byte but the unreserved ones (RFC 3986 §2.3: letters, digits, `-._~`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name in `known` closest to `word` (at most two edits apart, ignoring case): what to
/// suggest for a mistyped option without quoting the typo, which may be part of a secret (a
/// password holding a raw `&` or a space splits into "options").
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word: Vec<char> = word.to_lowercase().chars().collect();
    known
        .iter()
        .map(|k| (edit_distance(&word, &k.chars().collect::<Vec<_>>()), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// `s` with control characters escaped (`\u{1b}` for ESC and so on), so that text from a kit, a
/// file or a server cannot drive a terminal.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Untrusted text made safe to show: at most 80 characters, control characters escaped.
pub fn printable_short(s: &str) -> String {
    escape_controls(&s.chars().take(80).collect::<String>())
}

/// Parses `500ms`, `30s`, `5m`, `1h` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {:?}", printable_short(s)))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {:?} (ms, s, m, h)",
                printable_short(s)
            ));
        }
    };
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|e| format!("invalid duration {:?}: {e}", printable_short(s)))
}

/// A duration in whole milliseconds, as every report gives it (`duration_ms`).
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration as `parse_duration` reads it: `250ms`, `5s`, `10m`, `2h` (whole units when exact).
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `bytes` random bytes as lowercase hex, for names no one can guess (a failure of the system's
/// random source falls back to the time and process id: still unique, no longer secret).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{t:x}{:x}", std::process::id());
    }
    hex::encode(b)
}

/// `items` one after the other, separated by `, `.
pub fn comma_list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1.5 MiB`-style sizes (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// fsync of the folder. `mode` sets Unix permissions of the new file. With `overwrite` false an
/// existing `path` is an `AlreadyExists` error and is left untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> io::Result<()> {
    write_atomic_with(path, mode, overwrite, |w| w.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes (through a buffer): a large document is written as it
/// is made, never held whole.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    overwrite: bool,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".offkit-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(without_temp_path)?;
    let mut buffered = io::BufWriter::with_capacity(256 * 1024, tmp.as_file_mut());
    write(&mut buffered)?;
    buffered.flush()?;
    drop(buffered);
    tmp.as_file().sync_all()?;
    if overwrite {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    sync_dir(dir)
}

/// An error of the `tempfile` crate without the temporary file's path it appends (`… at path
/// /x/.offkit-tmp-AbC`): offkit's messages name the file the user asked for, which the caller
/// adds, never a temporary one that no longer exists.
pub fn without_temp_path(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let inner = e
        .get_ref()
        .and_then(|i| i.source())
        .and_then(|s| s.downcast_ref::<io::Error>());
    match inner {
        Some(i) => match i.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(i.kind(), i.to_string()),
        },
        None => e,
    }
}

/// fsyncs a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Lowercase hex SHA-256 of a file's content, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Opens `path` for reading only if it is a regular file: never through a symbolic link in its
/// last component (`O_NOFOLLOW`), and without blocking on a FIFO or a device (`O_NONBLOCK`, which
/// regular files ignore) — anything else is an `InvalidInput` error. For files someone else may
/// have replaced, such as a work folder's.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
pub fn read_full(r: &mut (impl std::io::Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        for d in ["250ms", "5s", "10m", "2h", "0s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn percent_coding_round_trips_and_keeps_plus() {
        assert_eq!(percent_decode("a%2Fb%40c+d").as_deref(), Some("a/b@c+d"));
        assert_eq!(percent_decode("pass%77ord").as_deref(), Some("password"));
        for bad in ["%", "%4", "%ZZ", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        let s = "p@ss/w?rd&x=y é";
        assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
    }

    #[test]
    fn closest_suggests_a_known_name_only() {
        let known = ["sslmode", "host", "password", "region"];
        assert_eq!(closest("sslmod", &known), Some("sslmode"));
        assert_eq!(closest("SSLMODE", &known), Some("sslmode"));
        assert_eq!(closest("regoin", &known), Some("region"));
        assert_eq!(closest("hunter2", &known), None);
        assert_eq!(closest("", &known), None);
    }

    #[test]
    fn open_regular_refuses_links_fifos_and_folders_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_regular(&file).is_ok());
        let link = d.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_regular(&link).is_err());
        let fifo = d.path().join("p");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(
            open_regular(&fifo).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(open_regular(d.path()).is_err());
    }
}
