//! Store migration (`offkit store migrate`): moving and re-laying out objects from one store to
//! another, confirmed by digest, checkpointed per batch in the database, resumable, on record and
//! reversible.
//!
//! A run lists the source once (optionally under `--source-filter`), routes each key through the
//! [`layout`] (a key no rule takes is `unmatched`; with `--tenant`, a key of another tenant is
//! `excluded`), and works in batches of `--batch-size` keys, handed on by the listing as it goes
//! when the source lists in key order (S3), else once the whole listing is read and sorted:
//!
//! 1. **examine** (parallel): read each source object once — its size and SHA-256, and for
//!    layouts that need it the document's bom-ref and serial number ([`document`]) — and decide its
//!    destination key. Objects up to [`KEEP_MAX`] are kept in memory for the copy (at most
//!    [`KEEP_BUDGET`] bytes per batch); larger ones are read again, checked against the digest;
//! 2. **intent** (one transaction): the batch's rows are recorded as `pending`, with the
//!    destination key, the digest and whether the destination already had the key;
//! 3. **copy** (parallel): a create-only put of each object whose key was free, streamed through
//!    the digest-checking reader and confirmed by reading it back (or by the store's checksum);
//!    an object already there with the same digest is `skipped`, a different one is `failed`
//!    (never overwritten);
//! 4. **checkpoint** (one transaction): the outcomes, and the index rows of every object copied
//!    or found in place ([`record`]);
//! 5. with `--delete-source`, the source objects of the confirmed, indexed rows are deleted and
//!    the deletions recorded.
//!
//! A run killed at any moment is continued by `--resume RUN_ID`: confirmed rows are not redone;
//! a `pending` row whose put had happened is recognised by the digest at its destination (and,
//! because its intent said the key was free, counted as this run's copy); failed rows are tried
//! again. So nothing is copied twice, lost or counted twice. `store rollback RUN_ID`
//! ([`rollback`]) removes exactly the copies a run made, digest-checked.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::DigestReader;
use crate::kit::path::KitPath;
use crate::migrate::{DbError, Driver};
use crate::report::progress::{Progress, ProgressMode};
use crate::store::stream::HashingWriter;
use crate::store::{
    LocalBytes, ObjectDigest, ObjectInfo, PutRequest, Store, StoreError, WriteMode,
};

pub mod compare;
pub mod document;
pub mod layout;
pub mod record;
pub mod rollback;

use layout::{Layout, Values};
use record::{IndexRow, ObjectRow, ObjectState, RunState};

/// Objects up to this size are kept in memory between reading and copying them.
pub const KEEP_MAX: u64 = 1024 * 1024;
/// At most this many bytes are kept in memory per batch.
pub const KEEP_BUDGET: u64 = 64 * 1024 * 1024;
/// Documents larger than this are not parsed for their bom-ref (a synthetic one is used).
pub const MAX_DOCUMENT: u64 = 64 * 1024 * 1024;
/// The default batch size (keys per checkpoint).
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// The media type given to copies (stores that keep one).
const MEDIA_TYPE: &str = "application/octet-stream";

/// A store migration failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A store failed outside one object (listing, opening).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed (the checkpoint, the run record, the index).
    #[error("recording the store migration in the database: {0}")]
    Db(#[from] DbError),
    /// The index could not be created by the migration runner.
    #[error("creating the artifact index: {0}")]
    Index(String),
    /// `--resume` or `rollback` named a run that is not recorded.
    #[error(
        "no store migration run {0} is recorded in this database (offkit store migrations lists them)"
    )]
    UnknownRun(i64),
    /// `--resume` was given other stores, layout or options than the run had.
    #[error(
        "run {run} cannot be resumed with these arguments: its {what} was {recorded}, now {given}"
    )]
    ResumeMismatch {
        /// The run.
        run: i64,
        /// What differs.
        what: &'static str,
        /// As recorded.
        recorded: String,
        /// As given.
        given: String,
    },
    /// The run was rolled back; it cannot be resumed.
    #[error("run {0} was rolled back; start a new run instead of resuming it")]
    RolledBack(i64),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// Objects failed (the report lists them); with `--stop-on-error` the run stopped at the
    /// first.
    #[error("{failed} object(s) failed{}, first {first}: {error}", if *.stopped { " (stopped: --stop-on-error)" } else { "" })]
    Failed {
        /// How many.
        failed: u64,
        /// The first failed source key.
        first: String,
        /// Its error.
        error: String,
        /// Whether the run stopped at it.
        stopped: bool,
        /// The report.
        report: Box<MigrationReport>,
    },
}

impl ExitCoded for TransferError {
    fn exit(&self) -> Exit {
        match self {
            TransferError::Store(e) => e.exit(),
            TransferError::Db(_) | TransferError::Index(_) => Exit::Database,
            TransferError::UnknownRun(_)
            | TransferError::ResumeMismatch { .. }
            | TransferError::RolledBack(_)
            | TransferError::Usage(_) => Exit::Usage,
            TransferError::Failed { stopped: true, .. } => Exit::Store,
            TransferError::Failed { .. } => Exit::PartialFailure,
        }
    }
}

impl TransferError {
    /// The report, when the run got far enough to have one.
    pub fn report(&self) -> Option<&MigrationReport> {
        match self {
            TransferError::Failed { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// How to migrate.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// How keys map.
    pub layout: Layout,
    /// Only plan: read, decide, change nothing anywhere.
    pub dry_run: bool,
    /// Objects handled at once.
    pub parallelism: usize,
    /// Keys per checkpoint.
    pub batch_size: usize,
    /// Only this tenant's objects (the layout's `{tenantId}`).
    pub tenant: Option<String>,
    /// Only source keys starting with this text.
    pub source_filter: Option<String>,
    /// Stop after the batch in which the first object failed.
    pub stop_on_error: bool,
    /// Delete each source object once its copy is confirmed and indexed.
    pub delete_source: bool,
    /// Continue this run.
    pub resume: Option<i64>,
    /// Progress on stderr.
    pub progress: ProgressMode,
    /// `user@host`.
    pub started_by: String,
}

/// What decides which objects belong to a run (recorded, compared on `--resume`).
#[derive(Debug, Clone, serde::Serialize)]
struct RunScope<'a> {
    tenant: Option<&'a str>,
    source_filter: Option<&'a str>,
    delete_source: bool,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Source objects the layout took (and the tenant filter kept); of a streamed listing
    /// (S3 source) that `--stop-on-error` stopped, those listed until then.
    pub total: u64,
    /// Copied and confirmed (in this invocation).
    pub copied: u64,
    /// Already at the destination with the same digest.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
    /// Done by an earlier invocation of the run (`--resume`).
    pub already_done: u64,
    /// Source keys no layout rule takes.
    pub unmatched: u64,
    /// Source keys of other tenants (`--tenant`).
    pub excluded: u64,
    /// Objects given a synthetic bom-ref (`sha256:<digest>`).
    pub synthetic_bom_refs: u64,
    /// Source objects deleted (`--delete-source`).
    pub deleted_sources: u64,
    /// Bytes copied.
    pub bytes_copied: u64,
}

/// One object of a dry run's plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanItem {
    /// The source key.
    pub source_key: String,
    /// The destination key.
    pub dest_key: Option<String>,
    /// The layout rule.
    pub rule: String,
    /// Size.
    pub size: u64,
    /// SHA-256.
    pub sha256: Option<String>,
    /// `copy`, `skip` (same bytes there), `conflict` (different bytes there) or `fail`.
    pub action: &'static str,
    /// The bom-ref used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Why it would fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One failed object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The source key.
    pub source_key: String,
    /// The destination key, when decided.
    pub dest_key: Option<String>,
    /// What happened.
    pub error: String,
}

/// The report of a run (the JSON `--output` holds).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationReport {
    /// The run id (none for a dry run).
    pub run_id: Option<i64>,
    /// Whether this invocation resumed the run.
    pub resumed: bool,
    /// A dry run changes nothing.
    pub dry_run: bool,
    /// Source, redacted.
    pub from: String,
    /// Destination, redacted.
    pub to: String,
    /// Layout.
    pub layout: String,
    /// Its SHA-256.
    pub layout_sha256: String,
    /// The tenant filter.
    pub tenant: Option<String>,
    /// The source filter.
    pub source_filter: Option<String>,
    /// `--delete-source`.
    pub delete_source: bool,
    /// Workers.
    pub parallelism: usize,
    /// Keys per checkpoint.
    pub batch_size: usize,
    /// How the run stands.
    pub state: RunState,
    /// Counts.
    pub totals: Totals,
    /// Wall time.
    pub duration_ms: u64,
    /// Failed objects.
    pub failures: Vec<Failure>,
    /// A dry run's plan, object by object.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanItem>,
}

impl MigrationReport {
    /// The report as pretty JSON (what `--output` writes and the ledger's SHA-256 is of).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// A short text summary.
    pub fn render_text(&self) -> String {
        let t = &self.totals;
        let mut s = String::new();
        let what = if self.dry_run {
            "dry run (nothing changed)".to_owned()
        } else {
            format!(
                "run {}{}",
                self.run_id.unwrap_or_default(),
                if self.resumed { " (resumed)" } else { "" }
            )
        };
        s.push_str(&format!(
            "store migration {what}: {} -> {} (layout {})\n",
            self.from, self.to, self.layout
        ));
        s.push_str(&format!(
            "  {}: {} objects: {} copied, {} skipped (same bytes there), {} failed, {} done earlier; {} unmatched, {} other tenants; {} synthetic bom-refs; {} sources deleted\n",
            self.state.as_str(),
            t.total,
            t.copied,
            t.skipped,
            t.failed,
            t.already_done,
            t.unmatched,
            t.excluded,
            t.synthetic_bom_refs,
            t.deleted_sources
        ));
        if self.dry_run {
            for p in &self.plan {
                s.push_str(&format!(
                    "  {:<8} {} -> {}\n",
                    p.action,
                    crate::kit::path::printable(&p.source_key),
                    p.dest_key
                        .as_deref()
                        .map_or_else(|| "?".to_owned(), crate::kit::path::printable)
                ));
            }
        }
        for f in self.failures.iter().take(20) {
            s.push_str(&format!(
                "  failed {}: {}\n",
                crate::kit::path::printable(&f.source_key),
                crate::util::escape_controls(&f.error)
            ));
        }
        if self.failures.len() > 20 {
            s.push_str(&format!(
                "  … and {} more (see the JSON report)\n",
                self.failures.len() - 20
            ));
        }
        s
    }
}

/// An object after the examine step.
struct Examined {
    row: ObjectRow,
    rule: String,
    tenant: Option<String>,
    bom_ref: Option<String>,
    bom_ref_source: Option<&'static str>,
    serial_number: Option<String>,
    kept: Option<Vec<u8>>,
    /// The MD5 of the bytes, when the destination vouches for MD5s in its listing.
    md5: Option<String>,
    /// Another object of this run goes to the same destination key first: this one is judged
    /// against it after the batch's copies (skipped when equal), never counted as a copy.
    shared: bool,
}

/// One source key with its route.
struct Routed<'l> {
    info: ObjectInfo,
    matched: layout::Matched<'l>,
}

/// What the source listing found besides the routed keys.
#[derive(Debug, Default, Clone, Copy)]
struct Listed {
    total: u64,
    unmatched: u64,
    excluded: u64,
}

/// Lists the source, routes every key and hands the routed keys on in sorted batches of
/// `opts.batch_size` (run on a thread of its own). A store that lists in key order is streamed:
/// a batch goes as soon as it is full, so the first copies start while the listing goes on (and
/// memory holds a few batches and the keys seen, not the whole listing). Otherwise (and with
/// `--delete-source`, whose deletions must not run under a listing still under way) the whole
/// listing is read, sorted and only then cut. A key listed twice (two rows of a foreign table, or a store that
/// repeats itself) is one object; reading it names any problem. Stops early, without error,
/// once `batches` hangs up.
fn route_source<'l>(
    src: &dyn Store,
    opts: &'l MigrateOptions,
    progress: &Progress,
    batches: &std::sync::mpsc::SyncSender<Vec<Routed<'l>>>,
) -> Result<Listed, StoreError> {
    let filter = opts.source_filter.as_deref().unwrap_or("");
    let under = filter
        .rsplit_once('/')
        .map(|(folder, _)| folder)
        .filter(|f| !f.is_empty())
        .and_then(|f| KitPath::new(f).ok());
    let size = opts.batch_size.max(1);
    let streamed = src.lists_in_order() && !opts.delete_source;
    let mut listed = Listed::default();
    let route = |info: ObjectInfo, listed: &mut Listed| -> Option<Routed<'l>> {
        let Some(matched) = opts.layout.route(&info.key) else {
            listed.unmatched += 1;
            return None;
        };
        if let Some(t) = &opts.tenant {
            if matched.captures.get(layout::TENANT) != Some(t) {
                listed.excluded += 1;
                return None;
            }
        }
        Some(Routed { info, matched })
    };
    // Hands a batch on, sorted; false once the batches have hung up.
    let mut sent = 0u64;
    let mut send = |mut batch: Vec<Routed<'l>>| -> bool {
        batch.sort_by(|a, b| a.info.key.cmp(&b.info.key));
        let handed_on = batches.send(batch).is_ok();
        sent += 1;
        crate::failpoint::hit(&format!("transfer-listed-batch:{sent}"));
        handed_on
    };
    if !streamed {
        let mut whole = Vec::new();
        src.list(under.as_ref(), &mut |info| {
            if info.key.starts_with(filter) {
                whole.push(info);
            }
            ControlFlow::Continue(())
        })?;
        whole.sort_by(|a, b| a.key.cmp(&b.key));
        whole.dedup_by(|a, b| a.key == b.key);
        let routed: Vec<Routed<'l>> = whole
            .into_iter()
            .filter_map(|info| route(info, &mut listed))
            .collect();
        listed.total = routed.len() as u64;
        progress.add_total(listed.total);
        let mut rest = routed.into_iter();
        loop {
            let batch: Vec<Routed<'l>> = rest.by_ref().take(size).collect();
            if batch.is_empty() || !send(batch) {
                return Ok(listed);
            }
        }
    }
    let mut batch = Vec::with_capacity(size);
    let mut seen = std::collections::HashSet::new();
    let mut hung_up = false;
    src.list(under.as_ref(), &mut |info| {
        if !info.key.starts_with(filter) || !seen.insert(info.key.clone()) {
            return ControlFlow::Continue(());
        }
        if let Some(r) = route(info, &mut listed) {
            batch.push(r);
        }
        if batch.len() >= size {
            listed.total += size as u64;
            progress.add_total(size as u64);
            if !send(std::mem::replace(&mut batch, Vec::with_capacity(size))) {
                hung_up = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if !hung_up && !batch.is_empty() {
        listed.total += batch.len() as u64;
        progress.add_total(batch.len() as u64);
        send(batch);
    }
    Ok(listed)
}

/// The destination's listing, filled by a thread of its own while the batches start. For a store
/// that lists in key order and the identity layout, a batch waits only until the listing has
/// passed its last key; otherwise until the listing is complete. (Were a store to list out of
/// order after all, a key judged free too early still meets a create-only put, which never
/// overwrites.)
#[derive(Default)]
struct DestListing {
    state: std::sync::Mutex<ListState>,
    changed: std::sync::Condvar,
    stop: std::sync::atomic::AtomicBool,
    full: std::sync::OnceLock<HashMap<String, ObjectInfo>>,
}

#[derive(Default)]
struct ListState {
    keys: HashMap<String, ObjectInfo>,
    upto: Option<String>,
    unordered: bool,
    done: bool,
    error: Option<StoreError>,
}

/// The destination objects a batch may look up.
enum Dests<'a> {
    /// The whole listing.
    Full(&'a HashMap<String, ObjectInfo>),
    /// The entries of the batch's keys.
    Part(HashMap<String, ObjectInfo>),
}

impl std::ops::Deref for Dests<'_> {
    type Target = HashMap<String, ObjectInfo>;
    fn deref(&self) -> &Self::Target {
        match self {
            Dests::Full(m) => m,
            Dests::Part(m) => m,
        }
    }
}

impl DestListing {
    fn lock(&self) -> std::sync::MutexGuard<'_, ListState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists `dst` into the shared state (run on its own thread).
    fn fill(&self, dst: &dyn Store) {
        // Should the listing panic, the batches waiting for it are told instead of waiting forever.
        struct Finish<'a>(&'a DestListing);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                let mut st = self.0.lock();
                if !st.done {
                    st.done = true;
                    st.error = Some(StoreError::Runtime {
                        driver: "store migration",
                        cause: std::io::Error::other("the destination listing stopped"),
                    });
                }
                drop(st);
                self.0.changed.notify_all();
            }
        }
        let _finish = Finish(self);
        let mut pending = Vec::with_capacity(1000);
        let flush = |pending: &mut Vec<ObjectInfo>| {
            let mut st = self.lock();
            for info in pending.drain(..) {
                if st.upto.as_ref().is_some_and(|u| info.key < *u) {
                    st.unordered = true;
                }
                st.upto = Some(info.key.clone());
                st.keys.insert(info.key.clone(), info);
            }
            drop(st);
            self.changed.notify_all();
        };
        let result = dst.list(None, &mut |info| {
            pending.push(info);
            if pending.len() >= 1000 {
                flush(&mut pending);
            }
            if self.stop.load(Ordering::Relaxed) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        flush(&mut pending);
        let mut st = self.lock();
        st.done = true;
        st.error = result.err();
        drop(st);
        self.changed.notify_all();
    }

    /// What a batch of (sorted) source `keys` may look up; `ordered` when its
    /// destination keys are its source keys and the store lists in key order.
    fn for_batch(&self, keys: &[&str], ordered: bool) -> Result<Dests<'_>, StoreError> {
        let mut st = self.lock();
        loop {
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            let passed = match (keys.last(), &st.upto) {
                (Some(last), Some(upto)) => *last <= upto.as_str(),
                (None, _) => true,
                _ => false,
            };
            if st.done || (ordered && !st.unordered && passed) {
                break;
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if ordered && !st.unordered && !st.done {
            let part = keys
                .iter()
                .filter_map(|k| st.keys.get(*k).map(|i| ((*k).to_owned(), i.clone())))
                .collect();
            return Ok(Dests::Part(part));
        }
        let keys = std::mem::take(&mut st.keys);
        drop(st);
        Ok(Dests::Full(self.full.get_or_init(|| keys)))
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool, StoreError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("offkit-move-{i}"))
        .build()
        .map_err(|e| StoreError::Runtime {
            driver: "store migration",
            cause: std::io::Error::other(e),
        })
}

/// What the examine step needs besides the object.
struct Examiner<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    dests: &'a HashMap<String, ObjectInfo>,
    prior: &'a HashMap<String, ObjectRow>,
    /// Digests the index holds for destination keys (when both stores vouch for MD5s).
    indexed: &'a HashMap<String, record::Indexed>,
    budget: AtomicU64,
}

/// A sink that hashes and, up to a limit, keeps what it is given.
struct Tee {
    hash: HashingWriter,
    md5: Option<md5::Md5>,
    keep: Option<Vec<u8>>,
    limit: u64,
}

impl Tee {
    fn new(md5: bool, keep: Option<Vec<u8>>) -> Tee {
        use md5::Digest;
        Tee {
            hash: HashingWriter::new(),
            md5: md5.then(md5::Md5::new),
            keep,
            limit: KEEP_MAX,
        }
    }

    fn md5_hex(&mut self) -> Option<String> {
        use md5::Digest;
        self.md5.take().map(|m| hex::encode(m.finalize()))
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hash.write_all(buf)?;
        if let Some(m) = &mut self.md5 {
            md5::Digest::update(m, buf);
        }
        if let Some(k) = &mut self.keep {
            if (k.len() + buf.len()) as u64 <= self.limit {
                k.extend_from_slice(buf);
            } else {
                self.keep = None;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Examiner<'_> {
    /// Reads one object, decides its destination; never fails as a whole.
    fn examine(&self, r: &Routed<'_>) -> Examined {
        let key = r.info.key.clone();
        let rule = r.matched.rule;
        let mut ex = Examined {
            row: ObjectRow {
                source_key: key.clone(),
                dest_key: None,
                sha256: None,
                size: None,
                dest_existed: false,
                state: ObjectState::Pending,
                source_deleted: false,
                error: None,
            },
            rule: rule.name.clone(),
            tenant: r.matched.captures.get(layout::TENANT).cloned(),
            bom_ref: None,
            bom_ref_source: None,
            serial_number: None,
            kept: None,
            md5: None,
            shared: false,
        };
        if self.in_place(r, &mut ex) {
            return ex;
        }
        match self.read(r, &mut ex) {
            Ok(()) => {}
            Err(e) => {
                ex.row.state = ObjectState::Failed;
                ex.row.error = Some(e);
                ex.kept = None;
            }
        }
        ex
    }

    fn read(&self, r: &Routed<'_>, ex: &mut Examined) -> Result<(), String> {
        let key = KitPath::new(&r.info.key)
            .map_err(|e| format!("the source key is not a valid key: {e}"))?;
        let rule = r.matched.rule;
        let doc = rule.uses_document();
        // Documents are parsed from a spool (memory up to KEEP_MAX, a temporary file beyond);
        // one larger than MAX_DOCUMENT is not parsed (its bom-ref is synthetic).
        let parse = doc && r.info.size <= MAX_DOCUMENT;
        let mut spool = parse.then(|| tempfile::spooled_tempfile(KEEP_MAX as usize));
        let want_keep = r.info.size <= KEEP_MAX && self.reserve(r.info.size);
        // A document's spool is what is kept (one copy in memory, not two).
        let mut tee = Tee::new(
            self.dst.confirms_by_checksum(),
            (want_keep && spool.is_none()).then(|| Vec::with_capacity(r.info.size as usize)),
        );
        // Keep no more than was reserved, should the object have grown since the listing.
        tee.limit = r.info.size;
        let got = match &mut spool {
            Some(sp) => self.src.get(&key, &mut Both(&mut tee, sp)),
            None => self.src.get(&key, &mut tee),
        }
        .map_err(|e| format!("reading the source object: {e}"))?;
        if got.is_none() {
            return Err("the source object disappeared after the listing".into());
        }
        ex.md5 = tee.md5_hex();
        let ObjectDigest { size, sha256 } = tee.hash.finish();
        ex.kept = tee.keep;
        let meta = match spool {
            Some(mut sp) => {
                use std::io::Seek;
                sp.rewind()
                    .map_err(|e| format!("reading the spooled object: {e}"))?;
                let meta = document::read_meta((&mut sp).take(MAX_DOCUMENT));
                if let tempfile::SpooledData::InMemory(bytes) = sp.into_inner() {
                    let bytes = bytes.into_inner();
                    if want_keep && bytes.len() as u64 <= r.info.size {
                        ex.kept = Some(bytes);
                    }
                }
                Some(meta)
            }
            None if doc => Some(document::DocMeta::default()),
            None => None,
        };
        let synthetic = format!("sha256:{sha256}");
        let (bom_ref, bom_source, serial) = match &meta {
            Some(m) => (
                m.bom_ref.clone().unwrap_or_else(|| synthetic.clone()),
                Some(if m.bom_ref.is_some() {
                    "document"
                } else {
                    "synthetic"
                }),
                Some(m.serial_number.clone().unwrap_or_else(|| synthetic.clone())),
            ),
            None => (String::new(), None, None),
        };
        let enc_bom = if doc {
            Some(document::encode_segment(&bom_ref).map_err(|e| {
                format!(
                    "the bom-ref {}: {e}",
                    crate::util::printable_short(&bom_ref)
                )
            })?)
        } else {
            None
        };
        let enc_serial = match &serial {
            Some(s) => Some(document::encode_segment(s).map_err(|e| {
                format!("the serial number {}: {e}", crate::util::printable_short(s))
            })?),
            None => None,
        };
        let values = Values {
            key: &r.info.key,
            bom_ref: enc_bom.as_deref(),
            serial_number: enc_serial.as_deref(),
            artifact_id: Some(&sha256),
        };
        let dest = rule.target(&r.matched.captures, &values)?;
        ex.bom_ref = bom_source.map(|_| bom_ref);
        ex.bom_ref_source = bom_source;
        ex.serial_number = serial;
        ex.row.dest_existed = match self.prior.get(&r.info.key) {
            // The intent recorded before the earlier attempt's put is what counts.
            Some(p)
                if matches!(p.state, ObjectState::Pending | ObjectState::Failed)
                    && p.dest_key.as_deref() == Some(dest.as_str()) =>
            {
                p.dest_existed
            }
            _ => self.dests.contains_key(dest.as_str()),
        };
        ex.row.dest_key = Some(dest.as_str().to_owned());
        ex.row.sha256 = Some(sha256);
        ex.row.size = Some(i64::try_from(size).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Judges an object already at its destination without reading the source, when the
    /// source's listing vouches for its MD5 (S3 `confirm=etag-md5`) and the key does not depend on
    /// the content: equal when the destination's listing vouches for the same MD5 and the index
    /// knows the digest, else when the destination's bytes (read once) have that MD5. Returns
    /// whether it decided (the object is then `skipped`).
    fn in_place(&self, r: &Routed<'_>, ex: &mut Examined) -> bool {
        let Some(md5) = self.src.listed_md5(&r.info) else {
            return false;
        };
        // A pending row of an earlier attempt may be this run's own put: judged the long way.
        if self.prior.contains_key(&r.info.key) || r.matched.rule.uses_document() {
            return false;
        }
        let values = Values {
            key: &r.info.key,
            ..Values::default()
        };
        let Ok(dest) = r.matched.rule.target(&r.matched.captures, &values) else {
            return false;
        };
        let Some(listed) = self.dests.get(dest.as_str()) else {
            return false;
        };
        if listed.size != r.info.size {
            return false;
        }
        let size = i64::try_from(r.info.size).unwrap_or(i64::MAX);
        // The index's digest counts only when its MD5 is the one both listings vouch for.
        let known = self
            .indexed
            .get(dest.as_str())
            .filter(|i| i.size == size && i.md5.as_deref() == Some(md5.as_str()));
        let sha256 = match (self.dst.listed_md5(listed), known) {
            (Some(m), Some(i)) if m == md5 => i.sha256.clone(),
            _ => {
                let mut tee = Tee::new(true, None);
                match self.dst.get(&dest, &mut tee) {
                    Ok(Some(n))
                        if n == r.info.size && tee.md5_hex().as_deref() == Some(md5.as_str()) =>
                    {
                        tee.hash.finish().sha256
                    }
                    _ => return false,
                }
            }
        };
        ex.row.dest_key = Some(dest.as_str().to_owned());
        ex.row.dest_existed = true;
        ex.row.sha256 = Some(sha256);
        ex.row.size = Some(size);
        ex.row.state = ObjectState::Skipped;
        ex.md5 = Some(md5);
        true
    }

    fn reserve(&self, n: u64) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }
}

/// Writes to two sinks.
struct Both<'a, A, B>(&'a mut A, &'a mut B);

impl<A: Write, B: Write> Write for Both<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// The copy step's view of the run.
struct Copier<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Store,
    dests: &'a HashMap<String, ObjectInfo>,
    prior: &'a HashMap<String, ObjectRow>,
    progress: &'a Progress,
    bytes: AtomicU64,
}

impl Copier<'_> {
    /// Copies one examined object (pending) and sets its outcome.
    fn copy(&self, ex: &mut Examined) {
        match ex.row.state {
            ObjectState::Pending if ex.shared => return,
            ObjectState::Pending => {}
            ObjectState::Skipped => {
                self.progress.skipped(1);
                return;
            }
            _ => {
                self.progress.failed(1);
                return;
            }
        }
        self.remove_stale_put(ex);
        let outcome = self.copy_inner(ex);
        ex.kept = None;
        match outcome {
            Ok(state) => {
                ex.row.state = state;
                ex.row.error = None;
                if state == ObjectState::Copied {
                    self.progress.success(1);
                } else {
                    self.progress.skipped(1);
                }
            }
            Err(e) => {
                ex.row.state = ObjectState::Failed;
                ex.row.error = Some(e);
                self.progress.failed(1);
            }
        }
    }

    /// An earlier attempt of this run recorded a put to another key (the source changed since,
    /// and with it a content-derived key): a copy there with the recorded digest was that
    /// attempt's, never confirmed to anyone, and is removed so that it does not stay behind
    /// unrecorded.
    fn remove_stale_put(&self, ex: &Examined) {
        let Some(p) = self.prior.get(&ex.row.source_key) else {
            return;
        };
        let stale = matches!(p.state, ObjectState::Pending | ObjectState::Failed)
            && !p.dest_existed
            && p.dest_key.is_some()
            && p.dest_key != ex.row.dest_key;
        let (true, Some(old), Some(sha)) = (
            stale,
            p.dest_key.as_deref().and_then(|k| KitPath::new(k).ok()),
            &p.sha256,
        ) else {
            return;
        };
        if let Ok(Some(d)) = self.dst.digest(&old) {
            if d.sha256 == *sha {
                // Best effort: a copy left here is reported by `store compare`, never lost.
                let _ = self.dst.delete(&old);
            }
        }
    }

    /// Judges an object whose destination key another object of the run took first.
    fn judge_shared(&self, ex: &mut Examined) {
        ex.shared = false;
        self.copy(ex);
    }

    fn copy_inner(&self, ex: &Examined) -> Result<ObjectState, String> {
        let (Some(dest), Some(sha), Some(size)) = (&ex.row.dest_key, &ex.row.sha256, ex.row.size)
        else {
            return Err("the object was not examined".into());
        };
        let dest = KitPath::new(dest).map_err(|e| e.to_string())?;
        let size = u64::try_from(size).unwrap_or(0);
        // An earlier attempt of this run recorded the key as free before its put.
        let ours = !ex.shared
            && self.prior.get(&ex.row.source_key).is_some_and(|p| {
                matches!(p.state, ObjectState::Pending | ObjectState::Failed)
                    && !p.dest_existed
                    && p.dest_key == ex.row.dest_key
            });
        if ex.row.dest_existed {
            if self.confirmed_in_place(ex, &dest, size) {
                return Ok(ObjectState::Skipped);
            }
            return self.judge_existing(&dest, sha, size, false);
        }
        crate::failpoint::hit(&format!("transfer-put:{}", ex.row.source_key));
        match self.put(ex, &dest, sha, size) {
            Ok(()) => {}
            Err(StoreError::AlreadyExists { .. }) => {
                return self.judge_existing(&dest, sha, size, ours);
            }
            Err(e) => return Err(e.to_string()),
        }
        self.confirm(ex, &dest, sha, size)?;
        self.bytes.fetch_add(size, Ordering::Relaxed);
        crate::failpoint::hit(&format!("transfer-committed:{}", ex.row.source_key));
        Ok(ObjectState::Copied)
    }

    /// Whether the destination's listing vouches (S3 `confirm=etag-md5`) that the object at
    /// `dest` has the MD5 of the bytes read from the source — sparing its read-back.
    fn confirmed_in_place(&self, ex: &Examined, dest: &KitPath, size: u64) -> bool {
        let Some(md5) = &ex.md5 else {
            return false;
        };
        self.dests
            .get(dest.as_str())
            .filter(|l| l.size == size)
            .and_then(|l| self.dst.listed_md5(l))
            .is_some_and(|m| m == *md5)
    }

    /// An object is at the destination key: same bytes → skipped (or, when this run's earlier
    /// attempt put it, copied); different → a failure, never overwritten.
    fn judge_existing(
        &self,
        dest: &KitPath,
        sha: &str,
        size: u64,
        ours: bool,
    ) -> Result<ObjectState, String> {
        match self
            .dst
            .digest(dest)
            .map_err(|e| format!("reading the destination object: {e}"))?
        {
            Some(d) if d.sha256 == sha && d.size == size => Ok(if ours {
                ObjectState::Copied
            } else {
                ObjectState::Skipped
            }),
            Some(d) => Err(format!(
                "a different object is at the destination key {} ({} bytes, sha256 {}); not overwritten",
                crate::kit::path::printable(dest.as_str()),
                d.size,
                d.sha256
            )),
            None => Err(format!(
                "the destination object {} disappeared while being compared",
                crate::kit::path::printable(dest.as_str())
            )),
        }
    }

    fn put(&self, ex: &Examined, dest: &KitPath, sha: &str, size: u64) -> Result<(), StoreError> {
        let req = PutRequest {
            key: dest,
            size,
            media_type: MEDIA_TYPE,
            mode: WriteMode::CreateNew,
        };
        let label = ex.row.source_key.as_str();
        if let Some(bytes) = &ex.kept {
            let mut body = DigestReader::new(Cursor::new(bytes.as_slice()), label, size, sha);
            return checked_put(self.dst, &req, &mut body, label);
        }
        let key = KitPath::new(label).map_err(|e| StoreError::UnsafeKey {
            store: self.src.url().redacted(),
            key: label.to_owned(),
            reason: e.to_string(),
        })?;
        stream_copy(self.src, &key, self.dst, &req, sha)
    }

    fn confirm(&self, ex: &Examined, dest: &KitPath, sha: &str, size: u64) -> Result<(), String> {
        if self.dst.confirms_by_checksum() {
            // The destination knows the MD5 forms of what its put sent; failing that, the MD5
            // computed with the digest, or the kept bytes. A streamed object's bytes are not at
            // hand again: nothing to offer but no bytes, which match only an empty object (and
            // then rightly, its size having been compared first).
            let mut none = std::io::empty();
            let mut kept;
            let bytes: &mut dyn std::io::Read = match &ex.kept {
                Some(b) => {
                    kept = DigestReader::new(Cursor::new(b.as_slice()), dest.as_str(), size, sha);
                    &mut kept
                }
                None => &mut none,
            };
            let local = LocalBytes {
                size,
                md5: ex.md5.as_deref(),
                bytes,
            };
            if self
                .dst
                .checksum_confirms(dest, local, None)
                .map_err(|e| e.to_string())?
            {
                return Ok(());
            }
        }
        match self
            .dst
            .digest(dest)
            .map_err(|e| format!("reading the copy back: {e}"))?
        {
            Some(d) if d.sha256 == sha && d.size == size => Ok(()),
            Some(d) => Err(format!(
                "the copy read back as {} bytes with sha256 {}; expected {size} bytes with sha256 {sha}",
                d.size, d.sha256
            )),
            None => Err("the copy was gone right after the put".into()),
        }
    }
}

/// Copies the object at `key` of `from` into `to` as `req` says, streaming it through a pipe (one
/// read, bounded memory) and the digest-checking reader.
fn stream_copy(
    from: &dyn Store,
    key: &KitPath,
    to: &dyn Store,
    req: &PutRequest<'_>,
    sha: &str,
) -> Result<(), StoreError> {
    let (reader, mut writer) = std::io::pipe().map_err(|e| StoreError::Runtime {
        driver: "store migration",
        cause: e,
    })?;
    std::thread::scope(|s| {
        let feeder = s.spawn(move || {
            let r = from.get(key, &mut writer);
            drop(writer);
            r
        });
        let mut body = DigestReader::new(reader, key.as_str(), req.size, sha);
        let put = checked_put(to, req, &mut body, key.as_str());
        // Closing the pipe ends a read the put abandoned.
        drop(body);
        let fed = feeder.join().unwrap_or_else(|_| {
            Err(StoreError::Runtime {
                driver: "store migration",
                cause: std::io::Error::other("the reading thread panicked"),
            })
        });
        match (put, fed) {
            (Ok(()), Ok(Some(_))) => Ok(()),
            (Ok(()), _) => Err(StoreError::Corrupt {
                store: from.url().redacted(),
                key: key.as_str().to_owned(),
                reason: "the source read failed after the put completed".into(),
            }),
            // The put saw its body end early because the read failed: the read's error is
            // the cause.
            (Err(StoreError::SourceMismatch { .. }), Err(read)) => Err(read),
            (Err(_), Ok(None)) => Err(StoreError::SourceUnavailable {
                key: key.as_str().to_owned(),
                cause: std::io::Error::other("the source object disappeared during the copy"),
            }),
            (Err(e), _) => Err(e),
        }
    })
}

/// A put whose body must be read to its end and match its digest.
fn checked_put<R: Read>(
    dst: &dyn Store,
    req: &PutRequest<'_>,
    body: &mut DigestReader<R>,
    label: &str,
) -> Result<(), StoreError> {
    match dst.put(req, body) {
        Err(e) => Err(match body.mismatch() {
            Some(m) => StoreError::source_mismatch(label, m),
            None => e,
        }),
        Ok(()) if !body.is_complete() => Err(StoreError::Corrupt {
            store: dst.url().redacted(),
            key: label.to_owned(),
            reason: "the driver stored the object before reading all of it (a driver bug)".into(),
        }),
        Ok(()) => Ok(()),
    }
}

/// The database side of a run: a driver whose session holds the runner's lock, with the tables
/// made by [`prepare`].
pub struct Ledger<'a> {
    /// The locked connection.
    pub driver: &'a mut dyn Driver,
}

/// Creates the run tables and, through the migration runner, the artifact index; marks runs
/// left running by dead processes as interrupted. Call with the runner's lock held.
pub fn prepare(locked: &mut crate::migrate::Locked<'_>) -> Result<(), TransferError> {
    let dialect = locked.dialect();
    let set = record::index_migrations(dialect)?;
    locked
        .run(&set, &crate::migrate::runner::RunOptions::default())
        .map_err(|f| TransferError::Index(f.error.to_string()))?;
    let driver = locked.driver();
    record::ensure(driver)?;
    record::mark_interrupted(driver)?;
    Ok(())
}

/// Whether offkit only reads this store (a foreign archive table).
fn is_read_only(store: &dyn Store) -> bool {
    matches!(store.url(), crate::store::StoreUrl::Postgres(p) if p.foreign.is_some())
}

/// Runs (or, with `dry_run`, plans) a store migration. `ledger` is required unless `dry_run`.
pub fn migrate(
    src: &dyn Store,
    dst: &dyn Store,
    ledger: Option<Ledger<'_>>,
    opts: &MigrateOptions,
) -> Result<MigrationReport, TransferError> {
    let started = Instant::now();
    if opts.tenant.is_some() && !opts.layout.has_tenant() {
        return Err(TransferError::Usage(format!(
            "--tenant needs a layout that captures {{{}}} ({} does not)",
            layout::TENANT,
            opts.layout.origin
        )));
    }
    if opts.delete_source && is_read_only(src) {
        return Err(TransferError::Usage(format!(
            "--delete-source: the source {} is a foreign archive table, which offkit only reads",
            src.url().redacted()
        )));
    }
    let scope = RunScope {
        tenant: opts.tenant.as_deref(),
        source_filter: opts.source_filter.as_deref(),
        delete_source: opts.delete_source,
    };
    let scope_json = serde_json::to_string(&scope).unwrap_or_default();
    let from = src.url().redacted();
    let to = dst.url().redacted();
    let mut report = MigrationReport {
        run_id: None,
        resumed: opts.resume.is_some(),
        dry_run: opts.dry_run,
        from: from.clone(),
        to: to.clone(),
        layout: opts.layout.origin.clone(),
        layout_sha256: opts.layout.sha256.clone(),
        tenant: opts.tenant.clone(),
        source_filter: opts.source_filter.clone(),
        delete_source: opts.delete_source,
        parallelism: opts.parallelism,
        batch_size: opts.batch_size,
        state: RunState::Running,
        totals: Totals::default(),
        duration_ms: 0,
        failures: Vec::new(),
        plan: Vec::new(),
    };
    let mut ledger = match (opts.dry_run, ledger) {
        (true, _) => None,
        (false, Some(l)) => Some(l),
        (false, None) => {
            return Err(TransferError::Usage(
                "a store migration that is not a dry run needs its database".into(),
            ));
        }
    };
    // The run: a new one, or the recorded one being resumed.
    let mut prior = HashMap::new();
    if let Some(l) = &mut ledger {
        let id = match opts.resume {
            Some(id) => {
                let run = record::get(l.driver, id)?.ok_or(TransferError::UnknownRun(id))?;
                for (what, recorded, given) in [
                    ("source", &run.from_store, &from),
                    ("destination", &run.to_store, &to),
                    ("layout", &run.layout_sha256, &opts.layout.sha256),
                    ("scope", &run.options, &scope_json),
                ] {
                    if recorded != given {
                        return Err(TransferError::ResumeMismatch {
                            run: id,
                            what,
                            recorded: recorded.clone(),
                            given: given.clone(),
                        });
                    }
                }
                if run.state == RunState::RolledBack {
                    return Err(TransferError::RolledBack(id));
                }
                record::set_state(l.driver, id, RunState::Running, None)?;
                prior = record::objects_of(l.driver, id)?;
                id
            }
            None => record::start(
                l.driver,
                &record::NewRun {
                    from_store: &from,
                    to_store: &to,
                    layout: &opts.layout.origin,
                    layout_sha256: &opts.layout.sha256,
                    options: &scope_json,
                    started_by: &opts.started_by,
                },
            )?,
        };
        report.run_id = Some(id);
    }
    let result = run_batches(src, dst, ledger.as_mut(), opts, &prior, &mut report);
    report.duration_ms = crate::util::millis(started.elapsed());
    let stopped = match result {
        Ok(stopped) => stopped,
        Err(e) => {
            if let (Some(l), Some(id)) = (&mut ledger, report.run_id) {
                report.state = RunState::Failed;
                let text = e.to_string();
                let sha = crate::util::sha256_hex(&report.to_json());
                // The error that stopped the run is the one to report.
                let _ = record::finish(l.driver, id, RunState::Failed, &sha, Some(&text));
            }
            return Err(e);
        }
    };
    report.state = if opts.dry_run {
        if report
            .plan
            .iter()
            .any(|p| p.action == "conflict" || p.action == "fail")
        {
            RunState::Failed
        } else {
            RunState::Succeeded
        }
    } else if report.totals.failed > 0 {
        RunState::Failed
    } else {
        RunState::Succeeded
    };
    let first = report.failures.first().cloned();
    let error = first.as_ref().map(|f| {
        format!(
            "{} object(s) failed, first {}: {}",
            report.totals.failed, f.source_key, f.error
        )
    });
    if let (Some(l), Some(id)) = (&mut ledger, report.run_id) {
        let sha = crate::util::sha256_hex(&report.to_json());
        record::finish(l.driver, id, report.state, &sha, error.as_deref())?;
    }
    match first {
        Some(f) if !opts.dry_run => Err(TransferError::Failed {
            failed: report.totals.failed,
            first: crate::kit::path::printable(&f.source_key),
            error: f.error,
            stopped,
            report: Box::new(report),
        }),
        _ => Ok(report),
    }
}

/// The batches of a run; returns whether `--stop-on-error` stopped it.
fn run_batches(
    src: &dyn Store,
    dst: &dyn Store,
    ledger: Option<&mut Ledger<'_>>,
    opts: &MigrateOptions,
    prior: &HashMap<String, ObjectRow>,
    report: &mut MigrationReport,
) -> Result<bool, TransferError> {
    // The destination and the source are listed on threads of their own while the batches run.
    let listing = DestListing::default();
    let ordered = dst.lists_in_order() && opts.layout.is_identity();
    let progress = Progress::new("migrating", 0, opts.progress);
    std::thread::scope(|s| {
        s.spawn(|| listing.fill(dst));
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let shown = &progress;
        // The sender goes with the thread: the batches end when the listing does.
        let source = s.spawn(move || route_source(src, opts, shown, &tx));
        let result = batches(
            src, dst, ledger, opts, prior, report, &listing, ordered, shown, rx,
        );
        listing.stop.store(true, Ordering::Relaxed);
        let listed = source
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        // An error of the batches comes first: it may be why the listing stopped.
        let stopped = result?;
        let listed = listed?;
        report.totals.total = listed.total;
        report.totals.unmatched = listed.unmatched;
        report.totals.excluded = listed.excluded;
        progress.finish();
        Ok(stopped)
    })
}

/// The batches of a run as the source listing hands them on, the destination listing filling
/// `listing` meanwhile.
#[allow(clippy::too_many_arguments)]
fn batches(
    src: &dyn Store,
    dst: &dyn Store,
    mut ledger: Option<&mut Ledger<'_>>,
    opts: &MigrateOptions,
    prior: &HashMap<String, ObjectRow>,
    report: &mut MigrationReport,
    listing: &DestListing,
    ordered: bool,
    progress: &Progress,
    routed: std::sync::mpsc::Receiver<Vec<Routed<'_>>>,
) -> Result<bool, TransferError> {
    let pool = pool(opts.parallelism)?;
    let run_id = report.run_id.unwrap_or_default();
    let mut stopped = false;
    let trusted = src.confirms_by_checksum() && dst.confirms_by_checksum();
    let indexed = match ledger.as_deref_mut() {
        Some(l) if trusted => record::index_digests(l.driver, &dst.url().redacted())?,
        _ => HashMap::new(),
    };
    // Destination keys this run has taken: a second object bound for one is judged against the
    // first, never counted as a copy of its own.
    let mut claimed: std::collections::HashSet<String> = prior
        .values()
        .filter(|p| p.state == ObjectState::Copied)
        .filter_map(|p| p.dest_key.clone())
        .collect();
    for batch in routed {
        // Rows confirmed earlier are not redone; a copy of an earlier attempt whose source is
        // still listed may still have its source to delete (checked again first).
        let mut to_delete: Vec<(ObjectRow, bool)> = Vec::new();
        let todo: Vec<&Routed<'_>> = batch
            .iter()
            .filter(|r| match prior.get(&r.info.key) {
                Some(p) if matches!(p.state, ObjectState::Copied | ObjectState::Skipped) => {
                    report.totals.already_done += 1;
                    progress.skipped(1);
                    if opts.delete_source && p.state == ObjectState::Copied {
                        to_delete.push((p.clone(), true));
                    }
                    false
                }
                _ => true,
            })
            .collect();
        let keys: Vec<&str> = todo.iter().map(|r| r.info.key.as_str()).collect();
        let dests = listing.for_batch(&keys, ordered)?;
        let examiner = Examiner {
            src,
            dst,
            dests: &dests,
            prior,
            indexed: &indexed,
            budget: AtomicU64::new(KEEP_BUDGET),
        };
        let mut examined: Vec<Examined> =
            pool.install(|| todo.par_iter().map(|r| examiner.examine(r)).collect());
        for ex in &mut examined {
            if ex.bom_ref_source == Some("synthetic") {
                report.totals.synthetic_bom_refs += 1;
            }
            if let (ObjectState::Pending, Some(dest)) = (ex.row.state, &ex.row.dest_key) {
                if !claimed.insert(dest.clone()) {
                    ex.shared = true;
                    ex.row.dest_existed = true;
                }
            }
        }
        let Some(l) = ledger.as_deref_mut() else {
            dry_run_batch(dst, &pool, &examined, report, progress)?;
            continue;
        };
        // The intent: the rows that will be put (a key found free). Rows judged in place or
        // failed already need no intent: their outcome is all there is to record.
        let intents: Vec<ObjectRow> = examined
            .iter()
            .filter(|e| e.row.state == ObjectState::Pending && !e.row.dest_existed)
            .map(|e| e.row.clone())
            .collect();
        if !intents.is_empty() {
            record::in_transaction(l.driver, |d| record::put_objects(d, run_id, &intents))?;
        }
        let copier = Copier {
            src,
            dst,
            dests: &dests,
            prior,
            progress,
            bytes: AtomicU64::new(0),
        };
        pool.install(|| examined.par_iter_mut().for_each(|ex| copier.copy(ex)));
        for ex in examined.iter_mut().filter(|e| e.shared) {
            copier.judge_shared(ex);
        }
        dst.sync()?;
        report.totals.bytes_copied += copier.bytes.load(Ordering::Relaxed);
        // Index rows for what the index does not hold yet (an object found in place that an
        // earlier run indexed with the same digest keeps its row).
        let index: Vec<IndexRow> = examined
            .iter()
            .filter(|e| matches!(e.row.state, ObjectState::Copied | ObjectState::Skipped))
            .filter(|e| {
                let known = e.row.dest_key.as_ref().and_then(|k| indexed.get(k));
                known.is_none_or(|i| Some(&i.sha256) != e.row.sha256.as_ref())
            })
            .map(index_row)
            .collect();
        let dst_url = dst.url().redacted();
        record::in_transaction(l.driver, |d| {
            let rows: Vec<ObjectRow> = examined.iter().map(|e| e.row.clone()).collect();
            record::put_objects(d, run_id, &rows)?;
            record::put_index(d, &dst_url, run_id, &index)
        })?;
        crate::failpoint::hit("transfer-checkpoint");
        for ex in &examined {
            match ex.row.state {
                ObjectState::Copied => report.totals.copied += 1,
                ObjectState::Skipped => report.totals.skipped += 1,
                ObjectState::Failed => {
                    report.totals.failed += 1;
                    report.failures.push(Failure {
                        source_key: ex.row.source_key.clone(),
                        dest_key: ex.row.dest_key.clone(),
                        error: ex.row.error.clone().unwrap_or_default(),
                    });
                }
                _ => {}
            }
        }
        if opts.delete_source {
            // Only the sources of copies this run made: an object found in place may be another
            // run's copy, which that run's rollback could remove.
            to_delete.extend(
                examined
                    .iter()
                    .filter(|e| e.row.state == ObjectState::Copied)
                    .map(|e| (e.row.clone(), false)),
            );
            delete_sources(src, dst, &pool, l, run_id, to_delete, report)?;
        }
        if opts.stop_on_error && examined.iter().any(|e| e.row.state == ObjectState::Failed) {
            stopped = true;
            break;
        }
    }
    Ok(stopped)
}

fn index_row(e: &Examined) -> IndexRow {
    let sha = e.row.sha256.clone().unwrap_or_default();
    IndexRow {
        storage_key: e.row.dest_key.clone().unwrap_or_default(),
        bom_ref: e.bom_ref.clone(),
        bom_ref_source: e.bom_ref_source,
        serial_number: e.serial_number.clone(),
        artifact_id: sha.clone(),
        sha256: sha,
        size: e.row.size.unwrap_or_default(),
        source_layout: e.rule.clone(),
        source_key: e.row.source_key.clone(),
        tenant: e.tenant.clone(),
        md5: e.md5.clone(),
    }
}

/// Deletes the sources of confirmed, indexed copies. Each deletion is recorded *before* it is
/// made (a kill in between leaves a row that says "deleted" over a source that is still there,
/// which rollback checks), and taken back when it fails. A source is deleted only while it is
/// still the object that was copied (its size; for copies of an earlier attempt, `recheck`, its
/// digest and the copy's digest too).
fn delete_sources(
    src: &dyn Store,
    dst: &dyn Store,
    pool: &rayon::ThreadPool,
    l: &mut Ledger<'_>,
    run_id: i64,
    rows: Vec<(ObjectRow, bool)>,
    report: &mut MigrationReport,
) -> Result<(), TransferError> {
    if rows.is_empty() {
        return Ok(());
    }
    let marked: Vec<ObjectRow> = rows
        .iter()
        .map(|(r, _)| ObjectRow {
            source_deleted: true,
            ..r.clone()
        })
        .collect();
    record::in_transaction(l.driver, |d| record::put_objects(d, run_id, &marked))?;
    let results: Vec<Result<(), String>> = pool.install(|| {
        rows.par_iter()
            .map(|(r, recheck)| delete_one(src, dst, r, *recheck))
            .collect()
    });
    let mut undone = Vec::new();
    for ((r, _), res) in rows.iter().zip(results) {
        match res {
            Ok(()) => report.totals.deleted_sources += 1,
            Err(e) => {
                report.totals.failed += 1;
                report.failures.push(Failure {
                    source_key: r.source_key.clone(),
                    dest_key: r.dest_key.clone(),
                    error: format!("the copy is confirmed; the source was not deleted: {e}"),
                });
                undone.push(r.clone());
            }
        }
    }
    record::in_transaction(l.driver, |d| record::put_objects(d, run_id, &undone))?;
    Ok(())
}

fn delete_one(
    src: &dyn Store,
    dst: &dyn Store,
    r: &ObjectRow,
    recheck: bool,
) -> Result<(), String> {
    let key = KitPath::new(&r.source_key).map_err(|e| e.to_string())?;
    let (Some(sha), Some(size)) = (&r.sha256, r.size) else {
        return Err("the row has no digest".into());
    };
    let size = u64::try_from(size).unwrap_or(0);
    if recheck {
        let dest = r
            .dest_key
            .as_deref()
            .and_then(|k| KitPath::new(k).ok())
            .ok_or("the row has no destination key")?;
        match dst.digest(&dest).map_err(|e| e.to_string())? {
            Some(d) if d.sha256 == *sha && d.size == size => {}
            _ => return Err("the copy is no longer the object the run copied".into()),
        }
        match src.digest(&key).map_err(|e| e.to_string())? {
            Some(d) if d.sha256 == *sha && d.size == size => {}
            None => return Ok(()),
            Some(_) => return Err("the source changed since it was copied".into()),
        }
    } else {
        match src.stat(&key).map_err(|e| e.to_string())? {
            Some(n) if n == size => {}
            None => return Ok(()),
            Some(_) => return Err("the source changed since it was copied".into()),
        }
    }
    crate::failpoint::hit(&format!("transfer-delete:{}", r.source_key));
    src.delete(&key).map(|_| ()).map_err(|e| e.to_string())
}

/// A dry run's batch: what each object would do, judged against the destination.
fn dry_run_batch(
    dst: &dyn Store,
    pool: &rayon::ThreadPool,
    examined: &[Examined],
    report: &mut MigrationReport,
    progress: &Progress,
) -> Result<(), TransferError> {
    let items: Vec<PlanItem> = pool.install(|| {
        examined
            .par_iter()
            .map(|e| {
                let (action, error) = if e.row.state == ObjectState::Failed {
                    ("fail", e.row.error.clone())
                } else if e.row.state == ObjectState::Skipped {
                    ("skip", None)
                } else if e.row.dest_existed {
                    let dest = e.row.dest_key.as_deref().and_then(|k| KitPath::new(k).ok());
                    match dest.map(|k| dst.digest(&k)) {
                        Some(Ok(Some(d))) if Some(&d.sha256) == e.row.sha256.as_ref() => {
                            ("skip", None)
                        }
                        Some(Ok(Some(d))) => (
                            "conflict",
                            Some(format!("a different object is there (sha256 {})", d.sha256)),
                        ),
                        Some(Ok(None)) => ("copy", None),
                        Some(Err(err)) => ("fail", Some(err.to_string())),
                        None => ("fail", Some("no destination key".into())),
                    }
                } else {
                    ("copy", None)
                };
                match action {
                    "copy" => progress.success(1),
                    "skip" => progress.skipped(1),
                    _ => progress.failed(1),
                }
                PlanItem {
                    source_key: e.row.source_key.clone(),
                    dest_key: e.row.dest_key.clone(),
                    rule: e.rule.clone(),
                    size: e.row.size.map_or(0, |s| u64::try_from(s).unwrap_or(0)),
                    sha256: e.row.sha256.clone(),
                    action,
                    bom_ref: e.bom_ref.clone(),
                    error,
                }
            })
            .collect()
    });
    for p in &items {
        match p.action {
            "copy" => report.totals.copied += 1,
            "skip" => report.totals.skipped += 1,
            _ => {
                report.totals.failed += 1;
                report.failures.push(Failure {
                    source_key: p.source_key.clone(),
                    dest_key: p.dest_key.clone(),
                    error: p.error.clone().unwrap_or_default(),
                });
            }
        }
    }
    report.plan.extend(items);
    Ok(())
}
