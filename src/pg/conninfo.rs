//! Connection strings the way libpq reads them (PostgreSQL documentation, "Connection Strings"
//! and "Environment Variables"): URLs
//! (`postgresql://user:password@host1:5432,host2/dbname?sslmode=verify-full`) and keyword/value
//! strings (`host=db port=5432 dbname='my db' sslmode=require`), the `PG*` environment variables
//! for whatever the string leaves out, and the defaults libpq uses.
//!
//! The text is parsed once, here, into a [`ConnInfo`]; the connection is made from that value and
//! never from the text, and what is shown of it ([`ConnInfo::redacted`]) is rebuilt from it without
//! the password — so what connects and what is printed cannot disagree about where a secret ends.
//! Unknown keywords and keywords given twice are refused, as a mistyped `sslmode` must not fall
//! back to a weaker default. Errors never quote the text: an unknown option name or a word
//! without `=` may be a piece of a password that held a raw `&` or space, so they are named by
//! position (and a known name suggested). A caller whose URL carries options of its own (a
//! store's `table=`) has them read by this same parser ([`ConnInfo::parse_claiming`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::util::{Secret, percent_encode};

/// Where to connect: a TCP host name (or address) or a Unix socket folder, with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host.
    pub host: Host,
    /// The port (also the socket file's suffix for a Unix socket).
    pub port: u16,
}

/// A host: a name or address for TCP, or a folder holding the server's Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name or an IP address.
    Tcp(String),
    /// A Unix-socket folder (a host that starts with `/`).
    Socket(PathBuf),
}

impl Host {
    /// The name `.pgpass` matches: the host name, or `localhost` for a Unix socket.
    pub fn pgpass_name(&self) -> &str {
        match self {
            Host::Tcp(h) => h,
            Host::Socket(_) => "localhost",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Tcp(h) if h.contains(':') => write!(f, "[{h}]:{}", self.port),
            Host::Tcp(h) => write!(f, "{h}:{}", self.port),
            Host::Socket(dir) => write!(f, "{}/.s.PGSQL.{}", dir.display(), self.port),
        }
    }
}

/// `sslmode`, as libpq defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS always; the certificate is verified only when a root certificate file exists (libpq's
    /// compatibility rule), otherwise not.
    Require,
    /// TLS, and the server certificate must chain to a trusted root.
    VerifyCa,
    /// TLS, a trusted chain, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The keyword value.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// `target_session_attrs`: which server of several hosts is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    /// Any server (the default).
    Any,
    /// One that accepts writes (`transaction_read_only` is off): finds the primary after a
    /// failover.
    ReadWrite,
    /// One that does not accept writes.
    ReadOnly,
    /// A server not in recovery.
    Primary,
    /// A server in recovery (a standby).
    Standby,
}

impl TargetSessionAttrs {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "any" => Self::Any,
            "read-write" => Self::ReadWrite,
            "read-only" => Self::ReadOnly,
            "primary" => Self::Primary,
            "standby" => Self::Standby,
            _ => return None,
        })
    }

    /// The keyword value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
            Self::Primary => "primary",
            Self::Standby => "standby",
        }
    }
}

/// `sslrootcert`: a file of trusted roots, or the system's store (`system`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file.
    File(PathBuf),
    /// The operating system's trusted roots.
    System,
}

/// A parsed connection string with the environment's defaults applied. Built only by
/// [`ConnInfo::parse`] (and [`ConnInfo::parse_with`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) dbname: String,
    pub(crate) user: String,
    pub(crate) password: Option<Secret>,
    pub(crate) passfile: Option<PathBuf>,
    pub(crate) sslmode: SslMode,
    /// Whether `sslmode` was given (string or `PGSSLMODE`) rather than defaulted.
    pub(crate) sslmode_given: bool,
    pub(crate) sslrootcert: Option<RootCert>,
    pub(crate) sslcert: Option<PathBuf>,
    pub(crate) sslkey: Option<PathBuf>,
    pub(crate) sslpassword: Option<Secret>,
    pub(crate) application_name: String,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) target: TargetSessionAttrs,
    pub(crate) options: Option<String>,
    /// The user's home folder, for `~/.pgpass` and `~/.postgresql/`.
    pub(crate) home: Option<PathBuf>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({})", self.redacted())
    }
}

/// A connection string that cannot be used. The message never quotes a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PostgreSQL connection string: {0}")]
pub struct ConnInfoError(pub String);

/// What [`ConnInfo::parse_with`] reads from outside the string: environment variables and the
/// home folder. [`ProcessEnvironment`] is the real one.
pub trait Environment {
    /// An environment variable.
    fn var(&self, name: &str) -> Option<String>;
    /// The user's home folder.
    fn home(&self) -> Option<PathBuf>;
    /// The operating-system user name (libpq's default user).
    fn os_user(&self) -> Option<String>;
}

/// The process's own environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }
    fn os_user(&self) -> Option<String> {
        self.var("USER").or_else(|| self.var("LOGNAME"))
    }
}

/// The keywords offkit reads, each with the environment variable that supplies it when absent.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", None),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslpassword", None),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("options", Some("PGOPTIONS")),
];

/// The Unix-socket folder Debian's libpq uses when no host is given.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

fn known(key: &str) -> bool {
    KEYWORDS.iter().any(|(k, _)| *k == key)
}

fn err(message: impl Into<String>) -> ConnInfoError {
    ConnInfoError(message.into())
}

/// Percent-decodes URL text (`%41` → `A`); refuses invalid escapes and non-UTF-8 results
/// without quoting the text.
fn percent_decode(s: &str, what: &str) -> Result<String, ConnInfoError> {
    crate::util::percent_decode(s).ok_or_else(|| {
        err(format!(
            "invalid percent-encoding in the {what} (or not UTF-8 once decoded)"
        ))
    })
}

/// The options of a connection string as written, before the environment and defaults: libpq's
/// keywords and the options a caller claims (a store URL's `table`), each given at most once.
struct Params<'c> {
    map: BTreeMap<String, String>,
    claimed: &'c [&'c str],
}

impl Params<'_> {
    /// Adds `key = value`, refusing unknown keywords and repeats. `nth` counts the options of
    /// the string (for the message: an unknown name is never quoted, as it may be a piece of a
    /// password that held a raw `&` or space).
    fn put(&mut self, key: &str, value: String, nth: usize) -> Result<(), ConnInfoError> {
        if !known(key) && !self.claimed.contains(&key) {
            let mut list: Vec<&str> = KEYWORDS.iter().map(|(k, _)| *k).collect();
            list.extend_from_slice(self.claimed);
            let hint = crate::util::closest(key, &list)
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            return Err(err(format!(
                "option {nth} is not one offkit reads{hint}; it reads: {} (a password holding & or spaces must be percent-encoded or quoted)",
                list.join(", ")
            )));
        }
        if self.map.insert(key.to_owned(), value).is_some() {
            return Err(err(format!(
                "option {key} is given twice (refused: which one counts would be a guess)"
            )));
        }
        Ok(())
    }
}

/// A URL: `postgres[ql]://[user[:password]@][host[:port][,host[:port]…]][/dbname][?key=value&…]`,
/// split as libpq splits it: the credentials end at the first `@` met before any `/` (so a
/// password holding `/` or `@` must be percent-encoded, as with `psql`). Parts of the URL are
/// never quoted in errors: a malformed URL may have a password where a host or port should be.
fn parse_url(text: &str, params: &mut Params<'_>) -> Result<(), ConnInfoError> {
    let rest = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
        .ok_or_else(|| err("a URL starts with postgres:// or postgresql://"))?;
    let rest = match rest.find(['@', '/']) {
        Some(at) if rest.as_bytes()[at] == b'@' => {
            let userinfo = &rest[..at];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                params.put("user", percent_decode(user, "user name")?, 0)?;
            }
            if let Some(p) = password {
                params.put("password", percent_decode(p, "password")?, 0)?;
            }
            &rest[at + 1..]
        }
        _ => rest,
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hosts = &rest[..host_end];
    let rest = &rest[host_end..];
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if hosts.contains('@') {
        return Err(err(
            "the URL has an @ that is not percent-encoded (write it as %40 in a password)",
        ));
    }
    if !hosts.is_empty() {
        let mut names = Vec::new();
        let mut ports = Vec::new();
        for spec in hosts.split(',') {
            let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
                let (addr, after) = v6
                    .split_once(']')
                    .ok_or_else(|| err("an IPv6 host in [brackets] is not closed"))?;
                (addr.to_owned(), after.strip_prefix(':'))
            } else {
                match spec.split_once(':') {
                    Some((h, p)) => (percent_decode(h, "host")?, Some(p)),
                    None => (percent_decode(spec, "host")?, None),
                }
            };
            names.push(host);
            ports.push(port.unwrap_or("").to_owned());
        }
        params.put("host", names.join(","), 0)?;
        if ports.iter().any(|p| !p.is_empty()) {
            params.put("port", ports.join(","), 0)?;
        }
    }
    if let Some(p) = path.strip_prefix('/').filter(|p| !p.is_empty()) {
        params.put("dbname", percent_decode(p, "database name")?, 0)?;
    }
    let pairs = query.into_iter().flat_map(|q| q.split('&'));
    for (nth, pair) in (1..).zip(pairs.filter(|p| !p.is_empty())) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            err(format!(
                "URL option {nth} has no value (key=value; a password holding & must be percent-encoded)"
            ))
        })?;
        let key = percent_decode(k, "option name")?;
        let value = percent_decode(v, "option value")?;
        params.put(&key, value, nth)?;
    }
    Ok(())
}

/// Keyword/value text: `key = value` pairs separated by white space; a value may be single-quoted
/// (`'it''s'` is not libpq's: inside quotes `\'` and `\\` escape).
fn parse_keywords(text: &str, params: &mut Params<'_>) -> Result<(), ConnInfoError> {
    let mut chars = text.chars().peekable();
    for nth in 1.. {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // The word is not quoted: it is likely the rest of a password that held a space.
            return Err(err(format!(
                "word {nth} has no \"=\" (a value holding spaces must be quoted: password='…')"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(err("unterminated quoted value")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(err("unterminated quoted value")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        params.put(&key, value, nth)?;
    }
    Ok(())
}

fn parse_port(p: &str) -> Result<u16, ConnInfoError> {
    // The value is not quoted: in a malformed URL it may be part of a password.
    p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        err("a port is not a number from 1 to 65535 (percent-encode : / @ ? in passwords)")
    })
}

fn path_param(v: &str, home: Option<&PathBuf>) -> PathBuf {
    match (v.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(v),
    }
}

impl ConnInfo {
    /// Parses a connection string (URL or keyword/value) with the process's environment.
    pub fn parse(text: &str) -> Result<ConnInfo, ConnInfoError> {
        Self::parse_with(text, &ProcessEnvironment)
    }

    /// Parses a connection string, filling what it leaves out from `env` and libpq's defaults.
    pub fn parse_with(text: &str, env: &dyn Environment) -> Result<ConnInfo, ConnInfoError> {
        Self::parse_claiming_with(text, &[], env).map(|(c, _)| c)
    }

    /// Parses a connection string that also carries options of the caller's (`claimed`: a
    /// store URL's `table=`), read by the same parser as libpq's own — the same splitting and
    /// percent-decoding, each at most once — and returned beside the connection.
    pub fn parse_claiming(
        text: &str,
        claimed: &[&str],
    ) -> Result<(ConnInfo, BTreeMap<String, String>), ConnInfoError> {
        Self::parse_claiming_with(text, claimed, &ProcessEnvironment)
    }

    /// [`ConnInfo::parse_claiming`] with the environment `env`.
    pub fn parse_claiming_with(
        text: &str,
        claimed: &[&str],
        env: &dyn Environment,
    ) -> Result<(ConnInfo, BTreeMap<String, String>), ConnInfoError> {
        debug_assert!(claimed.iter().all(|k| !known(k)), "claims a libpq keyword");
        // Not trimmed at the end before the keyword form is read: a value may end with an
        // escaped space (`password=s3cret\ `), which libpq keeps; the tokenizer skips the
        // whitespace between words itself.
        let text = text.trim_start();
        let mut params = Params {
            map: BTreeMap::new(),
            claimed,
        };
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            parse_url(text.trim_end(), &mut params)?;
        } else {
            parse_keywords(text, &mut params)?;
        }
        let mut params = params.map;
        let claimed: BTreeMap<String, String> = claimed
            .iter()
            .filter_map(|k| params.remove(*k).map(|v| ((*k).to_owned(), v)))
            .collect();
        for (key, var) in KEYWORDS {
            if let Some(var) = var
                && !params.contains_key(*key)
                && let Some(v) = env.var(var)
            {
                params.insert((*key).to_owned(), v);
            }
        }
        let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let home = env.home();

        if get("hostaddr").is_some() {
            return Err(err(
                "hostaddr is not supported; give the address as host (offkit resolves names itself)",
            ));
        }
        let hosts: Vec<Host> = match get("host") {
            Some(h) => h
                .split(',')
                .map(|h| {
                    if h.starts_with('/') {
                        Host::Socket(PathBuf::from(h))
                    } else if h.is_empty() {
                        Host::Socket(PathBuf::from(DEFAULT_SOCKET_DIR))
                    } else {
                        Host::Tcp(h.to_owned())
                    }
                })
                .collect(),
            None => vec![Host::Socket(PathBuf::from(DEFAULT_SOCKET_DIR))],
        };
        let ports: Vec<u16> = match get("port") {
            None => vec![5432],
            Some(p) => p
                .split(',')
                .map(|p| {
                    if p.is_empty() {
                        Ok(5432)
                    } else {
                        parse_port(p)
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let endpoints: Vec<Endpoint> = match (hosts.len(), ports.len()) {
            (_, 1) => hosts
                .into_iter()
                .map(|host| Endpoint {
                    host,
                    port: ports[0],
                })
                .collect(),
            (h, p) if h == p => hosts
                .into_iter()
                .zip(ports)
                .map(|(host, port)| Endpoint { host, port })
                .collect(),
            (h, p) => {
                return Err(err(format!(
                    "{h} host(s) but {p} port(s): give one port for all, or one per host"
                )));
            }
        };
        let user = get("user")
            .map(str::to_owned)
            .or_else(|| env.os_user())
            .unwrap_or_else(|| "postgres".to_owned());
        let dbname = get("dbname").map_or_else(|| user.clone(), str::to_owned);
        let sslmode_given = get("sslmode").is_some();
        let sslrootcert = get("sslrootcert").map(|v| {
            if v == "system" {
                RootCert::System
            } else {
                RootCert::File(path_param(v, home.as_ref()))
            }
        });
        let sslmode = match get("sslmode") {
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                err(format!(
                    "sslmode {:?} is not one of disable, prefer, require, verify-ca, verify-full",
                    crate::util::printable_short(m)
                ))
            })?,
            // libpq 16: sslrootcert=system makes verify-full the default.
            None if sslrootcert == Some(RootCert::System) => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if sslrootcert == Some(RootCert::System) && sslmode != SslMode::VerifyFull {
            return Err(err(format!(
                "sslrootcert=system needs sslmode=verify-full (got {}): trusting every public CA without checking the host name would accept any certificate for any name",
                sslmode.as_str()
            )));
        }
        let connect_timeout = match get("connect_timeout") {
            None => None,
            Some(t) => {
                let secs: u64 = t.parse().map_err(|_| {
                    err(format!(
                        "connect_timeout {:?} is not a number of seconds",
                        crate::util::printable_short(t)
                    ))
                })?;
                // libpq: zero or negative means wait forever; below 2 s counts as 2 s.
                (secs > 0).then(|| Duration::from_secs(secs.max(2)))
            }
        };
        let target = match get("target_session_attrs") {
            None => TargetSessionAttrs::Any,
            Some(t) => TargetSessionAttrs::parse(t).ok_or_else(|| {
                err(format!(
                    "target_session_attrs {:?} is not one of any, read-write, read-only, primary, standby",
                    crate::util::printable_short(t)
                ))
            })?,
        };
        let application_name = get("application_name")
            .or_else(|| get("fallback_application_name"))
            .unwrap_or("offkit")
            .to_owned();
        let conninfo = ConnInfo {
            endpoints,
            dbname,
            user,
            password: params.get("password").map(|p| Secret::new(p.clone())),
            passfile: get("passfile").map(|p| path_param(p, home.as_ref())),
            sslmode,
            sslmode_given,
            sslrootcert,
            sslcert: get("sslcert").map(|p| path_param(p, home.as_ref())),
            sslkey: get("sslkey").map(|p| path_param(p, home.as_ref())),
            sslpassword: get("sslpassword").map(|p| Secret::new(p.to_owned())),
            application_name,
            connect_timeout,
            target,
            options: get("options").map(str::to_owned),
            home,
        };
        Ok((conninfo, claimed))
    }

    /// The hosts to try, in order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `sslmode`.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// `target_session_attrs`.
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target
    }

    /// True when the password (or `sslpassword`) is the placeholder of a redacted form: the
    /// string was read back from a report or a ledger, which never keep the secret.
    pub fn holds_placeholder_secret(&self) -> bool {
        [&self.password, &self.sslpassword]
            .into_iter()
            .flatten()
            .any(Secret::is_placeholder)
    }

    /// `~/.pgpass`, or `passfile` / `PGPASSFILE`.
    pub fn passfile(&self) -> Option<PathBuf> {
        self.passfile
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".pgpass")))
    }

    /// A file under `~/.postgresql/`, libpq's default place for TLS files.
    pub(crate) fn postgresql_dir_file(&self, name: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(".postgresql").join(name))
    }

    /// The connection as a URL with no secret in it: rebuilt from the parsed values (the
    /// password and `sslpassword` are never part of it), so it is safe to print, log and record.
    pub fn redacted(&self) -> String {
        let mut s = String::from("postgres://");
        s.push_str(&percent_encode(&self.user));
        if self.password.is_some() {
            s.push(':');
            s.push_str(crate::util::REDACTED);
        }
        s.push('@');
        let mut sockets = Vec::new();
        let tcp: Vec<String> = self
            .endpoints
            .iter()
            .filter_map(|e| match &e.host {
                Host::Tcp(h) if h.contains(':') => Some(format!("[{h}]:{}", e.port)),
                Host::Tcp(h) => Some(format!("{}:{}", percent_encode(h), e.port)),
                Host::Socket(dir) => {
                    sockets.push(format!("{}:{}", dir.display(), e.port));
                    None
                }
            })
            .collect();
        s.push_str(&tcp.join(","));
        s.push('/');
        s.push_str(&percent_encode(&self.dbname));
        let mut query: Vec<String> = Vec::new();
        if !sockets.is_empty() {
            query.push(format!("host={}", percent_encode(&sockets.join(","))));
        }
        if self.sslmode_given || self.sslmode != SslMode::Prefer {
            query.push(format!("sslmode={}", self.sslmode.as_str()));
        }
        if self.target != TargetSessionAttrs::Any {
            query.push(format!("target_session_attrs={}", self.target.as_str()));
        }
        if let Some(RootCert::File(p)) = &self.sslrootcert {
            query.push(format!(
                "sslrootcert={}",
                percent_encode(&p.display().to_string())
            ));
        }
        if self.sslrootcert == Some(RootCert::System) {
            query.push("sslrootcert=system".to_owned());
        }
        if let Some(p) = &self.sslcert {
            query.push(format!(
                "sslcert={}",
                percent_encode(&p.display().to_string())
            ));
        }
        if !query.is_empty() {
            s.push('?');
            s.push_str(&query.join("&"));
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A made-up environment.
    #[derive(Default)]
    pub(crate) struct FakeEnv {
        pub vars: HashMap<String, String>,
        pub home: Option<PathBuf>,
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn home(&self) -> Option<PathBuf> {
            self.home.clone()
        }
        fn os_user(&self) -> Option<String> {
            Some("osuser".into())
        }
    }

    fn parse(s: &str) -> Result<ConnInfo, ConnInfoError> {
        ConnInfo::parse_with(s, &FakeEnv::default())
    }

    fn tcp(h: &str, port: u16) -> Endpoint {
        Endpoint {
            host: Host::Tcp(h.into()),
            port,
        }
    }

    #[test]
    fn urls_parse_the_way_libpq_reads_them() {
        let c = parse("postgresql://ad%40min:p%40ss%2Fw%40rd@db.example:6543/app%20db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(c.user, "ad@min");
        assert_eq!(c.password.as_ref().unwrap().expose(), "p@ss/w@rd");
        // As in libpq, `?` may stand raw in a password; `/` and `@` must be encoded.
        let q = parse("postgres://u:p?ss@db/app").unwrap();
        assert_eq!(q.password.unwrap().expose(), "p?ss");
        let a = parse("postgres://u@h/d?application_name=a@b").unwrap();
        assert_eq!((a.user.as_str(), a.application_name.as_str()), ("u", "a@b"));
        assert_eq!(c.endpoints, vec![tcp("db.example", 6543)]);
        assert_eq!(c.dbname, "app db");
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.application_name, "x");
        let m = parse("postgres://u@a:1,b,[::1]:3/d?target_session_attrs=read-write").unwrap();
        assert_eq!(
            m.endpoints,
            vec![tcp("a", 1), tcp("b", 5432), tcp("::1", 3)]
        );
        assert_eq!(m.target, TargetSessionAttrs::ReadWrite);
        let s = parse("postgres:///d?host=/tmp/sock&user=u").unwrap();
        assert_eq!(s.endpoints[0].host, Host::Socket("/tmp/sock".into()));
        assert_eq!(s.user, "u");
    }

    #[test]
    fn keyword_strings_parse_with_quotes_and_escapes() {
        let c =
            parse("host=a,b port=1,2 dbname='my db' user=u password='it\\'s' sslmode = require")
                .unwrap();
        assert_eq!(c.endpoints, vec![tcp("a", 1), tcp("b", 2)]);
        assert_eq!(c.dbname, "my db");
        assert_eq!(c.password.unwrap().expose(), "it's");
        assert_eq!(c.sslmode, SslMode::Require);
        // An escaped final space is part of the value, as libpq reads it (found by fuzzing).
        let c = parse("  host=h password=s3cret\\ ").unwrap();
        assert_eq!(c.password.unwrap().expose(), "s3cret ");
    }

    #[test]
    fn the_environment_fills_what_the_string_leaves_out() {
        let env = FakeEnv {
            vars: [
                ("PGHOST", "envhost"),
                ("PGPORT", "7000"),
                ("PGUSER", "envuser"),
                ("PGPASSWORD", "envsecret"),
                ("PGSSLMODE", "verify-ca"),
                ("PGAPPNAME", "night-run"),
                ("PGCONNECT_TIMEOUT", "1"),
                ("PGSSLROOTCERT", "~/ca.pem"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            home: Some("/home/ops".into()),
        };
        let c = ConnInfo::parse_with("dbname=app", &env).unwrap();
        assert_eq!(c.endpoints, vec![tcp("envhost", 7000)]);
        assert_eq!((c.user.as_str(), c.dbname.as_str()), ("envuser", "app"));
        assert_eq!(c.password.unwrap().expose(), "envsecret");
        assert_eq!(c.sslmode, SslMode::VerifyCa);
        assert_eq!(c.application_name, "night-run");
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(
            c.sslrootcert,
            Some(RootCert::File("/home/ops/ca.pem".into()))
        );
        // The string wins over the environment.
        let c = ConnInfo::parse_with("postgres://u@h/d?sslmode=disable", &env).unwrap();
        assert_eq!((c.user.as_str(), c.sslmode), ("u", SslMode::Disable));
        // Defaults: the socket folder, port 5432, the OS user, a database of the user's name.
        let c = parse("").unwrap();
        assert_eq!(c.endpoints[0].host, Host::Socket(DEFAULT_SOCKET_DIR.into()));
        assert_eq!((c.user.as_str(), c.dbname.as_str()), ("osuser", "osuser"));
        assert_eq!(c.sslmode, SslMode::Prefer);
    }

    #[test]
    fn mistakes_are_refused_without_quoting_secrets() {
        for bad in [
            "postgres://u:hunter2@h/d?sslmode=verify_full",
            "host=h password=hunter2 sslmod=require",
            "postgres://u:hunter2@h/d?password=hunter2",
            "host=h password=hunter2 password=other",
            "postgres://u:hunter2@h:99999/d",
            "host=a,b,c port=1,2 password=hunter2",
            "postgres://u:hun/ter2@h/d",
            "postgres://u:hunter2@x@h/d",
            "host=h password='hunter2",
            "postgres://u:hun%ZZter2@h/d",
            "postgres://u@h/d?sslrootcert=system&sslmode=require",
            // Pieces of a password with a raw space or & read as words or options.
            "host=h password=hun hunter2",
            "host=h password=hun hunter2==",
            "postgres://u@h/d?password=hun&hunter2=x",
            "postgres://u@h/d?password=hun&hunter2",
            "POSTGRES://u:hunter2@h/d",
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("hunter2") && !e.contains("hun%"), "{bad}: {e}");
        }
        // A typo is still helped, by a known name.
        let e = parse("postgres://u@h/d?sslmod=require")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("option 1 is not one offkit reads (did you mean sslmode?)"),
            "{e}"
        );
        let e = parse("host=h password=a b").unwrap_err().to_string();
        assert!(e.contains("word 3 has no \"=\""), "{e}");
    }

    #[test]
    fn claimed_options_are_read_by_the_same_parser() {
        let env = FakeEnv::default();
        let claim = |s: &str| ConnInfo::parse_claiming_with(s, &["table", "where"], &env);
        // A raw `?` in the password ends where libpq ends it, before the real options.
        let (c, extra) = claim("postgres://u:p?ss@h/d?table=s.t&sslmode=disable").unwrap();
        assert_eq!(c.password.as_ref().unwrap().expose(), "p?ss");
        assert_eq!(c.sslmode, SslMode::Disable);
        assert_eq!(extra["table"], "s.t");
        // Option names and values are percent-decoded alike.
        let (c, extra) =
            claim("postgres://u@h/d?t%61ble=s.t&pass%77ord=x%26y&where=a%3D1").unwrap();
        assert_eq!(c.password.as_ref().unwrap().expose(), "x&y");
        assert_eq!(
            (extra["table"].as_str(), extra["where"].as_str()),
            ("s.t", "a=1")
        );
        assert!(claim("postgres://u@h/d?table=a&t%61ble=b").is_err());
        // Without the claim, the option is unknown.
        assert!(parse("postgres://u@h/d?table=s.t").is_err());
    }

    #[test]
    fn a_redacted_form_read_back_holds_only_a_placeholder() {
        let c = parse("postgres://u:s3cret@h/d").unwrap();
        assert!(!c.holds_placeholder_secret());
        let back = parse(&c.redacted()).unwrap();
        assert!(back.holds_placeholder_secret());
        assert!(
            !parse("postgres://u@h/d")
                .unwrap()
                .holds_placeholder_secret()
        );
    }

    #[test]
    fn the_redacted_form_never_holds_a_secret() {
        for (text, shown) in [
            (
                "postgres://u:s3cr%2Fet@db:5432/app?sslmode=verify-full",
                "postgres://u:***@db:5432/app?sslmode=verify-full",
            ),
            (
                "postgres://u:s3c?ret@db/app",
                "postgres://u:***@db:5432/app",
            ),
            (
                "host=db user=u password=s3cr%77et= sslpassword=k3ypass dbname=app",
                "postgres://u:***@db:5432/app",
            ),
            (
                "postgres://u@db/app?password=x3%26y",
                "postgres://u:***@db:5432/app",
            ),
        ] {
            let c = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(c.redacted(), shown, "{text}");
            let debug = format!("{c:?}");
            for secret in ["s3cr/et", "s3c?ret", "s3cr%77et", "k3ypass", "x3&y"] {
                assert!(
                    !debug.contains(secret) && !c.redacted().contains(secret),
                    "{text}: {secret} in {debug}"
                );
            }
        }
    }
}
