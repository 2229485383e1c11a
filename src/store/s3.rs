//! The `s3://BUCKET/PREFIX` driver, for any S3-compatible server (AWS, MinIO, Ceph, rclone), built
//! on the `object_store` crate's S3 client.
//!
//! The rest of offkit is synchronous, so this driver owns a small tokio runtime and blocks on it;
//! worker threads call in concurrently. Settings come from the usual `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, …), overridden by the URL's options (see [`super::url::S3Url`]).
//!
//! Objects up to [`SINGLE_PUT_MAX`] go up in one `PutObject`; larger ones by multipart upload, read
//! from the body one part at a time with at most [`PART_CONCURRENCY`] parts in flight and at most
//! [`MAX_MULTIPART_UPLOADS`] multipart uploads at once, so memory stays bounded whatever the object
//! sizes. Both are atomic on S3: an interrupted multipart upload is never visible as an object (it
//! lingers as an incomplete upload until aborted or expired by a lifecycle rule).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, RetryConfig,
};

use super::stream::read_full;

#[path = "s3_etag.rs"]
mod etag;
#[path = "s3_http.rs"]
mod http_md5;
use super::url::{Addressing, ConditionalPut, Confirm, S3Url, StoreUrl};
use super::{LocalBytes, Lookup, ObjectInfo, PutRequest, Store, StoreError, WriteMode};
use crate::kit::path::KitPath;

/// Objects up to this size are sent in one request (and held in memory while being sent).
pub const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;
/// Multipart part size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
pub const PART_CONCURRENCY: usize = 4;
/// Multipart uploads running at once in one store handle (bounds memory to about
/// `MAX_MULTIPART_UPLOADS × (PART_CONCURRENCY + 1) × PART_SIZE`).
pub const MAX_MULTIPART_UPLOADS: usize = 2;

/// How many times the client retries a failed request (idempotent ones after a timeout).
const MAX_RETRIES: usize = 4;
/// The client stops retrying a request this long after it was first sent.
const RETRY_WINDOW: Duration = Duration::from_secs(60);

/// A time limit of the S3 client and where its value came from, so that an error can name the
/// limit that fired and how to change it.
#[derive(Debug, Clone)]
struct Limit {
    /// What it limits, in words.
    what: &'static str,
    /// The value, as given (`10s`, `5 min`).
    value: String,
    /// The environment variable that sets it.
    var: &'static str,
    /// True when that variable set it; else it is offkit's default.
    from_env: bool,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, value, var) = (self.what, &self.value, self.var);
        if self.from_env {
            write!(f, "the {what}, {value} ({var})")
        } else {
            write!(f, "the {what}, {value} (offkit's default; {var} sets it)")
        }
    }
}

/// The client's time limits.
#[derive(Debug, Clone)]
struct Limits {
    connect: Limit,
    request: Limit,
}

impl Limits {
    /// The limits in effect, setting offkit's defaults on the builder where the environment sets
    /// none (`with_client_options` would instead discard every client option read from the
    /// environment, such as AWS_PROXY_URL).
    fn apply(b: &mut AmazonS3Builder) -> Limits {
        let mut limit = |key, what, var, default: &str| {
            let set = std::env::var_os(var).map(|v| v.to_string_lossy().into_owned());
            if set.is_none() {
                *b = std::mem::take(b).with_config(AmazonS3ConfigKey::Client(key), default);
            }
            Limit {
                what,
                from_env: set.is_some(),
                value: set.unwrap_or_else(|| default.to_owned()),
                var,
            }
        };
        Limits {
            // Fail in seconds, not minutes, when the server is away.
            connect: limit(
                ClientConfigKey::ConnectTimeout,
                "S3 connect timeout",
                "AWS_CONNECT_TIMEOUT",
                "10s",
            ),
            // The whole of one request, from connecting to the last byte of the response.
            request: limit(
                ClientConfigKey::Timeout,
                "S3 request timeout",
                "AWS_TIMEOUT",
                "300s",
            ),
        }
    }

    /// The limit that `e` says fired, in words, or `None` when `e` is not a timeout.
    fn fired(&self, e: &object_store::Error) -> Option<String> {
        let (mut timeout, mut connect) = (false, false);
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(cause) = next {
            if let Some(h) = cause.downcast_ref::<HttpError>() {
                timeout |= h.kind() == HttpErrorKind::Timeout;
            }
            if let Some(r) = cause.downcast_ref::<reqwest::Error>() {
                timeout |= r.is_timeout();
                connect |= r.is_connect();
            }
            next = cause.source();
        }
        let retries = format!(
            "; requests that are safe to repeat are retried up to {MAX_RETRIES} times within {}s",
            RETRY_WINDOW.as_secs()
        );
        match (timeout, connect) {
            (true, true) => Some(format!(
                "no connection to the S3 server within {}{retries}",
                self.connect
            )),
            (true, false) => Some(format!(
                "no answer from the S3 server within {}{retries}",
                self.request
            )),
            (false, _) => None,
        }
    }
}

/// An S3 bucket (and key prefix).
#[derive(Debug)]
pub struct S3Store {
    url: StoreUrl,
    shown: String,
    limits: Limits,
    rt: tokio::runtime::Runtime,
    client: Arc<AmazonS3>,
    prefix: Option<String>,
    conditional: ConditionalPut,
    confirm: Confirm,
    multipart_slots: Slots,
    /// The ETags each of this handle's puts should leave — the MD5 forms of the bytes it sent —
    /// kept (with `confirm=etag-md5` only) until the put's confirmation consumes them, sparing a
    /// second read of the source.
    sent: Mutex<HashMap<String, etag::LocalEtags>>,
}

/// A counting semaphore for blocking threads.
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Self {
        Slots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.cv.notify_one();
    }
}

/// With a custom endpoint (MinIO, Ceph, … — what air-gapped sites run) and no credentials at all,
/// the S3 client would fall back to asking the cloud instance-metadata service at 169.254.169.254,
/// which at best times out. Refuse instead, and say what to set.
fn refuse_credential_probing(b: &AmazonS3Builder, shown: &str) -> Result<(), StoreError> {
    let set = |k: AmazonS3ConfigKey| b.get_config_value(&k).is_some_and(|v| !v.is_empty());
    let custom_endpoint = set(AmazonS3ConfigKey::Endpoint);
    let anonymous = b
        .get_config_value(&AmazonS3ConfigKey::SkipSignature)
        .is_some_and(|v| v == "true");
    let credentials = set(AmazonS3ConfigKey::AccessKeyId)
        || set(AmazonS3ConfigKey::WebIdentityTokenFile)
        || set(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
        || set(AmazonS3ConfigKey::ContainerCredentialsFullUri)
        || set(AmazonS3ConfigKey::MetadataEndpoint);
    if custom_endpoint && !anonymous && !credentials {
        return Err(StoreError::Misconfigured {
            store: shown.to_owned(),
            reason: "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or \
                     AWS_SKIP_SIGNATURE=true for anonymous access); with a custom endpoint offkit \
                     does not ask a cloud instance-metadata service"
                .into(),
        });
    }
    Ok(())
}

impl S3Store {
    /// Builds the client (no request is made yet).
    pub fn open(url: StoreUrl, s: &S3Url) -> Result<Self, StoreError> {
        let shown = url.redacted();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&s.bucket);
        if let Some(e) = &s.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &s.region {
            b = b.with_region(r);
        }
        if let Some(a) = s.addressing {
            b = b.with_virtual_hosted_style_request(a == Addressing::VirtualHosted);
        }
        if let Some(k) = &s.access_key_id {
            b = b.with_access_key_id(k.expose());
        }
        if let Some(k) = &s.secret_access_key {
            b = b.with_secret_access_key(k.expose());
        }
        if let Some(t) = &s.session_token {
            b = b.with_token(t.expose());
        }
        b = b.with_conditional_put(match s.conditional_put {
            ConditionalPut::IfNoneMatch => S3ConditionalPut::ETagMatch,
            _ => S3ConditionalPut::Disabled,
        });
        // Fail in about a minute, not the library default of several, when the server is away.
        let retry = RetryConfig {
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_WINDOW,
            ..RetryConfig::default()
        };
        b = b.with_retry(retry);
        let limits = Limits::apply(&mut b);
        b = b.with_http_connector(http_md5::Md5Connector);
        if let Some(h) = s.allow_http {
            b = b.with_allow_http(h);
        }
        refuse_credential_probing(&b, &shown)?;
        let client = b.build().map_err(|e| StoreError::S3 {
            op: "open",
            store: shown.clone(),
            key: String::new(),
            cause: Box::new(e),
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("offkit-s3")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Runtime {
                driver: "s3",
                cause: source,
            })?;
        Ok(S3Store {
            shown,
            limits,
            rt,
            client: Arc::new(client),
            prefix: s.prefix.clone(),
            conditional: s.conditional_put,
            confirm: s.confirm,
            sent: Mutex::new(HashMap::new()),
            multipart_slots: Slots::new(MAX_MULTIPART_UPLOADS),
            url,
        })
    }

    fn err(&self, op: &'static str, key: &str, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::AlreadyExists { .. } => StoreError::AlreadyExists {
                store: self.shown.clone(),
                key: key.to_owned(),
            },
            e => match self.limits.fired(&e) {
                Some(limit) => StoreError::S3Timeout {
                    op,
                    store: self.shown.clone(),
                    key: key.to_owned(),
                    limit,
                    cause: Box::new(e),
                },
                None => StoreError::S3 {
                    op,
                    store: self.shown.clone(),
                    key: key.to_owned(),
                    cause: Box::new(e),
                },
            },
        }
    }

    fn full(&self, key: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}/{key}"),
            None => key.to_owned(),
        }
    }

    fn path(&self, key: &KitPath) -> Result<Path, StoreError> {
        Path::parse(self.full(key.as_str())).map_err(|e| StoreError::UnsafeKey {
            store: self.shown.clone(),
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    fn put_single(
        &self,
        req: &PutRequest<'_>,
        path: &Path,
        body: &mut dyn Read,
        attributes: Attributes,
    ) -> Result<(), StoreError> {
        let key = req.key.as_str();
        let mut buf = Vec::with_capacity(usize::try_from(req.size).unwrap_or(0));
        // Read to the end through the caller's digest-checking reader: `buf` is the promised bytes.
        body.read_to_end(&mut buf).map_err(|e| self.io(key, e))?;
        let md5: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&buf).into();
        let mode = match (req.mode, self.conditional) {
            (WriteMode::CreateNew, ConditionalPut::IfNoneMatch) => PutMode::Create,
            _ => PutMode::Overwrite,
        };
        let mut opts = PutOptions {
            mode,
            attributes,
            ..PutOptions::default()
        };
        opts.extensions.insert(http_md5::ContentMd5(md5));
        self.rt
            .block_on(self.client.put_opts(path, buf.into(), opts))
            .map_err(|e| self.err("put", key, e))?;
        self.remember_sent(key, etag::LocalEtags::of_md5(md5));
        Ok(())
    }

    fn put_multipart(
        &self,
        req: &PutRequest<'_>,
        path: &Path,
        body: &mut dyn Read,
        attributes: Attributes,
    ) -> Result<(), StoreError> {
        let key = req.key.as_str();
        let _slot = self.multipart_slots.acquire();
        // Part uploads are spawned onto the runtime from this (non-runtime) thread.
        let _enter = self.rt.enter();
        let opts = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let mut upload = self
            .rt
            .block_on(self.client.put_multipart_opts(path, opts))
            .map_err(|e| self.err("put", key, e))?;
        // The parts in flight, driven here rather than by object_store's `WriteMultipart`, whose
        // `finish` reports the failure of its own clean-up (`DELETE …?uploadId=…`) instead of
        // the failure that caused it when the server is gone.
        let mut parts = tokio::task::JoinSet::new();
        let mut sent = etag::EtagHasher::new(PART_SIZE);
        let streamed = (|| {
            loop {
                let mut part = vec![0u8; PART_SIZE];
                let n = read_full(body, &mut part).map_err(|e| self.io(key, e))?;
                if n == 0 {
                    break;
                }
                part.truncate(n);
                sent.update(&part);
                while parts.len() >= PART_CONCURRENCY {
                    self.part_done(key, self.rt.block_on(parts.join_next()))?;
                }
                parts.spawn(upload.put_part(part.into()));
            }
            while let Some(done) = self.rt.block_on(parts.join_next()) {
                self.part_done(key, Some(done))?;
            }
            self.rt
                .block_on(upload.complete())
                .map_err(|e| self.err("put", key, e))
        })();
        match streamed {
            Ok(_) => {
                self.remember_sent(key, sent.finish());
                Ok(())
            }
            Err(e) => {
                // Best effort, and never visible as an object either way: an upload that cannot be
                // aborted lingers until a lifecycle rule expires it.
                self.rt.block_on(parts.shutdown());
                let _ = self.rt.block_on(upload.abort());
                Err(e)
            }
        }
    }

    /// The outcome of one part upload (`None`: no part was in flight).
    fn part_done(
        &self,
        key: &str,
        done: Option<Result<object_store::Result<()>, tokio::task::JoinError>>,
    ) -> Result<(), StoreError> {
        match done {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(self.err("put", key, e)),
            Some(Err(e)) => Err(self.io(key, std::io::Error::other(e))),
        }
    }

    fn remember_sent(&self, key: &str, sent: etag::LocalEtags) {
        if self.confirm == Confirm::EtagMd5 {
            let mut all = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            all.insert(key.to_owned(), sent);
        }
    }

    fn io(&self, key: &str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            op: "put",
            store: self.shown.clone(),
            key: key.to_owned(),
            cause: source,
        }
    }
}

impl Store for S3Store {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn stat(&self, key: &KitPath) -> Result<Option<u64>, StoreError> {
        let path = self.path(key)?;
        match self.rt.block_on(self.client.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("stat", key.as_str(), e)),
        }
    }

    fn get(&self, key: &KitPath, sink: &mut dyn Write) -> Result<Option<u64>, StoreError> {
        let path = self.path(key)?;
        let result = match self.rt.block_on(self.client.get(&path)) {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err("get", key.as_str(), e)),
        };
        let mut stream = result.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = self.rt.block_on(stream.next()) {
            let chunk = chunk.map_err(|e| self.err("get", key.as_str(), e))?;
            sink.write_all(&chunk).map_err(|source| StoreError::Io {
                op: "get",
                store: self.shown.clone(),
                key: key.to_string(),
                cause: source,
            })?;
            n += chunk.len() as u64;
        }
        Ok(Some(n))
    }

    fn put(&self, req: &PutRequest<'_>, body: &mut dyn Read) -> Result<(), StoreError> {
        let path = self.path(req.key)?;
        let create_only = req.mode == WriteMode::CreateNew;
        // Without a server-side condition (and for multipart, whose completion offers none here),
        // refuse to overwrite what is already visible; see ConditionalPut::Disabled for the race.
        if create_only
            && (self.conditional == ConditionalPut::Disabled || req.size > SINGLE_PUT_MAX)
            && self.stat(req.key)?.is_some()
        {
            return Err(StoreError::AlreadyExists {
                store: self.shown.clone(),
                key: req.key.to_string(),
            });
        }
        let mut attributes = Attributes::new();
        if !req.media_type.is_empty() {
            attributes.insert(Attribute::ContentType, req.media_type.to_owned().into());
        }
        if req.size <= SINGLE_PUT_MAX {
            self.put_single(req, &path, body, attributes)
        } else {
            self.put_multipart(req, &path, body, attributes)
        }
    }

    fn delete(&self, key: &KitPath) -> Result<bool, StoreError> {
        if self.stat(key)?.is_none() {
            return Ok(false);
        }
        let path = self.path(key)?;
        match self.rt.block_on(self.client.delete(&path)) {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("delete", key.as_str(), e)),
        }
    }

    fn list(
        &self,
        under: Option<&KitPath>,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.list_after(under, None, visit)
    }

    fn list_after(
        &self,
        under: Option<&KitPath>,
        after: Option<&KitPath>,
        visit: &mut dyn FnMut(ObjectInfo) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let base = match (under, &self.prefix) {
            (Some(u), _) => Some(self.full(u.as_str())),
            (None, Some(p)) => Some(p.clone()),
            (None, None) => None,
        };
        let base = base
            .map(|b| Path::parse(&b))
            .transpose()
            .map_err(|e| self.err("list", "", e.into()))?;
        let strip = self.prefix.as_ref().map(|p| format!("{p}/"));
        let offset = after.map(|a| self.path(a)).transpose()?;
        let mut stream = match &offset {
            Some(offset) => self.client.list_with_offset(base.as_ref(), offset),
            None => self.client.list(base.as_ref()),
        };
        while let Some(meta) = self.rt.block_on(stream.next()) {
            let meta = meta.map_err(|e| self.err("list", "", e))?;
            // A server that ignores `start-after` still lists nothing twice to the caller.
            if offset.as_ref().is_some_and(|o| meta.location <= *o) {
                continue;
            }
            let full = meta.location.as_ref();
            let key = match &strip {
                Some(s) => match full.strip_prefix(s.as_str()) {
                    Some(k) => k,
                    None => continue,
                },
                None => full,
            };
            let info = ObjectInfo {
                key: key.to_owned(),
                size: meta.size,
                etag: meta.e_tag.map(|e| e.trim_matches('"').to_owned()),
            };
            if visit(info).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn confirms_by_checksum(&self) -> bool {
        self.confirm == Confirm::EtagMd5
    }

    fn lists_in_order(&self) -> bool {
        true
    }

    fn listed_md5(&self, info: &ObjectInfo) -> Option<String> {
        let etag = info.etag.as_deref()?.trim_matches('"');
        let plain = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        (self.confirm == Confirm::EtagMd5 && plain).then(|| etag.to_ascii_lowercase())
    }

    fn checksum_confirms(
        &self,
        key: &KitPath,
        local: LocalBytes<'_>,
        listed: Option<&ObjectInfo>,
    ) -> Result<bool, StoreError> {
        let size = local.size;
        if self.confirm != Confirm::EtagMd5 {
            return Ok(false);
        }
        // What this handle's put sent, taken whatever the outcome (no stale entry is left).
        let sent = match listed {
            None => self
                .sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(key.as_str()),
            Some(_) => None,
        };
        // After a put (no listing at hand), what the key holds now is asked with a `HEAD`, not
        // taken from the put's answer: a writer who replaced the object since is seen.
        let (stored_size, etag) = match listed {
            Some(info) => (info.size, info.etag.clone()),
            None => {
                let path = self.path(key)?;
                match self.rt.block_on(self.client.head(&path)) {
                    Ok(meta) => (meta.size, meta.e_tag),
                    Err(object_store::Error::NotFound { .. }) => return Ok(false),
                    Err(e) => return Err(self.err("stat", key.as_str(), e)),
                }
            }
        };
        let Some(etag) = etag else {
            return Ok(false);
        };
        if stored_size != size {
            return Ok(false);
        }
        // What this handle's put sent: its size and SHA-256 were checked on the way out, so
        // these are the forms of the promised bytes.
        if let Some(sent) = sent {
            return Ok(etag::matches(&etag, &sent));
        }
        if let Some(md5) = local.md5 {
            let etag = etag.trim_matches('"');
            if etag.eq_ignore_ascii_case(md5) {
                return Ok(true);
            }
            if !etag.contains('-') {
                // A plain MD5, and not the bytes' one: no need to read them.
                return Ok(false);
            }
        }
        let local = etag::md5_etags(local.bytes, size, PART_SIZE).map_err(|e| StoreError::Io {
            op: "read seed source",
            store: self.shown.clone(),
            key: key.to_string(),
            cause: e,
        })?;
        Ok(etag::matches(&etag, &local))
    }

    fn default_parallelism(&self) -> usize {
        16
    }

    fn lookup(&self) -> Lookup {
        Lookup::Listing
    }
}
