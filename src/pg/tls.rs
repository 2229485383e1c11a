//! TLS for PostgreSQL connections with OpenSSL, with libpq's `sslmode` semantics (PostgreSQL
//! documentation, "SSL Support"): the same library libpq uses, the same default files under
//! `~/.postgresql/`, the same system trust store. docs/DECISIONS.md says why OpenSSL and not
//! rustls.
//!
//! | sslmode | TLS | chain verified | host name checked |
//! |---|---|---|---|
//! | disable | no | — | — |
//! | prefer | if the server offers it | only when a root file exists (libpq's rule) | no |
//! | require | always | only when a root file exists (libpq's rule) | no |
//! | verify-ca | always | yes (a root file, or `sslrootcert=system`, is required) | no |
//! | verify-full | always | yes | yes |
//!
//! A client certificate (`sslcert`/`sslkey`, default `~/.postgresql/postgresql.{crt,key}`) is
//! presented when the certificate file exists; its key must not be readable by group or others.
//! The first certificate problem OpenSSL reports is kept, so a failure can say what it was
//! (unknown CA, name mismatch, expired) rather than "handshake failed".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

use super::conninfo::{ConnInfo, RootCert, SslMode};
use super::error::{ConnectError, TlsProblem};

/// The first certificate-verification failure of a handshake: OpenSSL's code and text.
pub(crate) type VerifySlot = Arc<Mutex<Option<(i32, String)>>>;

/// How connections are made: the protocol-level mode and, unless TLS is off, the connector.
pub(crate) struct TlsSetup {
    /// Disable, Prefer or Require at the protocol level.
    pub mode: postgres::config::SslMode,
    /// The OpenSSL connector (`None` for `sslmode=disable`).
    pub connector: Option<MakeTlsConnector>,
    /// Where the verify callback records the first failure.
    pub verify_failure: VerifySlot,
}

// X509 verification results (OpenSSL `x509_vfy.h`; stable values).
const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const X509_V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;
const X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const X509_V_ERR_HOSTNAME_MISMATCH: i32 = 62;
const X509_V_ERR_IP_ADDRESS_MISMATCH: i32 = 64;

/// The problem an OpenSSL verification code stands for.
pub(crate) fn problem(code: i32, text: &str) -> TlsProblem {
    match code {
        X509_V_ERR_HOSTNAME_MISMATCH | X509_V_ERR_IP_ADDRESS_MISMATCH => TlsProblem::NameMismatch,
        X509_V_ERR_CERT_HAS_EXPIRED => TlsProblem::Expired,
        X509_V_ERR_CERT_NOT_YET_VALID => TlsProblem::NotYetValid,
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => TlsProblem::UnknownCa,
        _ => TlsProblem::Other(text.to_owned()),
    }
}

fn tls_files_error(path: &Path, message: impl std::fmt::Display) -> ConnectError {
    ConnectError::TlsFiles {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The root certificates to trust, if any: an explicit file (which must exist for the verify
/// modes), the system store, or the default `~/.postgresql/root.crt` when it exists.
fn roots(info: &ConnInfo) -> Result<Option<RootCert>, ConnectError> {
    let verify = matches!(info.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    match &info.sslrootcert {
        Some(RootCert::System) => Ok(Some(RootCert::System)),
        Some(RootCert::File(p)) if p.exists() => Ok(Some(RootCert::File(p.clone()))),
        Some(RootCert::File(p)) if verify => Err(tls_files_error(
            p,
            "root certificate file does not exist (sslrootcert)",
        )),
        Some(RootCert::File(_)) => Ok(None),
        None => {
            let default = info.postgresql_dir_file("root.crt");
            match default {
                Some(p) if p.exists() => Ok(Some(RootCert::File(p))),
                _ if verify => Err(ConnectError::TlsFiles {
                    path: "~/.postgresql/root.crt".into(),
                    message: format!(
                        "sslmode={} needs a root certificate: give sslrootcert=FILE (or sslrootcert=system for the system's trusted roots)",
                        info.sslmode.as_str()
                    ),
                }),
                _ => Ok(None),
            }
        }
    }
}

/// Refuses a private key file that group or others may read (libpq allows a root-owned key
/// readable by its group).
fn check_key_permissions(path: &Path) -> Result<(), ConnectError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).map_err(|e| tls_files_error(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    let root_group_readable = meta.uid() == 0 && mode & 0o037 == 0;
    if mode & 0o077 != 0 && !root_group_readable {
        return Err(tls_files_error(
            path,
            format!(
                "private key file has group or world access (mode {mode:o}); permissions should be u=rw (0600) or less"
            ),
        ));
    }
    Ok(())
}

/// The client certificate and key to present, if any.
fn client_files(info: &ConnInfo) -> Result<Option<(PathBuf, PathBuf)>, ConnectError> {
    let cert = match &info.sslcert {
        Some(p) if p.exists() => p.clone(),
        Some(p) => {
            return Err(tls_files_error(
                p,
                "client certificate file does not exist (sslcert)",
            ));
        }
        None => match info.postgresql_dir_file("postgresql.crt") {
            Some(p) if p.exists() => p,
            _ => return Ok(None),
        },
    };
    let key = match &info.sslkey {
        Some(p) => p.clone(),
        None => info
            .postgresql_dir_file("postgresql.key")
            .ok_or_else(|| tls_files_error(&cert, "no private key file for it (sslkey)"))?,
    };
    if !key.exists() {
        return Err(tls_files_error(
            &key,
            "certificate present, but not its private key file (sslkey)",
        ));
    }
    Ok(Some((cert, key)))
}

/// The TLS set-up for `info`.
pub(crate) fn setup(info: &ConnInfo) -> Result<TlsSetup, ConnectError> {
    use postgres::config::SslMode as Proto;
    let verify_failure: VerifySlot = Arc::new(Mutex::new(None));
    if info.sslmode == SslMode::Disable {
        return Ok(TlsSetup {
            mode: Proto::Disable,
            connector: None,
            verify_failure,
        });
    }
    let openssl_err = |e: openssl::error::ErrorStack| ConnectError::TlsFiles {
        path: "OpenSSL".into(),
        message: e.to_string(),
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(openssl_err)?;
    let roots = roots(info)?;
    match &roots {
        Some(RootCert::System) => builder.set_default_verify_paths().map_err(openssl_err)?,
        Some(RootCert::File(p)) => builder.set_ca_file(p).map_err(|e| tls_files_error(p, e))?,
        None => {}
    }
    if let Some((cert, key)) = client_files(info)? {
        check_key_permissions(&key)?;
        builder
            .set_certificate_chain_file(&cert)
            .map_err(|e| tls_files_error(&cert, e))?;
        let pem = std::fs::read(&key).map_err(|e| tls_files_error(&key, e))?;
        let pkey = match &info.sslpassword {
            Some(pw) => PKey::private_key_from_pem_passphrase(&pem, pw.expose().as_bytes()),
            None => PKey::private_key_from_pem(&pem),
        }
        .map_err(|_| {
            tls_files_error(
                &key,
                "cannot read the private key (wrong sslpassword, or not a PEM key)",
            )
        })?;
        builder
            .set_private_key(&pkey)
            .map_err(|e| tls_files_error(&key, e))?;
        builder
            .check_private_key()
            .map_err(|_| tls_files_error(&key, "the private key does not match the certificate"))?;
    }
    let verify_chain = roots.is_some();
    let check_host = info.sslmode == SslMode::VerifyFull;
    let slot = Arc::clone(&verify_failure);
    if verify_chain {
        builder.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
            if !ok {
                let mut first = slot.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    let e = ctx.error();
                    *first = Some((e.as_raw(), e.error_string().to_owned()));
                }
            }
            ok
        });
    } else {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    connector.set_callback(move |config, _domain| {
        if !verify_chain {
            config.set_verify(SslVerifyMode::NONE);
        }
        config.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(TlsSetup {
        mode: if info.sslmode == SslMode::Prefer {
            Proto::Prefer
        } else {
            Proto::Require
        },
        connector: Some(connector),
        verify_failure,
    })
}
