//! Trust: keys and keyids, trust policies, signing, and the verifier that alone turns a kit file
//! into a [`VerifiedKit`], with what it retained of the payload ([`content`]). Built on the kit
//! format ([`crate::kit`]); knows nothing of databases, stores or kit sources.

pub mod content;
pub mod extract;
pub mod failure;
pub mod keys;
pub mod policy;
pub mod root;
pub mod sign;
pub mod sigstore;
pub mod store;
pub mod verify;

pub use content::{ContentError, Retain};
pub use extract::{ExtractError, extract_kit};
pub use failure::{Failure, FailureKind};
pub use keys::{KeyError, KeyId, PublicKey, SecretKey};
pub use policy::TrustPolicy;
pub use verify::{
    AuthenticatedKit, ExpiryPolicy, KeyTime, KeyValidity, Signer, VerifiedKit, VerifyFailure,
    VerifyOptions, authenticate, verify_kit,
};
