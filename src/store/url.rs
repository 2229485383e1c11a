//! Store URLs: parsing `file://DIR`, `s3://BUCKET/PREFIX?…` and `postgres://…?table=…` into a
//! [`StoreUrl`], and showing them without secrets.
//!
//! A `StoreUrl` never prints a secret: its `Debug` and [`StoreUrl::redacted`] are rebuilt from the
//! parsed values with S3 keys and database passwords replaced by `***`. Errors never quote the
//! input either — it did not parse, so where a secret in it ends is unknown: they show what was
//! parsed of it, rebuilt the same way (`s3://BUCKET/PREFIX`, a connection's redacted form), or
//! only its scheme. A PostgreSQL store URL is read whole by [`crate::pg::ConnInfo`], the parser
//! of `--db`, which hands back the store's own options (`table=` …). The secret values
//! themselves live in [`Secret`], which has no way to print them. This module owns the syntax;
//! opening a store is [`super::open`]'s job.

use std::fmt;
use std::path::PathBuf;

use crate::util::REDACTED;
pub use crate::util::Secret;

/// Why a store URL was refused. Messages show the URL only as far as it parsed, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not one offkit knows.
    #[error(
        "unknown store URL scheme {scheme}: use file://DIR, s3://BUCKET/PREFIX or postgres://…?table=SCHEMA.TABLE{}",
        if scheme == "sqlite://" { " (sqlite:// is a database URL: it goes to --db)" } else { "" }
    )]
    UnknownScheme {
        /// The scheme (`minio://`), or a generic word when the text before `://` does not look
        /// like one (it may hold a secret).
        scheme: String,
    },
    /// The URL could not be parsed.
    #[error("malformed store URL {url}: {reason}")]
    Malformed {
        /// What parsed of the URL, without secrets.
        url: String,
        /// What is wrong (never a piece of the input).
        reason: String,
    },
    /// A query option this driver does not know (a typo would otherwise be silently ignored).
    /// Its name is not shown: with a raw `&` in a secret, the "option" is a piece of the secret.
    #[error("option {position} of store URL {url} is not one offkit knows{}; known: {known}", .suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownOption {
        /// What parsed of the URL, without secrets.
        url: String,
        /// Which option, counting from 1.
        position: usize,
        /// The known option whose name is closest, if one is close.
        suggestion: Option<&'static str>,
        /// The options this driver accepts.
        known: &'static str,
    },
    /// An option has a value this driver does not accept.
    #[error("bad value for option {option} in store URL {url}: {reason}")]
    BadOption {
        /// What parsed of the URL, without secrets.
        url: String,
        /// The option name (a known one).
        option: String,
        /// What is wrong (never the value of a secret option).
        reason: String,
    },
}

/// How S3 requests address the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Addressing {
    /// `https://endpoint/BUCKET/KEY` (MinIO, Ceph, rclone and most self-hosted servers).
    Path,
    /// `https://BUCKET.endpoint/KEY` (AWS's default).
    VirtualHosted,
}

/// How an S3 put avoids overwriting an object a concurrent writer just created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConditionalPut {
    /// Send `If-None-Match: *` (AWS since 2024, MinIO, Ceph): the server refuses to overwrite.
    IfNoneMatch,
    /// The server does not support conditional puts: check existence, then put (a concurrent
    /// writer between the two can still be overwritten; the confirmation, which then asks the
    /// server again, reports it).
    Disabled,
}

/// How seeding confirms S3 objects (puts, and objects found when planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Confirm {
    /// Read the object back and hash it: trusts nothing but the bytes returned, and re-reads
    /// what the server stored (its disk included) at the cost of a GET per object.
    ReadBack,
    /// The default: trust the server's `ETag` when it is the MD5 of the seed's verified bytes
    /// (plain, or in the multipart form for offkit's part size); read back otherwise. The server
    /// computes the ETag over what it stored, so no other writer can forge it (that would take an
    /// MD5 second preimage); docs/DECISIONS.md "Stores" weighs it against the read-back.
    EtagMd5,
}

/// A parsed `s3://BUCKET/PREFIX?options` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The key prefix inside the bucket (no leading or trailing `/`), if any.
    pub prefix: Option<String>,
    /// `endpoint=URL`: the server (default: AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// `region=NAME` (default: `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// `path_style=true|false`.
    pub addressing: Option<Addressing>,
    /// `allow_http=true|false`; an explicit `http://` endpoint implies it.
    pub allow_http: Option<bool>,
    /// `access_key_id=…` (default: `AWS_ACCESS_KEY_ID`). Treated as a secret.
    pub access_key_id: Option<Secret>,
    /// `secret_access_key=…` (default: `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<Secret>,
    /// `session_token=…` (default: `AWS_SESSION_TOKEN`).
    pub session_token: Option<Secret>,
    /// `conditional_put=if-none-match|disabled`.
    pub conditional_put: ConditionalPut,
    /// `confirm=read-back|etag-md5`.
    pub confirm: Confirm,
}

/// A parsed `postgres://…?table=SCHEMA.TABLE` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresUrl {
    /// The connection (without the `table` option).
    pub conninfo: Box<crate::pg::ConnInfo>,
    /// The URL without secrets.
    pub shown: String,
    /// The schema of the object table.
    pub schema: String,
    /// The object table; chunks live in `<table>_chunks`.
    pub table: String,
    /// An application's own table, read through these columns instead of offkit's layout
    /// (`key_column`, `data_column`, `where`): read-only.
    pub foreign: Option<ForeignColumns>,
}

/// The columns of a foreign archive table (`?table=…&key_column=…&data_column=…&where=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForeignColumns {
    /// The column whose text is the object key.
    pub key_column: String,
    /// The column holding the content (bytea, text, json, jsonb or xml).
    pub data_column: String,
    /// An SQL condition selecting the rows (run in a read-only transaction).
    pub where_sql: Option<String>,
}

/// A parsed `file://DIR` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileUrl {
    /// The store's root folder (relative paths are relative to the working directory).
    pub dir: PathBuf,
}

/// Where objects live: one of the three drivers, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// A local folder.
    File(FileUrl),
    /// An S3-compatible bucket.
    S3(S3Url),
    /// A PostgreSQL table.
    Postgres(PostgresUrl),
}

/// The default PostgreSQL object table.
pub const DEFAULT_PG_TABLE: (&str, &str) = ("offkit", "objects");

/// The S3 options, in the order the redacted form shows them.
const S3_NAMES: [&str; 9] = [
    "endpoint",
    "region",
    "path_style",
    "allow_http",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "conditional_put",
    "confirm",
];
const S3_OPTIONS: &str = "endpoint, region, path_style, allow_http, access_key_id, secret_access_key, session_token, conditional_put, confirm";

/// The options of a PostgreSQL store URL that are the store's, not libpq's.
const PG_STORE_OPTIONS: [&str; 4] = ["table", "key_column", "data_column", "where"];

impl StoreUrl {
    /// Parses a store URL.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let Some((scheme, _)) = input.split_once("://") else {
            return Err(UrlError::UnknownScheme {
                scheme: "(none)".into(),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => parse_file(input),
            "s3" => parse_s3(input),
            // libpq reads the scheme in lower case only; so does the parser of the connection.
            "postgres" | "postgresql" if scheme.bytes().any(|b| b.is_ascii_uppercase()) => {
                Err(UrlError::Malformed {
                    url: format!("{}://…", scheme.to_ascii_lowercase()),
                    reason: "write the scheme in lower case (postgres://), as libpq reads it"
                        .into(),
                })
            }
            "postgres" | "postgresql" => parse_postgres(input),
            _ => Err(UrlError::UnknownScheme {
                scheme: shown_scheme(scheme),
            }),
        }
    }

    /// The URL with every secret replaced by `***`: safe for output, logs, errors and reports.
    pub fn redacted(&self) -> String {
        match self {
            StoreUrl::File(f) => format!("file://{}", f.dir.display()),
            StoreUrl::S3(s) => s.redacted(),
            StoreUrl::Postgres(p) => p.shown.clone(),
        }
    }

    /// Parses a URL read back from a record (a ledger, a report): its redacted form. `None`
    /// when that cannot stand for the store it names: it does not parse, or it held a secret,
    /// which the record keeps only as `***` (sending that as a password or key would be wrong).
    pub fn parse_recorded(recorded: &str) -> Option<Self> {
        StoreUrl::parse(recorded)
            .ok()
            .filter(|u| !u.holds_placeholder_secret())
    }

    /// True when a secret of the URL is the `***` of a redacted form.
    fn holds_placeholder_secret(&self) -> bool {
        match self {
            StoreUrl::File(_) => false,
            StoreUrl::S3(s) => [&s.access_key_id, &s.secret_access_key, &s.session_token]
                .into_iter()
                .flatten()
                .any(Secret::is_placeholder),
            StoreUrl::Postgres(p) => p.conninfo.holds_placeholder_secret(),
        }
    }

    /// The driver's name: `file`, `s3` or `postgres`.
    pub fn driver(&self) -> &'static str {
        match self {
            StoreUrl::File(_) => "file",
            StoreUrl::S3(_) => "s3",
            StoreUrl::Postgres(_) => "postgres",
        }
    }
}

/// The scheme of an unknown URL as shown in the error: itself when it looks like a scheme
/// (RFC 3986 §3.1), else a generic word (text before `://` may be anything, a secret included).
fn shown_scheme(scheme: &str) -> String {
    let looks_like_one = scheme.len() <= 32
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if looks_like_one {
        format!("{scheme}://")
    } else {
        "(not a scheme)".into()
    }
}

impl fmt::Display for StoreUrl {
    /// Displays the redacted form (there is no way to display the secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        StoreUrl::parse(s)
    }
}

impl S3Url {
    /// Rebuilt from the parsed values: the endpoint was checked to hold no credentials, query
    /// or fragment, and every key shows as `***`.
    fn redacted(&self) -> String {
        let mut s = self.base();
        let mut opts: Vec<String> = Vec::new();
        if let Some(e) = &self.endpoint {
            opts.push(format!("endpoint={e}"));
        }
        if let Some(r) = &self.region {
            opts.push(format!("region={}", crate::util::percent_encode(r)));
        }
        if let Some(a) = self.addressing {
            opts.push(format!("path_style={}", a == Addressing::Path));
        }
        if let Some(h) = self.allow_http {
            opts.push(format!("allow_http={h}"));
        }
        for (name, v) in [
            ("access_key_id", &self.access_key_id),
            ("secret_access_key", &self.secret_access_key),
            ("session_token", &self.session_token),
        ] {
            if v.is_some() {
                opts.push(format!("{name}={REDACTED}"));
            }
        }
        if self.conditional_put == ConditionalPut::Disabled {
            opts.push("conditional_put=disabled".into());
        }
        if self.confirm == Confirm::ReadBack {
            opts.push("confirm=read-back".into());
        }
        if !opts.is_empty() {
            s.push('?');
            s.push_str(&opts.join("&"));
        }
        s
    }

    /// `s3://BUCKET[/PREFIX]`, what errors about options show of the URL.
    fn base(&self) -> String {
        match &self.prefix {
            Some(p) => format!(
                "s3://{}/{}",
                self.bucket,
                crate::util::percent_encode(p).replace("%2F", "/")
            ),
            None => format!("s3://{}", self.bucket),
        }
    }
}

fn parse_file(input: &str) -> Result<StoreUrl, UrlError> {
    let rest = &input["file://".len()..];
    if rest.is_empty() {
        return Err(UrlError::Malformed {
            url: "file://".into(),
            reason: "no folder: use file://DIR, e.g. file://./offkit-store or file:///srv/store"
                .into(),
        });
    }
    Ok(StoreUrl::File(FileUrl {
        dir: PathBuf::from(rest),
    }))
}

fn parse_bool(url: &str, option: &str, value: &str) -> Result<bool, UrlError> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(UrlError::BadOption {
            url: url.to_owned(),
            option: option.to_owned(),
            reason: format!(
                "expected true or false, got {:?}",
                crate::util::printable_short(value)
            ),
        }),
    }
}

/// `s3://BUCKET[/PREFIX][?options]`: the bucket as the `url` crate reads the authority (the
/// same reading the S3 client gets), the options split on `&` and percent-decoded like a
/// PostgreSQL URL's (a `+` stays a `+`: AWS secret keys hold them).
fn parse_s3(input: &str) -> Result<StoreUrl, UrlError> {
    let generic = || "s3://…".to_owned();
    let malformed = |url: String, reason: &str| UrlError::Malformed {
        url,
        reason: reason.to_owned(),
    };
    if input.contains('#') {
        // The url crate would cut the URL there, silently shortening a secret.
        return Err(malformed(generic(), "a # must be percent-encoded (%23)"));
    }
    let parsed = url::Url::parse(input).map_err(|e| malformed(generic(), &e.to_string()))?;
    let bucket = parsed.host_str().unwrap_or_default().to_owned();
    if bucket.is_empty() {
        return Err(malformed(generic(), "no bucket: use s3://BUCKET/PREFIX"));
    }
    let shown = format!("s3://{bucket}");
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(malformed(
            shown,
            "credentials in the authority are not accepted: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ));
    }
    if parsed.port().is_some() {
        return Err(malformed(
            shown,
            "a port belongs in the endpoint option, not after the bucket",
        ));
    }
    // The raw path, not the url crate's normalised one (which would resolve `a/../b` silently).
    let raw = &input["s3://".len()..];
    let raw = raw.split('?').next().unwrap_or_default();
    let path = raw
        .split_once('/')
        .map_or("", |(_, p)| p)
        .trim_end_matches('/');
    let prefix = if path.is_empty() {
        None
    } else {
        let decoded = crate::util::percent_decode(path)
            .ok_or_else(|| malformed(shown.clone(), "invalid percent-encoding in the prefix"))?;
        crate::kit::path::KitPath::new(&decoded)
            .map_err(|e| malformed(shown.clone(), &format!("bad prefix: {e}")))?;
        Some(decoded)
    };
    let mut s3 = S3Url {
        bucket,
        prefix,
        endpoint: None,
        region: None,
        addressing: None,
        allow_http: None,
        access_key_id: None,
        secret_access_key: None,
        session_token: None,
        conditional_put: ConditionalPut::IfNoneMatch,
        confirm: Confirm::EtagMd5,
    };
    let shown = s3.base();
    let bad = |option: &str, reason: String| UrlError::BadOption {
        url: shown.clone(),
        option: option.to_owned(),
        reason,
    };
    let mut seen = std::collections::BTreeSet::new();
    let pairs = parsed.query().into_iter().flat_map(|q| q.split('&'));
    for (position, pair) in (1..).zip(pairs.filter(|p| !p.is_empty())) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = crate::util::percent_decode(k).zip(crate::util::percent_decode(v));
        let Some((k, v)) = decoded else {
            return Err(malformed(
                shown,
                &format!("invalid percent-encoding in option {position}"),
            ));
        };
        let Some(name) = S3_NAMES.iter().copied().find(|n| *n == k) else {
            return Err(UrlError::UnknownOption {
                url: shown,
                position,
                suggestion: crate::util::closest(&k, &S3_NAMES),
                known: S3_OPTIONS,
            });
        };
        if !seen.insert(name) {
            return Err(bad(name, "given twice".into()));
        }
        match name {
            "endpoint" => {
                let e = url::Url::parse(&v).map_err(|e| bad(name, e.to_string()))?;
                if !e.username().is_empty() || e.password().is_some() {
                    return Err(bad(name, "credentials in the endpoint are not accepted: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into()));
                }
                if e.query().is_some() || e.fragment().is_some() {
                    return Err(bad(
                        name,
                        "an endpoint is scheme://host[:port][/path], without ? or #".into(),
                    ));
                }
                if e.scheme() == "http" && s3.allow_http.is_none() {
                    s3.allow_http = Some(true);
                }
                s3.endpoint = Some(v.trim_end_matches('/').to_owned());
            }
            "region" => s3.region = Some(v),
            "path_style" => {
                s3.addressing = Some(if parse_bool(&shown, name, &v)? {
                    Addressing::Path
                } else {
                    Addressing::VirtualHosted
                })
            }
            "allow_http" => s3.allow_http = Some(parse_bool(&shown, name, &v)?),
            "access_key_id" => s3.access_key_id = Some(Secret::new(v)),
            "secret_access_key" => s3.secret_access_key = Some(Secret::new(v)),
            "session_token" => s3.session_token = Some(Secret::new(v)),
            "conditional_put" => {
                s3.conditional_put = match v.as_str() {
                    "if-none-match" => ConditionalPut::IfNoneMatch,
                    "disabled" => ConditionalPut::Disabled,
                    _ => {
                        return Err(bad(
                            name,
                            format!(
                                "expected if-none-match or disabled, got {:?}",
                                crate::util::printable_short(&v)
                            ),
                        ));
                    }
                }
            }
            _ => {
                s3.confirm = match v.as_str() {
                    "read-back" => Confirm::ReadBack,
                    "etag-md5" => Confirm::EtagMd5,
                    _ => {
                        return Err(bad(
                            name,
                            format!(
                                "expected read-back or etag-md5, got {:?}",
                                crate::util::printable_short(&v)
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(StoreUrl::S3(s3))
}

/// `postgres://…[?table=SCHEMA.TABLE&…]`: read whole by the connection parser of `--db`, which
/// hands back the store's own options; what is shown is the connection's redacted form.
fn parse_postgres(input: &str) -> Result<StoreUrl, UrlError> {
    let (conninfo, mut own) = crate::pg::ConnInfo::parse_claiming(input, &PG_STORE_OPTIONS)
        .map_err(|e| UrlError::Malformed {
            url: "postgres://…".into(),
            reason: e.0,
        })?;
    let shown_conn = conninfo.redacted();
    let bad = |option: &str, reason: &str| UrlError::BadOption {
        url: shown_conn.clone(),
        option: option.to_owned(),
        reason: reason.to_owned(),
    };
    let table_opt = own.remove("table");
    let (key_column, data_column, where_sql) = (
        own.remove("key_column"),
        own.remove("data_column"),
        own.remove("where"),
    );
    let (schema, table) = match &table_opt {
        None => (DEFAULT_PG_TABLE.0.to_owned(), DEFAULT_PG_TABLE.1.to_owned()),
        Some(t) => parse_table(&shown_conn, t)?,
    };
    let foreign = match (key_column, data_column) {
        (None, None) if where_sql.is_none() => None,
        (Some(k), Some(d)) if table_opt.is_some() => {
            for (option, c) in [("key_column", &k), ("data_column", &d)] {
                if !is_column_name(c) {
                    return Err(bad(
                        option,
                        "a column name is letters, digits and _, not starting with a digit",
                    ));
                }
            }
            Some(ForeignColumns {
                key_column: k,
                data_column: d,
                where_sql,
            })
        }
        _ => {
            return Err(bad(
                "key_column",
                "a foreign archive table needs table, key_column and data_column together (where is optional)",
            ));
        }
    };
    let mut shown = shown_conn;
    shown.push_str(if shown.contains('?') { "&" } else { "?" });
    shown.push_str(&format!("table={schema}.{table}"));
    if let Some(f) = &foreign {
        shown.push_str(&format!(
            "&key_column={}&data_column={}",
            f.key_column, f.data_column
        ));
        if let Some(w) = &f.where_sql {
            shown.push_str(&format!(
                "&where={}",
                crate::util::escape_controls(w).replace('&', "%26")
            ));
        }
    }
    Ok(StoreUrl::Postgres(PostgresUrl {
        conninfo: Box::new(conninfo),
        shown,
        schema,
        table,
        foreign,
    }))
}

fn is_column_name(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 63
        && c.chars()
            .next()
            .is_some_and(|x| x.is_ascii_alphabetic() || x == '_')
        && c.chars().all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Longest PostgreSQL identifier, less room for the `_chunks` suffix of the chunk table.
const MAX_TABLE_IDENT: usize = 63 - "_chunks".len();

fn parse_table(url: &str, t: &str) -> Result<(String, String), UrlError> {
    let (schema, table) = t.split_once('.').unwrap_or(("public", t));
    for (what, ident) in [("schema", schema), ("table", table)] {
        let ok = !ident.is_empty()
            && ident.len() <= MAX_TABLE_IDENT
            && ident
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(UrlError::BadOption {
                url: url.to_owned(),
                option: "table".into(),
                reason: format!(
                    "{what} name {ident:?} must be 1-{MAX_TABLE_IDENT} letters, digits or '_', not starting with a digit (use table=SCHEMA.TABLE)"
                ),
            });
        }
    }
    Ok((schema.to_owned(), table.to_owned()))
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
