//! One HTTP exchange: the redirect loop, cookies per hop, and the capped body, decoded into a
//! [`Page`] ([`fetch`]) or kept as bytes ([`fetch_raw`], for bodies the fetcher reads itself).
//!
//! Invariants kept here:
//!
//! - Every hop goes through [`guard::check_url`] and the URL length cap before it is sent,
//!   and the client's resolver refuses private addresses on connect (see [`crate::proxy`]).
//! - Cookies are computed per hop from the fetch's jar and the task's own cookies (sent to
//!   the task's origin only); each response's `Set-Cookie` is stored before the next hop.
//! - The body is read as a stream and capped after decompression: a large body, or a small
//!   compressed one that inflates hugely, fails with `TooBig` once the cap is crossed, with
//!   at most the cap in memory.
//! - Any HTTP status comes back as a page; what a 404 means is the service's decision.
//!
//! The caller puts a deadline around [`fetch`]; nothing here waits without bound otherwise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Method, Response};
use spindle_common::cpu::{CpuStage, measure};
use spindle_common::message::{ErrorKind, Page, TaskError};
use spindle_common::netrange::PrivateAccess;
use url::{Origin, Url};

use crate::charset;
use crate::error::{classify, task_error};
use crate::guard;
use crate::redirect::{self, Hop};
use crate::request::Request;
use crate::session;

/// Bodies up to this size are decoded on the async worker itself.
const INLINE_DECODE_BYTES: u64 = 256 * 1024;

/// Most of a redirect response's body read to keep its connection reusable; a longer one is
/// dropped with its connection instead.
const REDIRECT_DRAIN_LIMIT: usize = 64 * 1024;

/// Longest wait for a redirect's body: a server that trickles it must not hold up the hop.
const REDIRECT_DRAIN_TIME: Duration = Duration::from_millis(500);

/// Everything one HTTP fetch needs besides the client.
#[derive(Debug)]
pub struct Exchange<'a> {
    /// The first request.
    pub request: Request,
    /// The task's URL.
    pub url: Url,
    /// The fetch's cookie jar.
    pub jar: &'a reqwest::cookie::Jar,
    /// Which private addresses may be reached.
    pub access: PrivateAccess,
    /// Whether redirects are followed; when not, a redirect response is the page.
    pub follow_redirects: bool,
    /// Redirects followed before the fetch fails.
    pub max_redirects: u32,
    /// Largest body, decompressed.
    pub max_body: u64,
    /// Longest URL of any hop.
    pub max_url_len: usize,
    /// Media types whose text is decoded (see [`charset::is_extractable`]).
    pub content_types: &'a [String],
}

/// Checks a hop's URL before it is requested: length, scheme, private-address literals.
pub fn check_hop(url: &Url, access: &PrivateAccess, max_url_len: usize) -> Result<(), TaskError> {
    if url.as_str().len() > max_url_len {
        return Err(task_error(
            ErrorKind::Refused,
            false,
            format!("URL longer than {max_url_len} bytes"),
        ));
    }
    guard::check_url(url, access)
}

/// A final response with its body as it came (decompressed per `Content-Encoding`, capped,
/// not decoded to text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPage {
    /// URL after redirects.
    pub url: String,
    /// HTTP status code.
    pub status: u16,
    /// Response headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Content type without parameters, lower-case, empty if none was sent.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// Time spent fetching, in milliseconds.
    pub fetch_ms: u32,
}

impl RawPage {
    /// The value of a response header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs the exchange: the redirect loop, then the body. `started` is when the task started,
/// for the page's `fetch_ms`.
pub async fn fetch(client: &Client, ex: Exchange<'_>, started: Instant) -> Result<Page, TaskError> {
    let response = final_response(client, &ex).await?;
    read_page(response, ex.max_body, ex.content_types, started).await
}

/// Runs the exchange like [`fetch`] but keeps the body as bytes, whatever its content type.
pub async fn fetch_raw(
    client: &Client,
    ex: Exchange<'_>,
    started: Instant,
) -> Result<RawPage, TaskError> {
    let mut response = final_response(client, &ex).await?;
    let head = Head::of(&response);
    let body = read_body(&mut response, ex.max_body).await?;
    Ok(RawPage {
        url: head.url.to_string(),
        status: head.status,
        headers: head.headers,
        content_type: head.content_type,
        body,
        fetch_ms: elapsed_ms(started),
    })
}

/// The redirect loop: the response that is the page (its body not read yet).
async fn final_response(client: &Client, ex: &Exchange<'_>) -> Result<Response, TaskError> {
    let task_origin = ex.url.origin();
    let mut hop = Hop {
        method: ex.request.method.clone(),
        url: ex.url.clone(),
        headers: ex.request.headers.clone(),
        body: ex.request.body.clone(),
    };
    let mut redirects = 0;
    loop {
        check_hop(&hop.url, &ex.access, ex.max_url_len)?;
        let mut response = send(client, &hop, ex.jar, &ex.request.cookies, &task_origin).await?;
        let location = (ex.follow_redirects && redirect::is_redirect(response.status()))
            .then(|| response.headers().get(header::LOCATION).cloned())
            .flatten();
        // A redirect without a Location has nowhere to go: it is the page.
        let Some(location) = location else {
            return Ok(response);
        };
        if redirects >= ex.max_redirects {
            return Err(task_error(
                ErrorKind::Redirect,
                false,
                format!("too many redirects ({})", ex.max_redirects),
            ));
        }
        redirects += 1;
        drain(&mut response).await;
        hop.follow(response.status(), &location)?;
    }
}

/// Sends one hop with its cookies and stores the cookies its response sets.
async fn send(
    client: &Client,
    hop: &Hop,
    jar: &reqwest::cookie::Jar,
    task_cookies: &BTreeMap<String, String>,
    task_origin: &Origin,
) -> Result<Response, TaskError> {
    let no_cookies = BTreeMap::new();
    // The task's own cookies belong to its origin, like its credentials.
    let explicit = if hop.url.origin() == *task_origin {
        task_cookies
    } else {
        &no_cookies
    };
    let mut headers = hop.headers.clone();
    if let Some(cookie) = session::header_for(jar, &hop.url, explicit) {
        headers.insert(header::COOKIE, cookie);
    }
    let mut request = client
        .request(hop.method.clone(), hop.url.clone())
        .headers(headers);
    if let Some(body) = &hop.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.map_err(|err| classify(&err))?;
    session::store(jar, response.headers(), &hop.url);
    Ok(response)
}

/// GETs a small resource (robots.txt) with `headers`: follows up to `max_redirects`
/// redirects, each hop checked, and returns the final status with at most `limit` bytes of
/// body (the rest is not read). A redirect left over at the limit is returned as is.
pub async fn get_small(
    client: &Client,
    url: Url,
    headers: HeaderMap,
    access: &PrivateAccess,
    limit: usize,
    max_redirects: u32,
) -> Result<(u16, Vec<u8>), TaskError> {
    let mut hop = Hop {
        method: Method::GET,
        url,
        headers,
        body: None,
    };
    let mut redirects = 0;
    loop {
        guard::check_url(&hop.url, access)?;
        let mut response = client
            .get(hop.url.clone())
            .headers(hop.headers.clone())
            .send()
            .await
            .map_err(|err| classify(&err))?;
        let status = response.status();
        let location = redirect::is_redirect(status)
            .then(|| response.headers().get(header::LOCATION).cloned())
            .flatten();
        match location {
            Some(location) if redirects < max_redirects => {
                redirects += 1;
                drain(&mut response).await;
                hop.follow(status, &location)?;
            }
            _ => {
                let mut body = Vec::new();
                while body.len() < limit {
                    match response.chunk().await.map_err(|err| classify(&err))? {
                        Some(chunk) => body.extend_from_slice(&chunk),
                        None => break,
                    }
                }
                body.truncate(limit);
                return Ok((status.as_u16(), body));
            }
        }
    }
}

/// Reads a redirect's (short) body so its connection can go back to the pool. Gives up past
/// [`REDIRECT_DRAIN_LIMIT`] bytes or [`REDIRECT_DRAIN_TIME`]; the connection is then dropped
/// with the response, which costs a reconnect and nothing else.
async fn drain(response: &mut Response) {
    let read_all = async {
        let mut read = 0;
        while read <= REDIRECT_DRAIN_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                // Errors do not matter here: the hop is followed anyway.
                Ok(None) | Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(REDIRECT_DRAIN_TIME, read_all).await;
}

/// What the final response says before its body.
struct Head {
    status: u16,
    url: Url,
    headers: Vec<(String, String)>,
    content_type: String,
    charset: Option<String>,
}

impl Head {
    fn of(response: &Response) -> Head {
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let (content_type, charset) = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| charset::split_content_type(&String::from_utf8_lossy(value.as_bytes())))
            .unwrap_or_default();
        Head {
            status: response.status().as_u16(),
            url: response.url().clone(),
            headers,
            content_type,
            charset,
        }
    }
}

/// Turns the final response into a page: headers, capped body, decoded text.
async fn read_page(
    mut response: Response,
    max_body: u64,
    content_types: &[String],
    started: Instant,
) -> Result<Page, TaskError> {
    let Head {
        status,
        url,
        headers,
        content_type,
        charset: http_charset,
    } = Head::of(&response);
    let body = read_body(&mut response, max_body).await?;
    let body_len = body.len() as u64;
    let (encoding, text) = if charset::is_extractable(&content_type, content_types) {
        let host = url.host_str().map(str::to_owned);
        let decode = move || {
            measure(CpuStage::Fetch, || {
                charset::decode(&body, http_charset.as_deref(), host.as_deref())
            })
        };
        // Detection and decoding are linear in the body (up to the cap, megabytes): a big
        // body goes off the async workers so it does not stall every other fetch; a typical
        // page decodes in microseconds, less than a hand-off to another thread costs.
        let decoded = if body_len <= INLINE_DECODE_BYTES {
            decode()
        } else {
            tokio::task::spawn_blocking(decode).await.map_err(|err| {
                task_error(ErrorKind::Other, false, format!("decoding body: {err}"))
            })?
        };
        (decoded.encoding.name().to_owned(), decoded.text)
    } else {
        (String::new(), String::new())
    };
    Ok(Page {
        url: url.to_string(),
        status,
        headers,
        content_type,
        encoding,
        text,
        body_len,
        fetch_ms: elapsed_ms(started),
        script_result: None,
        screenshot_png_base64: None,
    })
}

/// The body, decompressed, failing with `TooBig` as soon as it would exceed `max_body`.
async fn read_body(response: &mut Response, max_body: u64) -> Result<Vec<u8>, TaskError> {
    let too_big = || {
        task_error(
            ErrorKind::TooBig,
            false,
            format!("body larger than {max_body} bytes"),
        )
    };
    // Known only for an uncompressed body; a compressed one is caught while reading.
    let expected = response.content_length();
    if expected.is_some_and(|len| len > max_body) {
        return Err(too_big());
    }
    let capacity = expected.map_or(0, |len| usize::try_from(len).unwrap_or(0));
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(|err| classify(&err))? {
        if (body.len() as u64).saturating_add(chunk.len() as u64) > max_body {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Milliseconds since `started`, saturating (a u32 holds 49 days).
pub(crate) fn elapsed_ms(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_urls_and_other_schemes_are_refused_per_hop() {
        let long = Url::parse(&format!("http://a.test/{}", "x".repeat(100))).expect("URL");
        let err = check_hop(&long, &PrivateAccess::Nothing, 64).expect_err("too long");
        assert_eq!(err.kind, ErrorKind::Refused);
        assert_eq!(err.message, "URL longer than 64 bytes");
        assert!(check_hop(&long, &PrivateAccess::Nothing, 1024).is_ok());
        let ftp = Url::parse("ftp://a.test/").expect("URL");
        assert!(check_hop(&ftp, &PrivateAccess::All, 1024).is_err());
    }
}
