//! A hostile site crawled with the defaults alone: traps that make one page look like many
//! must stop within a bounded number of requests (counted at the server), the crawl must end
//! on its own, and its memory must stay bounded (the child's peak RSS).
//!
//! The site, served here on 127.0.0.1:
//! - `/session/?sid=X`: a session-id trap in the query. Every visit sets a `sid` cookie and
//!   links to two URLs that differ only in a fresh `sid`; the content is the same.
//! - `/s/<sid>/home`: the same trap with the session id in the path, where URL rules cannot
//!   see it, and echoed into the page's text.
//! - `/filter?...`: a query-permutation trap: links that reorder the filter parameters or add
//!   one more; the products shown are the same.
//! - `/calendar?month=YYYY-MM`: a calendar trap, next and previous month for ever, each month
//!   the same page but for its name.
//!
//! Then, with the same defaults, a real shop whose lists paginate 1,000 pages deep (2,000
//! products in one category, two a page, so list pages differ in little text) is crawled in
//! full: no defence may cut it. The same with 20,000 products, 20 a page, is a constant
//! change here (measured in the README, "Hostile cases").

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use spindle::site::SiteSpec;
use support::{by_url, jsonl, run, serve, serve_router, write};

/// Requests per trap, counted by the site.
#[derive(Default)]
struct Counts {
    by_trap: std::sync::Mutex<HashMap<&'static str, u64>>,
    fresh: AtomicU64,
}

impl Counts {
    fn hit(&self, trap: &'static str) {
        let mut by = self
            .by_trap
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *by.entry(trap).or_default() += 1;
    }

    fn of(&self, trap: &str) -> u64 {
        self.by_trap
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(trap)
            .copied()
            .unwrap_or(0)
    }

    /// A fresh session id: 24 hex digits, as servers make them.
    fn sid(&self) -> String {
        let n = self.fresh.fetch_add(1, Ordering::Relaxed);
        let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("{:016x}a{:07x}", z ^ (z >> 31), n)
    }
}

/// Text of some length that is the same on every page of one trap.
fn prose(topic: &str) -> String {
    (0..70)
        .map(|i| {
            format!(
                "<p>Note {i} about the {topic}: visitors read paragraph {i} before they go on to the next part of the site.</p>"
            )
        })
        .collect()
}

async fn start() -> Html<String> {
    Html(
        "<h1>Hostile</h1><a href='/session/?sid=first0000000000000000001'>session</a>\
         <a href='/s/first0000000000000000002/home'>path session</a>\
         <a href='/filter?color=red&size=m'>filter</a>\
         <a href='/calendar?month=2026-06'>calendar</a>"
            .to_string(),
    )
}

async fn session(State(counts): State<Arc<Counts>>) -> impl IntoResponse {
    counts.hit("session");
    let (a, b) = (counts.sid(), counts.sid());
    (
        [(header::SET_COOKIE, format!("sid={a}; Path=/"))],
        Html(format!(
            "<h1>Welcome</h1>{}<a href='/session/?sid={a}'>home</a><a href='/session/?sid={b}'>again</a>",
            prose("welcome")
        )),
    )
}

async fn path_session(
    State(counts): State<Arc<Counts>>,
    Path(sid): Path<String>,
) -> impl IntoResponse {
    counts.hit("path_session");
    let (a, b) = (counts.sid(), counts.sid());
    (
        [(header::SET_COOKIE, format!("s={a}; Path=/"))],
        Html(format!(
            "<h1>Welcome</h1><p>Your session is {sid}.</p>{}<a href='/s/{a}/home'>home</a><a href='/s/{b}/home'>again</a>",
            prose("shop")
        )),
    )
}

async fn filter(State(counts): State<Arc<Counts>>, RawQuery(query): RawQuery) -> Html<String> {
    counts.hit("filter");
    let query = query.unwrap_or_default();
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    let mut links = String::new();
    // Every rotation of the parameters, and each with one more filter.
    for turn in 0..params.len() {
        params.rotate_left(1);
        links.push_str(&format!(
            "<a href='/filter?{}'>r{turn}</a>",
            params.join("&")
        ));
    }
    for (i, extra) in [
        "sort=asc",
        "sort=desc",
        "color=blue",
        "size=l",
        "in_stock=1",
    ]
    .iter()
    .enumerate()
    {
        links.push_str(&format!("<a href='/filter?{query}&{extra}'>f{i}</a>"));
    }
    let products: String = (0..20)
        .map(|i| format!("<li>Garden chair model {i}, oak and steel, 4{i}.90</li>"))
        .collect();
    Html(format!(
        "<h1>Chairs</h1><ul>{products}</ul>{}{links}",
        prose("chairs")
    ))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

async fn calendar(State(counts): State<Arc<Counts>>, RawQuery(query): RawQuery) -> Html<String> {
    counts.hit("calendar");
    let month = query
        .as_deref()
        .and_then(|q| q.strip_prefix("month="))
        .and_then(|m| {
            let (y, m) = m.split_once('-')?;
            Some((y.parse::<i64>().ok()?, m.parse::<i64>().ok()?))
        })
        .map_or(2026 * 12 + 5, |(y, m)| y * 12 + m - 1);
    let label = |n: i64| format!("{:04}-{:02}", n.div_euclid(12), n.rem_euclid(12) + 1);
    let name = format!(
        "{} {}",
        MONTHS[usize::try_from(month.rem_euclid(12)).unwrap_or(0)],
        month.div_euclid(12)
    );
    let days: String = (1..=30).map(|d| format!("<td>{d}</td>")).collect();
    Html(format!(
        "<h1>Events in {name}</h1><table><tr>{days}</tr></table><p>No events in {name}.</p>{}\
         <a href='/calendar?month={}'>previous</a><a href='/calendar?month={}'>next</a>",
        prose("calendar"),
        label(month - 1),
        label(month + 1)
    ))
}

fn site(counts: Arc<Counts>) -> Router {
    Router::new()
        .route("/", get(start))
        .route("/session/", get(session))
        .route("/s/{sid}/home", get(path_session))
        .route("/filter", get(filter))
        .route("/calendar", get(calendar))
        .with_state(counts)
}

/// Products of the real site (1,000 list pages deep whatever the number).
const PRODUCTS: u32 = 2_000;

#[test]
fn traps_stop_within_their_bounds_with_the_defaults() {
    let counts = Arc::new(Counts::default());
    let served = serve_router(site(counts.clone()));
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write(
        dir.path(),
        "hostile.toml",
        &format!(
            r#"name = "hostile"
start = ["{base}/"]
allow_private = ["127.0.0.1/32"]
rate = 1000
burst = 1000

[handlers.start]
follow = [{{ css = "a", callback = "start" }}]
"#,
            base = served.base
        ),
    );
    let out = dir.path().join("items.jsonl");
    let data = dir.path().join("data");
    let output = run(
        &[
            "crawl",
            project.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
            "--data",
            data.to_str().expect("utf-8"),
        ],
        Duration::from_secs(300),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "crawl failed:\n{stderr}");
    // A dropped page says why: the first filter page's parameters rotated are the same page.
    let task = run(
        &[
            "task",
            "hostile",
            &format!("{}/filter?size=m&color=red", served.base),
            "--data",
            data.to_str().expect("utf-8"),
        ],
        Duration::from_secs(60),
    );
    let record = String::from_utf8_lossy(&task.stdout);
    assert!(task.status.success(), "{record}");
    assert!(
        record.contains("near-duplicate of task ") && record.contains("follows were not expanded"),
        "{record}"
    );
    let figures: Vec<(&str, u64)> = ["session", "path_session", "filter", "calendar"]
        .iter()
        .map(|t| (*t, counts.of(t)))
        .collect();
    // Peak RSS of the crawl (the only child this test process waited for).
    let rss_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    eprintln!(
        "requests per trap: {figures:?}; crawl peak RSS {} MiB\n{stderr}",
        rss_kib / 1024
    );
    // The session trap in the query is one task: the session parameter is not part of it.
    assert_eq!(counts.of("session"), 1, "{figures:?}");
    // In the path, the session makes new URLs; the second page is a near-duplicate of the
    // first and its follows are not expanded: the first page and its two links.
    assert!(counts.of("path_session") <= 3, "{figures:?}");
    assert!(counts.of("filter") <= 20, "{figures:?}");
    assert!(counts.of("calendar") <= 300, "{figures:?}");
    assert!(
        stderr.contains("near-duplicate pages (follows not expanded)"),
        "{stderr}"
    );
    assert!(rss_kib < 300 * 1024, "peak RSS {rss_kib} KiB");

    real_site_is_crawled_in_full();
}

/// [`PRODUCTS`] products in one category, 1,000 list pages deep: every product found, every
/// URL fetched once, nothing taken for a duplicate.
fn real_site_is_crawled_in_full() {
    let served = serve(SiteSpec {
        categories: 1,
        products: PRODUCTS,
        per_page: PRODUCTS / 1_000,
        ..SiteSpec::small()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = served
        .site
        .project_toml("shop", &served.base)
        .replace("allow_private = true", "allow_private = [\"127.0.0.1/32\"]");
    assert!(toml.contains("127.0.0.1/32"), "{toml}");
    let project = write(dir.path(), "shop.toml", &toml);
    let out = dir.path().join("items.jsonl");
    let output = run(
        &[
            "crawl",
            project.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_secs(600),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "crawl failed:\n{stderr}");
    eprintln!("real site: {}", stderr.lines().last().unwrap_or_default());
    let items = by_url(jsonl(&std::fs::read_to_string(&out).expect("output file")));
    let expected = by_url(served.site.expected_items(&served.base));
    assert_eq!(expected.len(), PRODUCTS as usize);
    assert_eq!(items.len(), expected.len(), "one item per product");
    let pages = served.site.spec().pages();
    assert_eq!(
        served.hits.unique(),
        pages + 1,
        "every unique URL is fetched"
    );
    assert_eq!(served.hits.max_per_url(), 1, "no URL is fetched twice");
    assert!(!stderr.contains("near-duplicate"), "{stderr}");
}
