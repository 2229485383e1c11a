//! Database URLs and connection strings (`offkit::migrate::DbUrl::parse`, and
//! `offkit::pg::ConnInfo::parse_with` without the process environment), with the oracle "no
//! secret in what is shown" (`offkit_fuzz::secrets`).
//!
//! Input, by its first byte:
//! - a multiple of 4: the rest is a URL as typed. Oracles: no panic; every error displays; what is
//!   shown of a parsed connection (redacted form, `Display`, `Debug`) is the same with its
//!   secrets replaced.
//! - otherwise a structured input (`secrets::structured`): a form below, a style, a secret and
//!   free texts. The secret is written into the form as a user would (percent-encoded in the
//!   style, or quoted). When the free texts leave it where the form puts it (`in_place`), the
//!   oracle is the secret oracle: neither the secret nor the form it was written in is shown —
//!   parsed or refused — unless its twin's URL shows it too. When, in addition, the writing is
//!   unambiguous and the free texts cannot interfere, a URL that parses has exactly the secret as
//!   its password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::fuzzing::{conninfo_secrets, conninfo_with_secrets_replaced};
use offkit::migrate::DbUrl;
use offkit::pg::ConnInfo;
use offkit::pg::conninfo::Environment;
use offkit_fuzz::secrets::{self, Structured};

/// No `PG*` variables, no home folder, no OS user: the string alone.
struct NoEnvironment;

impl Environment for NoEnvironment {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn home(&self) -> Option<std::path::PathBuf> {
        None
    }
    fn os_user(&self) -> Option<String> {
        None
    }
}

/// Which secret a form carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Password,
    SslPassword,
}

/// The forms: a template, the field the secret lands in, and whether the free texts must be
/// checked for characters that would move the secret (`exact_possible`).
const FORMS: usize = 7;

fn fill(s: &Structured, secret: &str) -> (String, Field) {
    let [a, b, c] = &s.parts;
    let enc = secrets::encode(secret, s.style);
    let quoted = secrets::quote_keyword_value(secret);
    match s.form % FORMS {
        0 => (format!("postgres://{a}:{enc}@{b}"), Field::Password),
        1 => (
            format!("postgresql://{a}?{b}password={enc}{c}"),
            Field::Password,
        ),
        2 => (format!("{a} password={quoted} {b}"), Field::Password),
        3 => (format!("{a} sslpassword={quoted} {b}"), Field::SslPassword),
        4 => (
            format!("postgres://{a}?{b}sslpassword={enc}{c}"),
            Field::SslPassword,
        ),
        // The key itself percent-encoded (`pass%77ord=`): libpq decodes query keys too.
        5 => (
            format!("postgres://{a}?{b}{}={enc}{c}", encoded_key(s)),
            Field::Password,
        ),
        // Unquoted, with backslash escapes.
        _ => (
            format!("{a} password={} {b}", backslashed(secret)),
            Field::Password,
        ),
    }
}

fn encoded_key(s: &Structured) -> String {
    match s.style {
        secrets::Style::Full => secrets::encode("password", s.style),
        _ => "pass%77ord".to_owned(),
    }
}

fn backslashed(secret: &str) -> String {
    let mut out = String::new();
    for c in secret.chars() {
        if c == '\\' || c == '\'' || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether the free texts leave the secret where the form puts it (a password), so that showing
/// it is a leak: they must not end the authority before it, start the query elsewhere, or open
/// a quote or a value that would swallow it.
fn in_place(s: &Structured) -> bool {
    let [a, b, c] = &s.parts;
    let none = |t: &str, chars: &str| !t.chars().any(|x| chars.contains(x));
    match s.form % FORMS {
        0 => none(a, ":/?#@"),
        // An `@` after the query would make all before it the user name (libpq looks for the
        // credentials up to the first `/`, not the first `?`).
        1 | 4 | 5 => {
            none(a, "?#") && none(b, "#@") && none(c, "@") && (b.is_empty() || b.ends_with('&'))
        }
        // Keyword forms: the text before must be keywords (not a URL that would take the rest
        // as its path) and must not open a quote or a value.
        _ => none(a, "'\\") && !a.contains("://") && !a.trim_end().ends_with('='),
    }
}

/// Whether, in addition, the parser must read exactly the secret: it was written unambiguously
/// and nothing around it is another password, a percent-escape or a quote.
fn exact_possible(s: &Structured) -> bool {
    let [a, b, c] = &s.parts;
    let none = |t: &str, chars: &str| !t.chars().any(|x| chars.contains(x));
    in_place(s)
        && s.style.unambiguous()
        && !secrets::parts_may_interfere(&s.parts)
        && match s.form % FORMS {
            0 => none(b, "@"),
            1 | 4 | 5 => c.is_empty() || c.starts_with('&'),
            // A trailing backslash in the unquoted form escapes the separating space.
            // An empty unquoted value would take the next word as the value (as in libpq).
            6 => {
                none(b, "'")
                    && !a.trim().is_empty()
                    && !s.secret.is_empty()
                    && !s.secret.ends_with('\\')
            }
            _ => none(b, "'") && !a.trim().is_empty(),
        }
}

/// What is shown of `text`, parsed both ways, and the secrets of the string-only parse.
fn shown(text: &str) -> (Vec<String>, Option<ConnInfo>) {
    let mut out = Vec::new();
    match DbUrl::parse(text) {
        Ok(u) => {
            out.push(u.redacted());
            out.push(format!("{u} {u:?} {}", u.kind()));
        }
        Err(e) => out.push(format!("{e} {e:?}")),
    }
    let parsed = match ConnInfo::parse_with(text, &NoEnvironment) {
        Ok(c) => {
            out.push(format!("{} {c:?}", c.redacted()));
            for e in c.endpoints() {
                out.push(e.to_string());
            }
            Some(c)
        }
        Err(e) => {
            out.push(format!("{e} {e:?}"));
            None
        }
    };
    (out, parsed)
}

fn plain(text: &str) {
    let (_, parsed) = shown(text);
    if let Ok(DbUrl::Postgres(c)) = DbUrl::parse(text) {
        let other = conninfo_with_secrets_replaced(&c, "REPLACED-SECRET");
        assert_eq!(
            c.redacted(),
            other.redacted(),
            "what is shown depends on a secret"
        );
        assert_eq!(format!("{c:?}"), format!("{other:?}"));
    }
    if let Some(c) = parsed {
        let other = conninfo_with_secrets_replaced(&c, "REPLACED-SECRET");
        assert_eq!(
            c.redacted(),
            other.redacted(),
            "what is shown depends on a secret"
        );
    }
}

fn structured(s: &Structured) {
    let (text, field) = fill(s, &s.secret);
    let (out, parsed) = shown(&text);
    if secrets::judged(&s.secret) && in_place(s) {
        let twin = secrets::twin(&s.secret);
        let (twin_text, _) = fill(s, &twin);
        let (twin_out, _) = shown(&twin_text);
        let needles = [
            s.secret.clone(),
            secrets::encode(&s.secret, s.style),
            secrets::quote_keyword_value(&s.secret),
            backslashed(&s.secret),
        ];
        secrets::assert_not_shown(&needles, &out, &twin_out, &text);
    }
    if let Some(c) = parsed
        && exact_possible(s)
    {
        let (password, sslpassword) = conninfo_secrets(&c);
        let got = match field {
            Field::Password => password,
            Field::SslPassword => sslpassword,
        };
        if let Some(got) = got {
            assert_eq!(
                got, s.secret,
                "the secret was read differently from {text:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(b) if b % 4 == 0 => {
            if let Ok(text) = std::str::from_utf8(&data[1..]) {
                plain(text);
            }
        }
        _ => {
            if let Some(s) = secrets::structured(data) {
                structured(&s);
            }
        }
    }
});
