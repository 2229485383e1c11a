//! The full verify stream: `trust::authenticate` then `AuthenticatedKit::verify`, keeping the
//! SQL in memory (`Retain::Sql`) and reading every migration and rollback back, against one
//! fixed trusted key (the development key, `keys/dev-release.pub`) at a fixed time.
//!
//! Input: a kit-shaped input (`offkit_fuzz::kitfile`). The seeds are a kit that key signed
//! (`fuzz/make_seeds.py`), so the fuzzer reaches past authentication only through the seed's real
//! bytes; nothing it makes up can carry a valid signature.
//!
//! Oracles: no panic and no allocation above `-malloc_limit_mb`; every refusal displays; and a
//! kit that verifies is the seed kit — the manifest the key signed, that key as the only signer,
//! every SQL file handed back with its signed digest — and its uncompressed tar stream is the
//! seed's byte for byte (docs/FORMAT.md: a kit is canonical, every byte is what `build` writes or
//! is covered by a signature).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use offkit::kit::digest::Sha256Hex;
use offkit::kit::names::parse_time;
use offkit::trust::{PublicKey, Retain, TrustPolicy, VerifiedKit, VerifyOptions, authenticate};
use offkit_fuzz::{kitfile, write_scratch};

/// The key the seed kit is signed with.
const TRUSTED: &str = include_str!("../../keys/dev-release.pub");
/// The seed kit as built (a raw-mode input: the mode byte, then the file).
const SEED: &[u8] = include_bytes!("../seeds/verify_kit/quickstart-raw");
/// Verification time: after the seed's creation (2026-01-01); it has no expiry.
const NOW: &str = "2026-06-01T00:00:00Z";

struct Fixed {
    policy: TrustPolicy,
    opts: VerifyOptions,
    /// SHA-256 of the seed's manifest.json.
    manifest: Sha256Hex,
    /// The seed's uncompressed tar stream.
    tar: Vec<u8>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let key = PublicKey::from_pem(TRUSTED, "keys/dev-release.pub").expect("the trusted key");
        let policy = TrustPolicy::from_keys(vec![("dev-release".into(), key)]).expect("policy");
        let opts = VerifyOptions {
            now: parse_time(NOW).expect("NOW"),
            ..VerifyOptions::default()
        };
        let kit = kitfile::kit_bytes(SEED).expect("seed");
        let tar = kitfile::decompressed(&kit).expect("the seed decompresses");
        let path = write_scratch("seed.kit.tar.zst", &kit);
        let verified = verify(&path, &policy, &opts).unwrap_or_else(|e| {
            panic!("the seed kit no longer verifies ({e}): regenerate it with fuzz/make_seeds.py")
        });
        Fixed {
            manifest: verified.manifest_sha256().clone(),
            policy,
            opts,
            tar,
        }
    })
}

fn verify(
    path: &std::path::Path,
    policy: &TrustPolicy,
    opts: &VerifyOptions,
) -> Result<VerifiedKit, offkit::trust::VerifyFailure> {
    authenticate(path, policy, opts)?.verify(Retain::Sql)
}

fuzz_target!(|data: &[u8]| {
    let fixed = fixed();
    let Some(kit) = kitfile::kit_bytes(data) else {
        return;
    };
    let path = write_scratch("input.kit.tar.zst", &kit);
    let mut verified = match verify(&path, &fixed.policy, &fixed.opts) {
        Ok(v) => v,
        Err(e) => {
            let _ = e.to_string();
            for f in &e.failures {
                let _ = f.to_string();
            }
            return;
        }
    };
    assert_eq!(
        verified.manifest_sha256(),
        &fixed.manifest,
        "a manifest nobody signed verified"
    );
    let signers: Vec<&str> = verified.signers().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(signers, ["dev-release"]);
    assert_eq!(verified.kit_sha256(), &Sha256Hex::of(&kit));
    let sql: Vec<_> = verified.manifest().sql_files().cloned().collect();
    for file in sql {
        let bytes = verified
            .take_sql(&file.path)
            .unwrap_or_else(|e| panic!("{}: {e}", file.path));
        assert_eq!(Sha256Hex::of(&bytes), file.sha256, "{}", file.path);
    }
    let tar = kitfile::decompressed(&kit).expect("a verified kit decompresses");
    assert!(
        tar == fixed.tar,
        "a kit that is not byte for byte the signed one verified"
    );
});
