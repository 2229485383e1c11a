//! A throwaway PostgreSQL cluster for the tests that need what the shared server on 5432 does not
//! have: TLS, SCRAM passwords, client certificates, a read-only server. It is made with the
//! installed `initdb` and `pg_ctl`, run as the `postgres` user, on a free port, in a temporary
//! folder, and stopped when dropped. A test CA, server and client certificates are made here with
//! the `openssl` crate (so that validity dates can be set, e.g. an expired certificate).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// The superuser's password in every test cluster.
pub const SUPER_PASSWORD: &str = "sup3r-Secret-Pw!";

/// A certificate authority for a test.
pub struct Ca {
    pub cert: X509,
    pub key: PKey<Private>,
}

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(&name(cn)).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Ca {
            cert: b.build(),
            key,
        }
    }

    /// A leaf certificate for `cn` with DNS names `dns`, valid between the two Unix times.
    pub fn issue(
        &self,
        cn: &str,
        dns: &[&str],
        not_before: i64,
        not_after: i64,
    ) -> (X509, PKey<Private>) {
        let key = key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(rand_serial()).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(not_before).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(not_after).unwrap())
            .unwrap();
        if !dns.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for d in dns {
                san.dns(d);
            }
            let ext = san
                .build(&b.x509v3_context(Some(&self.cert), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }

    /// A leaf valid from yesterday for thirty days.
    pub fn issue_valid(&self, cn: &str, dns: &[&str]) -> (X509, PKey<Private>) {
        let now = now();
        self.issue(cn, dns, now - 86_400, now + 30 * 86_400)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_le_bytes(b) | 1
}

/// Writes a certificate as PEM.
pub fn write_cert(path: &Path, cert: &X509) {
    std::fs::write(path, cert.to_pem().unwrap()).unwrap();
}

/// Writes a private key as PKCS#8 PEM with mode 0600.
pub fn write_key(path: &Path, key: &PKey<Private>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn pg_bin(tool: &str) -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join(tool).exists() {
            return dir.join(tool);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|v| v.join("bin").join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(tool))
}

fn as_postgres(cmd: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(cmd);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running test cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// What the cluster's configuration says beyond the defaults.
pub struct Setup<'a> {
    /// Server certificate and key (TLS on when given) and the CA trusted for client certificates.
    pub tls: Option<(&'a X509, &'a PKey<Private>, &'a X509)>,
    /// pg_hba.conf lines after `local all all trust`.
    pub hba: &'a str,
    /// Extra postgresql.conf lines.
    pub conf: &'a str,
}

impl Cluster {
    pub fn start(setup: &Setup<'_>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let data = root.join("data");
        std::fs::write(root.join("pw"), SUPER_PASSWORD).unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root)
            .status()
            .unwrap();
        assert!(status.success());
        let out = as_postgres(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["--auth=scram-sha-256", "--username=postgres", "--no-sync"])
            .arg(format!("--pwfile={}", root.join("pw").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\npassword_encryption = 'scram-sha-256'\nfsync = off\n",
            root.display()
        );
        if let Some((cert, key, client_ca)) = setup.tls {
            write_cert(&data.join("server.crt"), cert);
            write_key(&data.join("server.key"), key);
            write_cert(&data.join("client-ca.crt"), client_ca);
            conf.push_str(
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'client-ca.crt'\n",
            );
        }
        conf.push_str(setup.conf);
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("local all all trust\n{}\n", setup.hba),
        )
        .unwrap();
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root)
            .status()
            .unwrap();
        let out = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(root.join("log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(root.join("log")).unwrap_or_default()
        );
        Cluster { dir, port }
    }

    /// Runs SQL as the superuser over the Unix socket (trust).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = as_postgres(&pg_bin("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", db, "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the server certificate and key, and reloads.
    pub fn set_server_cert(&self, cert: &X509, key: &PKey<Private>) {
        let data = self.dir.path().join("data");
        write_cert(&data.join("server.crt"), cert);
        write_key(&data.join("server.key"), key);
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(data.join("server.crt"))
            .arg(data.join("server.key"))
            .status()
            .unwrap();
        self.psql("postgres", "SELECT pg_reload_conf()");
        // The postmaster reloads asynchronously; new connections see the new certificate shortly.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    /// A folder the test may write client files into (readable by the test only).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
