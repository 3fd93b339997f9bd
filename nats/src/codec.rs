//! Message bodies on the wire: JSON, lz4-compressed from a few KiB, gzip-compressed when too
//! large for one message, or moved to the object store when still too large.
//!
//! A message is [`Message::to_bytes`] JSON. A payload of at least [`LZ4_FROM`] bytes (a page,
//! a bundle) is compressed with lz4 and flagged with [`ENCODING`]: nats-server's cost grows
//! with the bytes it stores and delivers (about 4.7 µs of its CPU per KiB, measured with
//! 20,000 messages each of 1 KB and 12 KB), and lz4 compresses HTML at about 1 GB/s and
//! decompresses it faster still. When the JSON exceeds the server's max payload it is
//! gzip-compressed instead; when even that does not fit, the compressed body goes to the
//! bodies bucket and the message carries its object name in [`OBJECT`] with an empty payload.
//! Nothing is ever dropped for its size.
//!
//! gzip (pure Rust, already in the build) rather than zstd (a C build) for the large ones: on
//! two shared cores the build time matters more than zstd's better speed, and large bodies are
//! rare.

use std::io::{Read, Write};

use async_nats::HeaderMap;
use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use spindle_common::message::Message;

/// Header naming the encoding of the body; absent means plain JSON.
pub(crate) const ENCODING: &str = "Spindle-Encoding";
/// Value of [`ENCODING`] for a gzip-compressed body.
pub(crate) const GZIP: &str = "gzip";
/// Value of [`ENCODING`] for an lz4-compressed body: lz4's block format after the
/// uncompressed size as a little-endian `u32`.
pub(crate) const LZ4: &str = "lz4";
/// Payloads from this size are lz4-compressed on the way out; below it the saving is a few
/// hundred bytes at most.
pub(crate) const LZ4_FROM: usize = 2048;
/// Header carrying the object name of a body stored in the bodies bucket.
pub(crate) const OBJECT: &str = "Spindle-Object";
/// Bytes kept free for headers below the server's max payload (message id, encoding, object
/// name: well under this).
pub(crate) const HEADER_RESERVE: usize = 512;

/// Compresses `bytes`. The fast level: bodies are mostly HTML, which compresses well even so,
/// and the work happens on a publish path.
pub(crate) fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Decompresses what [`gzip`] made.
pub(crate) fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// `payload` as it goes on the wire: lz4-compressed, with [`ENCODING`] set in `headers`, when
/// it is at least [`LZ4_FROM`] bytes and that saves an eighth of it at least.
pub(crate) fn lz4_packed(headers: &mut HeaderMap, payload: Bytes) -> Bytes {
    if payload.len() < LZ4_FROM {
        return payload;
    }
    let packed = lz4_flex::block::compress_prepend_size(&payload);
    if packed.len() > payload.len() - payload.len() / 8 {
        return payload;
    }
    headers.insert(ENCODING, LZ4);
    Bytes::from(packed)
}

/// A delivered payload as its publisher packed it: decompressed if its headers say lz4,
/// else as it is. A body that claims to decompress to more than `max` bytes is refused
/// before anything is allocated for it.
pub(crate) fn unpacked(
    headers: Option<&HeaderMap>,
    payload: &Bytes,
    max: usize,
) -> Result<Bytes, String> {
    if headers
        .and_then(|h| h.get(ENCODING))
        .is_none_or(|v| v.as_str() != LZ4)
    {
        return Ok(payload.clone());
    }
    let (size, packed) = payload
        .split_first_chunk::<4>()
        .ok_or("lz4 body shorter than its size")?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > max {
        return Err(format!("lz4 body claims {size} bytes, more than {max}"));
    }
    lz4_flex::block::decompress(packed, size)
        .map(Bytes::from)
        .map_err(|e| format!("lz4: {e}"))
}

/// How a delivered message's body is to be read, from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wire {
    /// JSON in the payload.
    Plain,
    /// gzip-compressed JSON in the payload.
    Gzip,
    /// Body in the bodies bucket under this name (gzip-compressed if `gzip`).
    Object {
        /// Object name.
        name: String,
        /// Whether the object is compressed.
        gzip: bool,
    },
}

/// Reads the body's wire form from a delivered message's headers.
pub(crate) fn wire_of(headers: Option<&HeaderMap>) -> Wire {
    let gzip = headers
        .and_then(|h| h.get(ENCODING))
        .is_some_and(|v| v.as_str() == GZIP);
    match headers.and_then(|h| h.get(OBJECT)) {
        Some(name) => Wire::Object {
            name: name.as_str().to_owned(),
            gzip,
        },
        None if gzip => Wire::Gzip,
        None => Wire::Plain,
    }
}

/// Parses a body, decompressing it first if `gzip`.
pub(crate) fn decode(bytes: &[u8], gzip: bool) -> Result<Message, String> {
    if gzip {
        let plain = gunzip(bytes).map_err(|e| format!("gzip: {e}"))?;
        Message::from_bytes(&plain).map_err(|e| format!("json: {e}"))
    } else {
        Message::from_bytes(bytes).map_err(|e| format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_common::message::{NewTasks, WIRE_VERSION};

    #[test]
    fn gzip_round_trips() {
        let message = Message::NewTasks(NewTasks {
            v: WIRE_VERSION,
            project: "p".into(),
            parent: "x".repeat(10_000),
            tasks: vec![],
        });
        let bytes = message.to_bytes().expect("serializes");
        let packed = gzip(&bytes).expect("compresses");
        assert!(packed.len() < bytes.len() / 10);
        assert_eq!(decode(&packed, true).expect("decodes"), message);
        assert_eq!(decode(&bytes, false).expect("decodes"), message);
        assert!(decode(b"{", false).is_err());
        assert!(decode(b"not gzip", true).is_err());
    }

    #[test]
    fn headers_name_the_wire_form() {
        assert_eq!(wire_of(None), Wire::Plain);
        let mut h = HeaderMap::new();
        h.insert(ENCODING, GZIP);
        assert_eq!(wire_of(Some(&h)), Wire::Gzip);
        h.insert(OBJECT, "abc");
        assert_eq!(
            wire_of(Some(&h)),
            Wire::Object {
                name: "abc".into(),
                gzip: true
            }
        );
    }

    #[test]
    fn lz4_packs_what_is_large_and_compressible_and_reads_it_back() {
        let html = Bytes::from("<li><a href=\"/item/1\">Item</a></li>\n".repeat(200));
        let mut headers = HeaderMap::new();
        let packed = lz4_packed(&mut headers, html.clone());
        assert!(packed.len() < html.len() / 4);
        assert_eq!(wire_of(Some(&headers)), Wire::Plain, "read after unpacking");
        let back = unpacked(Some(&headers), &packed, html.len()).expect("unpacks");
        assert_eq!(back, html);
        assert!(
            unpacked(Some(&headers), &packed, html.len() - 1).is_err(),
            "more than the limit"
        );
        assert!(unpacked(Some(&headers), &packed.slice(..2), html.len()).is_err());
        assert!(unpacked(Some(&headers), &packed.slice(..20), html.len()).is_err());

        let mut small = HeaderMap::new();
        let tiny = Bytes::from_static(b"{\"type\":\"status\"}");
        assert_eq!(lz4_packed(&mut small, tiny.clone()), tiny);
        assert!(small.is_empty(), "small payloads go as they are");
        let mut noisy = HeaderMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let random = Bytes::from(random);
        assert_eq!(lz4_packed(&mut noisy, random.clone()), random);
        assert!(noisy.is_empty(), "incompressible payloads go as they are");
        assert_eq!(unpacked(None, &random, 0).expect("plain"), random);
    }
}
