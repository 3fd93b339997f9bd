//! Private addresses: refused unless the task allows them, whether written as an IP literal
//! (checked before connecting) or reached through a name (refused by the resolver).

mod common;

use axum::Router;
use axum::routing::get;
use common::{TestServer, fetcher, task};
use spindle_common::message::ErrorKind;

fn app() -> Router {
    Router::new().route("/", get(|| async { "private hello" }))
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let server = TestServer::start(app()).await;
    let fetcher = fetcher();
    let port = server.addr.port();

    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let mut t = task(url.clone());
        t.fetch.allow_private = false;
        let err = fetcher.fetch(&t).await.expect_err(&url);
        assert_eq!(err.kind, ErrorKind::Refused, "{url}: {}", err.message);
        assert!(!err.retryable);
    }
    assert_eq!(server.connections(), 0, "nothing reached the server");

    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let page = fetcher.fetch(&task(url.clone())).await.expect(&url);
        assert_eq!(page.text, "private hello");
    }
}
