//! The kit the fault-injection and concurrency tests apply, written by visible code: portable SQL
//! whose every execution leaves a trace (so "applied once" is checked on the data, not only on the
//! history), a batched data migration that counts its passes over each row, and seed objects of
//! incompressible bytes (so the kit and the store really take the space they claim).
//!
//! - `app/001_items`: the tables `items` and `runs`; each migration adds its name to `runs`;
//! - `app/002_gate` (PostgreSQL kits only): waits for the advisory lock [`GATE_KEY`] inside its
//!   transaction, so a test that holds that lock holds the migration mid-way;
//! - `app/S001_items`: [`ITEMS`] rows;
//! - `app/DM001_count`: `n = n + 1, done = 1` over the rows, `:batch_size` at a time. A row
//!   counted twice (a batch run twice) shows as `n = 2`, a lost batch as `done = 0`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::{TestDb, Workspace, write};

/// The advisory-lock key `002_gate` waits for.
pub const GATE_KEY: i64 = 4242;
/// Rows of `items`.
pub const ITEMS: i64 = 50;

/// What the kit targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// PostgreSQL only (with `002_gate`).
    Postgres,
    /// Any database (no `002_gate`).
    Any,
}

/// A seed object: key under `seeds/` and its bytes.
pub struct Seed {
    /// The key.
    pub key: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Seed {
    /// `len` incompressible bytes, different for each key.
    pub fn noise(key: &str, len: usize) -> Seed {
        Seed {
            key: key.to_owned(),
            bytes: crate::common::noise(key, len),
        }
    }

    /// Lowercase hex SHA-256 of the bytes.
    pub fn sha256(&self) -> String {
        offkit::util::sha256_hex(&self.bytes)
    }
}

/// The migrations of the kit, by file name, for `target`.
pub fn migrations(target: Target) -> Vec<(&'static str, String)> {
    let mut m = vec![(
        "001_items",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0, \
         done INTEGER NOT NULL DEFAULT 0);\n\
         CREATE TABLE runs (migration TEXT NOT NULL);\n\
         INSERT INTO runs (migration) VALUES ('001_items');\n"
            .to_owned(),
    )];
    if target == Target::Postgres {
        m.push((
            "002_gate",
            format!(
                "CREATE TABLE gated (id INTEGER PRIMARY KEY);\n\
                 INSERT INTO runs (migration) VALUES ('002_gate');\n\
                 SELECT pg_advisory_xact_lock({GATE_KEY});\n"
            ),
        ));
    }
    m.push((
        "S001_items",
        format!(
            "INSERT INTO items (id) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s \
             WHERE i < {ITEMS}) SELECT i FROM s;\n\
             INSERT INTO runs (migration) VALUES ('S001_items');\n"
        ),
    ));
    m.push((
        "DM001_count",
        "UPDATE items SET n = n + 1, done = 1 WHERE id IN \
         (SELECT id FROM items WHERE done = 0 ORDER BY id LIMIT :batch_size)\n"
            .to_owned(),
    ));
    m
}

/// Writes the kit source into the workspace and returns its folder.
pub fn source(ws: &Workspace, target: Target, seeds: &[Seed]) -> PathBuf {
    let dir = ws.path("fault-kit");
    let target_name = match target {
        Target::Postgres => "postgres",
        Target::Any => "any",
    };
    write(
        &dir.join("kit.toml"),
        format!(
            "name = \"faults\"\nversion = \"1.0.0\"\nchannel = \"faults\"\nsequence = 1\n\
             target = \"{target_name}\"\n"
        ),
    );
    for (name, sql) in migrations(target) {
        write(&dir.join(format!("migrations/app/{name}.sql")), sql);
    }
    for s in seeds {
        write(&dir.join("seeds").join(&s.key), &s.bytes);
    }
    dir
}

/// Builds the kit signed by the workspace's `release` key; returns (kit, public key).
pub fn build(ws: &Workspace, target: Target, seeds: &[Seed]) -> (PathBuf, PathBuf) {
    let (key, public) = ws.key("release");
    let src = source(ws, target, seeds);
    (ws.build(&src, &[&key]), public)
}

/// The migration state that an applied kit leaves, checked on the data: every migration in the
/// history once, each one's trace in `runs` once, every item counted exactly once.
pub fn assert_applied_once(db: &TestDb, target: Target) {
    let mut names: Vec<String> = migrations(target)
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    names.sort();
    assert_eq!(db.applied("app"), names, "the migration history");
    let mut traced: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with("DM"))
        .cloned()
        .collect();
    traced.sort();
    let runs: Vec<String> = db
        .rows(&format!(
            "SELECT migration FROM {} ORDER BY migration",
            db.table("app", "runs")
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(runs, traced, "each migration ran once");
    assert_eq!(
        db.rows(&format!(
            "SELECT count(*), sum(n), min(n), max(n), min(done) FROM {}",
            db.table("app", "items")
        ))[0],
        [
            ITEMS.to_string(),
            ITEMS.to_string(),
            "1".into(),
            "1".into(),
            "1".into()
        ],
        "every item counted once by the data migration"
    );
}

/// The ledger: (outcome, error) per attempt, oldest first.
pub fn ledger(db: &TestDb) -> Vec<(String, String)> {
    let table = if db.is_pg() {
        "offkit.kit_applications"
    } else {
        "offkit_kit_applications"
    };
    db.rows(&format!(
        "SELECT outcome, coalesce(error, '') FROM {table} ORDER BY id"
    ))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

/// The ledger's outcomes only.
pub fn outcomes(db: &TestDb) -> Vec<String> {
    ledger(db).into_iter().map(|(o, _)| o).collect()
}

/// The recorded seed outcomes of ledger entry `id`: (key, outcome), by key.
pub fn seed_outcomes(db: &TestDb, id: i64) -> Vec<(String, String)> {
    let table = if db.is_pg() {
        "offkit.kit_application_objects"
    } else {
        "offkit_kit_application_objects"
    };
    db.rows(&format!(
        "SELECT key, outcome FROM {table} WHERE application_id = {id} ORDER BY key"
    ))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

/// Every regular file under `dir` with its SHA-256 (relative paths, sorted); temporary files
/// included, so that strays show.
pub fn files(dir: &Path) -> Vec<(String, String)> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut v: Vec<(String, String)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walking"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                offkit::util::sha256_file(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// What a store holding exactly `seeds` lists: (key, SHA-256), sorted.
pub fn expected(seeds: &[Seed]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = seeds.iter().map(|s| (s.key.clone(), s.sha256())).collect();
    v.sort();
    v
}
