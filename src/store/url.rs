//! Store URLs: parsing `file://DIR`, `s3://BUCKET/PREFIX?…` and `postgres://…?table=…` into a
//! [`StoreUrl`], and showing them without secrets.
//!
//! A `StoreUrl` never prints a secret: its `Debug` and [`StoreUrl::redacted`] replace S3 keys and
//! database passwords with `***`, and parse errors quote only a redacted form of the input. The
//! secret values themselves live in [`Secret`], which has no way to print them. This module owns
//! the syntax; opening a store is [`super::open`]'s job.

use std::fmt;
use std::path::PathBuf;

pub use super::secret::{Secret, redact_raw};

/// Why a store URL was refused. Messages quote the URL only in redacted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not one offkit knows.
    #[error(
        "unknown store URL scheme in {url:?}: use file://DIR, s3://BUCKET/PREFIX or postgres://…?table=SCHEMA.TABLE"
    )]
    UnknownScheme {
        /// The URL, redacted.
        url: String,
    },
    /// The URL could not be parsed.
    #[error("malformed store URL {url:?}: {reason}")]
    Malformed {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A query option this driver does not know (a typo would otherwise be silently ignored).
    #[error("unknown option {option:?} in store URL {url:?} (known: {known})")]
    UnknownOption {
        /// The URL, redacted.
        url: String,
        /// The option name.
        option: String,
        /// The options this driver accepts.
        known: &'static str,
    },
    /// An option has a value this driver does not accept.
    #[error("bad value for option {option:?} in store URL {url:?}: {reason}")]
    BadOption {
        /// The URL, redacted.
        url: String,
        /// The option name.
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
    /// writer between the two can still be overwritten; the read-back confirmation reports it).
    Disabled,
}

/// How seeding confirms S3 objects (puts, and objects found when planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Confirm {
    /// Read the object back and hash it (the default: trusts nothing but the bytes returned).
    ReadBack,
    /// Trust the server's `ETag` when it is the MD5 of the local file (plain, or in the multipart
    /// form for offkit's part size); read back otherwise. Faster, and weaker: it relies on the
    /// server having computed the MD5 over what it stored, and it does not re-read stored bytes.
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

const S3_OPTIONS: &str = "endpoint, region, path_style, allow_http, access_key_id, secret_access_key, session_token, conditional_put, confirm";

impl StoreUrl {
    /// Parses a store URL.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let scheme = input.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("file") => parse_file(input),
            Some("s3") => parse_s3(input),
            Some("postgres" | "postgresql") => parse_postgres(input),
            _ => Err(UrlError::UnknownScheme {
                url: redact_raw(input),
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

    /// The driver's name: `file`, `s3` or `postgres`.
    pub fn driver(&self) -> &'static str {
        match self {
            StoreUrl::File(_) => "file",
            StoreUrl::S3(_) => "s3",
            StoreUrl::Postgres(_) => "postgres",
        }
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
    fn redacted(&self) -> String {
        let mut s = format!("s3://{}", self.bucket);
        if let Some(p) = &self.prefix {
            s.push('/');
            s.push_str(p);
        }
        let mut opts: Vec<String> = Vec::new();
        if let Some(e) = &self.endpoint {
            opts.push(format!("endpoint={e}"));
        }
        if let Some(r) = &self.region {
            opts.push(format!("region={r}"));
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
                opts.push(format!("{name}=***"));
            }
        }
        if self.conditional_put == ConditionalPut::Disabled {
            opts.push("conditional_put=disabled".into());
        }
        if self.confirm == Confirm::EtagMd5 {
            opts.push("confirm=etag-md5".into());
        }
        if !opts.is_empty() {
            s.push('?');
            s.push_str(&opts.join("&"));
        }
        s
    }
}

fn parse_file(input: &str) -> Result<StoreUrl, UrlError> {
    let rest = &input["file://".len()..];
    if rest.is_empty() {
        return Err(UrlError::Malformed {
            url: input.to_owned(),
            reason: "no folder: use file://DIR, e.g. file://./offkit-store or file:///srv/store"
                .into(),
        });
    }
    Ok(StoreUrl::File(FileUrl {
        dir: PathBuf::from(rest),
    }))
}

fn malformed(input: &str, reason: impl Into<String>) -> UrlError {
    UrlError::Malformed {
        url: redact_raw(input),
        reason: reason.into(),
    }
}

fn parse_bool(url: &str, option: &str, value: &str) -> Result<bool, UrlError> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(UrlError::BadOption {
            url: url.to_owned(),
            option: option.to_owned(),
            reason: format!("expected true or false, got {value:?}"),
        }),
    }
}

fn parse_s3(input: &str) -> Result<StoreUrl, UrlError> {
    let parsed = url::Url::parse(input).map_err(|e| malformed(input, e.to_string()))?;
    let shown = redact_raw(input);
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(malformed(
            input,
            "credentials in the authority are not accepted: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ));
    }
    let bucket = parsed.host_str().unwrap_or_default().to_owned();
    if bucket.is_empty() {
        return Err(malformed(input, "no bucket: use s3://BUCKET/PREFIX"));
    }
    if parsed.port().is_some() {
        return Err(malformed(
            input,
            "a port belongs in the endpoint option, not after the bucket",
        ));
    }
    // The raw path, not the url crate's normalised one (which would resolve `a/../b` silently).
    let raw = &input["s3://".len()..];
    let raw = raw.split(['?', '#']).next().unwrap_or_default();
    let path = raw
        .split_once('/')
        .map_or("", |(_, p)| p)
        .trim_end_matches('/');
    let prefix = if path.is_empty() {
        None
    } else {
        let decoded = percent_decode(path);
        crate::kit::path::KitPath::new(&decoded)
            .map_err(|e| malformed(input, format!("bad prefix: {e}")))?;
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
        confirm: Confirm::ReadBack,
    };
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in parsed.query_pairs() {
        let (k, v) = (k.into_owned(), v.into_owned());
        if !seen.insert(k.clone()) {
            return Err(UrlError::BadOption {
                url: shown,
                option: k,
                reason: "given twice".into(),
            });
        }
        match k.as_str() {
            "endpoint" => {
                let e = url::Url::parse(&v).map_err(|e| UrlError::BadOption {
                    url: shown.clone(),
                    option: k.clone(),
                    reason: e.to_string(),
                })?;
                if !e.username().is_empty() || e.password().is_some() {
                    return Err(UrlError::BadOption {
                        url: shown,
                        option: k,
                        reason: "credentials in the endpoint are not accepted: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into(),
                    });
                }
                if e.scheme() == "http" && s3.allow_http.is_none() {
                    s3.allow_http = Some(true);
                }
                s3.endpoint = Some(v.trim_end_matches('/').to_owned());
            }
            "region" => s3.region = Some(v),
            "path_style" => {
                s3.addressing = Some(if parse_bool(&shown, &k, &v)? {
                    Addressing::Path
                } else {
                    Addressing::VirtualHosted
                })
            }
            "allow_http" => s3.allow_http = Some(parse_bool(&shown, &k, &v)?),
            "access_key_id" => s3.access_key_id = Some(Secret::new(v)),
            "secret_access_key" => s3.secret_access_key = Some(Secret::new(v)),
            "session_token" => s3.session_token = Some(Secret::new(v)),
            "conditional_put" => {
                s3.conditional_put = match v.as_str() {
                    "if-none-match" => ConditionalPut::IfNoneMatch,
                    "disabled" => ConditionalPut::Disabled,
                    _ => {
                        return Err(UrlError::BadOption {
                            url: shown,
                            option: k,
                            reason: format!("expected if-none-match or disabled, got {v:?}"),
                        });
                    }
                }
            }
            "confirm" => {
                s3.confirm = match v.as_str() {
                    "read-back" => Confirm::ReadBack,
                    "etag-md5" => Confirm::EtagMd5,
                    _ => {
                        return Err(UrlError::BadOption {
                            url: shown,
                            option: k,
                            reason: format!("expected read-back or etag-md5, got {v:?}"),
                        });
                    }
                }
            }
            _ => {
                return Err(UrlError::UnknownOption {
                    url: shown,
                    option: k,
                    known: S3_OPTIONS,
                });
            }
        }
    }
    Ok(StoreUrl::S3(s3))
}

fn parse_postgres(input: &str) -> Result<StoreUrl, UrlError> {
    // The store's own options come out of the query; the rest is a libpq connection URL, read by
    // the same parser as `--db` (crate::pg), whose redacted form is what is shown.
    let shown_input = redact_raw(input);
    let (base, query) = match input.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (input, None),
    };
    let mut table_opt = None;
    let mut key_column = None;
    let mut data_column = None;
    let mut where_sql = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        let slot = match pair.split_once('=') {
            Some(("key_column", v)) => Some(("key_column", &mut key_column, v)),
            Some(("data_column", v)) => Some(("data_column", &mut data_column, v)),
            Some(("where", v)) => Some(("where", &mut where_sql, v)),
            _ => None,
        };
        if let Some((name, slot, v)) = slot {
            if slot.replace(percent_decode(v)).is_some() {
                return Err(UrlError::BadOption {
                    url: shown_input,
                    option: name.into(),
                    reason: "given twice".into(),
                });
            }
            continue;
        }
        match pair.split_once('=') {
            Some(("table", v)) => {
                let v = percent_decode(v);
                if table_opt.replace(v).is_some() {
                    return Err(UrlError::BadOption {
                        url: shown_input,
                        option: "table".into(),
                        reason: "given twice".into(),
                    });
                }
            }
            _ => rest.push(pair),
        }
    }
    let (schema, table) = match &table_opt {
        None => (DEFAULT_PG_TABLE.0.to_owned(), DEFAULT_PG_TABLE.1.to_owned()),
        Some(t) => parse_table(&shown_input, t)?,
    };
    let foreign = match (key_column, data_column) {
        (None, None) if where_sql.is_none() => None,
        (Some(k), Some(d)) if table_opt.is_some() => {
            for (option, c) in [("key_column", &k), ("data_column", &d)] {
                if !is_column_name(c) {
                    return Err(UrlError::BadOption {
                        url: shown_input,
                        option: option.into(),
                        reason: "a column name is letters, digits and _, not starting with a digit"
                            .into(),
                    });
                }
            }
            Some(ForeignColumns {
                key_column: k,
                data_column: d,
                where_sql,
            })
        }
        _ => {
            return Err(UrlError::BadOption {
                url: shown_input,
                option: "key_column".into(),
                reason: "a foreign archive table needs table, key_column and data_column together (where is optional)".into(),
            });
        }
    };
    let text = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let conninfo = crate::pg::ConnInfo::parse(&text).map_err(|e| malformed(&shown_input, e.0))?;
    let mut shown = conninfo.redacted();
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

pub(super) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
