//! Per-task options against a local server: method, user agent, cookies and sessions, form
//! and multipart bodies, redirects off, connect timeout, content-type allow list, URL
//! length cap, `data:` URLs and conditional requests.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use common::{TestServer, fetcher, task};
use spindle_common::message::{ErrorKind, MultipartPart};

fn header_of(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// Echoes method, user agent, cookie, content type and body, one a line.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> String {
    format!(
        "{method}\n{}\n{}\n{}\n{}",
        header_of(&headers, "user-agent"),
        header_of(&headers, "cookie"),
        header_of(&headers, "content-type"),
        String::from_utf8_lossy(&body)
    )
}

async fn conditional(headers: HeaderMap) -> Response {
    if header_of(&headers, "if-none-match") == "\"v1\"" {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::ETAG, "\"v1\""),
            (header::LAST_MODIFIED, "Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
        "fresh body",
    )
        .into_response()
}

fn app() -> Router {
    Router::new()
        .route("/echo", any(echo))
        .route(
            "/login",
            get(|| async { ([(header::SET_COOKIE, "sid=abc123; Path=/")], "logged in") }),
        )
        .route(
            "/login-and-go",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [
                        (header::SET_COOKIE, "hop=1; Path=/"),
                        (header::LOCATION, "/echo"),
                    ],
                )
            }),
        )
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/echo")]) }),
        )
        .route(
            "/report.pdf",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/pdf")],
                    "%PDF-1.4 binary",
                )
            }),
        )
        .route(
            "/data.csv",
            get(|| async { ([(header::CONTENT_TYPE, "text/csv")], "a,b\n1,2\n") }),
        )
        .route("/cond", get(conditional))
}

fn line(text: &str, n: usize) -> &str {
    text.split('\n').nth(n).unwrap_or("<missing>")
}

#[tokio::test]
async fn method_and_user_agent_are_sent() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/echo"));
    t.fetch.method = Some("put".into());
    t.fetch
        .headers
        .insert("User-Agent".into(), "from-headers/1".into());
    t.fetch.user_agent = Some("ua-option/2".into());
    t.fetch.body = Some("raw body".into());
    let page = fetcher().fetch(&t).await.expect("echoed");
    assert_eq!(line(&page.text, 0), "PUT");
    assert_eq!(line(&page.text, 1), "ua-option/2", "user_agent wins");
    assert_eq!(line(&page.text, 4), "raw body");
}

#[tokio::test]
async fn task_cookies_are_sent() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/echo"));
    t.fetch.cookies = BTreeMap::from([("lang".to_owned(), "fr".to_owned())]);
    let page = fetcher().fetch(&t).await.expect("echoed");
    assert_eq!(line(&page.text, 2), "lang=fr");
}

#[tokio::test]
async fn a_session_keeps_cookies_across_requests_of_a_project() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();

    let mut login = task(server.url("/login"));
    login.fetch.session = true;
    fetcher.fetch(&login).await.expect("logged in");

    let mut next = task(server.url("/echo"));
    next.fetch.session = true;
    let page = fetcher.fetch(&next).await.expect("echoed");
    assert_eq!(line(&page.text, 2), "sid=abc123", "the session's cookie");

    // Another project has its own jar, and a task without session uses none.
    let mut other = next.clone();
    other.project = "other".into();
    let page = fetcher.fetch(&other).await.expect("echoed");
    assert_eq!(line(&page.text, 2), "-");
    next.fetch.session = false;
    let page = fetcher.fetch(&next).await.expect("echoed");
    assert_eq!(line(&page.text, 2), "-");
}

#[tokio::test]
async fn cookies_set_by_a_redirect_reach_the_next_hop() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/login-and-go")))
        .await
        .expect("followed");
    assert_eq!(line(&page.text, 2), "hop=1");
}

#[tokio::test]
async fn form_fields_are_posted_url_encoded() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/echo"));
    t.fetch.form = Some(BTreeMap::from([
        ("q".to_owned(), "rust crawler".to_owned()),
        ("page".to_owned(), "2".to_owned()),
    ]));
    let page = fetcher().fetch(&t).await.expect("echoed");
    assert_eq!(line(&page.text, 0), "POST");
    assert_eq!(line(&page.text, 3), "application/x-www-form-urlencoded");
    assert_eq!(line(&page.text, 4), "page=2&q=rust+crawler");
}

#[tokio::test]
async fn multipart_uploads_reach_the_server() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/echo"));
    t.fetch.form = Some(BTreeMap::from([("title".to_owned(), "report".to_owned())]));
    t.fetch.multipart = vec![MultipartPart {
        name: "file".into(),
        value: "hello, upload".into(),
        filename: Some("notes.txt".into()),
        content_type: Some("text/plain".into()),
    }];
    let page = fetcher().fetch(&t).await.expect("echoed");
    assert_eq!(line(&page.text, 0), "POST");
    let content_type = line(&page.text, 3);
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("multipart content type, got {content_type}"));
    let body = page.text.splitn(5, '\n').nth(4).expect("body");
    assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
    assert!(
        body.contains("Content-Disposition: form-data; name=\"title\"\r\n\r\nreport\r\n"),
        "{body}"
    );
    assert!(
        body.contains(
            "Content-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nhello, upload\r\n"
        ),
        "{body}"
    );
    assert!(body.ends_with(&format!("--{boundary}--\r\n")), "{body}");
}

#[tokio::test]
async fn redirects_can_be_turned_off() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/moved"));
    t.fetch.follow_redirects = Some(false);
    let page = fetcher().fetch(&t).await.expect("the redirect is the page");
    assert_eq!(page.status, 302);
    assert_eq!(page.url, server.url("/moved"));
    assert_eq!(page.header("location"), Some("/echo"));

    t.fetch.follow_redirects = None;
    let page = fetcher().fetch(&t).await.expect("followed");
    assert_eq!(page.status, 200);
    assert_eq!(page.url, server.url("/echo"));
}

#[tokio::test]
async fn the_connect_timeout_is_the_tasks() {
    // A listener that never accepts, with a backlog of one: once it is full, the kernel
    // drops further SYNs and a connect hangs.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    let listener = socket.listen(1).expect("listen");
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    let mut t = task(format!("http://{addr}/"));
    t.fetch.robots = Some(false);
    t.fetch.connect_timeout_ms = Some(300);
    t.fetch.timeout_ms = Some(20_000);
    let started = Instant::now();
    let err = fetcher().fetch(&t).await.expect_err("cannot connect");
    let elapsed = started.elapsed();
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    assert!(err.retryable);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    drop(listener);
}

#[tokio::test]
async fn binary_content_is_recorded_not_decoded() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();
    let page = fetcher
        .fetch(&task(server.url("/report.pdf")))
        .await
        .expect("fetched");
    assert_eq!(page.content_type, "application/pdf");
    assert_eq!(page.text, "");
    assert_eq!(page.body_len, 15);

    // An allow list narrows what is decoded...
    let mut t = task(server.url("/data.csv"));
    t.fetch.content_types = vec!["application/json".into()];
    let page = fetcher.fetch(&t).await.expect("fetched");
    assert_eq!(page.text, "");
    // ...and widens it.
    t.fetch.content_types = vec!["text/csv".into()];
    let page = fetcher.fetch(&t).await.expect("fetched");
    assert_eq!(page.text, "a,b\n1,2\n");
    let mut t = task(server.url("/report.pdf"));
    t.fetch.content_types = vec!["application/pdf".into()];
    let page = fetcher.fetch(&t).await.expect("fetched");
    assert_eq!(page.text, "%PDF-1.4 binary");
}

#[tokio::test]
async fn overlong_urls_are_refused_without_a_request() {
    let server = TestServer::start(app()).await;
    let url = format!("{}?q={}", server.url("/echo"), "x".repeat(9000));
    let err = fetcher().fetch(&task(url)).await.expect_err("too long");
    assert_eq!(err.kind, ErrorKind::Refused);
    assert_eq!(err.message, "URL longer than 8192 bytes");
    assert!(!err.retryable);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn data_urls_are_decoded_locally() {
    let page = fetcher()
        .fetch(&task("data:text/html;base64,PGgxPkhlbGxvPC9oMT4="))
        .await
        .expect("decoded");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html");
    assert_eq!(page.text, "<h1>Hello</h1>");
}

#[tokio::test]
async fn validators_are_sent_back_and_304_comes_back() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();
    let first = fetcher
        .fetch(&task(server.url("/cond")))
        .await
        .expect("fresh");
    assert_eq!(first.status, 200);
    assert_eq!(first.text, "fresh body");

    let mut again = task(server.url("/cond"));
    again.fetch.etag = first.header("etag").map(str::to_owned);
    again.fetch.last_modified = first.header("last-modified").map(str::to_owned);
    let second = fetcher.fetch(&again).await.expect("not modified");
    assert_eq!(second.status, 304);
    assert_eq!(second.text, "");
}
