//! Crawls a site with the `spider` crate and extracts the same item from each product page as
//! Spindle's bench project (title, price, image, url), printing one JSON line of figures:
//!
//! ```text
//! spider-peer BASE_URL CONCURRENCY
//! {"pages": 2141, "products": 2000, "duplicate_items": 1510, "seconds": 0.42}
//! ```
//!
//! `pages` counts every page spider handed over; `products` the distinct product pages
//! (by path, query and fragment dropped); `duplicate_items` the items beyond one per product
//! (spider fetches a product again under each distinct query string it links to, such as
//! tracking parameters). The parent process measures CPU time and peak memory.

use std::collections::HashMap;
use std::time::Instant;

use scraper::{Html, Selector};
use spider::tokio;
use spider::website::Website;

/// One product's fields, as the bench project extracts them.
fn item(html: &str, url: &str) -> Option<serde_json::Value> {
    let document = Html::parse_document(html);
    let text = |css: &str| {
        let selector = Selector::parse(css).ok()?;
        document
            .select(&selector)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_string())
    };
    let title = text("h1")?;
    let price = text("p.price").and_then(|p| {
        p.chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            .collect::<String>()
            .parse::<f64>()
            .ok()
    });
    let image = Selector::parse("img.cover")
        .ok()
        .and_then(|s| document.select(&s).next()?.value().attr("src").map(str::to_string));
    Some(serde_json::json!({ "title": title, "price": price, "image": image, "url": url }))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(concurrency)) = (args.get(1), args.get(2).and_then(|c| c.parse().ok()))
    else {
        eprintln!("usage: spider-peer BASE_URL CONCURRENCY");
        std::process::exit(2);
    };
    let started = Instant::now();
    let mut website = Website::new(base);
    website
        .with_concurrency_limit(Some(concurrency))
        .with_respect_robots_txt(false)
        .with_request_timeout(Some(std::time::Duration::from_secs(30)));
    // Pages come through a broadcast channel; one that falls this far behind loses pages,
    // which are counted (a run that lost any does not compare).
    let mut pages = website.subscribe(16_384);
    let extract = tokio::spawn(async move {
        let (mut count, mut lost, mut items) = (0_u64, 0_u64, HashMap::<String, u64>::new());
        loop {
            let page = match pages.recv().await {
                Ok(page) => page,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    lost += n;
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            count += 1;
            let url = page.get_url().to_string();
            let path = url.split(['?', '#']).next().unwrap_or(&url).to_string();
            if path.contains("/item/") && item(&page.get_html(), &path).is_some() {
                *items.entry(path).or_default() += 1;
            }
        }
        (count, lost, items)
    });
    website.crawl().await;
    website.unsubscribe();
    let (pages, lost, items) = extract.await.unwrap_or_default();
    let products = items.len() as u64;
    let duplicates: u64 = items.values().map(|n| n - 1).sum();
    println!(
        "{}",
        serde_json::json!({
            "pages": pages,
            "lost_pages": lost,
            "products": products,
            "duplicate_items": duplicates,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
}
