//! Proxies (HTTP forward, CONNECT tunnel, SOCKS5, each with credentials), their rotation
//! over retries, and certificate validation on and off against a self-signed server.

mod common;

use axum::Router;
use axum::routing::get;
use common::proxy::{HttpProxy, PASSWORD, Socks5Proxy};
use common::tls::TlsServer;
use common::{TestServer, fetcher, task};
use spindle_common::message::ErrorKind;

fn app() -> Router {
    Router::new().route("/hello", get(|| async { "hello through" }))
}

#[tokio::test]
async fn an_http_proxy_with_credentials_forwards_requests() {
    let server = TestServer::start(app()).await;
    let proxy = HttpProxy::start().await;
    let mut t = task(server.url("/hello"));
    t.fetch.proxies = vec![proxy.url()];
    let page = fetcher().fetch(&t).await.expect("proxied");
    assert_eq!(page.text, "hello through");
    let wanted = format!("GET {} HTTP/1.1", server.url("/hello"));
    assert!(proxy.seen().contains(&wanted), "{:?}", proxy.seen());

    // Wrong credentials: the proxy's 407 is what comes back.
    let mut t = task(server.url("/hello"));
    t.fetch.proxies = vec![proxy.url_with("wrong")];
    let page = fetcher().fetch(&t).await.expect("an answer");
    assert_eq!(page.status, 407);
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel() {
    let server = TlsServer::start(app()).await;
    let proxy = HttpProxy::start().await;
    let mut t = task(server.url("/hello"));
    t.fetch.proxies = vec![proxy.url()];
    t.fetch.verify_tls = Some(false);
    let page = fetcher().fetch(&t).await.expect("tunnelled");
    assert_eq!(page.text, "hello through");
    let wanted = format!("CONNECT {} HTTP/1.1", server.addr);
    assert!(proxy.seen().contains(&wanted), "{:?}", proxy.seen());
}

#[tokio::test]
async fn socks5_proxies_with_credentials_carry_requests() {
    let server = TestServer::start(app()).await;
    let proxy = Socks5Proxy::start().await;
    for scheme in ["socks5", "socks5h"] {
        let mut t = task(server.url("/hello"));
        t.fetch.proxies = vec![proxy.url_with(scheme, PASSWORD)];
        let page = fetcher().fetch(&t).await.expect("through socks");
        assert_eq!(page.text, "hello through", "{scheme}");
    }
    assert!(
        proxy.connects().contains(&server.addr.to_string()),
        "{:?}",
        proxy.connects()
    );

    let mut t = task(server.url("/hello"));
    t.fetch.proxies = vec![proxy.url_with("socks5", "wrong")];
    let err = fetcher().fetch(&t).await.expect_err("refused by the proxy");
    assert_eq!(err.kind, ErrorKind::Connect, "{}", err.message);
    assert!(err.retryable);
}

#[tokio::test]
async fn a_failed_attempt_moves_on_to_the_next_proxy() {
    let server = TestServer::start(app()).await;
    let proxy = HttpProxy::start().await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let mut t = task(server.url("/hello"));
    t.fetch.proxies = vec![format!("http://{dead}"), proxy.url()];
    let fetcher = fetcher();

    let err = fetcher.fetch(&t).await.expect_err("first proxy is down");
    assert_eq!(err.kind, ErrorKind::Connect, "{}", err.message);
    assert!(err.retryable);
    assert!(proxy.seen().is_empty());

    t.retries = 1;
    let page = fetcher.fetch(&t).await.expect("second proxy works");
    assert_eq!(page.text, "hello through");
    assert!(!proxy.seen().is_empty());

    t.retries = 2;
    assert!(fetcher.fetch(&t).await.is_err(), "back to the first one");
}

#[tokio::test]
async fn certificates_are_checked_unless_turned_off() {
    let server = TlsServer::start(app()).await;
    let fetcher = fetcher();
    let t = task(server.url("/hello"));
    let err = fetcher.fetch(&t).await.expect_err("self-signed");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(!err.retryable);

    let mut t = task(server.url("/hello"));
    t.fetch.verify_tls = Some(false);
    let page = fetcher.fetch(&t).await.expect("accepted");
    assert_eq!(page.text, "hello through");
}
