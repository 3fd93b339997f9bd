//! Tests of the served site over real sockets: pages, 404s, hit counting, and a crawl of the
//! whole site proving [`SiteSpec::pages`] right.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Hits, Site, SiteSpec, serve};

/// A site served on a port-0 listener, stopped by [`Server::stop`].
struct Server {
    site: Arc<Site>,
    hits: Arc<Hits>,
    /// `127.0.0.1:PORT`.
    authority: String,
    client: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(spec: SiteSpec) -> Server {
        // reqwest is built without a default crypto provider; another test may have
        // installed one already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let site = Arc::new(Site::new(spec));
        let hits = Arc::new(Hits::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let authority = listener.local_addr().expect("local address").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(site.clone(), hits.clone(), listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Server {
            site,
            hits,
            authority,
            client,
            stop,
            task,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// Fetches `path_and_query`: its status, content type and body.
    async fn get(&self, path_and_query: &str) -> (u16, String, String) {
        let response = self
            .client
            .get(format!("{}{path_and_query}", self.base()))
            .send()
            .await
            .expect("request succeeds");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.expect("body reads");
        (status, content_type, body)
    }

    /// Stops the server and checks it shut down cleanly.
    async fn stop(self) {
        self.stop.send(()).expect("server still running");
        self.task
            .await
            .expect("server task finished")
            .expect("server stopped without error");
    }
}

const HTML: &str = "text/html; charset=utf-8";

#[tokio::test]
async fn serves_the_index_and_list_pages() {
    let server = Server::start(SiteSpec::small()).await;

    let (status, content_type, index) = server.get("/").await;
    assert_eq!((status, content_type.as_str()), (200, HTML));
    assert!(index.starts_with("<!DOCTYPE html>"));
    assert!(index.contains("<meta charset=\"utf-8\">"));
    for category in 0..4 {
        let link = format!("<a class=\"category\" href=\"/cat/{category}/page/1\">");
        assert!(index.contains(&link), "{link} missing from the index");
    }

    // Category 1 holds ids 1, 5, 9, …; page 1 holds the first 20 of them.
    let (status, content_type, list) = server.get("/cat/1/page/1").await;
    assert_eq!((status, content_type.as_str()), (200, HTML));
    assert_eq!(list.matches("<article><h3><a href=").count(), 20);
    let authority = &server.authority;
    for link in [
        format!("<article><h3><a href=\"http://{authority}/item/1\">"),
        "<article><h3><a href=\"/item/5\">".to_owned(),
        "<article><h3><a href=\"/item/17?utm_source=list&amp;utm_medium=web\">".to_owned(),
        "<article><h3><a href=\"/item/13\">".to_owned(),
        format!(
            "<article><h3><a href=\"http://{authority}/item/29?utm_source=list&amp;utm_medium=web#reviews\">"
        ),
    ] {
        assert!(list.contains(&link), "{link} missing from {list}");
    }
    let title = server.site.products()[16].title.replace('&', "&amp;");
    assert!(list.contains(&format!("\">{title}</a></h3>")));
    assert!(list.contains("<li class=\"next\"><a href=\"/cat/1/page/2\">next</a></li>"));
    assert!(!list.contains("class=\"previous\""));

    // Category 2 holds ids 2, 6, …, 1998 (500 products): pages 1 to 25, the last full.
    let (status, _, last) = server.get("/cat/2/page/25").await;
    assert_eq!(status, 200);
    assert!(last.contains("href=\"/item/1998\""));
    assert!(!last.contains("class=\"next\""));
    assert!(last.contains("<li class=\"previous\"><a href=\"/cat/2/page/24\">"));
    let (status, content_type, _) = server.get("/cat/2/page/26").await;
    assert_eq!((status, content_type.as_str()), (404, HTML));

    server.stop().await;
}

#[tokio::test]
async fn serves_detail_pages() {
    let server = Server::start(SiteSpec::small()).await;
    let site = server.site.clone();

    let product = &site.products()[49];
    assert_eq!(product.id, 50);
    let (status, content_type, page) = server.get("/item/50").await;
    assert_eq!((status, content_type.as_str()), (200, HTML));
    let title = product.title.replace('&', "&amp;");
    assert!(page.contains(&format!("<h1>{title}</h1>")), "{page}");
    assert!(title.contains('—'), "titles carry a non-ASCII character");
    assert!(page.contains(&format!("<p class=\"price\">£{:.2}</p>", product.price)));
    assert!(page.contains("<img class=\"cover\" src=\"/img/50.jpg\""));
    let related = page
        .split("<section class=\"related\">")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("a related section");
    // 3 related products (the first is the next id) and, as 50 is a multiple of 50, a link
    // to a missing page; one of the related links carries a fragment.
    assert_eq!(related.matches("<a href=").count(), 4);
    assert!(related.contains("<a href=\"/item/51"));
    assert!(related.contains("<a href=\"/missing/50\">"));
    assert!(related.contains("#reviews\">"));

    let (_, _, other) = server.get("/item/49").await;
    assert!(!other.contains("/missing/"));
    // The last product's first related link wraps around to the first.
    let (_, _, last) = server.get("/item/2000").await;
    assert!(last.contains("<a href=\"/item/1\"") || last.contains("<a href=\"/item/1#"));
    // Tracking parameters do not change the page (only its hit count).
    let (status, _, tracked) = server.get("/item/50?utm_source=list&utm_medium=web").await;
    assert_eq!((status, tracked), (200, page));

    server.stop().await;
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let server = Server::start(SiteSpec::small()).await;
    for path in [
        "/missing/50",
        "/missing/1",
        "/item/0",
        "/item/2001",
        "/item/017",
        "/item/+17",
        "/item/abc",
        "/item/99999999999",
        "/item/%FF",
        "/cat/4/page/1",
        "/cat/0/page/0",
        "/cat/0/page/01",
        "/cat/x/page/1",
        "/img/17.jpg",
        "/nope",
        "/item/17/extra",
    ] {
        let (status, content_type, body) = server.get(path).await;
        assert_eq!((status, content_type.as_str()), (404, HTML), "{path}");
        assert!(body.contains("Not found"), "{path}");
        assert!(!body.contains("<h1>") && !body.contains("price"), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn counts_every_request() {
    let server = Server::start(SiteSpec::small()).await;
    server.get("/").await;
    server.get("/item/3").await;
    server.get("/item/3").await;
    server.get("/item/3?utm_source=list").await;
    server.get("/missing/50").await;
    let response = server
        .client
        .post(format!("{}/", server.base()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(response.status().as_u16(), 405);

    let hits = &server.hits;
    assert_eq!(hits.count("/"), 2);
    assert_eq!(hits.count("/item/3"), 2);
    assert_eq!(hits.count("/item/3?utm_source=list"), 1);
    assert_eq!(hits.count("/missing/50"), 1);
    assert_eq!(hits.count("/item/4"), 0);
    assert_eq!(hits.total(), 6);
    assert_eq!(hits.unique(), 4);
    assert_eq!(hits.max_per_url(), 2);
    assert_eq!(
        hits.snapshot(),
        vec![
            ("/".to_owned(), 2),
            ("/item/3".to_owned(), 2),
            ("/item/3?utm_source=list".to_owned(), 1),
            ("/missing/50".to_owned(), 1),
        ]
    );
    server.stop().await;
}

#[test]
fn expected_items_cover_every_product() {
    let site = Site::new(SiteSpec::small());
    let items = site.expected_items("http://127.0.0.1:1234");
    assert_eq!(items.len(), site.products().len());
    assert_eq!(items.len(), 2000);
    let urls: HashSet<&str> = items
        .iter()
        .map(|item| item["url"].as_str().expect("url is a string"))
        .collect();
    assert_eq!(urls.len(), 2000);
    assert!(urls.contains("http://127.0.0.1:1234/item/1"));
    assert!(urls.contains("http://127.0.0.1:1234/item/2000"));
    assert!(items.iter().all(|item| item["price"].is_f64()));
}

/// The specs the crawl test proves [`SiteSpec::pages`] on: the preset, uneven pages with
/// padding, empty categories, pages that divide exactly with every product linking to a
/// missing page, no products at all, and the degenerate zeros.
fn crawl_specs() -> Vec<SiteSpec> {
    let base = SiteSpec::small();
    vec![
        base,
        SiteSpec {
            categories: 3,
            products: 95,
            per_page: 7,
            related: 4,
            missing_every: 4,
            detail_padding: 700,
        },
        SiteSpec {
            categories: 7,
            products: 5,
            per_page: 2,
            related: 1,
            missing_every: 0,
            ..base
        },
        SiteSpec {
            categories: 2,
            products: 40,
            per_page: 10,
            related: 2,
            missing_every: 1,
            ..base
        },
        SiteSpec {
            products: 0,
            ..base
        },
        SiteSpec {
            categories: 0,
            products: 9,
            per_page: 0,
            related: 0,
            missing_every: 3,
            detail_padding: 0,
        },
    ]
}

/// What a breadth-first crawl of a served site found.
struct Crawl {
    /// Every distinct normalized path-and-query fetched.
    fetched: HashSet<String>,
    /// How many of them answered 404.
    not_found: u64,
    /// The items read off the detail pages, in the fields of `Site::expected_items`.
    items: Vec<serde_json::Map<String, Value>>,
}

/// Crawls the site from `/`, following every `href` on every page, each normalized the way
/// DESIGN.md says a crawler must (fragment dropped, `utm_*` parameters removed) and fetched
/// once. Every link on the site is matched by one of the project's `follow` selectors
/// except `li.previous a`, whose targets the `li.next a` chain reaches anyway, so this finds
/// exactly the pages the project's crawl does.
async fn crawl(server: &Server) -> Crawl {
    let mut fetched = HashSet::from(["/".to_owned()]);
    let mut queue = VecDeque::from(["/".to_owned()]);
    let mut not_found = 0;
    let mut items = Vec::new();
    while let Some(path) = queue.pop_front() {
        let (status, content_type, body) = server.get(&path).await;
        assert_eq!(content_type, HTML, "{path}");
        match status {
            200 => {}
            404 => {
                assert!(path.starts_with("/missing/"), "{path} is 404");
                not_found += 1;
                continue;
            }
            other => panic!("{path} answered {other}"),
        }
        if path.starts_with("/item/") {
            items.push(read_item(&server.base(), &path, &body));
        }
        for href in hrefs(&body) {
            let next = normalize(&href, &server.authority);
            if fetched.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    Crawl {
        fetched,
        not_found,
        items,
    }
}

/// The `href` attribute values of `html`, with `&amp;` decoded.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .expect("split yields at least one part")
                .replace("&amp;", "&")
        })
        .collect()
}

/// `href` as the path and query a crawler fetches for it.
fn normalize(href: &str, authority: &str) -> String {
    let without_fragment = href.split('#').next().expect("split yields a part");
    let path_and_query = match without_fragment.strip_prefix("http://") {
        Some(rest) => {
            let slash = rest.find('/').expect("absolute links have a path");
            assert_eq!(&rest[..slash], authority, "links stay on the site");
            &rest[slash..]
        }
        None => {
            assert!(without_fragment.starts_with('/'), "unexpected href {href}");
            without_fragment
        }
    };
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| !param.is_empty() && !param.starts_with("utm_"))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// The item of a detail page, read with plain string search the way the project's rules
/// read it with CSS.
fn read_item(base: &str, path: &str, body: &str) -> serde_json::Map<String, Value> {
    let between = |start: &str, end: &str| -> String {
        let rest = body.split(start).nth(1).expect("start marker present");
        rest.split(end).next().expect("a part").to_owned()
    };
    let title = between("<h1>", "</h1>").replace("&amp;", "&");
    let price_text = between("<p class=\"price\">", "</p>");
    let price: f64 = price_text
        .trim_start_matches('£')
        .parse()
        .expect("price is a number");
    let image = between("<img class=\"cover\" src=\"", "\"");
    let mut item = serde_json::Map::new();
    item.insert("title".to_owned(), Value::from(title));
    item.insert("price".to_owned(), Value::from(price));
    item.insert("image".to_owned(), Value::from(format!("{base}{image}")));
    item.insert("url".to_owned(), Value::from(format!("{base}{path}")));
    item
}

#[tokio::test]
async fn pages_matches_a_crawl_of_the_served_site() {
    for spec in crawl_specs() {
        let server = Server::start(spec).await;
        let crawl = crawl(&server).await;

        assert_eq!(crawl.fetched.len() as u64, spec.pages(), "{spec:?}");
        assert_eq!(crawl.not_found, spec.missing_pages(), "{spec:?}");
        let list_pages = crawl
            .fetched
            .iter()
            .filter(|path| path.starts_with("/cat/"))
            .count();
        assert_eq!(list_pages as u64, spec.list_pages(), "{spec:?}");
        assert!(
            crawl.fetched.iter().all(|path| !path.contains("utm_")),
            "{spec:?}"
        );

        // The server saw each page exactly once.
        let hits = &server.hits;
        assert_eq!(hits.unique(), spec.pages(), "{spec:?}");
        assert_eq!(hits.total(), spec.pages(), "{spec:?}");
        assert_eq!(hits.max_per_url(), 1, "{spec:?}");

        // The pages carry exactly the expected items.
        let mut items = crawl.items;
        items.sort_by_key(|item| item["url"].as_str().map(str::to_owned));
        let mut expected = server.site.expected_items(&server.base());
        expected.sort_by_key(|item| item["url"].as_str().map(str::to_owned));
        assert_eq!(items, expected, "{spec:?}");

        server.stop().await;
    }
}
