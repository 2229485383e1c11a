//! `offkit trust`: the site trust store (init, update, show) and the release team's side of a
//! rotation (new, sign). Versions are TUF root metadata (docs/FORMAT.md, "Trust store").

use std::num::NonZeroUsize;
use std::path::PathBuf;

use serde::Serialize;

use super::{CliError, CliResult, Global, io_error, print_json};
use crate::exit::Exit;
use crate::kit::names::{parse_time, rfc3339};
use crate::trust::keys::{PublicKey, SecretKey};
use crate::trust::root::{RootSpec, RootVersion, short, sign_document, tuf_keyid};
use crate::trust::store::{Accepted, StoreError, TrustStore, read_version};
use crate::util::write_atomic;

/// `offkit trust …`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pin a site's first trust version (a TUF root signed by its own root keys) in a new trust
    /// store folder. Compare the keyids it prints with the release team's before trusting it.
    Init(InitArgs),
    /// Move a trust store on: accepts newer versions one at a time, in order, each only when
    /// signed by a threshold of the previous version's root keys and of its own; writes each
    /// accepted one. Files or folders of `N.root.json` files.
    Update(UpdateArgs),
    /// Show the store's versions and the keys the newest one trusts.
    Show(StoreArg),
    /// Release team: write a new, unsigned trust version (TUF root metadata).
    New(NewArgs),
    /// Release team: add a signature to a trust version (in place, atomically).
    Sign(SignArgs),
}

/// `--store DIR`.
#[derive(Debug, clap::Args)]
pub struct StoreArg {
    /// The trust store folder (give it to other commands as `--trust DIR`).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
}

/// Arguments of `offkit trust init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The first trust version, e.g. `1.root.json`.
    pub root: PathBuf,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Arguments of `offkit trust update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Trust version files, or folders holding `N.root.json` files.
    #[arg(required = true)]
    pub versions: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Arguments of `offkit trust new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The version number (the store's current version plus one).
    #[arg(long = "version", value_name = "N")]
    pub number: u64,
    /// When the version expires (RFC 3339); kits signed after it are refused until a newer version
    /// arrives.
    #[arg(long, value_name = "TIME")]
    pub expires: String,
    /// A public key that signs the next trust version. Repeatable.
    #[arg(long = "root-key", value_name = "PUB", required = true)]
    pub root_keys: Vec<PathBuf>,
    /// Distinct root keys that must sign the next version.
    #[arg(long, value_name = "K", default_value_t = NonZeroUsize::MIN)]
    pub root_threshold: NonZeroUsize,
    /// A public key that signs kits. Repeatable.
    #[arg(long = "kit-key", value_name = "PUB", required = true)]
    pub kit_keys: Vec<PathBuf>,
    /// Distinct kit keys that must sign a kit.
    #[arg(long, value_name = "K", default_value_t = NonZeroUsize::MIN)]
    pub kit_threshold: NonZeroUsize,
    /// The file to write (refuses to overwrite).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `offkit trust sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The trust version file.
    pub root: PathBuf,
    /// The signer's private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
}

/// Runs `offkit trust …`.
pub fn run(cmd: Command, global: &Global) -> CliResult {
    match cmd {
        Command::Init(a) => init(a, global),
        Command::Update(a) => update(a, global),
        Command::Show(a) => show(a, global),
        Command::New(a) => new(a, global),
        Command::Sign(a) => sign(a, global),
    }
}

#[derive(Serialize)]
struct RoleView {
    threshold: usize,
    keys: Vec<KeyView>,
}

#[derive(Serialize)]
struct KeyView {
    tuf_keyid: String,
    keyid: String,
}

#[derive(Serialize)]
struct VersionView {
    version: u64,
    expires: String,
    expired: bool,
    sha256: String,
    root: RoleView,
    kit: RoleView,
}

fn role_view(v: &RootVersion, role: &crate::trust::root::Role) -> RoleView {
    RoleView {
        threshold: role.threshold().get(),
        keys: role
            .keyids()
            .iter()
            .filter_map(|id| {
                Some(KeyView {
                    tuf_keyid: id.clone(),
                    keyid: v.key(id)?.keyid().to_string(),
                })
            })
            .collect(),
    }
}

fn version_view(v: &RootVersion) -> VersionView {
    VersionView {
        version: v.version(),
        expires: rfc3339(v.expires()),
        expired: v.expires() < time::OffsetDateTime::now_utc(),
        sha256: v.sha256(),
        root: role_view(v, v.root_role()),
        kit: role_view(v, v.kit_role()),
    }
}

fn print_version(v: &VersionView) {
    let expired = if v.expired { " (EXPIRED)" } else { "" };
    println!(
        "version {}  expires {}{expired}  sha256 {}",
        v.version, v.expires, v.sha256
    );
    for (label, role) in [("root keys", &v.root), ("kit keys ", &v.kit)] {
        println!("  {label} (threshold {}):", role.threshold);
        for k in &role.keys {
            println!("    {}  (TUF keyid {})", k.keyid, short(&k.tuf_keyid));
        }
    }
}

fn init(args: InitArgs, global: &Global) -> CliResult {
    let first = read_version(&args.root)?;
    let store = TrustStore::init(&args.store.store, first)?;
    let view = version_view(store.current());
    if global.json {
        return print_json(&view);
    }
    println!(
        "pinned trust version {} in {}",
        view.version,
        store.path().display()
    );
    print_version(&view);
    if view.expired {
        super::warn("this version has expired: kits verify only once a newer one is added");
    }
    Ok(())
}

#[derive(Serialize)]
struct UpdateReport {
    store: String,
    accepted: Vec<u64>,
    already_trusted: Vec<u64>,
    current: VersionView,
}

/// The versions named by `paths` (files, or folders of `N.root.json`), sorted by version.
fn candidates(paths: &[PathBuf]) -> Result<Vec<RootVersion>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| io_error(p.display(), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.to_string_lossy().ends_with(".root.json"))
                .collect();
            files.sort();
            for f in files {
                out.push(read_version(&f)?);
            }
        } else {
            out.push(read_version(p)?);
        }
    }
    out.sort_by_key(RootVersion::version);
    Ok(out)
}

fn update(args: UpdateArgs, global: &Global) -> CliResult {
    let mut store = TrustStore::open(&args.store.store)?;
    let mut report = UpdateReport {
        store: store.path().display().to_string(),
        accepted: Vec::new(),
        already_trusted: Vec::new(),
        current: version_view(store.current()),
    };
    let mut refused: Option<StoreError> = None;
    for v in candidates(&args.versions)? {
        let n = v.version();
        match store.accept(v) {
            Ok(Accepted::New) => report.accepted.push(n),
            Ok(Accepted::AlreadyTrusted) => report.already_trusted.push(n),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    report.current = version_view(store.current());
    if !global.json {
        for n in &report.accepted {
            println!("accepted version {n}");
        }
    }
    if let Some(e) = refused {
        if !report.accepted.is_empty() {
            eprintln!(
                "offkit: versions {:?} were accepted before the refusal; the store is at version {}",
                report.accepted, report.current.version
            );
        }
        return Err(e.into());
    }
    if global.json {
        return print_json(&report);
    }
    if report.accepted.is_empty() {
        println!(
            "nothing new: the store is at version {}",
            report.current.version
        );
    }
    print_version(&report.current);
    if report.current.expired {
        super::warn(
            "the newest trust version has expired: kits are refused until a newer one is added",
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct ShowReport {
    store: String,
    first_version: u64,
    current: VersionView,
    versions: Vec<VersionView>,
}

fn show(args: StoreArg, global: &Global) -> CliResult {
    let store = TrustStore::open(&args.store)?;
    let report = ShowReport {
        store: store.path().display().to_string(),
        first_version: store.versions()[0].version(),
        current: version_view(store.current()),
        versions: store.versions().iter().map(version_view).collect(),
    };
    if global.json {
        return print_json(&report);
    }
    println!(
        "trust store {}: versions {} to {}, each signed by the one before",
        report.store, report.first_version, report.current.version
    );
    print_version(&report.current);
    Ok(())
}

fn load_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, CliError> {
    Ok(paths
        .iter()
        .map(|p| PublicKey::load(p))
        .collect::<Result<_, _>>()?)
}

fn new(args: NewArgs, global: &Global) -> CliResult {
    let expires = parse_time(&args.expires).ok_or_else(|| {
        CliError::msg(
            Exit::Usage,
            format!("--expires {:?} is not an RFC 3339 time", args.expires),
        )
    })?;
    if args.number == 0 {
        return Err(CliError::msg(Exit::Usage, "--version starts at 1"));
    }
    let spec = RootSpec {
        version: args.number,
        expires,
        root_keys: load_keys(&args.root_keys)?,
        root_threshold: args.root_threshold,
        kit_keys: load_keys(&args.kit_keys)?,
        kit_threshold: args.kit_threshold,
    };
    let mut bytes =
        serde_json::to_vec_pretty(&spec.to_json()).map_err(|e| CliError::new(Exit::Internal, e))?;
    bytes.push(b'\n');
    // Refuses what a site would refuse (a threshold its keys cannot meet, one key twice).
    RootVersion::parse(&bytes, &args.out.display().to_string())
        .map_err(|e| CliError::new(Exit::Usage, e))?;
    // A missing folder is made, as keygen, build and split make theirs.
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
    }
    write_atomic(&args.out, &bytes, 0o644, false)
        .map_err(|e| io_error(format!("writing {}", args.out.display()), e))?;
    if global.json {
        return print_json(&serde_json::json!({
            "path": args.out.display().to_string(),
            "version": args.number,
        }));
    }
    println!(
        "{} (version {}, unsigned: sign it with the current version's root keys and its own)",
        args.out.display(),
        args.number
    );
    Ok(())
}

fn sign(args: SignArgs, global: &Global) -> CliResult {
    let key = SecretKey::load(&args.key)?;
    let shown = args.root.display().to_string();
    let bytes = read_version(&args.root)?.bytes().to_vec();
    let signed = sign_document(&bytes, &shown, &key)?;
    write_atomic(&args.root, &signed, 0o644, true)
        .map_err(|e| io_error(format!("writing {shown}"), e))?;
    let v = RootVersion::parse(&signed, &shown)?;
    let tuf = tuf_keyid(key.public());
    let in_root = v.root_role().keyids().contains(&tuf);
    let in_kit = v.kit_role().keyids().contains(&tuf);
    if global.json {
        return print_json(&serde_json::json!({
            "path": shown,
            "version": v.version(),
            "keyid": key.keyid().to_string(),
            "tuf_keyid": tuf,
            "self_signed": v.self_signed(),
        }));
    }
    println!(
        "signed {shown} (version {}) with {}",
        v.version(),
        key.keyid()
    );
    let c = v.self_signed();
    println!(
        "its own root keys: {} of {} signatures{}",
        c.signed,
        c.threshold,
        if in_root || in_kit {
            ""
        } else {
            "; this key is not one of its keys (a previous version's root key?)"
        }
    );
    Ok(())
}
