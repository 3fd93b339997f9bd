//! Structured data and computed fields end to end: a local shop whose product data is only
//! in JSON-LD (a Product alone, inside `@graph`, after other blocks and a broken one), with
//! weights in g and kg in a specs table, crawled with declarative rules only.

mod support;

use std::time::Duration;

use axum::response::IntoResponse;
use serde_json::{Value, json};
use support::{by_url, jsonl, run, serve_on_own_thread, write};

/// The list page: a link to each product.
const LIST: &str = r#"<html><body><ul>
<li><a class="product" href="/p/alone">Alone</a></li>
<li><a class="product" href="/p/graph">Graph</a></li>
<li><a class="product" href="/p/after">After</a></li>
</ul></body></html>"#;

/// A product page: its JSON-LD blocks, its OpenGraph title, a brand in microdata and a
/// specs table whose first row is the weight.
fn product(title: &str, jsonld: &[&str], weight: &str) -> String {
    let blocks: String = jsonld
        .iter()
        .map(|b| format!("<script type=\"application/ld+json\">{b}</script>\n"))
        .collect();
    format!(
        r#"<html><head><title>{title}</title>
<meta property="og:title" content="{title}">
{blocks}</head><body>
<h1>{title}</h1>
<div itemscope itemtype="https://schema.org/Product">
  <div itemprop="brand" itemscope itemtype="https://schema.org/Brand"><span itemprop="name">Acme</span></div>
</div>
<table class="specs">
<tr><th>Weight</th><td>{weight}</td></tr>
<tr><th>Colour</th><td>Red</td></tr>
</table>
</body></html>"#
    )
}

/// The page at `path`, or `None` for a 404.
fn page(path: &str) -> Option<String> {
    Some(match path {
        "/" => LIST.to_string(),
        // A Product alone; its offer an object, the price a string.
        "/p/alone" => product(
            "Kettle",
            &[
                r#"{"@context": "https://schema.org", "@type": "Product", "name": "Kettle",
                 "gtin13": "5012345678900",
                 "offers": {"@type": "Offer", "price": "24.99", "priceCurrency": "GBP"}}"#,
            ],
            "950 g",
        ),
        // Inside `@graph`, next to other nodes; its offers a list, the price a number.
        "/p/graph" => product(
            "Toaster",
            &[r#"{"@context": "https://schema.org", "@graph": [
                 {"@type": "WebSite", "name": "Shop", "url": "/"},
                 {"@type": "BreadcrumbList", "itemListElement": [{"@type": "ListItem", "position": 1, "name": "Home"}]},
                 {"@type": "Product", "name": "Toaster", "gtin13": "5012345678917",
                  "offers": [{"@type": "Offer", "price": 39.5, "priceCurrency": "GBP"},
                             {"@type": "Offer", "price": 44, "priceCurrency": "GBP"}]}]}"#],
            "1.24 kg",
        ),
        // After other blocks, one of them broken.
        "/p/after" => product(
            "Blender",
            &[
                r#"{"@context": "https://schema.org", "@type": "Organization", "name": "Shop"}"#,
                r#"{"@context": "https://schema.org", "@type": "BreadcrumbList", oops"#,
                r#"[{"@context": "https://schema.org", "@type": "WebPage", "name": "Blender"},
                    {"@context": "https://schema.org", "@type": "Product", "name": "Blender",
                     "gtin13": "5012345678924",
                     "offers": {"@type": "AggregateOffer", "lowPrice": "59", "offers": [
                        {"@type": "Offer", "price": "59.00"}]}}]"#,
            ],
            "2 kg",
        ),
        _ => return None,
    })
}

/// The project: declarative rules only.
fn project(base: &str) -> String {
    format!(
        r#"name = "structured"
start = ["{base}/"]
allow_private = true
rate = 50
host_concurrency = 4

[handlers.start]
follow = [{{ css = "a.product", callback = "product" }}]

[handlers.product]
item.url = "$url"
item.title = {{ meta = "og:title" }}
item.name = {{ jsonld = "$[?@['@type']=='Product'].name", required = true }}
item.gtin13 = {{ jsonld = "$..[?(@['@type']=='Product')].gtin13" }}
item.price = {{ jsonld = "$[?@['@type']=='Product'].offers..price", as = "number" }}
item.price_cents = {{ jsonld = "$[?@['@type']=='Product'].offers..price", expr = "round(value * 100)" }}
item.brand = {{ itemprop = "name", itemtype = "Brand" }}
item.weight_g = {{ xpath = "//tr[th='Weight']/td", unit = "g" }}
item.weight_kg = {{ css = "table.specs td", unit = "kg" }}
item.weight_row = {{ css = "table.specs tr" }}
item.specs = {{ css = "table.specs", separator = "; " }}
"#
    )
}

#[test]
fn json_ld_in_three_layouts_and_weights_in_g_and_kg_give_exact_items() {
    let server = serve_on_own_thread(|listener, stop| async move {
        let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
            match page(uri.path()) {
                Some(body) => axum::response::Html(body).into_response(),
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .expect("serve");
    });
    let base = server.base.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "structured.toml", &project(&base));
    let check = run(
        &["check", file.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    assert!(
        check.status.success(),
        "check: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let out = dir.path().join("items.jsonl");
    let output = run(
        &[
            "crawl",
            file.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "crawl failed:\n{stderr}");
    assert!(
        stderr.contains("4 pages, 3 items, 0 errors"),
        "summary line:\n{stderr}"
    );
    // The broken block is reported, not silently ignored, and fails nothing.
    assert!(
        stderr.contains("1 of 3 block(s) skipped as invalid JSON"),
        "a warning for the broken JSON-LD block:\n{stderr}"
    );

    // The debugger names the broken block in the handler's logs.
    let debug = run(
        &[
            "debug",
            file.to_str().expect("utf-8"),
            &format!("{base}/p/after"),
            "--handler",
            "product",
        ],
        Duration::from_secs(60),
    );
    let report: Value = serde_json::from_slice(&debug.stdout).unwrap_or_else(|e| {
        panic!(
            "debug output is not JSON ({e}): {}",
            String::from_utf8_lossy(&debug.stderr)
        )
    });
    let logs = report["logs"].as_array().expect("logs");
    assert!(
        logs.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.starts_with("jsonld: block 2 of 3 is not valid JSON"))),
        "{report:#}"
    );
    assert_eq!(report["items"][0]["data"]["name"], "Blender", "{report:#}");

    let items = by_url(jsonl(&std::fs::read_to_string(&out).expect("output file")));
    let want = |path: &str, fields: Value| {
        let mut fields = fields;
        fields["url"] = json!(format!("{base}{path}"));
        (format!("{base}{path}"), fields)
    };
    let expected = [
        want(
            "/p/alone",
            json!({
                "title": "Kettle", "name": "Kettle", "gtin13": "5012345678900",
                "price": 24.99, "price_cents": 2499, "brand": "Acme",
                "weight_g": 950, "weight_kg": 0.95,
                "weight_row": "Weight 950 g", "specs": "Weight; 950 g; Colour; Red",
            }),
        ),
        want(
            "/p/graph",
            json!({
                "title": "Toaster", "name": "Toaster", "gtin13": "5012345678917",
                "price": 39.5, "price_cents": 3950, "brand": "Acme",
                "weight_g": 1240, "weight_kg": 1.24,
                "weight_row": "Weight 1.24 kg", "specs": "Weight; 1.24 kg; Colour; Red",
            }),
        ),
        want(
            "/p/after",
            json!({
                "title": "Blender", "name": "Blender", "gtin13": "5012345678924",
                "price": 59.0, "price_cents": 5900, "brand": "Acme",
                "weight_g": 2000, "weight_kg": 2,
                "weight_row": "Weight 2 kg", "specs": "Weight; 2 kg; Colour; Red",
            }),
        ),
    ];
    assert_eq!(
        items.len(),
        expected.len(),
        "one item per product: {items:?}"
    );
    for (url, want) in expected {
        let got = items
            .get(&url)
            .unwrap_or_else(|| panic!("no item for {url}"));
        assert_eq!(&Value::Object(got.clone()), &want, "item of {url}");
    }
}

#[test]
fn check_points_at_a_bad_expression_or_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, field, at, what) in [
        (
            "expr.toml",
            r#"item.w = { css = "td", expr = "value *" }"#,
            "expr.toml:4:31",
            "invalid expression",
        ),
        (
            "unit.toml",
            r#"item.w = { css = "td", unit = "stone" }"#,
            "unit.toml:4:31",
            "unknown unit \"stone\"",
        ),
        (
            "jsonld.toml",
            r#"item.w = { jsonld = "$.a", itemprop = "x" }"#,
            "jsonld.toml:4:10",
            "one source per field",
        ),
    ] {
        let file = write(
            dir.path(),
            name,
            &format!("name = \"b\"\nstart = [\"http://127.0.0.1/\"]\n[handlers.start]\n{field}\n"),
        );
        let output = run(
            &["check", file.to_str().expect("utf-8")],
            Duration::from_secs(30),
        );
        assert!(!output.status.success(), "{name} passed check");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(at), "{name}: line:col {at} in {stderr}");
        assert!(stderr.contains(what), "{name}: {what} in {stderr}");
    }
}
