//! The `postgres://…?table=SCHEMA.TABLE` driver: objects in a PostgreSQL database.
//!
//! An object is one row of `SCHEMA.TABLE` (key, size, sha256, media type, time stored) plus its
//! bytes in 1 MiB rows of `SCHEMA.TABLE_chunks`, so neither a put nor a get holds more than a few
//! chunks in memory. A put is one transaction — the object row, every chunk, commit — so a crash
//! or error at any point leaves no object (or the previous one, when replacing); a create-only put
//! inserts the object row first with `ON CONFLICT DO NOTHING`, which also waits for a concurrent
//! writer of the same key and then refuses. Reads run in a repeatable-read snapshot. The tables
//! are created on the first put (a dry run creates nothing). Identifiers are quoted by [`ident`];
//! values are always bound parameters.

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::sync::Mutex;

use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, Transaction};
use sha2::{Digest, Sha256};

use super::stream::read_full;
use super::url::{PostgresUrl, StoreUrl};
use super::{Lookup, ObjectInfo, PutRequest, Store, StoreError, WriteMode};
use crate::kit::path::KitPath;

/// Bytes per chunk row.
pub const CHUNK_SIZE: usize = 1024 * 1024;
/// Chunk rows fetched per round trip when reading.
const FETCH_CHUNKS: i32 = 4;
/// Object rows fetched per round trip when listing.
const FETCH_LIST: i32 = 1000;

// SQL identifiers are quoted by the one helper the runner uses too.
use crate::sql::quote_ident as ident;

/// Objects in a PostgreSQL table.
pub struct PgStore {
    url: StoreUrl,
    shown: String,
    conninfo: Box<crate::pg::ConnInfo>,
    objects: String,
    chunks: String,
    lock_name: String,
    schema: String,
    pool: Mutex<Vec<Client>>,
    tables_ready: Mutex<bool>,
    foreign: Option<Foreign>,
}

/// A foreign archive table: the quoted key and data columns, the row condition, and the content
/// expression (decided from the data column's type on first use).
struct Foreign {
    key: String,
    data: String,
    filter: String,
    content: Mutex<Option<String>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.shown).finish()
    }
}

fn undefined_table(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE)
}

impl PgStore {
    /// Prepares the driver (connections are made on first use).
    pub fn open(url: StoreUrl, p: &PostgresUrl) -> Result<Self, StoreError> {
        Ok(PgStore {
            shown: url.redacted(),
            conninfo: p.conninfo.clone(),
            objects: format!("{}.{}", ident(&p.schema), ident(&p.table)),
            chunks: format!(
                "{}.{}",
                ident(&p.schema),
                ident(&format!("{}_chunks", p.table))
            ),
            lock_name: format!("offkit-store:{}.{}", p.schema, p.table),
            schema: ident(&p.schema),
            pool: Mutex::new(Vec::new()),
            tables_ready: Mutex::new(false),
            foreign: p.foreign.as_ref().map(|f| Foreign {
                key: ident(&f.key_column),
                data: ident(&f.data_column),
                filter: f
                    .where_sql
                    .as_ref()
                    .map_or_else(|| "true".to_owned(), |w| format!("({w})")),
                content: Mutex::new(None),
            }),
            url,
        })
    }

    fn pg(&self, op: &'static str, key: &str) -> impl Fn(postgres::Error) -> StoreError + '_ {
        let key = key.to_owned();
        move |e| StoreError::Postgres {
            op,
            store: self.shown.clone(),
            key: key.clone(),
            cause: Box::new(e),
        }
    }

    /// Runs `f` on a pooled connection (connecting when the pool is empty).
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => {
                crate::pg::connect(&self.conninfo)
                    .map_err(|source| StoreError::PgConnect {
                        store: self.shown.clone(),
                        source: Box::new(source),
                    })?
                    .client
            }
        };
        let result = f(&mut client);
        if !client.is_closed() {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(client);
        }
        result
    }

    fn ensure_tables(&self, client: &mut Client) -> Result<(), StoreError> {
        let mut ready = self.tables_ready.lock().unwrap_or_else(|p| p.into_inner());
        if *ready {
            return Ok(());
        }
        let pg = self.pg("create tables", "");
        let mut tx = client.transaction().map_err(&pg)?;
        // Concurrent `CREATE … IF NOT EXISTS` can still collide in the catalog: serialise them.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&self.lock_name],
        )
        .map_err(&pg)?;
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {objects} (
                 key text PRIMARY KEY,
                 size bigint NOT NULL,
                 sha256 text NOT NULL,
                 media_type text NOT NULL,
                 stored_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {chunks} (
                 key text NOT NULL REFERENCES {objects} (key) ON DELETE CASCADE,
                 seq integer NOT NULL,
                 data bytea NOT NULL,
                 PRIMARY KEY (key, seq));",
            schema = self.schema,
            objects = self.objects,
            chunks = self.chunks,
        );
        tx.batch_execute(&ddl).map_err(&pg)?;
        tx.commit().map_err(&pg)?;
        *ready = true;
        Ok(())
    }

    fn put_tx(
        &self,
        tx: &mut Transaction<'_>,
        req: &PutRequest<'_>,
        body: &mut dyn Read,
    ) -> Result<(), StoreError> {
        let key = req.key.as_str();
        let pg = self.pg("put", key);
        let io = |source| StoreError::Io {
            op: "put",
            store: self.shown.clone(),
            key: key.to_owned(),
            cause: source,
        };
        if req.mode == WriteMode::Replace {
            let sql = format!("DELETE FROM {} WHERE key = $1", self.objects);
            tx.execute(&sql, &[&key]).map_err(&pg)?;
        }
        let insert_object = format!(
            "INSERT INTO {} (key, size, sha256, media_type) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
            self.objects
        );
        let insert_chunk = format!(
            "INSERT INTO {} (key, seq, data) VALUES ($1, $2, $3)",
            self.chunks
        );
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut n = read_full(body, &mut buf).map_err(io)?;
        // Most seeds fit in one chunk: then the object row is written once, with its digest.
        let single = n < CHUNK_SIZE;
        let (size0, sha0) = if single {
            hasher.update(&buf[..n]);
            (n as i64, hex::encode(hasher.clone().finalize()))
        } else {
            (0, String::new())
        };
        let inserted = tx
            .execute(&insert_object, &[&key, &size0, &sha0, &req.media_type])
            .map_err(&pg)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists {
                store: self.shown.clone(),
                key: key.to_owned(),
            });
        }
        if single {
            if n > 0 {
                tx.execute(&insert_chunk, &[&key, &0i32, &&buf[..n]])
                    .map_err(&pg)?;
            }
            return Ok(());
        }
        let stmt = tx.prepare(&insert_chunk).map_err(&pg)?;
        let mut seq: i32 = 0;
        let mut total: i64 = 0;
        while n > 0 {
            hasher.update(&buf[..n]);
            tx.execute(&stmt, &[&key, &seq, &&buf[..n]]).map_err(&pg)?;
            total += n as i64;
            seq += 1;
            n = read_full(body, &mut buf).map_err(io)?;
        }
        let sha = hex::encode(hasher.finalize());
        let update = format!(
            "UPDATE {} SET size = $2, sha256 = $3 WHERE key = $1",
            self.objects
        );
        tx.execute(&update, &[&key, &total, &sha]).map_err(&pg)?;
        Ok(())
    }

    /// Starts a consistent read-only snapshot for reads that span several statements.
    fn snapshot<'c>(client: &'c mut Client) -> Result<Transaction<'c>, postgres::Error> {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
    }

    /// Fetches a listing's `(key, size)` rows page by page and visits them, until `visit` says
    /// stop.
    fn visit_rows(
        tx: &mut Transaction<'_>,
        portal: &postgres::Portal,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), postgres::Error> {
        loop {
            let rows = tx.query_portal(portal, FETCH_LIST)?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in rows {
                let info = ObjectInfo {
                    key: row.get(0),
                    size: row.get::<_, i64>(1).max(0) as u64,
                    etag: None,
                };
                if visit(info).is_break() {
                    return Ok(());
                }
            }
        }
    }

    fn read_only(&self, op: &'static str) -> StoreError {
        StoreError::Misconfigured {
            store: self.shown.clone(),
            reason: format!(
                "cannot {op}: a foreign archive table (key_column/data_column) is read-only for offkit"
            ),
        }
    }

    /// The content of a foreign row as bytea: the column itself, or its text in UTF-8.
    fn content_expr(&self, f: &Foreign, tx: &mut Transaction<'_>) -> Result<String, StoreError> {
        let mut cached = f.content.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let pg = self.pg("read the data column's type", "");
        let row = tx
            .query_opt(
                "SELECT format_type(a.atttypid, NULL) FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
                &[
                    &self.objects,
                    &f.data.trim_matches('"').replace("\"\"", "\""),
                ],
            )
            .map_err(&pg)?;
        let Some(row) = row else {
            return Err(StoreError::Misconfigured {
                store: self.shown.clone(),
                reason: "the foreign table or its data column does not exist".into(),
            });
        };
        let ty: String = row.get(0);
        let expr = match ty.as_str() {
            "bytea" => f.data.clone(),
            "text" | "character varying" | "character" | "json" | "jsonb" | "xml" => {
                format!("convert_to(CAST({} AS text), 'UTF8')", f.data)
            }
            other => {
                return Err(StoreError::Misconfigured {
                    store: self.shown.clone(),
                    reason: format!(
                        "the data column has type {other}; offkit reads bytea, text, json, jsonb or xml"
                    ),
                });
            }
        };
        *cached = Some(expr.clone());
        Ok(expr)
    }

    /// The size of the foreign row with this key (`None`: no row); two rows are an error.
    fn foreign_size(
        &self,
        f: &Foreign,
        tx: &mut Transaction<'_>,
        k: &str,
        expr: &str,
    ) -> Result<Option<i64>, StoreError> {
        let sql = format!(
            "SELECT octet_length({expr}) FROM {} WHERE CAST({} AS text) = $1 AND {} IS NOT NULL AND {} LIMIT 2",
            self.objects, f.key, f.data, f.filter
        );
        let rows = tx.query(&sql, &[&k]).map_err(self.pg("stat", k))?;
        match rows.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.get::<_, i32>(0).into())),
            _ => Err(StoreError::Corrupt {
                store: self.shown.clone(),
                key: k.to_owned(),
                reason: "more than one row of the foreign table has this key".into(),
            }),
        }
    }

    fn foreign_get(
        &self,
        f: &Foreign,
        key: &KitPath,
        sink: &mut dyn Write,
    ) -> Result<Option<u64>, StoreError> {
        let k = key.as_str();
        let pg = self.pg("get", k);
        self.with_client(|c| {
            let mut tx = Self::snapshot(c).map_err(&pg)?;
            let expr = self.content_expr(f, &mut tx)?;
            let Some(size) = self.foreign_size(f, &mut tx, k, &expr)? else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT substring({expr} FROM $2 FOR $3) FROM {} WHERE CAST({} AS text) = $1 AND {}",
                self.objects, f.key, f.filter
            );
            let chunk = CHUNK_SIZE as i32;
            let mut n: i64 = 0;
            while n < size {
                let from = i32::try_from(n + 1).unwrap_or(i32::MAX);
                let row = tx.query_one(&sql, &[&k, &from, &chunk]).map_err(&pg)?;
                let data: &[u8] = row.get(0);
                if data.is_empty() {
                    break;
                }
                sink.write_all(data).map_err(|source| StoreError::Io {
                    op: "get",
                    store: self.shown.clone(),
                    key: k.to_owned(),
                    cause: source,
                })?;
                n += data.len() as i64;
            }
            tx.commit().map_err(&pg)?;
            if n != size {
                return Err(StoreError::Corrupt {
                    store: self.shown.clone(),
                    key: k.to_owned(),
                    reason: format!("the row held {size} bytes but {n} were read"),
                });
            }
            Ok(Some(n.max(0) as u64))
        })
    }

    fn foreign_list(
        &self,
        f: &Foreign,
        prefix: &str,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let pg = self.pg("list", "");
        self.with_client(|c| {
            let mut tx = Self::snapshot(c).map_err(&pg)?;
            let expr = self.content_expr(f, &mut tx)?;
            let sql = format!(
                "SELECT CAST({key} AS text), CAST(octet_length({expr}) AS bigint) FROM {t} \
                 WHERE {key} IS NOT NULL AND {data} IS NOT NULL AND {filter} \
                 AND left(CAST({key} AS text), length($1)) = $1 ORDER BY 1",
                key = f.key,
                data = f.data,
                filter = f.filter,
                t = self.objects
            );
            let portal = tx.bind(&sql, &[&prefix]).map_err(&pg)?;
            Self::visit_rows(&mut tx, &portal, visit).map_err(&pg)?;
            tx.commit().map_err(&pg)
        })
    }
}

impl Store for PgStore {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn stat(&self, key: &KitPath) -> Result<Option<u64>, StoreError> {
        if let Some(f) = &self.foreign {
            let k = key.as_str();
            return self.with_client(|c| {
                let mut tx = Self::snapshot(c).map_err(self.pg("stat", k))?;
                let expr = self.content_expr(f, &mut tx)?;
                let size = self.foreign_size(f, &mut tx, k, &expr)?;
                tx.commit().map_err(self.pg("stat", k))?;
                Ok(size.map(|s| s.max(0) as u64))
            });
        }
        let sql = format!("SELECT size FROM {} WHERE key = $1", self.objects);
        self.with_client(|c| match c.query_opt(&sql, &[&key.as_str()]) {
            Ok(row) => Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64)),
            Err(e) if undefined_table(&e) => Ok(None),
            Err(e) => Err(self.pg("stat", key.as_str())(e)),
        })
    }

    fn get(&self, key: &KitPath, sink: &mut dyn Write) -> Result<Option<u64>, StoreError> {
        if let Some(f) = &self.foreign {
            return self.foreign_get(f, key, sink);
        }
        let k = key.as_str();
        let pg = self.pg("get", k);
        let size_sql = format!("SELECT size FROM {} WHERE key = $1", self.objects);
        let data_sql = format!(
            "SELECT data FROM {} WHERE key = $1 ORDER BY seq",
            self.chunks
        );
        self.with_client(|c| {
            let mut tx = Self::snapshot(c).map_err(&pg)?;
            let size: i64 = match tx.query_opt(&size_sql, &[&k]) {
                Ok(Some(row)) => row.get(0),
                Ok(None) => return Ok(None),
                Err(e) if undefined_table(&e) => return Ok(None),
                Err(e) => return Err(pg(e)),
            };
            let portal = tx.bind(&data_sql, &[&k]).map_err(&pg)?;
            let mut n: u64 = 0;
            loop {
                let rows = tx.query_portal(&portal, FETCH_CHUNKS).map_err(&pg)?;
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    let data: &[u8] = row.get(0);
                    sink.write_all(data).map_err(|source| StoreError::Io {
                        op: "get",
                        store: self.shown.clone(),
                        key: k.to_owned(),
                        cause: source,
                    })?;
                    n += data.len() as u64;
                }
            }
            tx.commit().map_err(&pg)?;
            if n != size.max(0) as u64 {
                return Err(StoreError::Corrupt {
                    store: self.shown.clone(),
                    key: k.to_owned(),
                    reason: format!("object row says {size} bytes but its chunks hold {n}"),
                });
            }
            Ok(Some(n))
        })
    }

    fn put(&self, req: &PutRequest<'_>, body: &mut dyn Read) -> Result<(), StoreError> {
        if self.foreign.is_some() {
            return Err(self.read_only("put"));
        }
        let k = req.key.as_str();
        let pg = self.pg("put", k);
        self.with_client(|c| {
            self.ensure_tables(c)?;
            let mut tx = c.transaction().map_err(&pg)?;
            self.put_tx(&mut tx, req, body)?;
            tx.commit().map_err(&pg)
        })
    }

    fn delete(&self, key: &KitPath) -> Result<bool, StoreError> {
        if self.foreign.is_some() {
            return Err(self.read_only("delete"));
        }
        let sql = format!("DELETE FROM {} WHERE key = $1", self.objects);
        self.with_client(|c| match c.execute(&sql, &[&key.as_str()]) {
            Ok(n) => Ok(n > 0),
            Err(e) if undefined_table(&e) => Ok(false),
            Err(e) => Err(self.pg("delete", key.as_str())(e)),
        })
    }

    fn list(
        &self,
        under: Option<&KitPath>,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let prefix = under.map_or_else(String::new, |u| format!("{u}/"));
        if let Some(f) = &self.foreign {
            return self.foreign_list(f, &prefix, visit);
        }
        let sql = format!(
            "SELECT key, size FROM {} WHERE left(key, length($1)) = $1 ORDER BY key",
            self.objects
        );
        let pg = self.pg("list", "");
        self.with_client(|c| {
            let mut tx = Self::snapshot(c).map_err(&pg)?;
            let portal = match tx.bind(&sql, &[&prefix]) {
                Ok(p) => p,
                Err(e) if undefined_table(&e) => return Ok(()),
                Err(e) => return Err(pg(e)),
            };
            Self::visit_rows(&mut tx, &portal, visit).map_err(&pg)?;
            tx.commit().map_err(&pg)
        })
    }

    fn default_parallelism(&self) -> usize {
        4
    }

    fn lookup(&self) -> Lookup {
        Lookup::Listing
    }
}
