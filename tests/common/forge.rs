//! A kit rewriter for hostile fixtures, independent of offkit's own tar code: it decompresses a
//! real kit with the `zstd` crate, lists its entries with the `tar` crate, lets a test change
//! them (paths as raw bytes, entry types, data, header fields), and writes them back with the
//! `tar` crate in the canonical form docs/FORMAT.md specifies (mode 0644, owner 0, the kit's
//! mtime, GNU checksum layout), so that an unchanged kit stays valid and a test changes only
//! what it means to.

use std::io::Read;
use std::path::Path;

use tar::EntryType;

/// One tar entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: EntryType,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
    /// The header's mtime; `None` takes the first entry's (the kit's).
    pub mtime: Option<u64>,
    /// Changes to the finished ustar header block (e.g. a setuid mode), applied before the
    /// checksum is computed: `(offset, bytes)`.
    pub patch: Vec<(usize, Vec<u8>)>,
}

impl Entry {
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind: EntryType::Regular,
            data: data.into(),
            link: Vec::new(),
            mtime: None,
            patch: Vec::new(),
        }
    }

    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Reads a kit's entries.
pub fn read(kit: &Path) -> Vec<Entry> {
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(std::fs::File::open(kit).unwrap())
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    let mut archive = tar::Archive::new(&raw[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path_bytes().into_owned();
            let kind = e.header().entry_type();
            let mtime = e.header().mtime().unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            Entry {
                path,
                kind,
                data,
                link: Vec::new(),
                mtime: Some(mtime),
                patch: Vec::new(),
            }
        })
        .collect()
}

/// The uncompressed tar bytes of `entries`: canonical ustar headers with raw names.
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let kit_mtime = entries.first().and_then(|e| e.mtime).unwrap_or(0);
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        {
            let old = h.as_old_mut();
            assert!(e.path.len() <= 100, "forge supports short names only");
            old.name[..e.path.len()].copy_from_slice(&e.path);
            old.linkname[..e.link.len()].copy_from_slice(&e.link);
        }
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(e.mtime.unwrap_or(kit_mtime));
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_device_major(0).unwrap();
        h.set_device_minor(0).unwrap();
        let block = h.as_mut_bytes();
        for (at, bytes) in &e.patch {
            block[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
        // The checksum as GNU tar lays it out: six octal digits, NUL, space.
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&x| u32::from(x)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes `entries` as a zstd-compressed kit at `out`.
pub fn write(entries: &[Entry], out: &Path) {
    write_raw(&tar_bytes(entries), out);
}

/// Compresses raw tar bytes into `out` as one zstd frame with its content size and checksum,
/// the frame form offkit writes.
pub fn write_raw(tar: &[u8], out: &Path) {
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.include_checksum(true).unwrap();
    c.include_contentsize(true).unwrap();
    let z = c.compress(tar).unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(out, z).unwrap();
}

/// Index of the entry named `name`.
pub fn find(entries: &[Entry], name: &str) -> usize {
    entries
        .iter()
        .position(|e| e.path == name.as_bytes())
        .unwrap_or_else(|| panic!("{name} not in kit"))
}

/// Re-signs a forged kit's header with `key`, as a release key holder could: SHA256SUMS is
/// recomputed from the regular entries (offkit-layout, manifest.json and the payload),
/// SHA256SUMS.sig signs it, and the DSSE statement gets those subjects and `predicate` as its
/// manifest. Written with serde_json and offkit's signing only, so the forged header is exactly
/// what a key holder could produce.
pub fn resign(
    entries: &mut [Entry],
    key: &offkit::trust::SecretKey,
    predicate: &serde_json::Value,
) {
    let header = [
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "manifest.dsse.json",
        "provenance.dsse.json",
    ];
    // An offkit/v2 kit's seeds are listed by its pages, not by SHA256SUMS.
    let paged = predicate["schema"] == "offkit/manifest/v2";
    let mut lines: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.kind == EntryType::Regular && !header.contains(&e.name().as_str()))
        .filter(|e| !(paged && e.name().starts_with("seeds/")))
        .map(|e| (e.name(), offkit::util::sha256_hex(&e.data)))
        .collect();
    lines.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let sums: String = lines.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": lines
            .iter()
            .map(|(p, h)| serde_json::json!({"name": p, "digest": {"sha256": h}}))
            .collect::<Vec<_>>(),
        "predicateType": "https://offkit.dev/manifest/v1",
        "predicate": predicate,
    });
    let envelope = offkit::trust::sign::sign_envelope(
        &serde_json::to_vec(&statement).unwrap(),
        std::slice::from_ref(key),
    );
    // The provenance, if the kit carries one, re-signed about the manifest as it now is.
    let manifest_sha256 = entries
        .iter()
        .find(|e| e.name() == "manifest.json")
        .map(|e| offkit::util::sha256_hex(&e.data));
    let provenance = |old: &[u8]| -> Vec<u8> {
        let env: offkit::kit::dsse::Envelope = serde_json::from_slice(old).unwrap();
        let mut st: serde_json::Value =
            serde_json::from_slice(&env.payload_bytes().unwrap()).unwrap();
        st["subject"][0]["digest"]["sha256"] = manifest_sha256.clone().unwrap_or_default().into();
        offkit::trust::sign::sign_envelope(
            &serde_json::to_vec(&st).unwrap(),
            std::slice::from_ref(key),
        )
        .to_bytes()
    };
    for e in entries.iter_mut() {
        match e.name().as_str() {
            "SHA256SUMS" => e.data = sums.clone().into_bytes(),
            "SHA256SUMS.sig" => e.data = key.sign(sums.as_bytes()).to_vec(),
            "manifest.dsse.json" => e.data = envelope.to_bytes(),
            "provenance.dsse.json" => e.data = provenance(&e.data),
            _ => {}
        }
    }
}

/// JSON written as offkit writes its envelope and manifest: pretty, with a final newline.
pub fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).unwrap();
    bytes.push(b'\n');
    bytes
}

/// The manifest of `entries` as JSON.
pub fn manifest(entries: &[Entry]) -> serde_json::Value {
    serde_json::from_slice(&entries[find(entries, "manifest.json")].data).unwrap()
}

/// Replaces manifest.json with `m` (pretty JSON, as offkit writes it).
pub fn set_manifest(entries: &mut [Entry], m: &serde_json::Value) {
    let i = find(entries, "manifest.json");
    entries[i].data = pretty(m);
}

/// Rewrites `kit` as a kit without a frame index (as offkit wrote them before the index), signed
/// again with `key`: `apply` copies such a kit's files to a work folder to seed from them.
pub fn without_frame_index(kit: &Path, key: &Path) {
    let mut entries = read(kit);
    let mut m = manifest(&entries);
    m["payload"].as_object_mut().unwrap().remove("frames");
    set_manifest(&mut entries, &m);
    let key = offkit::trust::SecretKey::load(key).unwrap();
    resign(&mut entries, &key, &m);
    write(&entries, kit);
}
