//! Fetcher throughput against a local server: plain HTTP fetches per second (small pages,
//! keep-alive, 64 in flight) and rendered pages per second with the tab pool (skipped when
//! Chromium is not installed).
//!
//! `cargo bench -p spindle-fetcher` runs the full measurement. Run any other way (as
//! `cargo test --all-targets` does) it makes a short smoke run instead, so the suite stays
//! fast. Figures on two shared cores are noisy: each figure is the median of three rounds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use futures::StreamExt;
use spindle_common::Task;
use spindle_common::message::{FetchMode, FetchOptions, JsOptions};
use spindle_fetcher::config::DEFAULT_CHROMIUM_PATH;
use spindle_fetcher::{Fetcher, FetcherConfig};

/// A small page, about 2 KiB.
fn page() -> String {
    let items: String = (0..40)
        .map(|i| format!("<li><a href=\"/item/{i}\">Item {i}</a></li>\n"))
        .collect();
    format!(
        "<!doctype html><html><head><title>Bench</title></head><body><ul>{items}</ul></body></html>"
    )
}

fn task(url: String, mode: FetchMode) -> Task {
    Task {
        taskid: "t".into(),
        fetch: FetchOptions {
            allow_private: true,
            mode,
            js: (mode == FetchMode::Js).then(JsOptions::default),
            ..FetchOptions::default()
        },
        ..Task::new("bench", &url, "start")
    }
}

/// Runs `count` fetches of `url`, `in_flight` at once; returns fetches per second.
async fn round(
    fetcher: &Arc<Fetcher>,
    url: &str,
    mode: FetchMode,
    count: usize,
    in_flight: usize,
) -> f64 {
    let started = Instant::now();
    let failures = futures::stream::iter(0..count)
        .map(|i| {
            let (fetcher, t) = (fetcher.clone(), task(format!("{url}?n={i}"), mode));
            async move { fetcher.fetch(&t).await.is_err() }
        })
        .buffer_unordered(in_flight)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    assert_eq!(failures, 0, "every fetch succeeds");
    count as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let html = Arc::new(page());
    let router = Router::new().route(
        "/page",
        get(move || {
            let html = html.clone();
            async move { Html(html.as_str().to_owned()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("bench server runs");
    });
    let url = format!("http://{addr}/page");

    let chromium = PathBuf::from(DEFAULT_CHROMIUM_PATH);
    let config = FetcherConfig {
        max_tabs: 4,
        chromium_path: Some(chromium.clone()),
        ..FetcherConfig::default()
    };
    let fetcher = Arc::new(Fetcher::new(&config).expect("fetcher builds"));

    let (http_count, rounds) = if full { (5_000, 3) } else { (200, 1) };
    // Warm-up: connections, robots.txt cache.
    round(&fetcher, &url, FetchMode::Http, 64, 64).await;
    let mut figures = Vec::new();
    for _ in 0..rounds {
        figures.push(round(&fetcher, &url, FetchMode::Http, http_count, 64).await);
    }
    println!(
        "http: {:.0} fetches/s (median of {rounds} rounds of {http_count}, 64 in flight, ~2 KiB pages)",
        median(figures)
    );

    if !full {
        println!("rendered: skipped in the smoke run (use cargo bench)");
    } else if !chromium.is_file() {
        println!(
            "rendered: skipped, Chromium not found at {}",
            chromium.display()
        );
    } else {
        let render_count = 100;
        round(&fetcher, &url, FetchMode::Js, 8, 4).await;
        let mut figures = Vec::new();
        for _ in 0..rounds {
            figures.push(round(&fetcher, &url, FetchMode::Js, render_count, 4).await);
        }
        println!(
            "rendered: {:.1} pages/s (median of {rounds} rounds of {render_count}, 4 tabs)",
            median(figures)
        );
    }
    tokio::time::timeout(Duration::from_secs(30), fetcher.shutdown())
        .await
        .expect("browser stops");
}
