//! Message bodies on the wire: JSON, gzip-compressed when too large, or moved to the object
//! store when still too large.
//!
//! A message is [`Message::to_bytes`] JSON. When that exceeds the server's max payload it is
//! gzip-compressed and flagged with [`ENCODING`]; when even that does not fit, the compressed
//! body goes to the bodies bucket and the message carries its object name in [`OBJECT`] with
//! an empty payload. Nothing is ever dropped for its size.
//!
//! gzip (pure Rust, already in the build) rather than zstd (a C build): on two shared cores the
//! build time matters more than zstd's better speed, and large bodies are rare.

use std::io::{Read, Write};

use async_nats::HeaderMap;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::message::Message;

/// Header naming the encoding of the body; absent means plain JSON.
pub(crate) const ENCODING: &str = "Spindle-Encoding";
/// Value of [`ENCODING`] for a gzip-compressed body.
pub(crate) const GZIP: &str = "gzip";
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
    use crate::message::{NewTasks, WIRE_VERSION};

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
}
