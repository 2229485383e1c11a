//! PostgreSQL connections the way libpq users expect them, for the migration runner, the ledger
//! and the PostgreSQL object store alike: connection strings and `PG*` variables
//! ([`conninfo`]), the password file ([`pgpass`]), TLS with `sslmode` semantics and client
//! certificates (`tls`), several hosts with `target_session_attrs`, and errors that say what
//! happened ([`ConnectError`]). SCRAM-SHA-256 (and MD5) authentication is the `postgres` crate's.
//!
//! [`connect`] tries each host (and each address a host name resolves to) in order, as libpq
//! does, and returns the first connection that satisfies `target_session_attrs`.

pub mod conninfo;
pub mod error;
pub mod pgpass;
mod tls;

use std::net::ToSocketAddrs;
use std::time::Instant;

use postgres::{Client, Config, NoTls};

pub use conninfo::{ConnInfo, ConnInfoError, Endpoint, Host, SslMode, TargetSessionAttrs};
pub use error::{ConnectError, TlsProblem};

/// A connection, where it was made, and anything the user should know (an ignored password
/// file).
pub struct Connected {
    /// The client.
    pub client: Client,
    /// The host and port that answered.
    pub endpoint: Endpoint,
    /// Remarks for the operator.
    pub warnings: Vec<String>,
}

/// Connects to the first host of `info` that accepts and fits `target_session_attrs`.
pub fn connect(info: &ConnInfo) -> Result<Connected, ConnectError> {
    let tls = tls::setup(info)?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for endpoint in info.endpoints() {
        match connect_endpoint(info, endpoint, &tls, &mut warnings) {
            Ok(client) => {
                return Ok(Connected {
                    client,
                    endpoint: endpoint.clone(),
                    warnings,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    Err(match errors.len() {
        1 => errors.remove(0),
        _ => ConnectError::AllHosts(errors),
    })
}

fn connect_endpoint(
    info: &ConnInfo,
    endpoint: &Endpoint,
    tls: &tls::TlsSetup,
    warnings: &mut Vec<String>,
) -> Result<Client, ConnectError> {
    let mut config = Config::new();
    config
        .user(&info.user)
        .dbname(&info.dbname)
        .application_name(&info.application_name)
        .ssl_mode(tls.mode)
        .port(endpoint.port);
    if let Some(t) = info.connect_timeout {
        config.connect_timeout(t);
    }
    if let Some(o) = &info.options {
        config.options(o);
    }
    let mut has_password = true;
    let mut ignored_passfile = None;
    match &info.password {
        Some(p) => {
            config.password(p.expose());
        }
        None => {
            let found = info
                .passfile()
                .map(|file| pgpass::lookup(&file, endpoint, &info.dbname, &info.user))
                .unwrap_or_default();
            if let Some(w) = found.warning {
                ignored_passfile = Some(w.clone());
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            match found.password {
                Some(p) => {
                    config.password(p.expose());
                }
                None => has_password = false,
            }
        }
    }
    let shown = endpoint.to_string();
    let addresses = match &endpoint.host {
        Host::Socket(dir) => {
            config.host_path(dir);
            vec![None]
        }
        Host::Tcp(name) => {
            config.host(name);
            let resolved = (name.as_str(), endpoint.port)
                .to_socket_addrs()
                .map_err(|_| ConnectError::HostNotFound {
                    host: crate::util::printable_short(name),
                })?;
            let mut ips: Vec<_> = resolved.map(|a| Some(a.ip())).collect();
            ips.dedup();
            ips
        }
    };
    let mut last = None;
    for ip in addresses {
        let mut attempt = config.clone();
        if let Some(ip) = ip {
            attempt.hostaddr(ip);
        }
        *tls.verify_failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let started = Instant::now();
        let result = match &tls.connector {
            None => attempt.connect(NoTls),
            Some(c) => attempt.connect(c.clone()),
        };
        match result {
            Ok(mut client) => {
                check_session(&mut client, info.target, &shown)?;
                return Ok(client);
            }
            Err(e) => {
                let socket = matches!(endpoint.host, Host::Socket(_));
                let attempt = Attempt {
                    info,
                    shown: &shown,
                    socket,
                    has_password,
                    ignored_passfile: ignored_passfile.as_deref(),
                    tls,
                    started,
                };
                last = Some(attempt.classify(e));
            }
        }
    }
    Err(last.unwrap_or(ConnectError::HostNotFound {
        host: crate::util::printable_short(&shown),
    }))
}

/// Checks the server against `target_session_attrs` (libpq: `SHOW transaction_read_only`, and
/// `pg_is_in_recovery()` for primary/standby).
fn check_session(
    client: &mut Client,
    target: TargetSessionAttrs,
    shown: &str,
) -> Result<(), ConnectError> {
    let query = |client: &mut Client, sql: &str| -> Result<String, ConnectError> {
        client
            .simple_query(sql)
            .map_err(|e| ConnectError::Server {
                endpoint: shown.to_owned(),
                message: e.to_string(),
            })?
            .into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .ok_or_else(|| ConnectError::Server {
                endpoint: shown.to_owned(),
                message: format!("no answer to {sql}"),
            })
    };
    let ok = match target {
        TargetSessionAttrs::Any => true,
        TargetSessionAttrs::ReadWrite => query(client, "SHOW transaction_read_only")? == "off",
        TargetSessionAttrs::ReadOnly => query(client, "SHOW transaction_read_only")? == "on",
        TargetSessionAttrs::Primary => query(client, "SELECT pg_is_in_recovery()")? == "f",
        TargetSessionAttrs::Standby => query(client, "SELECT pg_is_in_recovery()")? == "t",
    };
    if ok {
        Ok(())
    } else {
        Err(ConnectError::WrongSession {
            endpoint: shown.to_owned(),
            wanted: target.as_str(),
        })
    }
}

/// One connection attempt, for reading its failure.
struct Attempt<'a> {
    info: &'a ConnInfo,
    shown: &'a str,
    socket: bool,
    has_password: bool,
    ignored_passfile: Option<&'a str>,
    tls: &'a tls::TlsSetup,
    started: Instant,
}

impl Attempt<'_> {
    /// Turns the driver's error into what happened. tokio-postgres has no public error kinds, so
    /// the cause chain is read: the server's SQLSTATE, an I/O error's kind, the certificate problem
    /// the verify callback kept.
    fn classify(&self, e: postgres::Error) -> ConnectError {
        let Attempt {
            info,
            shown,
            socket,
            has_password,
            ignored_passfile,
            tls,
            started,
        } = *self;
        let endpoint = shown.to_owned();
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            return match code {
                // invalid_password, invalid_authorization_specification
                "28P01" | "28000" => ConnectError::Authentication {
                    user: info.user.clone(),
                    endpoint,
                    detail: db.message().to_owned(),
                },
                // invalid_catalog_name
                "3D000" => ConnectError::DatabaseMissing {
                    dbname: info.dbname.clone(),
                    endpoint,
                },
                _ => ConnectError::Server {
                    endpoint,
                    message: format!("{} ({code})", db.message()),
                },
            };
        }
        let verify = tls
            .verify_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((code, text)) = verify {
            return ConnectError::Tls {
                endpoint,
                problem: tls::problem(code, &text),
            };
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => ConnectError::Refused { endpoint },
                    std::io::ErrorKind::TimedOut => ConnectError::Timeout {
                        endpoint,
                        after: started.elapsed(),
                    },
                    // No socket file: no server listens there.
                    std::io::ErrorKind::NotFound if socket => ConnectError::Refused { endpoint },
                    _ => ConnectError::Server {
                        endpoint,
                        message: io.to_string(),
                    },
                };
            }
            if let Some(ssl) = c.downcast_ref::<openssl::ssl::Error>() {
                return ConnectError::Tls {
                    endpoint,
                    problem: TlsProblem::Other(ssl.to_string()),
                };
            }
            // tokio-postgres reports a server that answers "N" to the SSL request with this text and
            // no type of its own (connect_tls.rs).
            if c.to_string() == "server does not support TLS" {
                return ConnectError::Tls {
                    endpoint,
                    problem: TlsProblem::NotOffered,
                };
            }
            cause = c.source();
        }
        if !has_password {
            // The server asked for a password the client does not have (tokio-postgres: a
            // configuration error, "password missing").
            return ConnectError::Authentication {
            user: info.user.clone(),
            endpoint,
            detail: match ignored_passfile {
                Some(why) => format!("the server asks for a password and none was given: {why}"),
                None => "the server asks for a password and none was given (in the URL, PGPASSWORD or the password file)".into(),
            },
        };
        }
        ConnectError::Server {
            endpoint,
            message: e.to_string(),
        }
    }
}
