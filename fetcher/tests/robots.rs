//! robots.txt: disallowed URLs refused, one robots.txt request per origin, the switch off,
//! 404 allowing all, 5xx disallowing for a while, and Crawl-delay spacing requests.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::{TestServer, fetcher, task};
use spindle_common::message::ErrorKind;

/// A site whose robots.txt is `robots` (answered with `status`), counting robots.txt hits
/// and recording when each page was requested.
struct Site {
    server: TestServer,
    robots_hits: Arc<AtomicUsize>,
    page_times: Arc<Mutex<Vec<Instant>>>,
}

async fn site(status: StatusCode, robots: &'static str) -> Site {
    let robots_hits = Arc::new(AtomicUsize::new(0));
    let page_times = Arc::new(Mutex::new(Vec::new()));
    let (hits, times) = (robots_hits.clone(), page_times.clone());
    let router = Router::new()
        .route(
            "/robots.txt",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async move { (status, robots) }
            }),
        )
        .route(
            "/{*path}",
            get(move || {
                times.lock().expect("times lock").push(Instant::now());
                async { "a page" }
            }),
        );
    Site {
        server: TestServer::start(router).await,
        robots_hits,
        page_times,
    }
}

#[tokio::test]
async fn disallowed_urls_are_refused_and_robots_is_read_once() {
    let site = site(
        StatusCode::OK,
        "User-agent: *\nDisallow: /private\n\nUser-agent: otherbot\nDisallow: /\n",
    )
    .await;
    let fetcher = fetcher();
    for _ in 0..3 {
        let err = fetcher
            .fetch(&task(site.server.url("/private/page")))
            .await
            .expect_err("disallowed");
        assert_eq!(err.kind, ErrorKind::Refused);
        assert_eq!(err.message, "disallowed by robots.txt");
        assert!(!err.retryable);
        let page = fetcher
            .fetch(&task(site.server.url("/public")))
            .await
            .expect("allowed");
        assert_eq!(page.text, "a page");
    }
    assert_eq!(site.robots_hits.load(Ordering::SeqCst), 1, "cached");
    assert_eq!(site.page_times.lock().expect("lock").len(), 3);

    // The agent token of the task's user agent picks its group.
    let mut t = task(site.server.url("/public"));
    t.fetch.user_agent = Some("OtherBot/2.0".into());
    let err = fetcher.fetch(&t).await.expect_err("otherbot may not");
    assert_eq!(err.kind, ErrorKind::Refused);

    // Switched off, robots.txt is neither asked nor obeyed.
    let mut t = task(site.server.url("/private/page"));
    t.fetch.robots = Some(false);
    fetcher.fetch(&t).await.expect("robots off");
}

#[tokio::test]
async fn a_missing_robots_txt_allows_everything() {
    let site = site(StatusCode::NOT_FOUND, "Disallow: /").await;
    let page = fetcher()
        .fetch(&task(site.server.url("/anything")))
        .await
        .expect("allowed");
    assert_eq!(page.text, "a page");
}

#[tokio::test]
async fn a_failing_robots_txt_disallows_the_host_for_a_while() {
    let site = site(StatusCode::SERVICE_UNAVAILABLE, "").await;
    let fetcher = fetcher();
    for _ in 0..2 {
        let err = fetcher
            .fetch(&task(site.server.url("/page")))
            .await
            .expect_err("treated as disallowed");
        assert_eq!(err.kind, ErrorKind::Robots);
        assert!(err.retryable);
        assert!(err.message.contains("HTTP 503"), "{}", err.message);
    }
    assert_eq!(
        site.robots_hits.load(Ordering::SeqCst),
        1,
        "kept for a while"
    );
    assert!(site.page_times.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn crawl_delay_spaces_requests_to_a_host() {
    let site = site(StatusCode::OK, "User-agent: *\nCrawl-delay: 0.4\n").await;
    let fetcher = Arc::new(fetcher());
    let mut fetches = Vec::new();
    for i in 0..3 {
        let (fetcher, url) = (fetcher.clone(), site.server.url(&format!("/p{i}")));
        fetches.push(tokio::spawn(async move { fetcher.fetch(&task(url)).await }));
    }
    for fetch in fetches {
        fetch.await.expect("no panic").expect("fetched");
    }
    let mut times = site.page_times.lock().expect("lock").clone();
    times.sort();
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(380), "gap {gap:?}");
    }
}
