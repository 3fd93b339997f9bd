//! Tests of the format beyond the DESIGN.md minimum: every refused file says where and what
//! was expected; defaults, schedules and `[on_finished]` are read.

use std::time::Duration;

use crate::message::FetchMode;
use crate::project::*;

/// Parses `text`, expecting an error; returns (line, column, message).
fn refused(text: &str) -> (usize, usize, String) {
    let e = Project::parse(text).expect_err("the file should be refused");
    (e.line, e.column, e.message)
}

/// A file whose handler `h` has `body`, plus a handler `other`.
fn handler(body: &str) -> String {
    format!("name = \"x\"\n[handlers.h]\n{body}\n[handlers.other]\n")
}

#[test]
fn every_validation_error_has_a_position_and_an_expectation() {
    // (file, line, column, part of the message)
    let cases: Vec<(String, usize, usize, &str)> = vec![
        // unknown keys, at every level of the new keys
        (handler("item.a = { css = \"a\", requird = true }"), 3, 23, "unknown field `requird`"),
        (handler("items = { each = \"li\", eech = 1 }\nitem.a = {}"), 3, 24, "unknown field `eech`"),
        (handler("follow = [{ css = \"a\", callback = \"h\", sam_site = false }]"), 3, 40, "unknown field `sam_site`"),
        ("name = \"x\"\n[defaults]\nuser_agnt = \"x\"\n".to_string(), 3, 1, "unknown field `user_agnt`"),
        (handler("follow = [{ css = \"a\", callback = \"h\", js = { wait = \"1s\", wiat_for = \"x\" } }]"), 3, 60, "unknown field `wiat_for`"),
        ("name = \"x\"\n[on_finished]\nitems.x = \"1\"\n".to_string(), 3, 1, "unknown field `items`"),
        // bad selectors, regexes, JSONPath, XPath
        (handler("items = { each = \"li[\" }"), 3, 18, "invalid CSS selector"),
        (handler("item.a = { xpath = \"//a[\" }"), 3, 20, "invalid XPath"),
        (handler("item.a = { json = \"$.a[\" }"), 3, 19, "invalid JSONPath"),
        (handler("items = { each_json = \"items\" }\nitem.a = {}"), 3, 23, "invalid JSONPath"),
        (handler("follow = [{ css = \"a\", callback = \"h\", deny = ['(x'] }]"), 3, 47, "invalid regex"),
        (handler("follow = [{ url = \"https://a/?p={$.p[}\", callback = \"h\" }]"), 3, 10, "invalid JSONPath"),
        (handler("follow = [{ url = \"https://a/{page}\", callback = \"h\" }]"), 3, 10, "placeholder {page}"),
        (handler("item.d = { css = \"p\", as = \"datetime\", format = \"%Q\" }"), 3, 49, "invalid datetime format"),
        (handler("item.d = { css = \"p\", as = \"date\", format = \"%Q\" }"), 3, 45, "invalid datetime format"),
        // unknown types, with the list of the known ones
        (handler("item.d = { css = \"p\", as = \"day\" }"), 3, 28, "unknown variant `day`, expected one of `string`, `number`, `integer`, `bool`, `url`, `datetime`, `date`"),
        (handler("item.d = { css = \"p\", as = \"string\", format = \"%Y\" }"), 3, 10, "`format` is the input format of `as = \"datetime\"` or `as = \"date\"`"),
        // unknown callbacks
        (handler("follow = [{ json = \"$.next\", callback = \"nope\" }]"), 3, 41, "callback \"nope\" names no handler"),
        ("name = \"x\"\n[handlers.a]\n[on_finished]\nfollow = [{ url = \"https://h/\", callback = \"b\" }]\n".to_string(), 4, 44, "names no handler"),
        // fields where they cannot be used
        (handler("item.a = { attr = \"href\" }"), 3, 10, "expected a source"),
        (handler("items = { each = \"li\" }\nitem.a = { json = \"$.a\" }"), 4, 10, "inside `each` (CSS)"),
        (handler("items = { each_json = \"$[*]\" }\nitem.a = { css = \"a\" }"), 4, 10, "inside `each_json`"),
        (handler("items = { each_xpath = \"//li\" }\nitem.a = { css = \"a\" }"), 4, 10, "inside `each_xpath`"),
        (handler("items = { each_jsonld = \"$[*]\" }\nitem.a = { css = \"a\" }"), 4, 10, "inside `each_jsonld`"),
        (handler("items = { each_jsonld = \"$[*]\" }\nitem.a = { json = \"$.a\" }"), 4, 10, "inside `each_jsonld`"),
        (handler("items = { each_xpath = \"//li\" }\nitem.a = { itemprop = \"a\" }"), 4, 10, "inside `each_xpath`"),
        (handler("items = { each_jsonld = \"$[\" }"), 3, 25, "invalid JSONPath"),
        (handler("items = { each_json = \"$[*]\", each_jsonld = \"$[*]\" }"), 3, 9, "exactly one of"),
        (handler("item.w = { css = \"td\", unit = \"stone\" }"), 3, 31, "unknown unit \"stone\""),
        (handler("item.w = { css = \"td\", expr = \"value +\" }"), 3, 31, "invalid expression"),
        (handler("items = { each = \"li\", each_json = \"$[*]\" }"), 3, 9, "exactly one of"),
        (handler("items = { each = \"li\", key = \"id\" }\nitem.sku = {}"), 3, 30, "key \"id\" names no item field"),
        (handler("follow = [{ callback = \"h\" }]"), 3, 10, "needs a source of links"),
        (handler("follow = [{ css = \"a\", json = \"$.a\", callback = \"h\" }]"), 3, 10, "one source of links"),
        (handler("follow = [{ css = \"a\", callback = \"h\", body = \"x\", form = { a = \"b\" } }]"), 3, 10, "one of `body`, `form`"),
        (handler("follow = [{ css = \"a\", callback = \"h\", itag = { css = \"b\" } }]"), 3, 10, "`itag` is a constant"),
        (handler("follow = [{ css = \"a\", callback = \"h\", proxies = [\"ftp://p\"] }]"), 3, 50, "invalid proxy"),
        (handler("follow = [{ css = \"a\", callback = \"h\", method = \"GE T\" }]"), 3, 49, "invalid HTTP method"),
        ("name = \"x\"\n[handlers.a]\n[on_finished]\nitem.t = \"$url\"\n".to_string(), 4, 10, "on_finished has no page"),
        ("name = \"x\"\n[handlers.a]\n[on_finished]\nfollow = [{ url = \"https://h/\", callback = \"a\", form = { u = \"$url\" } }]\n".to_string(), 4, 44, "without `save`, `each` or form values read from a page"),
        (handler("follow = [{ css = \"a\", callback = \"h\", form = { css = \"form\", fill = { a = { css = \"b\", as = \"nope\" } } } }]"), 3, 10, "unknown variant `nope`"),
        // schedules
        ("name = \"x\"\nevery = \"0 99 * * *\"\n".to_string(), 2, 9, "invalid schedule"),
        // script syntax errors, at their line in the file
        (handler("script = '''\nlet a = 1;\nlet = 2;\n'''"), 5, 5, "script syntax error"),
        (handler("script = \"let x = ;\""), 3, 19, "script syntax error"),
        (handler("script = '''\nimport \"x\" as y;\n'''"), 4, 1, "script syntax error"),
        (handler("script = \"1\"\nscript_file = \"a.rhai\""), 4, 15, "not both"),
    ];
    let mut wrong = Vec::new();
    for (text, line, column, expected) in cases {
        let (l, c, message) = refused(&text);
        if !message.contains(expected) || (l, c) != (line, column) {
            wrong.push(format!(
                "{text}\n  expected {line}:{column} {expected}\n  got {l}:{c}: {message}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn defaults_take_every_fetch_option() {
    let p = Project::parse(
        r##"
name = "x"
allow_private = true
[defaults]
headers = { Accept = "text/html" }
timeout = "10s"
user_agent = "spindle/1"
cookies = { consent = "yes" }
session = true
proxies = ["http://p1:3128", "socks5://p2:1080"]
robots = false
verify_tls = false
follow_redirects = true
connect_timeout = "3s"
content_types = ["text/", "application/json"]
fetch = "js"
js = { wait_for = "#app", network_idle = true, viewport = [1280, 800], block_images = true, screenshot = true, script = "document.title" }
"##,
    )
    .expect("valid");
    let f = p.fetch_defaults();
    assert_eq!(f.headers["Accept"], "text/html");
    assert_eq!(f.timeout_ms, Some(10_000));
    assert_eq!(
        (f.max_body, f.max_redirects),
        (Some(10 * 1024 * 1024), Some(10))
    );
    assert_eq!(f.user_agent.as_deref(), Some("spindle/1"));
    assert_eq!(f.cookies["consent"], "yes");
    assert!(f.session && f.allow_private);
    assert_eq!(f.proxies.len(), 2);
    assert_eq!(
        (f.robots, f.verify_tls, f.follow_redirects),
        (Some(false), Some(false), Some(true))
    );
    assert_eq!(f.connect_timeout_ms, Some(3000));
    assert_eq!(f.content_types, ["text/", "application/json"]);
    assert_eq!(f.mode, FetchMode::Js);
    let js = f.js.as_ref().expect("js");
    assert_eq!(js.viewport, Some((1280, 800)));
    assert!(js.network_idle && js.block_images && js.screenshot);
    assert_eq!(js.script.as_deref(), Some("document.title"));
    // The fields the scheduler already reads keep their values.
    assert_eq!(p.defaults.timeout, Duration::from_secs(10));
    assert_eq!(p.defaults.headers["Accept"], "text/html");

    let own = crate::message::FetchOptions {
        user_agent: Some("own".into()),
        ..Default::default()
    };
    let merged = p.fetch_for(&own);
    assert_eq!(merged.user_agent.as_deref(), Some("own"));
    assert_eq!(merged.cookies["consent"], "yes");
    assert!(merged.allow_private);
}

#[test]
fn every_takes_intervals_and_cron_expressions() {
    let p = Project::parse("name = \"x\"\nevery = \"6h\"\n").expect("valid");
    assert_eq!(p.every, Some(Duration::from_secs(6 * 3600)));
    assert_eq!(p.next_start_after(1_000), Some(1_000 + 6 * 3600 * 1000));

    let p = Project::parse("name = \"x\"\nevery = \"30 3 * * *\"\n").expect("valid");
    assert_eq!((p.every, p.cron.as_deref()), (None, Some("30 3 * * *")));
    // 2024-01-01T00:00:00Z -> 03:30 the same day; 03:30 itself -> the next day.
    let jan1 = 1_704_067_200_000;
    let first = jan1 + (3 * 3600 + 30 * 60) * 1000;
    assert_eq!(p.next_start_after(jan1), Some(first));
    assert_eq!(p.next_start_after(first), Some(first + 86_400_000));

    let p = Project::parse("name = \"x\"\n").expect("valid");
    assert_eq!(p.next_start_after(0), None);
}

#[test]
fn on_finished_emits_an_item_and_webhook_follows() {
    let p = Project::parse(
        r#"
name = "books"
[handlers.webhook]
[on_finished]
item.event = "finished"
item.project = "$project"
item.at = "$now"
follow = [{ url = "https://hooks.example/done?p={$project}&at={$now}", callback = "webhook", method = "POST", body = '{"done":true}' }]
"#,
    )
    .expect("valid");
    let out = p.on_finished_output(1_704_067_200_000);
    assert_eq!(out.items.len(), 1);
    let item = &out.items[0];
    assert_eq!(item.url, ON_FINISHED_URL);
    assert_eq!(item.data["event"], "finished");
    assert_eq!(item.data["project"], "books");
    assert_eq!(item.data["at"], "2024-01-01T00:00:00Z");
    let t = &out.follows[0];
    assert_eq!(
        t.url,
        "https://hooks.example/done?p=books&at=2024-01-01T00%3A00%3A00Z"
    );
    assert_eq!(
        (t.callback.as_str(), t.force, t.depth),
        ("webhook", true, 0)
    );
    assert_eq!(t.fetch.method.as_deref(), Some("POST"));
    assert_eq!(t.fetch.body.as_deref(), Some("{\"done\":true}"));
    assert_eq!(p.item_fields(), ["event", "project", "at"]);
    assert_eq!(
        Project::parse("name = \"x\"\n")
            .expect("valid")
            .on_finished_output(0),
        FinishedOutput::default()
    );
}

#[test]
fn many_items_scripts_and_fields_are_read() {
    let p = Project::parse(
        r#"
name = "x"
[handlers.list.items]
each = "div.product"
key = "sku"
[handlers.list]
item.sku = { attr = "data-sku", required = true }
item.name = { css = "h3", html = "inner", default = "?" }
script_timeout = "2s"
script = '''
emit(#{ a: 1 });
'''
"#,
    )
    .expect("valid");
    let h = &p.handlers["list"];
    assert_eq!(
        h.items,
        Some(ItemsRule {
            each: Each::Css("div.product".into()),
            key: Some("sku".into())
        })
    );
    let script = h.script.as_ref().expect("script");
    assert_eq!(script.source, "emit(#{ a: 1 });\n");
    assert_eq!(script.origin, ScriptOrigin::Inline { line: 11 });
    assert_eq!(script.timeout, Some(Duration::from_secs(2)));
    assert_eq!(
        h.item["sku"],
        Field::Extract(FieldRule {
            attr: Some("data-sku".into()),
            required: true,
            ..FieldRule::new(Source::Element)
        })
    );
}

#[test]
fn result_ttl_takes_a_duration_longer_than_zero() {
    let p = Project::parse("name = \"x\"\nresult_ttl = \"30d\"\n").expect("valid");
    assert_eq!(p.result_ttl, Some(Duration::from_secs(30 * 86_400)));
    let p = Project::parse("name = \"x\"\n").expect("valid");
    assert_eq!(p.result_ttl, None, "kept for ever by default");
    for (text, column, message) in [
        ("result_ttl = \"30 days ago\"", 14, "invalid duration"),
        ("result_ttl = \"0s\"", 14, "longer than zero"),
        ("result_ttl = true", 14, "a duration such as"),
    ] {
        let (line, col, msg) = refused(&format!("name = \"x\"\n{text}\n"));
        assert_eq!((line, col), (2, column), "{text}: {msg}");
        assert!(msg.contains(message), "{text}: {msg}");
    }
}

#[test]
fn follows_in_each_forms_and_their_errors() {
    let ok = |follow: &str| {
        Project::parse(&format!(
            "name = \"p\"\n[handlers.start]\nfollow = [{follow}]\n[handlers.h]\n"
        ))
    };
    let p = ok(r#"{ each = "li", css = "a", callback = "h", save = { p = { css = ".price" }, s = { attr = "data-sku" } }, itag = { attr = "data-v" } }"#)
        .expect("each with element values");
    let rule = &p.handlers["start"].follow[0];
    assert_eq!(rule.each.as_deref(), Some("li"));
    let p = ok(r#"{ each = "a.card", callback = "h" }"#).expect("the element is the link");
    assert_eq!(
        p.handlers["start"].follow[0].links,
        LinkSource::Element {
            attr: "href".into()
        }
    );
    let p = ok(r#"{ form = { css = "form#login", fill = { email = "e", token = { css = "meta[name=t]", attr = "content" } } }, callback = "h" }"#)
        .expect("a form of the page");
    assert!(matches!(
        p.handlers["start"].follow[0].links,
        LinkSource::Form(_)
    ));
    let p = ok(r#"{ css = "a", callback = "h", form = { q = "x" } }"#).expect("constants");
    assert!(p.handlers["start"].follow[0].form.is_none());
    assert!(p.handlers["start"].follow[0].fetch.form.is_some());
    let p = ok(r#"{ css = "a", callback = "h", form = { back = "$url" } }"#).expect("page value");
    assert!(p.handlers["start"].follow[0].form.is_some());
    assert!(p.handlers["start"].follow[0].fetch.form.is_none());

    for (follow, why) in [
        (
            r#"{ each = "li", xpath = "//a", callback = "h" }"#,
            "`each` (CSS) takes links",
        ),
        (
            r#"{ each = "li", css = "a", callback = "h", save = { p = { xpath = "//b" } } }"#,
            "`save.p`: inside `each` (CSS)",
        ),
        (
            r#"{ css = "a", callback = "h", save = { p = { attr = "x" } } }"#,
            "`save.p`: expected a source",
        ),
        (
            r#"{ css = "a", callback = "h", itag = { css = "b" } }"#,
            "a field rule only with `each`",
        ),
        (
            r#"{ css = "a", form = { css = "form" }, callback = "h" }"#,
            "is the rule's link",
        ),
        (
            r#"{ form = { css = "form" }, method = "GET", callback = "h" }"#,
            "remove `method`",
        ),
        (
            r#"{ form = { css = "form", user = "x" }, callback = "h" }"#,
            "put the values to send in `fill`",
        ),
        (
            r#"{ css = "a", form = { q = [1] }, callback = "h" }"#,
            "`form.q`: expected a string",
        ),
        (
            r#"{ each = "li[", callback = "h" }"#,
            "invalid CSS selector",
        ),
    ] {
        let err = ok(follow).expect_err(follow);
        assert!(err.message.contains(why), "{follow}: {}", err.message);
        assert_eq!(err.line, 3, "{follow}: {err:?}");
    }
}

#[test]
fn check_warns_of_form_values_sent_as_written() {
    let p = Project::parse(
        r#"
name = "p"
[handlers.start]
follow = [{ css = "a", callback = "h", form = { user = "me", pw = "$ecret", lit = "$$x", from = "$url" } },
          { form = { css = "form", fill = { token = "$tokn" } }, callback = "h" }]
[handlers.h]
"#,
    )
    .expect("valid");
    assert_eq!(
        p.warnings(),
        [
            "handler `start`, follow to `h`: form value `pw` = \"$ecret\" names no page value and is sent as written; write \"$$ecret\" if that is meant",
            "handler `start`, follow to `h`: form value `token` = \"$tokn\" names no page value and is sent as written; write \"$$tokn\" if that is meant",
        ]
    );
    let clean = Project::parse("name = \"p\"\n[handlers.start]\nfollow = [{ css = \"a\", callback = \"start\", form = { q = \"x\" } }]\n")
        .expect("valid");
    assert!(clean.warnings().is_empty());
}
