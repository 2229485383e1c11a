//! The layout rules a signed manifest must also follow (docs/FORMAT.md, "manifest.json"): a
//! release key signing a manifest that puts a migration outside `migrations/<module>/` is still
//! refused, because apply relies on these rules.

use std::collections::BTreeSet;

use crate::kit::config::{is_valid_identifier, is_valid_name, is_valid_version, parse_time};
use crate::kit::layout::{KIT_SBOM, MANIFEST};
use crate::kit::manifest::Manifest;
use crate::migrate::name::MigrationName;
use crate::trust::failure::{Failure, FailureKind};

fn invalid(message: String) -> Failure {
    Failure::at(FailureKind::InvalidManifest, MANIFEST, message)
}

/// Checks the manifest's own rules.
pub(super) fn check(m: &Manifest) -> Result<(), Failure> {
    if !is_valid_name(&m.name) || !is_valid_name(&m.channel) || !is_valid_version(&m.version) {
        return Err(invalid(format!(
            "name {:?}, channel {:?} or version {:?} is not valid",
            m.name, m.channel, m.version
        )));
    }
    for (field, value) in [
        ("created", Some(&m.created)),
        ("expires", m.expires.as_ref()),
    ] {
        if let Some(v) = value
            && parse_time(v).is_none()
        {
            return Err(invalid(format!("{field} {v:?} is not an RFC 3339 time")));
        }
    }
    let mut modules = BTreeSet::new();
    for module in &m.modules {
        if !is_valid_identifier(&module.name)
            || !is_valid_identifier(&module.schema)
            || !modules.insert(&module.name)
        {
            return Err(invalid(format!(
                "module {:?} (schema {:?}) is invalid or repeated",
                module.name, module.schema
            )));
        }
        let mut last = None;
        for mig in &module.migrations {
            let name = MigrationName::parse(&mig.name)
                .map_err(|e| invalid(format!("module {}: {e}", module.name)))?;
            if name.category() != mig.category {
                return Err(invalid(format!(
                    "{}: category {} does not match its name",
                    mig.name, mig.category
                )));
            }
            let expect = format!("migrations/{}/{}.sql", module.name, mig.name);
            if mig.file.path.as_str() != expect {
                return Err(invalid(format!(
                    "{}: path {} should be {expect}",
                    mig.name, mig.file.path
                )));
            }
            if let Some(r) = &mig.rollback {
                let expect = format!("rollback/{}/{}.sql", module.name, mig.name);
                if r.path.as_str() != expect {
                    return Err(invalid(format!(
                        "{}: rollback path {} should be {expect}",
                        mig.name, r.path
                    )));
                }
            }
            if last.is_some_and(|l| l >= name.order_key()) {
                return Err(invalid(format!(
                    "module {}: {} is out of order or repeats a number",
                    module.name, mig.name
                )));
            }
            last = Some(name.order_key());
        }
    }
    for s in &m.seeds {
        if s.file.path.as_str() != format!("seeds/{}", s.key) {
            return Err(invalid(format!(
                "seed {:?}: path {} should be seeds/{}",
                s.key, s.file.path, s.key
            )));
        }
    }
    let dirs = [(&m.sboms, "sboms/"), (&m.attestations, "attestations/")];
    for (files, dir) in dirs {
        if let Some(f) = files.iter().find(|f| !f.path.as_str().starts_with(dir)) {
            return Err(invalid(format!("{} should be under {dir}", f.path)));
        }
    }
    if !m.sboms.iter().any(|f| f.path.as_str() == KIT_SBOM) {
        return Err(invalid(format!(
            "the kit's own SBOM {KIT_SBOM} is not listed"
        )));
    }
    if let Some(f) = m.files().find(|f| {
        f.sha256.len() != 64
            || !f
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }) {
        return Err(invalid(format!(
            "{}: sha256 is not 64 lowercase hex digits",
            f.path
        )));
    }
    let (files, bytes) = (
        m.files().count() as u64,
        m.files().map(|f| f.size).sum::<u64>(),
    );
    if m.payload.files != files || m.payload.bytes != bytes {
        return Err(invalid(format!(
            "payload totals say {} files / {} bytes; the manifest lists {files} / {bytes}",
            m.payload.files, m.payload.bytes
        )));
    }
    Ok(())
}
