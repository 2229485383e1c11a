//! Entry points for the fuzz targets under `fuzz/` (docs/FUZZING.md) into what offkit does not
//! make public: the secrets of a parsed connection string, so that the URL targets can check that
//! nothing shown of a connection depends on them. Not an API: hidden from the documentation and
//! used by nothing in offkit.

use crate::pg::ConnInfo;
use crate::util::Secret;

/// The password and the `sslpassword` of a parsed connection, as the driver would use them.
pub fn conninfo_secrets(info: &ConnInfo) -> (Option<&str>, Option<&str>) {
    (
        info.password.as_ref().map(Secret::expose),
        info.sslpassword.as_ref().map(Secret::expose),
    )
}

/// `info` with each secret it holds replaced by `replacement`: what is shown of a connection must
/// not change.
pub fn conninfo_with_secrets_replaced(info: &ConnInfo, replacement: &str) -> ConnInfo {
    let mut other = info.clone();
    for secret in [&mut other.password, &mut other.sslpassword] {
        if secret.is_some() {
            *secret = Some(Secret::new(replacement));
        }
    }
    other
}
