//! The password file (`~/.pgpass`, or `passfile` / `PGPASSFILE`), read as libpq reads it
//! (PostgreSQL documentation, "The Password File"): lines `hostname:port:database:username:password`,
//! `*` matching anything in the first four fields, `\:` and `\\` escaping, `#` comments, the first
//! matching line winning. A file that group or others may read is ignored with a warning, as
//! libpq does: a password file anyone can read is not a secret.

use std::path::Path;

use super::conninfo::Endpoint;
use crate::util::Secret;

/// What a lookup found.
#[derive(Debug, Default)]
pub struct Lookup {
    /// The password of the first matching line.
    pub password: Option<Secret>,
    /// Why the file was not used, when it exists but was ignored.
    pub warning: Option<String>,
}

/// Splits a line at unescaped `:` into its fields, unescaping `\:` and `\\`.
fn fields(line: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if out.len() < 4 => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Looks up the password for `user` on `endpoint`'s database `dbname` in `file`.
pub fn lookup(file: &Path, endpoint: &Endpoint, dbname: &str, user: &str) -> Lookup {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(file) else {
        return Lookup::default();
    };
    if !meta.is_file() {
        return Lookup::default();
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Lookup {
            password: None,
            warning: Some(format!(
                "password file {} has group or world access and was ignored; permissions should be u=rw (0600) or less",
                file.display()
            )),
        };
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return Lookup::default();
    };
    let port = endpoint.port.to_string();
    let wanted = [endpoint.host.pgpass_name(), port.as_str(), dbname, user];
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = fields(line);
        if f.len() != 5 {
            continue;
        }
        if f[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want)
        {
            return Lookup {
                password: Some(Secret::new(f[4].clone())),
                warning: None,
            };
        }
    }
    Lookup::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::conninfo::Host;
    use std::os::unix::fs::PermissionsExt;

    fn endpoint(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: Host::Tcp(host.into()),
            port,
        }
    }

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\n\
             db:5432:app:ops:first\n\
             db:5432:*:ops:second\n\
             *:*:*:*:fallback\n\
             we\\:ird:1:d:u:p\\:ass\\\\word\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pw = |h: &str, port, d: &str, u: &str| {
            lookup(&f, &endpoint(h, port), d, u)
                .password
                .map(|s| s.expose().to_owned())
        };
        assert_eq!(pw("db", 5432, "app", "ops").as_deref(), Some("first"));
        assert_eq!(pw("db", 5432, "other", "ops").as_deref(), Some("second"));
        assert_eq!(pw("elsewhere", 1, "x", "y").as_deref(), Some("fallback"));
        // `*:*:*:*:` comes before the escaped line, so it wins there too.
        assert_eq!(pw("we:ird", 1, "d", "u").as_deref(), Some("fallback"));
        let socket = Endpoint {
            host: Host::Socket("/var/run/postgresql".into()),
            port: 5432,
        };
        std::fs::write(&f, "localhost:5432:app:ops:viasocket\n").unwrap();
        assert_eq!(
            lookup(&f, &socket, "app", "ops").password.unwrap().expose(),
            "viasocket"
        );
        std::fs::write(&f, "we\\:ird:1:d:u:p\\:ass\\\\word\n").unwrap();
        assert_eq!(pw("we:ird", 1, "d", "u").as_deref(), Some("p:ass\\word"));
    }

    #[test]
    fn a_file_others_can_read_is_ignored_with_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pgpass");
        std::fs::write(&f, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let l = lookup(&f, &endpoint("h", 1), "d", "u");
        assert!(l.password.is_none());
        assert!(l.warning.unwrap().contains("0600"));
        assert!(
            lookup(&d.path().join("missing"), &endpoint("h", 1), "d", "u")
                .password
                .is_none()
        );
    }
}
