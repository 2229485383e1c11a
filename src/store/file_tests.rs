use super::*;
use crate::store::stream::{DigestReader, digest_of};

fn store(dir: &Path) -> FileStore {
    let url = StoreUrl::parse(&format!("file://{}", dir.display())).unwrap();
    let StoreUrl::File(f) = &url else {
        unreachable!()
    };
    FileStore::new(url.clone(), f)
}

fn put(s: &FileStore, key: &str, bytes: &[u8], mode: WriteMode) -> Result<(), StoreError> {
    let key = KitPath::new(key).unwrap();
    let sha = digest_of(bytes).unwrap().sha256;
    let mut body = DigestReader::new(bytes, key.as_str(), bytes.len() as u64, &sha);
    let req = PutRequest {
        key: &key,
        size: bytes.len() as u64,
        media_type: "text/plain",
        mode,
    };
    s.put(&req, &mut body)
}

fn keys(s: &FileStore) -> Vec<String> {
    let mut v = Vec::new();
    s.list(None, &mut |i| {
        v.push(i.key);
        ControlFlow::Continue(())
    })
    .unwrap();
    v
}

#[test]
fn put_get_create_only_and_replace() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let s = store(&root);
    put(&s, "a/b/c.txt", b"one", WriteMode::CreateNew).unwrap();
    let k = KitPath::new("a/b/c.txt").unwrap();
    assert_eq!(s.stat(&k).unwrap(), Some(3));
    let err = put(&s, "a/b/c.txt", b"two", WriteMode::CreateNew).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    let mut out = Vec::new();
    s.get(&k, &mut out).unwrap();
    assert_eq!(out, b"one");
    put(&s, "a/b/c.txt", b"two!", WriteMode::Replace).unwrap();
    out.clear();
    s.get(&k, &mut out).unwrap();
    assert_eq!(out, b"two!");
    assert_eq!(keys(&s), ["a/b/c.txt"]);
    assert!(s.delete(&k).unwrap());
    assert!(!s.delete(&k).unwrap());
    assert_eq!(s.stat(&k).unwrap(), None);
}

#[test]
fn a_mismatching_body_leaves_no_object_and_no_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let key = KitPath::new("x/y.bin").unwrap();
    let sha = digest_of(&b"promised"[..]).unwrap().sha256;
    let mut body = DigestReader::new(&b"delivered"[..], "x/y.bin", 8, &sha);
    let req = PutRequest {
        key: &key,
        size: 8,
        media_type: "",
        mode: WriteMode::CreateNew,
    };
    assert!(s.put(&req, &mut body).is_err());
    assert_eq!(s.stat(&key).unwrap(), None);
    let leftovers: Vec<_> = fs::read_dir(tmp.path().join("x")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn symlinks_inside_the_store_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let root = tmp.path().join("store");
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
    let s = store(&root);
    let err = put(&s, "evil/x.txt", b"data", WriteMode::CreateNew).unwrap_err();
    assert!(matches!(err, StoreError::UnsafeKey { .. }), "{err}");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the link"
    );
    let k = KitPath::new("evil/x.txt").unwrap();
    assert!(matches!(s.stat(&k), Err(StoreError::UnsafeKey { .. })));
    std::os::unix::fs::symlink(outside.join("f"), root.join("f")).unwrap();
    fs::write(outside.join("f"), b"secret").unwrap();
    let k = KitPath::new("f").unwrap();
    assert!(matches!(
        s.get(&k, &mut Vec::new()),
        Err(StoreError::UnsafeKey { .. })
    ));
    assert!(keys(&s).is_empty(), "links are not listed as objects");
}

#[test]
fn reserved_names_and_files_in_the_way_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let err = put(&s, "a/.offkit-tmp-x", b"d", WriteMode::CreateNew).unwrap_err();
    assert!(matches!(err, StoreError::UnsafeKey { .. }), "{err}");
    put(&s, "a", b"file", WriteMode::CreateNew).unwrap();
    let err = put(&s, "a/b", b"d", WriteMode::CreateNew).unwrap_err();
    assert!(matches!(err, StoreError::UnsafeKey { .. }), "{err}");
    let err = put(&s, "a", b"d", WriteMode::Replace);
    assert!(err.is_ok());
    fs::create_dir(tmp.path().join("dir")).unwrap();
    let err = put(&s, "dir", b"d", WriteMode::Replace).unwrap_err();
    assert!(matches!(err, StoreError::UnsafeKey { .. }), "{err}");
}

#[test]
fn stray_temp_files_are_not_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    put(&s, "k/a.json", b"{}", WriteMode::CreateNew).unwrap();
    fs::write(tmp.path().join("k/.offkit-tmp-abc"), b"partial").unwrap();
    assert_eq!(keys(&s), ["k/a.json"]);
}

#[test]
fn temp_files_of_dead_writers_are_swept_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    fs::create_dir_all(tmp.path().join("k")).unwrap();
    let dead = tmp.path().join("k/.offkit-tmp-dead");
    fs::write(&dead, b"partial").unwrap();
    let live = tmp.path().join("k/.offkit-tmp-live");
    let held = fs::File::create(&live).unwrap();
    flock(&held, FlockOperation::LockExclusive).unwrap();
    // One of this process's own threads, between its create and its lock.
    let ours = tmp
        .path()
        .join(format!("k/.offkit-tmp-{}-abc", std::process::id()));
    fs::write(&ours, b"being written").unwrap();
    put(&s, "k/a.json", b"{}", WriteMode::CreateNew).unwrap();
    assert!(!dead.exists(), "a stray temporary file was kept");
    assert!(live.exists(), "a live writer's temporary file was removed");
    assert!(
        ours.exists(),
        "this process's own temporary file was removed"
    );
}

#[test]
fn a_fifo_or_folder_at_a_key_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    put(&s, "k/a.json", b"{}", WriteMode::CreateNew).unwrap();
    let fifo = tmp.path().join("k/pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let k = KitPath::new("k/pipe").unwrap();
    assert!(matches!(
        s.get(&k, &mut Vec::new()),
        Err(StoreError::UnsafeKey { .. })
    ));
    assert!(matches!(s.digest(&k), Err(StoreError::UnsafeKey { .. })));
    let k = KitPath::new("k").unwrap();
    assert!(matches!(
        s.get(&k, &mut Vec::new()),
        Err(StoreError::UnsafeKey { .. })
    ));
    // A key under a file is no object; a missing one neither.
    for absent in ["k/a.json/x", "nope/x"] {
        let k = KitPath::new(absent).unwrap();
        assert_eq!(s.get(&k, &mut Vec::new()).unwrap(), None, "{absent}");
    }
}
