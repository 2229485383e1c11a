//! `offkit build`: a checked kit source → a signed, reproducible `NAME-VERSION.kit.tar.zst`.
//!
//! One read of every source file: each file is hashed (SHA-256 and SHA-1 for the SBOM) as it is
//! packed into payload frames that compress in parallel ([`frames`]), so the digests that get
//! signed are those of the exact bytes written. Then the kit's SBOM, manifest, SHA256SUMS and
//! signatures are made, and the kit is assembled: header frame, payload frames before
//! `sboms/kit.spdx.json`, the SBOM's frame, the remaining payload frames. The result depends only
//! on the source's content, `kit.toml`, the creation time and the compression level.

pub mod frames;
mod payload;

use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::layout::{
    DSSE, FORMAT_MARKER, KIT_SBOM, LAYOUT, MANIFEST, MANIFEST_SCHEMA, SUMS, SUMS_SIG,
};
use crate::kit::manifest::{
    FileEntry, Manifest, MigrationEntry, ModuleEntry, PayloadSummary, RequirementEntry, SeedEntry,
    TargetEntry, ToolEntry, media_type_for,
};
use crate::kit::path::KitPath;
use crate::kit::source::{KitSource, Role};
use crate::kit::tar::{END_OF_ARCHIVE, header_bytes, padding};
use crate::sbom::spdx::{SbomFile, SbomInput};
use crate::trust::dsse::{Envelope, Statement, Subject, SubjectDigest};
use crate::trust::keys::SecretKey;
use crate::trust::sums::{self, SumLine};
use crate::util::sha256_hex;

pub use payload::FileFacts;

/// zstd level of the header frame, whatever `--level` says: the header is small, and a fixed
/// level lets `offkit sign` rewrite it the same way.
pub const HEADER_LEVEL: i32 = 19;

/// What to do when the output file already exists with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse (an identical existing kit is accepted as is).
    Refuse,
    /// Replace it atomically.
    Replace,
}

/// Build settings.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// zstd level (1-22).
    pub level: i32,
    /// Creation time; `None` takes kit.toml's `created` or the current time.
    pub source_date_epoch: Option<i64>,
    /// Compression threads.
    pub threads: usize,
    /// Existing-output policy.
    pub overwrite: Overwrite,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            level: 3,
            source_date_epoch: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            overwrite: Overwrite::Refuse,
        }
    }
}

/// A built kit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutput {
    /// The kit file.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Keyids of the signers, in signing order.
    pub signers: Vec<String>,
    /// False when an identical kit was already there.
    pub written: bool,
    /// True when the creation time came from SOURCE_DATE_EPOCH or kit.toml (reproducible).
    pub reproducible: bool,
    /// The manifest that was signed.
    pub manifest: Manifest,
}

/// Why a build failed after the source was checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No signing key was given.
    #[error("at least one signing key is required (--key)")]
    NoKey,
    /// The same key was given twice.
    #[error("key {keyid} was given twice")]
    DuplicateKey {
        /// The keyid.
        keyid: String,
    },
    /// A source file could not be read, or changed while being read.
    #[error("{path}: {message}")]
    Source {
        /// The file.
        path: String,
        /// What happened.
        message: String,
    },
    /// A migration is not UTF-8 text.
    #[error("{path}: migration SQL must be UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: String,
    },
    /// The creation time is not usable.
    #[error("invalid creation time: {0}")]
    BadTime(String),
    /// The output exists with other content.
    #[error("{path} exists and differs from this build; pass --force to replace it")]
    OutputExists {
        /// The existing file.
        path: String,
    },
    /// Writing the kit failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ExitCoded for BuildError {
    fn exit(&self) -> Exit {
        match self {
            BuildError::NoKey | BuildError::DuplicateKey { .. } => Exit::Usage,
            BuildError::NotUtf8 { .. } | BuildError::BadTime(_) => Exit::InvalidSource,
            _ => Exit::Io,
        }
    }
}

/// Builds and signs a kit from a checked source into `out_dir`.
pub fn build(
    source: &KitSource,
    keys: &[SecretKey],
    out_dir: &Path,
    opts: &BuildOptions,
) -> Result<BuildOutput, BuildError> {
    if keys.is_empty() {
        return Err(BuildError::NoKey);
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].iter().any(|o| o.keyid() == k.keyid()) {
            return Err(BuildError::DuplicateKey {
                keyid: k.keyid().to_owned(),
            });
        }
    }
    let (created, reproducible) = creation_time(source, opts.source_date_epoch)?;
    let created_text = rfc3339(created);
    let mtime = u64::try_from(created.unix_timestamp()).unwrap_or(0);
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| BuildError::Write { path, source }
    };

    // Pass over the payload: hash and compress every file once.
    let payload_tmp = tempfile::tempfile_in(out_dir).map_err(write_err(out_dir))?;
    let packed = payload::pack(
        &source.files,
        mtime,
        opts,
        payload_tmp.try_clone().map_err(write_err(out_dir))?,
    )?;

    // The kit's own SBOM lists every other payload file.
    let sbom_bytes = crate::sbom::spdx::generate(&SbomInput {
        name: &source.config.name,
        version: &source.config.version,
        created: &created_text,
        tool_version: env!("CARGO_PKG_VERSION"),
        files: source
            .files
            .iter()
            .zip(&packed.facts)
            .map(|(f, facts)| SbomFile {
                path: f.path.as_str(),
                sha256: &facts.sha256,
                sha1: &facts.sha1,
            })
            .collect(),
    });
    let sbom_entry = FileEntry {
        path: kit_path(KIT_SBOM),
        sha256: sha256_hex(&sbom_bytes),
        size: sbom_bytes.len() as u64,
    };

    let manifest = make_manifest(source, &packed.facts, sbom_entry.clone(), &created_text);
    let manifest_bytes = manifest.to_bytes();

    // SHA256SUMS covers offkit-layout, manifest.json and every payload file.
    let mut lines: Vec<SumLine> = manifest
        .files()
        .map(|f| SumLine {
            path: f.path.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    lines.push(SumLine {
        path: kit_path(LAYOUT),
        sha256: sha256_hex(FORMAT_MARKER.as_bytes()),
    });
    lines.push(SumLine {
        path: kit_path(MANIFEST),
        sha256: sha256_hex(&manifest_bytes),
    });
    let sums_bytes = sums::format(&lines);
    let sums_sig = keys[0].sign(&sums_bytes);
    let subjects = sums::parse(&sums_bytes)
        .unwrap_or_default()
        .into_iter()
        .map(|l| Subject {
            name: l.path.to_string(),
            digest: SubjectDigest { sha256: l.sha256 },
        })
        .collect();
    let envelope = Envelope::sign(&Statement::new(subjects, &manifest).to_bytes(), keys);

    // Header frame.
    let mut header = Vec::new();
    for (name, bytes) in [
        (LAYOUT, FORMAT_MARKER.as_bytes()),
        (MANIFEST, &manifest_bytes[..]),
        (SUMS, &sums_bytes[..]),
        (SUMS_SIG, &sums_sig[..]),
        (DSSE, &envelope.to_bytes()[..]),
    ] {
        append_entry(&mut header, name, bytes, mtime);
    }
    let mut compressor = frames::new_compressor(opts.level).map_err(write_err(out_dir))?;
    let header_frame =
        frames::compress_frame(&mut compressor, &header).map_err(write_err(out_dir))?;
    let mut sbom_tar = Vec::new();
    append_entry(&mut sbom_tar, KIT_SBOM, &sbom_bytes, mtime);
    let sbom_frame =
        frames::compress_frame(&mut compressor, &sbom_tar).map_err(write_err(out_dir))?;

    // Assemble: header, payload before the SBOM, the SBOM, the rest.
    let final_path = out_dir.join(format!(
        "{}-{}.kit.tar.zst",
        manifest.name, manifest.version
    ));
    let mut out = tempfile::Builder::new()
        .prefix(".offkit-build-")
        .tempfile_in(out_dir)
        .map_err(write_err(out_dir))?;
    let mut hashing = HashingWriter::new(out.as_file_mut());
    let mut payload_file = payload_tmp;
    (|| -> io::Result<()> {
        hashing.write_all(&header_frame)?;
        payload_file.rewind()?;
        io::copy(
            &mut (&mut payload_file).take(packed.split_offset),
            &mut hashing,
        )?;
        hashing.write_all(&sbom_frame)?;
        io::copy(&mut payload_file, &mut hashing)?;
        hashing.flush()
    })()
    .map_err(write_err(&final_path))?;
    let (sha256, size) = hashing.finish();
    // A kit is public data: readable by everyone, like any release artifact.
    use std::os::unix::fs::PermissionsExt;
    out.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| out.as_file().sync_all())
        .map_err(write_err(&final_path))?;

    let written = place(out, &final_path, &sha256, opts.overwrite)?;
    Ok(BuildOutput {
        path: final_path,
        sha256,
        size,
        signers: keys.iter().map(|k| k.keyid().to_owned()).collect(),
        written,
        reproducible,
        manifest,
    })
}

use std::io::Read;

/// Moves the finished temp file to `path` unless an identical kit is there already.
fn place(
    tmp: tempfile::NamedTempFile,
    path: &Path,
    sha256: &str,
    overwrite: Overwrite,
) -> Result<bool, BuildError> {
    let write_err = |source| BuildError::Write {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        let existing = crate::util::sha256_file(path).map_err(write_err)?;
        if existing == sha256 {
            return Ok(false);
        }
        if overwrite == Overwrite::Refuse {
            return Err(BuildError::OutputExists {
                path: path.display().to_string(),
            });
        }
    }
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    if let Some(dir) = path.parent() {
        crate::util::sync_dir(dir).map_err(write_err)?;
    }
    Ok(true)
}

fn kit_path(s: &str) -> KitPath {
    // The fixed names in `layout` are valid paths by construction.
    KitPath::new(s).unwrap_or_else(|_| unreachable!("layout names are valid paths"))
}

fn append_entry(out: &mut Vec<u8>, name: &str, bytes: &[u8], mtime: u64) {
    out.extend(header_bytes(name, bytes.len() as u64, mtime));
    out.extend_from_slice(bytes);
    out.resize(out.len() + padding(bytes.len() as u64), 0);
}

/// The end-of-archive marker goes after the last payload entry.
pub(crate) fn end_of_archive() -> &'static [u8] {
    &END_OF_ARCHIVE
}

fn creation_time(
    source: &KitSource,
    epoch: Option<i64>,
) -> Result<(OffsetDateTime, bool), BuildError> {
    if let Some(e) = epoch {
        let t = OffsetDateTime::from_unix_timestamp(e)
            .map_err(|err| BuildError::BadTime(err.to_string()))?;
        return Ok((t, true));
    }
    if let Some(c) = &source.config.created {
        let t = crate::kit::config::parse_time(c).ok_or_else(|| BuildError::BadTime(c.clone()))?;
        return Ok((t.to_offset(time::UtcOffset::UTC), true));
    }
    let now = OffsetDateTime::now_utc();
    Ok((now.replace_nanosecond(0).unwrap_or(now), false))
}

/// `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn make_manifest(
    source: &KitSource,
    facts: &[FileFacts],
    kit_sbom: FileEntry,
    created: &str,
) -> Manifest {
    let config = &source.config;
    let entry = |i: usize| FileEntry {
        path: source.files[i].path.clone(),
        sha256: facts[i].sha256.clone(),
        size: facts[i].size,
    };
    let mut modules: Vec<ModuleEntry> = source
        .modules()
        .into_iter()
        .map(|name| ModuleEntry {
            schema: config.schema_of(&name),
            name,
            migrations: Vec::new(),
        })
        .collect();
    let (mut seeds, mut sboms, mut attestations) = (Vec::new(), vec![kit_sbom], Vec::new());
    for (i, f) in source.files.iter().enumerate() {
        match &f.role {
            Role::Migration { module, name } => {
                let rollback = source.files.iter().position(|r| {
                    matches!(&r.role, Role::Rollback { module: m, name: n } if m == module && n == name)
                });
                if let Some(m) = modules.iter_mut().find(|m| &m.name == module) {
                    m.migrations.push(MigrationEntry {
                        name: name.to_string(),
                        category: name.category(),
                        file: entry(i),
                        transactional: facts[i].transactional,
                        rollback: rollback.map(entry),
                    });
                }
            }
            Role::Rollback { .. } => {}
            Role::Seed { key } => seeds.push(SeedEntry {
                key: key.clone(),
                file: entry(i),
                media_type: media_type_for(key).to_owned(),
            }),
            Role::Sbom => sboms.push(entry(i)),
            Role::Attestation => attestations.push(entry(i)),
        }
    }
    for m in &mut modules {
        m.migrations.sort_by_key(|mig| {
            crate::migrate::name::MigrationName::parse(&mig.name)
                .map(|n| n.order_key())
                .ok()
        });
    }
    sboms.sort_by(|a, b| a.path.cmp(&b.path));
    let mut manifest = Manifest {
        schema: MANIFEST_SCHEMA.to_owned(),
        name: config.name.clone(),
        version: config.version.clone(),
        channel: config.channel.clone(),
        sequence: config.sequence,
        description: config.description.clone(),
        created: created.to_owned(),
        expires: config.expires.clone(),
        requires: config
            .requires
            .iter()
            .map(|r| RequirementEntry {
                name: r.name.clone(),
                min_version: r.min_version.clone(),
            })
            .collect(),
        target: TargetEntry {
            database: config.target,
        },
        modules,
        seeds,
        sboms,
        attestations,
        payload: PayloadSummary { files: 0, bytes: 0 },
        tool: ToolEntry {
            name: "offkit".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    };
    manifest.payload = PayloadSummary {
        files: manifest.files().count() as u64,
        bytes: manifest.files().map(|f| f.size).sum(),
    };
    manifest
}

/// Counts and hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            count: 0,
        }
    }

    fn finish(self) -> (String, u64) {
        (hex::encode(sha2::Digest::finalize(self.hasher)), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
