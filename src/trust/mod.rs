//! Trust: keys, SHA256SUMS, DSSE envelopes over in-toto statements, trust policies and the
//! verifier that alone turns an unverified kit into a verified one.
