//! The first request of a task, built from its [`FetchOptions`]: method, headers, user
//! agent, conditional validators, and the body (raw, form or multipart).
//!
//! Rules: `form` and `multipart` make the method POST unless `method` says otherwise, and
//! set their own `Content-Type` unless the task set one; `user_agent` replaces a
//! `User-Agent` header; `etag` / `last_modified` become `If-None-Match` /
//! `If-Modified-Since` unless the task set those headers itself. Cookies are not here: they
//! change per hop (see [`crate::session`]).

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use spindle_common::message::{ErrorKind, FetchOptions, MultipartPart, TaskError};

use crate::error::task_error;

/// Method, headers and body of a task's first request, and the cookies it sets explicitly.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request method.
    pub method: Method,
    /// Request headers, without `Cookie`.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Option<Bytes>,
    /// Cookies of the task (its `cookies`, and pairs of a `Cookie` header it set).
    pub cookies: BTreeMap<String, String>,
}

/// Builds the request of `options`.
pub fn build(options: &FetchOptions) -> Result<Request, TaskError> {
    let has_form = options.form.is_some() || !options.multipart.is_empty();
    let method = match options.method.as_deref() {
        Some(method) => parse_method(method)?,
        None if has_form => Method::POST,
        None => Method::GET,
    };
    let mut headers = build_headers(&options.headers)?;
    let mut cookies = BTreeMap::new();
    for value in headers.get_all(header::COOKIE) {
        let value = String::from_utf8_lossy(value.as_bytes());
        cookies.extend(crate::session::parse_pairs(&value));
    }
    headers.remove(header::COOKIE);
    cookies.extend(options.cookies.clone());
    if let Some(agent) = &options.user_agent {
        headers.insert(header::USER_AGENT, header_value("user_agent", agent)?);
    }
    if let Some(etag) = &options.etag
        && !headers.contains_key(header::IF_NONE_MATCH)
    {
        headers.insert(header::IF_NONE_MATCH, header_value("etag", etag)?);
    }
    if let Some(date) = &options.last_modified
        && !headers.contains_key(header::IF_MODIFIED_SINCE)
    {
        headers.insert(
            header::IF_MODIFIED_SINCE,
            header_value("last_modified", date)?,
        );
    }

    let body = if !options.multipart.is_empty() {
        let fields = options.form.clone().unwrap_or_default();
        let (content_type, body) = encode_multipart(&options.multipart, &fields);
        set_default(&mut headers, header::CONTENT_TYPE, &content_type)?;
        Some(body)
    } else if let Some(form) = &options.form {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        set_default(
            &mut headers,
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )?;
        Some(Bytes::from(encoded))
    } else {
        options.body.clone().map(Bytes::from)
    };
    Ok(Request {
        method,
        headers,
        body,
        cookies,
    })
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &str) -> Result<(), TaskError> {
    if !headers.contains_key(&name) {
        headers.insert(name, header_value("content type", value)?);
    }
    Ok(())
}

fn header_value(what: &str, value: &str) -> Result<HeaderValue, TaskError> {
    HeaderValue::from_str(value.trim()).map_err(|_| {
        task_error(
            ErrorKind::Other,
            false,
            format!("invalid {what} `{value}`: not a valid header value"),
        )
    })
}

/// Parses an HTTP method name (any case).
pub fn parse_method(method: &str) -> Result<Method, TaskError> {
    Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes()).map_err(|_| {
        task_error(
            ErrorKind::Other,
            false,
            format!("invalid HTTP method `{method}`"),
        )
    })
}

/// The task's headers as a header map.
///
/// `Accept-Encoding` is left to the client: setting it by hand turns off transparent
/// decompression, and the processor would get compressed bytes. The framing headers are
/// the client's to compute from the body.
pub fn build_headers(headers: &BTreeMap<String, String>) -> Result<HeaderMap, TaskError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let bad = |what: &str| {
            task_error(
                ErrorKind::Other,
                false,
                format!("invalid request header {what} `{name}`"),
            )
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("name"))?;
        if matches!(
            name,
            header::ACCEPT_ENCODING | header::CONTENT_LENGTH | header::TRANSFER_ENCODING
        ) {
            continue;
        }
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad("value for"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A `multipart/form-data` body (RFC 7578) of `fields` then `parts`, and its content type.
///
/// The body is built in memory (it is small: it comes from a task message), so redirects
/// that keep the body (307, 308) can send it again.
pub fn encode_multipart(
    parts: &[MultipartPart],
    fields: &BTreeMap<String, String>,
) -> (String, Bytes) {
    let boundary = boundary_absent_from(parts, fields);
    let mut body = Vec::new();
    let mut part = |name: &str, filename: Option<&str>, content_type: Option<&str>, value: &str| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", quote(name));
        if let Some(filename) = filename {
            disposition.push_str(&format!("; filename=\"{}\"", quote(filename)));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        let content_type = match (content_type, filename) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => Some("application/octet-stream"),
            (None, None) => None,
        };
        if let Some(t) = content_type {
            body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    };
    for (name, value) in fields {
        part(name, None, None, value);
    }
    for p in parts {
        part(
            &p.name,
            p.filename.as_deref(),
            p.content_type.as_deref(),
            &p.value,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

/// Escapes a name for a quoted header parameter (the HTML form encoding rules).
fn quote(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A random boundary that occurs in no value.
fn boundary_absent_from(parts: &[MultipartPart], fields: &BTreeMap<String, String>) -> String {
    loop {
        // RandomState is seeded randomly per instance: two hashes give 128 random bits.
        let random = |salt: u64| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(salt);
            hasher.finish()
        };
        let boundary = format!("----spindle{:016x}{:016x}", random(1), random(2));
        let clashes = parts.iter().any(|p| p.value.contains(&boundary))
            || fields.values().any(|v| v.contains(&boundary));
        if !clashes {
            return boundary;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_defaults_to_get_and_is_normalised() {
        assert_eq!(parse_method("post").expect("post"), Method::POST);
        let err = parse_method("BAD METHOD").expect_err("space in method");
        assert!(!err.retryable);
        let request = build(&FetchOptions::default()).expect("builds");
        assert_eq!(request.method, Method::GET);
        assert!(request.body.is_none());
    }

    #[test]
    fn headers_are_validated_and_encoding_is_left_to_the_client() {
        let mut headers = BTreeMap::new();
        headers.insert("X-Token".to_owned(), "abc".to_owned());
        headers.insert("Accept-Encoding".to_owned(), "identity".to_owned());
        headers.insert("Content-Length".to_owned(), "99".to_owned());
        let map = build_headers(&headers).expect("valid headers");
        assert_eq!(
            map.get("x-token").map(HeaderValue::as_bytes),
            Some(&b"abc"[..])
        );
        assert!(!map.contains_key(header::ACCEPT_ENCODING));
        assert!(!map.contains_key(header::CONTENT_LENGTH));

        let mut bad = BTreeMap::new();
        bad.insert("Bad Name".to_owned(), "x".to_owned());
        assert_eq!(
            build_headers(&bad).expect_err("space in name").kind,
            ErrorKind::Other
        );
        let mut bad = BTreeMap::new();
        bad.insert("X-Ok".to_owned(), "line\nbreak".to_owned());
        assert!(build_headers(&bad).is_err());
    }

    #[test]
    fn options_become_headers_and_bodies() {
        let mut options = FetchOptions {
            user_agent: Some("mybot/2".into()),
            etag: Some("\"v1\"".into()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            form: Some(BTreeMap::from([
                ("q".to_owned(), "a b&c".to_owned()),
                ("n".to_owned(), "1".to_owned()),
            ])),
            ..FetchOptions::default()
        };
        options.headers.insert("Cookie".into(), "a=1; b=2".into());
        options.cookies.insert("b".into(), "3".into());
        let request = build(&options).expect("builds");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.headers[header::USER_AGENT], "mybot/2");
        assert_eq!(request.headers[header::IF_NONE_MATCH], "\"v1\"");
        assert_eq!(
            request.headers[header::IF_MODIFIED_SINCE],
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
        assert_eq!(
            request.headers[header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(request.body.as_deref(), Some(&b"n=1&q=a+b%26c"[..]));
        assert!(!request.headers.contains_key(header::COOKIE));
        assert_eq!(
            request.cookies,
            BTreeMap::from([
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "3".to_owned())
            ])
        );

        options.method = Some("PUT".into());
        assert_eq!(build(&options).expect("builds").method, Method::PUT);
    }

    #[test]
    fn multipart_bodies_carry_fields_and_files() {
        let parts = vec![MultipartPart {
            name: "upload".into(),
            value: "file body".into(),
            filename: Some("a\"b.txt".into()),
            content_type: Some("text/plain".into()),
        }];
        let fields = BTreeMap::from([("title".to_owned(), "hello".to_owned())]);
        let (content_type, body) = encode_multipart(&parts, &fields);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let body = String::from_utf8(body.to_vec()).expect("utf-8");
        assert_eq!(
            body,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a%22b.txt\"\r\n\
                 Content-Type: text/plain\r\n\r\nfile body\r\n--{boundary}--\r\n"
            )
        );
    }
}
