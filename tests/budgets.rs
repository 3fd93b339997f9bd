//! Opt-in budgets bound what the defaults cannot judge, counted at the server:
//! `max_pages_per_host` stops a host at that many new pages, `max_query_variants` a path at
//! that many query variants, and the crawl summary counts the follows they dropped.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use spindle::site::SiteSpec;
use support::{crawl_project, serve, serve_router};

#[test]
fn max_pages_per_host_stops_a_host_at_its_budget() {
    let served = serve(SiteSpec::small());
    let toml = served.site.project_toml("shop", &served.base);
    let (_, stderr) = crawl_project(&toml.replacen("\n", "\nmax_pages_per_host = 100\n", 1));
    // 100 pages, and robots.txt.
    assert_eq!(served.hits.unique(), 101, "{stderr}");
    assert_eq!(served.hits.max_per_url(), 1);
    assert!(stderr.contains("follows over a budget"), "{stderr}");
}

/// Pages the endless list served.
#[derive(Default)]
struct Served(AtomicU64);

#[derive(serde::Deserialize)]
struct Page {
    page: u64,
}

/// `/list?page=N`: different products on every page, and a link to the next, for ever: no
/// default can tell it from a real catalogue.
async fn list(
    State(served): State<Arc<Served>>,
    Query(Page { page }): Query<Page>,
) -> Html<String> {
    served.0.fetch_add(1, Ordering::Relaxed);
    let products: String = (0..10)
        .map(|i| {
            format!(
                "<li>Product {} of a catalogue without end</li>",
                page * 10 + i
            )
        })
        .collect();
    Html(format!(
        "<html><body><ul>{products}</ul><a href='/list?page={}'>next</a></body></html>",
        page + 1
    ))
}

#[test]
fn max_query_variants_stops_a_path_at_its_budget() {
    let served = Arc::new(Served::default());
    let server = serve_router(
        Router::new()
            .route("/list", get(list))
            .with_state(served.clone()),
    );
    let (_, stderr) = crawl_project(&format!(
        r#"name = "endless"
start = ["{base}/list?page=0"]
allow_private = ["127.0.0.1/32"]
rate = 1000
burst = 1000
max_query_variants = 25

[handlers.start]
follow = [{{ css = "a", callback = "start" }}]
"#,
        base = server.base
    ));
    assert_eq!(served.0.load(Ordering::Relaxed), 25, "{stderr}");
    assert!(stderr.contains("1 follow over a budget"), "{stderr}");
}
