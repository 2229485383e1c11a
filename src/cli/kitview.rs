//! Human and JSON views of a kit's contents, shared by `verify`, `inspect` and `extract`.

use serde::Serialize;

use super::common::human_bytes;
use crate::kit::manifest::Manifest;
use crate::kit::migration_name::{Category, TxMode};
use crate::trust::failure::Failure;
use crate::trust::verify::{KeyValidity, VerifiedKit};

/// A signer as a report shows it: a verified signer's keyid and policy name, or (unverified)
/// the keyid an envelope names.
#[derive(Debug, Serialize)]
pub struct SignerView {
    /// The keyid.
    pub keyid: String,
    /// Its name in the trust policy (empty when not verified).
    pub name: String,
}

/// What a report says about a kit.
#[derive(Debug, Serialize)]
pub struct KitReport {
    /// The kit file.
    #[serde(rename = "kit_file")]
    pub kit: String,
    /// `VERIFIED`, `REFUSED` or `NOT VERIFIED`.
    pub status: &'static str,
    /// True only when verification passed.
    pub verified: bool,
    /// SHA-256 of the kit file (when read to the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kit_sha256: Option<String>,
    /// SHA-256 of manifest.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// Keys whose signatures counted (verified), or keyids named in the envelope (unverified).
    pub signers: Vec<SignerView>,
    /// Why the kit was refused.
    pub failures: Vec<Failure>,
    /// Non-fatal remarks.
    pub warnings: Vec<String>,
    /// When the signers' keys were judged valid: at the clock, or at the kit's signed creation
    /// time (verified kits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_validity: Option<KeyValidity>,
    /// The kit's verified SLSA provenance (verified kits that carry one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::trust::verify::provenance::Provenance>,
    /// The Sigstore bundles the kit declares and their verdicts (verified kits).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<crate::trust::sigstore::Attestation>,
    /// The manifest, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// Wall time of the command.
    pub duration_ms: u64,
}

impl KitReport {
    /// The report of a kit that passed verification.
    pub fn verified(kit: &str, v: &VerifiedKit, duration_ms: u64) -> KitReport {
        KitReport {
            kit: kit.to_owned(),
            status: "VERIFIED",
            verified: true,
            kit_sha256: Some(v.kit_sha256().to_string()),
            manifest_sha256: Some(v.manifest_sha256().to_string()),
            signers: v
                .signers()
                .iter()
                .map(|s| SignerView {
                    keyid: s.keyid.to_string(),
                    name: s.name.clone(),
                })
                .collect(),
            failures: Vec::new(),
            warnings: v.warnings().to_vec(),
            key_validity: Some(v.key_validity().clone()),
            provenance: v.provenance().cloned(),
            attestations: v.attestations().to_vec(),
            manifest: Some(v.manifest().clone()),
            duration_ms,
        }
    }

    /// Prints the human form.
    pub fn print_human(&self) {
        match &self.manifest {
            Some(m) => println!(
                "{}: {} {} (channel {}, sequence {})",
                self.status, m.name, m.version, m.channel, m.sequence
            ),
            None => println!("{}: {}", self.status, self.kit),
        }
        for f in &self.failures {
            match &f.entry {
                Some(e) => println!("  ✗ {} [{}] {}", e, f.kind.as_str(), f.message),
                None => println!("  ✗ [{}] {}", f.kind.as_str(), f.message),
            }
        }
        if let Some(s) = &self.kit_sha256 {
            println!("  kit sha256       {s}");
        }
        if let Some(s) = &self.manifest_sha256 {
            println!("  manifest sha256  {s}");
        }
        for s in &self.signers {
            let name = if s.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.name)
            };
            println!("  signer           {}{name}", s.keyid);
        }
        if let Some(p) = &self.provenance {
            println!(
                "  provenance       SLSA v1, built by {} {} from source sha256 {} (signed by {})",
                p.builder_id,
                p.builder_version,
                p.source_sha256,
                p.signed_by.join(", ")
            );
        }
        for a in &self.attestations {
            match (&a.identity, &a.issuer) {
                (Some(id), Some(issuer)) => println!(
                    "  sigstore         {} ({}) for {}: verified, signed by {id} ({issuer}){}",
                    a.bundle,
                    a.kind,
                    a.subject,
                    a.signed_at
                        .as_ref()
                        .map_or(String::new(), |t| format!(" at {t}"))
                ),
                _ => println!(
                    "  sigstore         {} ({}) for {}: {}",
                    a.bundle, a.kind, a.subject, a.verdict
                ),
            }
        }
        if let Some(m) = &self.manifest {
            print_manifest(m);
        }
        for w in &self.warnings {
            println!("  warning: {w}");
        }
    }
}

/// The manifest's contents, grouped the way operators read them.
pub fn print_manifest(m: &Manifest) {
    println!("  created          {}", m.created);
    println!(
        "  expires          {}",
        m.expires.as_ref().map_or("never", |e| e.as_str())
    );
    println!("  target           {}", m.target.database.as_str());
    for r in &m.requires {
        println!("  requires         {} >= {}", r.name, r.min_version);
    }
    println!(
        "  payload          {} files, {}",
        m.payload.files,
        human_bytes(m.payload.bytes)
    );
    for module in &m.modules {
        println!("  module {} (schema {})", module.name, module.schema);
        for cat in Category::ALL {
            let names: Vec<String> = module
                .migrations
                .iter()
                .filter(|mig| mig.category == cat)
                .map(|mig| {
                    let mut s = mig.name.to_string();
                    if mig.tx == TxMode::NoTransaction {
                        s.push_str(" [no-transaction]");
                    }
                    if mig.rollback.is_some() {
                        s.push_str(" [rollback]");
                    }
                    if mig.destructive.is_some() {
                        s.push_str(" [DESTRUCTIVE]");
                    }
                    s
                })
                .collect();
            if !names.is_empty() {
                println!("    {:<8} {}", cat.as_str(), names.join(", "));
            }
        }
        for mig in &module.migrations {
            if let Some(d) = &mig.destructive {
                let kinds = if d.kinds.is_empty() {
                    "declared".to_owned()
                } else {
                    d.kinds.join(", ")
                };
                println!("    DESTRUCTIVE {} ({kinds}): {}", mig.name, d.reason);
            }
        }
    }
    if m.is_paged() {
        let bytes = m
            .pages
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(p.bytes));
        println!(
            "  seeds            {} objects, {}, listed in {} signed pages (index/seeds/)",
            m.seed_count(),
            human_bytes(bytes),
            m.pages.len()
        );
    }
    if !m.seeds.is_empty() {
        let bytes = m
            .seeds
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.file.size));
        println!(
            "  seeds            {} objects, {}",
            m.seeds.len(),
            human_bytes(bytes)
        );
        for s in m.seeds.iter().take(10) {
            println!(
                "    {} ({}, {})",
                s.key,
                crate::kit::path::printable(&s.media_type),
                human_bytes(s.file.size)
            );
        }
        if m.seeds.len() > 10 {
            println!("    … {} more", m.seeds.len() - 10);
        }
    }
    for s in &m.sboms {
        println!("  sbom             {}", s.path);
    }
    for a in &m.attestations {
        match m.sigstore.iter().find(|s| s.bundle == a.path) {
            Some(s) => println!(
                "  attestation      {} (Sigstore bundle, kind {}, for {})",
                a.path,
                s.kind,
                s.subject.as_ref().map_or_else(
                    || format!("sha256:{}", s.digest.as_ref().map_or("", |d| d.as_str())),
                    |p| p.to_string()
                )
            ),
            None => println!("  attestation      {}", a.path),
        }
    }
}
