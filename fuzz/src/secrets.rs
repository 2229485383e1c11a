//! The secret oracle of the URL targets: "no secret in what is shown".
//!
//! A structured input names a secret and the text around it; the target writes the secret into a
//! URL or connection string the way a user would (percent-encoded, or quoted), parses it, and
//! collects everything shown: the redacted form, `Display`, `Debug`, and the error when parsing
//! fails. It does the same with a *twin* secret of the same shape (letters and digits rotated), and
//! a leak is the secret (or its encoded form) in what is shown for it but not in what is shown for
//! the twin — so text that merely happens to contain the secret elsewhere is not a leak.

/// Shortest secret the oracle judges (in characters): shorter ones occur by chance.
pub const MIN_SECRET_CHARS: usize = 4;

/// A structured URL input: a form number, an encoding style, the secret and three free texts.
#[derive(Debug, Clone)]
pub struct Structured {
    /// Which template to fill (each target has its list).
    pub form: usize,
    /// How the secret is written: see [`Style`].
    pub style: Style,
    /// The secret.
    pub secret: String,
    /// Free texts the template places around the secret.
    pub parts: [String; 3],
}

/// How a secret is written into a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Every byte percent-encoded.
    Full,
    /// Unreserved characters (RFC 3986 §2.3) as they are, everything else percent-encoded.
    Unreserved,
    /// Only what must be encoded (`%`, `/`, `@`, `&`, `#`, `\`, whitespace and controls): how
    /// people write passwords by hand. (A raw `\` would end an `http://` authority, WHATWG URL
    /// §4.4, so a secret written with one is not in a password position.) Whether the parser reads such a secret back exactly is not
    /// judged, only that it never shows it.
    Loose,
}

impl Style {
    /// Whether a parser must read the secret back exactly.
    pub fn unambiguous(self) -> bool {
        self != Style::Loose
    }
}

/// Reads a structured input: byte 0 is the form, byte 1 the style, then the secret and up to
/// three texts separated by NUL bytes.
pub fn structured(data: &[u8]) -> Option<Structured> {
    let (&form, rest) = data.split_first()?;
    let (&style, rest) = rest.split_first()?;
    let mut fields = rest
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let secret = fields.next().unwrap_or_default();
    let mut parts: [String; 3] = Default::default();
    for (slot, field) in parts.iter_mut().zip(fields) {
        *slot = field;
    }
    let style = match style % 3 {
        0 => Style::Full,
        1 => Style::Unreserved,
        _ => Style::Loose,
    };
    Some(Structured {
        form: usize::from(form),
        style,
        secret,
        parts,
    })
}

/// `s` percent-encoded in `style`.
pub fn encode(s: &str, style: Style) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let keep = match style {
            Style::Full => false,
            Style::Unreserved => c.is_ascii_alphanumeric() || "-._~".contains(c),
            Style::Loose => !("%/@&#\\".contains(c) || c.is_whitespace() || c.is_control()),
        };
        if keep {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// `s` as a libpq keyword value: single-quoted, with `\` and `'` escaped by a backslash.
pub fn quote_keyword_value(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The twin of a secret: the same length and shape, every ASCII letter and digit rotated (ROT13,
/// digits by five), everything else kept.
pub fn twin(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => char::from(b'a' + (c as u8 - b'a' + 13) % 26),
            'A'..='Z' => char::from(b'A' + (c as u8 - b'A' + 13) % 26),
            '0'..='9' => char::from(b'0' + (c as u8 - b'0' + 5) % 10),
            other => other,
        })
        .collect()
}

/// Whether `secret` is one the oracle judges: long enough, with a twin that differs from it.
pub fn judged(secret: &str) -> bool {
    secret.chars().count() >= MIN_SECRET_CHARS && twin(secret) != secret
}

/// Panics when a needle (the secret, or the form it was written in) is in what was shown for the
/// secret but not in what was shown for its twin.
pub fn assert_not_shown(
    needles: &[String],
    shown: &[String],
    shown_for_twin: &[String],
    url: &str,
) {
    for needle in needles {
        if needle.chars().count() < MIN_SECRET_CHARS {
            continue;
        }
        let leaked = shown.iter().find(|s| s.contains(needle.as_str()));
        let by_chance = shown_for_twin.iter().any(|s| s.contains(needle.as_str()));
        if let Some(text) = leaked
            && !by_chance
        {
            panic!("secret {needle:?} shown: {text:?}\n(input {url:?})");
        }
    }
}

/// Whether any of the free texts could itself carry a secret or change how the secret is read
/// (another password option, percent-encoding, a fragment): then the parser need not read the
/// secret back exactly.
pub fn parts_may_interfere(parts: &[String; 3]) -> bool {
    parts.iter().any(|p| {
        let l = p.to_ascii_lowercase();
        ["pass", "key", "token", "%", "#", "\\"]
            .iter()
            .any(|x| l.contains(x))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins_differ_in_letters_and_digits_only() {
        assert_eq!(twin("hunter2/?"), "uhagre7/?");
        assert!(judged("abcd"));
        assert!(!judged("abc"));
        assert!(!judged("////"));
    }

    #[test]
    fn encodings() {
        assert_eq!(encode("a/b c", Style::Full), "%61%2F%62%20%63");
        assert_eq!(encode("a/b~c", Style::Unreserved), "a%2Fb~c");
        assert_eq!(
            encode("p?ss/w@rd é\\", Style::Loose),
            "p?ss%2Fw%40rd%20é%5C"
        );
        assert_eq!(quote_keyword_value(r"it's\"), r"'it\'s\\'");
    }

    #[test]
    fn a_leak_is_told_from_chance() {
        let shown = vec!["postgres://u:hunter2@h/db".to_owned()];
        let twin_shown = vec!["postgres://u:uhagre7@h/db".to_owned()];
        let chance = vec!["postgres://hunter2@h/db".to_owned()];
        assert!(
            std::panic::catch_unwind(|| {
                assert_not_shown(&["hunter2".into()], &shown, &twin_shown, "x")
            })
            .is_err()
        );
        assert_not_shown(&["hunter2".into()], &chance, &chance, "x");
    }
}
