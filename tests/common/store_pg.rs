//! A PostgreSQL database of its own for each test: created on the real server named by
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, trust auth) and dropped
//! when the guard drops.

#![allow(dead_code)]

/// A test database, dropped on drop.
pub struct TestDb {
    admin: String,
    name: String,
    /// A URL connecting to the test database.
    pub url: String,
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL server: {e}"))
}

impl TestDb {
    /// Creates a fresh database whose name starts with `offkit_store_{tag}`.
    pub fn create(tag: &str) -> TestDb {
        let admin = admin_url();
        let mut rnd = [0u8; 4];
        getrandom::fill(&mut rnd).expect("random bytes");
        let name = format!(
            "offkit_store_{tag}_{}_{}",
            std::process::id(),
            hex::encode(rnd)
        );
        let mut c = connect(&admin);
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("CREATE DATABASE");
        let mut u = url::Url::parse(&admin).expect("DATABASE_URL is a URL");
        u.set_path(&format!("/{name}"));
        TestDb {
            admin,
            name,
            url: u.to_string(),
        }
    }

    /// A store URL for an object table in this database.
    pub fn store_url(&self, table: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}table={table}", self.url)
    }

    /// A client on the test database.
    pub fn client(&self) -> postgres::Client {
        connect(&self.url)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut c = connect(&self.admin);
        let _ = c.batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
    }
}
