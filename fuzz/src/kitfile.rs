//! Kit-shaped fuzz inputs. Mutating a compressed kit mostly breaks zstd's checksums, so an input
//! says in its first byte how to read the rest:
//!
//! - even: the rest is the kit file as it is (compressed bytes, to fuzz the zstd layer);
//! - odd: the rest is the uncompressed tar stream, cut into zstd frames at every [`FRAME_SEP`];
//!   each piece is compressed the way `offkit build` compresses a frame (content size and
//!   checksum). The seeds cut the stream where the real kit's frames end, so the fuzzer mutates
//!   tar headers and entries while the frame layout stays the builder's.

use std::io::Read;

/// Marks a frame boundary in an odd-mode input.
pub const FRAME_SEP: &[u8] = b"\xffOFFKIT-FRAME\xff";

/// zstd level for the frames of odd-mode inputs (fast; the level is not part of the format).
const LEVEL: i32 = 1;

/// The mode byte of a raw (compressed) input.
pub const RAW: u8 = 0;
/// The mode byte of a framed (uncompressed) input.
pub const FRAMED: u8 = 1;

/// The kit file an input stands for, or `None` for an empty input.
pub fn kit_bytes(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    if mode & 1 == 0 {
        return Some(rest.to_vec());
    }
    let mut compressor = offkit::kit::frame::new_compressor(LEVEL).ok()?;
    let mut out = Vec::new();
    for piece in split(rest, FRAME_SEP) {
        out.extend(offkit::kit::frame::compress_frame(&mut compressor, piece).ok()?);
    }
    Some(out)
}

/// The uncompressed tar stream of a kit file (all frames), if it decompresses.
pub fn decompressed(kit: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(kit)
        .ok()?
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// An odd-mode input for `kit`: its frames decompressed one by one and joined with
/// [`FRAME_SEP`] (used to make seeds).
pub fn framed_input(kit: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![FRAMED];
    let mut rest = kit;
    let mut first = true;
    while !rest.is_empty() {
        let n = zstd::zstd_safe::find_frame_compressed_size(rest).ok()?;
        if !first {
            out.extend_from_slice(FRAME_SEP);
        }
        first = false;
        out.extend(decompressed(&rest[..n])?);
        rest = &rest[n..];
    }
    Some(out)
}

fn split<'a>(mut data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match data.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                let piece = &data[..i];
                data = &data[i + sep.len()..];
                Some(piece)
            }
            None => {
                done = true;
                Some(data)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_empty_pieces() {
        let v: Vec<&[u8]> = split(b"a--b----c", b"--").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"", b"c"]);
        let v: Vec<&[u8]> = split(b"", b"--").collect();
        assert_eq!(v, vec![&b""[..]]);
    }

    #[test]
    fn framed_input_round_trips() {
        let kit = [&b"\x28\xb5\x2f\xfd"[..]].concat();
        assert!(
            framed_input(&kit).is_none(),
            "a truncated frame is not a kit"
        );
        let mut c = offkit::kit::frame::new_compressor(3).unwrap();
        let mut kit = offkit::kit::frame::compress_frame(&mut c, b"header").unwrap();
        kit.extend(offkit::kit::frame::compress_frame(&mut c, b"payload").unwrap());
        let input = framed_input(&kit).unwrap();
        assert_eq!(
            decompressed(&kit_bytes(&input).unwrap()).unwrap(),
            b"headerpayload"
        );
        assert_eq!(
            input,
            [&[FRAMED][..], b"header", FRAME_SEP, b"payload"].concat()
        );
    }
}
