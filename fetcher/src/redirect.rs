//! Following redirects by hand.
//!
//! The HTTP clients never follow redirects themselves: each hop is a new [`Hop`] that the
//! fetch loop checks (scheme, private-address guard) before sending, exactly like the first
//! request. This module computes the next hop from a redirect response, with the method and
//! header rewrites browsers apply.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use spindle_common::message::{ErrorKind, TaskError};
use url::Url;

use crate::error::task_error;

/// One request of a fetch: the first one, or one redirect hop.
#[derive(Debug, Clone)]
pub struct Hop {
    /// Request method.
    pub method: Method,
    /// Where to send it.
    pub url: Url,
    /// Headers from the task, minus what earlier hops stripped.
    pub headers: HeaderMap,
    /// Request body, if any.
    pub body: Option<Bytes>,
}

/// Whether `status` is a redirect that carries a `Location` to follow.
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// Headers describing a request body: meaningless once the body is dropped.
const BODY_HEADERS: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
];

/// Credentials and routing that belong to one origin and must not leak to another.
const ORIGIN_HEADERS: [header::HeaderName; 5] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::WWW_AUTHENTICATE,
    header::HOST,
];

impl Hop {
    /// Turns this hop into the one a `status` redirect to `location` asks for.
    ///
    /// 303 makes every method but HEAD a GET; 301 and 302 make a POST a GET (what browsers
    /// do, whatever the RFC once said); 307 and 308 keep method and body.
    pub fn follow(&mut self, status: StatusCode, location: &HeaderValue) -> Result<(), TaskError> {
        // Location should be ASCII, but servers send raw UTF-8; joining percent-encodes it.
        let location = String::from_utf8_lossy(location.as_bytes());
        let next = self.url.join(location.trim()).map_err(|err| {
            task_error(
                ErrorKind::Refused,
                false,
                format!(
                    "invalid redirect location `{location}` from {}: {err}",
                    self.url
                ),
            )
        })?;
        let to_get = match status {
            StatusCode::SEE_OTHER => self.method != Method::HEAD,
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => self.method == Method::POST,
            _ => false,
        };
        if to_get {
            self.method = Method::GET;
            self.body = None;
            for name in &BODY_HEADERS {
                self.headers.remove(name);
            }
        }
        if next.origin() != self.url.origin() {
            for name in &ORIGIN_HEADERS {
                self.headers.remove(name);
            }
        }
        self.url = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(method: Method, url: &str) -> Hop {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        Hop {
            method,
            url: Url::parse(url).expect("test URL"),
            headers,
            body: Some(Bytes::from_static(b"data")),
        }
    }

    #[test]
    fn relative_locations_resolve_against_the_current_url() {
        let mut h = hop(Method::GET, "http://a.test/x/y?q=1");
        h.follow(StatusCode::FOUND, &HeaderValue::from_static("../z"))
            .expect("valid location");
        assert_eq!(h.url.as_str(), "http://a.test/z");
        h.follow(StatusCode::FOUND, &HeaderValue::from_static("//b.test/p"))
            .expect("valid location");
        assert_eq!(h.url.as_str(), "http://b.test/p");
    }

    #[test]
    fn post_becomes_get_on_301_302_303_only() {
        for status in [
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::FOUND,
            StatusCode::SEE_OTHER,
        ] {
            let mut h = hop(Method::POST, "http://a.test/form");
            h.follow(status, &HeaderValue::from_static("/done"))
                .expect("valid location");
            assert_eq!(h.method, Method::GET, "{status}");
            assert!(h.body.is_none());
            assert!(!h.headers.contains_key(header::CONTENT_TYPE));
            // Same origin: credentials stay.
            assert!(h.headers.contains_key(header::AUTHORIZATION));
        }
        for status in [
            StatusCode::TEMPORARY_REDIRECT,
            StatusCode::PERMANENT_REDIRECT,
        ] {
            let mut h = hop(Method::POST, "http://a.test/form");
            h.follow(status, &HeaderValue::from_static("/again"))
                .expect("valid location");
            assert_eq!(h.method, Method::POST, "{status}");
            assert_eq!(h.body.as_deref(), Some(&b"data"[..]));
        }
        let mut h = hop(Method::PUT, "http://a.test/");
        h.follow(StatusCode::FOUND, &HeaderValue::from_static("/x"))
            .expect("valid location");
        assert_eq!(h.method, Method::PUT);
        let mut h = hop(Method::HEAD, "http://a.test/");
        h.follow(StatusCode::SEE_OTHER, &HeaderValue::from_static("/x"))
            .expect("valid location");
        assert_eq!(h.method, Method::HEAD);
    }

    #[test]
    fn credentials_do_not_cross_origins() {
        let mut h = hop(Method::GET, "http://a.test/");
        h.follow(
            StatusCode::TEMPORARY_REDIRECT,
            &HeaderValue::from_static("https://a.test/"),
        )
        .expect("valid location");
        assert!(!h.headers.contains_key(header::AUTHORIZATION));
        assert!(h.headers.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn non_ascii_locations_are_percent_encoded_and_bad_ones_refused() {
        let mut h = hop(Method::GET, "http://a.test/");
        let raw = HeaderValue::from_bytes("/café".as_bytes()).expect("opaque bytes allowed");
        h.follow(StatusCode::FOUND, &raw).expect("valid location");
        assert_eq!(h.url.as_str(), "http://a.test/caf%C3%A9");

        let err = h
            .follow(StatusCode::FOUND, &HeaderValue::from_static("http://[::1"))
            .expect_err("unparsable");
        assert_eq!(err.kind, ErrorKind::Refused);
        assert!(!err.retryable);
    }

    #[test]
    fn only_redirect_statuses_are_followed() {
        assert!(is_redirect(StatusCode::FOUND));
        assert!(is_redirect(StatusCode::PERMANENT_REDIRECT));
        assert!(!is_redirect(StatusCode::NOT_MODIFIED));
        assert!(!is_redirect(StatusCode::MULTIPLE_CHOICES));
        assert!(!is_redirect(StatusCode::OK));
    }
}
