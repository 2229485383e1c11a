//! Signing: DSSE signatures over an in-toto statement and detached signatures over SHA256SUMS.
//! What gets signed and where it goes in a kit is the `build` module's; this is only the act.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::kit::dsse::{Envelope, EnvelopeSignature, pae};
use crate::kit::layout::PAYLOAD_TYPE;
use crate::trust::keys::SecretKey;

/// A DSSE envelope over `payload` (an in-toto statement) with one signature per key, in order
/// (DSSE protocol, "Sign": each signature is over `PAE(payloadType, payload)`).
pub fn sign_envelope(payload: &[u8], keys: &[SecretKey]) -> Envelope {
    let message = pae(PAYLOAD_TYPE, payload);
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: keys.iter().map(|k| signature(k, &message)).collect(),
    }
}

/// One more signature over an existing envelope's payload (what a co-signer adds).
pub fn add_to_envelope(envelope: &mut Envelope, payload: &[u8], key: &SecretKey) {
    let message = pae(&envelope.payload_type, payload);
    envelope.signatures.push(signature(key, &message));
}

fn signature(key: &SecretKey, message: &[u8]) -> EnvelopeSignature {
    EnvelopeSignature {
        keyid: key.keyid().to_string(),
        sig: STANDARD.encode(key.sign(message)),
    }
}
