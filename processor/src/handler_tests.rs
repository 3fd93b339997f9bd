//! Tests of running a handler: callbacks, base URLs, parsing only what is read, scripts.

use super::*;
use crate::error::ProcessorError;
use crate::testutil::{page, rules, task};

const PROJECT: &str = r#"
name = "p"
start = ["http://site.example/"]
[handlers.start]
follow = [{ css = "a", callback = "detail" }]
[handlers.detail]
item.title = { css = "h1" }
[handlers.meta]
item.status = "$status"
"#;

#[test]
fn an_unknown_callback_fails_the_task() {
    let rules = rules(PROJECT);
    let err = run_handler(&rules, &task("nope", "http://site.example/"), &page("", ""))
        .expect_err("no such handler");
    assert!(
        matches!(err, ProcessorError::UnknownCallback { ref callback, .. } if callback == "nope")
    );
    assert!(err.is_task_failure());
}

#[test]
fn a_page_without_an_absolute_url_fails_the_task() {
    let rules = rules(PROJECT);
    let err = run_handler(
        &rules,
        &task("start", "not a url"),
        &page("also not", "<a href=x>"),
    )
    .expect_err("no base URL");
    assert!(matches!(err, ProcessorError::BadPageUrl(_)), "{err}");
}

#[test]
fn links_resolve_against_the_page_url_after_redirects() {
    let rules = rules(PROJECT);
    let out = run_handler(
        &rules,
        &task("start", "http://site.example/old/"),
        &page("http://site.example/new/", r#"<a href="next">n</a>"#),
    )
    .expect("runs");
    assert_eq!(out.follows[0].url, "http://site.example/new/next");
}

#[test]
fn a_base_element_changes_where_links_resolve() {
    let rules = rules(PROJECT);
    let html =
        r#"<html><head><base href="/shop/"></head><body><a href="item?id=1">i</a></body></html>"#;
    let out = run_handler(
        &rules,
        &task("start", "http://site.example/a/b"),
        &page("http://site.example/a/b", html),
    )
    .expect("runs");
    assert_eq!(out.follows[0].url, "http://site.example/shop/item?id=1");
    // A base that is not http(s) is ignored.
    let html = r#"<base href="javascript:x"><a href="item">i</a>"#;
    let out = run_handler(
        &rules,
        &task("start", "http://site.example/a/b"),
        &page("http://site.example/a/b", html),
    )
    .expect("runs");
    assert_eq!(out.follows[0].url, "http://site.example/a/item");
}

#[test]
fn malformed_html_is_not_an_error() {
    let rules = rules(PROJECT);
    let html = "<h1>Title<a href='/x'><<<</p></div></h1><h1>second";
    let out = run_handler(
        &rules,
        &task("detail", "http://site.example/"),
        &page("http://site.example/", html),
    )
    .expect("runs");
    assert_eq!(out.items[0].data["title"], "Title<<<");
    let out = run_handler(
        &rules,
        &task("start", "http://site.example/"),
        &page("http://site.example/", "\u{0}\u{feff}<<a href"),
    )
    .expect("runs");
    assert!(out.follows.is_empty());
}

#[test]
fn handlers_without_extraction_skip_the_html() {
    let rules = rules(PROJECT);
    let mut p = page("http://site.example/", "<h1>x</h1>");
    p.status = 203;
    let out = run_handler(&rules, &task("meta", "http://site.example/"), &p).expect("runs");
    assert_eq!(out.items[0].data["status"], 203);
    assert!(out.follows.is_empty());
}

const SCRIPTED: &str = r##"
name = "p"
start = ["http://site.example/"]
[handlers.list]
items = { each = "li" }
item.name = {}
script = '''
// Declarative items are in `items`; change them, add more, follow more.
for i in 0..items.len() {
    items[i].name = items[i].name.to_upper();
}
items.push(#{ name: "extra" });
let total = css_first("#total");
emit(#{ total: parse_int(total), url: page.url, status: page.status, cat: page.save.cat }, "totals");
let hrefs = css("a.next", "href");
for h in hrefs {
    follow(h, "list", #{ priority: 2, save: #{ cat: "c" }, age: "1d", fetch: "js", headers: #{ "X-From": "script" } });
}
follow("http://elsewhere.example/", "list");
log(`found ${items.len()} items`);
print("printed");
'''
[handlers.api]
script = '''
let names = json("$.items[*].name");
for n in names { emit(#{ name: n }); }
let next = json_first("$.next");
if next != () { follow(resolve(next), "api"); }
let caps = regex_captures("Price: 12.50 EUR", "([0-9.]+) (\\w+)");
emit(#{ amount: caps[1], currency: caps[2], key: fingerprint("x") });
'''
[handlers.start]
"##;

#[test]
fn a_script_sees_the_page_changes_items_emits_and_follows() {
    let rules = rules(SCRIPTED);
    let mut t = task("list", "http://site.example/l");
    t.save = Some(serde_json::Map::from_iter([(
        "cat".to_string(),
        serde_json::json!("poetry"),
    )]));
    let html =
        r#"<ul><li>a</li><li>b</li></ul><span id=total>42</span><a class=next href="/l?p=2">n</a>"#;
    let out = run_handler(&rules, &t, &page("http://site.example/l", html)).expect("runs");
    assert!(out.script_ms.is_some(), "a script's time is measured apart");
    let data: Vec<serde_json::Value> = out
        .items
        .iter()
        .map(|i| serde_json::Value::Object(i.data.clone()))
        .collect();
    assert_eq!(
        data,
        [
            serde_json::json!({ "name": "A" }),
            serde_json::json!({ "name": "B" }),
            serde_json::json!({ "name": "extra" }),
            serde_json::json!({ "total": 42, "url": "http://site.example/l", "status": 200, "cat": "poetry" }),
        ]
    );
    assert_eq!(out.items[0].taskid, crate::extract::item_key("t1", 0));
    assert_eq!(out.items[3].taskid, urlnorm::fingerprint("totals"));
    assert_eq!(out.follows.len(), 1, "{:?}", out.logs);
    let f = &out.follows[0];
    assert_eq!(f.url, "http://site.example/l?p=2");
    assert_eq!((f.callback.as_str(), f.priority, f.depth), ("list", 2, 3));
    assert_eq!(f.age_ms, Some(86_400_000));
    assert_eq!(f.fetch.mode, FetchMode::Js);
    assert_eq!(f.fetch.headers["X-From"], "script");
    assert_eq!(
        f.save.as_ref().map(|s| s["cat"].clone()),
        Some(serde_json::json!("c"))
    );
    for expected in [
        "script: found 3 items",
        "script: printed",
        "skipped: off-site",
    ] {
        assert!(
            out.logs.iter().any(|l| l.contains(expected)),
            "{expected}: {:?}",
            out.logs
        );
    }
}

#[test]
fn a_script_reads_json_and_uses_regexes() {
    let rules = rules(SCRIPTED);
    let url = "http://site.example/api";
    let out = run_handler(
        &rules,
        &task("api", url),
        &crate::testutil::json_page(
            url,
            r#"{"items": [{"name": "x"}, {"name": "y"}], "next": "/api?page=2"}"#,
        ),
    )
    .expect("runs");
    assert_eq!(out.items.len(), 3, "{:?} {:?}", out.items, out.logs);
    let names: Vec<&serde_json::Value> =
        out.items.iter().take(2).map(|i| &i.data["name"]).collect();
    assert_eq!(
        names[..2],
        [&serde_json::json!("x"), &serde_json::json!("y")]
    );
    assert_eq!(out.items[2].data["amount"], "12.50");
    assert_eq!(out.items[2].data["currency"], "EUR");
    assert_eq!(out.follows[0].url, "http://site.example/api?page=2");
}

fn script_project(script: &str) -> String {
    format!("name = \"p\"\n[handlers.s]\nscript_timeout = \"300ms\"\nscript = '''\n{script}\n'''\n")
}

fn script_error(script: &str) -> String {
    let rules = rules(&script_project(script));
    let url = "http://site.example/";
    let err =
        run_handler(&rules, &task("s", url), &page(url, "<p>x</p>")).expect_err("script fails");
    assert!(matches!(err, ProcessorError::Script(_)), "{err}");
    assert!(err.is_task_failure());
    err.to_string()
}

#[test]
fn a_runaway_script_is_stopped_by_its_time_limit() {
    let started = std::time::Instant::now();
    let err = script_error("let n = 0;\nloop { n += 1; }");
    assert!(
        err.contains("ran longer than its time limit of 300ms"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_runaway_script_is_stopped_by_its_operation_limit() {
    let project = spindle_common::Project::parse(&script_project("loop { }")).expect("valid");
    let limits = spindle_common::project::ScriptLimits {
        max_operations: 10_000,
        ..Default::default()
    };
    let rules = Rules::compile_with_limits(std::sync::Arc::new(project), limits).expect("compiles");
    let url = "http://site.example/";
    let err = run_handler(&rules, &task("s", url), &page(url, "")).expect_err("stopped");
    assert!(
        err.to_string().contains("more than 10000 operations"),
        "{err}"
    );
}

#[test]
fn scripts_cannot_reach_files_network_or_processes() {
    for attempt in [
        r#"let text = open_file("/etc/passwd"); emit(#{ t: text });"#,
        r#"let f = File::open("/etc/passwd");"#,
        r#"let out = system("cat /etc/passwd");"#,
        r#"let r = http_get("http://example.com/");"#,
    ] {
        let err = script_error(attempt);
        assert!(
            err.contains("Function not found") || err.contains("not found"),
            "{attempt}: {err}"
        );
    }
    // `import` and `eval` are refused before any fetch, by the project check.
    for attempt in [r#"import "/etc/passwd" as p;"#, r#"eval("1 + 1")"#] {
        let err = spindle_common::Project::parse(&script_project(attempt)).expect_err(attempt);
        assert!(
            err.message.contains("script syntax error"),
            "{attempt}: {err}"
        );
        assert_eq!(err.line, 5, "{attempt}: {err}");
    }
}

/// The error of running handler `s` of a project with `script` and these script limits.
fn script_error_with(script: &str, limits: spindle_common::project::ScriptLimits) -> String {
    let project = spindle_common::Project::parse(&script_project(script)).expect("valid");
    let rules = Rules::compile_with_limits(std::sync::Arc::new(project), limits).expect("compiles");
    let url = "http://site.example/";
    let err = run_handler(&rules, &task("s", url), &page(url, "")).expect_err("stopped");
    assert!(matches!(err, ProcessorError::Script(_)), "{err}");
    err.to_string()
}

#[test]
fn a_string_growing_without_end_is_stopped_by_the_size_limit() {
    let limits = spindle_common::project::ScriptLimits {
        max_string_size: 4096,
        // Far beyond what the test takes: only the size limit can stop the script.
        timeout: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let err = script_error_with("let s = \"x\";\nloop { s += s; }", limits);
    assert!(
        err.starts_with(
            "script stopped: a value grew past its size limit (Length of string too large; \
             limits: strings 4096 bytes"
        ),
        "{err}"
    );
}

#[test]
fn endless_recursion_is_stopped_by_the_call_depth_limit() {
    let limits = spindle_common::project::ScriptLimits {
        max_call_levels: 16,
        timeout: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    let err = script_error_with("fn f(n) { f(n + 1) }\nf(0);", limits);
    assert_eq!(
        err,
        "script stopped: function calls nested deeper than 16 levels (endless recursion?)"
    );
    // The default limit, within the project's own timeout.
    let err = script_error("fn f(n) { f(n + 1) }\nf(0);");
    assert_eq!(
        err,
        "script stopped: function calls nested deeper than 64 levels (endless recursion?)"
    );
}

#[test]
fn a_loop_of_heavy_page_calls_is_stopped_near_its_time_limit() {
    // One `css("*")` on this page costs as much as many thousand operations: between two
    // looks at the clock by the progress hook, such a loop would run for seconds.
    let body = format!("<ul>{}</ul>", "<li><b>item</b> text</li>".repeat(40_000));
    let url = "http://site.example/";
    for script in [
        "loop { let all = css(\"*\"); }",
        // Catching the page function's error buys no time,
        "loop { try { let all = css_html(\"*\"); } catch (e) { } }",
        // and ending the script once caught does not make its (partial) output count.
        "loop { try { let all = css(\"*\"); } catch (e) { break; } }\nitems.push(#{ done: true });",
    ] {
        let rules = rules(&format!(
            "name = \"p\"\n[handlers.s]\nscript_timeout = \"200ms\"\nscript = '''\n{script}\n'''\n"
        ));
        let started = std::time::Instant::now();
        let err = run_handler(&rules, &task("s", url), &page(url, &body)).expect_err(script);
        let elapsed = started.elapsed();
        assert!(
            err.to_string()
                .contains("ran longer than its time limit of 200ms"),
            "{script}: {err}"
        );
        // A generous bound (10x: the machine may be busy); without the page functions' own
        // looks at the clock this loop runs for several seconds.
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "{script}: {elapsed:?}"
        );
    }
}

#[test]
fn a_script_sees_the_screenshot() {
    let rules = rules(&script_project(
        "emit(#{ shot: page.screenshot, none: page.screenshot == () });",
    ));
    let url = "http://site.example/";
    let mut p = page(url, "<p>x</p>");
    p.screenshot_png_base64 = Some("iVBORw0KGgo=".into());
    let out = run_handler(&rules, &task("s", url), &p).expect("runs");
    assert_eq!(out.items[0].data["shot"], "iVBORw0KGgo=");
    assert_eq!(out.items[0].data["none"], false);
    let out = run_handler(&rules, &task("s", url), &page(url, "<p>x</p>")).expect("runs");
    assert_eq!(out.items[0].data["shot"], serde_json::Value::Null);
    assert_eq!(out.items[0].data["none"], true);
}

#[test]
fn script_errors_name_the_line_of_the_project_file() {
    // The script starts on line 5 of the file; the error is on its 2nd line.
    let err = script_error("let a = 1;\nthrow \"bad page\";");
    assert!(err.contains("line 6 of the project file"), "{err}");
    assert!(err.contains("bad page"), "{err}");
    let err = script_error("follow(\"/x\", \"nope\");");
    assert!(err.contains("callback `nope` names no handler"), "{err}");
    let err = script_error("follow(\"/x\", \"s\", #{ prio: 1 });");
    assert!(err.contains("unknown field `prio`"), "{err}");
    let err = script_error("items = 5;");
    assert!(err.contains("no longer an array"), "{err}");
}

#[test]
fn items_replaced_by_a_later_one_of_the_same_key_are_counted() {
    let rules = rules(
        "name = \"p\"\n[handlers.list]\nitems = { each = \"li\", key = \"sku\" }\nitem.sku = { attr = \"data-sku\" }\nitem.n = { css = \"b\" }\n",
    );
    let url = "http://site.example/";
    let out = run_handler(
        &rules,
        &task("list", url),
        &page(
            url,
            r#"<li data-sku="a"><b>1</b></li><li data-sku="b"><b>2</b></li><li data-sku="a"><b>3</b></li>"#,
        ),
    )
    .expect("runs");
    assert_eq!(
        out.items.len(),
        3,
        "all emitted; the store keeps the last of a key"
    );
    assert_eq!(out.items_replaced, 1);
    assert!(
        out.logs
            .iter()
            .any(|l| l.contains("1 item(s) replaced by later ones")),
        "{:?}",
        out.logs
    );
}
