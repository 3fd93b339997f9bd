//! `Fetcher::fetch` against a local server: statuses, redirects, body caps, timeouts,
//! connection errors, request options and connection reuse.

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use common::{TestServer, fetcher, task};
use spindle_common::message::ErrorKind;

const MIB: usize = 1024 * 1024;

fn redirect(status: StatusCode, to: impl Into<String>) -> Response {
    (status, [(header::LOCATION, to.into())]).into_response()
}

/// Echoes what the server saw of the request, one field a line.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    format!(
        "{method}\n{}\n{}\n{}\n{}",
        header("user-agent"),
        header("x-custom"),
        header("content-type"),
        String::from_utf8_lossy(&body)
    )
}

fn app() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "Text/HTML; charset=utf-8")],
                    "<h1>Hello</h1>",
                )
            }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "<p>no such page</p>") }),
        )
        .route(
            "/chain/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    "end of chain".into_response()
                } else {
                    redirect(StatusCode::FOUND, format!("/chain/{}", n - 1))
                }
            }),
        )
        .route(
            "/loop",
            get(|| async { redirect(StatusCode::MOVED_PERMANENTLY, "/loop") }),
        )
        .route(
            "/to-ftp",
            get(|| async { redirect(StatusCode::FOUND, "ftp://files.example/x") }),
        )
        .route(
            "/form",
            post(|| async { redirect(StatusCode::FOUND, "/echo") }),
        )
        .route(
            "/form307",
            post(|| async { redirect(StatusCode::TEMPORARY_REDIRECT, "/echo") }),
        )
        .route("/echo", any(echo))
        .route("/big", get(|| async { vec![b'a'; 2 * MIB] }))
        .route(
            "/big-chunked",
            get(|| async {
                // No Content-Length: the cap must be enforced while streaming.
                let chunks =
                    (0..32).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'a'; 64 * 1024])));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/stall",
            get(|| async {
                let first = futures::stream::iter([Ok::<_, Infallible>(Bytes::from("partial "))]);
                let body = futures::StreamExt::chain(first, futures::stream::pending());
                (
                    [(header::CONTENT_TYPE, "text/plain")],
                    Body::from_stream(body),
                )
            }),
        )
}

#[tokio::test]
async fn fetches_a_page() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/hello")))
        .await
        .expect("page fetched");
    assert_eq!(page.status, 200);
    assert_eq!(page.url, server.url("/hello"));
    assert_eq!(page.text, "<h1>Hello</h1>");
    assert_eq!(page.body_len, 14);
    assert_eq!(page.content_type, "text/html");
    assert_eq!(page.encoding, "UTF-8");
    assert!(
        page.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "Text/HTML; charset=utf-8"),
        "{:?}",
        page.headers
    );
    assert!(page.fetch_ms < 10_000);
}

#[tokio::test]
async fn a_404_is_a_page_not_an_error() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/missing")))
        .await
        .expect("404 is returned as a page");
    assert_eq!(page.status, 404);
    assert_eq!(page.text, "<p>no such page</p>");
}

#[tokio::test]
async fn redirect_chain_is_followed_to_the_final_url() {
    let server = TestServer::start(app()).await;
    let page = fetcher()
        .fetch(&task(server.url("/chain/4")))
        .await
        .expect("chain followed");
    assert_eq!(page.status, 200);
    assert_eq!(page.url, server.url("/chain/0"));
    assert_eq!(page.text, "end of chain");
}

#[tokio::test]
async fn redirects_beyond_the_limit_fail() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();

    let err = fetcher
        .fetch(&task(server.url("/loop")))
        .await
        .expect_err("a loop never ends");
    assert_eq!(err.kind, ErrorKind::Redirect);
    assert_eq!(err.message, "too many redirects (10)");
    assert!(!err.retryable);

    let mut limited = task(server.url("/chain/3"));
    limited.fetch.max_redirects = Some(2);
    let err = fetcher.fetch(&limited).await.expect_err("3 hops > 2");
    assert_eq!(err.message, "too many redirects (2)");
    limited.fetch.max_redirects = Some(3);
    fetcher.fetch(&limited).await.expect("3 hops allowed");
}

#[tokio::test]
async fn redirect_to_another_scheme_is_refused() {
    let server = TestServer::start(app()).await;
    let err = fetcher()
        .fetch(&task(server.url("/to-ftp")))
        .await
        .expect_err("ftp is not fetched");
    assert_eq!(err.kind, ErrorKind::Refused);
    assert!(err.message.contains("ftp"), "{}", err.message);
}

#[tokio::test]
async fn post_sends_body_and_headers() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/echo"));
    t.fetch.method = Some("post".into());
    t.fetch.body = Some("a=1&b=2".into());
    t.fetch
        .headers
        .insert("X-Custom".into(), "custom value".into());
    t.fetch.headers.insert(
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    );
    let page = fetcher().fetch(&t).await.expect("echoed");
    let ua = format!("spindle/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        page.text,
        format!("POST\n{ua}\ncustom value\napplication/x-www-form-urlencoded\na=1&b=2")
    );

    // The task's own User-Agent replaces the default one.
    let mut t = task(server.url("/echo"));
    t.fetch
        .headers
        .insert("User-Agent".into(), "mybot/1".into());
    let page = fetcher().fetch(&t).await.expect("echoed");
    assert!(page.text.starts_with("GET\nmybot/1\n"), "{}", page.text);
}

#[tokio::test]
async fn post_becomes_get_after_302_but_not_after_307() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();
    let mut t = task(server.url("/form"));
    t.fetch.method = Some("POST".into());
    t.fetch.body = Some("x=1".into());
    t.fetch
        .headers
        .insert("Content-Type".into(), "text/plain".into());

    let page = fetcher.fetch(&t).await.expect("followed");
    assert_eq!(page.url, server.url("/echo"));
    let lines: Vec<&str> = page.text.split('\n').collect();
    assert_eq!(lines[0], "GET");
    assert_eq!(lines[3], "-", "content-type dropped with the body");
    assert_eq!(lines[4], "");

    t.url = server.url("/form307");
    let page = fetcher.fetch(&t).await.expect("followed");
    let lines: Vec<&str> = page.text.split('\n').collect();
    assert_eq!(lines[0], "POST");
    assert_eq!(lines[4], "x=1");
}

#[tokio::test]
async fn body_over_the_cap_is_too_big() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();
    for path in ["/big", "/big-chunked"] {
        let mut t = task(server.url(path));
        t.fetch.max_body = Some(MIB as u64);
        let err = fetcher.fetch(&t).await.expect_err(path);
        assert_eq!(err.kind, ErrorKind::TooBig, "{path}");
        assert!(!err.retryable);

        // The same body within a larger cap is fine.
        t.fetch.max_body = Some(4 * MIB as u64);
        let page = fetcher.fetch(&t).await.expect(path);
        assert_eq!(page.body_len, 2 * MIB as u64);
    }
}

#[tokio::test]
async fn a_stalled_body_times_out_within_the_task_timeout() {
    let server = TestServer::start(app()).await;
    let mut t = task(server.url("/stall"));
    t.fetch.timeout_ms = Some(500);
    let started = Instant::now();
    let err = fetcher().fetch(&t).await.expect_err("never completes");
    let elapsed = started.elapsed();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.retryable);
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // A port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let err = fetcher()
        .fetch(&task(format!("http://{addr}/")))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Connect, "{}", err.message);
    assert!(err.retryable);
}

#[tokio::test]
async fn unknown_host_is_a_dns_error() {
    let err = fetcher()
        .fetch(&task("http://no-such-host.invalid/"))
        .await
        .expect_err("the .invalid TLD never resolves");
    assert_eq!(err.kind, ErrorKind::Dns, "{}", err.message);
    assert!(err.retryable);
}

#[tokio::test]
async fn malformed_urls_and_other_schemes_are_refused() {
    let fetcher = fetcher();
    for url in ["not a url", "ftp://example.com/", "mailto:a@b.c"] {
        let err = fetcher.fetch(&task(url)).await.expect_err(url);
        assert_eq!(err.kind, ErrorKind::Refused, "{url}");
        assert!(!err.retryable);
    }
}

#[tokio::test]
async fn connections_are_reused() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();
    for _ in 0..3 {
        fetcher
            .fetch(&task(server.url("/hello")))
            .await
            .expect("fetched");
    }
    fetcher
        .fetch(&task(server.url("/chain/3")))
        .await
        .expect("redirect hops ride the same connection");
    assert_eq!(server.connections(), 1);
}
