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
    assert!(matches!(
        e,
        UrlError::UnknownOption {
            position: 1,
            suggestion: Some("region"),
            ..
        }
    ));
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

#[test]
fn s3_options_decode_like_a_postgres_url() {
    // Encoded names are the same options; a `+` in a secret stays a `+`.
    let u = StoreUrl::parse("s3://b?access%5Fkey%5Fid=AK&secret%5Faccess%5Fkey=a+b%2Fc").unwrap();
    let StoreUrl::S3(s3) = &u else {
        panic!("not s3")
    };
    assert_eq!(s3.secret_access_key.as_ref().unwrap().expose(), "a+b/c");
    assert_eq!(
        u.redacted(),
        "s3://b?access_key_id=***&secret_access_key=***"
    );
    // A # would cut the secret short; an endpoint with a query could carry one.
    assert!(StoreUrl::parse("s3://b?secret_access_key=ab#cd").is_err());
    assert!(StoreUrl::parse("s3://b?endpoint=http://h:1/%3Ftoken%3Dx").is_err());
}

#[test]
fn postgres_store_options_are_read_by_the_connection_parser() {
    // A raw `?` in the password ends where libpq ends it; the store's options follow.
    let u = StoreUrl::parse("postgres://u:hun?ter2@h/d?table=s.t&sslmode=disable").unwrap();
    let StoreUrl::Postgres(pg) = &u else {
        panic!("not postgres")
    };
    assert_eq!((pg.schema.as_str(), pg.table.as_str()), ("s", "t"));
    assert_eq!(
        u.redacted(),
        "postgres://u:***@h:5432/d?sslmode=disable&table=s.t"
    );
    let u = StoreUrl::parse("postgres://u@h/d?t%61ble=s.t&pass%77ord=hunter2").unwrap();
    assert_eq!(u.redacted(), "postgres://u:***@h:5432/d?table=s.t");
    assert!(StoreUrl::parse("postgres://u@h/d?table=a.b&t%61ble=c.d").is_err());
}

/// Inputs that do not parse: the error shows what parsed, never a piece of the secret.
#[test]
fn errors_never_quote_the_input() {
    for bad in [
        "postgres://u:hun/ter2@h/d?table=a.b",
        "postgres://u@h/d?table=1bad&pass%77ord=hunter2",
        "postgres://u@h/d?password=hun&ter2=x",
        "POSTGRES://u:hunter2@h/d",
        "s3://b?secret%5Faccess%5Fkey=hunter2&region=a&region=b",
        "s3://b?secret_acess_key=hunter2",
        "s3://b?SECRET_ACCESS_KEY=hunter2",
        "s3://b?secret_access_key=hun&ter2=x",
        "s3://AK:hun/ter2@bucket/p",
        "s3://b?endpoint=http://ak:hun/ter2@host",
        "s3://b?secret_access_key=hunter2&path_style=maybe",
        "minio://AK:hun/ter2@h/b",
        "AK:hunter2@h://x",
    ] {
        let e = StoreUrl::parse(bad).expect_err(bad);
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("ter2") && !shown.contains("hun/"),
                "{bad}: {shown}"
            );
        }
    }
}

#[test]
fn a_recorded_url_with_a_kept_out_secret_is_not_reused() {
    for url in [
        "s3://b/p?endpoint=http://h:1&secret_access_key=hunter2",
        "postgres://u:hunter2@h/d?table=a.b",
    ] {
        let recorded = StoreUrl::parse(url).unwrap().redacted();
        assert!(StoreUrl::parse_recorded(&recorded).is_none(), "{recorded}");
    }
    let plain = StoreUrl::parse("s3://b/p?endpoint=http://h:1")
        .unwrap()
        .redacted();
    assert!(StoreUrl::parse_recorded(&plain).is_some());
    assert!(StoreUrl::parse_recorded("file:///srv/store").is_some());
}
