//! `offkit store check`: probes a store with a throw-away object and says what works.
//!
//! Steps, in order: list (reachable, bucket/table readable), write a random probe object
//! `.offkit-check-<hex>`, stat it, read it back and compare its SHA-256, try to write it again
//! create-only (the store must refuse: that is what keeps seeding from overwriting), delete it,
//! and see that it is gone. A step that cannot run because an earlier one failed is reported as
//! not run. Nothing else in the store is touched.

use std::ops::ControlFlow;
use std::time::Instant;

use super::stream::{DigestReader, digest_of};
use super::{PutRequest, Store, StoreError, WriteMode};
use crate::kit::path::KitPath;

/// Size of the probe object.
const PROBE_SIZE: usize = 64 * 1024;

/// One step of the probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckStep {
    /// The step's name.
    pub step: &'static str,
    /// `ok`, `warn` (works, with a weaker guarantee: see `detail`), `failed` or `not-run`.
    pub status: &'static str,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// What went wrong, or a note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The probe's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckReport {
    /// The store, redacted.
    pub store: String,
    /// The driver.
    pub driver: &'static str,
    /// The probe key used.
    pub probe_key: String,
    /// True when every step passed (or only warned).
    pub ok: bool,
    /// The steps.
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// Human text: one line per step.
    pub fn render_text(&self) -> String {
        let mut s = format!("Checking {} ({} driver)\n", self.store, self.driver);
        for st in &self.steps {
            s.push_str(&format!(
                "  {:<12} {:<8} {:>6} ms",
                st.step, st.status, st.duration_ms
            ));
            if let Some(d) = &st.detail {
                s.push_str(&format!("  {d}"));
            }
            s.push('\n');
        }
        s.push_str(if self.ok {
            "store OK\n"
        } else {
            "store check FAILED\n"
        });
        s
    }
}

struct Prober {
    steps: Vec<CheckStep>,
    failed: bool,
}

impl Prober {
    /// Runs a step unless an earlier one failed.
    fn run(&mut self, step: &'static str, f: impl FnOnce() -> Result<Option<String>, String>) {
        self.run_with(step, || f().map(|d| ("ok", d)));
    }

    /// Runs a step whose success may be `ok` or `warn`.
    fn run_with(
        &mut self,
        step: &'static str,
        f: impl FnOnce() -> Result<(&'static str, Option<String>), String>,
    ) {
        if self.failed {
            self.steps.push(CheckStep {
                step,
                status: "not-run",
                duration_ms: 0,
                detail: None,
            });
            return;
        }
        let t = Instant::now();
        let r = f();
        let duration_ms = crate::util::millis(t.elapsed());
        let (status, detail) = match r {
            Ok((status, d)) => (status, d),
            Err(e) => {
                self.failed = true;
                ("failed", Some(e))
            }
        };
        self.steps.push(CheckStep {
            step,
            status,
            duration_ms,
            detail,
        });
    }
}

/// Runs the probe.
pub fn check(store: &dyn Store) -> CheckReport {
    let mut rnd = [0u8; 8];
    let mut data = vec![0u8; PROBE_SIZE];
    // Random bytes are only for a unique probe name and content; zeros would do in a pinch.
    let _ = getrandom::fill(&mut rnd);
    let _ = getrandom::fill(&mut data);
    let name = format!(".offkit-check-{}", hex::encode(rnd));
    let mut p = Prober {
        steps: Vec::new(),
        failed: false,
    };
    let report = |p: Prober, probe_key: String| {
        let ok = p
            .steps
            .iter()
            .all(|s| s.status == "ok" || s.status == "warn");
        CheckReport {
            store: store.url().redacted(),
            driver: store.url().driver(),
            probe_key,
            ok,
            steps: p.steps,
        }
    };
    let key = match KitPath::new(&name) {
        Ok(k) => k,
        Err(e) => {
            p.run("probe-name", || Err(e.to_string()));
            return report(p, name);
        }
    };
    let expected_sha = digest_of(&data[..]).map(|d| d.sha256).unwrap_or_default();
    let put = |mode| {
        let mut body = DigestReader::new(&data[..], key.as_str(), PROBE_SIZE as u64, &expected_sha);
        let req = PutRequest {
            key: &key,
            size: PROBE_SIZE as u64,
            media_type: "application/octet-stream",
            mode,
        };
        store.put(&req, &mut body)
    };
    p.run("list", || {
        let mut n = 0usize;
        store
            .list(None, &mut |_| {
                n += 1;
                if n >= 1000 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Some(if n >= 1000 {
            "1000+ objects".into()
        } else {
            format!("{n} object(s)")
        }))
    });
    p.run("write", || {
        put(WriteMode::CreateNew)
            .map(|_| None)
            .map_err(|e| e.to_string())
    });
    let wrote = !p.failed;
    p.run("stat", || match store.stat(&key) {
        Ok(Some(n)) if n == PROBE_SIZE as u64 => Ok(None),
        Ok(other) => Err(format!("expected {PROBE_SIZE} bytes, stat says {other:?}")),
        Err(e) => Err(e.to_string()),
    });
    p.run("read-back", || match store.digest(&key) {
        Ok(Some(d)) if d.sha256 == expected_sha => Ok(Some("sha256 matches".into())),
        Ok(Some(d)) => Err(format!(
            "read back sha256 {}, wrote {expected_sha}",
            d.sha256
        )),
        Ok(None) => Err("the probe object is missing".into()),
        Err(e) => Err(e.to_string()),
    });
    // Seeding never overwrites an object it found while planning; this step shows whether the
    // server also refuses a create-only put itself, which closes the window for a concurrent
    // writer between planning and put. Servers that ignore `If-None-Match` still work: warn.
    p.run_with("no-clobber", || match put(WriteMode::CreateNew) {
        Err(StoreError::AlreadyExists { .. }) => Ok(("ok", Some("create-only put refused".into()))),
        Ok(()) => Ok((
            "warn",
            Some(
                "the server overwrote the probe despite a create-only put (it ignores If-None-Match): \
                 seeding still never overwrites what it found, but a concurrent writer between \
                 planning and put goes undetected until the read-back; for S3 add \
                 conditional_put=disabled to the URL to check before every put"
                    .into(),
            ),
        )),
        Err(e) => Err(e.to_string()),
    });
    // Clean up whenever the probe was written, even if a step in between failed.
    if wrote {
        p.failed = false;
    }
    p.run("delete", || match store.delete(&key) {
        Ok(true) => Ok(None),
        Ok(false) => Err("nothing to delete".into()),
        Err(e) => Err(e.to_string()),
    });
    p.run("gone", || match store.stat(&key) {
        Ok(None) => Ok(None),
        Ok(Some(_)) => Err("the probe object is still there".into()),
        Err(e) => Err(e.to_string()),
    });
    report(p, name)
}
