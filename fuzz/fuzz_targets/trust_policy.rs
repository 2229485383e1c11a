//! Trust policy loading (`offkit::trust::TrustPolicy::load`): a policy TOML file, or a PEM
//! public key, as `--trust` reads it. The input is written to `policy.toml` in a scratch folder
//! that also holds `dev-release.pub` (the development key), so `public_key = "dev-release.pub"`
//! loads a real key.
//!
//! Oracles: no panic; every refusal displays; a policy that loads keeps the invariants
//! `TrustPolicy::new` promises (docs/FORMAT.md §8): a threshold of at least one that the keys
//! which are not revoked and hold the `kit` role can meet, and no key listed twice; and
//! `--threshold` may raise the threshold but never lower it.
#![no_main]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use offkit::trust::TrustPolicy;
use offkit::trust::policy::KIT_ROLE;
use offkit_fuzz::write_scratch;

const DEV_KEY: &str = include_str!("../../keys/dev-release.pub");

fn policy_path(data: &[u8]) -> PathBuf {
    static KEY: OnceLock<PathBuf> = OnceLock::new();
    KEY.get_or_init(|| write_scratch("dev-release.pub", DEV_KEY.as_bytes()));
    write_scratch("policy.toml", data)
}

fuzz_target!(|data: &[u8]| {
    // `public_key` names a file to read: keep the fuzzer away from files that never end.
    let text = String::from_utf8_lossy(data);
    if ["/dev", "/proc", "/sys", "\\u", "\\U"]
        .iter()
        .any(|p| text.contains(p))
    {
        return;
    }
    let path = policy_path(data);
    let policy = match TrustPolicy::load(std::slice::from_ref(&path), None) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let threshold = policy.threshold().get();
    let usable = policy
        .keys()
        .iter()
        .filter(|k| k.has_role(KIT_ROLE) && !policy.is_revoked(k.keyid()))
        .count();
    assert!(
        (1..=usable).contains(&threshold),
        "threshold {threshold} with {usable} usable keys"
    );
    let ids: BTreeSet<_> = policy.keys().iter().map(|k| k.keyid().clone()).collect();
    assert_eq!(ids.len(), policy.keys().len(), "a key is listed twice");
    for k in policy.keys() {
        assert_eq!(policy.key(k.keyid()).map(|x| x.keyid()), Some(k.keyid()));
    }

    if threshold > 1 {
        assert!(
            TrustPolicy::load(std::slice::from_ref(&path), Some(threshold - 1)).is_err(),
            "--threshold lowered a policy's threshold"
        );
    }
    match TrustPolicy::load(std::slice::from_ref(&path), Some(threshold + 1)) {
        Ok(raised) => assert_eq!(raised.threshold().get(), threshold + 1),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
