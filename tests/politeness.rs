//! `host_concurrency` means requests in flight to a host, counted by the site itself: with a
//! handler slower than the site, the server sees the project's limit in use all along the
//! crawl (a host's slot frees when its response is in, not when the page has been processed),
//! and never more.

mod support;

use std::sync::Arc;
use std::time::Duration;

use spindle::site::InFlight;

use support::{run, serve_on_own_thread, write};

/// Pages of the site: an index linking every product.
const PRODUCTS: usize = 240;
/// How long the site takes to answer each request.
const SERVER_DELAY: Duration = Duration::from_millis(25);
const HOST_CONCURRENCY: u32 = 4;

#[test]
fn the_server_sees_host_concurrency_in_use_and_never_more_with_a_slow_handler() {
    let concurrency = Arc::new(InFlight::new());
    let counter = concurrency.clone();
    let server = serve_on_own_thread(move |listener, stop| async move {
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let counter = counter.clone();
            async move {
                counter.start();
                tokio::time::sleep(SERVER_DELAY).await;
                counter.end();
                let body = if uri.path() == "/" {
                    (0..PRODUCTS)
                        .map(|i| format!("<a class=\"p\" href=\"/item/{i}\">{i}</a>"))
                        .collect::<String>()
                } else {
                    format!("<h1>{}</h1>", uri.path())
                };
                axum::response::Html(body)
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .expect("serve");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // The detail handler spins for a while: processing is the slow part of this crawl.
    let project = write(
        dir.path(),
        "slow.toml",
        &format!(
            r#"name = "slow"
start = ["{base}/"]
allow_private = true
rate = 10000
burst = 10000
host_concurrency = {HOST_CONCURRENCY}

[defaults]
robots = false

[handlers.start]
follow = [{{ css = "a.p", callback = "detail" }}]

[handlers.detail]
item.title = {{ css = "h1" }}
script = '''
let spin = 0;
while spin < 150000 {{ spin += 1; }}
'''
"#,
            base = server.base
        ),
    );
    let out = dir.path().join("items.jsonl");
    let output = run(
        &[
            "crawl",
            project.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_secs(300),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let items = std::fs::read_to_string(&out).expect("items");
    assert_eq!(items.lines().count(), PRODUCTS, "every product once");
    assert_eq!(
        concurrency.max(),
        HOST_CONCURRENCY,
        "the server never sees more than host_concurrency"
    );
    let mean = concurrency.mean_between(0.2, 0.8);
    assert!(
        mean >= 0.8 * HOST_CONCURRENCY as f64,
        "the server sees {mean:.2} requests in flight on average, of {HOST_CONCURRENCY} allowed"
    );
}
