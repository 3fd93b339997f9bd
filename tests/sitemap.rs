//! `spindle crawl` of a project that starts from a sitemap index only (a gzipped child
//! sitemap served as a file download, and a plain one), against a small site served here;
//! and `spindle check` of a bad `sitemaps` key.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use support::{Server, by_url, jsonl, run, serve_on_own_thread, write};

/// Product pages the gzipped sitemap lists.
const PRODUCTS: usize = 5;

/// The site: requests counted by path.
#[derive(Clone)]
struct Site {
    base: String,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Site {
    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("hits lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// Serves the site on a port of its own.
fn serve_site() -> (Server, Site) {
    let hits = Arc::new(Mutex::new(BTreeMap::new()));
    let counted = hits.clone();
    let server = serve_on_own_thread(move |listener, stop| async move {
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let site = Site {
            base,
            hits: counted,
        };
        let app = Router::new().fallback(answer).with_state(site);
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .expect("serve");
    });
    let site = Site {
        base: server.base.clone(),
        hits,
    };
    (server, site)
}

async fn answer(State(site): State<Site>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    *site
        .hits
        .lock()
        .expect("hits lock")
        .entry(path.clone())
        .or_default() += 1;
    let base = &site.base;
    let xml = |body: String| ([(CONTENT_TYPE, "application/xml")], body).into_response();
    let html = |title: &str| {
        let body = format!(
            "<html><body><h1>{title}</h1><a href=\"/unlisted\">not in the sitemaps</a></body></html>"
        );
        ([(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    };
    match path.as_str() {
        "/sitemap_index.xml" => xml(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{base}/sitemaps/products.xml.gz</loc><lastmod>2024-05-01</lastmod></sitemap>
  <sitemap><loc>{base}/sitemaps/pages.xml</loc></sitemap>
</sitemapindex>"#
        )),
        "/sitemaps/products.xml.gz" => {
            let urls: String = (1..=PRODUCTS)
                .map(|i| format!("  <url><loc>{base}/product/{i}</loc></url>\n"))
                .collect();
            let body = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{urls}  <url><loc>http://elsewhere.invalid/product/9</loc></url>
</urlset>"#
            );
            // A file download, as static servers send `.xml.gz`: no Content-Encoding.
            ([(CONTENT_TYPE, "application/gzip")], gzip(body.as_bytes())).into_response()
        }
        "/sitemaps/pages.xml" => xml(format!(
            r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/about</loc></url>
  <url><loc>{base}/contact?utm_source=sitemap</loc></url>
  <url><loc>{base}/product/1</loc></url>
</urlset>"#
        )),
        "/about" => html("About us"),
        "/contact" => html("Contact"),
        "/unlisted" => html("Unlisted"),
        p => match p.strip_prefix("/product/") {
            Some(n) => html(&format!("Product {n}")),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

/// `data` in the gzip format, with stored (uncompressed) deflate blocks: the test needs a
/// valid `.xml.gz`, not a small one, and the root crate has no compression library.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = data.chunks(u16::MAX as usize).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = u16::try_from(block.len()).expect("block fits");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3), as gzip's trailer carries it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_gzip_helper_writes_what_gunzip_reads() {
    // The check value of CRC-32, and an empty member as `gzip` writes it.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(
        gzip(b""),
        [
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn crawl_from_a_sitemap_index_yields_one_item_per_listed_page() {
    let (_server, site) = serve_site();
    let base = site.base.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write(
        dir.path(),
        "sitemapped.toml",
        &format!(
            r#"name = "sitemapped"
sitemaps = ["{base}/sitemap_index.xml"]
allow_private = true
rate = 200
burst = 200

[handlers.start]
item.title = {{ css = "h1" }}
item.url = "$url"
"#
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
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "crawl failed:\n{stderr}");

    let items = by_url(jsonl(&std::fs::read_to_string(&out).expect("output file")));
    let mut expected: BTreeMap<String, String> = (1..=PRODUCTS)
        .map(|i| (format!("{base}/product/{i}"), format!("Product {i}")))
        .collect();
    expected.insert(format!("{base}/about"), "About us".into());
    expected.insert(format!("{base}/contact"), "Contact".into());
    let got: BTreeMap<String, String> = items
        .iter()
        .map(|(url, item)| {
            let title = item["title"].as_str().expect("a title").to_string();
            (url.clone(), title)
        })
        .collect();
    assert_eq!(got, expected, "one item per page the sitemaps list");

    // Every sitemap read once, every listed page fetched once (the page two sitemaps list
    // included), nothing else: no follows, and the other site's page left out.
    for path in [
        "/sitemap_index.xml",
        "/sitemaps/products.xml.gz",
        "/sitemaps/pages.xml",
    ] {
        assert_eq!(site.hits(path), 1, "{path}");
    }
    for url in expected.keys() {
        let path = url.strip_prefix(&base).expect("on the site");
        let path = path.split('?').next().expect("a path");
        assert_eq!(site.hits(path), 1, "{path}");
    }
    assert_eq!(site.hits("/unlisted"), 0, "links are not sitemaps");
    assert!(
        stderr.contains(&format!("{} items, 0 errors", expected.len())),
        "summary line:\n{stderr}"
    );
}

#[test]
fn check_refuses_a_bad_sitemap_url_at_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = write(
        dir.path(),
        "broken.toml",
        "name = \"b\"\nsitemaps = [\"https://a.example/sitemap.xml\", \"sitemap.xml\"]\n[handlers.start]\n",
    );
    let output = run(
        &["check", broken.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml:2:46"), "line:col in {stderr}");
    assert!(
        stderr.contains("invalid sitemap URL \"sitemap.xml\""),
        "{stderr}"
    );

    let good = write(
        dir.path(),
        "good.toml",
        "name = \"g\"\nsitemaps = [\"https://a.example/sitemap.xml\"]\n[handlers.start]\n",
    );
    let output = run(
        &["check", good.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
