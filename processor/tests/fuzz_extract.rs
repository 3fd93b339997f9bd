//! Property tests (fuzzing on stable Rust) of the extraction engine: handlers with CSS,
//! XPath, regex, `all`, attributes, `each` blocks and follows run on arbitrary and hostile
//! HTML (tag soup, unclosed and misnested elements, comments, entities, deep nesting) and
//! never panic: a page is at worst a task that fails with an error.
//!
//! A fixed number of cases in the normal run; `PROPTEST_CASES=10000 cargo test -p
//! spindle-processor --test fuzz_extract` runs longer.

use std::sync::Arc;

use proptest::prelude::*;
use spindle_common::{Page, Project, Task};
use spindle_processor::{Rules, run_handler};

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const PROJECT: &str = r#"
name = "p"
start = ["http://site.example/"]
allow_private = true

[handlers.start]
follow = [
  { css = "a", callback = "detail" },
  { css = "link[rel=next], area", callback = "start" },
  { xpath = "//iframe/@src", callback = "detail" },
]
item.title = { css = "h1" }
item.all_text = { css = "p, li, td", all = true }
item.price = { css = ".price", regex = '[0-9]+(?:\.[0-9]+)?', as = "number" }
item.image = { css = "img", attr = "src", as = "url" }
item.upc = { xpath = "//th[text()='UPC']/following-sibling::td" }
item.count = { xpath = "count(//div)" }
item.url = "$url"

[handlers.detail]
items = { each = "li, tr" }
item.name = { css = "b, td" }
item.link = { css = "a", attr = "href", as = "url" }

[handlers.rows]
items = { each_xpath = "//table//tr" }
item.cell = { xpath = "td[1]" }
"#;

fn rules() -> Rules {
    let project = Project::parse(PROJECT).expect("the fuzz project is valid");
    Rules::compile(Arc::new(project)).expect("the fuzz project compiles")
}

fn page(html: String) -> Page {
    Page {
        url: "http://site.example/a/".into(),
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        content_type: "text/html".into(),
        encoding: "UTF-8".into(),
        body_len: html.len() as u64,
        text: html,
        fetch_ms: 1,
        script_result: None,
        screenshot_png_base64: None,
    }
}

/// Runs both handlers on `html`; neither may panic (an error is allowed).
fn extract(rules: &Rules, html: String) {
    let page = page(html);
    for callback in ["start", "detail", "rows"] {
        let task = Task::new("p", "http://site.example/a/", callback);
        let _ = run_handler(rules, &task, &page);
    }
}

/// Pieces of HTML, hostile ones included.
fn piece() -> impl Strategy<Value = String> {
    let tag = prop::sample::select(vec![
        "a",
        "p",
        "div",
        "li",
        "ul",
        "table",
        "tr",
        "td",
        "th",
        "h1",
        "img",
        "link",
        "area",
        "iframe",
        "script",
        "style",
        "template",
        "svg",
        "math",
        "form",
        "select",
        "option",
        "base",
        "b",
        "frameset",
        "noscript",
        "textarea",
        "title",
        "plaintext",
        "xmp",
    ]);
    let attr = prop::sample::select(vec![
        "href=\"x\"",
        "href='../../../../y?utm_source=z#f'",
        "href=javascript:alert(1)",
        "href=\"http://[::1\"",
        "href=\"//other.example/\"",
        "href=\"\u{0}\"",
        "src=\"%zz\"",
        "class=price",
        "rel=next",
        "id=a",
        "href",
        "href=\"http://a.example:99999/\"",
        "href=\"data:text/html,<a>\"",
        "href=\"&#x0;&amp;&#999999999;\"",
        "",
    ]);
    prop_oneof![
        (tag.clone(), attr).prop_map(|(t, a)| format!("<{t} {a}>")),
        tag.clone().prop_map(|t| format!("</{t}>")),
        tag.prop_map(|t| format!("<{t}/>")),
        prop::sample::select(vec![
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<!DOCTYPE html>",
            "&",
            "&amp",
            "&#",
            "&#x110000;",
            "<",
            ">",
            "\"",
            "'",
            "<?xml?>",
            "\u{0}",
            "\u{FEFF}",
            "1.99",
            "UPC",
            "é€😀",
            "<a href=",
            "</",
            "<!",
            "\r\n",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,10}",
    ]
}

fn tag_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..200).prop_map(|p| p.concat())
}

/// Elements nested `depth` deep, closed or not, with a link and an item at the bottom.
fn deep(depth: usize, tag: &str, close: bool) -> String {
    let mut html = String::with_capacity(depth * (2 * tag.len() + 5) + 64);
    for _ in 0..depth {
        html.push('<');
        html.push_str(tag);
        html.push('>');
    }
    html.push_str("<h1>bottom</h1><a href=\"/deep\">d</a><span class=price>3.5</span>");
    if close {
        for _ in 0..depth {
            html.push_str("</");
            html.push_str(tag);
            html.push('>');
        }
    }
    html
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn extraction_never_panics_on_arbitrary_text(html in ".{0,2000}") {
        extract(&rules(), html);
    }

    #[test]
    fn extraction_never_panics_on_tag_soup(html in tag_soup()) {
        extract(&rules(), html);
    }

}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn extraction_never_panics_on_nesting(
        depth in 0usize..1500,
        tag in prop::sample::select(vec!["div", "li", "table", "a", "b", "span", "svg", "template"]),
        close in any::<bool>(),
    ) {
        extract(&rules(), deep(depth, tag, close));
    }
}

/// Parsing is quadratic in the depth of unclosed elements (the HTML parsing algorithm scans
/// the stack of open elements at each start tag: 10,000 levels take about 3 s in a debug
/// build, 100,000 minutes), so a page nested past the cap fails its task with the reason
/// before it is parsed, and a page just under it is extracted in full.
#[test]
fn a_page_nested_past_the_cap_fails_with_its_reason_and_one_under_it_is_extracted() {
    let rules = rules();
    let task = Task::new("p", "http://site.example/a/", "start");
    for levels in [10_000, 100_000] {
        let err = run_handler(&rules, &task, &page(deep(levels, "div", false)))
            .expect_err("too deep to parse");
        assert!(err.is_task_failure());
        assert!(err.to_string().contains("nest deeper than 2048"), "{err}");
    }
    let out = run_handler(&rules, &task, &page(deep(2_000, "div", false)))
        .expect("a page under the cap is parsed");
    assert!(
        out.follows
            .iter()
            .any(|f| f.url == "http://site.example/deep"),
        "the link at the bottom is followed"
    );
    let item = out.items.first().expect("an item");
    assert_eq!(item.data["title"], "bottom");
    assert_eq!(item.data["price"], 3.5);
}
