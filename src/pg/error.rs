//! Why a connection could not be made, each cause with its own message (and the one exit code of
//! database errors). Messages name the host and port, never a password.

use std::fmt;
use std::time::Duration;

/// What went wrong with TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate does not chain to a trusted root.
    UnknownCa,
    /// The certificate does not name the host connected to (`sslmode=verify-full`).
    NameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The server does not accept TLS connections (`sslmode=require` or stricter).
    NotOffered,
    /// Something else; OpenSSL's words.
    Other(String),
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsProblem::UnknownCa => f.write_str(
                "the server's certificate is not signed by a trusted CA (check sslrootcert)",
            ),
            TlsProblem::NameMismatch => f.write_str(
                "the server's certificate does not name this host (sslmode=verify-full checks the name connected to)",
            ),
            TlsProblem::Expired => f.write_str("the server's certificate has expired"),
            TlsProblem::NotYetValid => f.write_str("the server's certificate is not valid yet"),
            TlsProblem::NotOffered => f.write_str("the server does not accept TLS connections"),
            TlsProblem::Other(m) => write!(f, "{}", crate::util::escape_controls(m)),
        }
    }
}

/// A connection that could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens at the port.
    #[error("connection refused by {endpoint} (is the server running, and on this port?)")]
    Refused {
        /// Host and port.
        endpoint: String,
    },
    /// The host name does not resolve.
    #[error("host {host} not found (DNS)")]
    HostNotFound {
        /// The host.
        host: String,
    },
    /// No answer in time.
    #[error("no answer from {endpoint} within {after:?} (connect_timeout)")]
    Timeout {
        /// Host and port.
        endpoint: String,
        /// How long it waited.
        after: Duration,
    },
    /// The server refused the user or the password.
    #[error("authentication failed for user {user} at {endpoint}: {detail}")]
    Authentication {
        /// The user.
        user: String,
        /// Host and port.
        endpoint: String,
        /// What the server said.
        detail: String,
    },
    /// TLS could not be set up with the server.
    #[error("TLS with {endpoint} failed: {problem}")]
    Tls {
        /// Host and port.
        endpoint: String,
        /// What went wrong.
        problem: TlsProblem,
    },
    /// A local TLS file (root certificate, client certificate or key) cannot be used.
    #[error("{path}: {message}")]
    TlsFiles {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The database does not exist.
    #[error("database {dbname} does not exist at {endpoint}")]
    DatabaseMissing {
        /// The database.
        dbname: String,
        /// Host and port.
        endpoint: String,
    },
    /// The server is not of the kind `target_session_attrs` asks for.
    #[error("{endpoint} is not a {wanted} server")]
    WrongSession {
        /// Host and port.
        endpoint: String,
        /// What was asked for (`read-write`, `standby`, …).
        wanted: &'static str,
    },
    /// The server refused the connection for another reason, or the connection broke.
    #[error("{endpoint}: {message}")]
    Server {
        /// Host and port.
        endpoint: String,
        /// What happened.
        message: String,
    },
    /// Several hosts were tried and none would do.
    #[error("no host would do: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllHosts(Vec<ConnectError>),
}

impl ConnectError {
    /// The errors of every host tried (one for a single host).
    pub fn causes(&self) -> Vec<&ConnectError> {
        match self {
            ConnectError::AllHosts(all) => all.iter().collect(),
            one => vec![one],
        }
    }
}
