//! Throwaway PostgreSQL databases: each test creates its own uniquely named database and drops it
//! on drop (also when the test fails), so tests run in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The server's admin URL: `DATABASE_URL`, else the development default.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database owned by one test.
pub struct PgDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

fn admin() -> postgres::Client {
    postgres::Client::connect(&admin_url(), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {} ({e}); set DATABASE_URL",
            admin_url()
        )
    })
}

impl PgDb {
    /// Creates a fresh database.
    pub fn create() -> PgDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "offkit_t_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        admin()
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create database");
        let base = admin_url();
        let (prefix, _) = base.rsplit_once('/').expect("admin URL has a database");
        let url = format!("{prefix}/{name}");
        PgDb { name, url }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
    }
}
