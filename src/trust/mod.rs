//! Trust: keys, SHA256SUMS, DSSE envelopes over in-toto statements, trust policies and the
//! verifier that alone turns an unverified kit into a verified one.

pub mod dsse;
pub mod extract;
pub mod failure;
pub mod keys;
pub mod policy;
pub mod sign;
pub mod sums;
pub mod verify;

pub use extract::{ExtractError, ExtractedKit, TempExtractedKit, extract_kit, extract_to_temp};
pub use failure::{Failure, FailureKind};
pub use keys::{KeyError, PublicKey, SecretKey};
pub use policy::TrustPolicy;
pub use verify::{ExpiryPolicy, VerifiedKit, VerifyFailure, VerifyOptions, verify_kit};
