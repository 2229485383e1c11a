//! `offkit build`: a kit source folder → a signed, reproducible `NAME-VERSION.kit.tar.zst`, and
//! `offkit sign` ([`cosign`]), which adds a co-signer to a built kit.
//!
//! A source is scanned and checked first ([`source`], [`config`]). Then one read of every source
//! file: each file is hashed (SHA-256 and SHA-1 for the SBOM) as it is packed into payload frames
//! that compress in parallel ([`frames`]), so the digests that get signed are those of the exact
//! bytes written. Then the kit's SBOM, manifest (checked against the format's rules), SHA256SUMS
//! and signatures are made, and the kit is assembled: the header frame (written by
//! [`crate::kit::frame::header_tar`], the same writer `sign` uses), payload frames before
//! `sboms/kit.spdx.json`, the SBOM's frame, the remaining payload frames. The result depends only
//! on the source's content, `kit.toml`, the creation time and the compression level.

pub mod config;
pub mod cosign;
pub mod frames;
mod payload;
pub mod source;

use std::collections::HashMap;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::exit::{Exit, ExitCoded};
use crate::kit::digest::Sha256Hex;
use crate::kit::dsse::{Statement, Subject, SubjectDigest};
use crate::kit::frame::{
    HeaderEntries, HeaderLimit, append_entry, compress_frame, header_frame, header_tar,
    new_compressor,
};
use crate::kit::layout::{
    FORMAT_MARKER, FORMAT_MARKER_V2, KIT_SBOM, LAYOUT, MANIFEST, MANIFEST_SCHEMA,
    MANIFEST_SCHEMA_V2,
};
use crate::kit::manifest::{
    DestructiveEntry, FileEntry, FrameEntry, Manifest, MigrationEntry, ModuleEntry, PayloadSummary,
    RealignEntry, RequirementEntry, SeedEntry, TargetEntry, ToolEntry, media_type_for,
};
use crate::kit::names::Timestamp;
use crate::kit::path::KitPath;
use crate::kit::sums::{self, SumLine};
use crate::kit::tar::END_OF_ARCHIVE;
use crate::sbom::spdx::{SbomFile, SbomInput};
use crate::trust::keys::{KeyId, SecretKey};
use crate::trust::sign::sign_envelope;

pub use config::KitConfig;
pub use payload::FileFacts;
pub use source::KitSource;
use source::Role;

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
    /// The channel's previous kit (`--previous`): every migration it shipped must be in this one,
    /// unchanged or with a declared realignment.
    pub previous: Option<std::path::PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            level: 3,
            source_date_epoch: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            overwrite: Overwrite::Refuse,
            previous: None,
        }
    }
}

/// A built kit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildOutput {
    /// The kit file.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: Sha256Hex,
    /// Its size in bytes.
    pub size: u64,
    /// Keyids of the signers, in signing order.
    pub signers: Vec<KeyId>,
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
        keyid: KeyId,
    },
    /// The manifest the source makes breaks a format rule (a bug: the source checks should have
    /// refused it).
    #[error("the manifest breaks a format rule: {0}")]
    Manifest(String),
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
    /// The previous kit could not be read.
    #[error("the previous kit {path}: {message}")]
    Previous {
        /// The kit.
        path: String,
        /// What failed.
        message: String,
    },
    /// Migrations the previous kit shipped were changed or removed.
    #[error(
        "migrations shipped in {previous} were changed or removed: {}; a shipped migration must never change (sites refuse it on its checksum): ship a new migration, or declare the change in kit.toml [realign] with the old checksum and why",
        changes.join("; ")
    )]
    HistoryChanged {
        /// The previous kit.
        previous: String,
        /// One line per migration.
        changes: Vec<String>,
    },
    /// The trust versions in the source's `trust/` do not form a chain.
    #[error("the trust versions in trust/ cannot be carried")]
    Trust(#[source] crate::trust::store::StoreError),
    /// The kit would pass a limit every verifier enforces.
    #[error("the kit cannot be built")]
    Limit(#[from] HeaderLimit),
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
            BuildError::Manifest(_) => Exit::Internal,
            BuildError::NotUtf8 { .. }
            | BuildError::BadTime(_)
            | BuildError::Limit(_)
            | BuildError::HistoryChanged { .. } => Exit::InvalidSource,
            BuildError::Trust(e) if e.exit() == Exit::Io => Exit::Io,
            BuildError::Trust(_) => Exit::InvalidSource,
            _ => Exit::Io,
        }
    }
}

/// Refuses `manifest` when it changes or drops a migration the previous kit (`previous`) shipped,
/// unless the change is declared (a realignment from the shipped checksum). The previous kit's
/// header is read without authentication: it is the release team's own kit, and a forged one
/// could only make this check weaker, never the kit.
fn check_history(manifest: &Manifest, previous: &Path) -> Result<(), BuildError> {
    use crate::kit::reader::{Keep, KitReader};
    let fail = |message: String| BuildError::Previous {
        path: previous.display().to_string(),
        message,
    };
    let header = KitReader::open(previous, crate::kit::layout::Limits::default())
        .and_then(|mut r| r.read_header(Keep::All))
        .map_err(|e| fail(e.to_string()))?;
    let old: Manifest =
        serde_json::from_slice(&header.manifest.bytes).map_err(|e| fail(e.to_string()))?;
    let mut changes = Vec::new();
    for (module, shipped) in old.migrations() {
        let now = manifest
            .modules
            .iter()
            .find(|m| m.name == module.name)
            .and_then(|m| m.migrations.iter().find(|x| x.name == shipped.name));
        let key = format!("{}/{}", module.name, shipped.name);
        match now {
            None => changes.push(format!("{key} removed")),
            Some(m) if m.file.sha256 == shipped.file.sha256 => {}
            Some(m)
                if m.realign
                    .as_ref()
                    .is_some_and(|r| r.from == shipped.file.sha256) => {}
            Some(m) => changes.push(format!(
                "{key} changed ({} → {})",
                shipped.file.sha256, m.file.sha256
            )),
        }
    }
    if changes.is_empty() {
        Ok(())
    } else {
        Err(BuildError::HistoryChanged {
            previous: previous.display().to_string(),
            changes,
        })
    }
}

/// Reads the trust versions of the source's `trust/` and checks that they form a chain a site
/// can walk (the first signed by its own root keys, each next by the one before and itself);
/// [`header_tar`] enforces their limits.
fn trust_versions(source: &KitSource) -> Result<Vec<(u64, Vec<u8>)>, BuildError> {
    use crate::trust::store::{check_chain, read_version};
    let versions = source
        .trust_versions
        .iter()
        .map(|(_, path)| read_version(path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BuildError::Trust)?;
    check_chain(&versions).map_err(BuildError::Trust)?;
    Ok(versions
        .into_iter()
        .map(|v| (v.version(), v.bytes().to_vec()))
        .collect())
}

/// The kit's SLSA provenance v1 (docs/FORMAT.md, "provenance.dsse.json"): a DSSE envelope signed
/// by the building keys over an in-toto statement whose subject is `manifest.json` (which names
/// every file of the kit) — what was built (the source tree's digest), from what parameters
/// (`kit.toml`, the compression level), by which builder. Nothing of the build host enters it, so
/// it is as reproducible as the kit.
fn provenance(
    source: &KitSource,
    facts: &[payload::FileFacts],
    manifest_bytes: &[u8],
    created: &Timestamp,
    opts: &BuildOptions,
    keys: &[SecretKey],
) -> Result<Vec<u8>, BuildError> {
    use crate::kit::layout::{OFFKIT_BUILD_TYPE, SLSA_PROVENANCE_TYPE, STATEMENT_TYPE};
    // The source tree: `sha256  path` lines of its files in path order, as SHA256SUMS writes them.
    // Hashed as it is made: a million-file source's tree is not held.
    let mut tree = <sha2::Sha256 as sha2::Digest>::new();
    for (f, x) in source.files.iter().zip(facts) {
        sha2::Digest::update(&mut tree, format!("{}  {}\n", x.sha256, f.path).as_bytes());
    }
    let tree = hex::encode(sha2::Digest::finalize(tree));
    let toml_path = source.root.join("kit.toml");
    let toml = std::fs::read(&toml_path).map_err(|e| BuildError::Source {
        path: toml_path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut kit_toml = serde_json::json!({"sha256": crate::util::sha256_hex(&toml)});
    if toml.len() <= 64 << 10 {
        kit_toml["content"] = String::from_utf8_lossy(&toml).into_owned().into();
    }
    let statement = serde_json::json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": MANIFEST, "digest": {"sha256": crate::util::sha256_hex(manifest_bytes)}}],
        "predicateType": SLSA_PROVENANCE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": OFFKIT_BUILD_TYPE,
                "externalParameters": {
                    "kitToml": kit_toml,
                    "compressionLevel": opts.level,
                },
                "resolvedDependencies": [{
                    "name": "kit-source",
                    "digest": {"sha256": tree},
                    "annotations": {
                        "files": source.files.len(),
                        "trustVersions": source.trust_versions.len(),
                    },
                }],
            },
            "runDetails": {
                "builder": {
                    "id": "https://offkit.dev/builder/offkit",
                    "version": {"offkit": env!("CARGO_PKG_VERSION")},
                },
                "metadata": {"startedOn": created.as_str(), "finishedOn": created.as_str()},
            },
        },
    });
    let payload =
        serde_json::to_vec(&statement).map_err(|e| BuildError::Manifest(e.to_string()))?;
    Ok(sign_envelope(&payload, keys).to_bytes())
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
                keyid: k.keyid().clone(),
            });
        }
    }
    let (created, reproducible) = creation_time(source, opts.source_date_epoch)?;
    let mtime = created.unix_seconds();
    let carried = trust_versions(source)?;
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| BuildError::Write { path, source }
    };

    // Seeds past one page are listed in pages (an offkit/v2 kit), cut by their paths alone.
    let seed_files: Vec<usize> = (0..source.files.len())
        .filter(|&i| matches!(source.files[i].role, Role::Seed { .. }))
        .collect();
    let page_starts: Vec<usize> =
        crate::kit::pages::starts(seed_files.iter().map(|&i| &source.files[i].path))
            .into_iter()
            .map(|s| seed_files[s])
            .collect();
    let paged = page_starts.len() > 1;
    let page_starts = if paged { page_starts } else { Vec::new() };

    // A source far past what a verifier reads is refused before any payload file is hashed.
    crate::kit::frame::check_file_count(source.files.iter().filter_map(|f| {
        let seed = matches!(f.role, Role::Seed { .. });
        (!(paged && seed)).then_some((f.path.as_str(), seed))
    }))?;

    // Pass over the payload: hash and compress every file once.
    let payload_tmp = tempfile::tempfile_in(out_dir).map_err(write_err(out_dir))?;
    let packed = payload::pack(
        &source.files,
        &page_starts,
        mtime,
        opts,
        payload_tmp.try_clone().map_err(write_err(out_dir))?,
        &format!(
            "{} (the compressed payload, before the kit is assembled)",
            out_dir.display()
        ),
    )?;
    let mut compressor = new_compressor(opts.level).map_err(write_err(out_dir))?;
    let mut frame_of = |path: &str, bytes: &[u8]| {
        let mut tar = Vec::new();
        append_entry(&mut tar, path, bytes, mtime);
        compress_frame(&mut compressor, &tar).map_err(write_err(out_dir))
    };

    // The pages, now that their seeds are hashed: each compressed into its frame as it is made
    // (its SHA-1 kept for the SBOM), so one page's bytes are held at a time.
    let mut pages = Vec::new();
    let mut page_frames = Vec::new();
    let mut page_sha1 = Vec::new();
    if paged {
        let lines: Vec<crate::kit::pages::SeedLine> = seed_files
            .iter()
            .map(|&i| crate::kit::pages::SeedLine {
                path: source.files[i].path.clone(),
                sha256: packed.facts[i].sha256.clone(),
                size: packed.facts[i].size,
            })
            .collect();
        for page in crate::kit::pages::cut_each(&lines) {
            page_sha1.push(hex::encode(<sha1::Sha1 as sha2::Digest>::digest(
                &page.bytes,
            )));
            page_frames.push(frame_of(page.entry.file.path.as_str(), &page.bytes)?);
            pages.push(page.entry);
        }
    }

    // The kit's own SBOM lists every other payload file (the pages, not the seeds they list).
    let mut sbom_files: Vec<SbomFile> = source
        .files
        .iter()
        .zip(&packed.facts)
        .filter(|(f, _)| !(paged && matches!(f.role, Role::Seed { .. })))
        .map(|(f, facts)| SbomFile {
            path: f.path.as_str(),
            sha256: facts.sha256.as_str(),
            sha1: &facts.sha1,
        })
        .chain(pages.iter().zip(&page_sha1).map(|(p, sha1)| SbomFile {
            path: p.file.path.as_str(),
            sha256: p.file.sha256.as_str(),
            sha1,
        }))
        .collect();
    sbom_files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let sbom_bytes = crate::sbom::spdx::generate(&SbomInput {
        name: source.config.name.as_str(),
        version: source.config.version.as_str(),
        created: created.as_str(),
        tool_version: env!("CARGO_PKG_VERSION"),
        files: sbom_files,
    });
    let sbom_entry = FileEntry {
        path: kit_path(KIT_SBOM),
        sha256: Sha256Hex::of(&sbom_bytes),
        size: sbom_bytes.len() as u64,
    };
    // The frames slotted into the payload: the SBOM's, then each page's (`packed.slots`).
    let mut slotted = vec![frame_of(KIT_SBOM, &sbom_bytes)?];
    slotted.append(&mut page_frames);
    drop(sbom_bytes);
    if slotted.len() != packed.slots.len() {
        return Err(BuildError::Manifest(format!(
            "{} frames to slot in, {} places marked",
            slotted.len(),
            packed.slots.len()
        )));
    }
    let mut manifest = make_manifest(source, &packed.facts, sbom_entry, pages, &created)?;
    // The frame index: the payload frames with the slotted ones in their places.
    let mut frames = Vec::with_capacity(packed.frames.len() + slotted.len());
    let mut from = 0;
    for ((_, before), frame) in packed.slots.iter().zip(&slotted) {
        frames.extend_from_slice(&packed.frames[from..*before]);
        frames.push(FrameEntry {
            size: frame.len() as u64,
            sha256: Sha256Hex::of(frame),
        });
        from = *before;
    }
    frames.extend_from_slice(&packed.frames[from..]);
    manifest.payload.frames = frames;
    manifest
        .check()
        .map_err(|e| BuildError::Manifest(e.to_string()))?;
    if let Some(previous) = &opts.previous {
        check_history(&manifest, previous)?;
    }
    let manifest_bytes = manifest.to_bytes();

    // SHA256SUMS covers offkit-layout, manifest.json and every payload file.
    let mut lines: Vec<SumLine> = manifest
        .files()
        .map(|f| SumLine {
            path: f.path.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    let marker = if paged {
        FORMAT_MARKER_V2
    } else {
        FORMAT_MARKER
    };
    lines.push(SumLine {
        path: kit_path(LAYOUT),
        sha256: Sha256Hex::of(marker.as_bytes()),
    });
    lines.push(SumLine {
        path: kit_path(MANIFEST),
        sha256: Sha256Hex::of(&manifest_bytes),
    });
    let sums_bytes = sums::format(&lines);
    // Every signer's detached signature: the first as SHA256SUMS.sig, the others by keyid.
    let sums_sig = keys[0].sign(&sums_bytes);
    let mut cosigner_sigs: Vec<(String, Vec<u8>)> = keys[1..]
        .iter()
        .map(|k| (k.keyid().to_string(), k.sign(&sums_bytes).to_vec()))
        .collect();
    cosigner_sigs.sort();
    let subjects = sums::parse(&sums_bytes)
        .unwrap_or_default()
        .into_iter()
        .map(|l| Subject {
            name: l.path.to_string(),
            digest: SubjectDigest {
                sha256: l.sha256.to_string(),
            },
        })
        .collect();
    let envelope = sign_envelope(&Statement::new(subjects, &manifest).to_bytes(), keys);

    let header_tar_bytes = header_tar(
        &HeaderEntries {
            layout: marker.as_bytes(),
            manifest: &manifest_bytes,
            sums: &sums_bytes,
            sums_sig: &sums_sig,
            cosigner_sigs: &cosigner_sigs,
            trust_versions: &carried,
            provenance: Some(&provenance(
                source,
                &packed.facts,
                &manifest_bytes,
                &created,
                opts,
                keys,
            )?),
            dsse: &envelope.to_bytes(),
        },
        mtime,
    )?;
    let header = header_frame(&header_tar_bytes).map_err(write_err(out_dir))?;
    drop(header_tar_bytes);

    // Assemble: header, payload before the SBOM, the SBOM, the rest.
    let final_path = out_dir.join(format!(
        "{}-{}.kit.tar.zst",
        manifest.name, manifest.version
    ));
    let mut out = tempfile::Builder::new()
        .prefix(".offkit-build-")
        .tempfile_in(out_dir)
        .map_err(|e| write_err(out_dir)(crate::util::without_temp_path(e)))?;
    let mut hashing = HashingWriter::new(out.as_file_mut());
    let mut payload_file = payload_tmp;
    (|| -> io::Result<()> {
        hashing.write_all(&header)?;
        payload_file.rewind()?;
        let mut at = 0;
        for ((offset, _), frame) in packed.slots.iter().zip(&slotted) {
            io::copy(&mut (&mut payload_file).take(offset - at), &mut hashing)?;
            hashing.write_all(frame)?;
            at = *offset;
        }
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
        signers: keys.iter().map(|k| k.keyid().clone()).collect(),
        written,
        reproducible,
        manifest,
    })
}

/// Moves the finished temp file to `path` unless an identical kit is there already.
fn place(
    tmp: tempfile::NamedTempFile,
    path: &Path,
    sha256: &Sha256Hex,
    overwrite: Overwrite,
) -> Result<bool, BuildError> {
    let write_err = |source| BuildError::Write {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        if Sha256Hex::of_file(path).map_err(write_err)? == *sha256 {
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

/// The end-of-archive marker goes after the last payload entry.
pub(crate) fn end_of_archive() -> &'static [u8] {
    &END_OF_ARCHIVE
}

/// The creation time, and whether it is reproducible (from SOURCE_DATE_EPOCH or kit.toml).
fn creation_time(source: &KitSource, epoch: Option<i64>) -> Result<(Timestamp, bool), BuildError> {
    if let Some(e) = epoch {
        let t = OffsetDateTime::from_unix_timestamp(e)
            .map_err(|err| BuildError::BadTime(err.to_string()))?;
        return Ok((Timestamp::utc(t), true));
    }
    if let Some(c) = &source.config.created {
        return Ok((Timestamp::utc(c.at()), true));
    }
    Ok((Timestamp::utc(OffsetDateTime::now_utc()), false))
}

fn make_manifest(
    source: &KitSource,
    facts: &[FileFacts],
    kit_sbom: FileEntry,
    pages: Vec<crate::kit::pages::PageEntry>,
    created: &Timestamp,
) -> Result<Manifest, BuildError> {
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
    let rollbacks: HashMap<(&str, &str), usize> = source
        .files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match &f.role {
            Role::Rollback { module, name } => Some(((module.as_str(), name.as_str()), i)),
            _ => None,
        })
        .collect();
    let (mut seeds, mut sboms, mut attestations) = (Vec::new(), vec![kit_sbom], Vec::new());
    for (i, f) in source.files.iter().enumerate() {
        match &f.role {
            Role::Migration { module, name } => {
                let rollback = rollbacks.get(&(module.as_str(), name.as_str())).copied();
                let declared = config
                    .destructive
                    .get(&(module.clone(), name.as_str().to_owned()));
                let findings = &facts[i].findings;
                if declared.is_none() && !findings.is_empty() {
                    // The source was checked when scanned; the bytes packed are what counts.
                    return Err(BuildError::Source {
                        path: source.files[i].path.to_string(),
                        message: format!(
                            "destructive statements not declared in kit.toml (the file changed \
                             while the kit was being built?): {}",
                            findings[0]
                        ),
                    });
                }
                let destructive = declared.map(|reason| {
                    let mut kinds: Vec<String> = findings
                        .iter()
                        .map(|f| f.kind.as_str().to_owned())
                        .collect();
                    kinds.sort();
                    kinds.dedup();
                    DestructiveEntry {
                        reason: reason.clone(),
                        kinds,
                    }
                });
                if let Some(m) = modules.iter_mut().find(|m| &m.name == module) {
                    m.migrations.push(MigrationEntry {
                        name: name.clone(),
                        category: name.category(),
                        file: entry(i),
                        tx: facts[i].tx,
                        rollback: rollback.map(entry),
                        destructive,
                        realign: config
                            .realign
                            .get(&(module.clone(), name.as_str().to_owned()))
                            .map(|(from, reason)| RealignEntry {
                                from: from.clone(),
                                reason: reason.clone(),
                            }),
                    });
                }
            }
            Role::Rollback { .. } => {}
            Role::Seed { .. } if !pages.is_empty() => {}
            Role::Seed { key } => seeds.push(SeedEntry {
                key: key.clone(),
                file: entry(i),
                media_type: media_type_for(key.as_str()).to_owned(),
            }),
            Role::Sbom => sboms.push(entry(i)),
            Role::Attestation => attestations.push(entry(i)),
        }
    }
    for m in &mut modules {
        m.migrations.sort_by_key(|mig| mig.name.order_key());
    }
    sboms.sort_by(|a, b| a.path.cmp(&b.path));
    let mut manifest = Manifest {
        schema: if pages.is_empty() {
            MANIFEST_SCHEMA
        } else {
            MANIFEST_SCHEMA_V2
        }
        .to_owned(),
        name: config.name.clone(),
        version: config.version.clone(),
        channel: config.channel.clone(),
        sequence: config.sequence,
        description: config.description.clone(),
        created: created.clone(),
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
        pages,
        sboms,
        attestations,
        sigstore: config.sigstore.clone(),
        payload: PayloadSummary {
            files: 0,
            bytes: 0,
            frames: Vec::new(),
        },
        tool: ToolEntry {
            name: "offkit".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    };
    // A declared bundle that is not one is the release engineer's to know now, not the site's.
    for declared in &manifest.sigstore {
        if let Some(f) = source.files.iter().find(|f| f.path == declared.bundle) {
            let bytes = std::fs::read(&f.disk).map_err(|e| BuildError::Source {
                path: f.path.to_string(),
                message: e.to_string(),
            })?;
            crate::trust::sigstore::parse_bundle(&bytes).map_err(|e| BuildError::Source {
                path: f.path.to_string(),
                message: format!("declared in kit.toml as a Sigstore bundle: {e}"),
            })?;
        }
    }
    // Totals that overflow are refused by `Manifest::check` right after.
    let (files, bytes) = manifest.totals().unwrap_or((0, 0));
    manifest.payload.files = files;
    manifest.payload.bytes = bytes;
    Ok(manifest)
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

    fn finish(self) -> (Sha256Hex, u64) {
        (Sha256Hex::from_hasher(self.hasher), self.count)
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
