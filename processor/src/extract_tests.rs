//! Tests of item extraction: fields, transforms, `each`, `default`, `required`, keys.

use serde_json::json;

use crate::extract::{DropCause, DroppedItem, drop_summary};
use crate::handler::run_handler;
use crate::testutil::{page, rules, task};

const URL: &str = "http://site.example/books/a.html";

/// Runs handler `item` of a project whose only handler has `fields` on `html`; returns the
/// item's data as JSON and the logs.
fn item(fields: &str, html: &str) -> (serde_json::Value, Vec<String>) {
    let rules = rules(&format!("name = \"p\"\n[handlers.item]\n{fields}\n"));
    let out = run_handler(&rules, &task("item", URL), &page(URL, html)).expect("runs");
    assert_eq!(out.items.len(), 1, "exactly one item per page");
    (
        serde_json::Value::Object(out.items[0].data.clone()),
        out.logs,
    )
}

#[test]
fn text_is_the_first_match_whitespace_normalized() {
    let (data, _) = item(
        r#"item.t = { css = "h1" }"#,
        "<h1>\n  A   <b>Light</b>\tin the\n Attic </h1><h1>second</h1>",
    );
    assert_eq!(data, json!({ "t": "A Light in the Attic" }));
}

#[test]
fn first_match_is_in_document_order() {
    // The parser moves ("foster-parents") the stray <p> in front of the table, although it
    // creates it after the cell: document order and creation order differ here.
    let html = "<table><tr><td>cell</td></tr><p>fostered</p></table>";
    let (data, _) = item(r#"item.t = { css = "p, td" }"#, html);
    assert_eq!(data, json!({ "t": "fostered" }));
    let (data, _) = item(
        r#"item.t = { css = ".x" }"#,
        r#"<div><p class="x">inner</p></div><p class="x">outer</p>"#,
    );
    assert_eq!(data, json!({ "t": "inner" }));
}

#[test]
fn all_collects_every_match_in_order() {
    let (data, _) = item(
        r#"item.tags = { css = "li", all = true }"#,
        "<ul><li> a </li><li>b\n c</li><li></li></ul>",
    );
    assert_eq!(data, json!({ "tags": ["a", "b c", ""] }));
}

#[test]
fn attributes_are_read_raw() {
    let (data, _) = item(
        r#"item.alt = { css = "img", attr = "alt" }"#,
        r#"<img alt=" Cover  art ">"#,
    );
    assert_eq!(data, json!({ "alt": " Cover  art " }));
}

#[test]
fn a_missing_attribute_is_null_and_logged() {
    let (data, logs) = item(
        r#"item.alt = { css = "img", attr = "alt" }
item.alts = { css = "img", attr = "alt", all = true }"#,
        r#"<img src="x"><img alt="b">"#,
    );
    assert_eq!(data, json!({ "alt": null, "alts": [null, "b"] }));
    assert!(
        logs.iter()
            .any(|l| l.contains("field `alt`") && l.contains("no `alt` attribute")),
        "{logs:?}"
    );
}

#[test]
fn regex_takes_the_first_group_or_the_whole_match() {
    let (data, _) = item(
        r#"item.group = { css = "p", regex = 'In stock \((\d+) available\)' }
item.whole = { css = "p", regex = '\d+' }
item.none = { css = "p", regex = 'sold out' }
item.unused_group = { css = "p", regex = 'x(y)?|In' }"#,
        "<p>In stock (22 available)</p>",
    );
    assert_eq!(
        data,
        json!({ "group": "22", "whole": "22", "none": null, "unused_group": null })
    );
}

#[test]
fn numbers_ignore_thousands_separators() {
    let (data, _) = item(
        r##"item.a = { css = "#a", as = "number" }
item.b = { css = "#b", as = "number" }
item.c = { css = "#c", as = "number" }
item.d = { css = "#d", as = "number", regex = '[0-9.]+' }
item.e = { css = "#e", as = "number" }"##,
        r#"<p id=a>1,234.50</p><p id=b>-3e2</p><p id=c>n/a</p><p id=d>£51.77</p><p id=e>inf</p>"#,
    );
    assert_eq!(
        data,
        json!({ "a": 1234.5, "b": -300.0, "c": null, "d": 51.77, "e": null })
    );
}

#[test]
fn integers_are_whole_numbers() {
    let (data, logs) = item(
        r##"item.a = { css = "#a", as = "integer" }
item.b = { css = "#b", as = "integer" }
item.c = { css = "#c", as = "integer" }"##,
        "<p id=a>1,234</p><p id=b>1.5</p><p id=c> -7 </p>",
    );
    assert_eq!(data, json!({ "a": 1234, "b": null, "c": -7 }));
    assert!(
        logs.iter()
            .any(|l| l.contains("field `b`") && l.contains("not a valid integer")),
        "{logs:?}"
    );
}

#[test]
fn urls_resolve_against_the_page() {
    let (data, _) = item(
        r#"item.img = { css = "img", attr = "src", as = "url" }
item.abs = { css = "a", attr = "href", as = "url" }
item.empty = { css = "i", attr = "data-x", as = "url" }
item.all = { css = "img, a", attr = "src", as = "url", all = true }"#,
        r#"<img src=" ../media/cover.jpg "><a href="https://cdn.example/x.png"></a><i data-x=""></i>"#,
    );
    assert_eq!(
        data,
        json!({
            "img": "http://site.example/media/cover.jpg",
            "abs": "https://cdn.example/x.png",
            "empty": null,
            "all": ["http://site.example/media/cover.jpg", null],
        })
    );
}

#[test]
fn missing_elements_are_null_or_empty_and_logged() {
    let (data, logs) = item(
        r#"item.one = { css = "h2" }
item.many = { css = "h2", all = true }"#,
        "<h1>x</h1>",
    );
    assert_eq!(data, json!({ "one": null, "many": [] }));
    assert!(
        logs.iter()
            .any(|l| l == "field `one`: nothing matches `h2`"),
        "{logs:?}"
    );
}

#[test]
fn page_values_and_constants() {
    let rules = rules(
        r#"
name = "p"
[handlers.item]
item.url = "$url"
item.status = "$status"
item.cat = "$save.category"
item.missing = "$save.nope"
item.kind = "book"
item.price = "$$5"
"#,
    );
    let mut t = task("item", "http://site.example/task-url");
    t.save = Some(serde_json::Map::from_iter([(
        "category".to_string(),
        json!({ "id": 3 }),
    )]));
    let mut p = page("http://site.example/after-redirect", "");
    p.status = 404;
    let out = run_handler(&rules, &t, &p).expect("runs");
    let item = &out.items[0];
    assert_eq!(item.taskid, "t1");
    assert_eq!(item.url, "http://site.example/task-url");
    assert_eq!(
        serde_json::Value::Object(item.data.clone()),
        json!({
            "url": "http://site.example/task-url",
            "status": 404,
            "cat": { "id": 3 },
            "missing": null,
            "kind": "book",
            "price": "$5",
        })
    );
    assert!(
        out.logs.iter().any(|l| l.contains("saved no `nope`")),
        "{:?}",
        out.logs
    );
}

#[test]
fn fields_keep_definition_order() {
    let (data, _) = item(
        r#"item.zeta = "z"
item.alpha = { css = "h1" }
item.mid = "$url""#,
        "<h1>t</h1>",
    );
    let keys: Vec<&String> = data.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["zeta", "alpha", "mid"]);
}

#[test]
fn a_handler_without_fields_emits_no_item() {
    let rules = rules(
        "name = \"p\"\nstart = [\"http://site.example/\"]\n[handlers.start]\nfollow = [{ css = \"a\", callback = \"start\" }]\n",
    );
    let out = run_handler(&rules, &task("start", URL), &page(URL, "<h1>x</h1>")).expect("runs");
    assert!(out.items.is_empty());
}

fn items_data(out: &crate::HandlerOutput) -> Vec<serde_json::Value> {
    out.items
        .iter()
        .map(|i| serde_json::Value::Object(i.data.clone()))
        .collect()
}

#[test]
fn html_inner_and_outer() {
    let (data, _) = item(
        r#"item.inner = { css = "div.d", html = "inner" }
item.outer = { css = "div.d b", html = "outer" }"#,
        r#"<div class="d">A <b>bold</b> move</div>"#,
    );
    assert_eq!(
        data,
        json!({ "inner": "A <b>bold</b> move", "outer": "<b>bold</b>" })
    );
}

#[test]
fn headers_now_project_and_value_tables() {
    let rules = rules(
        r#"
name = "p"
[handlers.item]
item.type = "$header.Content-Type"
item.missing = "$header.x-nope"
item.project = "$project"
item.now = { value = "$now", as = "datetime" }
item.status_text = { value = "$status", as = "string" }
item.code = { value = "$url", regex = 'a\.(\w+)$' }
"#,
    );
    let out = crate::testutil::run(&rules, &task("item", URL), &page(URL, ""));
    let d = &out.items[0].data;
    assert_eq!(d["type"], "text/html");
    assert_eq!(d["missing"], serde_json::Value::Null);
    assert_eq!(d["project"], "p");
    assert!(d["now"].as_str().is_some_and(|s| s.ends_with('Z')), "{d:?}");
    assert_eq!(d["status_text"], "200");
    assert_eq!(d["code"], "html");
    assert!(
        out.logs.iter().any(|l| l.contains("no `x-nope` header")),
        "{:?}",
        out.logs
    );
}

#[test]
fn the_screenshot_is_a_page_value() {
    let rules = rules(
        r#"
name = "p"
[handlers.item]
item.url = "$url"
item.shot = "$screenshot"
item.has_shot = { value = "$screenshot", regex = '^iVBOR', default = "none" }
"#,
    );
    // As the fetcher sends it for `fetch = "js"` with `js = { screenshot = true }`.
    let mut p = page(URL, "<h1>t</h1>");
    p.screenshot_png_base64 = Some("iVBORw0KGgo=".into());
    let out = crate::testutil::run(&rules, &task("item", URL), &p);
    assert_eq!(
        serde_json::Value::Object(out.items[0].data.clone()),
        json!({ "url": URL, "shot": "iVBORw0KGgo=", "has_shot": "iVBOR" })
    );

    // A page without one (plain HTTP, or no `screenshot` option): null, and the log says why.
    let out = crate::testutil::run(&rules, &task("item", URL), &page(URL, "<h1>t</h1>"));
    assert_eq!(out.items[0].data["shot"], serde_json::Value::Null);
    assert_eq!(out.items[0].data["has_shot"], "none");
    assert!(
        out.logs
            .iter()
            .any(|l| l.starts_with("field `shot`: the page has no screenshot")),
        "{:?}",
        out.logs
    );
}

#[test]
fn bools_and_datetimes_from_html() {
    let (data, _) = item(
        r##"item.stock = { css = "#s", regex = '(yes|no)', as = "bool" }
item.date = { css = "#d", as = "datetime", format = "%d %B %Y" }
item.iso = { css = "time", attr = "datetime", as = "datetime" }"##,
        r#"<p id=s>In stock: yes</p><p id=d>5 January 2023</p><time datetime="2023-01-05T10:00:00+01:00">x</time>"#,
    );
    assert_eq!(
        data,
        json!({ "stock": true, "date": "2023-01-05T00:00:00Z", "iso": "2023-01-05T09:00:00Z" })
    );
}

#[test]
fn dates_from_html_and_a_log_line_for_one_that_does_not_parse() {
    let (data, logs) = item(
        r##"item.born = { css = ".born", as = "date", format = "%B %d, %Y" }
item.iso = { css = "time", attr = "datetime", as = "date" }
item.died = { css = ".died", as = "date" }"##,
        r#"<p class=born>August 15, 1921</p><time datetime="2023-01-05T23:00:00-05:00">x</time><p class=died>unknown</p>"#,
    );
    assert_eq!(
        data,
        json!({ "born": "1921-08-15", "iso": "2023-01-05", "died": null })
    );
    assert!(
        logs.iter()
            .any(|l| l == "field `died`: 1 of 1 value(s) null: the value is not a valid date"),
        "{logs:?}"
    );
}

#[test]
fn defaults_fill_nulls_and_required_fields_drop_items() {
    let (data, _) = item(
        r#"item.a = { css = "h2", default = "none" }
item.b = { css = "li", all = true, default = ["x"] }
item.c = { css = "h1", default = 0 }"#,
        "<h1>t</h1>",
    );
    assert_eq!(data, json!({ "a": "none", "b": ["x"], "c": "t" }));

    let rules = rules(
        "name = \"p\"\n[handlers.item]\nitem.t = { css = \"h1\" }\nitem.p = { css = \".price\", required = true }\n",
    );
    let out = crate::testutil::run(&rules, &task("item", URL), &page(URL, "<h1>t</h1>"));
    assert!(out.items.is_empty());
    assert_eq!(
        out.dropped,
        [DroppedItem {
            index: 0,
            field: "p".into(),
            cause: DropCause::Required
        }]
    );
    assert!(
        out.logs
            .iter()
            .any(|l| l == "item 0 dropped: required field `p` is empty"),
        "{:?}",
        out.logs
    );
}

const LIST: &str = r#"<html><body><h1>Shop</h1>
<div class="product" data-sku="A1"><h3><a href="/p/1" title="One">1</a></h3><p class="price">£1.50</p></div>
<div class="product" data-sku="B2"><h3><a href="/p/2" title="Two">2</a></h3><p class="price">£2.00</p></div>
<div class="product"><h3><a href="/p/3" title="Three">3</a></h3></div>
</body></html>"#;

#[test]
fn each_makes_one_item_per_element_with_relative_fields() {
    let rules = rules(
        r#"
name = "p"
[handlers.list]
items = { each = "div.product" }
item.title = { css = "h3 a", attr = "title" }
item.link = { css = "a", attr = "href", as = "url" }
item.price = { css = ".price", regex = '[0-9.]+', as = "number" }
item.sku = { attr = "data-sku" }
item.page = "$url"
"#,
    );
    let out = crate::testutil::run(&rules, &task("list", URL), &page(URL, LIST));
    assert_eq!(
        items_data(&out),
        [
            json!({ "title": "One", "link": "http://site.example/p/1", "price": 1.5, "sku": "A1", "page": URL }),
            json!({ "title": "Two", "link": "http://site.example/p/2", "price": 2.0, "sku": "B2", "page": URL }),
            json!({ "title": "Three", "link": "http://site.example/p/3", "price": null, "sku": null, "page": URL }),
        ]
    );
    // Without a key field, item i of task t is keyed fingerprint("t:i").
    let keys: Vec<&str> = out.items.iter().map(|i| i.taskid.as_str()).collect();
    assert_eq!(
        keys,
        [
            crate::extract::item_key("t1", 0),
            crate::extract::item_key("t1", 1),
            crate::extract::item_key("t1", 2)
        ]
    );
    assert!(out.items.iter().all(|i| i.url == URL));
}

#[test]
fn each_with_a_key_field_and_required_fields() {
    let rules = rules(
        r#"
name = "p"
[handlers.list.items]
each = "div.product"
key = "sku"
[handlers.list]
item.sku = { attr = "data-sku" }
item.price = { css = ".price", required = true }
"#,
    );
    let out = crate::testutil::run(&rules, &task("list", URL), &page(URL, LIST));
    assert_eq!(out.items.len(), 2);
    assert_eq!(
        out.items[0].taskid,
        spindle_common::urlnorm::fingerprint("A1")
    );
    assert_eq!(
        out.items[1].taskid,
        spindle_common::urlnorm::fingerprint("B2")
    );
    let causes: Vec<_> = out.dropped.iter().map(|d| (d.index, d.cause)).collect();
    assert_eq!(causes, [(2, DropCause::Required)]);
    assert!(
        out.logs
            .iter()
            .any(|l| l.contains("item 2 dropped: required field `price`")),
        "{:?}",
        out.logs
    );

    // A key field that comes out empty drops the item too.
    let rules = rules_text_key();
    let out = crate::testutil::run(&rules, &task("list", URL), &page(URL, LIST));
    assert_eq!(out.items.len(), 2);
    let causes: Vec<_> = out.dropped.iter().map(|d| (d.index, d.cause)).collect();
    assert_eq!(causes, [(2, DropCause::EmptyKey)]);
    assert!(
        out.logs
            .iter()
            .any(|l| l.contains("key field `sku` is empty")),
        "{:?}",
        out.logs
    );
}

#[test]
fn the_drop_summary_names_the_cause_of_each_drop() {
    let drop = |index, cause| DroppedItem {
        index,
        field: "f".into(),
        cause,
    };
    assert_eq!(
        drop_summary(&[drop(0, DropCause::EmptyKey)]),
        "1 item(s) dropped: 1 for an empty key field"
    );
    assert_eq!(
        drop_summary(&[
            drop(0, DropCause::Required),
            drop(1, DropCause::EmptyKey),
            drop(2, DropCause::Required)
        ]),
        "3 item(s) dropped: 2 for an empty required field, 1 for an empty key field"
    );
    assert_eq!(
        drop(4, DropCause::EmptyKey).to_string(),
        "item 4 dropped: key field `f` is empty"
    );
}

fn rules_text_key() -> crate::Rules {
    rules(
        "name = \"p\"\n[handlers.list]\nitems = { each = \"div.product\", key = \"sku\" }\nitem.sku = { attr = \"data-sku\" }\n",
    )
}

#[test]
fn xpath_fields_and_each_xpath() {
    let html = "<table id=specs><tr><th>Weight</th><td> 2 kg </td></tr><tr><th>Colour</th><td>red</td></tr></table><a href='/x' class='n'>next</a>";
    let (data, _) = item(
        r#"item.weight = { xpath = "//th[text()='Weight']/following-sibling::td", regex = '\d+', as = "integer" }
item.href = { xpath = "//a/@href" }
item.class = { xpath = "//a", attr = "class" }
item.rows = { xpath = "count(//tr)", as = "integer" }
item.ths = { xpath = "//th", all = true }"#,
        html,
    );
    assert_eq!(
        data,
        json!({ "weight": 2, "href": "/x", "class": "n", "rows": 2, "ths": ["Weight", "Colour"] })
    );
    let rules = rules(
        r#"
name = "p"
[handlers.specs]
items = { each_xpath = "//table[@id='specs']//tr" }
item.name = { xpath = "th" }
item.value = { xpath = "td" }
item.row = {}
"#,
    );
    let out = crate::testutil::run(&rules, &task("specs", URL), &page(URL, html));
    assert_eq!(
        items_data(&out),
        [
            json!({ "name": "Weight", "value": "2 kg", "row": "Weight 2 kg" }),
            json!({ "name": "Colour", "value": "red", "row": "Colourred" }),
        ]
    );
}

const API: &str = r#"{"page": 1, "next_page": 2, "total": "1,204",
 "results": [
   {"id": 7, "name": "Alpha", "price": 9.5, "tags": ["a", "b"], "in_stock": true, "updated": "2024-02-01 10:00:00"},
   {"id": 8, "name": "Beta", "price": "12", "tags": [], "in_stock": false}
 ]}"#;

#[test]
fn json_fields_keep_json_types() {
    let rules = rules(
        r#"
name = "p"
[handlers.api]
item.page = { json = "$.page" }
item.total = { json = "$.total", as = "integer" }
item.names = { json = "$.results[*].name", all = true }
item.first = { json = "$.results[0]" }
item.nothing = { json = "$.nope", default = "n/a" }
"#,
    );
    let out = crate::testutil::run(
        &rules,
        &task("api", URL),
        &crate::testutil::json_page(URL, API),
    );
    let d = &items_data(&out)[0];
    assert_eq!(d["page"], 1);
    assert_eq!(d["total"], 1204);
    assert_eq!(d["names"], json!(["Alpha", "Beta"]));
    assert_eq!(d["first"]["tags"], json!(["a", "b"]));
    assert_eq!(d["nothing"], "n/a");
}

#[test]
fn each_json_makes_one_item_per_value() {
    let rules = rules(
        r#"
name = "p"
[handlers.api]
items = { each_json = "$.results[*]", key = "id" }
item.id = { json = "$.id" }
item.name = { json = "$.name" }
item.price = { json = "$.price", as = "number" }
item.tags = { json = "$.tags[*]", all = true }
item.in_stock = { json = "$.in_stock", as = "bool" }
item.updated = { json = "$.updated", as = "datetime" }
"#,
    );
    let out = crate::testutil::run(
        &rules,
        &task("api", URL),
        &crate::testutil::json_page(URL, API),
    );
    assert_eq!(
        items_data(&out),
        [
            json!({ "id": 7, "name": "Alpha", "price": 9.5, "tags": ["a", "b"], "in_stock": true, "updated": "2024-02-01T10:00:00Z" }),
            json!({ "id": 8, "name": "Beta", "price": 12.0, "tags": [], "in_stock": false, "updated": null }),
        ]
    );
    assert_eq!(
        out.items[0].taskid,
        spindle_common::urlnorm::fingerprint("7")
    );
}

#[test]
fn a_json_handler_on_a_page_that_is_not_json_fails_the_task() {
    let rules = rules("name = \"p\"\n[handlers.api]\nitem.x = { json = \"$.x\" }\n");
    let err =
        crate::run_handler(&rules, &task("api", URL), &page(URL, "<html>")).expect_err("not json");
    assert!(matches!(err, crate::ProcessorError::NotJson(_)), "{err}");
    assert!(err.is_task_failure());
}

/// A product page with its data in JSON-LD, microdata and OpenGraph meta at once.
const PRODUCT: &str = r#"<html><head>
<meta property="og:title" content="Kettle 1.7 l">
<meta property="og:image" content="/img/kettle.png">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Organization", "name": "Shop"}</script>
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
  {"@type": "BreadcrumbList", "itemListElement": []},
  {"@type": "Product", "name": "Kettle", "gtin13": "5012345678900",
   "offers": {"@type": "Offer", "price": "19.99", "priceCurrency": "GBP"}}]}</script>
<script type="application/ld+json">{"@type": "Product", oops</script>
</head><body>
<div itemscope itemtype="https://schema.org/Product">
  <h1 itemprop="name">Kettle</h1>
  <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
    <span itemprop="price" content="19.99">£19.99</span>
  </div>
</div>
<table class="specs">
  <tr><th>Weight</th><td>1.24 kg</td></tr>
  <tr><th>Width</th><td>23 cm</td></tr>
</table>
</body></html>"#;

#[test]
fn jsonld_microdata_and_meta_are_field_sources() {
    let (data, logs) = item(
        r#"item.gtin = { jsonld = "$..[?(@['@type']=='Product')].gtin13" }
item.name = { jsonld = "$[?@['@type']=='Product'].name" }
item.price = { jsonld = "$[?@['@type']=='Product'].offers..price", as = "number" }
item.types = { jsonld = "$[*]['@type']", all = true }
item.md_name = { itemprop = "name", itemtype = "Product" }
item.md_price = { itemprop = "price", itemtype = "Offer", as = "number" }
item.md_shown = { itemprop = "price", attr = "content" }
item.title = { meta = "og:title" }
item.image = { meta = "og:image", as = "url" }
item.nothing = { meta = "twitter:card" }"#,
        PRODUCT,
    );
    assert_eq!(
        data,
        json!({
            "gtin": "5012345678900",
            "name": "Kettle",
            "price": 19.99,
            "types": ["Organization", "BreadcrumbList", "Product"],
            "md_name": "Kettle",
            "md_price": 19.99,
            "md_shown": "19.99",
            "title": "Kettle 1.7 l",
            "image": "http://site.example/img/kettle.png",
            "nothing": null,
        })
    );
    // The malformed third block is skipped, named and counted; the item is still made.
    assert!(
        logs.iter()
            .any(|l| l.starts_with("jsonld: block 3 of 3 is not valid JSON")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l == "jsonld: 1 of 3 block(s) skipped as invalid JSON"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("field `nothing`: nothing matches meta `twitter:card`")),
        "{logs:?}"
    );
}

#[test]
fn offers_as_an_object_or_a_list_read_alike() {
    for offers in [
        r#"{"@type": "Offer", "price": "5.50"}"#,
        r#"[{"@type": "Offer", "price": "5.50"}, {"@type": "Offer", "price": "7"}]"#,
    ] {
        let html = format!(
            r#"<script type="application/ld+json">{{"@type": "Product", "offers": {offers}}}</script>"#
        );
        let (data, _) = item(
            r#"item.price = { jsonld = "$[?@['@type']=='Product'].offers..price", as = "number" }"#,
            &html,
        );
        assert_eq!(data, json!({ "price": 5.5 }), "{offers}");
    }
}

#[test]
fn microdata_inside_each_is_relative_to_the_element() {
    let rules = rules(
        r#"
name = "p"
[handlers.list]
items = { each = "[itemtype$='/Product']" }
item.name = { itemprop = "name", itemtype = "Product" }
item.price = { itemprop = "price", as = "number" }
item.page_title = { meta = "og:title" }
"#,
    );
    let html = r#"<head><meta property="og:title" content="Kettles"></head>
<div itemscope itemtype="https://schema.org/Product"><b itemprop="name">A</b><i itemprop="price">1.50</i></div>
<div itemscope itemtype="https://schema.org/Product"><b itemprop="name">B</b></div>"#;
    let out = crate::testutil::run(&rules, &task("list", URL), &page(URL, html));
    assert_eq!(
        items_data(&out),
        [
            json!({ "name": "A", "price": 1.5, "page_title": "Kettles" }),
            json!({ "name": "B", "price": null, "page_title": "Kettles" }),
        ]
    );
}

#[test]
fn units_and_expressions_compute_numbers() {
    let (data, logs) = item(
        r#"item.weight_g = { xpath = "//th[text()='Weight']/following-sibling::td", unit = "g" }
item.weight_kg = { css = "table.specs td", unit = "kg" }
item.width_mm = { css = "table.specs td", all = true, unit = "mm" }
item.cents = { jsonld = "$[?@['@type']=='Product'].offers.price", expr = "round(value * 100)" }
item.third = { jsonld = "$[?@['@type']=='Product'].offers.price", as = "number", expr = "round(value / 3, 2)" }
item.none = { css = "h1", expr = "value * 2" }
item.inf = { value = "3", expr = "value / (value - 3)" }"#,
        PRODUCT,
    );
    assert_eq!(
        data,
        json!({
            "weight_g": 1240,
            "weight_kg": 1.24,
            "width_mm": [null, 230],
            "cents": 1999,
            "third": 6.66,
            "none": null,
            "inf": null,
        })
    );
    assert!(
        logs.iter().any(|l| l
            == "field `width_mm`: 1 of 2 value(s) null: the value is not a valid quantity in mm (a number and a unit)"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l == "field `none`: 1 of 1 value(s) null: the value is not a valid number"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.starts_with(
            "field `inf`: 1 of 1 value(s) null: `expr` value / (value - 3) has no finite result"
        )),
        "{logs:?}"
    );
}

#[test]
fn table_cells_and_blocks_are_separated_in_text() {
    let html = r#"<table><tr><td>Weight</td><td>95 g</td></tr></table>
<div class="a"><p>One</p><p>Two</p>three<br>four <b>bo</b>ld</div>
<ul class="l"><li>x</li><li>y</li></ul>"#;
    let (data, _) = item(
        r#"item.row = { css = "tr" }
item.pair = { css = "tr", separator = ": " }
item.div = { css = "div.a" }
item.list = { css = "ul.l", separator = ", " }
item.cell = { css = "td" }"#,
        html,
    );
    assert_eq!(
        data,
        json!({
            "row": "Weight 95 g",
            "pair": "Weight: 95 g",
            "div": "One Two three four bold",
            "list": "x, y",
            "cell": "Weight",
        })
    );
}

#[test]
fn the_examples_of_the_rules_reference_give_what_it_says() {
    let html = r#"<head>
<script type="application/ld+json">{"@type": ["Product", "Thing"], "name": "Listed",
  "offers": {"price": "24.00"}}</script></head>
<body><p class="price">£1,205.50</p><p class="plain">£9.99</p>
<span class="stars" data-rating="4.5"></span>
<table><tr><th>Weight</th><td>2 lb</td></tr></table>
<p class="length">1.5 m</p><p class="pack">2 x 500 g</p><p class="bare">950</p></body>"#;
    let (data, _) = item(
        r#"item.typed = { jsonld = "$[?@['@type'][0]=='Product'].name" }
item.untyped = { jsonld = "$[?@['@type']=='Product'].name" }
item.price_cents = { css = ".price", regex = '[0-9.,]+', expr = "round(value * 100)" }
item.plain = { css = ".plain", expr = "value * 100" }
item.price_ex_vat = { jsonld = "$..offers..price", expr = "round(value / 1.2, 2)" }
item.rating_pct = { css = ".stars", attr = "data-rating", as = "number", expr = "value / 5 * 100" }
item.weight_g = { xpath = "//tr[th='Weight']/td", unit = "g" }
item.length_cm = { css = ".length", unit = "cm" }
item.pack_g = { css = ".pack", unit = "g" }
item.bare_g = { css = ".bare", unit = "g" }"#,
        html,
    );
    assert_eq!(
        data,
        json!({
            "typed": "Listed",
            "untyped": null,
            "price_cents": 120550,
            "plain": null,
            "price_ex_vat": 20,
            "rating_pct": 90,
            "weight_g": 907.18474,
            "length_cm": 150,
            "pack_g": 500,
            "bare_g": null,
        })
    );
}

#[test]
fn each_jsonld_makes_one_item_per_node() {
    let rules = rules(
        r#"
name = "p"
[handlers.list]
items = { each_jsonld = "$[?@['@type']=='ItemList'].itemListElement[*].item", key = "sku" }
item.sku = { jsonld = "$.sku" }
item.name = { jsonld = "$.name", required = true }
item.price = { jsonld = "$.offers..price", as = "number" }
item.node_type = { jsonld = "$['@type']" }
item.page = { meta = "og:title" }
"#,
    );
    let html = r#"<head><meta property="og:title" content="Kettles">
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
  {"@type": "WebPage"},
  {"@type": "ItemList", "itemListElement": [
    {"@type": "ListItem", "position": 1, "item": {"@type": "Product", "sku": "k1", "name": "Kettle", "offers": {"price": "19.99"}}},
    {"@type": "ListItem", "position": 2, "item": {"@type": "Product", "sku": "k2", "name": "Jug", "offers": [{"price": 7}]}},
    {"@type": "ListItem", "position": 3, "item": {"@type": "Product", "sku": "k3"}}]}]}</script></head>"#;
    let out = crate::testutil::run(&rules, &task("list", URL), &page(URL, html));
    assert_eq!(
        items_data(&out),
        [
            json!({ "sku": "k1", "name": "Kettle", "price": 19.99, "node_type": "Product", "page": "Kettles" }),
            json!({ "sku": "k2", "name": "Jug", "price": 7, "node_type": "Product", "page": "Kettles" }),
        ]
    );
    assert_eq!(out.dropped.len(), 1, "the product without a name");
    assert_eq!(
        out.items[1].taskid,
        spindle_common::urlnorm::fingerprint("k2")
    );
}
