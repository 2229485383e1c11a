//! Secrets in store URLs: the [`Secret`] wrapper that cannot print its value, and best-effort
//! redaction of URL text (for errors about URLs that did not even parse).

use super::url::percent_decode;

/// Query options whose values are secrets.
pub(super) const SECRET_OPTIONS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "session_token",
    "password",
];

pub use crate::util::Secret;

/// Best-effort redaction of a URL string that may not parse: the user-info part
/// (`user:password@`) becomes `user:***@` for PostgreSQL and `***@` otherwise, and the values of
/// secret query options become `***`.
pub fn redact_raw(input: &str) -> String {
    let (head, query) = match input.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (input, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            // A database user name helps and is kept; anywhere else the user part may be a key.
            let keep_user = scheme.to_ascii_lowercase().starts_with("postgres");
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) if keep_user => format!("{user}:***@{host}"),
                    None if keep_user => format!("{userinfo}@{host}"),
                    _ => format!("***@{host}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(q) = query {
        let parts: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_OPTIONS.contains(&k) => format!("{k}=***"),
                Some((k, v)) if k == "endpoint" => format!("{k}={}", redact_endpoint(v)),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}

fn redact_endpoint(v: &str) -> String {
    let decoded = percent_decode(v);
    if decoded.contains('@') {
        redact_raw(&decoded)
    } else {
        v.to_owned()
    }
}
