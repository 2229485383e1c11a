//! Store URLs (`offkit::store::url::StoreUrl::parse`: `file://`, `s3://…?…`, `postgres://…?table=…`),
//! with the oracle "no secret in what is shown" (`offkit_fuzz::secrets`).
//!
//! Input, by its first byte:
//! - a multiple of 4: the rest is a URL as typed. Oracles: no panic; every error displays; what is
//!   shown of a parsed URL (redacted form, `Display`, `Debug`) is the same with its secrets (S3
//!   keys, the connection's password) replaced.
//! - otherwise a structured input (`secrets::structured`): a form below, a style, a secret and
//!   free texts; the secret oracle as in the `db_url` target (when the free texts leave the secret
//!   in place), and, when the writing is unambiguous and the free texts cannot interfere, a URL
//!   that parses holds exactly the secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::fuzzing::{conninfo_secrets, conninfo_with_secrets_replaced};
use offkit::store::url::{Secret, StoreUrl};
use offkit_fuzz::secrets::{self, Structured, Style};

/// Where a form puts its secret.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    AccessKeyId,
    SecretAccessKey,
    SessionToken,
    /// Refused by design (credentials in an endpoint or in the authority): only shown-or-not.
    Refused,
    Password,
}

const FORMS: usize = 9;
const S3_KEYS: [(&str, Field); 3] = [
    ("access_key_id", Field::AccessKeyId),
    ("secret_access_key", Field::SecretAccessKey),
    ("session_token", Field::SessionToken),
];

/// The forms, filled with `secret`: the URL, where the secret lands, and the texts it was written
/// as (each must stay unshown).
fn fill(s: &Structured, secret: &str) -> (String, Field, Vec<String>) {
    let (text, field) = template(s, secret);
    let needles = vec![
        secret.to_owned(),
        secrets::encode(secret, s.style),
        url_password(secret, s.style),
        secrets::encode(&url_password(secret, s.style), Style::Unreserved),
    ];
    (text, field, needles)
}

/// A password in the userinfo of a URL the `url` crate reads (WHATWG URL): written as in `style`,
/// with `?` encoded even when loose (it would end the authority there, unlike in libpq).
fn url_password(secret: &str, style: Style) -> String {
    secrets::encode(secret, style).replace('?', "%3F")
}

fn template(s: &Structured, secret: &str) -> (String, Field) {
    let [a, b, c] = &s.parts;
    let enc = secrets::encode(secret, s.style);
    match s.form % FORMS {
        f @ 0..=2 => {
            let (key, field) = S3_KEYS[f];
            (format!("s3://{a}?{b}{key}={enc}{c}"), field)
        }
        // The option name percent-encoded (`secret%5Faccess%5Fkey=`): the URL parser decodes it.
        3 => {
            let key = match s.style {
                Style::Full => secrets::encode("secret_access_key", Style::Full),
                _ => "secret%5Faccess%5Fkey".to_owned(),
            };
            (
                format!("s3://{a}?{b}{key}={enc}{c}"),
                Field::SecretAccessKey,
            )
        }
        // An endpoint with credentials, written as a query value (percent-encoded once more: the
        // query is decoded before the endpoint is read).
        4 => {
            let endpoint = format!("http://minio:{}@{c}", url_password(secret, s.style));
            (
                format!(
                    "s3://{a}?{b}endpoint={}",
                    secrets::encode(&endpoint, Style::Unreserved)
                ),
                Field::Refused,
            )
        }
        5 => (
            format!("s3://AKIAUSER:{}@{a}", url_password(secret, s.style)),
            Field::Refused,
        ),
        6 => (format!("postgres://{a}:{enc}@{b}"), Field::Password),
        7 => (
            format!("postgresql://{a}?{b}password={enc}{c}"),
            Field::Password,
        ),
        _ => {
            let key = match s.style {
                Style::Full => secrets::encode("password", Style::Full),
                _ => "pass%77ord".to_owned(),
            };
            (format!("postgres://{a}?{b}{key}={enc}{c}"), Field::Password)
        }
    }
}

/// Whether the free texts leave the secret where the form puts it (an option's value or a
/// password), so that showing it is a leak: they must not end the authority before it or start
/// the query elsewhere.
fn in_place(s: &Structured) -> bool {
    let [a, b, c] = &s.parts;
    let none = |t: &str, chars: &str| !t.chars().any(|x| chars.contains(x));
    match s.form % FORMS {
        5 => true,
        6 => none(a, ":/?#@"),
        // In the endpoint form the free text after the secret is the endpoint's host: it must
        // not end the query value.
        4 => none(a, "?#") && none(b, "#@") && none(c, "&#") && (b.is_empty() || b.ends_with('&')),
        // An `@` after the query would make a PostgreSQL URL's text before it the user name.
        _ => none(a, "?#") && none(b, "#@") && none(c, "@") && (b.is_empty() || b.ends_with('&')),
    }
}

/// Whether, in addition, the parser must read exactly the secret: it was written unambiguously
/// and nothing around it is another secret option or a percent-escape.
fn exact_possible(s: &Structured) -> bool {
    let [_, b, c] = &s.parts;
    in_place(s)
        && s.style.unambiguous()
        && !secrets::parts_may_interfere(&s.parts)
        && match s.form % FORMS {
            6 => !b.contains('@'),
            _ => c.is_empty() || c.starts_with('&'),
        }
}

fn shown(text: &str) -> (Vec<String>, Option<StoreUrl>) {
    match StoreUrl::parse(text) {
        Ok(u) => (
            vec![u.redacted(), format!("{u} {u:?} {}", u.driver())],
            Some(u),
        ),
        Err(e) => (vec![format!("{e} {e:?}")], None),
    }
}

fn held(url: &StoreUrl, field: Field) -> Option<String> {
    match (url, field) {
        (StoreUrl::S3(s3), Field::AccessKeyId) => s3.access_key_id.as_ref(),
        (StoreUrl::S3(s3), Field::SecretAccessKey) => s3.secret_access_key.as_ref(),
        (StoreUrl::S3(s3), Field::SessionToken) => s3.session_token.as_ref(),
        (StoreUrl::Postgres(pg), Field::Password) => {
            return conninfo_secrets(&pg.conninfo).0.map(str::to_owned);
        }
        _ => None,
    }
    .map(|s| s.expose().to_owned())
}

/// `url` with every secret replaced.
fn replaced(url: &StoreUrl) -> StoreUrl {
    let mut other = url.clone();
    match &mut other {
        StoreUrl::S3(s3) => {
            for secret in [
                &mut s3.access_key_id,
                &mut s3.secret_access_key,
                &mut s3.session_token,
            ] {
                if secret.is_some() {
                    *secret = Some(Secret::new("REPLACED-SECRET"));
                }
            }
        }
        StoreUrl::Postgres(pg) => {
            pg.conninfo = Box::new(conninfo_with_secrets_replaced(&pg.conninfo, "REPLACED"));
        }
        _ => {}
    }
    other
}

fn plain(text: &str) {
    let (_, parsed) = shown(text);
    if let Some(url) = parsed {
        let other = replaced(&url);
        assert_eq!(
            url.redacted(),
            other.redacted(),
            "what is shown depends on a secret"
        );
        assert_eq!(format!("{url:?}"), format!("{other:?}"));
        if let (StoreUrl::Postgres(a), StoreUrl::Postgres(b)) = (&url, &other) {
            assert_eq!(a.conninfo.redacted(), b.conninfo.redacted());
        }
    }
}

fn structured(s: &Structured) {
    let (text, field, needles) = fill(s, &s.secret);
    let (out, parsed) = shown(&text);
    if secrets::judged(&s.secret) && in_place(s) {
        let twin = secrets::twin(&s.secret);
        let (twin_text, _, _) = fill(s, &twin);
        let (twin_out, _) = shown(&twin_text);
        secrets::assert_not_shown(&needles, &out, &twin_out, &text);
    }
    if let Some(url) = parsed
        && field != Field::Refused
        && exact_possible(s)
        && let Some(got) = held(&url, field)
    {
        assert_eq!(
            got, s.secret,
            "the secret was read differently from {text:?}"
        );
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
