//! Deterministic ustar + pax header writer.

use super::BLOCK;

/// The end-of-archive marker: two zero blocks.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Largest size the 11-digit octal ustar field holds.
const MAX_USTAR_SIZE: u64 = 0o77777777777;
/// Fixed name of pax extended-header entries.
const PAX_NAME: &str = "PaxHeader";

/// Number of zero bytes that follow `size` data bytes to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// The header block(s) of a regular file: a pax extended header first when the path is longer
/// than 100 bytes or not ASCII, or the size needs more than 11 octal digits; then the ustar
/// header. `path` must already be a validated archive path.
pub fn header_bytes(path: &str, size: u64, mtime: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    let long_path = path.len() > 100 || !path.is_ascii();
    let big = size > MAX_USTAR_SIZE;
    if long_path || big {
        let mut records = Vec::new();
        if long_path {
            records.extend(pax_record("path", path));
        }
        if big {
            records.extend(pax_record("size", &size.to_string()));
        }
        out.extend(ustar(PAX_NAME, b'x', records.len() as u64, mtime));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    let short = truncate_at_char(path, 100);
    out.extend(ustar(short, b'0', if big { 0 } else { size }, mtime));
    out
}

/// Where `actual` (an entry's stored header bytes) differs from `expected` (what
/// [`header_bytes`] writes for it), named by ustar field; `None` when they are identical.
pub fn header_difference(actual: &[u8], expected: &[u8]) -> Option<&'static str> {
    if actual == expected {
        return None;
    }
    if actual.len() != expected.len() || actual.len() < BLOCK {
        return Some("pax extended header");
    }
    let split = actual.len() - BLOCK;
    if actual[..split] != expected[..split] {
        return Some("pax extended header");
    }
    const FIELDS: [(&str, usize, usize); 17] = [
        ("name", 0, 100),
        ("mode", 100, 108),
        ("uid", 108, 116),
        ("gid", 116, 124),
        ("size", 124, 136),
        ("mtime", 136, 148),
        ("checksum", 148, 156),
        ("type flag", 156, 157),
        ("link name", 157, 257),
        ("magic", 257, 263),
        ("version", 263, 265),
        ("user name", 265, 297),
        ("group name", 297, 329),
        ("device major", 329, 337),
        ("device minor", 337, 345),
        ("prefix", 345, 500),
        ("padding", 500, 512),
    ];
    let (a, e) = (&actual[split..], &expected[split..]);
    FIELDS
        .iter()
        .find(|(_, from, to)| a[*from..*to] != e[*from..*to])
        .map(|(name, _, _)| *name)
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One pax record: `"<len> <key>=<value>\n"` where `<len>` counts the whole record, itself
/// included (POSIX.1-2017, pax "Extended Header Records").
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

fn ustar(name: &str, typeflag: u8, size: u64, mtime: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime.min(MAX_USTAR_SIZE));
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    // Six octal digits, NUL, space: the form GNU tar writes.
    let digits = format!("{sum:06o}");
    h[148..154].copy_from_slice(digits.as_bytes());
    h[154] = 0;
    h[155] = b' ';
    h
}

/// Zero-padded octal of `field.len() - 1` digits followed by NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "a"), b"9 path=a\n");
        assert_eq!(pax_record("path", "abc"), b"12 path=abc\n");
        let r = pax_record("path", &"x".repeat(95));
        let text = String::from_utf8(r.clone()).unwrap();
        let n: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, r.len());
    }

    #[test]
    fn short_ascii_path_is_one_block() {
        let h = header_bytes("migrations/m/001_a.sql", 10, 1_700_000_000);
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[..22], b"migrations/m/001_a.sql");
        assert_eq!(h[156], b'0');
    }

    #[test]
    fn differences_are_named_by_field() {
        let h = header_bytes("a.txt", 5, 7);
        assert_eq!(header_difference(&h, &h), None);
        let mut setuid = h.clone();
        setuid[100..108].copy_from_slice(b"0004777\0");
        assert_eq!(header_difference(&setuid, &h), Some("mode"));
        let mut owner = h.clone();
        owner[265..270].copy_from_slice(b"admin");
        assert_eq!(header_difference(&owner, &h), Some("user name"));
        let long = header_bytes(&"x/".repeat(60), 5, 7);
        assert_eq!(header_difference(&long, &h), Some("pax extended header"));
    }

    #[test]
    fn long_path_gets_pax_header() {
        let path = format!("seeds/{}", "d/".repeat(60) + "f.json");
        let h = header_bytes(&path, 1, 0);
        assert_eq!(h.len(), 3 * BLOCK);
        assert_eq!(h[156], b'x');
    }
}
