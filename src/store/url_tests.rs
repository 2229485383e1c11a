use super::*;

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY";

fn assert_no_secret(text: &str) {
    for s in [KEY_ID, SECRET, "hunter2", "s3cr3t"] {
        assert!(!text.contains(s), "secret {s:?} leaked in {text:?}");
    }
}

#[test]
fn file_urls() {
    let u = StoreUrl::parse("file://./offkit-store").unwrap();
    assert_eq!(
        u,
        StoreUrl::File(FileUrl {
            dir: "./offkit-store".into()
        })
    );
    let u = StoreUrl::parse("file:///srv/store").unwrap();
    assert_eq!(u.redacted(), "file:///srv/store");
    assert!(matches!(
        StoreUrl::parse("file://"),
        Err(UrlError::Malformed { .. })
    ));
}

#[test]
fn s3_url_with_options() {
    let u = StoreUrl::parse(
        "s3://bucket/seeds/v1?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true",
    )
    .unwrap();
    let StoreUrl::S3(s3) = &u else {
        panic!("not s3")
    };
    assert_eq!(s3.bucket, "bucket");
    assert_eq!(s3.prefix.as_deref(), Some("seeds/v1"));
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(s3.addressing, Some(Addressing::Path));
    assert_eq!(
        s3.allow_http,
        Some(true),
        "an http endpoint implies allow_http"
    );
    assert_eq!(
        u.redacted(),
        "s3://bucket/seeds/v1?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true&allow_http=true"
    );
}

#[test]
fn s3_refuses_unknown_options_and_bad_values() {
    let e = StoreUrl::parse("s3://b?regoin=x").unwrap_err();
    assert!(matches!(e, UrlError::UnknownOption { ref option, .. } if option == "regoin"));
    let e = StoreUrl::parse("s3://b?path_style=maybe").unwrap_err();
    assert!(matches!(e, UrlError::BadOption { .. }));
    let e = StoreUrl::parse("s3://b?region=a&region=b").unwrap_err();
    assert!(matches!(e, UrlError::BadOption { .. }));
    assert!(StoreUrl::parse("s3:///prefix").is_err());
    assert!(StoreUrl::parse("s3://b/a/../c").is_err());
}

#[test]
fn s3_secrets_never_print() {
    let raw = format!(
        "s3://b/p?access_key_id={KEY_ID}&secret_access_key={SECRET}&session_token=s3cr3t&endpoint=http://h:1"
    );
    let u = StoreUrl::parse(&raw).unwrap();
    assert_no_secret(&u.redacted());
    assert_no_secret(&u.to_string());
    assert_no_secret(&format!("{u:?}"));
    let StoreUrl::S3(s3) = &u else {
        panic!("not s3")
    };
    assert_eq!(s3.secret_access_key.as_ref().unwrap().expose(), SECRET);
    // Errors quote the URL redacted, also when another option is the problem.
    let e = StoreUrl::parse(&format!("{raw}&bogus=1")).unwrap_err();
    assert_no_secret(&e.to_string());
    assert_no_secret(&format!("{e:?}"));
    let e = StoreUrl::parse(&format!("s3://{KEY_ID}:{SECRET}@bucket/p")).unwrap_err();
    assert_no_secret(&e.to_string());
    let e = StoreUrl::parse("s3://b?endpoint=http://u:hunter2@h:1").unwrap_err();
    assert!(matches!(e, UrlError::BadOption { .. }));
    assert_no_secret(&e.to_string());
}

#[test]
fn postgres_urls() {
    let u = StoreUrl::parse(
        "postgres://app:hunter2@db.example:5432/site?table=store.objects&sslmode=disable",
    )
    .unwrap();
    let StoreUrl::Postgres(pg) = &u else {
        panic!("not postgres")
    };
    assert_eq!(
        (pg.schema.as_str(), pg.table.as_str()),
        ("store", "objects")
    );
    assert_eq!(pg.conninfo.dbname(), "site");
    assert_eq!(pg.conninfo.sslmode(), crate::pg::SslMode::Disable);
    assert_eq!(
        u.redacted(),
        "postgres://app:***@db.example:5432/site?sslmode=disable&table=store.objects"
    );
    assert_no_secret(&format!("{u:?}"));
    let d = StoreUrl::parse("postgresql://postgres@127.0.0.1/x").unwrap();
    assert!(d.redacted().ends_with("?table=offkit.objects"), "{d}");
    let e = StoreUrl::parse("postgres://u:hunter2@h/x?table=bad-name").unwrap_err();
    assert_no_secret(&e.to_string());
    let e = StoreUrl::parse("postgres://u:hunter2@h:notaport/x").unwrap_err();
    assert_no_secret(&e.to_string());
    let e = StoreUrl::parse("postgres://u@h/x?password=hunter2&bogus=1").unwrap_err();
    assert_no_secret(&e.to_string());
}

#[test]
fn unknown_scheme_is_redacted() {
    let e = StoreUrl::parse("ftp://u:hunter2@h/x").unwrap_err();
    assert!(matches!(e, UrlError::UnknownScheme { .. }));
    assert_no_secret(&e.to_string());
}
