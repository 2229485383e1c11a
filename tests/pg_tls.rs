//! PostgreSQL the way sites run it: a throwaway cluster with `ssl = on`, SCRAM-SHA-256 passwords,
//! `hostssl` only, a client-certificate database, certificates from a test CA. Every connection
//! failure names its cause (exit 8); passwords from the URL, `PGPASSWORD` and `.pgpass` work and
//! never appear in any output, report or the ledger.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::path::Path;

use cluster::{Ca, Cluster, SUPER_PASSWORD, Setup, write_cert, write_key};
use common::outcome;

struct Site {
    cluster: Cluster,
    ca: Ca,
}

const ALICE_PASSWORD: &str = "al1ce-Pa55/w0rd?&";

fn site() -> Site {
    let ca = Ca::new("offkit test CA");
    let other_ca = Ca::new("someone else's CA");
    let (cert, key) = ca.issue_valid("localhost", &["localhost"]);
    let cluster = Cluster::start(&Setup {
        tls: Some((&cert, &key, &ca.cert)),
        hba: "hostssl certdb all 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n\
              hostssl all all 127.0.0.1/32 scram-sha-256\n\
              host all all 127.0.0.1/32 reject",
        conf: "",
    });
    cluster.psql(
        "postgres",
        &format!("CREATE ROLE alice LOGIN PASSWORD '{ALICE_PASSWORD}'"),
    );
    cluster.psql("postgres", "CREATE DATABASE app OWNER alice");
    cluster.psql("postgres", "CREATE DATABASE certdb OWNER alice");
    write_cert(&cluster.path("ca.pem"), &ca.cert);
    write_cert(&cluster.path("other-ca.pem"), &other_ca.cert);
    let (client, client_key) = ca.issue_valid("alice", &[]);
    write_cert(&cluster.path("alice.crt"), &client);
    write_key(&cluster.path("alice.key"), &client_key);
    Site { cluster, ca }
}

impl Site {
    fn url(&self, host: &str, db: &str, query: &str) -> String {
        let pw = ALICE_PASSWORD
            .replace('%', "%25")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('&', "%26");
        format!(
            "postgres://alice:{pw}@{host}:{}/{db}?{query}",
            self.cluster.port
        )
    }

    fn ca(&self) -> String {
        self.cluster.path("ca.pem").display().to_string()
    }
}

/// Runs `offkit history --db DB` with a clean home (no stray ~/.pgpass or ~/.postgresql).
fn history(db: &str, env: &[(&str, &str)], home: &Path) -> (i32, String, String) {
    let mut c = common::cmd();
    c.args(["history", "--db", db])
        .env("HOME", home)
        .env_remove("PGPASSWORD")
        .env_remove("PGSSLMODE")
        .env_remove("PGHOST");
    for (k, v) in env {
        c.env(k, v);
    }
    outcome(&c.output().unwrap())
}

fn assert_no_secret(text: &str) {
    for secret in [ALICE_PASSWORD, SUPER_PASSWORD, "al1ce-Pa55"] {
        assert!(!text.contains(secret), "a password leaked: {text}");
    }
}

#[test]
fn tls_modes_behave_as_libpq_and_failures_name_their_cause() {
    let s = site();
    let home = tempfile::tempdir().unwrap();
    let ca = s.ca();
    let ok = |db: String| {
        let (code, out, err) = history(&db, &[], home.path());
        assert_eq!(code, 0, "{db}: {out}{err}");
        assert_no_secret(&format!("{out}{err}"));
        out
    };
    let refused = |db: String, expect: &str| {
        let (code, out, err) = history(&db, &[], home.path());
        assert_eq!(code, 8, "{db}: {out}{err}");
        assert!(err.contains(expect), "{db}: expected {expect:?} in {err}");
        assert_no_secret(&format!("{out}{err}"));
        // The cause is printed once.
        assert_eq!(err.matches(expect).count(), 1, "{err}");
    };
    // require: TLS without verification (no root file in this home).
    let shown = ok(s.url("localhost", "app", "sslmode=require"));
    assert!(shown.contains("alice:***@localhost"), "{shown}");
    // verify-full: the certificate names localhost…
    ok(s.url(
        "localhost",
        "app",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    // …not 127.0.0.1.
    refused(
        s.url(
            "127.0.0.1",
            "app",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        "does not name this host",
    );
    // verify-ca does not check the name.
    ok(s.url(
        "127.0.0.1",
        "app",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ));
    // Another CA.
    let other = s.cluster.path("other-ca.pem").display().to_string();
    refused(
        s.url(
            "localhost",
            "app",
            &format!("sslmode=verify-full&sslrootcert={other}"),
        ),
        "not signed by a trusted CA",
    );
    // verify modes need a root file.
    refused(
        s.url("localhost", "app", "sslmode=verify-full"),
        "needs a root certificate",
    );
    // The server accepts TLS only: without it, the hba line refuses.
    refused(
        s.url("localhost", "app", "sslmode=disable"),
        "authentication failed",
    );
    // Wrong password, missing database, closed port, unknown host.
    let wrong = format!(
        "postgres://alice:not-it@localhost:{}/app?sslmode=require",
        s.cluster.port
    );
    refused(wrong, "authentication failed for user alice");
    refused(
        s.url("localhost", "nosuchdb", "sslmode=require"),
        "database nosuchdb does not exist",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    refused(
        format!("postgres://alice@127.0.0.1:{closed}/app?sslmode=require"),
        "connection refused",
    );
    refused(
        "postgres://alice@no-such-host.invalid/app".to_owned(),
        "not found",
    );
    // An expired server certificate.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (old, old_key) =
        s.ca.issue("localhost", &["localhost"], now - 40 * 86_400, now - 86_400);
    s.cluster.set_server_cert(&old, &old_key);
    refused(
        s.url(
            "localhost",
            "app",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        "has expired",
    );
}

#[test]
fn a_client_certificate_is_required_and_presented() {
    let s = site();
    let home = tempfile::tempdir().unwrap();
    let ca = s.ca();
    let base = format!("sslmode=verify-full&sslrootcert={ca}");
    let (code, _, err) = history(&s.url("localhost", "certdb", &base), &[], home.path());
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    let with_cert = format!(
        "{base}&sslcert={}&sslkey={}",
        s.cluster.path("alice.crt").display(),
        s.cluster.path("alice.key").display()
    );
    let (code, out, err) = history(&s.url("localhost", "certdb", &with_cert), &[], home.path());
    assert_eq!(code, 0, "{out}{err}");
    // The default place, ~/.postgresql/postgresql.{crt,key}, is used too.
    let dot = home.path().join(".postgresql");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::copy(s.cluster.path("alice.crt"), dot.join("postgresql.crt")).unwrap();
    std::fs::copy(s.cluster.path("alice.key"), dot.join("postgresql.key")).unwrap();
    std::fs::copy(s.cluster.path("ca.pem"), dot.join("root.crt")).unwrap();
    let (code, out, err) = history(
        &s.url("localhost", "certdb", "sslmode=verify-full"),
        &[],
        home.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    // A key others can read is refused, as libpq does.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dot.join("postgresql.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, _, err) = history(
        &s.url("localhost", "certdb", "sslmode=verify-full"),
        &[],
        home.path(),
    );
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("group or world access"), "{err}");
}

#[test]
fn passwords_from_pgpass_and_pgpassword_work_and_never_show() {
    let s = site();
    let home = tempfile::tempdir().unwrap();
    let port = s.cluster.port;
    let ca = s.ca();
    let no_password = format!(
        "host=localhost port={port} user=alice dbname=app sslmode=verify-full sslrootcert={ca}"
    );
    // No password anywhere: refused by the server.
    let (code, _, err) = history(&no_password, &[], home.path());
    assert_eq!(code, 8, "{err}");
    // PGPASSWORD.
    let (code, out, err) = history(&no_password, &[("PGPASSWORD", ALICE_PASSWORD)], home.path());
    assert_eq!(code, 0, "{out}{err}");
    assert_no_secret(&format!("{out}{err}"));
    // ~/.pgpass, 0600.
    use std::os::unix::fs::PermissionsExt;
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "localhost:{port}:app:alice:{}\n",
            ALICE_PASSWORD.replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = history(&no_password, &[], home.path());
    assert_eq!(code, 0, "{out}{err}");
    // Readable by others: ignored, with libpq's warning.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = history(&no_password, &[], home.path());
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("group or world access"), "{err}");
    // An apply over TLS with the password in the URL: nothing prints or records it.
    let ws = common::Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let db = s.url(
        "localhost",
        "app",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let report = ws.path("report.json");
    let out = common::cmd()
        .arg("apply")
        .arg(&kit)
        .arg("--trust")
        .arg(&public)
        .args(["--db", &db, "--json", "--progress", "off"])
        .arg("--store")
        .arg(format!("file://{}", ws.path("store").display()))
        .arg("--report")
        .arg(&report)
        .env("HOME", home.path())
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_no_secret(&format!("{stdout}{stderr}"));
    assert_no_secret(&std::fs::read_to_string(&report).unwrap());
    let (code, out, err) = history(&db, &[], home.path());
    assert_eq!(code, 0);
    assert_no_secret(&format!("{out}{err}"));
    let ledger = s.cluster.psql(
        "app",
        "SELECT row_to_json(k)::text FROM offkit.kit_applications k",
    );
    assert!(ledger.contains("quickstart"), "{ledger}");
    assert_no_secret(&ledger);
}

#[test]
fn several_hosts_find_the_primary() {
    // One read-only server (as a standby would be) and one that accepts writes.
    let ro = Cluster::start(&Setup {
        tls: None,
        hba: "host all all 127.0.0.1/32 scram-sha-256",
        conf: "default_transaction_read_only = on\n",
    });
    let rw = Cluster::start(&Setup {
        tls: None,
        hba: "host all all 127.0.0.1/32 scram-sha-256",
        conf: "",
    });
    let home = tempfile::tempdir().unwrap();
    let url = |attrs: &str| {
        format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres sslmode=disable target_session_attrs={attrs}",
            ro.port, rw.port
        )
    };
    let env = [("PGPASSWORD", SUPER_PASSWORD)];
    // read-write skips the read-only server and applies to the primary.
    let ws = common::Workspace::new();
    let (key, public) = ws.key("release");
    let kit = ws.build(&ws.example_source("quickstart"), &[&key]);
    let out = common::cmd()
        .arg("apply")
        .arg(&kit)
        .arg("--trust")
        .arg(&public)
        .args(["--db", &url("read-write"), "--progress", "off"])
        .arg("--store")
        .arg(format!("file://{}", ws.path("store").display()))
        .env("HOME", home.path())
        .env("PGPASSWORD", SUPER_PASSWORD)
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        rw.psql("postgres", "SELECT count(*) FROM offkit.kit_applications")
            .trim(),
        "1"
    );
    // Only read-only servers: every host named with why it would not do.
    let only_ro = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable target_session_attrs=read-write",
        ro.port
    );
    let (code, _, err) = history(&only_ro, &env, home.path());
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("is not a read-write server"), "{err}");
    // `any` takes the first.
    let (code, out, err) = history(&url("any"), &env, home.path());
    assert_eq!(code, 0, "{out}{err}");
}
