//! `spindle debug` on a local server shaped like each example project's site: the example
//! files themselves, pointed at 127.0.0.1, run one step and print what they found as JSON.

mod support;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The server's base URL, known once it listens.
#[derive(Clone, Default)]
struct Base(Arc<OnceLock<String>>);

impl Base {
    fn get(&self) -> &str {
        self.0.get().map_or("", String::as_str)
    }
}

fn json_body(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

const BOOK_INDEX: &str = r#"<html><body><div class="side_categories"><ul><li><a href="/">Books</a>
<ul><li><a href="catalogue/category/books/poetry_23/index.html">Poetry</a></li>
<li><a href="catalogue/category/books/travel_2/index.html">Travel</a></li></ul></li></ul></div><h1>All products</h1></body></html>"#;

const BOOK_LIST: &str = r#"<html><body><h1>Poetry</h1><ol>
<li><article class="product_pod"><h3><a href="../../../a-light-in-the-attic_1000/index.html">A Light...</a></h3></article></li>
<li><article class="product_pod"><h3><a href="../../../olio_984/index.html">Olio</a></h3></article></li>
</ol><ul class="pager"><li class="next"><a href="page-2.html">next</a></li></ul></body></html>"#;

const BOOK_DETAIL: &str = r#"<html><body><div class="product_main"><h1>A Light in the Attic</h1>
<p class="price_color">£51.77</p><p class="instock availability">In stock (22 available)</p>
<p class="star-rating Three"></p></div><div class="item active"><img src="../../media/cache/fe/72/cover.jpg"></div>
<div id="product_description"><h2>Product Description</h2></div><p>It's hard to imagine a world without A Light in the Attic.</p>
<table class="table"><tr><th>UPC</th><td>a897fe39b1053632</td></tr><tr><th>Product Type</th><td>Books</td></tr></table></body></html>"#;

const QUOTES: &str = r#"<html><body>
<div class="quote"><span class="text">“The world as we have created it is a process of our thinking.”</span>
<span>by <small class="author">Albert Einstein</small> <a href="/author/Albert-Einstein">(about)</a></span>
<div class="tags"><a class="tag" href="/tag/change/">change</a><a class="tag" href="/tag/thinking/">thinking</a></div></div>
<div class="quote"><span class="text">“A day without sunshine is like, you know, night.”</span>
<span>by <small class="author">Steve Martin</small> <a href="/author/Steve-Martin">(about)</a></span>
<div class="tags"></div></div>
<div class="quote"><span>no text here</span></div>
<nav><ul class="pager"><li class="next"><a href="/q/page/2/">Next</a></li></ul></nav></body></html>"#;

const AUTHOR: &str = r#"<html><body><h3 class="author-title">Albert Einstein</h3>
<p><span class="author-born-date">March 14, 1879</span> <span class="author-born-location">in Ulm, Germany</span></p>
<div class="author-description">  Albert Einstein was a   physicist. </div></body></html>"#;

const JS_QUOTES: &str = r#"<html><body><div id="quotes"></div>
<script>
  var data = [{ text: "First rendered quote", author: "A. Author", tags: ["x", "y"] },
              { text: "Second rendered quote", author: "B. Author", tags: [] }];
  for (var i = 0; i < data.length; i++) {
    var d = document.createElement("div");
    d.className = "quote";
    d.innerHTML = '<span class="text">' + data[i].text + '</span><small class="author">' + data[i].author + '</small>' +
      data[i].tags.map(function (t) { return '<a class="tag">' + t + '</a>'; }).join("");
    document.getElementById("quotes").appendChild(d);
  }
</script></body></html>"#;

fn app(base: Base) -> Router {
    Router::new()
        .route("/", get(|| async { Html(BOOK_INDEX) }))
        .route("/catalogue/category/books/poetry_23/index.html", get(|| async { Html(BOOK_LIST) }))
        .route("/catalogue/a-light-in-the-attic_1000/index.html", get(|| async { Html(BOOK_DETAIL) }))
        .route("/q/", get(|| async { Html(QUOTES) }))
        .route("/author/Albert-Einstein", get(|| async { Html(AUTHOR) }))
        .route("/jsq/js/", get(|| async { Html(JS_QUOTES) }))
        .route(
            "/p/api/v2/pokemon",
            get(|State(base): State<Base>| async move {
                let b = base.get();
                json_body(json!({
                    "count": 3,
                    "next": format!("{b}/p/api/v2/pokemon?offset=2&limit=2"),
                    "results": [
                        { "name": "bulbasaur", "url": format!("{b}/p/api/v2/pokemon/1/") },
                        { "name": "ivysaur", "url": format!("{b}/p/api/v2/pokemon/2/") },
                    ]
                }))
            }),
        )
        .route(
            "/p/api/v2/pokemon/1/",
            get(|| async {
                json_body(json!({
                    "id": 1, "name": "bulbasaur", "height": 7, "weight": 69,
                    "types": [{ "slot": 1, "type": { "name": "grass" } }, { "slot": 2, "type": { "name": "poison" } }],
                    "abilities": [
                        { "is_hidden": false, "ability": { "name": "overgrow" } },
                        { "is_hidden": true, "ability": { "name": "chlorophyll" } }
                    ]
                }))
            }),
        )
        .with_state(base)
}

/// Serves [`app`] on 127.0.0.1 from a thread of its own; returns the base URL.
fn serve() -> String {
    let base = Base::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let state = base.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            let _ = state.0.set(url.clone());
            tx.send(url).expect("send");
            axum::serve(listener, app(state)).await.expect("serve");
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("server started")
}

/// Writes `example` with `site` replaced by `local` and private addresses allowed.
fn localized(dir: &Path, example: &str, site: &str, local: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example),
    )
    .expect("example exists");
    assert!(
        text.contains("allow_private = false"),
        "{example} sets allow_private"
    );
    let text = text
        .replace(site, local)
        .replace("allow_private = false", "allow_private = true");
    support::write(dir, example, &text)
}

/// Runs `spindle debug` and returns its JSON report.
fn debug(project: &Path, url: &str, handler: &str) -> Value {
    let out = support::run(
        &[
            "debug",
            &project.to_string_lossy(),
            url,
            "--handler",
            handler,
        ],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["errors"], json!([]), "{report:#}");
    report
}

fn urls(report: &Value) -> Vec<String> {
    report["follows"]
        .as_array()
        .expect("follows")
        .iter()
        .map(|f| f["url"].as_str().expect("url").to_string())
        .collect()
}

fn data(report: &Value) -> Vec<Value> {
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["data"].clone())
        .collect()
}

#[test]
fn examples_pass_check() {
    for example in [
        "books.toml",
        "quotes.toml",
        "api.toml",
        "js.toml",
        "signin.toml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example);
        let out = support::run(&["check", &path.to_string_lossy()], Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn paginated_catalogue_example() {
    let base = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = localized(
        dir.path(),
        "books.toml",
        "https://books.toscrape.com",
        &base,
    );

    let start = debug(&project, &format!("{base}/"), "start");
    assert_eq!(
        urls(&start),
        [
            format!("{base}/catalogue/category/books/poetry_23/index.html"),
            format!("{base}/catalogue/category/books/travel_2/index.html"),
        ]
    );
    assert_eq!(
        start["follows"][0]["save"],
        json!({ "category": "All products" })
    );

    let list = debug(
        &project,
        &format!("{base}/catalogue/category/books/poetry_23/index.html"),
        "list",
    );
    assert_eq!(
        urls(&list),
        [
            format!("{base}/catalogue/a-light-in-the-attic_1000/index.html"),
            format!("{base}/catalogue/olio_984/index.html"),
            format!("{base}/catalogue/category/books/poetry_23/page-2.html"),
        ]
    );
    assert_eq!(list["follows"][0]["priority"], 1);
    assert_eq!(list["follows"][2]["callback"], "list");

    let detail = debug(
        &project,
        &format!("{base}/catalogue/a-light-in-the-attic_1000/index.html"),
        "detail",
    );
    let item = &data(&detail)[0];
    assert_eq!(item["title"], "A Light in the Attic");
    assert_eq!(item["price"], 51.77);
    assert_eq!(item["in_stock"], 22);
    assert_eq!(item["rating"], "Three");
    assert_eq!(item["upc"], "a897fe39b1053632");
    assert_eq!(item["image"], format!("{base}/media/cache/fe/72/cover.jpg"));
    assert_eq!(
        item["description"],
        "It's hard to imagine a world without A Light in the Attic."
    );
    assert_eq!(item["category"], Value::Null);
    assert!(detail["timings"]["process_ms"].is_number());
    assert!(detail["logs"].as_array().expect("logs").iter().any(|l| {
        l.as_str()
            .is_some_and(|l| l.contains("saved no `category`"))
    }));
}

#[test]
fn many_items_per_page_example() {
    let base = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = localized(
        dir.path(),
        "quotes.toml",
        "https://quotes.toscrape.com",
        &format!("{base}/q"),
    );
    let report = debug(&project, &format!("{base}/q/"), "start");
    let items = data(&report);
    assert_eq!(items.len(), 2, "{report:#}");
    assert_eq!(report["dropped"], 1);
    assert_eq!(items[0]["author"], "Albert Einstein");
    assert_eq!(items[0]["tags"], json!(["change", "thinking"]));
    assert_eq!(items[0]["tag_count"], 2);
    assert_eq!(items[1]["tags"], json!([]));
    assert_eq!(
        items[0]["author_url"],
        format!("{base}/author/Albert-Einstein")
    );
    assert_eq!(
        report["items"][0]["taskid"].as_str().map(str::len),
        Some(32)
    );
    assert_ne!(report["items"][0]["taskid"], report["items"][1]["taskid"]);
    assert_eq!(
        urls(&report),
        [
            format!("{base}/q/page/2/"),
            format!("{base}/author/Albert-Einstein"),
            format!("{base}/author/Steve-Martin"),
        ]
    );
    assert!(
        report["logs"].to_string().contains("script: 2 quotes on"),
        "{report:#}"
    );

    let author = debug(
        &project,
        &format!("{base}/author/Albert-Einstein"),
        "author",
    );
    assert_eq!(
        data(&author)[0],
        json!({ "name": "Albert Einstein", "born": "1879-03-14", "born_in": "Ulm, Germany", "bio": "Albert Einstein was a physicist." })
    );
}

#[test]
fn json_api_example() {
    let base = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = localized(
        dir.path(),
        "api.toml",
        "https://pokeapi.co",
        &format!("{base}/p"),
    );
    let list = debug(
        &project,
        &format!("{base}/p/api/v2/pokemon?limit=50"),
        "start",
    );
    assert_eq!(
        urls(&list),
        [
            format!("{base}/p/api/v2/pokemon?offset=2&limit=2"),
            format!("{base}/p/api/v2/pokemon/1/"),
            format!("{base}/p/api/v2/pokemon/2/"),
        ]
    );
    let items = data(&list);
    assert_eq!(items[0]["name"], "bulbasaur");
    assert_eq!(items[1]["url"], format!("{base}/p/api/v2/pokemon/2/"));

    let detail = debug(&project, &format!("{base}/p/api/v2/pokemon/1/"), "detail");
    assert_eq!(
        data(&detail)[0],
        json!({ "id": 1, "name": "bulbasaur", "height": 7, "weight": 69, "types": ["grass", "poison"], "abilities": ["overgrow"] })
    );
    assert_eq!(
        urls(&detail),
        [format!("{base}/p/api/v2/pokemon-species/1/")]
    );
    assert_eq!(detail["follows"][0]["save"], json!({ "name": "bulbasaur" }));
}

#[test]
fn js_rendered_example() {
    let base = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = localized(
        dir.path(),
        "js.toml",
        "https://quotes.toscrape.com",
        &format!("{base}/jsq"),
    );
    let report = debug(&project, &format!("{base}/jsq/js/"), "start");
    assert_eq!(
        data(&report),
        [
            json!({ "text": "First rendered quote", "author": "A. Author", "tags": ["x", "y"] }),
            json!({ "text": "Second rendered quote", "author": "B. Author", "tags": [] }),
        ],
        "{report:#}"
    );
}

#[test]
fn debug_refuses_unknown_handlers_and_reports_fetch_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let project = support::write(
        dir.path(),
        "p.toml",
        "name = \"p\"\nallow_private = true\n[handlers.start]\nitem.t = { css = \"h1\" }\n",
    );
    let out = support::run(
        &[
            "debug",
            &project.to_string_lossy(),
            "http://127.0.0.1:9/",
            "--handler",
            "nope",
        ],
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no handler `nope`"));
    // Port 9 (discard) is closed: the fetch fails and the report says so.
    let out = support::run(
        &["debug", &project.to_string_lossy(), "http://127.0.0.1:9/"],
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(
        report["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("fetch failed")),
        "{report:#}"
    );
}

#[test]
fn the_web_uis_debugger_runs_the_same_step_on_the_edited_text() {
    let base = serve();
    let dir = tempfile::tempdir().expect("temp dir");
    let project = localized(
        dir.path(),
        "books.toml",
        "https://books.toscrape.com",
        &base,
    );
    let detail = format!("{base}/catalogue/a-light-in-the-attic_1000/index.html");
    let cli = debug(&project, &detail, "detail");

    let (projects, data_dir) = (dir.path().join("projects"), dir.path().join("data"));
    std::fs::create_dir(&projects).expect("projects folder");
    let bind = format!("127.0.0.1:{}", support::free_port());
    let mut all = support::start_all(
        data_dir.to_str().expect("utf-8"),
        projects.to_str().expect("utf-8"),
        &bind,
    );
    let definition = std::fs::read_to_string(&project).expect("project text");
    let step = |definition: &str, handler: &str| {
        support::http_json(
            &bind,
            "POST",
            "/api/debug",
            Some(&json!({ "definition": definition, "url": detail, "handler": handler })),
        )
    };
    let mut answer = None;
    for _ in 0..100 {
        answer = step(&definition, "detail");
        if answer.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, mut ui) = answer.expect("the web UI answers");
    assert_eq!(status, 200, "{ui}");
    // The example stamps each item with the second it was made: the two steps may differ.
    let mut cli = cli;
    for report in [&mut ui, &mut cli] {
        for item in report["items"].as_array_mut().expect("items") {
            let stamp = item["data"]
                .as_object_mut()
                .and_then(|d| d.remove("fetched_at"));
            assert!(stamp.is_some_and(|s| s.is_string()), "{item}");
        }
    }
    for part in ["page", "follows", "items", "dropped", "logs", "errors"] {
        assert_eq!(ui[part], cli[part], "{part} as `spindle debug` reports it");
    }
    assert_eq!(data(&ui)[0]["title"], "A Light in the Attic");

    // The text as edited, not as stored: a changed selector changes the item; a broken file
    // is refused with its position.
    let edited = definition.replace(
        r#"item.title = { css = "div.product_main h1", required = true }"#,
        r#"item.title = { css = "p.price_color", required = true }"#,
    );
    assert_ne!(edited, definition, "the example's title rule was found");
    let (_, ui) = step(&edited, "detail").expect("answer");
    assert_eq!(data(&ui)[0]["title"], "£51.77");
    let (status, error) = step("name = \"x\"\nrate = = 1\n", "start").expect("answer");
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("line 2, column 8")),
        "{error}"
    );
    all.kill().ok();
    all.wait().ok();
}
