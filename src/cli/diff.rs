//! `offkit diff KIT_A KIT_B`: what changed from one kit to the next.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::common::{OptionalTrustArgs, human_bytes};
use super::inspect::read_unverified;
use super::{CliError, CliResult, Global, print_json};
use crate::diff::{Change, KitDiff, KitFacts, Package, diff, sbom_packages};
use crate::exit::Exit;
use crate::kit::path::printable;
use crate::trust::Retain;
use crate::trust::verify::{VerifiedKit, authenticate};

/// Arguments of `offkit diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The earlier kit.
    pub a: PathBuf,
    /// The later kit.
    pub b: PathBuf,
    /// With --trust both kits are verified and their SBOMs' packages compared too; without, only
    /// their headers are read (NOT VERIFIED).
    #[command(flatten)]
    pub trust: OptionalTrustArgs,
}

#[derive(Serialize)]
struct Report<'a> {
    verified: bool,
    a: Side,
    b: Side,
    #[serde(flatten)]
    diff: &'a KitDiff,
}

#[derive(Serialize)]
struct Side {
    kit: String,
    name: String,
    version: String,
    channel: String,
    sequence: u64,
    manifest_sha256: String,
}

fn side(path: &Path, f: &KitFacts) -> Side {
    Side {
        kit: path.display().to_string(),
        name: f.manifest.name.to_string(),
        version: f.manifest.version.to_string(),
        channel: f.manifest.channel.to_string(),
        sequence: f.manifest.sequence,
        manifest_sha256: f.manifest_sha256.clone(),
    }
}

/// Reads what `diff` compares of one kit: verified (its SBOMs read) or its header alone.
fn facts(kit: &Path, trust: &OptionalTrustArgs) -> Result<KitFacts, CliError> {
    let Some(trust) = trust.given() else {
        let h = read_unverified(kit)?;
        return Ok(KitFacts {
            manifest: h.manifest,
            manifest_sha256: h.manifest_sha256,
            signers: h.keyids.into_iter().collect(),
            packages: None,
        });
    };
    let policy = trust.policy()?;
    let mut v = authenticate(kit, &policy, &trust.options())?.verify(Retain::SqlAndSboms)?;
    let packages = packages_of(&mut v)?;
    Ok(KitFacts {
        manifest: v
            .listed_manifest()
            .map_err(crate::apply::LoadError::Content)?,
        manifest_sha256: v.manifest_sha256().to_string(),
        signers: v
            .signers()
            .iter()
            .map(|s| s.keyid.to_string())
            .collect::<BTreeSet<_>>(),
        packages: Some(packages),
    })
}

/// The packages of every SBOM of a kit verified with [`Retain::SqlAndSboms`], by SBOM path (SBOMs
/// that are neither SPDX nor CycloneDX JSON left out).
pub fn packages_of(v: &mut VerifiedKit) -> Result<BTreeMap<String, Vec<Package>>, CliError> {
    let mut packages = BTreeMap::new();
    for sbom in v.manifest().sboms.clone() {
        let bytes = v
            .content_mut()
            .take_sbom(&sbom.path)
            .map_err(|e| CliError::msg(Exit::Verification, e.to_string()))?;
        if let Some(p) = sbom_packages(&bytes) {
            packages.insert(sbom.path.to_string(), p);
        }
    }
    Ok(packages)
}

/// Runs `offkit diff`: exit 0 when the kits differ in nothing compared, 15 when they differ.
pub fn run(args: Args, global: &Global) -> CliResult {
    let a = facts(&args.a, &args.trust)?;
    let b = facts(&args.b, &args.trust)?;
    let d = diff(&a, &b);
    let report = Report {
        verified: args.trust.given().is_some(),
        a: side(&args.a, &a),
        b: side(&args.b, &b),
        diff: &d,
    };
    if global.json {
        print_json(&report)?;
    } else {
        print_human(&report);
    }
    if d.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(Exit::Different, "the kits differ"))
    }
}

fn sign(c: Change) -> &'static str {
    match c {
        Change::Added => "+",
        Change::Removed => "-",
        Change::Changed => "~",
    }
}

fn size(n: Option<u64>) -> String {
    n.map(human_bytes).unwrap_or_else(|| "-".to_owned())
}

fn print_human(r: &Report<'_>) {
    let title = |s: &Side| {
        format!(
            "{} {} (channel {} #{})",
            s.name, s.version, s.channel, s.sequence
        )
    };
    println!(
        "{}{} → {}",
        if r.verified { "" } else { "NOT VERIFIED: " },
        printable(&title(&r.a)),
        printable(&title(&r.b))
    );
    let d = r.diff;
    if d.is_empty() {
        println!("no difference");
        return;
    }
    for f in &d.fields {
        println!(
            "  {}: {} → {}",
            f.field,
            printable(&f.value.0),
            printable(&f.value.1)
        );
    }
    if !d.migrations.is_empty() {
        println!("migrations:");
    }
    for m in &d.migrations {
        let what = format!("{}/{} {}", m.module, m.category, m.name);
        match m.change {
            Some(Change::Changed) => println!(
                "  !! {what}: CHANGED after it was shipped ({} → {}); sites that applied it will refuse this kit on its checksum",
                short(&m.sha256.0),
                short(&m.sha256.1)
            ),
            Some(c) => println!("  {} {what}", sign(c)),
            None => {}
        }
        if let Some(c) = m.rollback {
            println!("  {} {what} (rollback)", sign(c));
        }
    }
    if d.edited_migrations > 0 {
        println!(
            "WARNING: {} shipped migration(s) edited; declare a checksum realignment or ship a new migration instead",
            d.edited_migrations
        );
    }
    for (title, list) in [("seeds", &d.seeds), ("sboms", &d.sboms)] {
        if !list.is_empty() {
            println!("{title}:");
        }
        for f in list {
            println!(
                "  {} {} ({} → {})",
                sign(f.change),
                printable(&f.path),
                size(f.size.0),
                size(f.size.1)
            );
        }
    }
    match &d.packages {
        None => println!(
            "packages: not compared (pass --trust to verify the kits and read their SBOMs)"
        ),
        Some(p) if !p.is_empty() => {
            println!("packages:");
            for c in p {
                println!(
                    "  {} {} {}: {} → {}",
                    c.change,
                    printable(&c.sbom),
                    printable(&c.name),
                    printable(c.version.0.as_deref().unwrap_or("-")),
                    printable(c.version.1.as_deref().unwrap_or("-"))
                );
            }
        }
        Some(_) => {}
    }
    for k in &d.signers.0 {
        println!("  - signer {k}");
    }
    for k in &d.signers.1 {
        println!("  + signer {k}");
    }
}

fn short(sha: &Option<String>) -> String {
    sha.as_deref()
        .map(|s| s[..s.len().min(12)].to_owned())
        .unwrap_or_default()
}
