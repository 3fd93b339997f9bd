//! Tests of follows: sources, normalization, filters, task fields, URL templates.

use spindle_common::urlnorm::fingerprint;

use crate::handler::run_handler;
use crate::testutil::{page, rules, task};

const URL: &str = "http://www.site.example/list/page1.html";

/// Follow URLs of handler `start` of a project with `follow` rules on `html`.
fn follows(extra: &str, follow: &str, html: &str) -> Vec<spindle_common::Task> {
    let rules = rules(&format!(
        "name = \"p\"\nstart = [\"http://www.site.example/\"]\n{extra}\n[handlers.start]\nfollow = [{follow}]\n[handlers.detail]\n"
    ));
    run_handler(&rules, &task("start", URL), &page(URL, html))
        .expect("runs")
        .follows
}

fn urls(tasks: &[spindle_common::Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.url.as_str()).collect()
}

#[test]
fn links_are_resolved_and_normalized() {
    let got = follows(
        "",
        r#"{ css = "a", callback = "detail" }"#,
        r##"<a href=" ../books/a.html#reviews ">a</a>
            <a href="/b?utm_source=x&id=2&gclid=z">b</a>
            <a href="HTTP://WWW.SITE.EXAMPLE:80/c/./d/../e">c</a>"##,
    );
    assert_eq!(
        urls(&got),
        [
            "http://www.site.example/books/a.html",
            "http://www.site.example/b?id=2",
            "http://www.site.example/c/e",
        ]
    );
}

#[test]
fn kept_parameters_stay_in_links() {
    let got = follows(
        "keep_params = [\"utm_source\"]",
        r#"{ css = "a", callback = "detail" }"#,
        r#"<a href="/b?utm_source=x&utm_medium=y">b</a>"#,
    );
    assert_eq!(urls(&got), ["http://www.site.example/b?utm_source=x"]);
}

#[test]
fn only_same_site_links_are_followed() {
    let got = follows(
        "",
        r#"{ css = "a", callback = "detail" }"#,
        r#"<a href="http://site.example/1">bare</a>
           <a href="https://shop.site.example/2">sub</a>
           <a href="http://other.example/3">other</a>
           <a href="http://site.example.evil/4">lookalike</a>"#,
    );
    assert_eq!(
        urls(&got),
        ["http://site.example/1", "https://shop.site.example/2"]
    );
}

#[test]
fn non_http_links_and_elements_without_the_attribute_are_skipped() {
    let got = follows(
        "",
        r#"{ css = "a", callback = "detail" }"#,
        r#"<a href="javascript:void(0)">j</a><a href="mailto:x@site.example">m</a>
           <a href="data:text/html,x">d</a><a name="anchor">no href</a><a href="ok">ok</a>"#,
    );
    assert_eq!(urls(&got), ["http://www.site.example/list/ok"]);
}

#[test]
fn links_are_deduplicated_within_the_page() {
    let rules_text = r#"{ css = "a.detail", callback = "detail", priority = 5 },
        { css = "a", callback = "start" }"#;
    let got = follows(
        "",
        rules_text,
        r##"<a href="/x">1</a><a href="/x#top">2</a><a class="detail" href="/x?">3</a>
            <a href="/y">4</a><a href="/y">5</a>"##,
    );
    assert_eq!(
        urls(&got),
        ["http://www.site.example/x", "http://www.site.example/y"]
    );
    // The rule written first decides callback and priority of a link both rules match.
    assert_eq!((got[0].callback.as_str(), got[0].priority), ("detail", 5));
    assert_eq!((got[1].callback.as_str(), got[1].priority), ("start", 0));
}

#[test]
fn follow_tasks_carry_identity_callback_priority_and_depth() {
    let got = follows(
        "",
        r#"{ css = "img", attr = "data-href", callback = "detail", priority = -2 }"#,
        r#"<img data-href="/d/1"><img src="/ignored">"#,
    );
    assert_eq!(got.len(), 1);
    let t = &got[0];
    assert_eq!(t.project, "p");
    assert_eq!(t.url, "http://www.site.example/d/1");
    assert_eq!(t.taskid, fingerprint("http://www.site.example/d/1"));
    assert_eq!(
        (t.callback.as_str(), t.priority, t.depth),
        ("detail", -2, 3)
    );
    assert_eq!(
        (t.exetime, t.retries, t.age_ms, t.save.clone()),
        (0, 0, None, None)
    );
    assert!(!t.force);
}

#[test]
fn links_of_each_rule_are_logged() {
    let rules = rules(
        "name = \"p\"\nstart = [\"http://www.site.example/\"]\n[handlers.start]\nfollow = [{ css = \"a\", callback = \"start\" }]\n",
    );
    let html = r#"<a href="/1">1</a><a href="/1">1</a><a href="http://x.example/">x</a><a href="mailto:a@b">m</a>"#;
    let out = run_handler(&rules, &task("start", URL), &page(URL, html)).expect("runs");
    assert_eq!(
        out.logs,
        ["follow `a` -> start: 4 link(s), 1 followed, 1 repeated, 1 off-site, 1 not http(s)"]
    );
}

#[test]
fn without_start_urls_the_task_site_is_the_site() {
    let rules =
        rules("name = \"p\"\n[handlers.list]\nfollow = [{ css = \"a\", callback = \"list\" }]\n");
    let html = r#"<a href="/in">in</a><a href="http://elsewhere.example/">out</a>"#;
    let out = run_handler(
        &rules,
        &task("list", "http://debug.example/"),
        &page("http://debug.example/", html),
    )
    .expect("runs");
    assert_eq!(urls(&out.follows), ["http://debug.example/in"]);
}

fn run(project: &str, callback: &str, page: spindle_common::Page) -> crate::HandlerOutput {
    let rules = rules(project);
    crate::testutil::run(&rules, &task(callback, &page.url.clone()), &page)
}

#[test]
fn follows_carry_the_rule_fetch_options_save_and_recrawl_keys() {
    let out = run(
        r##"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [{ css = "a", callback = "detail", priority = 3, age = "1h", itag = "$header.etag", force = true,
  method = "post", headers = { "X-A" = "1" }, form = { q = "x" }, fetch = "js", js = { wait_for = "#app", wait = "5s" },
  user_agent = "bot/1", cookies = { sid = "s" }, proxies = ["http://proxy:3128"], verify_tls = false,
  follow_redirects = false, connect_timeout = "2s", timeout = "9s", robots = false, content_types = ["text/"],
  save = { category = { css = "h1" }, from = "$url", kind = "book", n = { css = "h1", regex = '\d+', as = "integer" } } }]
[handlers.detail]
"##,
        "start",
        {
            let mut p = page(URL, r#"<h1>Poetry 3</h1><a href="/d/1">d</a>"#);
            p.headers.push(("etag".into(), "\"v1\"".into()));
            p
        },
    );
    let t = &out.follows[0];
    assert_eq!((t.priority, t.age_ms, t.force), (3, Some(3_600_000), true));
    assert_eq!(t.itag.as_deref(), Some("\"v1\""));
    let f = &t.fetch;
    assert_eq!(f.method.as_deref(), Some("POST"));
    assert_eq!(f.headers["X-A"], "1");
    assert_eq!(f.form.as_ref().map(|m| m["q"].as_str()), Some("x"));
    assert_eq!(f.mode, spindle_common::message::FetchMode::Js);
    let js = f.js.as_ref().expect("js options");
    assert_eq!(
        (js.wait_for.as_deref(), js.wait_ms),
        (Some("#app"), Some(5000))
    );
    assert_eq!(f.user_agent.as_deref(), Some("bot/1"));
    assert_eq!(f.cookies["sid"], "s");
    assert_eq!(f.proxies, ["http://proxy:3128"]);
    assert_eq!(
        (f.verify_tls, f.follow_redirects, f.robots),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(
        (f.connect_timeout_ms, f.timeout_ms),
        (Some(2000), Some(9000))
    );
    assert_eq!(f.content_types, ["text/"]);
    assert_eq!(
        serde_json::Value::Object(t.save.clone().expect("save")),
        serde_json::json!({ "category": "Poetry 3", "from": URL, "kind": "book", "n": 3 })
    );
}

#[test]
fn allow_deny_same_site_depth_and_length_filters() {
    let html = r#"<a href="/book/1">1</a><a href="/book/2?print=1">2</a><a href="/about">a</a>
        <a href="http://other.example/book/9">o</a><a href="/book/3">3</a>"#;
    let project = |rule: &str| {
        format!(
            "name = \"p\"\nstart = [\"http://www.site.example/\"]\n[handlers.start]\nfollow = [{rule}]\n[handlers.detail]\n"
        )
    };
    let out = run(
        &project(
            r#"{ css = "a", callback = "detail", allow = ['/book/\d+'], deny = ['print=1'] }"#,
        ),
        "start",
        page(URL, html),
    );
    assert_eq!(
        urls(&out.follows),
        [
            "http://www.site.example/book/1",
            "http://www.site.example/book/3"
        ]
    );
    assert!(
        out.logs[0].contains("2 filtered by allow/deny"),
        "{:?}",
        out.logs
    );

    let out = run(
        &project(r#"{ css = "a", callback = "detail", same_site = false, allow = ['book/9'] }"#),
        "start",
        page(URL, html),
    );
    assert_eq!(urls(&out.follows), ["http://other.example/book/9"]);

    // The task is at depth 2: its follows would be depth 3.
    let out = run(
        &project(r#"{ css = "a", callback = "detail", max_depth = 2 }"#),
        "start",
        page(URL, html),
    );
    assert!(out.follows.is_empty());
    assert!(out.logs[0].contains("5 beyond max_depth"), "{:?}", out.logs);
    let out = run(
        &project(r#"{ css = "a", callback = "detail", max_depth = 3 }"#),
        "start",
        page(URL, html),
    );
    assert_eq!(out.follows.len(), 4);

    let out = run(
        &project(r#"{ css = "a", callback = "detail", max_url_length = 29 }"#),
        "start",
        page(URL, html),
    );
    assert_eq!(urls(&out.follows), ["http://www.site.example/about"]);
    assert!(out.logs[0].contains("3 too long"), "{:?}", out.logs);
}

#[test]
fn xpath_and_json_follows() {
    let out = run(
        "name = \"p\"\nstart = [\"http://www.site.example/\"]\n[handlers.start]\nfollow = [{ xpath = \"//ul[@id='nav']//a/@href\", callback = \"start\" }, { xpath = \"//link[@rel='next']\", callback = \"start\" }]\n",
        "start",
        page(
            URL,
            r#"<link rel="next" href="/list/page2.html"><ul id=nav><li><a href="/c/1">1</a></li></ul><a href="/c/x">x</a>"#,
        ),
    );
    assert_eq!(
        urls(&out.follows),
        [
            "http://www.site.example/c/1",
            "http://www.site.example/list/page2.html"
        ]
    );

    let out = run(
        "name = \"p\"\nstart = [\"http://www.site.example/\"]\n[handlers.api]\nfollow = [{ json = \"$.results[*].url\", callback = \"api\" }]\n[handlers.start]\n",
        "api",
        crate::testutil::json_page(
            URL,
            r#"{"results": [{"url": "/a"}, {"url": 5}, {"url": "http://www.site.example/b"}]}"#,
        ),
    );
    assert_eq!(
        urls(&out.follows),
        ["http://www.site.example/a", "http://www.site.example/b"]
    );
}

#[test]
fn url_templates_page_through_an_api_until_the_last_page() {
    let project = r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.api]
follow = [{ url = "http://www.site.example/api?page={$.next_page}&q={$save.q}", callback = "api", save = { q = "$save.q" } },
          { url = "{$.links[*]}", callback = "api" }]
[handlers.start]
"#;
    let rules = rules(project);
    let mut t = task("api", URL);
    t.save = Some(serde_json::Map::from_iter([(
        "q".to_string(),
        serde_json::json!("a b&c"),
    )]));
    let out = crate::testutil::run(
        &rules,
        &t,
        &crate::testutil::json_page(
            URL,
            r#"{"next_page": 2, "links": ["http://www.site.example/x", "http://www.site.example/y"]}"#,
        ),
    );
    assert_eq!(
        urls(&out.follows),
        [
            "http://www.site.example/api?page=2&q=a%20b%26c",
            "http://www.site.example/x",
            "http://www.site.example/y"
        ]
    );
    assert_eq!(
        out.follows[0].save.as_ref().map(|s| s["q"].clone()),
        Some(serde_json::json!("a b&c"))
    );
    // The last page has no next_page: no follow.
    let out = crate::testutil::run(
        &rules,
        &t,
        &crate::testutil::json_page(URL, r#"{"next_page": null, "links": []}"#),
    );
    assert!(out.follows.is_empty(), "{:?}", out.follows);
}

/// A handler whose follow rules set every filter key, and whose script follows the same
/// callbacks (and one with no rule).
fn script_follows(script: &str, html: &str) -> crate::HandlerOutput {
    let project = format!(
        r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [
  {{ css = "a.detail", callback = "detail", allow = ['/books/'], deny = ['\?sort='], max_url_length = 60 }},
  {{ css = "a.next", callback = "start", max_depth = 2 }},
  {{ css = "a.out", callback = "other", same_site = false }},
]
script = '''
{script}
'''
[handlers.detail]
[handlers.other]
[handlers.plain]
"#
    );
    // The task is at depth 2: its follows are at depth 3.
    run(&project, "start", page(URL, html))
}

#[test]
fn script_follows_get_the_filters_of_the_rules_for_their_callback() {
    let long = format!("/books/{}", "x".repeat(60));
    let out = script_follows(
        &format!(
            r#"
follow("/books/1", "detail");
follow("/music/1", "detail");
follow("/books/2?sort=price", "detail");
follow("{long}", "detail");
follow("/page/2", "start");
follow("http://other.example/x", "other");
follow("http://other.example/y", "other", #{{ same_site: true }});
"#
        ),
        "",
    );
    assert_eq!(
        urls(&out.follows),
        ["http://www.site.example/books/1", "http://other.example/x"],
        "{:?}",
        out.logs
    );
    assert_eq!(out.follows[0].depth, 3);
    for expected in [
        "script follow `/music/1` skipped: filtered by allow/deny".to_string(),
        "script follow `/books/2?sort=price` skipped: filtered by allow/deny".to_string(),
        format!("script follow `{long}` skipped: too long"),
        "script follow `/page/2` skipped: beyond max_depth".to_string(),
        "script follow `http://other.example/y` skipped: off-site".to_string(),
    ] {
        assert!(out.logs.contains(&expected), "{expected}: {:?}", out.logs);
    }
}

#[test]
fn script_follows_without_a_rule_get_the_rule_defaults() {
    let long = format!("/p/{}", "x".repeat(2048));
    let out = script_follows(
        &format!(
            r#"
follow("/p/1", "plain");
follow("http://other.example/z", "plain");
follow("http://other.example/w", "plain", #{{ same_site: false }});
follow("{long}", "plain");
"#
        ),
        "",
    );
    assert_eq!(
        urls(&out.follows),
        ["http://www.site.example/p/1", "http://other.example/w"],
        "{:?}",
        out.logs
    );
    for expected in [
        "script follow `http://other.example/z` skipped: off-site".to_string(),
        format!("script follow `{long}` skipped: too long"),
    ] {
        assert!(out.logs.contains(&expected), "{expected}: {:?}", out.logs);
    }
}

#[test]
fn a_script_follow_of_a_url_a_rule_found_is_a_repeat() {
    let out = script_follows(
        r#"follow("/books/1#top", "other");"#,
        r#"<a class="detail" href="/books/1">b</a>"#,
    );
    assert_eq!(urls(&out.follows), ["http://www.site.example/books/1"]);
    // The rule came first and decides the task.
    assert_eq!(out.follows[0].callback, "detail");
    assert!(
        out.logs
            .contains(&"script follow `/books/1#top` skipped: repeated".to_string()),
        "{:?}",
        out.logs
    );
}

const TILES: &str = r#"<h1>Shop</h1><ul>
    <li class="tile" data-sku="a1"><a href="/p/1">One</a><span class="price">£1.50</span></li>
    <li class="tile" data-sku="b2"><a href="/p/2">Two</a><span class="price">£2.50</span></li>
    <li class="tile" data-sku="c3"><a href="/p/3">Three</a></li>
  </ul>"#;

fn saved(tasks: &[spindle_common::Task], key: &str) -> Vec<serde_json::Value> {
    tasks
        .iter()
        .map(|t| t.save.as_ref().expect("save")[key].clone())
        .collect()
}

#[test]
fn with_each_every_link_carries_the_values_of_its_own_element() {
    let out = run(
        r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [{ each = "li.tile", css = "a", callback = "detail", itag = { attr = "data-sku" },
            save = { price = { css = ".price", regex = '[0-9.]+', as = "number" }, sku = { attr = "data-sku" }, shop = { css = "h1" }, from = "$url" } }]
[handlers.detail]
"#,
        "start",
        page(URL, TILES),
    );
    assert_eq!(
        urls(&out.follows),
        [
            "http://www.site.example/p/1",
            "http://www.site.example/p/2",
            "http://www.site.example/p/3"
        ]
    );
    assert_eq!(
        saved(&out.follows, "price"),
        [
            serde_json::json!(1.5),
            serde_json::json!(2.5),
            serde_json::Value::Null
        ]
    );
    assert_eq!(saved(&out.follows, "sku"), ["a1", "b2", "c3"]);
    // Inside an element `css` reads the element only: the page's h1 is not in a tile.
    assert_eq!(saved(&out.follows, "shop")[0], serde_json::Value::Null);
    assert_eq!(saved(&out.follows, "from")[2], URL);
    let itags: Vec<Option<&str>> = out.follows.iter().map(|t| t.itag.as_deref()).collect();
    assert_eq!(itags, [Some("a1"), Some("b2"), Some("c3")]);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert!(
        out.logs.iter().any(|l| l.contains("`each` matched 3")),
        "{:?}",
        out.logs
    );
}

#[test]
fn with_each_and_no_css_the_element_itself_is_the_link() {
    let got = follows(
        "",
        r#"{ each = "a.card", callback = "detail", save = { t = { css = "b" } } }"#,
        r#"<a class="card" href="/x"><b>X</b></a><a class="card" href="/y"><b>Y</b></a><a href="/z">z</a>"#,
    );
    assert_eq!(
        urls(&got),
        ["http://www.site.example/x", "http://www.site.example/y"]
    );
    assert_eq!(saved(&got, "t"), ["X", "Y"]);
}

#[test]
fn a_save_read_once_for_many_links_warns() {
    let out = run(
        r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [{ css = "li.tile a", callback = "detail", save = { price = { css = ".price" }, from = "$url" } },
          { css = "h1 a", callback = "detail", save = { t = { css = "h1" } } }]
[handlers.detail]
"#,
        "start",
        page(URL, TILES),
    );
    // The trap: every product gets the first tile's price.
    assert_eq!(saved(&out.follows, "price"), ["£1.50", "£1.50", "£1.50"]);
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let w = &out.warnings[0];
    assert!(
        w.contains("`save.price`") && !w.contains("save.from"),
        "{w}"
    );
    assert!(w.contains("all 3 links") && w.contains("each"), "{w}");
    assert!(out.logs.iter().any(|l| l.starts_with("warning: ")));
}

#[test]
fn posts_of_different_forms_to_one_url_are_different_tasks() {
    let out = run(
        r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [{ each = "li.tile", css = "a", callback = "detail", form = { sku = { attr = "data-sku" }, back = "$url", pw = "$ecret" } },
          { each = "li.tile", css = "a", callback = "detail", form = { sku = { attr = "data-sku" }, back = "$url", pw = "$ecret" } },
          { css = "li.tile a", callback = "detail" }]
[handlers.detail]
"#,
        "start",
        page(
            URL,
            r#"<li class="tile" data-sku="a"><a href="/cart">add</a></li><li class="tile" data-sku="b"><a href="/cart">add</a></li>"#,
        ),
    );
    let cart = "http://www.site.example/cart";
    assert_eq!(
        urls(&out.follows),
        [cart, cart, cart],
        "two POSTs and a GET"
    );
    let forms: Vec<_> = out.follows.iter().map(|t| t.fetch.form.clone()).collect();
    let form = |sku: &str| {
        Some(
            [("sku", sku), ("back", URL), ("pw", "$ecret")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    assert_eq!(forms, [form("a"), form("b"), None]);
    assert_ne!(out.follows[0].taskid, out.follows[1].taskid);
    assert_eq!(
        out.follows[2].taskid,
        fingerprint(cart),
        "a GET keeps its URL id"
    );
    assert_eq!(
        out.follows_repeated, 3,
        "the second rule's two POSTs repeat the first's, and the GET's second link its first"
    );
    assert_eq!(out.form_values_literal, 2, "one `$ecret` per POST sent");
    assert!(
        out.logs
            .iter()
            .any(|l| l.contains("`pw` = \"$ecret\" sent as written")),
        "{:?}",
        out.logs
    );
}

#[test]
fn a_form_of_the_page_is_submitted_with_its_hidden_fields() {
    let out = run(
        r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [{ form = { css = "form#login", fill = { email = "me@x.example", password = "pw", from = { css = "h1" } } }, callback = "detail", session = true }]
[handlers.detail]
"#,
        "start",
        page(
            URL,
            r#"<h1>Sign in</h1><form id="login" method="post" action="../session">
                <input type="hidden" name="csrf" value="k1"><input name="email"><input type="password" name="password">
                <button>Go</button></form><form id="search"><input name="q"></form>"#,
        ),
    );
    assert_eq!(out.follows.len(), 1);
    let t = &out.follows[0];
    assert_eq!(t.url, "http://www.site.example/session");
    assert_eq!(t.fetch.method.as_deref(), Some("POST"));
    assert_eq!(
        t.fetch.body.as_deref(),
        Some("csrf=k1&email=me%40x.example&password=pw&from=Sign+in")
    );
    assert!(t.fetch.session);
    assert_eq!(
        t.taskid,
        spindle_common::urlnorm::request_fingerprint(&t.url, &t.fetch)
    );
}

#[test]
fn post_back_paging_forms_make_one_task_per_view_state() {
    let page_with = |state: &str| {
        page(
            URL,
            &format!(
                r#"<form id="f" method="post"><input type="hidden" name="__VIEWSTATE" value="{state}">
                <input type="hidden" name="__EVENTTARGET" value=""></form>"#
            ),
        )
    };
    let project = r#"
name = "p"
start = ["http://www.site.example/"]
[handlers.start]
follow = [{ form = { css = "form#f", fill = { __EVENTTARGET = "next" } }, callback = "start" }]
"#;
    let one = run(project, "start", page_with("s1"));
    let two = run(project, "start", page_with("s2"));
    let again = run(project, "start", page_with("s1"));
    assert_eq!(one.follows[0].url, URL, "no action: the page itself");
    assert_eq!(
        one.follows[0].fetch.body.as_deref(),
        Some("__VIEWSTATE=s1&__EVENTTARGET=next")
    );
    assert_ne!(one.follows[0].taskid, two.follows[0].taskid);
    assert_eq!(one.follows[0].taskid, again.follows[0].taskid);
    assert_ne!(one.follows[0].taskid, fingerprint(URL));
}

#[test]
fn identity_headers_make_one_url_several_tasks() {
    let got = follows(
        "",
        r#"{ css = "a", callback = "detail", headers = { "Accept-Language" = "fr" }, identity_headers = ["accept-language"] },
           { css = "a", callback = "detail", headers = { "Accept-Language" = "de" }, identity_headers = ["Accept-Language"] },
           { css = "a", callback = "detail", headers = { "Accept-Language" = "es" } }"#,
        r#"<a href="/x">x</a>"#,
    );
    let x = "http://www.site.example/x";
    assert_eq!(urls(&got), [x, x, x], "fr and de are two tasks, es a third");
    assert_ne!(got[0].taskid, got[1].taskid);
    assert_ne!(got[0].taskid, fingerprint(x));
    assert_eq!(
        got[2].taskid,
        fingerprint(x),
        "without identity headers: the URL's id"
    );
}
