//! What an artifact document says about itself: its bom-ref and serial number, read without
//! holding the document (a streaming parse that skips every other field), and the reversible
//! encoding of such a value into one key segment.
//!
//! - **CycloneDX JSON** (`"bomFormat": "CycloneDX"`): `metadata.component.bom-ref` and
//!   `serialNumber`.
//! - **SPDX JSON** (`spdxVersion`): the document is known by its `documentNamespace` (the serial
//!   number); its bom-ref is the first element of `documentDescribes`, when given.
//! - **in-toto statements** (`_type`, `predicate`): the predicate is read as above.
//! - **DSSE envelopes** (`payloadType`, `payload`): the base64 payload is decoded (standard or
//!   URL-safe alphabet) and read as above; the envelope's signatures are not judged here.
//!
//! Anything else — not JSON, another format, a field of an unexpected type — has no bom-ref and no
//! serial number; the caller then uses the synthetic `sha256:<digest>` and counts it.

use std::io::Read;

use base64::Engine;
use serde::Deserialize;

/// The longest value that fits one key segment once encoded.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// What was found in a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DocMeta {
    /// `cyclonedx`, `spdx`, or `None` when the document was not recognised.
    pub format: Option<&'static str>,
    /// Whether it came wrapped in a DSSE envelope.
    pub dsse: bool,
    /// The bom-ref, when the document has one.
    pub bom_ref: Option<String>,
    /// The serial number (CycloneDX) or namespace (SPDX).
    pub serial_number: Option<String>,
}

#[derive(Deserialize, Default)]
struct Component {
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    component: Option<Component>,
}

#[derive(Deserialize, Default)]
struct Probe {
    #[serde(rename = "bomFormat")]
    bom_format: Option<String>,
    #[serde(rename = "serialNumber")]
    serial_number: Option<String>,
    metadata: Option<Metadata>,
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<String>,
    #[serde(rename = "documentNamespace")]
    document_namespace: Option<String>,
    #[serde(
        rename = "documentDescribes",
        default,
        deserialize_with = "first_string"
    )]
    document_describes: Option<String>,
    #[serde(rename = "payloadType")]
    payload_type: Option<String>,
    payload: Option<String>,
    #[serde(rename = "_type")]
    statement_type: Option<String>,
    predicate: Option<Box<Probe>>,
}

/// The first string of an array, the rest skipped without being kept.
fn first_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct First;
    impl<'de> serde::de::Visitor<'de> for First {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of strings")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<String>()?;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_seq(First)
}

fn parse(r: impl Read) -> Option<Probe> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(r));
    let probe = Probe::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(probe)
}

/// Reads a document's bom-ref and serial number from `r` (see the module's documentation).
pub fn read_meta(r: impl Read) -> DocMeta {
    let Some(probe) = parse(r) else {
        return DocMeta::default();
    };
    if probe.payload_type.is_some() {
        let Some(payload) = probe.payload.as_deref().and_then(decode_base64) else {
            return DocMeta::default();
        };
        let inner = parse(payload.as_slice()).map(|p| meta_of(p, 1));
        return DocMeta {
            dsse: true,
            ..inner.unwrap_or_default()
        };
    }
    meta_of(probe, 0)
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

fn meta_of(p: Probe, depth: u8) -> DocMeta {
    if p.bom_format.as_deref() == Some("CycloneDX") {
        return DocMeta {
            format: Some("cyclonedx"),
            dsse: false,
            bom_ref: p
                .metadata
                .and_then(|m| m.component)
                .and_then(|c| c.bom_ref)
                .filter(|s| !s.is_empty()),
            serial_number: p.serial_number.filter(|s| !s.is_empty()),
        };
    }
    if p.spdx_version.is_some() {
        return DocMeta {
            format: Some("spdx"),
            dsse: false,
            bom_ref: p.document_describes.filter(|s| !s.is_empty()),
            serial_number: p.document_namespace.filter(|s| !s.is_empty()),
        };
    }
    match (p.statement_type, p.predicate) {
        (Some(_), Some(pred)) if depth < 2 => meta_of(*pred, depth + 1),
        _ => DocMeta::default(),
    }
}

/// Encodes `value` into one key segment, reversibly ([`decode_segment`]): ASCII letters, digits,
/// `-`, `_`, `~` and `.` (except a leading one) stay; every other byte becomes `%XX` (uppercase
/// hex). Fails when the result would exceed [`MAX_SEGMENT_BYTES`].
pub fn encode_segment(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    for (i, b) in value.bytes().enumerate() {
        let plain =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.len() > MAX_SEGMENT_BYTES {
        return Err(format!(
            "{} bytes once encoded; a key segment holds 1 to {MAX_SEGMENT_BYTES}",
            out.len()
        ));
    }
    Ok(out)
}

/// The value an [`encode_segment`] result stands for (`None` if it is not one).
pub fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclonedx_spdx_and_dsse_are_read() {
        let cdx = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","serialNumber":"urn:uuid:1","metadata":{"component":{"bom-ref":"pkg:npm/a@1","name":"a"}},"components":[{"bom-ref":"x"}]}"#;
        let m = read_meta(&cdx[..]);
        assert_eq!(m.format, Some("cyclonedx"));
        assert_eq!(m.bom_ref.as_deref(), Some("pkg:npm/a@1"));
        assert_eq!(m.serial_number.as_deref(), Some("urn:uuid:1"));
        let spdx = br#"{"spdxVersion":"SPDX-2.3","documentNamespace":"https://x/ns","documentDescribes":["SPDXRef-a"]}"#;
        let m = read_meta(&spdx[..]);
        assert_eq!(m.format, Some("spdx"));
        assert_eq!(m.serial_number.as_deref(), Some("https://x/ns"));
        assert_eq!(m.bom_ref.as_deref(), Some("SPDXRef-a"));
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://cyclonedx.org/bom","predicate":{}}}"#,
            std::str::from_utf8(cdx).unwrap()
        );
        let env = format!(
            r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{}","signatures":[]}}"#,
            base64::engine::general_purpose::STANDARD.encode(statement)
        );
        let m = read_meta(env.as_bytes());
        assert!(m.dsse);
        assert_eq!(m.bom_ref.as_deref(), Some("pkg:npm/a@1"));
    }

    #[test]
    fn anything_else_has_no_identity() {
        for doc in [
            &b"not json"[..],
            b"{\"bomFormat\":\"CycloneDX\",\"serialNumber\":5}",
            b"{} trailing",
            b"{\"payloadType\":\"x\",\"payload\":\"!!\"}",
            b"[1,2]",
        ] {
            let m = read_meta(doc);
            assert_eq!(m.bom_ref, None);
            assert_eq!(m.serial_number, None);
        }
    }

    #[test]
    fn segments_round_trip() {
        for v in [
            "pkg:npm/@scope/a@1.0.0?x=1#y",
            ".hidden",
            "..",
            "ü%/",
            "a.b~c-d_e",
        ] {
            let e = encode_segment(v).unwrap();
            assert!(crate::kit::path::KitPath::new(&e).is_ok(), "{e}");
            assert!(!e.contains('/'));
            assert_eq!(decode_segment(&e).as_deref(), Some(v));
        }
        assert_eq!(encode_segment("a.b").unwrap(), "a.b");
        assert_eq!(encode_segment("..").unwrap(), "%2E.");
        assert!(encode_segment(&"/".repeat(100)).is_err());
        assert!(encode_segment("").is_err());
    }
}
