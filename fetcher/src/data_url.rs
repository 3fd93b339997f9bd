//! `data:` URLs (RFC 2397), decoded locally into a page without any request.
//!
//! The URL is parsed by the `data-url` crate (the WHATWG fetch rules browsers follow), the
//! body capped like a downloaded one, and the text decoded with the same charset rules as an
//! HTTP body: the `charset` parameter of the media type first.

use std::time::Instant;

use data_url::DataUrl;
use spindle_common::message::{ErrorKind, Page, TaskError};

use crate::charset;
use crate::error::task_error;
use crate::http::elapsed_ms;

/// Whether `url` is a `data:` URL (scheme compared case-insensitively).
pub fn is_data_url(url: &str) -> bool {
    url.trim_start()
        .get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
}

/// Decodes a `data:` URL into a page with status 200.
///
/// Failures are not retryable: a malformed URL stays malformed. A body over `max_body` is
/// `TooBig`; a media type outside `allow` (see [`charset::is_extractable`]) keeps its size but
/// not its text.
pub fn fetch(url: &str, max_body: u64, allow: &[String]) -> Result<Page, TaskError> {
    let started = Instant::now();
    let bad = |what: String| task_error(ErrorKind::Refused, false, what);
    let data =
        DataUrl::process(url.trim()).map_err(|err| bad(format!("bad data: URL: {err:?}")))?;
    let (body, _fragment) = data
        .decode_to_vec()
        .map_err(|_| bad("bad data: URL: invalid base64".to_owned()))?;
    if body.len() as u64 > max_body {
        return Err(task_error(
            ErrorKind::TooBig,
            false,
            format!("body larger than {max_body} bytes"),
        ));
    }
    let mime = data.mime_type();
    let content_type = format!("{}/{}", mime.type_, mime.subtype).to_ascii_lowercase();
    let http_charset = mime.get_parameter("charset").map(str::to_owned);
    let (encoding, text) = if charset::is_extractable(&content_type, allow) {
        let decoded = charset::decode(&body, http_charset.as_deref(), None);
        (decoded.encoding.name().to_owned(), decoded.text)
    } else {
        (String::new(), String::new())
    };
    Ok(Page {
        url: url.to_owned(),
        status: 200,
        headers: vec![("content-type".to_owned(), mime.to_string())],
        content_type,
        encoding,
        text,
        body_len: body.len() as u64,
        fetch_ms: elapsed_ms(started),
        script_result: None,
        screenshot_png_base64: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_scheme_is_recognised_in_any_case() {
        assert!(is_data_url("data:,x"));
        assert!(is_data_url("DATA:text/plain,x"));
        assert!(!is_data_url("http://a/"));
        assert!(!is_data_url("dat"));
        assert!(!is_data_url("dé"));
    }

    #[test]
    fn percent_encoded_and_base64_bodies_are_decoded() {
        let page = fetch("data:text/html,%3Ch1%3EHi%3C%2Fh1%3E", 1024, &[]).expect("decodes");
        assert_eq!(page.text, "<h1>Hi</h1>");
        assert_eq!(page.content_type, "text/html");
        assert_eq!(page.status, 200);

        let page = fetch("data:text/plain;base64,SGVsbG8=", 1024, &[]).expect("decodes");
        assert_eq!(page.text, "Hello");
        assert_eq!(page.body_len, 5);

        // No media type: text/plain;charset=US-ASCII, per the RFC.
        let page = fetch("data:,plain", 1024, &[]).expect("decodes");
        assert_eq!(page.content_type, "text/plain");
        assert_eq!(page.text, "plain");
    }

    #[test]
    fn charset_parameter_is_honoured() {
        // "é" in windows-1252 is the single byte 0xE9.
        let page = fetch("data:text/plain;charset=windows-1252,caf%E9", 1024, &[]).expect("ok");
        assert_eq!(page.text, "café");
        assert_eq!(page.encoding, "windows-1252");
    }

    #[test]
    fn binary_is_recorded_not_decoded_and_caps_apply() {
        let page = fetch("data:image/png;base64,iVBORw0KGgo=", 1024, &[]).expect("decodes");
        assert_eq!(page.content_type, "image/png");
        assert_eq!(page.text, "");
        assert_eq!(page.body_len, 8);

        let err = fetch("data:text/plain,0123456789", 4, &[]).expect_err("over the cap");
        assert_eq!(err.kind, ErrorKind::TooBig);

        let err = fetch("data:text/plain;base64,@@@", 1024, &[]).expect_err("bad base64");
        assert_eq!(err.kind, ErrorKind::Refused);
        assert!(!err.retryable);
    }
}
