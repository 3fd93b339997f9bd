//! `spindle crawl` and `spindle check` end to end, against a generated site served here.

mod support;

use std::time::Duration;

use spindle::site::SiteSpec;
use support::{by_url, jsonl, run, serve, write};

#[test]
fn crawl_yields_one_correct_item_per_product_and_fetches_each_url_once() {
    crawl_checks(&[]);
}

/// The same end-to-end checks on NATS JetStream and PostgreSQL: the roles run in one process
/// but talk only through the real bus and store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_on_nats_and_postgres_passes_the_same_checks() {
    support::on_nats_and_postgres("crawl", crawl_checks).await;
}

fn crawl_checks(backend: &[&str]) {
    let served = serve(SiteSpec::small());
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write(
        dir.path(),
        "shop.toml",
        &served.site.project_toml("shop", &served.base),
    );
    let out = dir.path().join("items.jsonl");
    let mut args = vec![
        "crawl",
        project.to_str().expect("utf-8"),
        "-o",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(backend);
    let output = run(&args, Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "crawl failed:\n{stderr}");

    let items = by_url(jsonl(&std::fs::read_to_string(&out).expect("output file")));
    let expected = by_url(served.site.expected_items(&served.base));
    assert_eq!(items.len(), expected.len(), "one item per detail page");
    for (url, want) in &expected {
        let got = items
            .get(url)
            .unwrap_or_else(|| panic!("no item for {url}"));
        assert_eq!(got, want, "item of {url}");
    }

    let pages = served.site.spec().pages();
    // robots.txt is asked for once (then cached) on top of the site's pages.
    assert_eq!(served.hits.count("/robots.txt"), 1);
    assert_eq!(
        served.hits.unique(),
        pages + 1,
        "every unique URL is fetched"
    );
    assert_eq!(served.hits.max_per_url(), 1, "no URL is fetched twice");
    assert_eq!(served.hits.total(), pages + 1);
    // The summary line names pages, items, errors and the rate.
    let missing = served.site.spec().missing_pages();
    assert!(
        stderr.contains(&format!(
            "{} pages, {} items, {missing} errors",
            pages - missing,
            expected.len()
        )),
        "summary line:\n{stderr}"
    );
}

#[test]
fn crawl_writes_csv_with_a_header_of_field_names() {
    let served = serve(SiteSpec {
        products: 60,
        ..SiteSpec::small()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write(
        dir.path(),
        "shop.toml",
        &served.site.project_toml("shop", &served.base),
    );
    let out = dir.path().join("items.csv");
    let output = run(
        &[
            "crawl",
            project.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
        Duration::from_secs(120),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut reader = csv::Reader::from_path(&out).expect("csv");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, ["title", "price", "image", "url"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 60);
    let first = &served.site.expected_items(&served.base)[0];
    let row = rows
        .iter()
        .find(|r| r.get(3) == first["url"].as_str())
        .expect("row of the first product");
    assert_eq!(row.get(0), first["title"].as_str());
    assert_eq!(
        row.get(1).map(str::to_string),
        Some(first["price"].to_string())
    );
}

#[test]
fn check_reports_line_and_column_of_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = write(
        dir.path(),
        "broken.toml",
        "name = \"b\"\nstart = [\"http://127.0.0.1/\"]\nrate = \"fast\"\n\n[handlers.start]\n",
    );
    let output = run(
        &["check", broken.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml:3:8"), "line:col in {stderr}");
    assert!(
        stderr.to_lowercase().contains("expected"),
        "what was expected in {stderr}"
    );

    let unknown = write(
        dir.path(),
        "unknown.toml",
        "name = \"b\"\nstart = [\"http://127.0.0.1/\"]\n\n[handlers.start]\nfollow = [{ css = \"a\", callback = \"nowhere\" }]\n",
    );
    let output = run(
        &["check", unknown.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown.toml:5:"),
        "line of the bad callback in {stderr}"
    );
    assert!(
        stderr.contains("nowhere"),
        "names the unknown handler: {stderr}"
    );

    let good = write(
        dir.path(),
        "good.toml",
        "name = \"g\"\nstart = [\"http://127.0.0.1/\"]\n[handlers.start]\n",
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
