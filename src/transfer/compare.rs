//! `offkit store compare`: object by object, by digest, whether a destination holds what a source
//! maps to under a layout. It is a dry run of the migration read differently: `copy` means
//! missing at the destination, `skip` equal, `conflict` different; plus, for the identity
//! layout, the objects only the destination has.

use std::collections::HashSet;
use std::ops::ControlFlow;

use super::{MigrateOptions, TransferError, migrate};
use crate::store::Store;

/// What a comparison found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// Source, redacted.
    pub from: String,
    /// Destination, redacted.
    pub to: String,
    /// Layout.
    pub layout: String,
    /// Source objects compared.
    pub compared: u64,
    /// Present at the destination with the same digest.
    pub equal: u64,
    /// Missing at the destination: source key → destination key.
    pub missing: Vec<(String, String)>,
    /// Present with other bytes: source key → destination key.
    pub different: Vec<(String, String)>,
    /// Source objects that could not be read or mapped: source key → error.
    pub unreadable: Vec<(String, String)>,
    /// Destination keys no source object maps to (identity layout only).
    pub only_in_destination: Vec<String>,
}

impl Comparison {
    /// Whether both sides agree.
    pub fn equal(&self) -> bool {
        self.missing.is_empty()
            && self.different.is_empty()
            && self.unreadable.is_empty()
            && self.only_in_destination.is_empty()
    }

    /// Text for a terminal.
    pub fn render_text(&self) -> String {
        use crate::kit::path::printable;
        let mut s = format!(
            "compare {} -> {} (layout {}): {} compared, {} equal, {} missing, {} different, {} unreadable, {} only in the destination\n",
            self.from,
            self.to,
            self.layout,
            self.compared,
            self.equal,
            self.missing.len(),
            self.different.len(),
            self.unreadable.len(),
            self.only_in_destination.len()
        );
        for (what, list) in [("missing", &self.missing), ("different", &self.different)] {
            for (a, b) in list {
                s.push_str(&format!(
                    "  {what:<9} {} -> {}\n",
                    printable(a),
                    printable(b)
                ));
            }
        }
        for (a, e) in &self.unreadable {
            s.push_str(&format!(
                "  unreadable {}: {}\n",
                printable(a),
                crate::util::escape_controls(e)
            ));
        }
        for k in &self.only_in_destination {
            s.push_str(&format!("  only-dest {}\n", printable(k)));
        }
        s.push_str(if self.equal() {
            "EQUAL\n"
        } else {
            "DIFFERENT\n"
        });
        s
    }
}

/// Compares `src` mapped by `opts.layout` with `dst` (nothing is written anywhere).
pub fn compare(
    src: &dyn Store,
    dst: &dyn Store,
    opts: &MigrateOptions,
) -> Result<Comparison, TransferError> {
    let opts = MigrateOptions {
        dry_run: true,
        resume: None,
        delete_source: false,
        ..opts.clone()
    };
    let report = migrate(src, dst, None, &opts)?;
    let mut c = Comparison {
        from: report.from.clone(),
        to: report.to.clone(),
        layout: report.layout.clone(),
        compared: report.plan.len() as u64,
        equal: 0,
        missing: Vec::new(),
        different: Vec::new(),
        unreadable: Vec::new(),
        only_in_destination: Vec::new(),
    };
    let mut mapped = HashSet::new();
    for p in report.plan {
        let dest = p.dest_key.clone().unwrap_or_default();
        mapped.insert(dest.clone());
        match p.action {
            "skip" => c.equal += 1,
            "copy" => c.missing.push((p.source_key, dest)),
            "conflict" => c.different.push((p.source_key, dest)),
            _ => c
                .unreadable
                .push((p.source_key, p.error.unwrap_or_default())),
        }
    }
    if opts.layout.is_identity() {
        let filter = opts.source_filter.as_deref().unwrap_or("");
        dst.list(None, &mut |info| {
            if info.key.starts_with(filter) && !mapped.contains(&info.key) {
                c.only_in_destination.push(info.key);
            }
            ControlFlow::Continue(())
        })?;
        c.only_in_destination.sort();
    }
    Ok(c)
}
